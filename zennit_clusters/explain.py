"""The closed-form NEON explainer: label, cluster evidence and relevance in one forward pass.

:class:`CentroidExplainer` is a torch module built from a neuralized centroid model. It is what
:func:`explain` runs (in chunks of rows, so memory stays bounded) and what the ONNX exporter writes out.
It computes the same quantities as the layered model with the Zennit rules, through the same functions
of :mod:`zennit_clusters.functional`, but only for the cluster being explained: O(N K D) work in two
(N, M) x (M, D) matrix products.
"""
import copy
import inspect

import numpy as np
import torch

from . import functional as NF
from . import kernels
from .converters import neuralize
from .layers import NeuralizedCentroids, NeuralizedModel, NeuralizedPipeline, check_beta
from .layers import NeuralizedMixture
from .rules import default_epsilon
from .validation import as_feature_tensor, check_cluster, check_finite_rows, check_n_features

__all__ = ['explain', 'CentroidExplainer', 'make_explainer', 'register_explainer']

#: rows per chunk in :func:`explain`, scaled by the row width: 16 MB of float32 input. The compiled k-means kernel
#: keeps nothing of a chunk's size; the torch path holds three (rows, D) intermediates.
CHUNK_ELEMENTS = 1 << 22

_EXPLAINERS = {}


