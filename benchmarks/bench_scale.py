"""Scale, in one run (issue 11): peak memory of neuralize(est, X=X) and explain on N x D float32 k-means, start-up of
the package and the command line against `import torch`, and Dask throughput with one and two workers.

    nice -n 5 python benchmarks/bench_scale.py [--n 2000000] [--d 50] [--k 20] [--dask-n 10000000] [--repeats 5]

Memory: each entry point runs in a fresh subprocess; X (built in blocks) and the fitted model are resident, the
kernel's high-water mark is reset (/proc/self/clear_refs), and the peak beyond what was resident before the call
is reported, then less the result (relevance, labels). Bound: extra <= 1.5 x size of X.
Start-up: wall time of fresh processes (median of --repeats), `python -c "import torch"` as the reference.
Dask: a distributed.LocalCluster of 1 and of 2 single-threaded worker processes explains --dask-n rows generated
inside the workers block by block (dask.array.random, uniform float32), reduced to one number per block, so that what is timed is
generation + explanation, not transfer; the same generation alone is timed too, and single-process explain() (one
torch thread, X in memory) is the reference. Peak RSS per worker from each worker's getrusage.
Writes benchmarks/results/scale.md and prints it.
"""
import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time

import numpy as np
from timing import write_results  # benchmarks/timing.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'benchmarks', 'results')

MEMORY_CHILD = textwrap.dedent(r'''
    import json, re, sys, time
    import numpy as np, torch
    from sklearn.cluster import KMeans
    import zennit_clusters as zc
    n, d, k, what = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(k, d))
    X = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 100_000):
        rows = min(100_000, n - start)
        X[start:start + rows] = centres[rng.integers(k, size=rows)] + rng.normal(size=(rows, d))
    km = KMeans(k, n_init=1, random_state=0).fit(X[:20_000])
    model = zc.neuralize(km)
    zc.explain(model, X[:1000]); zc.neuralize(km, X=X[:1000])  # warm-up: lazy imports, compiled code
    def status(field):
        return int(re.search(field + r':\s+(\d+) kB', open('/proc/self/status').read()).group(1)) * 1024
    before = status('VmRSS')
    open('/proc/self/clear_refs', 'w').write('5')
    began = time.perf_counter()
    if what == 'neuralize':
        result = zc.neuralize(km, X=X); result_bytes = 0
    elif what == 'forward':  # the module's chunked evidence (model(X) holds N x K x (K - 1) margins)
        result = model.predict_evidence(X); result_bytes = result.nbytes
    else:
        result = zc.explain(model, X); result_bytes = result.nbytes
    seconds = time.perf_counter() - began
    peak = status('VmHWM')
    print(json.dumps({'what': what, 'x_bytes': X.nbytes, 'result_bytes': result_bytes,
                      'extra_bytes': peak - before - result_bytes, 'seconds': seconds}))
''')


def memory_rows(n, d, k):
    env = dict(os.environ, PYTHONPATH=ROOT, MALLOC_MMAP_THRESHOLD_='131072')
    rows = []
    for what in ('neuralize', 'explain', 'forward'):
        out = subprocess.run([sys.executable, '-c', MEMORY_CHILD, str(n), str(d), str(k), what], env=env,
                             capture_output=True, text=True, check=True, cwd=ROOT)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def startup_rows(repeats):
    env = dict(os.environ, PYTHONPATH=ROOT)
    commands = [
        ('python -c "import torch"', [sys.executable, '-c', 'import torch']),
        ('python -c "import zennit_clusters"', [sys.executable, '-c', 'import zennit_clusters']),
        ('python -m exporters.onnx --help', [sys.executable, '-m', 'exporters.onnx', '--help']),
        ('python -m exporters.onnx --no-such-option', [sys.executable, '-m', 'exporters.onnx', '--no-such-option']),
        ('python -m exporters.onnx missing.pkl', [sys.executable, '-m', 'exporters.onnx', 'missing.pkl']),
        ('python -c "pass"', [sys.executable, '-c', 'pass']),
    ]
    times = {name: [] for name, _ in commands}
    for name, command in commands:
        subprocess.run(command, env=env, capture_output=True, cwd=ROOT)  # warm the file cache
    for _ in range(repeats):  # interleaved: a burst of load on the shared machine hits every command alike
        for name, command in commands:
            began = time.perf_counter()
            subprocess.run(command, env=env, capture_output=True, cwd=ROOT)
            times[name].append(time.perf_counter() - began)
    return [(name, statistics.median(times[name]), min(times[name]), max(times[name])) for name, _ in commands]


def _block_relevance_sum(block, model):
    from zennit_clusters import explain
    return np.array([[float(explain(model, np.ascontiguousarray(block)).sum(dtype=np.float64))]])


def _warm_worker():
    import torch

    import zennit_clusters  # noqa: F401
    return torch.get_num_threads()


def _worker_peak():
    # VmHWM of this process's own memory (getrusage's ru_maxrss is inherited across the nanny's fork and exec)
    import re
    with open('/proc/self/status') as status:
        return int(re.search(r'VmHWM:\s+(\d+) kB', status.read()).group(1)) * 1024


def _best_seconds(function, repeats):
    best = math.inf
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - began)
    return best


