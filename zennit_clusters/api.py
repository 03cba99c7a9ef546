"""The public entry points: neuralize, make_explainer, explain, explain_with_constant.

They dispatch on the family registry (:mod:`zennit_clusters.core`) and hold the one chunk loop behind every
explanation, so that memory stays bounded whatever the number of rows.
"""
import copy

import numpy as np
import torch

from .columns import as_user_results, group_relevance
from .core import NeuralizedModel, converter_for, data_adapter_for, explainer_type_for, supported_types
from .validation import (as_feature_tensor, check_beta, check_cluster, check_contrast, check_finite_rows,
                         check_finite_values, check_output_buffer, check_reference, is_dataframe)
from .evidence import beta_of_total, evidence_chunks, evidence_total, predict, predict_evidence

__all__ = ['neuralize', 'resolve_beta', 'supported_types', 'make_explainer', 'explain', 'explain_with_constant',
           'direction', 'group_relevance', 'predict', 'predict_evidence', 'evidence_chunks', 'CHUNK_ELEMENTS']

#: rows per chunk in :func:`explain`, scaled by the row width: 16 MB of float32 input. The compiled k-means kernel
#: keeps nothing of a chunk's size; the torch path holds three (rows, D) intermediates.
CHUNK_ELEMENTS = 1 << 22


def neuralize(estimator, X=None, beta=None):
    """Rewrite a fitted clustering model as a torch module whose outputs are cluster evidence.

    Parameters
    ----------
    estimator : fitted estimator, torch.Tensor, torch.nn.Module
        A fitted scikit-learn ``KMeans``, ``MiniBatchKMeans`` or ``BisectingKMeans`` (and the other types of
        :func:`supported_types`); a (K, D) tensor of centroids; a torch clustering module of one of the forms in
        ``zennit_clusters.families.centroids.torch_heads.ACCEPTED_FORMS`` (its forward is run on probe points and
        its assignments must be the network's; a feature extractor before the head gives a ``NeuralizedDeep``);
        or an already neuralized model (returned as is unless ``X`` or ``beta`` ask for a new default
        stiffness).
    X : array-like of shape (n_samples, n_features), optional
        Training data. Sets the default soft-min stiffness to the authors' heuristic
        ``beta = 1 / mean f_c(x)`` over these points (each with its assigned cluster c).
    beta : float, optional
        The default soft-min stiffness of explanations of this model (overrides ``X``). Without ``X``
        and ``beta``, the heuristic is evaluated at the cluster centroids instead of training data:
        ``beta = 1 / mean_c f_c(mu_c)``.

    Returns
    -------
    NeuralizedModel
        A ``torch.nn.Module``; ``model(x)`` gives the (N, K) evidence ``f_c(x)``, whose argmax is the
        estimator's ``predict``. Buffers are float64 on the CPU; inputs of another float dtype or
        device are handled by casting the buffers.

    Raises
    ------
    TypeError
        For an unsupported estimator type, or a torch module of none of the accepted forms.
    ValueError
        For a torch module whose own assignments differ from the network built from its tensors.
    sklearn.exceptions.NotFittedError
        For an estimator that was not fitted (a ``ValueError``).
    """
    if isinstance(estimator, NeuralizedModel):
        if X is None and beta is None:
            return estimator
        model = copy.deepcopy(estimator)
        model.beta = resolve_beta(model, X, beta)
        return model
    converter = converter_for(type(estimator))
    if converter is not None:
        names = getattr(estimator, 'feature_names_in_', None)
        if names is not None and X is not None:
            from .validation import check_columns
            X = check_columns(X, names, numeric=False, name='X (training data)')
        model = converter(estimator, X=X, beta=beta)
        # models of a torch module's own (NeuralizedDeep) have no column names to keep
        if names is not None and isinstance(model, NeuralizedModel) and model.feature_names_in_ is None:
            model.record_feature_names(names)
        return model
    raise TypeError(
        f'Cannot neuralize an object of type {type(estimator).__module__}.{type(estimator).__qualname__}. '
        f'Supported: {", ".join(supported_types())}, or an already neuralized model.'
    )