def register_explainer(model_type):
    """Decorator registering ``factory(model, cluster, beta, epsilon) -> torch.nn.Module`` for a model type.

    The module's forward maps (N, D) inputs to ``(label, logits, relevance)``, with label -1 for every row
    whose evidence is not finite: :func:`explain` refuses those rows by that label. A forward that takes
    ``out=`` writes the relevance there (and :func:`explain` passes the result array's rows).
    """
    def decorator(factory):
        _EXPLAINERS[model_type] = factory
        return factory
    return decorator


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
        Stabiliser of the midpoint rule; None for the machine epsilon of the explainer's dtype.

    Returns
    -------
    torch.nn.Module
        float64 on the CPU; move it with ``.to(device, dtype)``.
    """
    model = neuralize(model)
    cluster = check_cluster(cluster, model.n_clusters)
    beta = model.beta if check_beta(beta) is None else check_beta(beta)
    for type_ in type(model).__mro__:
        if type_ in _EXPLAINERS:
            return _EXPLAINERS[type_](model, cluster, beta, epsilon)
    raise TypeError(f'no closed-form explainer for {type(model).__name__}.')



def optional_centre(centre):
    """The frame's centre as an explainer keeps it: None when it is zero, so that nothing is subtracted (and an
    exported graph has no subtraction node)."""
    return centre.clone() if bool(centre.any()) else None


def centre_inputs(x, centre):
    """``x - centre``, or ``x`` itself for no centre."""
    return x if centre is None else x - centre


def labels_and_explained(logits, cluster, best=None):
    """Each row's label (argmax; -1 where the evidence is not finite) and the cluster its relevance explains.

    Parameters
    ----------
    logits : torch.Tensor of shape (N, K)
    cluster : int or None
        The cluster explained for every row, or None for each row's own label.
    best : torch.LongTensor of shape (N,), optional
        ``logits.argmax(1)`` if already known (:func:`~zennit_clusters.functional.top_two`).

    Returns
    -------
    label, explained : torch.LongTensor of shape (N,)
    """
    # one row sum instead of isfinite over (N, K): NaN and infinity propagate into it (a row of finite
    # evidence whose sum overflows would count as not finite, beyond 3e38 / K in float32)
    finite = torch.isfinite(logits.sum(1))
    best = logits.argmax(1) if best is None else best
    label = torch.where(finite, best, torch.full_like(best, -1))
    explained = label.clamp(min=0) if cluster is None else torch.full_like(label, cluster)
    return label, explained


@register_explainer(NeuralizedCentroids)
class CentroidExplainer(torch.nn.Module):
    """NEON for centroid models (k-means, bisecting k-means, centroid heads), in closed form.

    Parameters
    ----------
    model : NeuralizedCentroids
    cluster : int or None
        Explain this cluster for every row, or (None) each row's assigned cluster.
    beta : float
        Soft-min stiffness of the redistribution to competitors.
    epsilon : float or None
        Stabiliser of the division by a margin; None for the machine epsilon of the dtype at run time.

    Notes
    -----
    ``forward(x)`` returns ``label`` (int64, -1 for rows with NaN or infinity), ``logits`` (N, K) and
    ``relevance`` (N, D) with ``relevance.sum(1) == logits[c]`` for the explained cluster c.
    When c is not the assigned cluster, ``f_c < 0`` and the factors ``f_c / h`` are no longer bounded in
    [0, 1]: the explanation stays conservative but individual relevances can be large.
    """
    def __init__(self, model, cluster, beta, epsilon=None):
        super().__init__()
        margin = model.margin
        for name in ('centres', 'own', 'rival', 'valid'):
            self.register_buffer(name, getattr(margin, name).clone())
        self.register_buffer('centre', optional_centre(margin.centre))
        self.cluster = check_cluster(cluster, model.n_clusters)
        self.beta = beta
        self.epsilon = epsilon
        self.flat = model.is_flat

    def logits(self, scores):
        """Cluster evidence ``f_c = min over c's pairs of s_own - s_rival`` for every cluster."""
        if self.flat:
            _, first, second = NF.top_two(scores)
            return NF.flat_logits(scores, first, second)
        margins = NF.pair_margins(scores, self.own.flatten(), self.rival.flatten())
        return NF.masked_min(margins.reshape(scores.shape[0], *self.own.shape), self.valid)

    def forward(self, x, out=None):
        """``(label, logits, relevance)`` of the rows of ``x``; the relevance is written into ``out`` if given."""
        check_n_features(x, self.centres.shape[1], 'x')
        epsilon = default_epsilon(x.dtype) if self.epsilon is None else self.epsilon
        if self.flat and kernels.usable(x, self.centres, self.centre):
            # on CPU, k-means runs row by row in one compiled kernel: the steps of _forward_flat, fused
            return kernels.flat_centroid_explain(x, self.centre, self.centres, self.cluster, self.beta, epsilon, out)
        x, centre = kernels.defer_centring(x, self.centre)
        scores = NF.centroid_scores(x, self.centres, centre)
        if self.flat:
            return self._forward_flat(x, centre, scores, epsilon, out)
        logits = self.logits(scores)
        label, explained = labels_and_explained(logits, self.cluster)
        own, rival, valid = self.own[explained], self.rival[explained], self.valid[explained]
        margins = NF.pair_margins(scores, own, rival)
        evidence = logits.gather(1, explained.unsqueeze(1))
        pair_relevance = NF.softmin_shares(margins, valid, self.beta) * evidence
        relevance = NF.margin_relevance(x, self.centres, own, rival, valid, margins, pair_relevance, epsilon,
                                        centre=centre, out=out)
        return label, logits, relevance

    def _forward_flat(self, x, centre, scores, epsilon, out):
        """k-means: the explained cluster c against every centroid, one column per centroid (no gathers of
        per-row pair indices, no scatters); the column of c itself is not a pair. Rows with NaN or infinity
        (label -1) get NaN or infinite relevance, as before."""
        best, first, second = NF.top_two(scores)
        logits = NF.flat_logits(scores, first, second)
        label, explained = labels_and_explained(logits, self.cluster, best)
        columns = torch.arange(scores.shape[1], device=scores.device)
        if self.cluster is None:
            # the argmax: its score is the largest, its evidence first - second (exactly logits[best])
            own = columns == explained.unsqueeze(1)
            own_scores, evidence = first, first - second
        else:
            own = columns == self.cluster
            own_scores = scores[:, self.cluster:self.cluster + 1]
            evidence = logits[:, self.cluster:self.cluster + 1]
        margins = own_scores - scores
        pair_relevance = NF.softmin_shares(margins, ~own, self.beta) * evidence
        relevance = NF.flat_margin_relevance(x, self.centres, own, margins, pair_relevance, epsilon, centre, out)
        return label, logits, relevance