def dask_rows(n, d, k, block_rows, repeats):
    import dask
    import dask.array as da
    import torch
    from distributed import Client, LocalCluster
    from sklearn.cluster import KMeans

    import zennit_clusters as zc

    rng = np.random.default_rng(1)
    small = rng.normal(scale=4.0, size=(20_000, d)).astype(np.float32)
    model = zc.neuralize(KMeans(k, n_init=1, random_state=0).fit(small))

    def generated():
        # uniform float32 (cheap to generate, next to normal variates); the throughput does not depend on the values
        return da.random.default_rng(0).random((n, d), dtype=np.float32, chunks=(block_rows, d)) * 8 - 4

    rows = []
    # the reference: one process, one torch thread, X already in memory (generated once, not timed)
    torch.set_num_threads(1)
    X = generated().compute(scheduler='synchronous')
    zc.explain(model, X[:10_000])
    best = math.inf
    for _ in range(repeats):  # a fresh result each time, as each dask block allocates its own
        began = time.perf_counter()
        result = zc.explain(model, X)
        best = min(best, time.perf_counter() - began)
        del result
    rows.append(('explain() in one process, 1 thread, X in memory', None, n / best, None, None))
    del X
    os.environ['OMP_NUM_THREADS'] = '1'  # the workers' torch: one thread each
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          memory_limit='6GB') as cluster, Client(cluster) as client:
            client.run(_warm_worker)  # every worker imports the package before anything is timed
            X = generated()
            X.sum().compute()
            generation = _best_seconds(lambda: X.sum().compute(), repeats)
            node = dask.delayed(model, pure=True, traverse=False)
            lazy = X.map_blocks(_block_relevance_sum, node, chunks=(1, 1), dtype=np.float64)
            X[:block_rows].map_blocks(_block_relevance_sum, node, chunks=(1, 1), dtype=np.float64).compute()
            seconds = _best_seconds(lambda: lazy.sum().compute(), repeats)
            peaks = sorted(client.run(_worker_peak).values())
            rows.append((f'Dask, {workers} worker{"s" if workers > 1 else ""} (1 thread each)', generation,
                         n / seconds, n / max(seconds - generation, 1e-9), peaks))
            # zennit_clusters.explain on the dask array itself gives the same numbers lazily (checked on one block)
            check = zc.explain(model, X[:block_rows]).compute()
            assert check.shape == (block_rows, d)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--n', type=int, default=2_000_000)
    parser.add_argument('--d', type=int, default=50)
    parser.add_argument('--k', type=int, default=20)
    parser.add_argument('--dask-n', type=int, default=10_000_000)
    parser.add_argument('--block-rows', type=int, default=250_000)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--dask-repeats', type=int, default=2, help='best of this many runs per Dask row')
    parser.add_argument('--out', default=os.path.join(RESULTS, 'scale.md'))
    args = parser.parse_args()

    load_before = os.getloadavg()
    memory = memory_rows(args.n, args.d, args.k)
    startup = startup_rows(args.repeats)
    dask_table = dask_rows(args.dask_n, args.d, args.k, args.block_rows, args.dask_repeats)
    load_after = os.getloadavg()

    mib = 2 ** 20
    lines = [f'# Scale: {args.n:,} x {args.d} float32, k-means K = {args.k}', '',
             f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python '
             f'{platform.python_version()}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after '
             '(the machine is shared: take the ratios within this run).', '',
             '## Peak memory beyond X and the result (fresh process each)', '',
             '| call | X (MiB) | result (MiB) | extra peak (MiB) | extra / X | bound 1.5 x X | seconds |',
             '|---|---:|---:|---:|---:|---|---:|']
    names = {'neuralize': '`neuralize(km, X=X)`', 'explain': '`explain(model, X)`',
             'forward': '`model.predict_evidence(X)` (chunked forward)'}
    for row in memory:
        ratio = row['extra_bytes'] / row['x_bytes']
        lines.append(f"| {names[row['what']]} | {row['x_bytes'] / mib:.0f} | {row['result_bytes'] / mib:.0f} | "
                     f"{row['extra_bytes'] / mib:.1f} | {ratio:.3f} | {'met' if ratio <= 1.5 else 'MISSED'} | "
                     f"{row['seconds']:.2f} |")
    torch_time = startup[0][1]
    lines += ['', f'## Start-up (wall time of a fresh process, median of {args.repeats})', '',
              '| command | median (s) | min (s) | max (s) | vs `import torch` |', '|---|---:|---:|---:|---:|']
    for name, median, low, high in startup:
        lines.append(f'| `{name}` | {median:.3f} | {low:.3f} | {high:.3f} | {median / torch_time:.2f}x |')
    lines += ['', f'## Dask: {args.dask_n:,} x {args.d} float32 rows, blocks of {args.block_rows:,} rows '
              f'(best of {args.dask_repeats})', '',
              '| path | generation alone (s) | rows/s (generation + explain) | rows/s (explain, generation '
              'subtracted) | peak RSS per worker (MiB) |', '|---|---:|---:|---:|---|']
    for name, generation, total, explain_only, peaks in dask_table:
        lines.append(f'| {name} | {"" if generation is None else f"{generation:.2f}"} | {total:,.0f} | '
                     f'{"" if explain_only is None else f"{explain_only:,.0f}"} | '
                     f'{"" if peaks is None else ", ".join(f"{p / mib:.0f}" for p in peaks)} |')
    one, two = dask_table[1][2], dask_table[2][2]
    lines += ['', f'Two workers / one worker: {two / one:.2f}x (bound 1.6x: {"met" if two / one >= 1.6 else "MISSED"}; '
              f'{os.cpu_count()} cores, shared); one worker / single-process explain(): '
              f'{one / dask_table[0][2]:.2f}x.']
    text = '\n'.join(lines) + '\n'
    write_results(text, args.out)


if __name__ == '__main__':
    main()