def resolve_beta(model, X=None, beta=None, rows=None):
    """The default soft-min stiffness of a freshly neuralized model (see :func:`neuralize`).

    It depends only on the model and its training data, never on a batch being explained. The evidence over the
    training data is computed in row chunks with a running sum, so that memory beyond X stays O(chunk) for any
    number of rows (a float32 X is converted to float64 a chunk at a time, never as a whole). ``rows``, a boolean
    mask over X's rows, restricts the mean to those rows (a partition's non-noise points) without copying them;
    every row of X is checked all the same.
    """
    beta = check_beta(beta)
    fixed = beta if beta is not None else model.default_beta
    if X is None:
        if fixed is not None:
            return float(fixed)
        total, count = evidence_total(model, model.cluster_centers.to(torch.float64), 'X (training data)')
    else:
        # checked even where it sets nothing: bad training data is an error, not ignored
        x, _ = as_feature_tensor(model.encode(X), model.n_features_in_, name='X (training data)')
        if fixed is not None:
            check_finite_values(x, 'X (training data)')
            return float(fixed)
        total, count = evidence_total(model, x, 'X (training data)', rows)
    return beta_of_total(total, count)


def make_explainer(model, cluster=None, beta=None, epsilon=None, output='relevance'):
    """The closed-form explainer module of a neuralized model (or a fitted estimator).

    Parameters
    ----------
    model : NeuralizedModel or fitted estimator
    cluster : int or None
        The cluster to explain for every point; None for each point's assigned cluster.
    beta : float or None
        Soft-min stiffness; None for the model's own value.
    epsilon : float or None
        Stabiliser of the midpoint rule; None for the default relative to each margin's scores (machine epsilon of
        the explainer's dtype x ``(|s_own| + |s_rival|)``, :func:`~zennit_clusters.validation.sign_stabiliser`);
        a float for an absolute stabiliser.

    output : {'relevance', 'parts', 'direction', 'contrasts'}
        What ``forward`` returns as its third value: the (N, D) relevance; the (N, K, D) per-competitor parts; the
        (N, D) int8 directions (see :func:`explain` and :func:`direction`); the (N, K, D) contrastive relevance
        against every competitor, ``[n, k]`` what ``explain(..., contrast=k)`` gives (``forward_with_constant``
        adds the (N, K) constants where the family has a constant term; the ONNX exporter's ``contrasts``). Explainers list what they offer in
        ``outputs``, and the per-row options their ``forward`` takes (``contrast``, ``reference``) in
        ``row_options``.

    Returns
    -------
    torch.nn.Module
        float64 on the CPU; move it with ``.to(device, dtype)``.
    """
    model = neuralize(model)
    cluster = check_cluster(cluster, model.n_clusters)
    beta = model.beta if check_beta(beta) is None else check_beta(beta)
    explainer_type = explainer_type_for(type(model))
    if explainer_type is None:
        raise TypeError(f'no closed-form explainer for {type(model).__name__}.')
    if output == 'relevance':
        return explainer_type(model, cluster, beta, epsilon)
    if output not in explainer_type.outputs:
        raise ValueError(f'{type(model).__name__} offers the outputs {", ".join(map(repr, explainer_type.outputs))}; '
                         f'{output!r} needs pairwise margins that this family does not have.')
    return explainer_type(model, cluster, beta, epsilon, output=output)


