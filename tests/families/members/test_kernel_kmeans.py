"""Kernel k-means: the estimator, and its member-point network against the estimator and the equations.

The reference (tests/reference_members.py) is plain numpy with explicit loops over member pairs.
"""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from zennit.attribution import Gradient

from zennit_clusters import ClusterComposite, explain, make_explainer, neuralize
from zennit_clusters.families.members.converters import member_gamma
from zennit_clusters import KernelKMeans
from zennit_clusters import NeuralizedMembers
from references.members import kernel_kmeans_rule, member_network_reference


def standardize(X):
    return (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)


@pytest.fixture(scope='module')
def iris():
    data = load_iris()
    return standardize(data.data), data.target


@pytest.fixture(scope='module')
def datasets(iris, wine, digits):
    """Real data with the true classes: iris and wine standardized, a digits subsample scaled to [0, 1]."""
    from sklearn.datasets import load_digits, load_wine
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(len(digits), 400, replace=False))
    return {'iris': (iris[0], iris[1], 3), 'wine': (standardize(wine), load_wine().target, 3),
            'digits': (digits[rows] / 16.0, load_digits().target[rows], 10)}


@pytest.fixture(scope='module')
def fitted(datasets):
    out = {}
    for name, (X, _, k) in datasets.items():
        out[name] = KernelKMeans(k, n_init=3, random_state=0).fit(X)
    return out


def assert_conserved(relevance, evidence, rel=1e-9):
    """sum_d R_d == f_c up to rounding, relative to the size of the relevances (which can cancel)."""
    error = np.abs(relevance.sum(1) - evidence)
    bound = rel * (np.abs(relevance).sum(1) + np.abs(evidence)) + 1e-12
    worst = int(np.argmax(error / bound))
    assert (error <= bound).all(), f'row {worst}: sum R = {relevance[worst].sum()!r}, f_c = {evidence[worst]!r}'


def zennit_relevance(model, x, cluster=None, beta=None):
    x = torch.as_tensor(x)
    with Gradient(model, ClusterComposite(beta=beta)) as attributor:
        def seed(logits):
            chosen = logits.argmax(1) if cluster is None else torch.full((len(logits),), cluster)
            return logits * torch.nn.functional.one_hot(chosen, logits.shape[1]).to(logits.dtype)
        output, relevance = attributor(x, attr_output=seed)
    return output.detach().numpy(), relevance.numpy()


# -- the estimator ---------------------------------------------------------------------------------------------

def test_estimator_api(iris):
    X, _ = iris
    model = KernelKMeans(3, gamma=0.5, n_init=2, random_state=0)
    assert model.get_params() == {'n_clusters': 3, 'gamma': 0.5, 'assignment': 'mean_kernel', 'n_init': 2,
                                  'max_iter': 100, 'random_state': 0}
    assert clone(model).set_params(n_clusters=4).n_clusters == 4
    labels = model.fit_predict(X)
    np.testing.assert_array_equal(labels, model.labels_)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    np.testing.assert_array_equal(KernelKMeans(3, gamma=0.5, n_init=2, random_state=0).fit(X).labels_, labels)
    assert model.n_features_in_ == 4 and model.gamma_ == 0.5 and model.X_fit_.shape == X.shape
    assert sorted(np.unique(labels)) == [0, 1, 2]
    # gamma='scale' is 1 / (n_features var(X))
    assert KernelKMeans(3, n_init=1).fit(X).gamma_ == pytest.approx(1.0 / (4 * X.var()))


@pytest.mark.parametrize('assignment', ['mean_kernel', 'feature_space'])
@pytest.mark.parametrize('name', ['iris', 'wine', 'digits'])
def test_clustering_on_real_data(datasets, name, assignment):
    """A fixed point of the documented rule (checked by the reference), of about k-means' quality."""
    X, target, k = datasets[name]
    model = KernelKMeans(k, assignment=assignment, n_init=3, random_state=0).fit(X)
    scores, similarity = kernel_kmeans_rule(X, X, model.labels_, model.gamma_, assignment)
    np.testing.assert_array_equal(scores.argmax(1), model.labels_)
    if similarity is not None:
        np.testing.assert_allclose(model.self_similarity_, similarity, rtol=1e-10)
    # inertia is the kernel k-means objective sum_x |phi(x) - m_c(x)|^2 = n - sum_k |C_k| Q_k
    _, similarity = kernel_kmeans_rule(X, X, model.labels_, model.gamma_, 'feature_space')
    assert model.inertia_ == pytest.approx(len(X) - (np.bincount(model.labels_) * similarity).sum(), rel=1e-10)
    kmeans = KMeans(k, n_init=3, random_state=0).fit(X)
    ari, ari_kmeans = adjusted_rand_score(target, model.labels_), adjusted_rand_score(target, kmeans.labels_)
    assert ari > {'iris': 0.55, 'wine': 0.8, 'digits': 0.5}[name]
    assert ari > ari_kmeans - 0.15


