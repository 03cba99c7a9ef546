"""Slow references for the direction of mixtures and member networks, written straight from docs/method.md
("Direction"): d_i = sign(sum over pairs of |part_p,i| sign(x_i - rho_p,i)).

Plain numpy in float64, one point, one pair and one feature at a time, from the fitted scikit-learn estimator's
own parameters (means_, covariances_, weights_) or the member points; nothing here shares code with the library.
Each function returns the signed sum before its sign and the sum of the magnitudes |part_p,i|, so that a test
can leave out ties (features where the sum is within rounding of zero).
"""
import math

import numpy as np

from .members import lme, softmax


def _log_density(x, mean, covariance):
    diff = x - mean
    sign, logdet = np.linalg.slogdet(covariance)
    return -0.5 * (diff @ np.linalg.solve(covariance, diff)) - 0.5 * logdet - 0.5 * len(x) * math.log(2 * math.pi)


def _full_covariances(gmm):
    d = gmm.means_.shape[1]
    k = gmm.n_components
    c = gmm.covariances_
    if gmm.covariance_type == 'full':
        return [c[j] for j in range(k)]
    if gmm.covariance_type == 'tied':
        return [c] * k
    if gmm.covariance_type == 'diag':
        return [np.diag(c[j]) for j in range(k)]
    return [np.eye(d) * c[j] for j in range(k)]


def _shares(h, beta):
    evidence = -math.log(np.exp(-(h - h.min())).sum()) + h.min()  # posterior log-odds, the soft-min with 1
    if math.isinf(beta):
        shares = (h == h.min()).astype(np.float64)
        return shares / shares.sum(), evidence
    return softmax(-beta * h), evidence


def _line_root(x_of_t, h_of):
    """The root of h along x(t) = mu_k + t (mu_c - mu_k) nearest t = 1/2 (the vertex without a real root):
    h restricted to the line is a quadratic, fitted exactly from three points."""
    ts = np.array([0.0, 0.5, 1.0])
    a2, a1, a0 = np.polyfit(ts, [h_of(x_of_t(t)) for t in ts], 2)
    if abs(a2) < 1e-14 * (abs(a1) + abs(a0) + 1.0):
        return x_of_t(-a0 / a1 if a1 != 0 else 0.5)
    roots = np.roots([a2, a1, a0])
    real = [r.real for r in roots if abs(r.imag) < 1e-12]
    t = min(real, key=lambda r: abs(r - 0.5)) if real else -a1 / (2 * a2)
    return x_of_t(t)


def mixture_direction(gmm, x, beta, cluster=None, contrast=None):
    """(signed sum (D,), magnitude (D,)) of one point's direction for a fitted GaussianMixture.

    Pair (c, k) has the log-ratio h = log pi_c N(x|c) - log pi_k N(x|k) and the factor a = R_k / h
    (R_k = soft-min share x f_c; with ``contrast`` a = 1 on that pair alone). Its part of R_i and root, by
    covariance type: tied, a w_i (x_i - x0_i) with w = P (mu_c - mu_k) and x0 the root on the line through the
    means; diagonal and spherical, a t_i(x_i) with the one-feature term t_i = 1/2 [p_k (x_i - mu_k)^2 -
    p_c (x_i - mu_c)^2] and its root between the means; full, a (x_i - x0_i) g_i with g the gradient of h at
    (x + x0) / 2 and x0 the root on the line through the means.
    """
    x = np.asarray(x, dtype=np.float64)
    covariances = _full_covariances(gmm)
    means, weights = gmm.means_, gmm.weights_
    k_total, d = means.shape

    def score(j, z):
        return math.log(weights[j]) + _log_density(z, means[j], covariances[j])

    logits = []
    for c in range(k_total):
        h = np.array([score(c, x) - score(k, x) for k in range(k_total) if k != c])
        logits.append(_shares(h, beta)[1])
    c = int(np.argmax(logits)) if cluster is None else cluster
    competitors = [k for k in range(k_total) if k != c]
    h = np.array([score(c, x) - score(k, x) for k in competitors])
    shares, evidence = _shares(h, beta)
    signed, magnitude = np.zeros(d), np.zeros(d)
    for k, share, h_ck in zip(competitors, shares, h):
        if contrast is not None:
            if k != contrast:
                continue
            a = 1.0
        else:
            a = share * evidence / h_ck
        if gmm.covariance_type in ('tied', 'full'):
            x0 = _line_root(lambda t: means[k] + t * (means[c] - means[k]), lambda z: score(c, z) - score(k, z))
            z = (x + x0) / 2
            gradient = -np.linalg.solve(covariances[c], z - means[c]) + np.linalg.solve(covariances[k], z - means[k])
        for i in range(d):
            if gmm.covariance_type in ('diag', 'spherical'):
                p_c, p_k = 1.0 / covariances[c][i, i], 1.0 / covariances[k][i, i]
                term = 0.5 * (p_k * (x[i] - means[k, i]) ** 2 - p_c * (x[i] - means[c, i]) ** 2)
                root = (math.sqrt(p_c) * means[c, i] + math.sqrt(p_k) * means[k, i]) / (math.sqrt(p_c) + math.sqrt(p_k))
                part, side = a * term, np.sign(x[i] - root)
            else:
                part, side = a * (x[i] - x0[i]) * gradient[i], np.sign(x[i] - x0[i])
            signed[i] += abs(part) * side
            magnitude[i] += abs(part)
    return signed, magnitude


