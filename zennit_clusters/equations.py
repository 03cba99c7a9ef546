"""The NEON equations that every model family uses, as plain tensor functions (docs/method.md, section 2).

A family's network ends in pairwise margins ``h`` (how much nearer x is to the explained cluster's side of a
pair than to the other side) pooled by a (soft) minimum. Relevance goes back through the pool with the soft-min
shares (:func:`softmin_shares`), then from each pair to the features by the midpoint rule: factors
``a = R_pair / h_pair`` (:func:`pair_factors`, stabilised by :func:`sign_stabilize`), collected per centre
(:func:`pair_weights`) and applied in two matrix products (:func:`midpoint_relevance`). The family folders hold
the equations that only one family needs; the layers, the Zennit rules and the closed-form explainers call
these functions, so the paths agree by construction and the tests tie them together numerically.

Scores ``s_m = 2 mu_m^T x - |mu_m|^2`` (:func:`centroid_scores`) turn squared distances into linear functions:
``|x - mu_rival|^2 - |x - mu_own|^2 = s_own - s_rival`` (:func:`pair_margins`).
"""
import math

import torch

from .compiled import centred_addcmul, centred_linear

__all__ = ['centroid_scores', 'score_weights', 'pair_margins', 'masked_min', 'soft_min', 'softmin_shares',
           'sign_stabilize', 'pair_factors', 'pair_weights', 'midpoint_relevance', 'root_contributions',
           'grouped_direction']


def centroid_scores(x, centres, origin=None, directions=None):
    """Scores ``s_m = 2 mu_m^T x - |mu_m|^2``, so that ``|x - mu_m|^2 = |x|^2 - s_m``.

    With ``directions`` ``a_m = M mu_m`` of a (positive semi-definite) metric M, the scores of the metric
    distances: ``s_m = 2 a_m^T x - a_m^T mu_m``, so that ``|x - mu_m|_M^2 = x^T M x - s_m`` (k-means after a
    whitened PCA, docs/pipelines.md).

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Inputs: centred, or centred here on ``origin``.
    centres : torch.Tensor of shape (M, D)
        Centred centres, same dtype and device as ``x``.
    origin : torch.Tensor of shape (D,), optional
        The origin of the centred frame, subtracted from ``x`` first (fused with the product on CPU).
    directions : torch.Tensor of shape (M, D), optional
        ``a_m = M mu_m`` in the centred frame; None for the Euclidean metric (``a = mu``).

    Returns
    -------
    torch.Tensor of shape (N, M)
    """
    return centred_linear(x, origin, *score_weights(centres, directions))



def score_weights(centres, directions=None):
    """Weight ``2 a`` and bias ``-a^T mu`` of the linear scores of :func:`centroid_scores` (``a = mu`` without
    directions: ``2 mu`` and ``-|mu|^2``)."""
    if directions is None:
        return (2.0 * centres).contiguous(), -(centres * centres).sum(1)
    return (2.0 * directions).contiguous(), -(directions * centres).sum(1)



def pair_margins(scores, own, rival):
    """Pairwise margins ``h = |x - mu_rival|^2 - |x - mu_own|^2 = s_own - s_rival``.

    Parameters
    ----------
    scores : torch.Tensor of shape (N, M)
        Output of :func:`centroid_scores`.
    own, rival : torch.LongTensor of shape (P,) or (N, P)
        Centre indices of each pair: the same P pairs for every row, or P pairs chosen per row (as
        when each row explains its own cluster).

    Returns
    -------
    torch.Tensor of shape (N, P)
    """
    if own.dim() == 1:
        return scores[:, own] - scores[:, rival]
    return scores.gather(1, own) - scores.gather(1, rival)



def masked_min(h, valid):
    """Minimum over the last axis of the entries marked ``valid`` (the min-pool of docs/method.md)."""
    return h.masked_fill(~valid, math.inf).amin(-1)



def soft_min(h, valid, beta=1.0):
    """Soft-min pool ``f = -(1/beta) log sum_valid exp(-beta h)`` over the last axis.

    With ``beta = 1`` and ``h`` the pairwise log-ratios of a mixture, this is exactly the posterior log-odds
    ``log p(c|x) / (1 - p(c|x))``.

    Parameters
    ----------
    h : torch.Tensor of shape (..., L)
    valid : torch.BoolTensor broadcastable to ``h``
    beta : float
        Stiffness > 0 (finite).

    Returns
    -------
    torch.Tensor of shape (...)
    """
    return -torch.logsumexp((-beta * h).masked_fill(~valid, -math.inf), dim=-1) / beta



