"""Gaussian mixtures: speed of the closed-form explainer, and faithfulness against exact Shapley values.

    python benchmarks/bench_families_mixture.py            # speed: N = 100,000, D = 64, K = 10, float32
    python benchmarks/bench_families_mixture.py --shapley  # NEON vs exact Shapley values (iris, wine, ...)

Both print Markdown tables. The speed run times ``explain`` (label, log-odds and relevance, chunked as
``explain`` does) for each covariance type on synthetic data from a fitted mixture, next to the mixture's
own ``predict_proba`` for scale. The Shapley run enumerates all 2^D coalitions of the explained log-odds
``f_c`` with the data mean as the baseline, and reports, per covariance type, the median over points of
the Pearson correlation between NEON's feature relevances and the Shapley values, and the mean overlap of
the top-3 features by absolute value. For full covariances it also scores the rule the library rejected
(the quadratic-form split used for diagonal covariances), and for diagonal and spherical ones the
full-covariance rule (root on the line through the means, exact integrated gradient), for comparison.
"""
import argparse
import itertools
import math
import time

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from zennit_clusters import explain, explain_with_constant, neuralize
from zennit_clusters import equations as NF
from zennit_clusters.families.mixture.converters import mixture_model, mixture_parameters
from zennit_clusters.families.mixture.equations import quadratic_relevance

COVARIANCE_TYPES = ('full', 'tied', 'diag', 'spherical')


def bench_speed(n_samples=100_000, n_features=64, n_clusters=10, repeats=3, seed=0):
    """Seconds per ``explain`` call on N x D float32 data, one row per covariance type."""
    torch.set_num_threads(2)
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n_clusters, n_features))
    X = (centres[rng.integers(n_clusters, size=n_samples)] + rng.normal(size=(n_samples, n_features)))
    X32 = X.astype(np.float32)
    rows = []
    for covariance_type in COVARIANCE_TYPES:
        gmm = GaussianMixture(n_clusters, covariance_type=covariance_type, max_iter=20, random_state=seed)
        gmm.fit(X[:5000])
        model = neuralize(gmm)
        explain(model, X32[:1000])  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            relevance, labels, _ = explain(model, X32, return_logits=True)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        predicted = gmm.predict_proba(X).argmax(1)
        sklearn_time = time.perf_counter() - start
        agree = float((labels == predicted).mean())
        rows.append((covariance_type, min(times), sklearn_time, n_samples / min(times), agree))
    print(f'explain() on N = {n_samples:,}, D = {n_features}, K = {n_clusters}, float32, '
          f'{torch.get_num_threads()} threads (best of {repeats})\n')
    print('| covariance | explain s | rows/s | sklearn predict_proba s (float64) | labels = predict |')
    print('|---|---|---|---|---|')
    for covariance_type, seconds, sklearn_time, rate, agree in rows:
        print(f'| {covariance_type} | {seconds:.3f} | {rate:,.0f} | {sklearn_time:.3f} | {agree:.5f} |')
    return rows


# ----------------------------------------------------------------------------------------------------------
# exact Shapley values
# ----------------------------------------------------------------------------------------------------------

def shapley_exact(value, x, baseline):
    """Exact Shapley values of ``value`` ((M, D) -> (M,)) at one point x, removed features at ``baseline``."""
    n_features = x.shape[0]
    masks = np.array(list(itertools.product([0, 1], repeat=n_features)), dtype=bool)[:, ::-1]  # bit i = col i
    points = np.where(masks, x, baseline)
    v = value(points)
    codes = masks @ (1 << np.arange(n_features))
    v_by_code = np.empty_like(v)
    v_by_code[codes] = v
    sizes = masks.sum(1)
    weights = np.array([math.factorial(s) * math.factorial(n_features - s - 1) / math.factorial(n_features)
                        if s < n_features else 0.0 for s in range(n_features + 1)])
    phi = np.zeros(n_features)
    for i in range(n_features):
        without = ~masks[:, i]
        phi[i] = np.sum(weights[sizes[without]] * (v_by_code[codes[without] | (1 << i)] - v_by_code[codes[without]]))
    return phi


def agreement(relevance, shapley, top=3):
    """Median Pearson r over rows and mean top-k overlap by absolute value."""
    correlations, overlaps = [], []
    for r, s in zip(relevance, shapley):
        if r.std() > 0 and s.std() > 0:
            correlations.append(np.corrcoef(r, s)[0, 1])
        k = min(top, len(r))
        overlaps.append(len(set(np.argsort(-np.abs(r))[:k]) & set(np.argsort(-np.abs(s))[:k])) / k)
    return float(np.median(correlations)), float(np.mean(overlaps))