def explain(model, X, cluster=None, beta=None, chunk_size=None, epsilon=None, return_logits=False, out=None,
            contrast=None, per_competitor=False, reference=None, grouped=True, **adapter_options):
    """NEON relevance of every feature for a point's cluster evidence.

    Parameters
    ----------
    model : NeuralizedModel or fitted estimator
        Anything :func:`~zennit_clusters.neuralize` accepts.
    X : array-like or torch.Tensor of shape (n_samples, n_features)
        Points to explain. numpy in gives numpy out; a tensor gives a tensor on its device. float32 and
        float64 are kept; integers are computed in float64.
    cluster : int, optional
        Explain the evidence for this cluster for every point; default each point's assigned cluster.
    beta : float, optional
        Soft-min stiffness (>= 0, ``math.inf`` for the nearest competitor only); default the model's own.
    chunk_size : int, optional
        Rows per forward pass; default 16 MB of float32 input per chunk (see CHUNK_ELEMENTS).
    epsilon : float, optional
        Absolute stabiliser of the division by a margin; default one relative to the margin's scores (machine
        epsilon of X's dtype x ``(|s_own| + |s_rival|)``, :func:`~zennit_clusters.validation.sign_stabiliser`),
        which keeps the explanation conservative at every scale of the data.
    return_logits : bool
        Also return the labels and the (n_samples, n_clusters) evidence. A label is -1 for rows with NaN or
        infinity (their logits are not finite) and, for models with a noise rule (DBSCAN), for noise (every
        logit finite and negative; ``model.label_rule`` says what a model's labels mean).
    out : numpy.ndarray or torch.Tensor of shape (n_samples, n_features), optional
        Where to write the relevance: numpy for numpy X, a tensor on X's device for a tensor, of the dtype
        the relevance has (X's float dtype), C-contiguous. Reusing one buffer across calls saves allocating
        the result, which for large X costs about as much as explaining it. Its width is that of the network's
        input (``model.n_features_in_``); with ``grouped`` summing encoded columns back, pass ``grouped=False``.
    grouped : bool
        For pipelines whose encoders make several columns from one of the user's (one-hot categories): sum the
        relevance of the columns made from one input column back onto it (the default), so that the result has
        the user's columns; False keeps one column per encoded column (``model.get_feature_names_out()``). It
        changes nothing for models whose input columns are the user's.

    contrast : int or array-like of shape (n_samples,), optional
        Explain the margin ``h_ck`` between the explained cluster c and this competitor k ("why c rather than
        k?") instead of the evidence: the relevance sums to ``h_ck(x)`` (for k-means ``|x - mu_k|^2 -
        |x - mu_c|^2``). Rows where k is c get zero relevance, which is exact: ``h_cc`` is identically zero.
        ``beta`` plays no part (one competitor).
    per_competitor : bool
        Return the (n_samples, n_clusters, n_features) parts of the explanation, ``[n, k]`` the share that comes
        from competitor k (zero at k = c); their sum over axis 1 is ``explain(model, X)`` with the same
        ``beta`` and ``reference``.
    reference : None, 'mean', 'zero', 0, array-like of shape (n_features,) or (n_samples, n_features)
        Take each pairwise root point toward this reference instead of the midpoint (docs/method.md,
        "Reference points"): the explanation stays conservative and matches removal to that value. 'mean'
        is the unweighted mean of the model's cluster centres (pass the data mean as an array to use it);
        an (N, D) array is a per-point reference (e.g. a kNN in-fill). None (default) is the midpoint rule.
    **adapter_options
        Keyword arguments of the data adapter of X's container type (for a Spark DataFrame ``features_col``,
        ``relevance_columns``, ``onnx`` ..., see :func:`zennit_clusters.families.spark.explain_dataframe`); a
        TypeError for arrays, frames and tensors.

    Returns
    -------
    relevance : array of shape (n_samples, n_columns)
        ``relevance.sum(1)`` equals the evidence ``f_c(x)`` of the explained cluster (``h_ck(x)`` with
        ``contrast``); ``out`` if given. (n_samples, n_clusters, n_columns) with ``per_competitor`` (a numpy
        array or tensor also for DataFrame X). A pandas DataFrame for DataFrame X: X's index, and the user's
        column names (the encoded names with ``grouped=False``).
    labels, logits : arrays, only with ``return_logits``
        pandas Series / DataFrame on X's index for DataFrame X.

    Raises
    ------
    ValueError
        For ``contrast``, ``per_competitor`` or ``reference`` on a family without pairwise margins
        (mixtures with a constant term, deep models), or ``contrast`` together with ``per_competitor``.

    Notes
    -----
    Data containers that a family registers an adapter for (:class:`~zennit_clusters.core.Family`,
    ``data_adapters``) are explained by that adapter, which returns the same kind of container.

    scipy sparse X (centroid models and text pipelines; a text pipeline also takes a list of documents) gives
    the relevance of X's stored entries as a sparse matrix of X's pattern and format. The features absent from
    a row carry relevance too (the midpoint rule compares x_i = 0 with the centroids); their total is the
    constant of :func:`explain_with_constant`, so that ``relevance.sum(1) + constant == f_c`` there.
    """
    options = dict(contrast=contrast, reference=reference, output='parts' if per_competitor else 'relevance')
    model, encoded = _encoded(model, X)
    adapter = data_adapter_for(type(encoded))
    if adapter is not None:
        if contrast is not None or per_competitor or reference is not None:
            raise ValueError(f'contrast, per_competitor and reference are not available for {type(encoded).__name__} '
                             'input; explain a numpy array, a DataFrame or a torch tensor.')
        return adapter(model, encoded, cluster=cluster, beta=beta, chunk_size=chunk_size, epsilon=epsilon,
                       return_logits=return_logits, out=out, **adapter_options)
    if adapter_options:
        raise TypeError(f'explain() got unexpected keyword argument(s) {", ".join(sorted(adapter_options))} '
                        f'(options of a data adapter; none is registered for {type(X).__name__}).')
    if contrast is not None and per_competitor:
        raise ValueError('contrast= explains one margin, per_competitor=True splits the explanation over all of '
                         'them: ask for one of the two.')
    regroup = grouped and model.feature_groups is not None
    if regroup and out is not None:
        raise ValueError('out holds the relevance of the network\'s input columns, but grouped=True sums them onto '
                         f'the {model.n_columns_in_} input columns; pass grouped=False with out.')
    relevance, _, labels, logits = _explain_in_chunks(model, X, cluster, beta, chunk_size, epsilon, False, out,
                                                      keep_logits=return_logits, **options)
    relevance = relevance if out is None else out  # the caller's own object, not a view of it
    relevance, labels, logits, _ = as_user_results(model, X, relevance, labels, logits, None, grouped)
    if return_logits:
        return relevance, labels, logits
    return relevance


