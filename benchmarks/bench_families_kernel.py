"""Member-point networks (kernel k-means, labelled partitions): explain throughput, and agreement vs the cap.

    python benchmarks/bench_families_kernel.py              # explain() throughput on N = 100,000 rows
    python benchmarks/bench_families_kernel.py --n 20000    # fewer rows
    python benchmarks/bench_families_kernel.py --threads 1  # one torch thread
    python benchmarks/bench_families_kernel.py --agreement  # network argmax vs labels_, per member cap
    python benchmarks/bench_families_kernel.py --spread     # sum |R| / f_c per pool redistribution stiffness

All print Markdown tables.

Speed: member-point models are fitted on the 1797 digits (64 pixels scaled to [0, 1]); the N query rows are digits
with Gaussian noise (sd 0.05), float32. ``explain`` computes label, logits and relevance in one pass, in
chunks it sizes itself. Its cost per row is (members of the explained cluster) x (all members): the table
gives that product, so other sizes can be extrapolated (throughput is inversely proportional to it). A
second table times the deep heads: DEC's Student-t head alone (the k-means closed form on 10-d codes) and a
bias-free MLP encoder with a k-means head explained through Zennit (EpsilonGammaBox + the cluster rules).

Spread: kernel k-means fitted with its default gamma ('scale'); the relevance is computed with the pools'
redistribution stiffness (``model.relevance_gamma``) at the forward gamma (the pools' own gradient, the
default) and at the member-spacing heuristic ``member_gamma`` (the default gamma of a partition). Reported: the median and 90th percentile over the
training points of sum |R| / f_c (1.00 when all relevance is positive; large when big positive and negative
terms cancel), the share of negative relevances, and the largest conservation error.

Agreement: for labelled partitions the network *defines* a rule for new points from at most ``max_members``
random members per cluster; the table gives, per estimator and cap, the share of non-noise training points
whose network label equals ``labels_`` (computed with ``model.evidence``, the same logits as ``explain``).
"""
import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.cluster import DBSCAN, HDBSCAN, OPTICS, AgglomerativeClustering, KMeans, SpectralClustering
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.preprocessing import StandardScaler

from zennit_clusters import KernelKMeans, explain, neuralize, neuralize_partition


def standardized(loader):
    return StandardScaler().fit_transform(loader().data)


# estimator, data: the cases of tests/test_partition.py
AGREEMENT_CASES = [
    ('DBSCAN(eps=0.8)', lambda: DBSCAN(eps=0.8, min_samples=5), 'iris'),
    ('DBSCAN(eps=4)', lambda: DBSCAN(eps=4.0, min_samples=5), 'digits'),
    ('HDBSCAN(15)', lambda: HDBSCAN(min_cluster_size=15, copy=True), 'digits'),
    ('OPTICS(5)', lambda: OPTICS(min_samples=5, xi=0.05), 'wine'),
    ('Agglomerative(10, ward)', lambda: AgglomerativeClustering(10), 'digits'),
    ('Agglomerative(3, average)', lambda: AgglomerativeClustering(3, linkage='average'), 'wine'),
    ('Spectral(10, kNN)', lambda: SpectralClustering(10, affinity='nearest_neighbors', random_state=0), 'digits'),
    ('Spectral(2, kNN)', lambda: SpectralClustering(2, affinity='nearest_neighbors', random_state=0),
     'breast_cancer'),
]
CAPS = (8, 16, 32, 64, 128, 256, None)