def member_direction(x, members, labels, gamma, beta, kappa=None, cluster=None, contrast=None):
    """(signed sum (D,), magnitude (D,)) of one point's direction for a member network (no noise rule).

    Member pair (i, j), i in C_c, j in C_k: margin h_ij = |x - u_j|^2 - |x - u_i|^2, relevance
    R_ij = q_i p_j R_k (the pools' softmax shares with kappa), part of R_d = R_ij / h_ij w_ij,d (x_d - m_ij,d)
    with w = 2 (u_i - u_j) and the midpoint m; the pair's root is m.
    """
    kappa = gamma if kappa is None else kappa
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    k_total = labels.max() + 1
    index = [np.flatnonzero(labels == k) for k in range(k_total)]
    s = np.array([2.0 * u @ x - u @ u for u in members])
    pooled = np.array([lme(s[index[k]], gamma) for k in range(k_total)])
    logits = [min(pooled[c] - pooled[k] for k in range(k_total) if k != c) for c in range(k_total)]
    c = int(np.argmax(logits)) if cluster is None else cluster
    competitors = [k for k in range(k_total) if k != c]
    h_k = np.array([pooled[c] - pooled[k] for k in competitors])
    if contrast is not None:
        relevance = np.array([h if k == contrast else 0.0 for k, h in zip(competitors, h_k)])
    elif math.isinf(beta):
        shares = (h_k == h_k.min()).astype(np.float64)
        relevance = shares / shares.sum() * h_k.min()
    else:
        relevance = softmax(-beta * h_k) * h_k.min()
    own_shares = softmax(kappa * s[index[c]])
    signed, magnitude = np.zeros(len(x)), np.zeros(len(x))
    for k, r_k in zip(competitors, relevance):
        rival_shares = softmax(kappa * s[index[k]])
        for a, i in enumerate(index[c]):
            for b, j in enumerate(index[k]):
                h = s[i] - s[j]
                if h == 0.0:
                    continue
                factor = own_shares[a] * rival_shares[b] * r_k / h
                for dim in range(len(x)):
                    midpoint = (members[i, dim] + members[j, dim]) / 2.0
                    part = factor * 2.0 * (members[i, dim] - members[j, dim]) * (x[dim] - midpoint)
                    signed[dim] += abs(part) * np.sign(x[dim] - midpoint)
                    magnitude[dim] += abs(part)
    return signed, magnitude


def assert_direction_matches(codes, signed, magnitude, tolerance=1e-9):
    """codes == sign(signed) on every feature that is not a tie; a tie is |signed| <= tolerance x magnitude
    (the sum is within rounding of zero, or no pair carries the feature). Returns the number of features compared."""
    codes = np.asarray(codes)
    clear = np.abs(signed) > tolerance * magnitude
    np.testing.assert_array_equal(codes[clear], np.sign(signed[clear]).astype(codes.dtype))
    return int(clear.sum())
