"""Bounded memory for any N (issue 11, item 1): every entry point's peak memory beyond its input and output does
not grow with the number of rows; and the chunked passes give what the unchunked arithmetic gives.

The peaks are measured in a fresh subprocess (tests/memory_probe.py: the kernel's resident high-water mark, reset
before each call, with glibc returning freed blocks at once), at two sizes of N with small chunks. Growth that is a
fraction of the input's growth fails the test: a float64 copy of float32 X is 2x, the k-means margins 48x.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_wine

import zennit_clusters as zc
import zennit_clusters.api as api

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: label bookkeeping of a partition (sorting the labels, each row's cluster index, the rows of each cluster) is
#: O(N) integers, about 40 bytes a row; X itself is never copied
PER_ROW_ALLOWANCE = {'neuralize_partition': 64}


@pytest.fixture(scope='module')
def peaks():
    if not os.path.exists('/proc/self/clear_refs'):
        pytest.skip('needs Linux /proc/self/clear_refs to reset the resident high-water mark')
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='131072', PYTHONPATH=ROOT + os.pathsep + os.environ.get(
        'PYTHONPATH', ''), OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'memory_probe.py')], capture_output=True,
                            text=True, timeout=600, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


CASES = ['neuralize_kmeans_X', 'neuralize_bisecting_X', 'neuralize_mixture_X', 'neuralize_partition',
         'explain_kmeans', 'explain_kmeans_logits', 'explain_mixture_full', 'explain_members', 'predict_evidence',
         'predict', 'removal_curves', 'fraction_leaving']


@pytest.mark.parametrize('case', CASES)
def test_peak_memory_beyond_input_and_output_does_not_grow_with_n(peaks, case):
    (n1, in1, extra1), (n2, in2, extra2) = peaks[case]
    assert n2 >= 4 * n1
    allowed = 0.1 * (in2 - in1) + PER_ROW_ALLOWANCE.get(case, 0) * (n2 - n1) + (1 << 20)
    assert extra2 - extra1 <= allowed, (
        f'{case}: {extra1 / 2**20:.1f} MiB beyond input and output at N = {n1}, {extra2 / 2**20:.1f} MiB at '
        f'N = {n2} (input {in1 / 2**20:.0f} -> {in2 / 2**20:.0f} MiB)')
    # and O(chunk) is small: a few chunks of 64 Ki elements, the models and the library's own buffers
    assert extra2 < 32 * 2**20


@pytest.fixture(scope='module')
def wine():
    X = load_wine().data
    return X, KMeans(4, n_init=2, random_state=0).fit(X)


def test_chunked_default_beta_equals_the_mean_over_all_rows(wine, monkeypatch):
    X, km = wine
    model = zc.neuralize(km)
    evidence = model(torch.from_numpy(X)).detach()
    expected = 1.0 / float(evidence.max(1).values.mean())
    monkeypatch.setattr(api, 'CHUNK_ELEMENTS', 7 * 13)  # 7 rows a chunk: many chunks, a ragged last one
    assert zc.neuralize(km, X=X).beta == pytest.approx(expected, rel=1e-12)
    assert zc.neuralize(km, X=X.astype(np.float32)).beta == pytest.approx(
        1.0 / float(model(torch.from_numpy(X.astype(np.float32).astype(np.float64))).max(1).values.mean()), rel=1e-12)
    rows = np.arange(len(X)) % 3 == 0
    assert api.resolve_beta(model, X, rows=rows) == pytest.approx(
        1.0 / float(evidence.max(1).values[torch.from_numpy(rows)].mean()), rel=1e-12)


def test_chunked_training_data_check_names_the_row_counted_in_x(wine, monkeypatch):
    X, km = wine
    monkeypatch.setattr(api, 'CHUNK_ELEMENTS', 5 * 13)
    bad = X.copy()
    bad[123, 4] = np.inf
    with pytest.raises(ValueError, match='infinity .first in row 123'):
        zc.neuralize(km, X=bad)
    with pytest.raises(ValueError, match='infinity .first in row 123'):
        zc.neuralize(km, X=bad, beta=1.0)  # checked where it sets nothing, in blocks too
    with pytest.raises(ValueError, match='infinity .first in row 123'):
        zc.neuralize(km).predict(bad)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_predict_and_predict_evidence_equal_the_forward_and_the_estimator(wine, dtype):
    X, km = wine
    model = zc.neuralize(km)
    x = X.astype(dtype)
    forward = model.to(torch.float64)(torch.from_numpy(x.astype(np.float64))).detach().numpy()
    evidence = model.predict_evidence(x, chunk_size=17)
    assert evidence.dtype == dtype and evidence.shape == (len(X), 4)
    # float32 within its rounding at the scale of the scores (wine's scores reach 1e5)
    scale = np.abs(forward).max() * (1e-5 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(evidence, forward, rtol=0, atol=scale)
    labels = model.predict(x, chunk_size=17)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, km.predict(X))
    out = np.empty_like(evidence)
    assert model.predict_evidence(x, chunk_size=17, out=out) is out
    np.testing.assert_array_equal(out, evidence)
    tensor = model.predict(torch.from_numpy(x))
    assert torch.is_tensor(tensor) and (tensor.numpy() == labels).all()
    with pytest.raises(ValueError, match='chunk_size'):
        model.predict(x, chunk_size=0)
    with pytest.raises(ValueError, match='features'):
        model.predict(x[:, :5])


def test_explain_without_logits_equals_explain_with_them(wine):
    X, km = wine
    relevance = zc.explain(km, X, chunk_size=11)
    with_logits, labels, logits = zc.explain(km, X, chunk_size=11, return_logits=True)
    np.testing.assert_array_equal(relevance, with_logits)
    np.testing.assert_array_equal(labels, km.predict(X))
