"""Member-point networks: DBSCAN's noise rule (issue 13, item 2) and stability far from the members (item 5).

Before: no point was ever labelled noise, and rows far from the training data got NaN relevance (the pools'
shares overflowed) or relevance sums off by orders of magnitude (rounding-noise margins divided by) in float32,
with finite logits. Each test here fails on that code.
"""
import numpy as np
import pytest
import torch
from sklearn.cluster import DBSCAN, HDBSCAN, OPTICS, AgglomerativeClustering
from sklearn.datasets import load_iris
from sklearn.neighbors import NearestNeighbors
from zennit.attribution import Gradient

from zennit_clusters import ClusterComposite, explain, neuralize
from zennit_clusters.families.members.layers import DBSCAN_RULE, MEMBER_RULE


def standardize(X):
    return (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)


@pytest.fixture(scope='module')
def iris():
    return standardize(load_iris().data)


@pytest.fixture(scope='module')
def dbscan_cases(iris, digits):
    cases = {}
    for name, X, eps in (('iris', iris, 0.8), ('digits', standardize(digits)[:600], 4.0)):
        estimator = DBSCAN(eps=eps, min_samples=5).fit(X)
        jittered = X + np.random.default_rng(0).normal(size=X.shape) * 0.8 * eps / np.sqrt(X.shape[1]) * 2
        cases[name] = estimator, X, np.concatenate([X, jittered])
    return cases


def dbscan_rule(estimator, X_train, X):
    """DBSCAN's rule for new points: the cluster of a core sample within eps, else noise (-1)."""
    core = X_train[estimator.core_sample_indices_]
    distance, index = NearestNeighbors(n_neighbors=1).fit(core).kneighbors(X)
    labels = estimator.labels_[estimator.core_sample_indices_][index[:, 0]]
    return np.where(distance[:, 0] <= estimator.eps, labels, -1)


def zennit_path(model, X):
    x = torch.as_tensor(X)
    with Gradient(model.to(x.dtype), ClusterComposite()) as attributor:
        out, relevance = attributor(x, attr_output=lambda y: y * torch.nn.functional.one_hot(
            y.argmax(1), y.shape[1]).to(y.dtype))
    out = out.detach()
    label = torch.where(out.amax(1) < 0, -1, out.argmax(1))
    return label.numpy(), out.numpy(), relevance.numpy()


@pytest.mark.parametrize('case', ['iris', 'digits'])
def test_dbscan_noise_agreement_table(dbscan_cases, case):
    """Noise (label -1) exactly where DBSCAN's rule says so, in the closed form and the Zennit path; on the
    training points the labels (noise included) agree with labels_."""
    estimator, X_train, X = dbscan_cases[case]
    model = neuralize(estimator, X=X_train)
    assert model.noise_radius == estimator.eps and model.label_rule == DBSCAN_RULE
    rule = dbscan_rule(estimator, X_train, X)
    R, labels, logits = explain(model, X, return_logits=True)
    assert (rule == -1).sum() > 10 and (rule >= 0).sum() > 10
    assert np.array_equal(labels == -1, rule == -1)
    # every logit negative exactly on noise; the clusters otherwise are the member network's
    assert np.array_equal(logits.max(1) < 0, rule == -1)
    train = labels[:len(X_train)]
    assert np.array_equal(train == -1, estimator.labels_ == -1)
    assert (train == estimator.labels_).mean() >= 0.95
    explained = logits.argmax(1)
    evidence = logits[np.arange(len(X)), explained]
    assert np.allclose(R.sum(1), evidence, rtol=1e-9, atol=1e-9)
    rows = slice(None, None, 7 if case == 'iris' else 97)  # the layered path holds M^2 pairs per row
    z_labels, z_logits, z_R = zennit_path(model, X[rows])
    assert np.array_equal(z_labels, labels[rows]) and (z_labels == -1).any()
    assert np.allclose(z_logits, logits[rows], rtol=1e-12, atol=1e-12)
    assert np.allclose(z_R, R[rows], rtol=1e-8, atol=1e-8 * np.abs(R).max())