def test_predict_on_new_points_follows_the_rule(datasets, fitted):
    X, _, _ = datasets['wine']
    model = fitted['wine']
    new = X[:40] + np.random.default_rng(1).normal(scale=0.5, size=(40, X.shape[1]))
    far = X[:3] * 50.0  # every cluster's kernel underflows in the linear domain
    for points in (new, far):
        scores, _ = kernel_kmeans_rule(points, model.X_fit_, model.labels_, model.gamma_, 'mean_kernel')
        np.testing.assert_array_equal(model.predict(points), scores.argmax(1))


def test_estimator_errors(iris):
    X, _ = iris
    with pytest.raises(NotFittedError):
        KernelKMeans(3).predict(X)
    with pytest.raises(ValueError, match='gamma'):
        KernelKMeans(3, gamma=-1.0).fit(X)
    with pytest.raises(ValueError, match='gamma'):
        KernelKMeans(3, gamma='auto').fit(X)
    with pytest.raises(ValueError, match='assignment'):
        KernelKMeans(3, assignment='nearest').fit(X)
    with pytest.raises(ValueError, match='n_clusters'):
        KernelKMeans(200).fit(X)
    with pytest.raises(ValueError, match='n_init'):
        KernelKMeans(3, n_init=0).fit(X)
    model = KernelKMeans(3, n_init=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match='features'):
        model.predict(X[:, :2])
    with pytest.raises(ValueError):
        KernelKMeans(3).fit(np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X))


# -- the network against the estimator and the equations ------------------------------------------------------

@pytest.mark.parametrize('name', ['iris', 'wine', 'digits'])
def test_network_argmax_is_predict(datasets, fitted, name):
    X, _, _ = datasets[name]
    estimator = fitted[name]
    model = neuralize(estimator)
    assert isinstance(model, NeuralizedMembers) and model.gamma == estimator.gamma_
    new = X + np.random.default_rng(2).normal(scale=0.3, size=X.shape)
    for points in (X, new):
        _, labels, logits = explain(model, points, return_logits=True)
        np.testing.assert_array_equal(labels, estimator.predict(points))
        # f_c > 0 exactly for the assigned cluster (no ties on real data)
        assert (logits[np.arange(len(points)), labels] > 0).all()
    np.testing.assert_array_equal(model.evidence(torch.as_tensor(X)).argmax(1).numpy(), estimator.labels_)


