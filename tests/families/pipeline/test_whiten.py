"""k-means after ``PCA(whiten=True)``: centroid margins under the metric ``M = C^T diag(1/ev) C``, exactly.

Real data (wine and breast cancer as DataFrames, digits). For KMeans, MiniBatchKMeans and BisectingKMeans behind a
whitened PCA: labels == ``pipeline.predict`` on every row, the evidence == the z-space k-means margins,
conservation in float64, a slow reference written from the equations (tests/references/centroids.py), the Zennit
path == the closed form, contrast / per-competitor sums, the ONNX graph under onnxruntime, and a property test over
random n_components, whiten and K.
"""
import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from references.centroids import bisecting_pairs, kmeans_pairs, metric_neon_reference, whitened_sites
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, OneHotEncoder, StandardScaler
from zennit.attribution import Gradient

from zennit_clusters import ClusterComposite, explain, make_explainer, neuralize

pytestmark = [pytest.mark.filterwarnings('error:X does not have valid feature names'),
              pytest.mark.filterwarnings('error:X has feature names')]

HEADS = {
    'kmeans': lambda k: KMeans(k, n_init=3, random_state=0),
    'minibatch': lambda k: MiniBatchKMeans(k, n_init=3, random_state=0),
    'bisecting': lambda k: BisectingKMeans(k, random_state=0),
}
DATA = {
    'wine': lambda: load_wine(as_frame=True).data,
    'cancer': lambda: load_breast_cancer(as_frame=True).data,
    'digits': lambda: load_digits().data.astype(np.float64),
}


def _site_pairs(pipeline, cluster, sites):
    """The explained cluster's margin pairs as input-space sites (k-means: c against every other centroid;
    bisecting: the (child, sibling) splits of its path, the tree's node centres mapped by the PCA's inverse)."""
    head, pca = pipeline[-1], pipeline[-2]
    if isinstance(head, BisectingKMeans):
        return [tuple(whitened_sites(np.stack(pair), pca)[0]) for pair in bisecting_pairs(head, cluster)]
    return kmeans_pairs(sites, cluster)


def _zennit(model, X, labels):
    onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), model.n_clusters).double()
    with Gradient(model, ClusterComposite()) as attributor:
        _, relevance = attributor(torch.as_tensor(np.array(X, dtype=np.float64)), attr_output=lambda y: y * onehot)
    return relevance.numpy()


def _check(pipeline, X, u, rows=8):
    """Labels, evidence, conservation, the reference on ``rows`` rows and the Zennit path; ``u`` is what the PCA
    takes (the scaled data)."""
    model = neuralize(pipeline, X=X)
    relevance, labels, logits = explain(model, X, return_logits=True)
    relevance, labels, logits = (np.asarray(v) for v in (relevance, labels, logits))
    np.testing.assert_array_equal(labels, pipeline.predict(X))
    evidence = logits[np.arange(len(labels)), labels]
    assert (evidence >= 0).all()
    scale = np.abs(evidence).max()
    np.testing.assert_allclose(relevance.sum(1), evidence, rtol=1e-10, atol=1e-10 * scale)
    # the network's forward is the same evidence
    np.testing.assert_allclose(model(torch.as_tensor(np.array(X, dtype=np.float64))).detach().numpy(), logits,
                               rtol=1e-10, atol=1e-10 * np.abs(logits).max())
    head, pca = pipeline[-1], pipeline[-2]
    if not isinstance(head, BisectingKMeans):  # k-means' own margins in z
        z = pipeline[:-1].transform(X)
        z = np.asarray(z)
        distances = ((z[:, None] - head.cluster_centers_[None]) ** 2).sum(-1)
        own = distances[np.arange(len(z)), labels].copy()
        distances[np.arange(len(z)), labels] = np.inf
        np.testing.assert_allclose(evidence, distances.min(1) - own, rtol=1e-9, atol=1e-9 * scale)
    sites, metric = whitened_sites(head.cluster_centers_, pca)
    for row in np.linspace(0, len(labels) - 1, rows).astype(int):
        expected_f, expected = metric_neon_reference(u[row], _site_pairs(pipeline, labels[row], sites), metric,
                                                     model.beta)
        assert evidence[row] == pytest.approx(expected_f, rel=1e-8, abs=1e-9 * scale)
        np.testing.assert_allclose(relevance[row], expected, rtol=1e-6, atol=1e-8 * np.abs(expected).max())
    zennit_relevance = _zennit(model, X, labels)
    np.testing.assert_allclose(zennit_relevance, relevance, rtol=1e-8, atol=1e-10 * np.abs(relevance).max())
    return model, relevance, labels


@pytest.mark.parametrize('head', HEADS)
@pytest.mark.parametrize('data', DATA)
def test_whitened_pca_is_exact(data, head):
    X = DATA[data]()
    pipeline = make_pipeline(StandardScaler(), PCA(6, whiten=True), HEADS[head](4)).fit(X)
    model, relevance, _ = _check(pipeline, X, pipeline[0].transform(X))
    assert model.head.has_metric
    if isinstance(X, pd.DataFrame):
        assert list(explain(model, X).columns) == list(X.columns)


