"""Sparse TF-IDF explain: time and peak memory on a corpus of 100,000 documents over 50,000 terms, K = 20.

    python benchmarks/bench_text.py [--n 100000] [--v 50000] [--k 20] [--length 150] [--repeats 3]

The corpus is synthetic (no large corpus ships offline): document lengths are log-normal around ``--length``
tokens, and tokens are drawn from a Zipf law over the vocabulary (probability of the term of rank r proportional to
``1 / (r + 2.7)^1.1``, the Zipf-Mandelbrot form fitted to English text), so that a few terms are in most documents and
most terms in few, as in real text. The counts become TF-IDF rows (sublinear tf, l2 norm); k-means is fitted on
20,000 of them. Timed, in the same run:

- ``KMeans.predict`` on the whole matrix (scikit-learn's own pass over the data: the reference for the ratio);
- ``explain(kmeans, X)``: the relevance of the stored entries (a sparse matrix of X's pattern);
- ``explain_with_constant(kmeans, X)``: the same plus the absent-term total per document;
- the same through a text model with TruncatedSVD(100) (the lifted network has the same shape, K x V).

Each call runs in a fresh process (spawned; the corpus rebuilt from the same seed, the fitted centroids passed in).
Peak memory is the resident set size, sampled every 5 ms in a thread while the call runs, minus the RSS just before
it (the increment the call needs), next to the size of X itself. Densifying X would take ``N V 8`` bytes (40 GB).
Writes benchmarks/results/text.md and prints it.
"""
import argparse
import os
import platform
import threading
import time

import numpy as np
import scipy
import scipy.sparse as sp
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfTransformer

from zennit_clusters import explain, explain_with_constant, neuralize
from timing import write_results  # benchmarks/timing.py


def rss_bytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def measured(function):
    """(result, seconds, peak RSS increment in bytes) of one call."""
    baseline = rss_bytes()
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    return result, seconds, max(peak[0], rss_bytes()) - baseline


def zipf_corpus(n_docs, n_terms, length, rng):
    """A (n_docs, n_terms) TF-IDF matrix of Zipf-Mandelbrot tokens."""
    ranks = np.arange(1, n_terms + 1)
    probabilities = 1.0 / (ranks + 2.7) ** 1.1
    cumulative = np.cumsum(probabilities / probabilities.sum())
    lengths = np.maximum(1, rng.lognormal(np.log(length), 0.6, size=n_docs).astype(np.int64))
    tokens = np.minimum(np.searchsorted(cumulative, rng.random(lengths.sum())), n_terms - 1)
    rows = np.repeat(np.arange(n_docs), lengths)
    terms = rng.permutation(n_terms)[tokens]  # frequent terms anywhere in the vocabulary, not in its first columns
    counts = sp.csr_matrix((np.ones(len(tokens)), (rows, terms)), shape=(n_docs, n_terms))
    counts.sum_duplicates()
    return TfidfTransformer(sublinear_tf=True).fit_transform(counts).tocsr()


CASES = ('KMeans.predict (scikit-learn)', 'explain (stored entries)', 'explain_with_constant (+ absent term)',
         'explain_with_constant, LSA-100 + k-means (lifted)')


