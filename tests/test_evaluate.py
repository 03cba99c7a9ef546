"""Feature-removal evaluation: known answers computed by hand, optimality of true contributions, batching."""
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from sklearn.cluster import KMeans
from sklearn.preprocessing import MinMaxScaler

from zennit_clusters import explain, neuralize
from zennit_clusters.evaluate import (
    RemovalCurves, compare_attributions, evidence_function, fraction_leaving, removal_curves,
)

# three centroids in 3-d; the point x sits in cluster 0 with f_0(x) = 38 - 14 = 24
CENTROIDS = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
POINT = np.array([[-1.0, -2.0, 3.0]])


@pytest.fixture(scope='module')
def toy_model():
    return neuralize(torch.as_tensor(CENTROIDS))


def test_morf_lerf_by_hand_zero_removal(toy_model):
    """Zero removal, relevance order (x0, x1, x2): every f_0 below is |z - mu_k|^2 - |z|^2 worked out by hand."""
    # MoRF: z = (0,-2,3): 29 - 13 = 16; z = (0,0,3): 25 - 9 = 16; z = 0: 16 - 0 = 16
    # LeRF: z = (-1,-2,0): 29 - 5 = 24; z = (-1,0,0): 17 - 1 = 16; z = 0: 16
    curves = removal_curves(toy_model, POINT, [[3.0, 2.0, 1.0]], removal='zero', normalize=None)
    np.testing.assert_allclose(curves.morf_points[0], [24, 16, 16, 16])
    np.testing.assert_allclose(curves.lerf_points[0], [24, 24, 16, 16])
    np.testing.assert_allclose(curves.fractions, [0, 1 / 3, 2 / 3, 1])
    # trapezoids over steps of 1/3: MoRF (20 + 16 + 16) / 3, LeRF (24 + 20 + 16) / 3
    assert curves.auc_morf == pytest.approx(52 / 3)
    assert curves.auc_lerf == pytest.approx(20.0)
    assert curves.abpc == pytest.approx(8 / 3)
    # normalized by the mean evidence (here the one point's f_0 = 24)
    assert curves.renormalized('mean').abpc == pytest.approx(8 / 3 / 24)
    assert curves.renormalized('point').abpc == pytest.approx(8 / 3 / 24)


def test_mean_removal_uses_reference_mean(toy_model):
    """Removed features take the reference data's mean, (2, 0, 1) here; f_0 worked out by hand."""
    reference = np.array([[4.0, 1.0, 0.0], [0.0, -1.0, 2.0]])
    curves = removal_curves(toy_model, POINT, [[0.0, 5.0, 1.0]], removal='mean', X_reference=reference,
                            normalize=None)
    # MoRF removes x1 first: z = (-1,0,3): |z-mu1|^2 = 34, |z-mu2|^2 = 26, |z|^2 = 10 -> min 26 - 10 = 16
    # then x2: z = (-1,0,1): 26, 18, 2 -> 16; then x0: z = (2,0,1): 5, 21, 5 -> 0 (on the boundary)
    np.testing.assert_allclose(curves.morf_points[0], [24, 16, 16, 0])
    # LeRF removes x0 first: z = (2,-2,3): 17, 49, 17 -> 0; then x2: z = (2,-2,1): 9, 41, 9 -> 0; then x1 -> 0
    np.testing.assert_allclose(curves.lerf_points[0], [24, 0, 0, 0])


def test_fraction_leaving_by_hand(toy_model):
    """Replacing x0 = -1 by 4 moves the point onto centroid 1: it leaves cluster 0."""
    attributions = [[3.0, 2.0, 1.0]]
    removal = np.array([4.0, 0.0, 0.0])
    assert fraction_leaving(toy_model, POINT, attributions, k=0, removal=removal) == 0.0
    assert fraction_leaving(toy_model, POINT, attributions, k=1, removal=removal) == 1.0
    # with zero removal f_0 stays at 16 > 0 (see the MoRF curve above): it never leaves
    np.testing.assert_array_equal(fraction_leaving(toy_model, POINT, attributions, k=[0, 1, 2, 3], removal='zero'),
                                  [0.0, 0.0, 0.0, 0.0])


def _linear_evidence(w):
    """Evidence (x.w, -x.w) of two clusters: the contributions of feature j are exactly w_j (x_j - ref_j)."""
    return lambda Z: np.stack([Z @ w, -(Z @ w)], axis=1)