def test_layered_network_equals_closed_form_logits(datasets, fitted):
    X, _, _ = datasets['iris']
    model = neuralize(fitted['iris'])
    with torch.no_grad():
        layered = model(torch.as_tensor(X)).numpy()
    _, _, logits = explain(model, X, return_logits=True)
    np.testing.assert_allclose(layered, logits, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('pools', ['own gradient', 'sharper'])
@pytest.mark.parametrize('beta', [None, 0.0, math.inf])
def test_closed_form_equals_reference(beta, pools):
    """Logits and relevance against the pair-by-pair reference, for the assigned and a chosen cluster, with
    the pools' own gradient (kappa = gamma, the default) and with a stiffer redistribution."""
    X = standardize(load_iris().data)[::5]
    estimator = KernelKMeans(3, n_init=2, random_state=0).fit(X)
    model = neuralize(estimator)
    assert model.relevance_gamma == model.gamma
    if pools == 'sharper':
        model.relevance_gamma = member_gamma(X)
    beta_value = model.beta if beta is None else beta
    for cluster in (None, 1):
        relevance, labels, logits = explain(model, X, cluster=cluster, beta=beta, return_logits=True)
        for n in range(0, len(X), 3):
            ref_logits, c, ref_relevance, deficit = member_network_reference(
                X[n], estimator.X_fit_, estimator.labels_, estimator.gamma_, beta_value, cluster=cluster,
                epsilon=model.margin.tie_threshold(torch.float64), kappa=model.relevance_gamma)
            assert abs(deficit) < 1e-6 * abs(ref_logits[c])
            np.testing.assert_allclose(logits[n], ref_logits, rtol=1e-9, atol=1e-12)
            scale = np.abs(ref_relevance).max()
            np.testing.assert_allclose(relevance[n], ref_relevance, rtol=1e-7, atol=1e-9 * scale)


def test_conservation_in_float64(datasets, fitted):
    X, _, k = datasets['wine']
    model = neuralize(fitted['wine'])
    for cluster in (None, k - 1):
        relevance, labels, logits = explain(model, X, cluster=cluster, return_logits=True)
        evidence = logits[np.arange(len(X)), labels if cluster is None else cluster]
        assert_conserved(relevance, evidence)


def tie_share(x, members, labels, c, gamma, kappa, beta, epsilon):
    """The relevance of the pairs (i in C_c, j not in C_c) with |x - u_j|^2 == |x - u_i|^2 (up to epsilon),
    from the equations, vectorised over the pairs: R_ij = softmax_i(-kappa d_i) softmax_j(-kappa d_j) R_k."""
    d = ((x - members) ** 2).sum(1)
    clusters = range(labels.max() + 1)
    soft = np.array([-np.log(np.mean(np.exp(-gamma * (d[labels == k] - d.min())))) / gamma + d.min()
                     for k in clusters])
    margins = np.array([soft[k] - soft[c] for k in clusters if k != c])
    evidence = margins.min()
    shares = np.exp(-beta * (margins - evidence))
    competitor = dict(zip([k for k in clusters if k != c], shares / shares.sum() * evidence))
    weights = np.empty_like(d)
    for k in clusters:
        w = np.exp(-kappa * (d[labels == k] - d[labels == k].min()))
        weights[labels == k] = w / w.sum() * (competitor.get(k, 0.0))
    own = np.exp(-kappa * (d[labels == c] - d[labels == c].min()))
    own /= own.sum()
    ties = np.abs(d[None, :] - d[labels == c][:, None]) < epsilon
    return float((own[:, None] * weights[None, :] * ties).sum())


def test_conservation_on_grid_data(datasets, fitted):
    """Digits take 17 values: a point can be exactly as far from an own as from a rival member. Such a tie
    cannot go through the midpoint rule and carries no relevance; the relevance sums to f_c minus the ties'
    share, computed here independently."""
    X, _, _ = datasets['digits']
    estimator = fitted['digits']
    model = neuralize(estimator)
    relevance, labels, logits = explain(model, X[:150], return_logits=True)
    evidence = logits[np.arange(150), labels]
    epsilon = model.margin.tie_threshold(torch.float64)
    ties = np.array([tie_share(X[n], estimator.X_fit_, estimator.labels_, labels[n], model.gamma,
                               model.relevance_gamma, model.beta, epsilon) for n in range(150)])
    assert (ties > 0).mean() > 0.3  # grid data: ties are common
    assert_conserved(relevance, evidence - ties)
    # ties are found alike in float32: the two dtypes give the same relevance up to float32 rounding
    relevance32 = explain(model, X[:150].astype(np.float32))
    difference = np.abs(relevance32 - relevance).sum(1) / np.abs(relevance).sum(1)
    assert np.median(difference) < 1e-4


@pytest.mark.parametrize('beta', [None, 0.3, math.inf])
@pytest.mark.parametrize('cluster', [None, 0])
def test_zennit_path_equals_closed_form(datasets, fitted, beta, cluster):
    X, _, _ = datasets['wine']
    model = neuralize(fitted['wine'])
    logits, relevance = zennit_relevance(model, X[::4], cluster, beta)
    closed, _, closed_logits = explain(model, X[::4], cluster=cluster, beta=beta, return_logits=True)
    np.testing.assert_allclose(logits, closed_logits, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(relevance, closed, rtol=1e-6, atol=1e-9 * np.abs(closed).max())


def test_onnx_graph_equals_closed_form(datasets, fitted, tmp_path):
    onnxruntime = pytest.importorskip('onnxruntime')
    pytest.importorskip('onnxscript')
    X, _, _ = datasets['iris']
    model = neuralize(fitted['iris'])
    explainer = make_explainer(model).eval()
    x = torch.as_tensor(X)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        program = torch.onnx.export(explainer, (x[:3],), dynamic_shapes={'x': {0: torch.export.Dim('batch')}},
                                    input_names=['X'], output_names=['label', 'logits', 'relevance'],
                                    opset_version=18, dynamo=True, verbose=False)
    program.save(str(tmp_path / 'kernel.onnx'))
    session = onnxruntime.InferenceSession(str(tmp_path / 'kernel.onnx'), providers=['CPUExecutionProvider'])
    label, logits, relevance = session.run(None, {'X': X})
    closed, closed_labels, closed_logits = explain(model, X, return_logits=True)
    np.testing.assert_array_equal(label, closed_labels)
    np.testing.assert_allclose(logits, closed_logits, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(relevance, closed, rtol=1e-6, atol=1e-6 * np.abs(closed).max())


def test_feature_space_variant_is_approximate(datasets):
    """The textbook rule has no exact network: neuralize warns, and the mean-kernel network mostly agrees."""
    X, _, k = datasets['wine']
    estimator = KernelKMeans(k, assignment='feature_space', n_init=3, random_state=0).fit(X)
    with pytest.warns(UserWarning, match='approximately'):
        model = neuralize(estimator)
    _, labels, _ = explain(model, X, return_logits=True)
    agreement = (labels == estimator.labels_).mean()
    assert 0.8 < agreement <= 1.0


def test_neuralize_errors():
    with pytest.raises(NotFittedError):
        neuralize(KernelKMeans(3))
    X = standardize(load_iris().data)
    with pytest.raises(ValueError, match='at least 2 clusters'):
        neuralize(KernelKMeans(1, n_init=1).fit(X))


# -- properties ------------------------------------------------------------------------------------------------

coordinates = st.floats(-5, 5, allow_nan=False, allow_infinity=False, width=64)


@given(st.integers(2, 4), st.integers(1, 3), st.integers(4, 16), st.integers(0, 2**16),
       st.sampled_from([0.1, 1.0, 'scale']))
def test_properties_of_small_fits(n_clusters, n_features, n_samples, seed, gamma):
    """Any small fit: labels_ == predict == network argmax where clear, shapes, dtypes, conservation."""
    assume(n_samples >= n_clusters)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) * rng.uniform(0.1, 3.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        estimator = KernelKMeans(n_clusters, gamma=gamma, n_init=1, max_iter=300, random_state=seed).fit(X)
    counts = np.bincount(estimator.labels_, minlength=n_clusters)
    assert (counts > 0).all()  # empty clusters are refilled, singletons allowed
    if not caught:  # converged: labels_ is a fixed point of predict
        np.testing.assert_array_equal(estimator.predict(X), estimator.labels_)
    model = neuralize(estimator)
    queries = np.concatenate([X, rng.normal(size=(5, n_features)) * 3])
    for dtype in (np.float64, np.float32):
        relevance, labels, logits = explain(model, queries.astype(dtype), return_logits=True)
        assert relevance.shape == queries.shape and relevance.dtype == dtype and logits.shape[1] == n_clusters
    relevance, labels, logits = explain(model, queries, return_logits=True)
    predicted = estimator.predict(queries)
    top2 = np.sort(logits, 1)
    clear = top2[:, -1] > 1e-9 * max(1.0, np.abs(logits).max())
    np.testing.assert_array_equal(labels[clear], predicted[clear])
    evidence = logits[np.arange(len(queries)), labels]
    assert_conserved(relevance, evidence, rel=1e-8)


@given(arrays(np.float64, (6, 1), elements=st.integers(-3, 3).map(float)), st.integers(0, 100))
def test_one_dimensional_grid_data_with_ties(X, seed):
    """D = 1 on a grid: exact ties between members are allowed; evidence and shapes stay sane."""
    assume(len(np.unique(X)) >= 2)
    estimator = KernelKMeans(2, gamma=1.0, n_init=1, random_state=seed).fit(X)
    model = neuralize(estimator)
    queries = np.linspace(-4, 4, 17).reshape(-1, 1)
    relevance, labels, logits = explain(model, queries, return_logits=True)
    assert np.isfinite(relevance).all() and np.isfinite(logits).all()
    top2 = np.sort(logits, 1)
    clear = top2[:, -1] - top2[:, -2] > 1e-9
    np.testing.assert_array_equal(labels[clear], estimator.predict(queries)[clear])
