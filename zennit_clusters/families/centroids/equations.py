"""The equations of centroid models beyond the shared ones (docs/method.md, sections 1 and 2).

A centroid model is described by a *margin graph*: centres ``mu`` of shape (M, D) and, for each cluster c, up to
L pairs ``(own[c, l], rival[c, l])`` of centre indices. The pairwise margin

    h[c, l](x) = |x - mu[rival[c, l]]|^2 - |x - mu[own[c, l]]|^2

is linear in x, and the cluster evidence is ``f_c(x) = min_l h[c, l](x)`` over the valid pairs. For k-means,
M = K, ``own[c, :] = c`` and the rivals are all other centroids (the *flat* layout, which needs only the two
largest scores per row: :func:`top_two`, :func:`flat_logits`, :func:`flat_margin_relevance`); for bisecting
k-means, the pairs are the (path node, sibling) splits on the way down the tree to leaf c.
"""
import math

import torch
import torch.nn.functional as F

from ...compiled import centred_addcmul
from ...equations import midpoint_relevance, pair_factors, pair_weights

__all__ = ['margin_relevance', 'margin_weights', 'metric_pair_relevance', 'metric_flat_relevance', 'metric_tables', 'top_two', 'flat_logits', 'flat_margin_relevance', 'flat_margin_weights',
           'competitor_columns']


def margin_relevance(x, centres, own, rival, valid, h, relevance, epsilon, origin=None, out=None, relative=0.0,
                     magnitude=None, directions=None):
    """The midpoint rule: relevance of pairwise margins redistributed to the input features.

    ``R_i = sum_pairs w_pair,i (x_i - m_pair,i) / h_pair * R_pair`` with the midpoint root
    ``m = (mu_own + mu_rival) / 2``. Because ``sum_i w_i (x_i - m_i) = h``, the rule is conservative:
    ``sum_i R_i = sum_pairs R_pair`` (up to the stabiliser on pairs with ``h = 0``).

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Inputs: centred, or centred here on ``origin``.
    centres : torch.Tensor of shape (M, D)
        Centred centres.
    own, rival : torch.LongTensor of shape (P,) or (N, P)
        Centre indices of each pair.
    valid : torch.BoolTensor of shape (P,) or (N, P)
        Pairs that exist (padding pairs carry no relevance).
    h : torch.Tensor of shape (N, P)
        Margins of the pairs, from :func:`pair_margins`.
    relevance : torch.Tensor of shape (N, P)
        Relevance of each pair.
    epsilon : float
        Absolute stabiliser of the division by ``h``.
    origin, out : torch.Tensor, optional
        As in :func:`midpoint_relevance`.
    relative : float
        Relative stabiliser, times ``magnitude`` (:func:`zennit_clusters.validation.sign_stabiliser`).
    magnitude : torch.Tensor of shape (N, P), optional
        ``|s_own| + |s_rival|`` of each pair.
    directions : torch.Tensor of shape (M, D), optional
        The metric's ``a_m`` (:class:`.PairwiseMargin`); the rule is then :func:`metric_pair_relevance`.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    if directions is not None:
        factors = pair_factors(h, relevance, valid, epsilon, relative, magnitude)
        return metric_pair_relevance(x, centres, directions, factors, own, rival, origin, out)
    weights = margin_weights(own, rival, valid, h, relevance, epsilon, centres.shape[0], relative, magnitude)
    return midpoint_relevance(x, centres, weights, origin, out)


def metric_pair_relevance(x, centres, directions, factors, own, rival, origin=None, out=None):
    """The midpoint rule of margins under a metric M (``a_m = M mu_m``, docs/pipelines.md).

    Pair p's margin is ``h_p = 2 (a_own - a_rival)^T x - a_own^T mu_own + a_rival^T mu_rival``, linear in x, and
    the midpoint ``m_p = (mu_own + mu_rival) / 2`` lies on its boundary (M is symmetric), so

        R_i = sum_p f_p 2 (a_own - a_rival)_i (x_i - m_pi),     sum_i R_i = sum_p f_p h_p.

    Collected per centre (``g`` of :func:`pair_weights`, ``+f`` on the rival, ``-f`` on the own centre),
    ``R = g.(a * mu) - 2 x * (g.a) - sum_p f_p (a_own * mu_rival - a_rival * mu_own)``; the last (cross) term
    vanishes for the Euclidean metric (a = mu), which leaves :func:`midpoint_relevance`.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Inputs: centred, or centred here on ``origin``.
    centres, directions : torch.Tensor of shape (M, D)
        Centred centres ``mu`` and their directions ``a``.
    factors : torch.Tensor of shape (N, P)
        ``f_p = R_p / h_p`` (zero for pairs that do not exist).
    own, rival : torch.LongTensor of shape (P,) or (N, P)
    origin, out : torch.Tensor, optional
        As in :func:`midpoint_relevance`.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    if origin is not None:
        x = x - origin
    weights = pair_weights(factors, own, rival, centres.shape[0])
    if own.dim() == 1:  # the same pairs for every row (the Zennit rule): one (P, D) table of cross terms
        cross = factors @ (directions[own] * centres[rival] - directions[rival] * centres[own])
    else:  # pairs chosen per row (a bisection path): one (N, D) step per pair
        cross = torch.zeros_like(x)
        for p in range(own.shape[1]):
            o, r = own[:, p], rival[:, p]
            cross += factors[:, p:p + 1] * (directions[o] * centres[r] - directions[r] * centres[o])
    relevance = weights @ (directions * centres) - 2.0 * x * (weights @ directions) - cross
    return relevance if out is None else out.copy_(relevance)


