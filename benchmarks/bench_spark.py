"""Rows per second of explanation through Spark local[1] and local[2] against single-process explain(), in one run.

    python benchmarks/bench_spark.py [--n 10000000] [--d 50] [--k 20] [--partitions 8] [--batch 32768] [--repeats 2]

A scikit-learn KMeans (K clusters, fitted on 20,000 rows) explains N rows x D float32 features. The rows are
generated inside Spark, partition by partition from a seeded generator (so the driver never holds them), as
an ``array<float>`` column; each Spark run forces every row through ``explain(model, df)`` and writes nothing
(the ``noop`` sink). The same generation without the explanation is timed too: the explanation's own rate is
``N / (t_explain - t_generate)``; the end-to-end rate is also given (each the fastest of ``--repeats`` runs, after
a warm-up). Single-process ``explain()`` runs on the
same kind of rows in memory (one thread, and torch's default), in chunks of ``--partitions``' size.
The peak memory per worker is the largest resident set (``ru_maxrss``) of each Python worker process, asked of
the reused workers right after the explanation. Bound checked: local[2] at least 1.6x local[1].
Writes a Markdown table to benchmarks/results/spark.md and prints it.
"""
import argparse
import os
import platform
import resource
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def generate(n, d, partitions, seed):
    """mapInArrow function: the rows of the ids it is given, N(0, 1) + a cluster offset, float32."""
    def rows(batches):
        import pyarrow as pa
        for batch in batches:
            ids = batch.column('id').to_numpy()
            rng = np.random.default_rng(seed + int(ids[0]))
            x = rng.standard_normal((len(ids), d), dtype=np.float32)
            x += (ids % 7)[:, None].astype(np.float32)
            offsets = pa.array(np.arange(0, len(ids) * d + 1, d, dtype=np.int32))
            yield pa.RecordBatch.from_arrays([pa.array(ids), pa.ListArray.from_arrays(offsets, pa.array(x.ravel()))],
                                             names=['id', 'features'])
    return rows


def worker_rss(batches):
    """Each Python worker's pid and peak resident set, in MiB."""
    import pyarrow as pa
    for batch in batches:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        yield pa.RecordBatch.from_arrays([pa.array([os.getpid()] * batch.num_rows), pa.array([peak] * batch.num_rows)],
                                         names=['pid', 'rss'])


def spark_run(master, model, args):
    from pyspark.sql import SparkSession, types as T
    from zennit_clusters import explain
    spark = (SparkSession.builder.master(master).appName('bench_spark')
             .config('spark.ui.enabled', 'false').config('spark.ui.showConsoleProgress', 'false')
             .config('spark.sql.execution.arrow.maxRecordsPerBatch', str(args.batch))
             .config('spark.driver.memory', '2g').getOrCreate())
    spark.sparkContext.setLogLevel('ERROR')
    schema = T.StructType([T.StructField('id', T.LongType()), T.StructField('features', T.ArrayType(T.FloatType()))])

    def frame(n):
        return spark.range(0, n, numPartitions=args.partitions).mapInArrow(
            generate(n, args.d, args.partitions, args.seed), schema)

    def timed(df):
        start = time.perf_counter()
        df.write.format('noop').mode('overwrite').save()
        return time.perf_counter() - start

    # warm-up: the JVM compiles its code paths, the workers start and import the library
    timed(frame(args.partitions * 20_000))
    timed(explain(model, frame(args.partitions * 20_000)))
    t_generate = min(timed(frame(args.n)) for _ in range(args.repeats))
    t_explain = min(timed(explain(model, frame(args.n))) for _ in range(args.repeats))
    rss = spark.range(0, 64, numPartitions=64).mapInArrow(
        worker_rss, 'pid long, rss double').distinct().collect()
    peaks = {}
    for row in rss:
        peaks[row.pid] = max(peaks.get(row.pid, 0.0), row.rss)
    spark.stop()
    return t_generate, t_explain, sorted(peaks.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--n', type=int, default=10_000_000)
    parser.add_argument('--d', type=int, default=50)
    parser.add_argument('--k', type=int, default=20)
    parser.add_argument('--partitions', type=int, default=8)
    parser.add_argument('--batch', type=int, default=32768)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--repeats', type=int, default=2, help='timed runs of each Spark action (the fastest counts)')
    parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results', 'spark.md'))
    args = parser.parse_args()
    os.environ['PYSPARK_PYTHON'] = sys.executable
    os.environ['PYTHONPATH'] = os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')]))
    sys.path.insert(0, ROOT)

    import torch
    from sklearn.cluster import KMeans
    from zennit_clusters import explain, neuralize

    rng = np.random.default_rng(args.seed)
    train = (rng.standard_normal((20_000, args.d)) + rng.integers(0, 7, 20_000)[:, None]).astype(np.float32)
    model = neuralize(KMeans(n_clusters=args.k, n_init=1, random_state=0).fit(train), X=train)

    # single process: the same rows in memory, chunk by chunk (generating them is not timed)
    chunk = -(-args.n // args.partitions)
    single = {}
    for threads in (1, torch.get_num_threads()):
        torch.set_num_threads(threads)
        x = generate_local(chunk, args.d, args.seed)
        explain(model, x[:20_000])
        start = time.perf_counter()
        for _ in range(args.partitions):
            explain(model, x)
        single[threads] = args.n / (time.perf_counter() - start) * (chunk * args.partitions / args.n)
        del x
    rows = []
    results = {}
    for master in ('local[1]', 'local[2]'):
        t_generate, t_explain, peaks = spark_run(master, model, args)
        results[master] = (t_generate, t_explain, peaks)
    load = os.getloadavg()
    ratio = (args.n / (results['local[2]'][1] - results['local[2]'][0])) / \
            (args.n / (results['local[1]'][1] - results['local[1]'][0]))
    ratio_end = results['local[1]'][1] / results['local[2]'][1]
    lines = [f'# explain() through Spark: {args.n:,} rows x {args.d}, KMeans K={args.k}, float32',
             '',
             f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores; pyspark '
             f'{__import__("pyspark").__version__}, torch {torch.__version__}; {args.partitions} partitions, Arrow '
             f'batches of {args.batch} rows; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.',
             '',
             '| run | generate only (s) | generate + explain (s) | explanation rows/s | end-to-end rows/s | '
             'peak RSS per Python worker (MiB) |',
             '|---|---:|---:|---:|---:|---|']
    for threads, rate in single.items():
        lines.append(f'| single-process explain(), {threads} thread(s) | - | - | {rate:,.0f} | - | - |')
    for master, (t_generate, t_explain, peaks) in results.items():
        lines.append(f'| Spark {master} | {t_generate:.1f} | {t_explain:.1f} | '
                     f'{args.n / max(t_explain - t_generate, 1e-9):,.0f} | {args.n / t_explain:,.0f} | '
                     f'{", ".join(f"{peak:.0f}" for peak in peaks)} |')
    verdict = 'met' if ratio >= 1.6 else 'NOT met'
    lines += ['', f'local[2] / local[1]: {ratio:.2f}x on the explanation\'s rate, {ratio_end:.2f}x end to end '
              f'(bound: at least 1.6x; {verdict}).']
    text = '\n'.join(lines) + '\n'
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as file:
        file.write(text)


def generate_local(n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    x += (np.arange(n) % 7)[:, None].astype(np.float32)
    return x


if __name__ == '__main__':
    main()