def explain_with_constant(model, X, cluster=None, beta=None, chunk_size=None, epsilon=None, return_logits=False,
                          contrast=None, per_competitor=False, reference=None, grouped=True):
    """NEON relevance of every feature and of the model's constant term, which together sum to ``f_c(x)``.

    Like :func:`explain`, plus ``constant``: the share of the evidence that no feature carries. For
    Gaussian mixtures with diagonal, spherical or full covariances it is the part of the log-ratios that
    does not depend on x (log ratios of the mixing weights and of the covariance determinants), so that
    ``relevance.sum(1) + constant == f_c(x)``. It is zero for centroid models and tied mixtures on dense X.
    For scipy sparse X (and a text pipeline's documents) the relevance is sparse, of X's pattern, and the
    constant is the relevance of all the features absent from each row together (the *absent term*).

    Parameters
    ----------
    As for :func:`explain`. With ``contrast``, ``relevance.sum(1) + constant == h_ck(x)``; with
    ``per_competitor``, the constant is split too.

    Returns
    -------
    relevance : array of shape (n_samples, n_features), (n_samples, n_clusters, n_features) with per_competitor
    constant : array of shape (n_samples,), (n_samples, n_clusters) with per_competitor
    labels, logits : arrays, only with ``return_logits``
    """
    model, encoded = _encoded(model, X)
    adapter = data_adapter_for(type(encoded))
    if adapter is not None:  # an adapter asked for the constant returns it after the relevance
        if contrast is not None or per_competitor or reference is not None:
            raise ValueError(f'contrast, per_competitor and reference are not available for {type(encoded).__name__} '
                             'input; explain a numpy array, a DataFrame or a torch tensor.')
        return adapter(model, encoded, cluster=cluster, beta=beta, chunk_size=chunk_size, epsilon=epsilon,
                       return_logits=return_logits, out=None, with_constant=True)
    if contrast is not None and per_competitor:
        raise ValueError('contrast= explains one margin, per_competitor=True splits the explanation over all of '
                         'them: ask for one of the two.')
    relevance, constant, labels, logits = _explain_in_chunks(
        model, X, cluster, beta, chunk_size, epsilon, True, contrast=contrast, reference=reference,
        output='parts' if per_competitor else 'relevance')
    relevance, labels, logits, constant = as_user_results(model, X, relevance, labels, logits, constant, grouped)
    if return_logits:
        return relevance, constant, labels, logits
    return relevance, constant


