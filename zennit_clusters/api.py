"""The public entry points: neuralize, make_explainer, explain, explain_with_constant.

They dispatch on the family registry (:mod:`zennit_clusters.core`) and hold the one chunk loop behind every
explanation, so that memory stays bounded whatever the number of rows.
"""
import copy
import math

import numpy as np
import torch

from .core import NeuralizedModel, converter_for, data_adapter_for, explainer_type_for, supported_types
from .validation import (as_feature_tensor, check_beta, check_cluster, check_finite_rows, check_output_buffer,
                         check_training_data)

__all__ = ['neuralize', 'resolve_beta', 'supported_types', 'make_explainer', 'explain', 'explain_with_constant',
           'CHUNK_ELEMENTS']

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
        return converter(estimator, X=X, beta=beta)
    raise TypeError(
        f'Cannot neuralize an object of type {type(estimator).__module__}.{type(estimator).__qualname__}. '
        f'Supported: {", ".join(supported_types())}, or an already neuralized model.'
    )


def resolve_beta(model, X=None, beta=None):
    """The default soft-min stiffness of a freshly neuralized model (see :func:`neuralize`).

    It depends only on the model and its training data, never on a batch being explained.
    """
    beta = check_beta(beta)
    if X is not None:  # checked even where it sets nothing: bad training data is an error, not ignored
        x = check_training_data(X, model.n_features_in_)
    if beta is not None:
        return beta
    if model.default_beta is not None:
        # a model with a stiffness of its own (a mixture's posterior is a soft-min with beta = 1)
        return float(model.default_beta)
    if X is None:
        x = model.cluster_centers.to(torch.float64)
    with torch.no_grad():
        # models whose layered forward is costly (member-point networks: M^2 pairs per row) have a cheaper evidence()
        evidence = model.evidence(x)
    check_finite_rows(x, evidence, name='X (training data)')
    mean_evidence = float(evidence.max(1).values.mean())
    if not mean_evidence > 0 or not math.isfinite(1.0 / mean_evidence):
        # every point on a boundary (e.g. all centroids identical): no scale to take; split evenly
        return 0.0
    return 1.0 / mean_evidence


def make_explainer(model, cluster=None, beta=None, epsilon=None):
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
    return explainer_type(model, cluster, beta, epsilon)


def explain(model, X, cluster=None, beta=None, chunk_size=None, epsilon=None, return_logits=False, out=None,
            **options):
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
        the result, which for large X costs about as much as explaining it.
    **options
        Keyword arguments of the data adapter of X's container type (for a Spark DataFrame ``features_col``,
        ``relevance_columns``, ``onnx`` ..., see :func:`zennit_clusters.families.spark.explain_dataframe`); a
        TypeError for arrays and tensors.

    Returns
    -------
    relevance : array of shape (n_samples, n_features)
        ``relevance.sum(1)`` equals the evidence ``f_c(x)`` of the explained cluster; ``out`` if given.
    labels, logits : arrays, only with ``return_logits``

    Notes
    -----
    Data containers that a family registers an adapter for (:class:`~zennit_clusters.core.Family`,
    ``data_adapters``) are explained by that adapter, which returns the same kind of container.
    """
    adapter = data_adapter_for(type(X))
    if adapter is not None:
        return adapter(model, X, cluster=cluster, beta=beta, chunk_size=chunk_size, epsilon=epsilon,
                       return_logits=return_logits, out=out, **options)
    if options:
        raise TypeError(f'explain() got unexpected keyword argument(s) {", ".join(sorted(options))} '
                        f'(options of a data adapter; none is registered for {type(X).__name__}).')
    relevance, _, labels, logits = _explain_in_chunks(model, X, cluster, beta, chunk_size, epsilon, False, out)
    relevance = relevance if out is None else out  # the caller's own object, not a view of it
    if return_logits:
        return relevance, labels, logits
    return relevance


def explain_with_constant(model, X, cluster=None, beta=None, chunk_size=None, epsilon=None, return_logits=False):
    """NEON relevance of every feature and of the model's constant term, which together sum to ``f_c(x)``.

    Like :func:`explain`, plus ``constant``: the share of the evidence that no feature carries. For
    Gaussian mixtures with diagonal, spherical or full covariances it is the part of the log-ratios that
    does not depend on x (log ratios of the mixing weights and of the covariance determinants), so that
    ``relevance.sum(1) + constant == f_c(x)``. It is zero for centroid models and tied mixtures.

    Parameters
    ----------
    As for :func:`explain`.

    Returns
    -------
    relevance : array of shape (n_samples, n_features)
    constant : array of shape (n_samples,)
    labels, logits : arrays, only with ``return_logits``
    """
    relevance, constant, labels, logits = _explain_in_chunks(model, X, cluster, beta, chunk_size, epsilon, True)
    if return_logits:
        return relevance, constant, labels, logits
    return relevance, constant


def _explain_in_chunks(model, X, cluster, beta, chunk_size, epsilon, with_constant, out=None):
    """Run a model's closed-form explainer over X in row chunks; the one loop behind explain() and
    explain_with_constant(). Returns (relevance, constant or None, labels, logits), numpy for numpy X."""
    model = neuralize(model)
    explainer = make_explainer(model, cluster=cluster, beta=beta, epsilon=epsilon)
    x, from_numpy = as_feature_tensor(X, model.n_features_in_)
    explainer = explainer.to(device=x.device, dtype=x.dtype)
    if chunk_size is None:
        # explainers with a large per-row intermediate (member-point networks) declare it as row_elements
        chunk_size = max(1, CHUNK_ELEMENTS // max(x.shape[1], model.n_clusters, explainer.row_elements))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f'chunk_size must be a positive int, got {chunk_size!r}.')

    relevance = _empty_like(x) if out is None else check_output_buffer(out, x, from_numpy)
    constant = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device) if with_constant else None
    logits = torch.empty(x.shape[0], model.n_clusters, dtype=x.dtype, device=x.device)
    labels = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    noise_free = model.noise_radius is None
    with torch.no_grad():
        for start in range(0, x.shape[0], chunk_size):
            rows = slice(start, start + chunk_size)
            chunk = x[rows].contiguous()  # a no-op for row chunks of contiguous X; the compiled code needs it
            if with_constant:  # zero for explainers without a constant term (centroid and member models)
                labels[rows], logits[rows], relevance[rows], constant[rows] = explainer.forward_with_constant(chunk)
            elif explainer.writes_out:  # straight into the result, where the explainer can
                labels[rows], logits[rows], written = explainer(chunk, out=relevance[rows])
                if written.data_ptr() != relevance[rows].data_ptr():
                    relevance[rows] = written
            else:
                labels[rows], logits[rows], relevance[rows] = explainer(chunk)
            # label -1 marks non-finite rows, and also noise where the model has a noise rule (DBSCAN)
            finite = labels[rows] >= 0 if noise_free else torch.isfinite(logits[rows].sum(1))
            check_finite_rows(chunk, logits[rows], offset=start, finite=finite)

    if from_numpy:
        relevance, labels, logits = relevance.numpy(), labels.numpy(), logits.numpy()
        constant = None if constant is None else constant.numpy()
    return relevance, constant, labels, logits


def _empty_like(x):
    """An uninitialised array like ``x``; on CPU allocated by numpy, which asks Linux for huge pages: the first
    touch of a fresh 300 MB result is then about twice as fast as with torch's allocator."""
    if x.device.type != 'cpu':
        return torch.empty_like(x)
    return torch.from_numpy(np.empty(tuple(x.shape), dtype=torch.empty((), dtype=x.dtype).numpy().dtype))