@given(st.integers(0, 2 ** 32 - 1), st.sampled_from(['mean', 'zero']))
def test_true_contributions_beat_any_other_ranking(seed, removal):
    """For an additive model, ranking by the true contributions is optimal at every step of both curves."""
    rng = np.random.default_rng(seed)
    n_features = int(rng.integers(2, 9))
    X = rng.normal(size=(12, n_features)) * rng.uniform(0.5, 3, n_features) + rng.normal(size=n_features)
    w = rng.normal(size=n_features)
    fn = _linear_evidence(w)
    clusters = np.zeros(len(X), dtype=int)
    reference = X.mean(0) if removal == 'mean' else np.zeros(n_features)
    truth = w * (X - reference)
    other = rng.normal(size=X.shape)
    good = removal_curves(fn, X, truth, clusters=clusters, removal=removal, normalize=None)
    bad = removal_curves(fn, X, other, clusters=clusters, removal=removal, normalize=None)
    assert np.all(good.morf_points <= bad.morf_points + 1e-9)
    assert np.all(good.lerf_points >= bad.lerf_points - 1e-9)
    assert good.abpc >= bad.abpc - 1e-9
    # the MoRF curve of the truth is the evidence minus the cumulated sorted contributions
    evidence = X @ w
    expected = evidence[:, None] - np.concatenate(
        [np.zeros((len(X), 1)), np.cumsum(-np.sort(-truth, axis=1), axis=1)], axis=1)
    np.testing.assert_allclose(good.morf_points, expected, atol=1e-9)