def bench_agreement():
    data = {'iris': standardized(load_iris), 'wine': standardized(load_wine),
            'breast_cancer': standardized(load_breast_cancer), 'digits': standardized(load_digits)}
    print('Agreement of the network label with labels_ on the non-noise training points (data standardized; '
          'gamma and relevance stiffness by the default heuristic; members drawn with random_state=0)\n')
    print('| estimator | data | clusters | non-noise | ' + ' | '.join(f'cap {c}' if c else 'all' for c in CAPS) + ' |')
    print('|---|---|---|---|' + '---|' * len(CAPS))
    for name, make, dataset in AGREEMENT_CASES:
        X = data[dataset]
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            labels = make().fit(X).labels_
        kept = labels >= 0
        cells = []
        for cap in CAPS:
            model = neuralize_partition(X, labels, max_members=cap)
            predicted = np.asarray(model.classes_)[model.evidence(torch.as_tensor(X[kept])).argmax(1).numpy()]
            cells.append(f'{(predicted == labels[kept]).mean():.3f}')
        print(f'| {name} | {dataset} | {len(np.unique(labels[kept]))} | {kept.sum()} | ' + ' | '.join(cells) + ' |')

    rng = np.random.default_rng(0)
    digits = load_digits().data
    subsample = digits[np.sort(rng.choice(len(digits), 400, replace=False))] / 16.0
    print('\nKernel k-means: agreement of the network label with predict() on the training points (exact for '
          "'mean_kernel'; the network drops the self-similarity of 'feature_space')\n")
    print('| data | mean_kernel | feature_space |')
    print('|---|---|---|')
    for name, X, k in (('iris', data['iris'], 3), ('wine', data['wine'], 3), ('digits / 16 (400 points)', subsample, 10)):
        cells = []
        for assignment in ('mean_kernel', 'feature_space'):
            estimator = KernelKMeans(k, assignment=assignment, n_init=3, random_state=0).fit(X)
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                model = neuralize(estimator)
            labels = model.evidence(torch.as_tensor(X)).argmax(1).numpy()
            cells.append(f'{(labels == estimator.predict(X)).mean():.3f}')
        print(f'| {name} | ' + ' | '.join(cells) + ' |')


def bench_spread(seed=0):
    from zennit_clusters.families.members.converters import member_gamma
    rng = np.random.default_rng(seed)
    digits = load_digits().data
    rows = np.sort(rng.choice(len(digits), 400, replace=False))
    cases = [('digits / 16 (400 points)', digits[rows] / 16.0, 10), ('iris, standardized', standardized(load_iris), 3),
             ('wine, standardized', standardized(load_wine), 3)]
    print('Kernel k-means (gamma = scale): spread of the relevance per pool redistribution stiffness kappa\n')
    print('| data | gamma | kappa | median sum abs(R) / f_c | 90th percentile | share of R < 0 | '
          'max abs(sum R - f_c) / f_c |')
    print('|---|---|---|---|---|---|---|')
    for name, X, k in cases:
        model = neuralize(KernelKMeans(k, n_init=3, random_state=0).fit(X))
        assert model.relevance_gamma == model.gamma
        for label, kappa in (('gamma (own gradient, default)', model.gamma),
                             ('member_gamma', member_gamma(model.members))):
            model.relevance_gamma = kappa
            relevance, labels, logits = explain(model, X, return_logits=True)
            evidence = logits[np.arange(len(X)), labels]
            spread = np.abs(relevance).sum(1) / evidence
            error = np.abs(relevance.sum(1) - evidence) / evidence
            print(f'| {name} | {model.gamma:.3g} | {label}: {kappa:.3g} | {np.median(spread):.2f} | '
                  f'{np.percentile(spread, 90):.2f} | {(relevance < 0).mean():.2f} | {error.max():.0e} |')
        # for scale: k-means on the same data, NEON with its default beta
        kmeans = neuralize(KMeans(k, n_init=3, random_state=0).fit(X), X=X)
        relevance, labels, logits = explain(kmeans, X, return_logits=True)
        evidence = logits[np.arange(len(X)), labels]
        spread = np.abs(relevance).sum(1) / evidence
        error = np.abs(relevance.sum(1) - evidence) / evidence
        print(f'| {name} | k-means, default beta | – | {np.median(spread):.2f} | {np.percentile(spread, 90):.2f} | '
              f'{(relevance < 0).mean():.2f} | {error.max():.0e} |')


