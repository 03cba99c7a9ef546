"""Time summarize() and Explanation.of() against the explain() and direction() passes they are made of, in one run.

    python benchmarks/bench_summary.py [--n 20000] [--d 64] [--k 10] [--repeats 3]

summarize() runs explain_with_constant() and direction() chunk by chunk and adds per-cluster sums (matrix
products), the runner-up counts and two medians per cluster over X; its floor is one explain() plus one
direction() of the same data. direction() of centroid models takes the grouped path ((N_c, L) x (L, D) products
per explained cluster); the rows marked "pairs path" time the same calls through the (N, L, D) pairs path it
replaced (``CentroidExplainer.direction_path = 'pairs'``), so that before and after are ratios within one run.
A diagonal GaussianMixture on the same data gives the mixture family's explain() and direction() (one-feature
terms of every competitor, (N, K, D) per chunk). Peak memory is reported from tracemalloc for numpy allocations
of summarize() alone, next to the size of X and the (N, K, D) parts it never builds. Writes
benchmarks/results/summary.md.
"""
import argparse
import os
import platform
import tracemalloc

import numpy as np
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from zennit_clusters import Explanation, direction, explain, neuralize, summarize
from zennit_clusters.families.centroids.explainer import CentroidExplainer
from timing import median_seconds  # benchmarks/timing.py



def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--n', type=int, default=20_000)
    parser.add_argument('--d', type=int, default=64)
    parser.add_argument('--k', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results',
                                                      'summary.md'))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(args.k, args.d))
    X = centres[rng.integers(args.k, size=args.n)] + rng.normal(size=(args.n, args.d))
    model = neuralize(KMeans(args.k, n_init=1, random_state=0).fit(X[:5000]), X=X[:5000])

    def pairs_path(function):
        def run():
            CentroidExplainer.direction_path = 'pairs'
            try:
                return function()
            finally:
                CentroidExplainer.direction_path = 'grouped'
        return run

    rows = [
        ('explain()', median_seconds(lambda: explain(model, X), args.repeats)),
        ('direction()', median_seconds(lambda: direction(model, X), args.repeats)),
        ('summarize(top=5)', median_seconds(lambda: summarize(model, X, top=5), args.repeats)),
        ('Explanation.of()', median_seconds(lambda: Explanation.of(model, X), args.repeats)),
        ('direction(), pairs path', median_seconds(pairs_path(lambda: direction(model, X)), args.repeats)),
        ('summarize(top=5), pairs path', median_seconds(pairs_path(lambda: summarize(model, X, top=5)),
                                                        args.repeats)),
    ]
    floor = rows[0][1] + rows[1][1]
    gmm = neuralize(GaussianMixture(args.k, covariance_type='diag', random_state=0).fit(X[:5000]), X=X[:5000])
    mixture_rows = [
        ('explain()', median_seconds(lambda: explain(gmm, X), args.repeats)),
        ('direction()', median_seconds(lambda: direction(gmm, X), args.repeats)),
        ('summarize(top=5)', median_seconds(lambda: summarize(gmm, X, top=5), args.repeats)),
    ]
    tracemalloc.start()
    summarize(model, X, top=5)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    load = os.getloadavg()
    lines = [
        f'# summarize() and Explanation.of() (N = {args.n}, D = {args.d}, K = {args.k}, float64)',
        '',
        f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load[0]:.2f} at the '
        f'end; median of {args.repeats} runs.',
        '',
        'KMeans:',
        '',
        '| call | seconds | / explain() | / (explain + direction) |',
        '|---|---|---|---|',
    ] + [f'| {name} | {seconds:.3f} | {seconds / rows[0][1]:.1f} | {seconds / floor:.2f} |'
         for name, seconds in rows] + [
        '',
        'GaussianMixture (diag):',
        '',
        '| call | seconds | / explain() |',
        '|---|---|---|',
    ] + [f'| {name} | {seconds:.3f} | {seconds / mixture_rows[0][1]:.1f} |' for name, seconds in mixture_rows] + [
        '',
        f'summarize() peak numpy memory (tracemalloc): {peak / 2**20:.1f} MiB; X is {X.nbytes / 2**20:.1f} MiB; '
        f'the (N, K, D) parts would be {X.nbytes * args.k / 2**20:.0f} MiB.',
    ]
    text = '\n'.join(lines) + '\n'
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write(text)
    print(text)


if __name__ == '__main__':
    main()