def softmin_shares(h, valid, beta):
    """Soft-min redistribution weights ``p_k = exp(-beta h_k) / sum_k' exp(-beta h_k')`` over valid pairs.

    Parameters
    ----------
    h : torch.Tensor of shape (..., L)
        Margins of one cluster against its competitors.
    valid : torch.BoolTensor broadcastable to ``h``
        Which of the L entries are real competitors.
    beta : float
        Stiffness, ``>= 0``. ``0`` splits evenly (one-vs-all); ``math.inf`` gives everything to the
        nearest competitor(s), split evenly among exact ties (the limit of the soft-min).

    Returns
    -------
    torch.Tensor of the shape of ``h``, summing to one over the last axis.
    """
    if math.isinf(beta):
        nearest = (h == masked_min(h, valid).unsqueeze(-1)) & valid
        nearest = nearest.to(h.dtype)
        return nearest / nearest.sum(-1, keepdim=True)
    logits = (-beta * h).masked_fill(~valid, -math.inf)
    return torch.softmax(logits, dim=-1)



def sign_stabilize(h, epsilon, relative=0.0, magnitude=None):
    """``h + (epsilon + relative * magnitude) * sign(h)`` with ``sign(0) = +1``: never flips the sign.

    Parameters
    ----------
    h : torch.Tensor
    epsilon : float
        Absolute stabiliser.
    relative : float
        Relative stabiliser, times ``magnitude`` (``|s_own| + |s_rival|`` of each margin,
        :func:`zennit_clusters.validation.sign_stabiliser`); ignored without a magnitude.
    magnitude : torch.Tensor broadcastable to ``h``, optional
    """
    sign = torch.where(h >= 0, 1.0, -1.0).to(h.dtype)
    if magnitude is None or relative == 0:
        return h + epsilon * sign
    return h + (epsilon + relative * magnitude) * sign



def pair_factors(h, relevance, valid, epsilon, relative=0.0, magnitude=None):
    """Factors ``a = R_pair / (h + epsilon sign(h))`` of the midpoint rule, zero for pairs that do not exist.

    Parameters
    ----------
    h, relevance : torch.Tensor of shape (N, P)
        Margins and relevance of the pairs.
    valid : torch.BoolTensor broadcastable to (N, P)
        Pairs that exist.
    epsilon : float
        Absolute stabiliser.
    relative : float
        Relative stabiliser, times ``magnitude`` (see :func:`sign_stabilize`).
    magnitude : torch.Tensor broadcastable to (N, P), optional
        ``|s_own| + |s_rival|`` of each pair.

    Returns
    -------
    torch.Tensor of shape (N, P)
    """
    return (relevance / sign_stabilize(h, epsilon, relative, magnitude)).masked_fill(~valid, 0.0)



def pair_weights(factors, own, rival, n_centres):
    """Collect per-pair factors into per-component weights: ``+a`` on the rival, ``-a`` on the own component.

    Parameters
    ----------
    factors : torch.Tensor of shape (N, P)
    own, rival : torch.LongTensor of shape (P,) or (N, P)
    n_centres : int

    Returns
    -------
    torch.Tensor of shape (N, n_centres)
    """
    n_rows, n_pairs = factors.shape
    own = own.expand(n_rows, n_pairs)
    rival = rival.expand(n_rows, n_pairs)
    weights = torch.zeros(n_rows, n_centres, dtype=factors.dtype, device=factors.device)
    return weights.scatter_add(1, rival, factors).scatter_add(1, own, -factors)