def _encoded(model, X):
    """The neuralized model, and X as the data adapters see it: X itself, except for models that turn documents
    into a sparse term matrix on the host (``encodes_documents``: a text pipeline's vectorizer), whose sparse rows
    the centroid family's sparse adapter explains. Other models encode inside the chunk loop (``model.encode``).

    For a container with a data adapter (Spark, dask) the model is passed on as given: the adapter neuralizes it
    (or, given an ONNX graph, needs none)."""
    if data_adapter_for(type(X)) is not None:
        return model, X
    model = neuralize(model)
    if getattr(model, 'encodes_documents', False):
        return model, model.encode(X)
    return model, X


def direction(model, X, cluster=None, contrast=None, beta=None, reference=None, chunk_size=None, epsilon=None,
              grouped=True):
    """Whether each feature's value speaks for the explained cluster because it is high (+1) or low (-1).

    From the signs inside each family's rule (docs/method.md, "Direction"): on each pairwise boundary between
    the explained cluster c and a competitor k, feature i of x lies above (+1) or below (-1) the root point
    ``rho_ck,i``; the direction is the sign of these, weighted by the magnitude of each pair's part of the
    relevance ``|R_ck,i|``: ``d_i = sign(sum_k |R_ck,i| sign(x_i - rho_ck,i))``. 0 where no part carries
    relevance (the feature does not separate c from its competitors). Read with the relevance's sign: R_i > 0
    and d_i = +1 means "speaks for c because it is high"; R_i < 0 and d_i = +1 "speaks against c because it is
    high". Centroid models (midpoints), mixtures of every covariance type (the roots of their log-ratios' terms),
    member networks (member pairs' midpoints; DBSCAN's noise branch has no high or low and counts nowhere) and
    pipelines before them. For centroid models it costs a few explanations (rows grouped by explained
    cluster); with a ``reference`` the roots depend on the row and the (N, L, D) pairs path runs in chunks.

    Parameters
    ----------
    model, X, cluster, beta, chunk_size, epsilon
        As for :func:`explain`.
    contrast : int or array-like of shape (n_samples,), optional
        Directions on the one boundary between c and this competitor (zero on rows where it is c).
    reference : optional
        Root points toward a reference, as for :func:`explain`.

    grouped : bool
        As for :func:`explain`: on the user's columns. A column that an encoder made into several (one-hot
        categories) has no high or low and gets 0; ``grouped=False`` gives one code per encoded column.

    Returns
    -------
    numpy.ndarray or torch.Tensor of shape (n_samples, n_columns), int8
        A DataFrame for DataFrame X (X's index, the user's column names).
    """
    model = neuralize(model)
    codes = _explain_in_chunks(model, X, cluster, beta, chunk_size, epsilon, False, contrast=contrast,
                               reference=reference, output='direction')[0]
    names = model.get_feature_names_out()
    if grouped and model.feature_groups is not None:
        index, names = model.feature_groups
        index = np.asarray(index)
        single = np.bincount(index, minlength=len(names)) == 1
        # the one encoded column of each user column that has exactly one; the others stay 0
        position = np.zeros(len(names), dtype=np.intp)
        position[index[single[index]]] = np.flatnonzero(single[index])
        if torch.is_tensor(codes):
            keep = torch.as_tensor(single, device=codes.device)
            codes = codes[:, torch.as_tensor(position, device=codes.device)] * keep.to(codes.dtype)
        else:
            codes = codes[:, position] * single.astype(codes.dtype)
    if is_dataframe(X):
        import pandas as pd
        codes = pd.DataFrame(codes, index=X.index, columns=pd.Index(names))
    return codes


