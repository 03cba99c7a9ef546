"""``model.predict`` and ``model.predict_evidence``, the chunked forms of ``model(x)``, for every local family.

They read each family's cheap ``evidence()``, a second implementation of the forward pass; this test holds it
to the forward (float64, tight) and to the estimator's own labels, at any chunk size.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import DBSCAN, AgglomerativeClustering, BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.datasets import load_wine
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from zennit_clusters import explain, neuralize, neuralize_partition


@pytest.fixture(scope='module')
def wine_scaled():
    return StandardScaler().fit_transform(load_wine().data)


def _models(X):
    """(name, neuralized model, the labels the estimator gives X)."""
    out = []
    for name, estimator in [('kmeans', KMeans(3, n_init=3, random_state=0)),
                            ('minibatch', MiniBatchKMeans(3, n_init=3, random_state=0)),
                            ('bisecting', BisectingKMeans(4, random_state=0))]:
        estimator.fit(X)
        out.append((name, neuralize(estimator), estimator.predict(X)))
    for covariance in ('full', 'tied', 'diag', 'spherical'):
        mixture = GaussianMixture(3, covariance_type=covariance, random_state=0).fit(X)
        out.append((f'gmm-{covariance}', neuralize(mixture), mixture.predict(X)))
    pipeline = make_pipeline(StandardScaler(), Normalizer(), KMeans(3, n_init=3, random_state=0)).fit(X)
    out.append(('scaler+normalizer', neuralize(pipeline, X=X), pipeline.predict(X)))
    partition = AgglomerativeClustering(3).fit(X)
    out.append(('partition', neuralize_partition(X, partition.labels_), partition.labels_))
    dbscan = DBSCAN(eps=2.3, min_samples=5).fit(X)
    # labels_ (noise -1) on the training points; the network's rule for new points is tested in the members tests
    out.append(('dbscan', neuralize(dbscan, X=X), None))
    return out


@pytest.fixture(scope='module')
def models(wine_scaled):
    return _models(wine_scaled)


def test_predict_is_the_forward_and_the_estimators_labels(models, wine_scaled):
    x = torch.as_tensor(wine_scaled)
    for name, model, labels in models:
        with torch.no_grad():
            forward = model(x).numpy()
        evidence = model.predict_evidence(wine_scaled)
        np.testing.assert_allclose(evidence, forward, rtol=1e-10, atol=1e-10, err_msg=name)
        predicted = model.predict(wine_scaled)
        np.testing.assert_array_equal(predicted, explain(model, wine_scaled, return_logits=True)[1], err_msg=name)
        if labels is not None:
            np.testing.assert_array_equal(predicted, labels, err_msg=name)
        else:  # DBSCAN: noise exactly where every logit is negative
            assert (predicted == -1).any() and np.array_equal(predicted == -1, forward.max(1) < 0)


@settings(max_examples=15, deadline=None)
@given(chunk=st.integers(1, 200), which=st.integers(0, 9))
def test_any_chunk_size_gives_the_same_result(models, wine_scaled, chunk, which):
    name, model, _ = models[which % len(models)]
    whole = model.predict_evidence(wine_scaled)
    # to rounding: a matrix product's summation order depends on the block's shape (BLAS)
    np.testing.assert_allclose(model.predict_evidence(wine_scaled, chunk_size=chunk), whole, rtol=1e-13,
                               atol=1e-13 * np.abs(whole).max(), err_msg=name)
    np.testing.assert_array_equal(model.predict(wine_scaled, chunk_size=chunk), model.predict(wine_scaled))
