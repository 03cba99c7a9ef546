"""Time explain() through make_pipeline(StandardScaler(), PCA(50), KMeans(10)), and with PCA(50, whiten=True),
against plain KMeans(10), in one run.

    python benchmarks/bench_pipeline.py [--n 100000] [--d 784] [--k 10] [--components 50] [--repeats 3]

Both models are fitted on the same data and explained on the same float32 X (N x D). The pipeline is folded
exactly: the scaler is a per-feature layer, the PCA is folded into the k-means head by lifting its centroids to
input space (docs/pipelines.md), so the pipeline runs the same compiled k-means kernel on D columns as plain
k-means, plus one pass for the scaling. A whitened PCA keeps its metric in the margins (sites and directions,
docs/pipelines.md): the same compiled row step with its scores taken from the directions and one relevance
table per explained cluster. Reports median seconds and the ratios within this run; writes
benchmarks/results/pipeline.md and prints it.
"""
import argparse
import os
import platform

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from zennit_clusters import explain, neuralize
from timing import median_seconds, write_results  # benchmarks/timing.py



def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--n', type=int, default=100_000)
    parser.add_argument('--d', type=int, default=784)
    parser.add_argument('--k', type=int, default=10)
    parser.add_argument('--components', type=int, default=50)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results', 'pipeline.md'))
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(args.k, args.d)) * 3
    X = (centres[rng.integers(args.k, size=args.n)] + rng.normal(size=(args.n, args.d))).astype(np.float32)
    fit_rows = X[:20_000].astype(np.float64)
    kmeans = KMeans(n_clusters=args.k, n_init=1, max_iter=20, random_state=0).fit(fit_rows)
    pipeline = make_pipeline(StandardScaler(), PCA(args.components, random_state=0),
                             KMeans(n_clusters=args.k, n_init=1, max_iter=20, random_state=0)).fit(fit_rows)
    whitened = make_pipeline(StandardScaler(), PCA(args.components, whiten=True, random_state=0),
                             KMeans(n_clusters=args.k, n_init=1, max_iter=20, random_state=0)).fit(fit_rows)
    plain, folded, folded_white = neuralize(kmeans), neuralize(pipeline), neuralize(whitened)
    check = explain(folded, X[:2000], return_logits=True)[1]
    agree = float((check == pipeline.predict(X[:2000].astype(np.float64))).mean())
    check = explain(folded_white, X[:2000], return_logits=True)[1]
    agree_white = float((check == whitened.predict(X[:2000].astype(np.float64))).mean())

    rows = [('explain, KMeans(10)', median_seconds(lambda: explain(plain, X), args.repeats)),
            (f'explain, make_pipeline(StandardScaler(), PCA({args.components}), KMeans({args.k}))',
             median_seconds(lambda: explain(folded, X), args.repeats)),
            (f'explain, make_pipeline(StandardScaler(), PCA({args.components}, whiten=True), KMeans({args.k}))',
             median_seconds(lambda: explain(folded_white, X), args.repeats))]
    ratio, ratio_white = rows[1][1] / rows[0][1], rows[2][1] / rows[0][1]
    load = os.getloadavg()
    lines = [f'# explain through a pipeline vs plain k-means (N={args.n:,}, D={args.d}, K={args.k}, float32)', '',
             f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} '
             f'({torch.get_num_threads()} threads); load average at the end {load[0]:.2f} / {load[1]:.2f} / '
             f'{load[2]:.2f}; median of {args.repeats} after a warm-up. Pipeline labels == predict on '
             f'{agree:.2%} of 2,000 checked rows (whitened: {agree_white:.2%}; float32 X, float64 predict).', '',
             '| what | seconds | rows/s |', '|---|---:|---:|']
    lines += [f'| {name} | {seconds:.3f} | {args.n / seconds:,.0f} |' for name, seconds in rows]
    lines += ['', f'Pipeline / plain ratio in this run: **{ratio:.2f}x** (target: within 2x); whitened / plain: '
                  f'**{ratio_white:.2f}x**.']
    text = '\n'.join(lines) + '\n'
    write_results(text, args.out)


if __name__ == '__main__':
    main()