def test_whitened_pca_after_encoders(cancer_frame_with_colour):
    """One-hot columns before the whitened PCA: exact on the encoded columns, summed back onto the user's."""
    frame = cancer_frame_with_colour
    pipeline = make_pipeline(
        ColumnTransformer([('num', StandardScaler(), make_column_selector(dtype_include='number')),
                           ('cat', OneHotEncoder(sparse_output=False), ['colour'])]),
        PCA(5, whiten=True), KMeans(3, n_init=3, random_state=0)).fit(frame)
    model = neuralize(pipeline, X=frame)
    encoded = model.encode(frame)
    pipeline_numeric = model.numeric_estimator(pipeline)
    _check(pipeline_numeric, encoded, encoded)
    grouped, labels, logits = explain(model, frame, return_logits=True)
    np.testing.assert_array_equal(labels.to_numpy(), pipeline.predict(frame))
    assert list(grouped.columns) == list(frame.columns)
    evidence = logits.to_numpy()[np.arange(len(frame)), labels.to_numpy()]
    np.testing.assert_allclose(grouped.to_numpy().sum(1), evidence, rtol=1e-10, atol=1e-10 * evidence.max())


@pytest.fixture(scope='module')
def cancer_frame_with_colour():
    frame = load_breast_cancer(as_frame=True).data
    frame['colour'] = np.random.default_rng(1).choice(['red', 'white', 'rose'], len(frame))
    return frame


@pytest.mark.parametrize('head', ['kmeans', 'bisecting'])
def test_normalizer_after_whitened_pca(head):
    X = load_wine(as_frame=True).data
    pipeline = make_pipeline(StandardScaler(), PCA(4, whiten=True), Normalizer(), HEADS[head](3)).fit(X)
    model = neuralize(pipeline, X=X)
    relevance, labels, logits = explain(model, X, return_logits=True)
    np.testing.assert_array_equal(labels.to_numpy(), pipeline.predict(X))
    evidence = logits.to_numpy()[np.arange(len(X)), labels.to_numpy()]
    np.testing.assert_allclose(relevance.to_numpy().sum(1), evidence, rtol=1e-10, atol=1e-10 * evidence.max())
    np.testing.assert_allclose(_zennit(model, X, labels.to_numpy()), relevance.to_numpy(), rtol=1e-8,
                               atol=1e-10 * np.abs(relevance.to_numpy()).max())


@pytest.mark.parametrize('head', ['kmeans', 'bisecting'])
def test_contrast_per_competitor_and_reference(head):
    X = load_wine().data
    pipeline = make_pipeline(StandardScaler(), PCA(5, whiten=True), HEADS[head](4)).fit(X)
    model = neuralize(pipeline, X=X)
    relevance, labels, logits = explain(model, X, return_logits=True)
    scale = np.abs(relevance).max()
    parts = explain(model, X, per_competitor=True)
    np.testing.assert_allclose(parts.sum(1), relevance, rtol=1e-9, atol=1e-10 * scale)
    assert (parts[np.arange(len(X)), labels] == 0).all()
    competitor = (labels + 1) % model.n_clusters
    contrast = explain(model, X, contrast=competitor)
    if head == 'kmeans':  # h_ck = |z - mu_k|^2 - |z - mu_c|^2 in the whitened space
        z = pipeline[:-1].transform(X)
        centres = pipeline[-1].cluster_centers_
        h = ((z - centres[competitor]) ** 2).sum(1) - ((z - centres[labels]) ** 2).sum(1)
    else:  # the margin of the split that separates c from k, from the layered network
        margins = model.head.margin(model.prefix(torch.as_tensor(X))).detach().numpy()
        pairs = make_explainer(model.head).column.numpy()[labels, competitor]
        h = margins[np.arange(len(X)), labels, pairs]
    np.testing.assert_allclose(contrast.sum(1), h, rtol=1e-9, atol=1e-10 * np.abs(h).max())
    toward_mean = explain(model, X, reference='mean')
    evidence = logits[np.arange(len(X)), labels]
    np.testing.assert_allclose(toward_mean.sum(1), evidence, rtol=1e-9, atol=1e-10 * evidence.max())