def quadratic_split_relevance(model, X, labels, beta=1.0):
    """The rejected full-covariance rule: split each Mahalanobis form by its own Shapley values.

    ``R_i = sum_k a_k (phi_k,i - phi_c,i) / 2`` with ``phi_m,i = (x - mu_m)_i [P_m (x - mu_m)]_i`` (the rule
    the library uses for diagonal covariances, applied to full ones); the log-ratio of weights and
    determinants is a separate constant.
    """
    ratio = model.ratio
    x = torch.from_numpy(X) - ratio.origin
    h = ratio.log_ratios(x).reshape(len(X), model.n_clusters, model.n_clusters - 1)
    f = NF.soft_min(h, ratio.valid, 1.0)
    labels = torch.from_numpy(labels)
    index = labels.reshape(-1, 1, 1).expand(-1, 1, model.n_clusters - 1)
    margins = h.gather(1, index).squeeze(1)
    shares = NF.softmin_shares(margins, ratio.valid[labels], beta)
    factors = shares * f.gather(1, labels.unsqueeze(1)) / margins
    weights = NF.pair_weights(factors, ratio.own[labels], ratio.rival[labels], model.n_clusters)
    return quadratic_relevance(x, ratio.means, ratio.precisions, weights).numpy()


def as_full(gmm):
    """The neuralized model of a diagonal or spherical mixture written with full (diagonal) precisions."""
    means, precisions, biases = mixture_parameters(gmm)
    if precisions.ndim == 1:
        precisions = np.repeat(precisions[:, None], means.shape[1], 1)
    return mixture_model(means, np.stack([np.diag(p) for p in precisions]), biases, 'full')


def bench_shapley(max_points=200, seed=0):
    """NEON against exact Shapley values (data mean as the baseline) on scaled real data."""
    datasets = {
        'iris (D=4, K=3)': (load_iris().data, 3),
        'wine (D=13, K=3)': (load_wine().data, 3),
        'breast cancer, first 10 features (D=10, K=2)': (load_breast_cancer().data[:, :10], 2),
    }
    print('NEON (beta = 1, features only, constant excluded) against exact Shapley values of the explained '
          'log-odds f_c, baseline = data mean; median Pearson r over points, mean top-3 overlap (|value|).\n')
    print('| data | model | median r | top-3 overlap | sum R / (f(x) - f(mean)) median |')
    print('|---|---|---|---|---|')
    for name, (data, n_clusters) in datasets.items():
        X = StandardScaler().fit_transform(data)
        rng = np.random.default_rng(seed)
        X_explained = X[rng.permutation(len(X))[:max_points]]
        baseline = X.mean(0)
        entries = []
        for covariance_type in COVARIANCE_TYPES:
            gmm = GaussianMixture(n_clusters, covariance_type=covariance_type, random_state=seed).fit(X)
            model = neuralize(gmm)
            relevance, constant, labels, logits = explain_with_constant(model, X_explained, return_logits=True)

            def value(points, c):
                with torch.no_grad():
                    return model(torch.from_numpy(points))[:, c].numpy()

            shapley = np.stack([shapley_exact(lambda p: value(p, c), x, baseline)
                                for x, c in zip(X_explained, labels)])
            entries.append((f'GMM {covariance_type} (library rule)', relevance, shapley))
            if covariance_type == 'full':
                alt = quadratic_split_relevance(model, X_explained, labels)
                entries.append(('GMM full, rejected: quadratic-form split', alt, shapley))
            elif covariance_type in ('diag', 'spherical'):
                alt = explain(as_full(gmm), X_explained)
                entries.append((f'GMM {covariance_type}, for comparison: the full-covariance rule', alt, shapley))
        kmeans = KMeans(n_clusters, n_init=10, random_state=seed).fit(X)
        model = neuralize(kmeans, X)
        relevance, labels, _ = explain(model, X_explained, return_logits=True)

        def kvalue(points, c):
            with torch.no_grad():
                return model(torch.from_numpy(points))[:, c].numpy()

        shapley = np.stack([shapley_exact(lambda p: kvalue(p, c), x, baseline)
                            for x, c in zip(X_explained, labels)])
        entries.append(('k-means (beta = 1 / mean f_c), for reference', relevance, shapley))
        for label, relevance, shapley in entries:
            r, overlap = agreement(relevance, shapley)
            ratio = np.median(relevance.sum(1) / np.where(shapley.sum(1) == 0, np.nan, shapley.sum(1)))
            print(f'| {name} | {label} | {r:.3f} | {overlap:.3f} | {ratio:.3f} |')


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shapley', action='store_true', help='compare with exact Shapley values instead')
    parser.add_argument('-n', type=int, default=100_000, help='rows for the speed run')
    args = parser.parse_args()
    if args.shapley:
        bench_shapley()
    else:
        bench_speed(n_samples=args.n)
