"""Cost of the optional ``contrasts`` output of the ONNX graph, against the graph with relevance, under onnxruntime.

On digits repeated to N rows (D = 64), K = 10 clusters, float32 graphs: the time to export and check each graph,
and the median serving time of N rows for the graph with ``relevance`` and for the graph with ``contrasts``
(which writes K times as many values per row: (N, K, D) against (N, D)). The ratio is within one run.

    python benchmarks/bench_onnx_contrasts.py [--rows 10000]   # writes benchmarks/results/onnx_contrasts.md
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from timing import median_seconds, write_results  # noqa: E402 -- benchmarks/timing.py

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results', 'onnx_contrasts.md')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rows', type=int, default=10000)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args(argv)
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_digits
    from sklearn.mixture import GaussianMixture

    from exporters.onnx import export, make_session

    digits = load_digits().data
    X = np.concatenate([digits] * (args.rows // len(digits) + 1))[:args.rows].astype(np.float32)
    models = {'KMeans': KMeans(10, n_init=2, random_state=0).fit(digits),
              'GaussianMixture (diag)': GaussianMixture(10, covariance_type='diag', reg_covar=1e-2,
                                                        random_state=0).fit(digits)}
    lines = ['# ONNX contrasts output: cost against the relevance graph\n',
             f'N = {args.rows} rows of digits (D = 64), K = 10, float32, onnxruntime CPU; load average '
             f'{os.getloadavg()[0]:.1f} at the start.\n',
             '| model | graph | export + check (s) | serve N rows (ms) | contrasts / relevance |',
             '|---|---|---|---|---|']
    with tempfile.TemporaryDirectory() as folder:
        for name, estimator in models.items():
            served = {}
            for kind, options in (('relevance', dict(explain=True)), ('contrasts', dict(contrasts=True))):
                path = os.path.join(folder, f'{kind}.onnx')
                start = time.perf_counter()
                result = export(estimator, path, X=digits, **options)
                built = time.perf_counter() - start
                session = make_session(path)
                x = X.astype(result.dtype)
                served[kind] = median_seconds(lambda: session.run(None, {'X': x}), args.repeats)
                ratio = f'{served["contrasts"] / served["relevance"]:.2f}' if kind == 'contrasts' else ''
                lines.append(f'| {name} | {kind} ({result.dtype}) | {built:.1f} | {served[kind] * 1e3:.0f} | '
                             f'{ratio} |')
    lines.append(f'\nload average {os.getloadavg()[0]:.1f} at the end.')
    write_results('\n'.join(lines) + '\n', RESULTS)


if __name__ == '__main__':
    main()