def bench_speed(n_rows, repeats=1, threads=2, seed=0):
    torch.set_num_threads(threads)
    digits = load_digits()
    X = digits.data / 16.0
    rng = np.random.default_rng(seed)
    queries = (X[rng.integers(len(X), size=n_rows)] + rng.normal(scale=0.05, size=(n_rows, 64))).astype(np.float32)
    labels = AgglomerativeClustering(10).fit_predict(X)
    dbscan = DBSCAN(eps=0.9, min_samples=5).fit(X)

    models = []
    for size in (300, 600):
        rows = np.sort(rng.choice(len(X), size, replace=False))
        estimator = KernelKMeans(10, n_init=3, random_state=0).fit(X[rows])
        models.append((f'KernelKMeans(10), {size} training points (exact)', neuralize(estimator)))
    for cap in (16, 32, 64):
        models.append((f'Agglomerative(10), cap {cap}', neuralize_partition(X, labels, max_members=cap)))
    models.append((f'DBSCAN(eps=0.9), cap 32', neuralize_partition(X, dbscan.labels_, max_members=32)))

    print(f'explain() on N = {n_rows:,} noisy digits (D = 64), float32, {torch.get_num_threads()} threads, '
          f'best of {repeats}\n')
    print('| model | K | members M | largest cluster L | pairs per row (L x M) | explain s | rows/s | '
          'max abs(sum R - f_c) / f_c (float64, 1,000 rows) |')
    print('|---|---|---|---|---|---|---|---|')
    for name, model in models:
        n_members = model.members.shape[0]
        largest = int(model.own_pool.groups.shape[1])
        explain(model, queries[:200])  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            explain(model, queries)
            times.append(time.perf_counter() - start)
        check = queries[:1000].astype(np.float64)
        relevance, assigned, logits = explain(model, check, return_logits=True)
        evidence = logits[np.arange(len(check)), assigned]
        error = np.abs(relevance.sum(1) - evidence) / np.abs(evidence)
        print(f'| {name} | {model.n_clusters} | {n_members} | {largest} | {largest * n_members:,} | '
              f'{min(times):.1f} | {n_rows / min(times):,.0f} | {error.max():.1e} |')
    bench_deep(queries, repeats)


def bench_deep(queries, repeats=1, batch=10_000):
    """Deep heads: a DEC head alone (closed form, on codes) and an encoder + k-means head through Zennit."""
    from zennit.composites import EpsilonGammaBox
    from zennit_clusters import StudentTHead, cluster_layer_map, explain_deep, neuralize_deep
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(64, 128, bias=False), torch.nn.ReLU(),
                                  torch.nn.Linear(128, 64, bias=False), torch.nn.ReLU(),
                                  torch.nn.Linear(64, 10, bias=False)).eval()
    x = torch.as_tensor(queries)
    with torch.no_grad():
        codes = encoder(x)
    kmeans = KMeans(10, n_init=1, random_state=0).fit(codes[:5000].numpy())
    head = neuralize(StudentTHead(kmeans.cluster_centers_))
    model = neuralize_deep(encoder, kmeans)
    composite = EpsilonGammaBox(low=0.0, high=1.0, layer_map=cluster_layer_map())
    rows = []
    for name, run in (('StudentTHead (DEC), closed form on 10-d codes', lambda: explain(head, codes)),
                      ('encoder 64-128-64-10 + k-means head, Zennit (EpsilonGammaBox + cluster rules), batches of '
                       f'{batch:,}', lambda: [explain_deep(model, part, composite=composite)
                                              for part in torch.split(x, batch)])):
        run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        rows.append((name, min(times)))
    print(f'\nDeep heads on the same N = {len(x):,} rows (float32)\n')
    print('| model | explain s | rows/s |')
    print('|---|---|---|')
    for name, seconds in rows:
        print(f'| {name} | {seconds:.2f} | {len(x) / seconds:,.0f} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--agreement', action='store_true', help='agreement with labels_ per member cap')
    parser.add_argument('--spread', action='store_true', help='sum |R| / f_c per pool redistribution stiffness')
    parser.add_argument('--n', type=int, default=100_000, help='query rows for the speed run')
    parser.add_argument('--repeats', type=int, default=1)
    parser.add_argument('--threads', type=int, default=2,
                        help='torch threads (1 measures more steadily on a machine that other jobs share)')
    args = parser.parse_args()
    if args.agreement:
        bench_agreement()
    elif args.spread:
        bench_spread()
    else:
        bench_speed(args.n, args.repeats, args.threads)


if __name__ == '__main__':
    main()
