"""Slow reference of NEON for a Gaussian mixture fitted after a projection, in the projection's input space.

Written from docs/pipelines.md ("Mixtures after a projection") and docs/method.md, section 4, in plain numpy and
scipy with explicit loops; nothing is shared with the library:

- the projection ``z = W (u - m)`` is built from the fitted transformer's documented attributes
  (``components_``, ``mean_``, ``explained_variance_`` when whitened) and checked against its ``transform``;
- component log-scores in z are ``log w_k + log N(z | mu_k, Sigma_k)`` by ``scipy.stats.multivariate_normal``
  with ``covariances_`` (not the precisions the library reads), and ``h_ck(u) = s_c(z(u)) - s_k(z(u))``;
- gradients in u by the chain rule, ``W^T grad_z h``; lifted means ``m + pinv(W) mu_k`` (numpy's pinv);
- tied: the root point of the linear ``h`` on the line through the lifted means; otherwise (full in u): a root
  of ``h`` on that line (bracketed where it changes sign between the means, else from the quadratic in t
  fitted through three points), and the integrated gradient from it by Gauss-Legendre quadrature.
"""
import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp
from scipy.stats import multivariate_normal


def projection_of(transformer, n_inputs):
    """``(W, m)`` of a fitted PCA / TruncatedSVD from its attributes, checked against its transform."""
    W = np.asarray(transformer.components_, dtype=np.float64).copy()
    m = np.asarray(getattr(transformer, 'mean_', np.zeros(n_inputs)), dtype=np.float64)
    if getattr(transformer, 'whiten', False):
        W = W / np.maximum(np.sqrt(transformer.explained_variance_), np.finfo(np.float64).eps)[:, None]
    probe = np.random.default_rng(1).normal(size=(5, n_inputs))
    names = getattr(transformer, 'feature_names_in_', None)
    if names is not None:  # fitted on a DataFrame: probe it as one
        import pandas as pd
        probe = pd.DataFrame(probe, columns=names)
    np.testing.assert_allclose(transformer.transform(probe), (np.asarray(probe) - m) @ W.T, rtol=1e-9, atol=1e-9)
    return W, m


def covariance_matrices(mixture):
    """(K, d, d) covariance of each component from ``covariances_``."""
    K, d = mixture.means_.shape
    cov = np.asarray(mixture.covariances_, dtype=np.float64)
    return {'full': lambda: cov, 'tied': lambda: np.repeat(cov[None], K, 0),
            'diag': lambda: np.stack([np.diag(c) for c in cov]),
            'spherical': lambda: np.stack([c * np.eye(d) for c in cov])}[mixture.covariance_type]()


def _line_root(h_on_line):
    """A root t of the quadratic ``h(t)`` nearest t = 1/2 (bracketed on [0, 1] where h changes sign), else the
    vertex; as docs/method.md, section 4, describes the full-covariance root."""
    if h_on_line(0.0) * h_on_line(1.0) < 0:
        return brentq(h_on_line, 0.0, 1.0, xtol=1e-15, rtol=1e-15)
    a2, a1, a0 = np.polyfit([0.0, 0.5, 1.0], [h_on_line(0.0), h_on_line(0.5), h_on_line(1.0)], 2)
    roots = [r.real for r in np.roots([a2, a1, a0]) if abs(r.imag) < 1e-12] if abs(a2) > 0 else (
        [-a0 / a1] if a1 != 0 else [])
    if roots:
        return min(roots, key=lambda r: abs(r - 0.5))
    return -a1 / (2 * a2) if a2 != 0 else 0.5


def projected_mixture_reference(scaled, transformer, mixture, beta=1.0, cluster=None):
    """Relevance (N, D) on the projection's input columns u, constant (N,) and evidence (N,), row by row.

    Parameters
    ----------
    scaled : ndarray of shape (N, D)
        The projection's input u (the user's data after the one-to-one scalers, which pass relevance unchanged).
    transformer : fitted PCA or TruncatedSVD
    mixture : fitted GaussianMixture
    """
    U = np.asarray(scaled, dtype=np.float64)
    n_inputs = U.shape[1]
    W, m = projection_of(transformer, n_inputs)
    means, covs = mixture.means_, covariance_matrices(mixture)
    precs = np.linalg.inv(covs)
    log_w = np.log(mixture.weights_)
    K = len(means)
    lifted = m + means @ np.linalg.pinv(W).T
    densities = [multivariate_normal(means[k], covs[k]) for k in range(K)]

    def z_of(u):
        return W @ (u - m)

    def score(k, u):
        return log_w[k] + densities[k].logpdf(z_of(u))

    def h(c, k, u):
        return score(c, u) - score(k, u)

    def grad_h(c, k, u):
        z = z_of(u)
        return W.T @ (-precs[c] @ (z - means[c]) + precs[k] @ (z - means[k]))

    nodes, weights = np.polynomial.legendre.leggauss(8)
    relevance, constant, evidence = np.zeros_like(U), np.zeros(len(U)), np.zeros(len(U))
    for n, u in enumerate(U):
        scores = np.array([score(k, u) for k in range(K)])
        c = int(np.argmax(scores)) if cluster is None else cluster
        others = [k for k in range(K) if k != c]
        hs = np.array([h(c, k, u) for k in others])
        f = -logsumexp(-hs)
        evidence[n] = f
        shares = (hs == hs.min()).astype(float) if math.isinf(beta) else np.exp(-beta * (hs - hs.min()))
        shares /= shares.sum()
        for k, hk, share in zip(others, hs, shares):
            a = share * f / hk
            delta = lifted[c] - lifted[k]
            if mixture.covariance_type == 'tied':
                dz = means[c] - means[k]
                x0 = (lifted[c] + lifted[k]) / 2 - (log_w[c] - log_w[k]) / (dz @ precs[0] @ dz) * delta
                assert abs(h(c, k, x0)) < 1e-7 * max(1.0, abs(hk))  # the root is on the boundary
                g = grad_h(c, k, u)  # h is linear: one gradient everywhere
                for i in range(n_inputs):
                    relevance[n, i] += a * g[i] * (u[i] - x0[i])
            else:
                t = _line_root(lambda t: h(c, k, lifted[k] + t * delta))
                x0 = lifted[k] + t * delta
                g = sum(wq / 2 * grad_h(c, k, x0 + (tq + 1) / 2 * (u - x0)) for tq, wq in zip(nodes, weights))
                for i in range(n_inputs):
                    relevance[n, i] += a * (u[i] - x0[i]) * g[i]
                constant[n] += a * h(c, k, x0)
    return relevance, constant, evidence