@pytest.mark.parametrize('head,dtype', [('kmeans', 'float32'), ('bisecting', 'float64')])
def test_onnx_graph(tmp_path, head, dtype):
    from exporters.onnx import export, make_session
    X = load_wine(as_frame=True).data
    pipeline = make_pipeline(StandardScaler(), PCA(5, whiten=True), HEADS[head](3)).fit(X)
    result = export(pipeline, tmp_path / 'model.onnx', explain=True, X=X, training_data=X, dtype=dtype)
    assert result.check.passed
    session = make_session(str(tmp_path / 'model.onnx'), 'cpu')
    names = [output.name for output in session.get_outputs()]
    got = dict(zip(names, session.run(None, {'X': np.ascontiguousarray(X.to_numpy(), dtype=dtype)})))
    np.testing.assert_array_equal(got['label'], pipeline.predict(X))
    closed = explain(neuralize(pipeline, X=X), X.to_numpy())
    rtol, atol = (1e-3, 1e-4) if dtype == 'float32' else (1e-9, 1e-11)
    np.testing.assert_allclose(got['relevance'], closed, rtol=rtol, atol=atol * np.abs(closed).max())


@settings(max_examples=20, deadline=None)
@given(n_components=st.integers(1, 9), whiten=st.booleans(), n_clusters=st.integers(2, 6),
       head=st.sampled_from(sorted(HEADS)), seed=st.integers(0, 2 ** 16))
def test_random_whitening_property(n_components, whiten, n_clusters, head, seed):
    X = load_wine().data[np.random.default_rng(seed).permutation(178)[:120]]
    head_model = HEADS[head](n_clusters).set_params(random_state=seed)
    pipeline = make_pipeline(StandardScaler(), PCA(n_components, whiten=whiten), head_model).fit(X)
    model = neuralize(pipeline, X=X)
    assert model.head.has_metric == whiten
    relevance, labels, logits = explain(model, X, return_logits=True)
    np.testing.assert_array_equal(labels, pipeline.predict(X))
    evidence = logits[np.arange(len(X)), labels]
    np.testing.assert_allclose(relevance.sum(1), evidence, rtol=1e-10, atol=1e-10 * np.abs(evidence).max())
    if whiten:
        u = pipeline[0].transform(X)
        sites, metric = whitened_sites(pipeline[-1].cluster_centers_, pipeline[1])
        row = seed % len(X)
        expected_f, expected = metric_neon_reference(u[row], _site_pairs(pipeline, labels[row], sites), metric,
                                                     model.beta)
        np.testing.assert_allclose(relevance[row], expected, rtol=1e-6, atol=1e-8 * np.abs(expected).max())


def test_euclidean_models_are_unchanged_and_old_pickles_load():
    X = load_wine().data
    plain = neuralize(make_pipeline(StandardScaler(), PCA(3), KMeans(3, n_init=2, random_state=0)).fit(X))
    assert plain.head.margin.directions is None and not plain.head.has_metric
    assert not any('directions' in key for key in plain.state_dict())
    # a module pickled before the metric existed has no 'directions' buffer
    head = plain.head
    del head.margin._buffers['directions']
    restored = pickle.loads(pickle.dumps(head))
    assert restored.margin.directions is None
    np.testing.assert_allclose(explain(restored, plain.prefix(torch.as_tensor(X)).numpy()),
                               explain(plain, X), rtol=1e-12, atol=1e-12)


def test_sparse_input_is_refused_for_a_metric():
    X = load_wine().data
    model = neuralize(make_pipeline(PCA(3, whiten=True), KMeans(3, n_init=2, random_state=0)).fit(X))
    assert model.has_metric
    with pytest.raises(TypeError, match='metric of its own'):
        explain(model, scipy.sparse.csr_matrix(X))


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_compiled_pass_equals_the_torch_form(dtype):
    """k-means under a metric runs the compiled k-means row step on CPU (with one table per explained cluster); the
    torch form (what runs on other devices and in exported graphs) gives the same labels, logits and relevance."""
    from zennit_clusters import compiled
    fit = load_digits().data.astype(np.float64)  # a PCA fitted in float32 is not orthonormal to 1e-8 (refused)
    pipeline = make_pipeline(StandardScaler(), PCA(12, whiten=True), KMeans(7, n_init=2, random_state=0)).fit(fit)
    model = neuralize(pipeline, X=fit)
    X = fit.astype(dtype)
    from zennit_clusters.families.centroids import row_step
    assert row_step.available()  # built with the extensions (make test builds them)
    fast, labels, logits = explain(model, X, return_logits=True)
    with compiled.torch_only():
        slow, slow_labels, slow_logits = explain(model, X, return_logits=True)
    np.testing.assert_array_equal(labels, slow_labels)
    np.testing.assert_allclose(logits, slow_logits, rtol=1e-5, atol=1e-5 * np.abs(slow_logits).max())
    if dtype == np.float64:  # a fixed cluster: f_c < 0 on most rows, unbounded factors (float32 rounding differs)
        fixed = explain(model, X, cluster=2)
        with compiled.torch_only():
            np.testing.assert_allclose(fixed, explain(model, X, cluster=2), rtol=1e-10,
                                       atol=1e-10 * np.abs(fixed).max())
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(fast, slow, rtol=tolerance, atol=tolerance * np.abs(slow).max())
    assert fast.dtype == dtype
