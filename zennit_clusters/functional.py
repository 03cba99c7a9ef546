"""The NEON equations for centroid models, as plain tensor functions.

Every equation of NEON.md sections 1 and 2 lives here once. The layers (:mod:`zennit_clusters.layers`),
the Zennit rules (:mod:`zennit_clusters.rules`) and the closed-form explainer
(:mod:`zennit_clusters.explain`, which the ONNX exporter writes out) all call these functions, so the
three paths agree by construction and the tests tie them together numerically.

A centroid model is described by a *margin graph*: centres ``mu`` of shape (M, D) and, for each
cluster c, up to L pairs ``(own[c, l], rival[c, l])`` of centre indices. The pairwise margin

    h[c, l](x) = |x - mu[rival[c, l]]|^2 - |x - mu[own[c, l]]|^2

is linear in x, and the cluster evidence is ``f_c(x) = min_l h[c, l](x)`` over the valid pairs.
For k-means, M = K, ``own[c, :] = c`` and the rivals are all other centroids; for bisecting k-means,
the pairs are the (path node, sibling) splits on the way down the tree to leaf c.
"""
import math

import torch
import torch.nn.functional as F

__all__ = [
    'centroid_scores',
    'pair_margins',
    'masked_min',
    'softmin_shares',
    'sign_stabilize',
    'midpoint_relevance',
    'margin_relevance',
]


def centroid_scores(x, centres):
    """Scores ``s_m = 2 mu_m^T x - |mu_m|^2``, so that ``|x - mu_m|^2 = |x|^2 - s_m``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Centred inputs.
    centres : torch.Tensor of shape (M, D)
        Centred centres, same dtype and device as ``x``.

    Returns
    -------
    torch.Tensor of shape (N, M)
    """
    # F.linear, not x @ W: a one-row matmul can stall on two busy cores, and cdist does not export.
    return F.linear(x, 2.0 * centres, -(centres * centres).sum(1))


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
    """Minimum over the last axis of the entries marked ``valid`` (the min-pool of NEON.md)."""
    return h.masked_fill(~valid, math.inf).amin(-1)


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


def sign_stabilize(h, epsilon):
    """``h + epsilon * sign(h)`` with ``sign(0) = +1``: never zero, never flips the sign."""
    return h + epsilon * torch.where(h >= 0, 1.0, -1.0).to(h.dtype)


def midpoint_relevance(x, centres, weights):
    """Per-feature relevance ``R_i = sum_m g_m (x_i - mu_mi)^2`` for centre weights g summing to zero.

    This is the midpoint rule of NEON.md section 2 after collecting, for every centre, the factors
    ``a = R_pair / h_pair`` of the pairs it takes part in: ``+a`` as a rival, ``-a`` as the own centre.
    Expanded, it is two (N, M) x (M, D) matrix products; the ``x_i^2 sum_m g_m`` term vanishes.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Centred inputs.
    centres : torch.Tensor of shape (M, D)
        Centred centres.
    weights : torch.Tensor of shape (N, M)
        The collected factors g (each row sums to zero).

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    return weights @ (centres * centres) - 2.0 * x * (weights @ centres)


def margin_relevance(x, centres, own, rival, valid, h, relevance, epsilon):
    """The midpoint rule: relevance of pairwise margins redistributed to the input features.

    ``R_i = sum_pairs w_pair,i (x_i - m_pair,i) / h_pair * R_pair`` with the midpoint root
    ``m = (mu_own + mu_rival) / 2``. Because ``sum_i w_i (x_i - m_i) = h``, the rule is conservative:
    ``sum_i R_i = sum_pairs R_pair`` (up to the stabiliser on pairs with ``h = 0``).

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Centred inputs.
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
        Stabiliser of the division by ``h``.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    factors = (relevance / sign_stabilize(h, epsilon)).masked_fill(~valid, 0.0)
    n_rows, n_pairs = h.shape
    own = own.expand(n_rows, n_pairs)
    rival = rival.expand(n_rows, n_pairs)
    weights = torch.zeros(n_rows, centres.shape[0], dtype=h.dtype, device=h.device)
    weights = weights.scatter_add(1, rival, factors).scatter_add(1, own, -factors)
    return midpoint_relevance(x, centres, weights)