def test_true_contributions_beat_random_on_average():
    """Over many points, true contributions give a large ABPC and a random ranking about zero."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 10))
    w = rng.normal(size=10)
    fn = _linear_evidence(w)
    clusters = np.zeros(len(X), dtype=int)
    truth = removal_curves(fn, X, w * (X - X.mean(0)), clusters=clusters, removal='mean', normalize=None)
    random = removal_curves(fn, X, rng.normal(size=X.shape), clusters=clusters, removal='mean', normalize=None)
    assert truth.abpc > 1.0
    assert abs(random.abpc) < 0.15 * truth.abpc


def _knn_infill_slow(x, removed, reference, k):
    """The kNN in-fill written out: standardized distances over the kept features, copies of x skipped."""
    mean, std = reference.mean(0), reference.std(0)
    std = np.where(std > 0, std, 1.0)
    if not (~removed).any():
        return mean
    distances = []
    for row in reference:
        if np.allclose(row, x):
            distances.append(np.inf)
            continue
        d = ((x - mean) / std - (row - mean) / std)[~removed]
        distances.append(float(d @ d))
    nearest = np.argsort(distances, kind='stable')[:k]
    return reference[nearest].mean(0)


def test_knn_removal_matches_slow_reference():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(30, 4)) * [1, 10, 100, 0.1]
    X = reference[:5]
    w = rng.normal(size=4)
    fn = _linear_evidence(w)
    attributions = rng.normal(size=X.shape)
    curves = removal_curves(fn, X, attributions, clusters=np.zeros(5, dtype=int), removal='knn',
                            X_reference=reference, n_neighbors=3, normalize=None)
    order = np.argsort(-attributions, axis=1, kind='stable')
    for i, x in enumerate(X):
        for step in range(5):
            removed = np.zeros(4, dtype=bool)
            removed[order[i, :step]] = True
            z = np.where(removed, _knn_infill_slow(x, removed, reference, 3), x)
            assert curves.morf_points[i, step] == pytest.approx(z @ w)


def test_neon_beats_random_on_wine(wine):
    X = MinMaxScaler().fit_transform(wine)
    kmeans = KMeans(3, n_init=4, random_state=0).fit(X)
    model = neuralize(kmeans, X=X)
    R = explain(model, X)
    rng = np.random.default_rng(0)
    results = compare_attributions(model, X, {'neon': R, 'random': rng.normal(size=R.shape)})
    assert set(results) == {'mean', 'zero', 'knn'}
    for removal, curves in results.items():
        assert curves['neon'].abpc > curves['random'].abpc + 0.2, removal
        assert abs(curves['random'].abpc) < 0.2, removal
    assert fraction_leaving(model, X, R, 3) > fraction_leaving(model, X, rng.normal(size=R.shape), 3)


def test_batching_and_steps_do_not_change_results(digits):
    X = digits[:13]
    kmeans = KMeans(4, n_init=2, random_state=0).fit(digits[:300])
    R = explain(kmeans, X)
    full = removal_curves(kmeans, X, R, removal='knn', X_reference=digits[:300])
    for batch_size in (1, 5, 13, 100, 10_000):
        again = removal_curves(kmeans, X, R, removal='knn', X_reference=digits[:300], batch_size=batch_size,
                               steps=[0, 3, 17, 40, 64])
        np.testing.assert_allclose(again.morf_points, full.morf_points[:, again.n_removed])
        np.testing.assert_allclose(again.lerf_points, full.lerf_points[:, again.n_removed])
    coarse = removal_curves(kmeans, X, R, removal='knn', X_reference=digits[:300], steps=8)
    np.testing.assert_array_equal(coarse.n_removed, np.arange(0, 65, 8))
    np.testing.assert_allclose(coarse.morf_points, full.morf_points[:, coarse.n_removed])
    explicit = removal_curves(kmeans, X, R, removal='zero', steps=[5, 2])
    np.testing.assert_array_equal(explicit.n_removed, [0, 2, 5])


def test_evidence_function_accepts_estimator_module_and_callable(wine):
    kmeans = KMeans(3, n_init=2, random_state=0).fit(wine)
    model = neuralize(kmeans)
    expected = model(torch.as_tensor(wine)).detach().numpy()
    for source in (kmeans, model, evidence_function(model)):
        np.testing.assert_allclose(evidence_function(source)(wine), expected)
    curves = [removal_curves(source, wine[:10], explain(model, wine[:10])) for source in (kmeans, model)]
    assert curves[0].abpc == curves[1].abpc


def test_default_clusters_are_assigned_and_explicit_cluster_is_tracked(toy_model):
    curves = removal_curves(toy_model, POINT, [[3.0, 2.0, 1.0]], removal='zero', normalize=None)
    assert curves.clusters.tolist() == [0]
    other = removal_curves(toy_model, POINT, [[3.0, 2.0, 1.0]], clusters=1, removal='zero', normalize=None)
    # f_1(x) = |x - mu_0|^2 - |x - mu_1|^2 = 14 - 38 (mu_0 is the nearest competitor)
    assert other.evidence[0] == pytest.approx(-24.0)


def test_normalizations(toy_model):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 3)) * 2
    A = rng.normal(size=X.shape)
    raw = removal_curves(toy_model, X, A, normalize=None)
    mean = raw.renormalized('mean')
    assert mean.abpc == pytest.approx(raw.abpc / np.abs(raw.evidence).mean())
    assert mean.morf[0] == pytest.approx(1.0)
    point = raw.renormalized('point')
    np.testing.assert_allclose(point.morf, (raw.morf_points / raw.evidence[:, None]).mean(0))
    assert isinstance(point, RemovalCurves) and 'abpc' in point.as_dict()


def test_progress_bar_with_and_without_tqdm(toy_model, monkeypatch, capsys):
    A = [[3.0, 2.0, 1.0]]
    with_bar = removal_curves(toy_model, POINT, A, progress=True)
    monkeypatch.setitem(sys.modules, 'tqdm', None)
    monkeypatch.setitem(sys.modules, 'tqdm.auto', None)
    without = removal_curves(toy_model, POINT, A, progress=True)
    assert with_bar.abpc == without.abpc


@pytest.mark.parametrize('kwargs, error', [
    ({'removal': 'median'}, 'removal must be one of'),
    ({'removal': np.zeros(2)}, 'removal array must have shape'),
    ({'clusters': 3}, 'clusters must be in'),
    ({'steps': 0}, 'steps must be'),
    ({'batch_size': 0}, 'batch_size'),
    ({'n_neighbors': 0, 'removal': 'knn'}, 'n_neighbors'),
    ({'normalize': 'max'}, 'normalize must be'),
])
def test_errors(toy_model, kwargs, error):
    with pytest.raises(ValueError, match=error):
        removal_curves(toy_model, POINT, [[3.0, 2.0, 1.0]], **kwargs)


def test_shape_errors(toy_model):
    with pytest.raises(ValueError, match='attributions must have the shape of X'):
        removal_curves(toy_model, POINT, [[3.0, 2.0]])
    with pytest.raises(ValueError, match='k must be'):
        fraction_leaving(toy_model, POINT, [[3.0, 2.0, 1.0]], k=4)
    with pytest.raises(ValueError, match='evidence function must return'):
        removal_curves(lambda Z: Z.sum(1), POINT, [[3.0, 2.0, 1.0]])