def test_noise_explanation_is_the_radius_margin(dbscan_cases):
    """A noise row explains its largest logit, eps^2 - |x - v*|^2 < 0, by eps^2 / D - (x_i - v*_i)^2."""
    estimator, X_train, X = dbscan_cases['iris']
    model = neuralize(estimator, X=X_train)
    R, labels, logits = explain(model, X, return_logits=True, beta=float('inf'))
    core = X_train[estimator.core_sample_indices_]
    noise = labels == -1
    _, index = NearestNeighbors(n_neighbors=1).fit(core).kneighbors(X[noise])
    expected = estimator.eps ** 2 / X.shape[1] - (X[noise] - core[index[:, 0]]) ** 2
    # with beta = inf all relevance goes to the smaller of f_c and e, which is e for a noise row
    assert np.allclose(R[noise], expected, rtol=1e-9, atol=1e-12)


def test_dbscan_noise_in_onnx_graph(dbscan_cases, tmp_path):
    ort = pytest.importorskip('onnxruntime')
    from exporters.onnx import export
    estimator, X_train, X = dbscan_cases['iris']
    rows = np.concatenate([X, np.full((1, X.shape[1]), np.nan)])
    path = tmp_path / 'dbscan.onnx'
    export(estimator, str(path), explain=True, training_data=X_train)
    session = ort.InferenceSession(str(path))
    dtype = np.float64 if session.get_inputs()[0].type == 'tensor(double)' else np.float32  # member networks: float64
    out = dict(zip([o.name for o in session.get_outputs()], session.run(None, {'X': rows.astype(dtype)})))
    rule = dbscan_rule(estimator, X_train, X)
    assert np.array_equal(out['label'][:-1] == -1, rule == -1)
    assert out['label'][-1] == -1 and not np.isfinite(out['logits'][-1]).all()  # NaN row: -1, non-finite logits
    assert (np.isfinite(out['logits'][:-1]).all(1) & (out['logits'][:-1].max(1) < 0) == (rule == -1)).all()


@pytest.mark.parametrize('make', [lambda: HDBSCAN(min_cluster_size=10, copy=True), lambda: OPTICS(min_samples=5),
                                  lambda: AgglomerativeClustering(3)])
def test_label_rule_of_partitions_without_noise_rule(iris, make):
    """HDBSCAN and OPTICS have no rule for new points in scikit-learn: the model says what its labels mean."""
    model = neuralize(make().fit(iris), X=iris)
    assert model.noise_radius is None and model.label_rule == MEMBER_RULE
    labels = explain(model, iris, return_logits=True)[1]
    assert (labels >= 0).all()


@pytest.mark.parametrize('make', [lambda: DBSCAN(eps=0.8, min_samples=5), lambda: AgglomerativeClustering(3)])
@pytest.mark.parametrize('distance', [1e3, 1e5, 1e8])
def test_far_from_members_float32(iris, make, distance):
    """float32 rows far from the members: no NaN where the logits are finite, and conservation."""
    model = neuralize(make().fit(iris), X=iris)
    X = np.random.default_rng(4).normal(size=(100, 4)) * distance
    R, labels, logits = explain(model, X.astype(np.float32), return_logits=True)
    finite = np.isfinite(logits).all(1)
    assert finite.all()
    assert np.isfinite(R).all()
    evidence = logits[np.arange(len(X)), logits.argmax(1)].astype(np.float64)
    error = np.abs(R.astype(np.float64).sum(1) - evidence)
    assert (error <= 1e-3 * np.abs(evidence) + 64 * np.finfo(np.float32).eps * np.abs(R).sum(1)).all()


def test_far_from_members_closed_form_matches_zennit(iris):
    """Far rows in float64: the closed form and the layer-by-layer Zennit rules give the same relevance."""
    model = neuralize(AgglomerativeClustering(3).fit(iris), X=iris)
    X = np.random.default_rng(5).normal(size=(12, 4)) * 1e4
    R, labels, logits = explain(model, X, return_logits=True)
    _, z_logits, z_R = zennit_path(model, X)
    assert np.allclose(z_logits, logits, rtol=1e-12)
    assert np.allclose(z_R, R, rtol=1e-7, atol=1e-9 * np.abs(R).max())
    assert np.allclose(R.sum(1), logits.max(1), rtol=1e-9)