def explain(model, X, cluster=None, beta=None, chunk_size=None, epsilon=None, return_logits=False, out=None):
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
        Stabiliser of the division by a margin; default the machine epsilon of X's dtype.
    return_logits : bool
        Also return the labels and the (n_samples, n_clusters) evidence.
    out : numpy.ndarray or torch.Tensor of shape (n_samples, n_features), optional
        Where to write the relevance: numpy for numpy X, a tensor on X's device for a tensor, of the dtype
        the relevance has (X's float dtype), C-contiguous. Reusing one buffer across calls saves allocating
        the result, which for large X costs about as much as explaining it.

    Returns
    -------
    relevance : array of shape (n_samples, n_features)
        ``relevance.sum(1)`` equals the evidence ``f_c(x)`` of the explained cluster; ``out`` if given.
    labels, logits : arrays, only with ``return_logits``
    """
    relevance, _, labels, logits = _explain_in_chunks(model, X, cluster, beta, chunk_size, epsilon, False, out)
    relevance = relevance if out is None else out  # the caller's own object, not a view of it
    if return_logits:
        return relevance, labels, logits
    return relevance


def _explain_in_chunks(model, X, cluster, beta, chunk_size, epsilon, with_constant, out=None):
    """Run a model's closed-form explainer over X in row chunks; the one loop behind explain() and
    explain_with_constant(). Returns (relevance, constant or None, labels, logits), numpy for numpy X."""
    model = neuralize(model)
    explainer = make_explainer(model, cluster=cluster, beta=beta, epsilon=epsilon)
    x, from_numpy = as_feature_tensor(X, model.n_features_in_)
    explainer = explainer.to(device=x.device, dtype=x.dtype)
    if chunk_size is None:
        # explainers with a large per-row intermediate (member-point networks) declare it as row_elements
        row_elements = max((getattr(part, 'row_elements', 0) for part in explainer.modules()), default=0)
        chunk_size = max(1, CHUNK_ELEMENTS // max(x.shape[1], model.n_clusters, row_elements))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f'chunk_size must be a positive int, got {chunk_size!r}.')

    relevance = _empty_like(x) if out is None else _output_tensor(out, x, from_numpy)
    constant = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device) if with_constant else None
    logits = torch.empty(x.shape[0], model.n_clusters, dtype=x.dtype, device=x.device)
    labels = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    # explainers without forward_with_constant have no constant term (centroid and member models)
    run_with_constant = getattr(explainer, 'forward_with_constant', None) if with_constant else None
    writes_out = 'out' in inspect.signature(explainer.forward).parameters
    with torch.no_grad():
        for start in range(0, x.shape[0], chunk_size):
            rows = slice(start, start + chunk_size)
            chunk = x[rows].contiguous()  # a no-op for row chunks of contiguous X; the kernels need it
            if run_with_constant is not None:
                labels[rows], logits[rows], relevance[rows], constant[rows] = run_with_constant(chunk)
            elif writes_out:  # straight into the result, where the explainer can
                labels[rows], logits[rows], written = explainer(chunk, out=relevance[rows])
                if written.data_ptr() != relevance[rows].data_ptr():
                    relevance[rows] = written
            else:
                labels[rows], logits[rows], relevance[rows] = explainer(chunk)
            check_finite_rows(chunk, logits[rows], offset=start, finite=labels[rows] >= 0)

    if from_numpy:
        relevance, labels, logits = relevance.numpy(), labels.numpy(), logits.numpy()
        constant = None if constant is None else constant.numpy()
    return relevance, constant, labels, logits


def _output_tensor(out, x, from_numpy):
    """The tensor view of a user's ``out`` buffer, after checking it can hold the relevance of ``x``."""
    expected = (f'a C-contiguous {"numpy array" if from_numpy else f"tensor on {x.device}"} of shape '
                f'{tuple(x.shape)} and dtype {str(x.dtype).replace("torch.", "")}')
    if from_numpy:
        if not isinstance(out, np.ndarray):
            raise TypeError(f'out must be {expected} (numpy X gives numpy relevance), got {type(out).__name__}.')
        if not out.flags.writeable:
            raise ValueError('out must be writeable; got a read-only array.')
        tensor = torch.from_numpy(out) if out.dtype.kind == 'f' and out.flags.c_contiguous else None
    else:
        if not torch.is_tensor(out):
            raise TypeError(f'out must be {expected} (tensor X gives tensor relevance), got {type(out).__name__}.')
        tensor = out.detach() if out.is_contiguous() else None
    if tensor is None or tensor.shape != x.shape or tensor.dtype != x.dtype or tensor.device != x.device:
        got = (f'{type(out).__name__} of shape {tuple(out.shape)}, dtype {str(out.dtype).replace("torch.", "")}'
               + ('' if from_numpy else f' on {out.device}'))
        layout = out.flags.c_contiguous if from_numpy else out.is_contiguous()
        raise ValueError(f'out must be {expected}; got a{"" if layout else " non-contiguous"} {got}.')
    if _overlap(tensor, x) and tensor.data_ptr() != x.data_ptr():
        # out = X itself works (each row is read before it is written); a shifted overlap would read rows
        # that are already overwritten
        raise ValueError('out overlaps X without being X; pass X itself (to overwrite it) or separate memory.')
    return tensor


def _overlap(a, b):
    """Whether the memory spans of two tensors (from their first to their last element) intersect."""
    def span(t):
        last = sum((size - 1) * abs(stride) for size, stride in zip(t.shape, t.stride()))
        return t.data_ptr(), t.data_ptr() + (last + 1) * t.element_size()
    (a_start, a_end), (b_start, b_end) = span(a), span(b)
    return a.device == b.device and a_start < b_end and b_start < a_end


def _empty_like(x):
    """An uninitialised array like ``x``; on CPU allocated by numpy, which asks Linux for huge pages: the first
    touch of a fresh 300 MB result is then about twice as fast as with torch's allocator."""
    if x.device.type != 'cpu':
        return torch.empty_like(x)
    return torch.from_numpy(np.empty(tuple(x.shape), dtype=torch.empty((), dtype=x.dtype).numpy().dtype))


__all__ += ['MixtureExplainer', 'explain_with_constant']


@register_explainer(NeuralizedMixture)
class MixtureExplainer(torch.nn.Module):
    """NEON for Gaussian mixtures (every covariance type), in closed form.

    The logits are the exact posterior log-odds ``f_c = log p(c|x) / (1 - p(c|x)) = -log sum_{k != c}
    exp(-h_ck)`` of the pairwise log-ratios ``h_ck = log pi_c N(x|c) - log pi_k N(x|k)``. The evidence of
    the explained cluster c is split over competitors with the soft-min shares ``softmax_k(-beta h_ck)``
    (``beta = 1``, the model's own, gives shares ``p(k|x) / (1 - p(c|x))``), then each log-ratio over the
    features by :class:`~zennit_clusters.rules.LogRatioSplit`: a root point on the boundary for tied
    covariances; for diagonal and spherical ones the per-feature terms, whose x-independent rest (log
    weights and log-determinants) is reported as a separate constant; for full covariances the exact
    integrated gradient from a root point on the line through the two means.

    Parameters
    ----------
    model : NeuralizedMixture
    cluster : int or None
        Explain this cluster for every row, or (None) each row's assigned cluster.
    beta : float
        Soft-min stiffness of the redistribution to competitors.
    epsilon : float or None
        Stabiliser of the division by a log-ratio; None for the machine epsilon of the dtype at run time.

    Notes
    -----
    ``forward(x)`` returns ``label`` (int64, -1 for rows with NaN or infinity), ``logits`` (N, K) and
    ``relevance`` (N, D), like :class:`CentroidExplainer`. :meth:`forward_with_constant` also returns the
    constant term ``R_const`` (N,), with ``relevance.sum(1) + R_const == logits[c]`` for the explained
    cluster c. ``R_const`` is zero for tied covariances (unless two components share their mean) and
    for full ones (unless the line through two means crosses no boundary).
    When c is not the assigned cluster, ``f_c`` can be negative and the factors ``f_c / h_ck`` are not
    bounded in [0, 1]: the explanation stays conservative but individual relevances can be large.
    """
    def __init__(self, model, cluster, beta, epsilon=None):
        super().__init__()
        ratio = model.ratio
        names = ['means', 'precisions', 'biases', 'own', 'rival', 'valid', 'null']
        if ratio.linear:
            names += ['weight', 'root', 'kappa', 'offset']
        elif ratio.covariance_type == 'full':
            names += ['root', 'slope', 'kappa']
        for name in names:
            self.register_buffer(name, getattr(ratio, name).clone())
        self.register_buffer('centre', optional_centre(ratio.centre))
        self.covariance_type = ratio.covariance_type
        self.cluster = cluster
        self.beta = beta
        self.epsilon = epsilon
        # the widest per-row intermediate, for the chunking of explain(): (K, D) terms of full covariances,
        # the K (K - 1) linear log-ratios of tied ones
        n_clusters, n_features = ratio.means.shape
        self.row_elements = {'full': 2 * n_clusters * n_features, 'tied': n_clusters * (n_clusters - 1)}.get(
            ratio.covariance_type, n_clusters)

    def forward_with_constant(self, x):
        """``(label, logits, relevance, constant)``; see the class notes."""
        x = centre_inputs(x, self.centre)
        n_rows, n_clusters = x.shape[0], self.means.shape[0]
        products = None
        if self.covariance_type == 'tied':
            h = torch.nn.functional.linear(x, self.weight, self.offset)
        else:
            if self.precisions.dim() == 2:
                scores = NF.diagonal_scores(x, self.means, self.precisions, self.biases)
            else:
                products = NF.precision_products(x, self.precisions)
                scores = NF.quadratic_scores(NF.quadratic_terms(x, self.means, self.precisions, products),
                                             self.biases)
            h = NF.pair_margins(scores, self.own.flatten(), self.rival.flatten()).masked_fill(self.null.flatten(), 0.0)
        h = h.reshape(n_rows, n_clusters, n_clusters - 1)
        logits = NF.soft_min(h, self.valid, 1.0)
        label, explained = labels_and_explained(logits, self.cluster)
        index = explained.reshape(n_rows, 1, 1).expand(n_rows, 1, n_clusters - 1)
        margins = h.gather(1, index).squeeze(1)
        evidence = logits.gather(1, explained.unsqueeze(1))
        pair_relevance = NF.softmin_shares(margins, self.valid[explained], self.beta) * evidence
        epsilon = default_epsilon(x.dtype) if self.epsilon is None else self.epsilon
        factors, remainder = NF.stabilized_factors(pair_relevance, margins, epsilon)
        if self.covariance_type == 'tied':
            factors = torch.zeros_like(h).scatter(1, index, factors.unsqueeze(1)).flatten(1)
            relevance = NF.root_point_relevance(x, self.weight, self.root, factors)
            constant = factors @ self.kappa
        elif self.covariance_type == 'full':
            n_features = x.shape[1]
            root = self.root.reshape(n_clusters, n_clusters - 1, n_features)[explained]
            slope = self.slope.reshape(n_clusters, n_clusters - 1, n_features)[explained]
            relevance = NF.segment_relevance(x, products, self.own[explained], self.rival[explained], root, slope,
                                             factors)
            constant = (factors * self.kappa.reshape(n_clusters, n_clusters - 1)[explained]).sum(1)
        else:
            weights = NF.pair_weights(factors, self.own[explained], self.rival[explained], n_clusters)
            relevance = NF.quadratic_relevance(x, self.means, self.precisions, weights,
                                               reference=self.means[explained])
            constant = NF.mixture_constant(weights, self.biases)
        return label, logits, relevance, constant + remainder

    def forward(self, x):
        label, logits, relevance, _ = self.forward_with_constant(x)
        return label, logits, relevance

    def constant(self, x):
        """The relevance ``R_const`` (N,) of the x-independent part of the explained cluster's evidence."""
        return self.forward_with_constant(x)[3]


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


@register_explainer(NeuralizedPipeline)
class PipelineExplainer(torch.nn.Module):
    """Closed-form explainer of a scaled pipeline: the head's explainer on the scaled input.

    The relevance of raw feature i is that of scaled feature i (the scaling is one-to-one per feature).
    """
    def __init__(self, model, cluster, beta, epsilon=None):
        super().__init__()
        self.scaling = copy.deepcopy(model.scaling)
        self.head = make_explainer(model.head, cluster=cluster, beta=beta, epsilon=epsilon)

    def forward(self, x):
        return self.head(self.scaling(x))

    def forward_with_constant(self, x):
        """``(label, logits, relevance, constant)``: the head's constant term (zero if it has none)."""
        z = self.scaling(x)
        if hasattr(self.head, 'forward_with_constant'):
            return self.head.forward_with_constant(z)
        label, logits, relevance = self.head(z)
        return label, logits, relevance, torch.zeros_like(relevance[:, 0])


# ---------------------------------------------------------------------------------------------------------
# Member-point networks (NEON.md section 3): kernel k-means and labelled partitions
# ---------------------------------------------------------------------------------------------------------

from .layers import NeuralizedMembers, member_epsilon  # noqa: E402

__all__ += ['MemberExplainer']


@register_explainer(NeuralizedMembers)
class MemberExplainer(torch.nn.Module):
    """NEON for member-point networks (Gaussian kernel k-means, labelled partitions), in closed form.

    With member scores s (N, M) and ``S_k = LME^{+gamma}_{j in C_k} s_j``, the four layers collapse to
    ``f_c = min_{k != c} S_c - S_k``. The relevance is the one the Zennit rules give layer by layer:
    ``R_k = softmin_k(beta (S_c - S_k)) f_c`` for each competitor, then the pools' shares, which do not
    depend on the other side of a pair: ``q_i = softmax_{i in C_c}(kappa s_i)`` and
    ``p_j = softmax_{j in C_k}(kappa s_j)`` (kappa = the model's ``relevance_gamma``, by default gamma), so
    ``R_ij = q_i p_j R_k(j)``; finally the midpoint rule on every pair margin ``h_ij = s_i - s_j``, except for
    exact ties (``|h| < epsilon``), which carry no relevance (:func:`~zennit_clusters.functional.tie_reciprocal`).
    Work O(N |C_c| M) (every member of the explained cluster against every member), memory |C_c| x M per row
    (``row_elements``, which :func:`explain` uses to size its chunks).

    Parameters
    ----------
    model : NeuralizedMembers
    cluster : int or None
        Explain this cluster for every row, or (None) each row's assigned cluster.
    beta : float
        Soft-min stiffness of the redistribution to competitors.
    epsilon : float or None
        Tie threshold of the pair margins; None for sqrt(machine epsilon of the dtype at run time) x the
        members' mean squared norm (:meth:`~zennit_clusters.layers.MemberMargin.default_epsilon`).

    Notes
    -----
    ``forward(x)`` returns ``label`` (int64, -1 for rows with NaN or infinity), ``logits`` (N, K) and
    ``relevance`` (N, D) with ``relevance.sum(1) == logits[c]`` for the explained cluster c, as
    :class:`CentroidExplainer`, short of the share of tied pairs (none on continuous data).
    """
    def __init__(self, model, cluster, beta, epsilon=None):
        super().__init__()
        margin, pool = model.margin, model.own_pool
        self.register_buffer('centre', optional_centre(margin.centre))
        self.register_buffer('members', margin.members.clone())
        self.register_buffer('member_group', margin.member_group.clone())
        self.register_buffer('groups', pool.groups.clone())
        self.register_buffer('group_valid', pool.valid.clone())
        self.register_buffer('counts', pool.counts.clone())
        self.register_buffer('others', model.pool.valid.clone())
        self.scale = margin.scale
        self.gamma = model.gamma
        self.relevance_gamma = model.relevance_gamma
        self.cluster = cluster
        self.beta = beta
        self.epsilon = epsilon
        self.row_elements = self.groups.shape[1] * self.members.shape[0]

    def forward(self, x):
        x = centre_inputs(x, self.centre)
        n_rows, n_clusters = x.shape[0], self.groups.shape[0]
        scores = NF.centroid_scores(x, self.members)
        pooled = NF.group_logmeanexp(scores, self.groups, self.group_valid, self.gamma)
        margins = pooled.unsqueeze(2) - pooled.unsqueeze(1)
        logits = NF.masked_min(margins, self.others)
        label, explained = labels_and_explained(logits, self.cluster)
        index = explained.reshape(n_rows, 1, 1).expand(n_rows, 1, n_clusters)
        own_margins = margins.gather(1, index).squeeze(1)
        evidence = logits.gather(1, explained.unsqueeze(1))
        competitor = NF.softmin_shares(own_margins, self.others[explained], self.beta) * evidence

        if self.relevance_gamma != self.gamma:
            pooled = NF.group_logmeanexp(scores, self.groups, self.group_valid, self.relevance_gamma)
        shares = NF.group_shares(scores, pooled, self.member_group, self.counts, self.relevance_gamma)
        own = self.groups[explained]
        own_share = shares.gather(1, own).masked_fill(~self.group_valid[explained], 0.0)
        rival_share = shares * competitor.index_select(1, self.member_group)
        pair_margins = scores.gather(1, own).unsqueeze(2) - scores.unsqueeze(1)
        epsilon = member_epsilon(x.dtype, self.scale) if self.epsilon is None else self.epsilon
        relevance = NF.factored_pair_relevance(x, self.members, own, own_share, rival_share, pair_margins, epsilon)
        return label, logits, relevance
