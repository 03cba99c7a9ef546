"""Pipelines of per-feature scalers and a clustering model: exact labels, relevance of the raw features."""
import numpy as np
import pytest
import torch
from sklearn.cluster import BisectingKMeans, KMeans
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from zennit.attribution import Gradient

from zennit_clusters import ClusterComposite, explain, make_explainer, neuralize

PIPELINES = {
    'standard+kmeans': lambda: make_pipeline(StandardScaler(), KMeans(n_clusters=3, n_init=3, random_state=0)),
    'minmax+bisecting': lambda: make_pipeline(MinMaxScaler((-1, 2)), BisectingKMeans(n_clusters=4, random_state=0)),
    'robust+maxabs+kmeans': lambda: make_pipeline(RobustScaler(), MaxAbsScaler(),
                                                  KMeans(n_clusters=3, n_init=3, random_state=0)),
    'passthrough+kmeans': lambda: make_pipeline('passthrough', KMeans(n_clusters=3, n_init=3, random_state=0)),
}


@pytest.mark.parametrize('name', PIPELINES)
@pytest.mark.parametrize('offset', [0.0, 1000.0])
def test_pipeline_labels_and_relevance(wine, name, offset):
    X = wine + offset
    pipeline = PIPELINES[name]().fit(X)
    model = neuralize(pipeline, X=X)
    np.testing.assert_array_equal(model(torch.as_tensor(X)).argmax(1).numpy(), pipeline.predict(X))
    relevance, labels, logits = explain(model, X, return_logits=True)
    np.testing.assert_array_equal(labels, pipeline.predict(X))
    np.testing.assert_allclose(relevance.sum(1), logits[np.arange(len(X)), labels], rtol=1e-9, atol=1e-9)
    # the relevance of raw feature i is the head's relevance of scaled feature i
    Z = pipeline[:-1].transform(X)
    head = neuralize(pipeline[-1], X=Z)
    assert head.beta == pytest.approx(model.beta, rel=1e-12)
    np.testing.assert_allclose(relevance, explain(head, Z), rtol=1e-6, atol=1e-8 * np.abs(relevance).max())
    # the zennit path agrees
    with Gradient(model, ClusterComposite()) as attributor:
        onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), model.n_clusters).double()
        _, zennit_relevance = attributor(torch.as_tensor(X), attr_output=lambda y: y * onehot)
    np.testing.assert_allclose(zennit_relevance.numpy(), relevance, rtol=1e-6, atol=1e-8 * np.abs(relevance).max())
    # float32 far from the origin stays exact
    X32 = X.astype(np.float32)
    _, labels32, _ = explain(model, X32, return_logits=True)
    np.testing.assert_array_equal(labels32, pipeline.predict(X32.astype(np.float64)))


def test_cluster_centers_are_in_raw_coordinates(wine):
    pipeline = PIPELINES['standard+kmeans']().fit(wine)
    model = neuralize(pipeline)
    centres = model.cluster_centers.numpy()
    np.testing.assert_allclose(pipeline[0].transform(centres), pipeline[-1].cluster_centers_, rtol=1e-9, atol=1e-9)
    assert model.source == 'Pipeline(StandardScaler, KMeans)'
    assert isinstance(make_explainer(pipeline), torch.nn.Module)


def test_unsupported_step_is_refused(wine):
    from sklearn.preprocessing import PolynomialFeatures
    pipeline = make_pipeline(PolynomialFeatures(), KMeans(n_clusters=3, n_init=2, random_state=0)).fit(wine)
    with pytest.raises(TypeError, match="step 'polynomialfeatures' is a PolynomialFeatures; the steps that can"):
        neuralize(pipeline)
    # whitened PCA is folded for centroid models (test_whiten.py) and mixtures (test_mixture_projection.py), not
    # for a member network (its distances take no metric)
    from sklearn.cluster import DBSCAN
    whitened = make_pipeline(PCA(3, whiten=True), DBSCAN(eps=0.5, min_samples=4)).fit(wine)
    with pytest.raises(TypeError, match='is whitened .*no member network there'):
        neuralize(whitened, X=wine)


def test_unfitted_pipeline():
    with pytest.raises(ValueError, match='not fitted'):
        neuralize(PIPELINES['standard+kmeans']())


@pytest.mark.parametrize('covariance_type', ['diag', 'spherical'])
def test_pipeline_with_a_mixture_reports_the_constant(wine, covariance_type):
    """A scaled mixture keeps the head's constant term: sum R + R_const == f_c (not a silent zero)."""
    from sklearn.mixture import GaussianMixture
    from zennit_clusters import explain_with_constant
    pipeline = make_pipeline(StandardScaler(), GaussianMixture(3, covariance_type=covariance_type,
                                                               random_state=0)).fit(wine)
    relevance, constant, labels, logits = explain_with_constant(pipeline, wine, return_logits=True)
    np.testing.assert_allclose(relevance.sum(1) + constant, logits[np.arange(len(wine)), labels], rtol=1e-9, atol=1e-9)
    assert np.abs(constant).max() > 1e-3
    head_relevance, head_constant = explain_with_constant(pipeline[-1], pipeline[0].transform(wine))
    np.testing.assert_allclose(constant, head_constant, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(relevance, head_relevance, rtol=1e-7, atol=1e-9)