def _explain_in_chunks(model, X, cluster, beta, chunk_size, epsilon, with_constant, out=None, contrast=None,
                       reference=None, output='relevance', keep_logits=True):
    """Run a model's closed-form explainer over X in row chunks; the one loop behind explain(),
    explain_with_constant() and direction(). Returns (relevance, constant or None, labels, logits), numpy for
    numpy X; labels and logits are None unless ``keep_logits`` (otherwise they live a chunk at a time: memory
    beyond X and the relevance stays O(chunk))."""
    model = neuralize(model)
    explainer = make_explainer(model, cluster=cluster, beta=beta, epsilon=epsilon, output=output)
    x, from_numpy = as_feature_tensor(model.encode(X), model.n_features_in_)
    explainer = explainer.to(device=x.device, dtype=x.dtype)
    row_options = {}
    if contrast is not None:
        row_options['contrast'] = check_contrast(contrast, model.n_clusters, x)
    if reference is not None:
        row_options['reference'] = check_reference(reference, x, model.cluster_centers)
    missing = [name for name in row_options if name not in explainer.row_options]
    if missing:
        raise ValueError(f'{" and ".join(missing)} need pairwise margins with a root point; '
                         f'{type(model).__name__} does not offer {" or ".join(missing)}.')
    if chunk_size is None:
        # explainers with a large per-row intermediate (member-point networks) declare it as row_elements
        chunk_size = max(1, CHUNK_ELEMENTS // max(x.shape[1], model.n_clusters,
                                                  explainer.row_elements_for(tuple(row_options))))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f'chunk_size must be a positive int, got {chunk_size!r}.')

    if output == 'relevance':
        relevance = _empty_like(x) if out is None else check_output_buffer(out, x, from_numpy)
    elif out is not None:
        raise ValueError('out= takes the (n_samples, n_features) relevance only; not per-competitor parts or '
                         'directions.')
    elif output == 'parts':
        relevance = torch.empty(x.shape[0], model.n_clusters, x.shape[1], dtype=x.dtype, device=x.device)
    else:
        relevance = torch.empty(x.shape, dtype=torch.int8, device=x.device)
    constant = torch.zeros(relevance.shape[:-1], dtype=x.dtype, device=x.device) if with_constant else None
    n_kept = x.shape[0] if keep_logits else min(x.shape[0], chunk_size)
    logits = torch.empty(n_kept, model.n_clusters, dtype=x.dtype, device=x.device)
    labels = torch.empty(n_kept, dtype=torch.long, device=x.device)
    noise_free = model.noise_radius is None
    with torch.no_grad():
        for start in range(0, x.shape[0], chunk_size):
            rows = slice(start, start + chunk_size)
            chunk = x[rows].contiguous()  # a no-op for row chunks of contiguous X; the compiled code needs it
            # where the (N, K) logits are returned, chunk rows of them; otherwise one chunk's buffer, reused
            kept = rows if keep_logits else slice(0, chunk.shape[0])
            if with_constant:  # zero for explainers without a constant term (centroid and member models)
                labels[kept], logits[kept], relevance[rows], constant[rows] = explainer.forward_with_constant(
                    chunk, **{name: value[rows] for name, value in row_options.items()})
            elif row_options or output != 'relevance':
                options = {name: value[rows] for name, value in row_options.items()}
                labels[kept], logits[kept], relevance[rows] = explainer(chunk, **options)
            elif explainer.writes_out:  # straight into the result, where the explainer can
                labels[kept], logits[kept], written = explainer(chunk, out=relevance[rows])
                if written.data_ptr() != relevance[rows].data_ptr():
                    relevance[rows] = written
            else:
                labels[kept], logits[kept], relevance[rows] = explainer(chunk)
            # label -1 marks non-finite rows, and also noise where the model has a noise rule (DBSCAN)
            finite = labels[kept] >= 0 if noise_free else torch.isfinite(logits[kept].sum(1))
            check_finite_rows(chunk, logits[kept], offset=start, finite=finite)

    if not keep_logits:
        labels = logits = None
    if from_numpy:
        relevance = relevance.numpy()
        labels, logits = (None, None) if labels is None else (labels.numpy(), logits.numpy())
        constant = None if constant is None else constant.numpy()
    return relevance, constant, labels, logits


def _empty_like(x):
    """An uninitialised array like ``x``; on CPU allocated by numpy, which asks Linux for huge pages: the first
    touch of a fresh 300 MB result is then about twice as fast as with torch's allocator."""
    if x.device.type != 'cpu':
        return torch.empty_like(x)
    return torch.from_numpy(np.empty(tuple(x.shape), dtype=torch.empty((), dtype=x.dtype).numpy().dtype))