def run_case(case, args, centroids, lsa_centroids, queue):
    """One call, timed in a fresh process: its RSS increment is then not hidden by memory an earlier call freed
    into the allocator. The corpus is rebuilt from the same seed; the fitted centroids come from the parent."""
    X = zipf_corpus(args.n, args.v, args.length, np.random.default_rng(0))
    kmeans = KMeans(len(centroids), n_init=1, max_iter=1).fit(centroids)  # a fitted KMeans with these centroids
    kmeans.cluster_centers_ = centroids
    model = neuralize(kmeans)
    # the network a text pipeline with TruncatedSVD becomes (families/pipeline/text.py): the centroid network on the
    # lifted centroids mu P, K x V; built from them here because the synthetic corpus has no strings to vectorize
    lsa_model = neuralize(torch.as_tensor(lsa_centroids))
    functions = {CASES[0]: lambda: kmeans.predict(X), CASES[1]: lambda: explain(model, X),
                 CASES[2]: lambda: explain_with_constant(model, X, return_logits=True),
                 CASES[3]: lambda: explain_with_constant(lsa_model, X, return_logits=True)}
    times, peaks = [], []
    for _ in range(args.repeats):
        result, seconds, peak = measured(functions[case])
        if case == CASES[2]:
            relevance, absent, labels, logits = result
            assert (labels == kmeans.predict(X)).all(), 'labels differ from KMeans.predict'
            error = np.abs(np.asarray(relevance.sum(1)).ravel() + absent - logits[np.arange(len(labels)), labels]).max()
            assert error < 1e-10, f'present + absent misses f_c by {error:g}'
        del result
        times.append(seconds)
        peaks.append(peak)
    queue.put((min(times), peaks[0], max(peaks)))


def main():
    import multiprocessing
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--n', type=int, default=100_000)
    parser.add_argument('--v', type=int, default=50_000)
    parser.add_argument('--k', type=int, default=20)
    parser.add_argument('--length', type=int, default=150)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results', 'text.md'))
    args = parser.parse_args()

    start = time.perf_counter()
    X = zipf_corpus(args.n, args.v, args.length, np.random.default_rng(0))
    corpus_seconds = time.perf_counter() - start
    x_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    fit_rows = X[:20_000]
    kmeans = KMeans(args.k, n_init=1, max_iter=30, random_state=0).fit(fit_rows)
    svd = TruncatedSVD(100, random_state=0).fit(fit_rows)
    lsa_kmeans = KMeans(args.k, n_init=1, max_iter=30, random_state=0).fit(svd.transform(fit_rows))
    lsa_centroids = lsa_kmeans.cluster_centers_ @ svd.components_
    nnz = X.nnz
    del X, fit_rows

    context = multiprocessing.get_context('spawn')  # not fork: torch has run (docs/concurrency.md)
    rows = []
    for case in CASES:
        queue = context.Queue()
        process = context.Process(target=run_case, args=(case, args, kmeans.cluster_centers_, lsa_centroids, queue))
        process.start()
        seconds, first_peak, max_peak = queue.get()
        process.join()
        rows.append((case, seconds, first_peak, max_peak))
        print(f'{case}: {seconds:.2f} s, peak RSS +{first_peak / 2 ** 20:.0f} MiB', flush=True)

    load = os.getloadavg()
    lines = [
        f'# Sparse TF-IDF explain: N = {args.n:,} documents, V = {args.v:,} terms, K = {args.k}',
        '',
        f'Synthetic Zipf-Mandelbrot corpus (benchmarks/bench_text.py): {nnz:,} stored entries '
        f'({nnz / args.n:.0f} terms per document on average), X takes {x_bytes / 2 ** 20:.0f} MiB as CSR '
        f'(densified it would take {args.n * args.v * 8 / 2 ** 30:.0f} GiB). Corpus built in {corpus_seconds:.1f} s. '
        f'Each call runs in a fresh process; seconds are the best of {args.repeats}, peak RSS is the increment over '
        'the RSS just before the first call (the largest over the repeats in brackets).',
        '',
        '| call | seconds | ratio to predict | peak RSS increment (MiB) |',
        '|---|---|---|---|',
    ]
    reference = rows[0][1]
    for name, seconds, first_peak, max_peak in rows:
        lines.append(f'| {name} | {seconds:.2f} | {seconds / reference:.1f} | {first_peak / 2 ** 20:.0f} '
                     f'({max_peak / 2 ** 20:.0f}) |')
    lines += ['', f'Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average '
              f'{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min) at the end of the run; '
              f'numpy {np.__version__}, scipy {scipy.__version__}.']
    write_results('\n'.join(lines) + '\n', args.out)


if __name__ == '__main__':
    main()
