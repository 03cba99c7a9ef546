"""Slow, obvious references for member-point models, written straight from docs/method.md, section 3.

Plain numpy in float64 with explicit loops: the weights w_ij = 2 (u_i - u_j), biases b_ij = |u_j|^2 - |u_i|^2,
midpoints m_ij = (u_i + u_j) / 2 and the log-mean-exp pools are spelled out per pair; nothing here shares code
with the library.
"""
import math

import numpy as np


def lme(values, gamma):
    """LME^gamma v = (1/gamma) log( (1/n) sum exp(gamma v) ), with a max-shift."""
    values = np.asarray(values, dtype=np.float64)
    top = (gamma * values).max()
    return (top + math.log(np.exp(gamma * values - top).mean())) / gamma


def softmax(values):
    values = np.asarray(values, dtype=np.float64)
    weights = np.exp(values - values.max())
    return weights / weights.sum()


def member_network_reference(x, members, labels, gamma, beta, cluster=None, epsilon=0.0, kappa=None, contrast=None,
                             only=None):
    """Logits f (K,), the explained cluster, its relevance (D,) and the relevance the stabiliser withholds.

    Forward: h_ijk = w_ij^T x + b_ij (i in C_c, j in C_k); h_jk = LME^{+gamma}_i h_ijk;
    h_k = LME^{-gamma}_j h_jk; f_c = min_{k != c} h_k.
    Relevance: R_k = softmin_k(beta h_k) f_c; R_jk = softmax_j(-kappa h_jk) R_k;
    R_ijk = softmax_i(kappa h_ijk) R_jk; R_d = sum_ijk w_ij,d (x_d - m_ij,d) / h_ijk R_ijk (kappa = gamma unless
    given).
    Pairs with |h| < epsilon (ties; h = 0 always) are left out: ``deficit`` is their relevance, so that
    sum_d R_d = f_c - deficit.
    ``contrast=k``: R_k = h_k, every other competitor 0 (the relevance of the margin of c against k);
    ``only=k``: competitor k's part alone (R_k as above, the others left out).
    """
    kappa = gamma if kappa is None else kappa
    x = np.asarray(x, dtype=np.float64)
    members = np.asarray(members, dtype=np.float64)
    labels = np.asarray(labels)
    n_clusters = labels.max() + 1
    index = [np.flatnonzero(labels == k) for k in range(n_clusters)]

    def margins(c, k):
        h = np.empty((len(index[c]), len(index[k])))
        for a, i in enumerate(index[c]):
            for b, j in enumerate(index[k]):
                w = 2.0 * (members[i] - members[j])
                bias = members[j] @ members[j] - members[i] @ members[i]
                h[a, b] = w @ x + bias
        return h

    def layers(c):
        competitors = [k for k in range(n_clusters) if k != c]
        pairs = {k: margins(c, k) for k in competitors}
        h_jk = {k: np.array([lme(pairs[k][:, b], gamma) for b in range(pairs[k].shape[1])]) for k in competitors}
        h_k = np.array([lme(h_jk[k], -gamma) for k in competitors])
        return competitors, pairs, h_jk, h_k

    logits = np.array([layers(c)[3].min() for c in range(n_clusters)])
    c = int(logits.argmax()) if cluster is None else cluster
    competitors, pairs, h_jk, h_k = layers(c)
    evidence = h_k.min()
    if math.isinf(beta):
        shares = (h_k == evidence).astype(np.float64)
        shares /= shares.sum()
    else:
        shares = softmax(-beta * h_k)
    relevance = np.zeros_like(x)
    deficit = 0.0
    if contrast is not None:
        shares = np.array([1.0 if k == contrast else 0.0 for k in competitors])
        evidence = h_k[competitors.index(contrast)] if contrast in competitors else 0.0
    for k, share in zip(competitors, shares):
        if only is not None and k != only:
            continue
        rival_shares = softmax(-kappa * h_jk[k])
        for b, j in enumerate(index[k]):
            own_shares = softmax(kappa * pairs[k][:, b])
            for a, i in enumerate(index[c]):
                pair_relevance = own_shares[a] * rival_shares[b] * share * evidence
                h = pairs[k][a, b]
                w = 2.0 * (members[i] - members[j])
                midpoint = (members[i] + members[j]) / 2.0
                if abs(h) < epsilon or h == 0.0:  # a tie: the midpoint rule cannot split it
                    deficit += pair_relevance
                    continue
                for d in range(len(x)):
                    relevance[d] += w[d] * (x[d] - midpoint[d]) / h * pair_relevance
    return logits, c, relevance, deficit


def mean_kernel(X, members, labels, gamma):
    """(N, K) mean Gaussian kernel to each cluster's members, in the log domain: log mean exp(-gamma d)."""
    X = np.asarray(X, dtype=np.float64)
    members = np.asarray(members, dtype=np.float64)
    labels = np.asarray(labels)
    n_clusters = labels.max() + 1
    out = np.empty((len(X), n_clusters))
    for n in range(len(X)):
        for k in range(n_clusters):
            distances = ((X[n] - members[labels == k]) ** 2).sum(1)
            out[n, k] = -gamma * lme(distances, -gamma)
    return out


def kernel_kmeans_rule(X, members, labels, gamma, assignment):
    """Assignment scores of kernel k-means (larger is better) and the per-cluster self-similarity Q_k.

    mean_kernel: log M_k(x); feature_space: 2 M_k(x) - Q_k, Q_k = mean_{i, j in C_k} k(u_i, u_j).
    """
    log_mean = mean_kernel(X, members, labels, gamma)
    if assignment == 'mean_kernel':
        return log_mean, None
    members = np.asarray(members, dtype=np.float64)
    n_clusters = labels.max() + 1
    similarity = np.empty(n_clusters)
    for k in range(n_clusters):
        inside = members[labels == k]
        kernel = np.exp(-gamma * ((inside[:, None] - inside[None]) ** 2).sum(-1))
        similarity[k] = kernel.mean()
    return 2.0 * np.exp(log_mean) - similarity, similarity
