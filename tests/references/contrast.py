"""Slow references for contrastive explanations, per-competitor parts, directions and reference root points,
written straight from docs/method.md ("Contrastive explanations", "Direction", "Reference points").

Plain numpy in float64, one pair and one feature at a time; nothing here shares code with the library. A pair is
``(mu_own, mu_rival)`` with the linear margin ``h(x) = w^T (x - m)``, ``w = 2 (mu_own - mu_rival)``,
``m = (mu_own + mu_rival) / 2``.
"""
import math

import numpy as np


def root_point(x, own, rival, reference=None):
    """The root of one pair: the midpoint; with a reference r, the crossing of the line x -> r with the
    boundary when r is on the boundary or beyond it, else the boundary point nearest to r in the max-norm
    (r moved by the same step along sign(w) in every feature w depends on)."""
    w = 2.0 * (own - rival)
    m = (own + rival) / 2.0
    if reference is None:
        return m
    h_x = float(w @ (x - m))
    h_r = float(w @ (reference - m))
    if h_r == 0 or (h_x != 0 and (h_r < 0) != (h_x < 0)):
        t = h_x / (h_x - h_r) if h_x != h_r else 0.0
        return x + t * (reference - x)
    step = np.array([1.0 if w_i > 0 else -1.0 if w_i < 0 else 0.0 for w_i in w])
    norm = float(np.abs(w).sum())
    return reference - (h_r / norm) * step if norm > 0 else reference


def pair_contributions(x, own, rival, reference=None):
    """Per-feature contributions w_i (x_i - rho_i) of one pair's margin, and x - rho."""
    w = 2.0 * (own - rival)
    rho = root_point(x, own, rival, reference)
    return np.array([w[i] * (x[i] - rho[i]) for i in range(len(x))]), x - rho


def soft_shares(h, beta):
    evidence = h.min()
    if math.isinf(beta):
        shares = (h == evidence).astype(np.float64)
    else:
        shares = np.exp(-beta * (h - evidence))
    return shares / shares.sum()


def pair_parts(x, pairs, beta, reference=None):
    """(P, D) part of each pair in the explanation of one point, and (P, D) offsets x - rho."""
    parts, offsets = [], []
    h = np.array([pair_contributions(x, own, rival)[0].sum() for own, rival in pairs])
    evidence = h.min()
    for (own, rival), share in zip(pairs, soft_shares(h, beta)):
        contributions, offset = pair_contributions(x, own, rival, reference)
        parts.append(share * evidence / contributions.sum() * contributions)
        offsets.append(offset)
    return np.array(parts), np.array(offsets)


def direction_of(parts, offsets):
    """sign(sum over pairs of |part_i| sign(x_i - rho_i)), feature by feature."""
    out = np.zeros(parts.shape[1], dtype=np.int8)
    for i in range(parts.shape[1]):
        total = sum(abs(parts[p, i]) * np.sign(offsets[p, i]) for p in range(len(parts)))
        out[i] = np.sign(total)
    return out


def bisecting_competitors(estimator, cluster):
    """For each pair on leaf c's path (root down), the leaf labels under its sibling: the clusters that pair
    separates c from."""
    def leaves(node):
        if node.left is None:
            return [node.label]
        return leaves(node.left) + leaves(node.right)

    def find(node, path):
        if node.left is None:
            return path if node.label == cluster else None
        for child, sibling in ((node.left, node.right), (node.right, node.left)):
            found = find(child, path + [leaves(sibling)])
            if found is not None:
                return found
        return None

    return find(estimator._bisecting_tree, [])
