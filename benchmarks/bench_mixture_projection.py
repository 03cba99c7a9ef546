"""Explain a Gaussian mixture after a projection, in the input space, against the same mixture explained in z.

``make_pipeline(StandardScaler(), PCA(d), GaussianMixture(K, covariance_type))`` on the digits (D = 64),
tiled with jitter to N rows: explain through the pipeline (the mixture pulled back to the D = 64 input columns:
tied stays tied, every other type runs the full rule with (K, D, D) precisions) against explaining the fitted
mixture on the projected data (d columns), in the same run; the ratio is what to read.

    python benchmarks/bench_mixture_projection.py [N] [d]
"""
import os
import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from zennit_clusters import explain, neuralize
from timing import median_seconds, write_results  # benchmarks/timing.py


def main(n_rows=20000, d=10, n_components=10, repeats=3):
    digits = load_digits().data.astype(np.float64)
    rng = np.random.default_rng(0)
    X = digits[rng.integers(0, len(digits), n_rows)] + rng.normal(scale=0.1, size=(n_rows, digits.shape[1]))
    rows = [f'# Mixture after PCA: explain in input space (D = {X.shape[1]}) vs in z (d = {d})', '',
            f'N = {n_rows}, K = {n_components}, float64, median of {repeats}; load average '
            f'{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (read the ratio within one run).', '',
            '| covariance type | rule in u | explain in u (s) | explain in z (s) | ratio |', '|---|---|---:|---:|---:|']
    for covariance_type in ('full', 'tied', 'diag', 'spherical'):
        mixture = GaussianMixture(n_components, covariance_type=covariance_type, random_state=0, max_iter=50)
        pipeline = make_pipeline(StandardScaler(), PCA(d), mixture).fit(X[:5000])
        model = neuralize(pipeline)
        head = neuralize(pipeline[-1])
        Z = pipeline[:-1].transform(X)
        in_u = median_seconds(lambda: explain(model, X), repeats)
        in_z = median_seconds(lambda: explain(head, Z), repeats)
        rows.append(f'| {covariance_type} | {model.head.covariance_type} | {in_u:.3f} | {in_z:.3f} | '
                    f'{in_u / in_z:.1f}x |')
    write_results('\n'.join(rows) + '\n', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results',
                                                       'mixture_projection.md'))


if __name__ == '__main__':
    main(*(int(value) for value in sys.argv[1:3]))
