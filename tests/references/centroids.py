"""Slow, obvious reference implementations written straight from docs/method.md, for the tests.

Plain numpy in float64 with explicit loops and the weights, biases and midpoints of docs/method.md, section 2
spelled out: nothing here shares code with the library.
"""
import math

import numpy as np


def kmeans_pairs(centroids, cluster):
    """(own, rival) centroid pairs of k-means cluster c: c against every other centroid."""
    return [(centroids[cluster], centroids[k]) for k in range(len(centroids)) if k != cluster]


def bisecting_pairs(estimator, cluster):
    """(child on path, sibling) centre pairs from the root of sklearn's bisection tree down to leaf c."""
    offset = getattr(estimator, '_X_mean', 0.0)

    def find(node, path):
        if node.left is None:
            return path if node.label == cluster else None
        for child, sibling in ((node.left, node.right), (node.right, node.left)):
            found = find(child, path + [(child.center + offset, sibling.center + offset)])
            if found is not None:
                return found
        return None

    return find(estimator._bisecting_tree, [])


def margin(x, own, rival):
    """h = w^T x + b with w = 2 (mu_own - mu_rival), b = |mu_rival|^2 - |mu_own|^2, as h = w^T (x - m).

    The identity with the midpoint m = (mu_own + mu_rival) / 2 (docs/method.md, section 1) avoids the
    cancellation of w^T x + b far from the origin, where b alone is of order |mu|^2.
    """
    w = 2.0 * (own - rival)
    midpoint = (own + rival) / 2.0
    return float(w @ (x - midpoint))


def neon_reference(x, pairs, beta, epsilon=0.0):
    """Evidence f_c and the NEON relevance of one point, from the margin pairs of its cluster.

    Soft-min redistribution over the pairs, then the midpoint rule on each pair's linear margin.
    """
    x = np.asarray(x, dtype=np.float64)
    h = np.array([margin(x, own, rival) for own, rival in pairs])
    evidence = h.min()
    if math.isinf(beta):
        shares = (h == evidence).astype(np.float64)
    else:
        shares = np.exp(-beta * (h - evidence))
    shares /= shares.sum()
    relevance = np.zeros_like(x)
    for (own, rival), h_pair, share in zip(pairs, h, shares):
        w = 2.0 * (own - rival)
        midpoint = (own + rival) / 2.0
        denominator = h_pair + epsilon * (1.0 if h_pair >= 0 else -1.0)
        for i in range(len(x)):
            relevance[i] += w[i] * (x[i] - midpoint[i]) / denominator * share * evidence
    return evidence, relevance


def nearest_centroid(X, centroids):
    """Labels and the gap between the best and second-best squared distance (direct differences)."""
    distances = ((X[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
    order = np.sort(distances, axis=1)
    return distances.argmin(1), order[:, 1] - order[:, 0], distances


def lifted_pairs(pairs, components):
    """Margin pairs of k-means on ``z = P x`` (P = components, orthonormal rows) written in term space: the
    centres ``mu P``. ``w = 2 (mu_c - mu_k) P`` and the midpoint ``(mu_c + mu_k) P / 2`` give the same margin
    as in z space, ``w^T (x - m) = 2 (mu_c - mu_k)^T (P x - (mu_c + mu_k) / 2)``."""
    return [(own @ components, rival @ components) for own, rival in pairs]


def split_present_absent(stored, relevance):
    """The relevance of the entries stored in a sparse row (boolean mask ``stored``) and the total of the others."""
    return relevance[stored], float(relevance[~stored].sum())


def whitened_sites(centres, pca):
    """Input-space sites of z-space centres after ``PCA(whiten=True)``: ``b = mean + C^T diag(sqrt(ev)) mu``, the
    points the PCA maps onto the centres, and the metric ``M = C^T diag(1 / ev) C`` (D x D) of its z distances."""
    C = np.asarray(pca.components_, dtype=np.float64)
    ev = np.asarray(pca.explained_variance_, dtype=np.float64)
    sites = pca.mean_ + (np.asarray(centres) * np.sqrt(ev)) @ C
    metric = C.T @ np.diag(1.0 / ev) @ C
    return sites, metric


def metric_neon_reference(x, pairs, metric, beta):
    """Evidence f_c and NEON relevance of one point when the margins are metric distances (whitened PCA).

    ``h = |x - b_rival|_M^2 - |x - b_own|_M^2`` as two quadratic forms, the soft-min shares of the margins, and
    the midpoint rule with the margin's gradient ``w = 2 M (b_own - b_rival)`` and root ``(b_own + b_rival) / 2``:
    ``R_i = sum_pairs w_i (x_i - m_i) / h * share * f_c``.
    """
    x = np.asarray(x, dtype=np.float64)
    h = np.array([(x - rival) @ metric @ (x - rival) - (x - own) @ metric @ (x - own) for own, rival in pairs])
    evidence = h.min()
    shares = (h == evidence).astype(np.float64) if math.isinf(beta) else np.exp(-beta * (h - evidence))
    shares /= shares.sum()
    relevance = np.zeros_like(x)
    for (own, rival), h_pair, share in zip(pairs, h, shares):
        w = 2.0 * metric @ (own - rival)
        midpoint = (own + rival) / 2.0
        for i in range(len(x)):
            relevance[i] += w[i] * (x[i] - midpoint[i]) / h_pair * share * evidence
    return evidence, relevance
