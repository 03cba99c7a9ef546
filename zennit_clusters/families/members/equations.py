"""The equations of member-point networks (docs/method.md, section 3).

Gaussian kernel k-means and any labelled partition. Cluster k is
represented by its member points u_j, j in C_k (a padded index ``groups`` (K, L) into the member axis, with
a validity mask). With the member scores s = centroid_scores(x, u), the pair margins of the first layer are

    h[i, j] = |x - u_j|^2 - |x - u_i|^2 = s_i - s_j          (i in the explained cluster c, j in a competitor)

and the two log-mean-exp pools collapse: LME^{+gamma}_{i in C_c} h[i, j] = S_c - s_j and
LME^{-gamma}_{j in C_k} (S_c - s_j) = S_c - S_k, with S_k = LME^{+gamma}_{j in C_k} s_j. Since
|x - u|^2 = |x|^2 - s, the soft-min distance to cluster k is |x|^2 - S_k, and
exp(-gamma (|x|^2 - S_k)) = mean_{j in C_k} exp(-gamma |x - u_j|^2) is the mean Gaussian kernel to k's members.
"""
import math

import torch

from ...equations import midpoint_relevance

__all__ = ['tie_reciprocal', 'group_index', 'group_logmeanexp', 'group_shares', 'block_pair_relevance',
           'factored_pair_relevance']


def tie_reciprocal(h, epsilon, relative=0.0, magnitude=None):
    """``1 / h`` where ``|h| >= epsilon + relative * magnitude``, and 0 for ties (the others).

    The division of member-pair margins. A pair whose margin is zero (x exactly as far from an own as from a
    rival member, common on grid-valued data) has per-feature midpoint terms that sum to zero but are not
    zero: no finite factor splits its relevance, and any stabiliser ``h + epsilon`` would produce terms of
    size ``R / epsilon`` that depend on epsilon (hence on the dtype). Such ties carry no relevance instead
    (the explanation then falls short of f_c by exactly their share); every other pair conserves exactly.
    ``magnitude`` (``|s_i| + |s_j|`` of each pair, :func:`zennit_clusters.validation.tie_stabiliser`) makes the
    threshold follow the rounding error of ``h`` far from the members, where the scores grow with |x|.
    """
    threshold = epsilon if magnitude is None or relative == 0 else epsilon + relative * magnitude
    return torch.where(h.abs() >= threshold, h, math.inf).reciprocal()


