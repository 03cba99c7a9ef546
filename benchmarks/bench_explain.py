"""Time explain() against the memory floor and scikit-learn's predict, in one run.

    python benchmarks/bench_explain.py [--n 100000] [--d 784] [--k 10] [--repeats 5] [--threads T]

The memory floor is the time to read X and write an array of X's size (``np.copyto`` into an existing
array), measured in the same run on the same arrays: an explainer that reads X and writes R cannot beat it.
``explain(..., out=R)`` writes into an existing array as the floor does; plain ``explain`` allocates its
result, and the row "allocate and fill" shows what a fresh X-sized array costs by itself on this machine.
The torch rows run the same explainer with the compiled code switched off (ZENNIT_CLUSTERS_NO_COMPILED).
Writes a Markdown table to benchmarks/results/explain.md and prints it.
"""
import argparse
import os
import platform

import numpy as np
import torch
from sklearn.cluster import BisectingKMeans, KMeans

from zennit_clusters import explain, neuralize
from zennit_clusters.compiled import available as compiled_available
from timing import median_seconds  # benchmarks/timing.py



def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--n', type=int, default=100_000)
    parser.add_argument('--d', type=int, default=784)
    parser.add_argument('--k', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s own choice)')
    parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results', 'explain.md'))
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(args.k, args.d)) * 3
    X = (centres[rng.integers(args.k, size=args.n)] + rng.normal(size=(args.n, args.d))).astype(np.float32)
    kmeans = KMeans(n_clusters=args.k, n_init=1, max_iter=20, random_state=0).fit(X[:20_000].astype(np.float64))
    model = neuralize(kmeans)
    bisecting = neuralize(BisectingKMeans(n_clusters=args.k, random_state=0).fit(X[:20_000].astype(np.float64)))
    X64 = X.astype(np.float64)
    out = np.empty_like(X)

    rows = []
    floor = median_seconds(lambda: np.copyto(out, X), args.repeats)
    rows.append(('memory floor: read X, write X-sized array (np.copyto)', floor))
    rows.append(('allocate and fill a fresh X-sized array (np.empty_like + fill)',
                 median_seconds(lambda: np.empty_like(X).fill(1.0), args.repeats)))
    rows.append(('explain(model, X, out=R) float32, assigned cluster, beta = model',
                 median_seconds(lambda: explain(model, X, out=out), args.repeats)))
    rows.append(('explain(model, X) float32, assigned cluster, beta = model',
                 median_seconds(lambda: explain(model, X), args.repeats)))
    rows.append(('explain(model, X, beta=inf) float32',
                 median_seconds(lambda: explain(model, X, beta=float('inf')), args.repeats)))
    rows.append(('explain(model, X, cluster=0) float32',
                 median_seconds(lambda: explain(model, X, cluster=0), args.repeats)))
    rows.append(('explain(model, X) float64 (X in float64)', median_seconds(lambda: explain(model, X64), args.repeats)))
    rows.append(('explain(bisecting k-means, X, out=R) float32 (two kernels, torch between)',
                 median_seconds(lambda: explain(bisecting, X, out=out), args.repeats)))
    os.environ['ZENNIT_CLUSTERS_NO_COMPILED'] = '1'
    rows.append(('torch only: explain(model, X, out=R) float32',
                 median_seconds(lambda: explain(model, X, out=out), args.repeats)))
    rows.append(('torch only: explain(bisecting k-means, X, out=R) float32',
                 median_seconds(lambda: explain(bisecting, X, out=out), args.repeats)))
    del os.environ['ZENNIT_CLUSTERS_NO_COMPILED']
    rows.append(('sklearn KMeans.predict (float64, labels only)', median_seconds(lambda: kmeans.predict(X64), args.repeats)))

    lines = [
        f'N = {args.n:,}, D = {args.d}, K = {args.k}; median of {args.repeats} runs; '
        f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} '
        f'with {torch.get_num_threads()} threads; compiled kernels {"on" if compiled_available() else "NOT built"}.',
        '',
        '| what | seconds | × memory floor | rows/s |',
        '|---|---|---|---|',
    ]
    for name, seconds in rows:
        lines.append(f'| {name} | {seconds:.4f} | {seconds / floor:.2f} | {args.n / seconds:,.0f} |')
    table = '\n'.join(lines)
    print(table)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as handle:
        handle.write(table + '\n')


if __name__ == '__main__':
    main()
