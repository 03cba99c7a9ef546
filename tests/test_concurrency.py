"""Explanations under concurrency (issue 13, item 6; docs/concurrency.md).

- ``explain()`` from several threads at once gives exactly the sequential result (k-means' compiled kernel, a
  mixture, a member-point network, a pipeline; numpy and torch input).
- A ``spawn`` process pool gives the same explanations as this process.
- A ``fork`` pool started after torch has run its thread pool can hang (GNU OpenMP's threads do not survive
  fork); the demonstration runs only on request (ZENNIT_CLUSTERS_FORK_DEMO=1), in a subprocess with a timeout.
"""
import multiprocessing
import os
import pathlib
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from zennit_clusters import explain, neuralize

import process_workers

HERE = pathlib.Path(__file__).parent


@pytest.fixture(scope='module')
def models(digits, wine):
    return {
        'kmeans': (neuralize(KMeans(10, n_init=1, random_state=0).fit(digits)), digits),
        'gmm full': (neuralize(GaussianMixture(3, random_state=0).fit(wine)), wine),
        'agglomerative': (neuralize(AgglomerativeClustering(3).fit(wine), X=wine), wine),
        'pipeline': (neuralize(make_pipeline(StandardScaler(), KMeans(3, n_init=1, random_state=0)).fit(wine)), wine),
    }


@pytest.mark.parametrize('name', ['kmeans', 'gmm full', 'agglomerative', 'pipeline'])
@pytest.mark.parametrize('as_tensor', [False, True])
def test_threads_give_the_sequential_result(models, name, as_tensor):
    model, X = models[name]
    X = torch.as_tensor(X) if as_tensor else X
    reversed_rows = X.flip(0) if as_tensor else X[::-1]
    jobs = [(X[i::4], None) for i in range(4)] + [(X, 37), (reversed_rows, None)]  # chunks, small chunks, strided
    sequential = [explain(model, rows, chunk_size=chunk) for rows, chunk in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(2):
            concurrent = list(pool.map(lambda job: explain(model, job[0], chunk_size=job[1]), jobs * 2))
            for got, expected in zip(concurrent, sequential * 2):
                assert (torch.equal(got, expected) if as_tensor else np.array_equal(got, expected))


@pytest.mark.slow
def test_spawn_pool_gives_the_same_explanations(models):
    """A spawn-started pool (the recommended start method once torch has run) explains as this process does."""
    jobs = [(models[name][0], models[name][1][i::2]) for name in ('kmeans', 'gmm full') for i in range(2)]
    with multiprocessing.get_context('spawn').Pool(2) as pool:
        results = pool.map(process_workers.explain_rows, jobs, chunksize=1)
    assert all(pid != os.getpid() for pid, _ in results)
    for (model, rows), (_, relevance) in zip(jobs, results):
        expected = explain(model, rows)
        # a child may run torch with another number of threads: the same sums in another order at most
        np.testing.assert_allclose(relevance, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_docs_recommend_spawn():
    text = (HERE.parent / 'docs' / 'concurrency.md').read_text()
    assert "get_context('spawn')" in text and 'fork' in text and 'hang' in text


@pytest.mark.skipif(os.environ.get('ZENNIT_CLUSTERS_FORK_DEMO') != '1',
                    reason='a demonstration that may hang for its timeout; set ZENNIT_CLUSTERS_FORK_DEMO=1')
def test_fork_pool_after_torch_can_hang(digits):
    """Stable to assert: the pattern either finishes with correct shapes or hangs; it never raises. (On the 2-core
    development machine it hung 3 times in 3; with torch.set_num_threads(1) before the fork it finished.)"""
    code = ('import sys, numpy as np; sys.path.insert(0, sys.argv[1]); import process_workers; '
            'from sklearn.datasets import load_digits; '
            'print(process_workers.fork_after_torch(load_digits().data[:400]))')
    # its own session, so that a hang is ended with the pool's forked workers, not only the parent
    process = subprocess.Popen([sys.executable, '-c', code, str(HERE)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return  # the documented hang
    assert process.returncode == 0, stderr
    assert '(400, 64)' in stdout
