"""Serving speed of the exported ONNX graph, against scikit-learn and skl2onnx.

One run times, on N = 100,000 points with K = 10 clusters and D = 64 and 784 features:

- scikit-learn's ``KMeans.predict`` (float64, as the estimator is called);
- skl2onnx's KMeans graph (label and distances) under onnxruntime, float32;
- our graph with label and logits, and our graph with relevance as well, under onnxruntime, float32.

Each time is the median of several runs after a warm-up; onnxruntime uses one intra-op thread per core.
The bounds the issue sets are checked and reported: our label+logits graph at least 2x faster than
``predict`` and no slower than skl2onnx's graph, and the graph with relevance within 2x of the one without.

    python benchmarks/bench_onnx.py            # writes benchmarks/results/onnx.md and prints it

Requires skl2onnx (``pip install skl2onnx``).
"""
import argparse
import os
import platform
import sys
import tempfile
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from timing import median_seconds  # noqa: E402  benchmarks/timing.py

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results', 'onnx.md')


def blobs(n_samples, n_clusters, n_features, seed):
    """Gaussian clusters around standard-normal centres (noise 0.5 per feature), float64."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, n_features))
    labels = rng.integers(n_clusters, size=n_samples)
    return centres[labels] + rng.normal(size=(n_samples, n_features)) * 0.5


def cpu_name():
    try:
        with open('/proc/cpuinfo') as info:
            for line in info:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def run(n_samples, n_clusters, features, repeats, threads):
    import onnxruntime
    import sklearn
    import skl2onnx
    import torch
    from sklearn.cluster import KMeans
    from skl2onnx import to_onnx

    import zennit_clusters
    from exporters.onnx import export, make_session

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n_features in features:
            X = blobs(n_samples, n_clusters, n_features, seed=n_features)
            X32 = X.astype(np.float32)
            estimator = KMeans(n_clusters, n_init=1, max_iter=50, random_state=0).fit(X[:5000])
            predicted = estimator.predict(X)

            ours = {}
            for explain in (False, True):
                path = os.path.join(folder, f'ours_{n_features}_{explain}.onnx')
                export(estimator, path, explain=explain)
                ours[explain] = make_session(path, threads=threads)
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                reference_graph = to_onnx(estimator, X32[:1], target_opset={'': 18, 'ai.onnx.ml': 3})
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            theirs = onnxruntime.InferenceSession(reference_graph.SerializeToString(), options,
                                                  providers=['CPUExecutionProvider'])
            their_input = theirs.get_inputs()[0].name

            agreement = {
                'skl2onnx': float((theirs.run(None, {their_input: X32})[0] == predicted).mean()),
                'ours': float((ours[False].run(['label'], {'X': X32})[0] == predicted).mean()),
            }
            times = {
                'predict': median_seconds(lambda: estimator.predict(X), repeats),
                'skl2onnx': median_seconds(lambda: theirs.run(None, {their_input: X32}), repeats),
                'ours': median_seconds(lambda: ours[False].run(None, {'X': X32}), repeats),
                'ours+relevance': median_seconds(lambda: ours[True].run(None, {'X': X32}), repeats),
            }
            rows.append((n_features, times, agreement))
            print(f'D={n_features}: ' + ', '.join(f'{k} {v * 1e3:.1f} ms' for k, v in times.items()), flush=True)

    versions = (f'onnxruntime {onnxruntime.__version__}, scikit-learn {sklearn.__version__}, skl2onnx '
                f'{skl2onnx.__version__}, torch {torch.__version__}, zennit-clusters {zennit_clusters.__version__}')
    return rows, versions


def table(rows, n_samples, n_clusters, repeats, threads, versions, load):
    def ms(seconds):
        return f'{seconds * 1e3:.1f}'

    lines = [
        f'# ONNX serving speed (N = {n_samples:,}, K = {n_clusters})',
        '',
        f'Median of {repeats} runs after a warm-up, wall time in milliseconds for the whole batch. '
        f'{cpu_name()}, {os.cpu_count()} cores; onnxruntime with {threads} intra-op threads (CPU provider); '
        f'{versions}. Load average before / after the run: {load[0]:.2f} / {load[1]:.2f} '
        '(other jobs on the machine slow every column, not always equally).',
        '',
        '`predict` gets float64 (the estimator\'s own dtype), the ONNX graphs float32. skl2onnx\'s graph '
        'outputs label and distances; ours label and logits, and relevance as well. The last three columns are '
        'ratios of times, with the bound the issue sets: `predict` / ours, skl2onnx / ours, and ours with '
        'relevance / ours without.',
        '',
        '| D | sklearn `predict` | skl2onnx graph | ours: label + logits | ours: + relevance '
        '| ours vs `predict` (≥ 2x) | ours vs skl2onnx (≥ 1x) | relevance overhead (≤ 2x) |',
        '|---|---|---|---|---|---|---|---|',
    ]
    for n_features, times, _ in rows:
        speedup = times['predict'] / times['ours']
        versus = times['skl2onnx'] / times['ours']
        overhead = times['ours+relevance'] / times['ours']

        def verdict(value, ok):
            return f'{value:.2f}x {"ok" if ok else "MISSED"}'

        lines.append(
            f'| {n_features} | {ms(times["predict"])} | {ms(times["skl2onnx"])} | {ms(times["ours"])} '
            f'| {ms(times["ours+relevance"])} | {verdict(speedup, speedup >= 2)} | {verdict(versus, versus >= 1)} '
            f'| {verdict(overhead, overhead <= 2)} |')
    lines += ['', 'Labels agreeing with `predict` (float32 graphs on float64 data): ' + '; '.join(
        f'D={n}: skl2onnx {a["skl2onnx"]:.5f}, ours {a["ours"]:.5f}' for n, _, a in rows) + '.', '']
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--n', type=int, default=100_000, help='points per batch (default 100,000)')
    parser.add_argument('--clusters', type=int, default=10, help='K (default 10)')
    parser.add_argument('--features', type=int, nargs='+', default=[64, 784], help='D values (default 64 784)')
    parser.add_argument('--repeats', type=int, default=7, help='timed runs per measurement (default 7)')
    parser.add_argument('--output', default=RESULTS, help='Markdown file to write (default benchmarks/results/onnx.md)')
    args = parser.parse_args(argv)
    threads = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    rows, versions = run(args.n, args.clusters, args.features, args.repeats, threads)
    text = table(rows, args.n, args.clusters, args.repeats, threads, versions, (load_before, os.getloadavg()[0]))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, 'w') as handle:
        handle.write(text)
    print(text)


if __name__ == '__main__':
    main()