def midpoint_relevance(x, centres, weights, origin=None, out=None):
    """Per-feature relevance ``R_i = sum_m g_m (x_i - mu_mi)^2`` for centre weights g summing to zero.

    This is the midpoint rule of docs/method.md, section 2 after collecting, for every centre, the factors
    ``a = R_pair / h_pair`` of the pairs it takes part in: ``+a`` as a rival, ``-a`` as the own centre.
    Expanded, it is two (N, M) x (M, D) matrix products; the ``x_i^2 sum_m g_m`` term vanishes.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Inputs: centred, or centred here on ``origin``.
    centres : torch.Tensor of shape (M, D)
        Centred centres.
    weights : torch.Tensor of shape (N, M)
        The collected factors g (each row sums to zero).
    origin : torch.Tensor of shape (D,), optional
        The origin of the centred frame, subtracted from ``x`` first.
    out : torch.Tensor of shape (N, D), optional
        Where to write the relevance.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    return centred_addcmul(weights, centres * centres, centres, x, origin, value=-2.0, out=out)


def root_contributions(x, weight, midpoint, reference=None):
    """Per-feature contributions ``C_i = w_i (x_i - rho_i)`` of linear margins ``h = w^T (x - m)`` at a root
    ``rho`` on their boundary ``h = 0``, so that ``sum_i C_i = h(x)`` (docs/method.md, "Reference points").

    Without a reference the root is the midpoint ``m`` (the midpoint rule). With a reference point r, the root
    is where the line from x toward r crosses the boundary, ``rho = x + t (r - x)`` with
    ``t = h(x) / (h(x) - h(r))``, when r lies on the boundary or on its other side (a root on the segment);
    when r lies strictly on x's side (no root on the segment), it is the nearest boundary point to r in the
    max-norm, ``rho = r - h(r) sign(w) / |w|_1`` (every feature that the margin depends on moves by the same
    step). Both roots lie on the boundary, so the rule is conservative; both are ``m`` when r is ``m``, and they
    meet where ``h(r) = 0``. The max-norm step keeps the order of ``w_i (x_i - r_i)`` (the effect of moving
    feature i to r_i) among the features with the same sign of w, where the Euclidean projection would add
    ``h(r) w_i^2 / |w|^2`` and favour the features with large weights whatever x is (measured: ABPC under zero
    removal 0.59 with the projection, 0.79 with the step, on breast cancer, K = 2).

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
    weight, midpoint : torch.Tensor of shape (N, P, D) or (P, D)
        ``w`` and ``m`` of each of the P margins.
    reference : torch.Tensor of shape (N, D), optional

    Returns
    -------
    contributions, offset : torch.Tensor of shape (N, P, D)
        ``C = w * (x - rho)`` and ``x - rho``.
    """
    x = x.unsqueeze(1)
    offset = x - midpoint
    if reference is None:
        return weight * offset, offset
    r = reference.unsqueeze(1)
    h_x = (weight * offset).sum(-1, keepdim=True)
    h_r = (weight * (r - midpoint)).sum(-1, keepdim=True)
    crosses = (h_r == 0) | ((h_r < 0) != (h_x < 0)) & (h_x != 0)
    gap = h_x - h_r
    line = (h_x / torch.where(gap == 0, torch.ones_like(gap), gap)) * (x - r)
    step = torch.sign(weight)
    norm = (weight * step).sum(-1, keepdim=True)
    projection = (x - r) + h_r * step / torch.where(norm == 0, torch.ones_like(norm), norm)
    offset = torch.where(crosses, line, projection)
    return weight * offset, offset


def grouped_direction(x, explained, factors, weight, root):
    """Direction codes ``d_i = sign(sum_l f_l |w_l,i| (x_i - rho_l,i))`` of linear pair margins, rows grouped by
    their explained cluster (docs/method.md, "Direction").

    With a pair's part ``a_l w_l,i (x_i - rho_l,i)`` of R_i, ``|part| sign(x_i - rho_l,i) = |a_l| |w_l,i|
    (x_i - rho_l,i)``: the sum over pairs is ``x_i (f @ |W_c|)_i - (f @ (|W_c| * rho_c))_i`` with ``f = |a|``, two
    (N_c, L) x (L, D) products per cluster c, never an (N, L, D) tensor. 0 exactly where every |w_l,i| is 0.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
    explained : torch.LongTensor of shape (N,)
        Each row's explained cluster c (its pairs are ``weight[c]``, ``root[c]``).
    factors : torch.Tensor of shape (N, L)
        ``|a_l|`` of each row's pairs (0 for pairs that do not exist or carry nothing).
    weight : torch.Tensor of shape (K, L, D)
        ``|w_l|`` of the pairs of each cluster (any positive multiple: only signs come out).
    root : torch.Tensor of shape (K, L, D)
        The root point of each pair.

    Returns
    -------
    torch.Tensor of shape (N, D), int8
    """
    # rows sorted by cluster once: each cluster's rows are one slice (no mask or gather per cluster)
    n_features = x.shape[1]
    stacked = torch.cat([weight, weight * root], 2)  # (K, L, 2 D)
    order = torch.argsort(explained, stable=True)
    counts = torch.bincount(explained, minlength=weight.shape[0]).tolist()
    x, factors = x.index_select(0, order), factors.index_select(0, order)
    total = torch.empty_like(x)
    start = 0
    for c, count in enumerate(counts):
        if count:
            rows = slice(start, start + count)
            both = factors[rows] @ stacked[c]  # (n_c, 2 D): f @ |W_c| and f @ (|W_c| * rho_c) in one product
            total[rows] = torch.addcmul(-both[:, n_features:], x[rows], both[:, :n_features])
            start += count
    codes = torch.empty(x.shape, dtype=torch.int8, device=x.device)
    codes[order] = torch.sign(total).to(torch.int8)
    return codes
