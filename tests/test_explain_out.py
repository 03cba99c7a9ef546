"""explain(out=...): the relevance written into the caller's buffer, and buffers that cannot hold it refused."""
import math

import numpy as np
import pytest
import torch
from sklearn.cluster import BisectingKMeans, KMeans

from zennit_clusters import explain


@pytest.mark.parametrize('container', ['numpy', 'torch'])
@pytest.mark.parametrize('estimator_type', [KMeans, BisectingKMeans])
def test_explain_writes_into_out(digits, container, estimator_type):
    estimator = estimator_type(n_clusters=4, random_state=0).fit(digits)
    X = digits[:300].astype(np.float32)
    X = torch.from_numpy(X) if container == 'torch' else X
    expected = explain(estimator, X)
    out = np.full(X.shape, np.nan, np.float32) if container == 'numpy' else torch.full(X.shape, math.nan)
    result = explain(estimator, X, out=out, chunk_size=128)
    assert result is out
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))


def test_explain_out_with_a_pipeline_head(digits):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    pipeline = make_pipeline(StandardScaler(), KMeans(n_clusters=3, n_init=1, random_state=0)).fit(digits)
    out = np.empty_like(digits)
    assert explain(pipeline, digits, out=out) is out
    np.testing.assert_allclose(out, explain(pipeline, digits), rtol=0, atol=0)


@pytest.mark.parametrize('bad, message', [
    (lambda X: np.empty((X.shape[0], X.shape[1] + 1)), r'shape \(50, 64\).*got a ndarray of shape \(50, 65\)'),
    (lambda X: np.empty(X.shape, np.float32), r'dtype float64.*dtype float32'),
    (lambda X: np.empty(X.shape[::-1]).T, r'got a non-contiguous'),
    (lambda X: torch.empty(X.shape, dtype=torch.float64), r'numpy array.*got Tensor'),
    (lambda X: [[0.0] * 64] * 50, r'numpy array.*got list'),
])
def test_explain_rejects_an_out_that_cannot_hold_the_result(digits, bad, message):
    X = digits[:50]
    estimator = KMeans(n_clusters=3, n_init=1, random_state=0).fit(X)
    with pytest.raises((TypeError, ValueError), match=message):
        explain(estimator, X, out=bad(X))


def test_explain_out_may_be_x_itself_but_not_overlap_it(digits):
    estimator = KMeans(n_clusters=3, n_init=1, random_state=0).fit(digits)
    expected = explain(estimator, digits)
    X = digits.copy()
    assert explain(estimator, X, out=X) is X
    np.testing.assert_array_equal(X, expected)
    buffer = np.concatenate([digits, digits[:1]])
    with pytest.raises(ValueError, match='overlaps X'):
        explain(estimator, buffer[:-1], out=buffer[1:])


def test_explain_rejects_a_read_only_out_and_a_numpy_out_for_tensor_input(digits):
    X = digits[:50]
    estimator = KMeans(n_clusters=3, n_init=1, random_state=0).fit(X)
    read_only = np.empty_like(X)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match='writeable'):
        explain(estimator, X, out=read_only)
    with pytest.raises(TypeError, match='tensor X gives tensor relevance'):
        explain(estimator, torch.from_numpy(X), out=np.empty_like(X))
