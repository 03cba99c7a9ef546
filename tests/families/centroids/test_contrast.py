"""Contrastive explanations, per-competitor parts, directions and reference root points of centroid models,
against the slow references of tests/references/contrast.py (float64)."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans

from zennit_clusters import direction, explain, neuralize
from references.centroids import bisecting_pairs, kmeans_pairs
from references.contrast import bisecting_competitors, direction_of, pair_contributions, pair_parts


def pairs_and_competitors(name, estimator, cluster, n_clusters):
    """The margin pairs of cluster c and, for each, the clusters it stands for."""
    if name == 'BisectingKMeans':
        return bisecting_pairs(estimator, cluster), bisecting_competitors(estimator, cluster)
    return (kmeans_pairs(estimator.cluster_centers_, cluster),
            [[k] for k in range(n_clusters) if k != cluster])


def per_cluster(parts, competitors, n_clusters):
    """(P, D) pair parts -> (K, D) competitor parts, each pair split evenly over the clusters behind it."""
    out = np.zeros((n_clusters, parts.shape[1]))
    for part, behind in zip(parts, competitors):
        for k in behind:
            out[k] += part / len(behind)
    return out


@pytest.mark.parametrize('name', ['KMeans', 'BisectingKMeans'])
def test_contrast_matches_reference_and_sums_to_margin(wine_models, name):
    X, estimators = wine_models
    estimator = estimators[name]
    model = neuralize(estimator, X=X)
    labels = estimator.predict(X)
    for competitor in range(4):
        relevance = explain(model, X, contrast=competitor)
        for n in range(0, len(X), 9):
            c = int(labels[n])
            if c == competitor:
                assert not relevance[n].any()  # h_cc is identically zero
                continue
            pairs, competitors = pairs_and_competitors(name, estimator, c, 4)
            pair = next(p for p, behind in zip(pairs, competitors) if competitor in behind)
            expected, _ = pair_contributions(X[n], *pair)
            np.testing.assert_allclose(relevance[n], expected, rtol=1e-9, atol=1e-12)
            # for either family the contrast margin is |x - mu_rival|^2 - |x - mu_own|^2 of that pair
            margin = ((X[n] - pair[1]) ** 2).sum() - ((X[n] - pair[0]) ** 2).sum()
            assert relevance[n].sum() == pytest.approx(margin, rel=1e-10, abs=1e-12)


def test_contrast_kmeans_sums_to_distance_gap_real_data(real_data):
    for X, k in real_data.values():
        estimator = KMeans(n_clusters=k, n_init=2, random_state=0).fit(X)
        model = neuralize(estimator, X=X)
        labels = estimator.predict(X)
        rng = np.random.default_rng(0)
        competitor = rng.integers(0, k, len(X))
        relevance = explain(model, X, contrast=competitor)
        distances = ((X[:, None, :] - estimator.cluster_centers_[None]) ** 2).sum(-1)
        gap = distances[np.arange(len(X)), competitor] - distances[np.arange(len(X)), labels]
        scale = (X ** 2).sum(1).max()
        np.testing.assert_allclose(relevance.sum(1), gap, rtol=1e-10, atol=1e-12 * scale)
        assert not relevance[competitor == labels].any()
        # an explicit cluster: c vs k for every row, whatever its label
        other = explain(model, X, cluster=0, contrast=1)
        np.testing.assert_allclose(other.sum(1), distances[:, 1] - distances[:, 0], rtol=1e-10,
                                   atol=1e-12 * scale)


@pytest.mark.parametrize('name', ['KMeans', 'BisectingKMeans'])
@pytest.mark.parametrize('beta', [0.0, 'model', math.inf])
@pytest.mark.parametrize('reference', [None, 'zero', 'mean', 'rows'])
def test_parts_and_reference_match_reference(wine_models, name, beta, reference):
    X, estimators = wine_models
    estimator = estimators[name]
    model = neuralize(estimator, X=X)
    beta = model.beta if beta == 'model' else beta
    labels = estimator.predict(X)
    rows = X[::-1]  # a per-point reference: another data point
    points = {None: None, 'zero': np.zeros(X.shape[1]), 'mean': model.cluster_centers.numpy().mean(0)}
    parts = explain(model, X, beta=beta, per_competitor=True, reference=reference if reference != 'rows' else rows)
    relevance = explain(model, X, beta=beta, reference=reference if reference != 'rows' else rows)
    directions = direction(model, X, beta=beta, reference=reference if reference != 'rows' else rows)
    assert parts.shape == (len(X), 4, X.shape[1]) and directions.dtype == np.int8
    np.testing.assert_allclose(parts.sum(1), relevance, rtol=1e-10, atol=1e-13)
    evidence = model(torch.from_numpy(X)).detach().numpy()[np.arange(len(X)), labels]
    np.testing.assert_allclose(relevance.sum(1), evidence, rtol=1e-10, atol=1e-13)  # conservative
    for n in range(0, len(X), 7):
        c = int(labels[n])
        r = rows[n] if reference == 'rows' else points[reference]
        pairs, competitors = pairs_and_competitors(name, estimator, c, 4)
        pair_part, offsets = pair_parts(X[n], pairs, beta, r)
        np.testing.assert_allclose(parts[n], per_cluster(pair_part, competitors, 4), rtol=1e-7, atol=1e-12)
        assert not parts[n, c].any()
        np.testing.assert_array_equal(directions[n], direction_of(pair_part, offsets))


def test_per_competitor_default_is_the_explanation_in_chunks(wine_models):
    X, estimators = wine_models
    model = neuralize(estimators['KMeans'], X=X)
    plain = explain(model, X)  # the compiled row step
    parts = explain(model, X, per_competitor=True, chunk_size=7)
    np.testing.assert_allclose(parts.sum(1), plain, rtol=1e-9, atol=1e-13)
    tensor = explain(model, torch.from_numpy(X), per_competitor=True)
    assert torch.is_tensor(tensor) and tensor.shape == parts.shape


def test_reference_at_the_midpoint_is_the_midpoint_rule(wine_models):
    """With K = 2 every point has one pair, and the reference at its midpoint gives the midpoint rule exactly;
    another point on the boundary is its own root: conservative, with other per-feature values."""
    X, _ = wine_models
    estimator = KMeans(n_clusters=2, n_init=2, random_state=0).fit(X)
    model = neuralize(estimator, X=X)
    mu = estimator.cluster_centers_
    midpoint = mu.mean(0)
    on_boundary = midpoint + np.linalg.svd((mu[0] - mu[1])[None])[2][1] * 0.3  # a step along the boundary
    plain = explain(model, X)
    np.testing.assert_allclose(explain(model, X, reference=midpoint), plain, rtol=1e-9, atol=1e-12)
    shifted = explain(model, X, reference=on_boundary)
    np.testing.assert_allclose(shifted.sum(1), plain.sum(1), rtol=1e-10, atol=1e-13)
    assert np.abs(shifted - plain).max() > 1e-3
    # K > 2: the contrast of c and k with the reference at their midpoint is the plain contrast
    model4 = neuralize(KMeans(n_clusters=4, n_init=2, random_state=0).fit(X), X=X)
    centres = model4.cluster_centers.numpy()
    np.testing.assert_allclose(explain(model4, X, cluster=0, contrast=1, reference=(centres[0] + centres[1]) / 2),
                               explain(model4, X, cluster=0, contrast=1), rtol=1e-9, atol=1e-12)


def test_reference_on_the_same_side_steps_to_the_boundary():
    """x and r on c's side of the only boundary: the root is r moved along sign(w) onto the boundary, the rule
    stays conservative, and it differs from the midpoint rule."""
    centres = torch.tensor([[0.0, 0.0], [4.0, 0.0]], dtype=torch.float64)
    model = neuralize(centres, beta=1.0)
    x = np.array([[-1.0, 2.0]])
    r = np.array([-3.0, -1.0])  # nearer mu_0 as well
    relevance = explain(model, x, reference=r)
    # h(x) = |x - mu_1|^2 - |x - mu_0|^2 = 29 - 5 = 24 = w^T (x - rho), w = (-8, 0), h(r) = 40:
    # rho = r - 40 (-1, 0) / 8 = (2, -1)
    np.testing.assert_allclose(relevance[0], [-8.0 * (-1.0 - 2.0), 0.0])
    assert relevance.sum() == pytest.approx(24.0)
    # r beyond the boundary: the root is where the segment x -> r crosses it, x = 2 at t = 1/2 of (-1,2)->(5,-2)
    np.testing.assert_allclose(explain(model, x, reference=[5.0, -2.0])[0], [24.0, 0.0])
    # two features that separate: the step moves both by the same amount, h(r) / |w|_1
    diagonal = neuralize(torch.tensor([[0.0, 0.0], [4.0, 2.0]], dtype=torch.float64), beta=1.0)
    x, r = np.array([[-1.0, 1.0]]), np.array([-2.0, -1.0])
    w = np.array([-8.0, -4.0])
    h_r = ((r - [4, 2]) ** 2).sum() - (r ** 2).sum()
    rho = r + h_r / 12.0
    np.testing.assert_allclose(explain(diagonal, x, reference=r)[0], w * (x[0] - rho))


def test_direction_hand_built():
    """Two clusters apart on feature 0 only; a third apart on feature 1."""
    centres = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [2.0, 5.0]], dtype=torch.float64)
    model = neuralize(centres, beta=1.0)
    x = np.array([[1.5, 0.2],    # in cluster 0: high on feature 0 (vs cluster 1), low on feature 1 (vs cluster 2)
                  [-1.0, 0.0]])  # in cluster 1: low on feature 0 against both 0 and 2
    d = direction(model, x)
    np.testing.assert_array_equal(d[0], [1, -1])
    assert d[1, 0] == -1
    # against one competitor: cluster 1 does not differ on feature 1, so that feature has no direction
    np.testing.assert_array_equal(direction(model, x[:1], contrast=1), [[1, 0]])
    np.testing.assert_array_equal(direction(model, x[:1], contrast=2), [[0, -1]])
    # K = 2 tells the clusters apart where the relevance profiles cannot
    two = neuralize(centres[:2], beta=1.0)
    points = np.array([[1.0, 0.3], [-1.0, 0.3]])
    relevance = explain(two, points)
    np.testing.assert_allclose(relevance[0], relevance[1])  # the same profile, (mu_0 - mu_1)^2 pattern
    np.testing.assert_array_equal(direction(two, points)[:, 0], [1, -1])


def test_contrast_refusals(wine_models):
    X, estimators = wine_models
    model = neuralize(estimators['KMeans'], X=X)
    with pytest.raises(ValueError, match=r'contrast must be in \[0, 4\)'):
        explain(model, X, contrast=4)
    with pytest.raises(ValueError, match='shape'):
        explain(model, X, contrast=np.zeros(3, dtype=int))
    with pytest.raises(TypeError, match='integer'):
        explain(model, X, contrast=np.zeros(len(X)))
    with pytest.raises(ValueError, match='one of the two'):
        explain(model, X, contrast=1, per_competitor=True)
    with pytest.raises(ValueError, match='reference must be'):
        explain(model, X, reference='median')
    with pytest.raises(ValueError, match='reference must be of shape'):
        explain(model, X, reference=np.zeros(3))
    with pytest.raises(ValueError, match='finite'):
        explain(model, X, reference=np.full(X.shape[1], np.nan))


@settings(max_examples=40, deadline=None)
@given(n_clusters=st.integers(2, 5), n_features=st.integers(1, 6), n_rows=st.integers(1, 8),
       seed=st.integers(0, 2 ** 16), dtype=st.sampled_from(['float64', 'float32']),
       reference=st.sampled_from([None, 'zero', 'mean', 'point', 'rows']))
def test_properties_of_contrast_parts_reference(n_clusters, n_features, n_rows, seed, dtype, reference):
    """Shapes, dtypes and the sums on random centroid models, any batch size (explain refuses 0 rows)."""
    rng = np.random.default_rng(seed)
    centres = torch.from_numpy(rng.normal(size=(n_clusters, n_features)) * 3)
    model = neuralize(centres, beta=float(rng.uniform(0.0, 2.0)))
    X = rng.normal(size=(n_rows, n_features)) * 3
    r = {'point': rng.normal(size=n_features), 'rows': rng.normal(size=(n_rows, n_features))}.get(reference,
                                                                                                    reference)
    x = X.astype(dtype)
    competitor = rng.integers(0, n_clusters, n_rows)
    contrast = explain(model, x, contrast=competitor, reference=r)
    parts = explain(model, x, per_competitor=True, reference=r)
    relevance, labels, logits = explain(model, x, reference=r, return_logits=True)
    directions = direction(model, x, reference=r)
    assert contrast.shape == x.shape and contrast.dtype == x.dtype
    assert parts.shape == (n_rows, n_clusters, n_features) and parts.dtype == x.dtype
    assert directions.shape == x.shape and directions.dtype == np.int8
    assert set(np.unique(directions)) <= {-1, 0, 1}
    tolerance = 1e-9 if dtype == 'float64' else 1e-3
    distances = ((X[:, None, :] - centres.numpy()[None]) ** 2).sum(-1)
    rows = np.arange(n_rows)
    gap = distances[rows, competitor] - distances[rows, labels]
    scale = (X ** 2).sum(1) + (centres.numpy() ** 2).sum(1).max() + 1
    assert np.all(np.abs(contrast.sum(1) - gap) <= tolerance * scale)
    assert np.all(np.abs(parts.sum(1) - relevance) <= tolerance * scale[:, None])
    assert np.all(np.abs(relevance.sum(1) - logits[rows, labels]) <= tolerance * scale)
    assert not parts[rows, labels].any()