def group_index(labels, n_groups):
    """Padded index of the members of each group: ``groups`` (K, L), ``valid`` (K, L), ``counts`` (K,).

    Members keep their order within a group; padding entries point at member 0 and are not valid.

    Parameters
    ----------
    labels : torch.LongTensor of shape (M,)
        Group of each member, in ``[0, n_groups)``.
    n_groups : int

    Returns
    -------
    groups : torch.LongTensor of shape (n_groups, L), L = max(1, largest group)
    valid : torch.BoolTensor of shape (n_groups, L)
    counts : torch.LongTensor of shape (n_groups,)
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    counts = torch.bincount(labels, minlength=n_groups)
    order = torch.argsort(labels, stable=True)
    width = max(1, int(counts.max())) if labels.numel() else 1
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(labels.numel()) - starts[labels[order]]
    groups = torch.zeros(n_groups, width, dtype=torch.long)
    valid = torch.zeros(n_groups, width, dtype=torch.bool)
    groups[labels[order], position] = order
    valid[labels[order], position] = True
    return groups, valid, counts


def group_logmeanexp(values, groups, valid, gamma):
    """Log-mean-exp pool over groups of the last axis: ``(1/gamma) log( mean_{m in group k} exp(gamma v_m) )``.

    ``gamma > 0`` is a soft maximum, ``gamma < 0`` a soft minimum; both tend to the mean as ``gamma -> 0``.
    Computed with a max-shift per group (``logsumexp``), so far-away groups do not underflow.

    Parameters
    ----------
    values : torch.Tensor of shape (..., M)
    groups, valid : torch.Tensor of shape (K, L)
        From :func:`group_index`.
    gamma : float
        Non-zero stiffness.

    Returns
    -------
    torch.Tensor of shape (..., K)
        ``-inf / gamma`` for an empty group.
    """
    n_groups, width = groups.shape
    pooled = (gamma * values).index_select(-1, groups.flatten())
    pooled = pooled.unflatten(-1, (n_groups, width)).masked_fill(~valid, -math.inf)
    counts = valid.sum(-1).clamp(min=1).to(values.dtype)
    return (torch.logsumexp(pooled, dim=-1) - counts.log()) / gamma


def group_shares(values, groups, valid, member_group, gamma):
    """Redistribution weights of a log-mean-exp pool: ``softmax(gamma v)`` within each member's group.

    This is the gradient of the pool, ``share_m = exp(gamma (v_m - LME_k)) / n_k`` for m in group k, computed as
    a softmax shifted by each group's largest ``gamma v``: every exponent is <= 0 and the group's largest share
    term is exactly 1, so the shares stay in [0, 1] and sum to one at any magnitude of v. (Shifting by the pooled
    value instead overflowed far from the members: its rounding error, times gamma, reached exp(4800) in
    float32 and gave NaN relevance where the logits were finite.)

    Parameters
    ----------
    values : torch.Tensor of shape (..., M)
    groups, valid : torch.Tensor of shape (K, L)
        From :func:`group_index`.
    member_group : torch.LongTensor of shape (M,)
        Group of each member.
    gamma : float

    Returns
    -------
    torch.Tensor of shape (..., M)
    """
    n_groups, width = groups.shape
    scaled = gamma * values
    padded = scaled.index_select(-1, groups.flatten()).unflatten(-1, (n_groups, width))
    largest = padded.masked_fill(~valid, -math.inf).amax(-1)
    terms = torch.exp(scaled - largest.index_select(-1, member_group))
    totals = terms.index_select(-1, groups.flatten()).unflatten(-1, (n_groups, width)).masked_fill(~valid, 0.0)
    return terms / totals.sum(-1).index_select(-1, member_group)


def block_pair_relevance(x, centres, own, valid, h, relevance, epsilon, relative=0.0, magnitude=None):
    """The midpoint rule for a block of pairs: own centres ``own[a]`` against every centre j.

    The equation of :func:`margin_relevance` (factors ``R_pair / h_pair``, ``+`` on the rival, ``-`` on
    the own centre, then :func:`midpoint_relevance`) for pairs laid out as ``(own[a], j)``, collected with
    two sums instead of a scatter per pair. Ties (``|h| < epsilon``) get no factor (:func:`tie_reciprocal`),
    so the two agree wherever ``|h| >= epsilon``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Centred inputs.
    centres : torch.Tensor of shape (M, D)
        Centred centres.
    own : torch.LongTensor of shape (A,) or (N, A)
        Own centre of each block row.
    valid : torch.BoolTensor broadcastable to (N, A, M)
        Pairs that exist.
    h, relevance : torch.Tensor of shape (N, A, M)
        Margins ``s_own - s_j`` and relevance of the pairs.
    epsilon, relative : float
        Tie threshold ``epsilon + relative * magnitude`` (:func:`tie_reciprocal`).
    magnitude : torch.Tensor broadcastable to (N, A, M), optional
        ``|s_own| + |s_j|`` of each pair.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    factors = (relevance * tie_reciprocal(h, epsilon, relative, magnitude)).masked_fill(~valid, 0.0)
    n_rows, n_own = h.shape[:2]
    weights = factors.sum(1).scatter_add(1, own.expand(n_rows, n_own), -factors.sum(2))
    return midpoint_relevance(x, centres, weights)


def factored_pair_relevance(x, centres, own, own_share, rival_share, h, epsilon, relative=0.0, magnitude=None):
    """:func:`block_pair_relevance` for pair relevance of rank one, ``R[a, j] = own_share[a] rival_share[j]``.

    This is the form the member-point network's relevance takes (the pools' shares do not depend on the
    other side of the pair), so the factors ``R / h`` never need to be stored: the two sums become two
    batched matrix-vector products with ``1 / h``. Pairs that do not exist must carry a zero share.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
    centres : torch.Tensor of shape (M, D)
    own : torch.LongTensor of shape (N, A)
    own_share : torch.Tensor of shape (N, A)
    rival_share : torch.Tensor of shape (N, M)
    h : torch.Tensor of shape (N, A, M)
    epsilon, relative : float
    magnitude : torch.Tensor of shape (N, A, M), optional
        The tie threshold, as in :func:`block_pair_relevance`.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    inverse = tie_reciprocal(h, epsilon, relative, magnitude)
    rival_weights = rival_share * torch.bmm(own_share.unsqueeze(1), inverse).squeeze(1)
    own_weights = -own_share * torch.bmm(inverse, rival_share.unsqueeze(2)).squeeze(2)
    weights = rival_weights.scatter_add(1, own, own_weights)
    return midpoint_relevance(x, centres, weights)