def metric_tables(centres, directions):
    """The (M, M, D) tables ``T_c = a * mu + mu_c * a - a_c * mu`` of :func:`metric_flat_relevance`, one per own
    centre c, so that ``R = g.T_c - 2 x * (g.a)`` (the form the compiled k-means row step takes, :mod:`.row_step`)."""
    product = directions * centres
    return (product.unsqueeze(0) + centres.unsqueeze(1) * directions.unsqueeze(0)
            - directions.unsqueeze(1) * centres.unsqueeze(0)).contiguous()


def metric_flat_relevance(x, centres, directions, weights, explained, origin=None, out=None):
    """:func:`metric_pair_relevance` for the flat k-means layout: every pair of row n is ``(c_n, k)``.

    With one own centre c per row the cross term is ``a_c * (g.mu) - mu_c * (g.a)`` (``g`` of
    :func:`flat_margin_weights`, whose column c is ``-sum_k f_k``), so

        R = g.(a * mu) - 2 (x - mu_c / 2) * (g.a) - a_c * (g.mu):

    the fused midpoint product of :func:`midpoint_relevance` on the rows shifted by half their own centre, and one
    more (N, M) x (M, D) product; no per-pair work.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Inputs: centred, or centred here on ``origin``.
    centres, directions : torch.Tensor of shape (M, D)
    weights : torch.Tensor of shape (N, M)
        From :func:`flat_margin_weights`.
    explained : torch.LongTensor of shape (N,)
        Each row's own centre c.
    origin, out : torch.Tensor, optional

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    shift = 0.5 * centres if origin is None else 0.5 * centres + origin  # (M, D): the centring folded in
    relevance = centred_addcmul(weights, directions * centres, directions, x - shift[explained], None, -2.0, out)
    # F.linear on the (D, M) transpose: MKL's fast path for a small inner dimension (see centred_addcmul)
    return relevance.addcmul_(directions[explained], F.linear(weights, centres.t().contiguous()), value=-1.0)


def margin_weights(own, rival, valid, h, relevance, epsilon, n_centres, relative=0.0, magnitude=None):
    """The centre weights g of :func:`margin_relevance` (``R_i = sum_m g_m (x_i - mu_mi)^2``): the factors
    ``R_pair / h_pair``, ``+`` on the rival and ``-`` on the own centre of each pair. Shape (N, n_centres); each
    row sums to zero. The sparse explainer (:mod:`.sparse`) applies them to the terms of a sparse matrix."""
    factors = pair_factors(h, relevance, valid, epsilon, relative, magnitude)
    return pair_weights(factors, own, rival, n_centres)



def top_two(scores):
    """Each row's argmax (the first of exact ties), largest score ``t1`` and second largest ``t2`` (``t2 = t1``
    on a tie), with two reductions and no sort (onnxruntime's TopK costs more than all three together).

    Returns
    -------
    best : torch.LongTensor of shape (N,)
    first, second : torch.Tensor of shape (N, 1)
    """
    best = scores.argmax(1)
    first = scores.amax(1, keepdim=True)
    second = scores.scatter(1, best.unsqueeze(1), -math.inf).amax(1, keepdim=True)
    return best, first, second



def flat_logits(scores, first, second):
    """k-means evidence ``f_c = s_c - max_{k != c} s_k`` of every cluster, from the two largest scores.

    This is the min-pool of the flat margin graph (every cluster against every other centroid),
    ``f_c = min_{k != c} h_ck`` with ``h_ck = s_c - s_k``: ``f_c = s_c - t1`` for every c but the argmax,
    whose evidence is ``t1 - t2``. Written as ``(s - t1) + relu(s - t2)``: the second term is ``t1 - t2`` for
    the argmax and exactly 0 elsewhere (``s_c <= t2``), so every entry is rounded once, as
    ``s_c - max_{k != c} s_k`` is, and the evidence of the argmax is exactly ``first - second``. Exact ties of
    the top score give evidence 0 to each tied cluster; the argmax of the scores is that of the logits.

    Parameters
    ----------
    scores : torch.Tensor of shape (N, M)
        Output of :func:`centroid_scores`, M >= 2.
    first, second : torch.Tensor of shape (N, 1)
        From :func:`top_two`.

    Returns
    -------
    torch.Tensor of shape (N, M)
    """
    return (scores - first) + torch.relu(scores - second)



def flat_margin_relevance(x, centres, is_own, h, relevance, epsilon, origin=None, out=None, relative=0.0,
                          magnitude=None):
    """:func:`margin_relevance` for the flat k-means layout: one own centre c per row against every centre.

    The pairs are ``(c, k)`` for every centre k, one column each; the column of c itself (``is_own``) is not a
    pair. The factors are collected as in :func:`pair_weights` (``+a_k`` on centre k, ``-sum_k a_k`` on c),
    with a row sum instead of two scatters.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Inputs: centred, or centred here on ``origin``.
    centres : torch.Tensor of shape (M, D)
        Centred centres.
    is_own : torch.BoolTensor of shape (N, M) or (M,)
        True at each row's own centre c.
    h, relevance : torch.Tensor of shape (N, M)
        Margins ``s_c - s_k`` and relevance of the pairs (ignored in the own column).
    epsilon, relative, magnitude
        The stabiliser, as in :func:`margin_relevance`.
    origin, out : torch.Tensor, optional
        As in :func:`midpoint_relevance`.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    weights = flat_margin_weights(is_own, h, relevance, epsilon, relative, magnitude)
    return midpoint_relevance(x, centres, weights, origin, out)


def flat_margin_weights(is_own, h, relevance, epsilon, relative=0.0, magnitude=None):
    """The centre weights g of :func:`flat_margin_relevance`, shape (N, M), each row summing to zero."""
    factors = pair_factors(h, relevance, ~is_own, epsilon, relative, magnitude)
    return factors - is_own.to(factors.dtype) * factors.sum(1, keepdim=True)
def competitor_columns(own, rival, valid, leaves):
    """Which pair of cluster c separates it from cluster k, and how many clusters that pair stands for.

    Pair l of c separates c from k when its rival centre lies on k's own path (``own[k]``, or k's leaf): for
    k-means the rival is k's centroid; for bisecting k-means it is the sibling at the level where the paths of c
    and k part, which stands for every leaf below it. Its margin is then the contrast ``h_ck`` of the pair.

    Parameters
    ----------
    own, rival : torch.LongTensor of shape (K, L)
    valid : torch.BoolTensor of shape (K, L)
    leaves : torch.LongTensor of shape (K,)

    Returns
    -------
    column : torch.LongTensor of shape (K, K)
        The pair index l for (c, k), -1 for k == c or where no pair separates them.
    share : torch.Tensor of shape (K, K)
        ``1 / (number of clusters behind that pair)`` (0 where column is -1): the competitor's share of the
        pair's relevance, equal for clusters whose margins against c are the same function.
    """
    n_clusters, n_pairs = own.shape
    on_path = torch.zeros(n_clusters, int(max(own.max(), rival.max(), leaves.max())) + 1, dtype=torch.bool)
    for k in range(n_clusters):
        on_path[k, own[k][valid[k]]] = True
        on_path[k, leaves[k]] = True
    # hits[c, k, l]: pair l of c has its rival on k's path
    hits = on_path[:, rival].permute(1, 0, 2) & valid.unsqueeze(1)
    hits &= ~torch.eye(n_clusters, dtype=torch.bool).unsqueeze(2)
    found = hits.any(2)
    column = torch.where(found, hits.to(torch.int8).argmax(2), torch.full((n_clusters, n_clusters), -1))
    counts = torch.zeros(n_clusters, n_pairs, dtype=torch.float64)
    for c in range(n_clusters):
        for k in range(n_clusters):
            if column[c, k] >= 0:
                counts[c, column[c, k]] += 1
    share = torch.where(found, 1.0 / counts.gather(1, column.clamp(min=0)).clamp(min=1), torch.zeros(()))
    share = share.to(torch.float64)
    return column, share
