"""The optional ``parts`` output (per-competitor parts of the explanation) under real onnxruntime, against the
closed form, for centroid models, mixtures and member networks; refused where a family has none."""
import numpy as np
import onnx
import pytest
from sklearn.cluster import BisectingKMeans, KMeans
from sklearn.datasets import load_wine
from sklearn.mixture import GaussianMixture

from zennit_clusters import explain, neuralize, neuralize_partition
from exporters.onnx import export, make_session


@pytest.fixture(scope='module')
def wine_scaled():
    X = load_wine().data
    return (X - X.mean(0)) / X.std(0)


def models(X):
    labels = KMeans(3, n_init=2, random_state=0).fit_predict(X[::3])
    return {
        'KMeans': KMeans(3, n_init=2, random_state=0).fit(X),
        'BisectingKMeans': BisectingKMeans(4, random_state=0).fit(X),
        'GaussianMixture-tied': GaussianMixture(3, covariance_type='tied', random_state=0).fit(X),
        'GaussianMixture-diag': GaussianMixture(3, covariance_type='diag', random_state=0).fit(X),
        'partition': neuralize_partition(X[::3], labels),
    }


@pytest.mark.parametrize('name', ['BisectingKMeans', 'GaussianMixture-diag', 'partition'])
def test_parts_output_matches_closed_form(tmp_path, wine_scaled, name):
    X = wine_scaled
    estimator = models(X)[name]
    path = tmp_path / f'{name}.onnx'
    result = export(estimator, path, per_competitor=True, dtype='float64', X=X)
    assert result.outputs == ('label', 'logits', 'relevance', 'parts') and result.check.passed
    proto = onnx.load(path)
    assert [value.name for value in proto.graph.output] == ['label', 'logits', 'relevance', 'parts']
    assert {p.key: p.value for p in proto.metadata_props}['per_competitor'] == 'true'
    session = make_session(str(path))
    label, logits, relevance, parts = session.run(None, {'X': X})
    model = neuralize(estimator)
    expected = explain(model, X, per_competitor=True)
    np.testing.assert_allclose(parts, expected, rtol=1e-7, atol=1e-9 * np.abs(expected).max())
    np.testing.assert_allclose(parts.sum(1), relevance, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(relevance, explain(model, X), rtol=1e-7, atol=1e-9 * np.abs(relevance).max())


def test_parts_output_float32_kmeans(tmp_path, wine_scaled):
    X = wine_scaled
    estimator = KMeans(3, n_init=2, random_state=0).fit(X)
    path = tmp_path / 'kmeans32.onnx'
    result = export(estimator, path, per_competitor=True, X=X)
    assert result.dtype == 'float32' and result.check.passed
    _, _, relevance, parts = make_session(str(path)).run(None, {'X': X.astype(np.float32)})
    expected = explain(neuralize(estimator), X, per_competitor=True)
    np.testing.assert_allclose(parts, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


def test_parts_output_refused_without_pairwise_margins(tmp_path, wine_scaled):
    from sklearn.cluster import DBSCAN
    from sklearn.datasets import load_iris
    X = load_iris().data
    X = (X - X.mean(0)) / X.std(0)
    dbscan = DBSCAN(eps=0.8, min_samples=5).fit(X)
    with pytest.raises(ValueError, match='noise rule'):
        export(dbscan, tmp_path / 'dbscan.onnx', per_competitor=True, training_data=X)
