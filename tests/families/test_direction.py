"""Direction (docs/method.md, "Direction") in every family with pairwise margins: the grouped fast path of centroid
models against the pairs path, mixtures (each covariance type) and member networks against slow references
written from the definition, and hand-built cases whose answer is known.

A *tie* is a feature whose signed sum ``sum_p |part_p,i| sign(x_i - rho_p,i)`` is within 1e-9 of the sum of the
magnitudes ``sum_p |part_p,i|``: its sign is rounding, and two correct paths may differ there. Everywhere else the
codes must be equal.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch
from sklearn.cluster import DBSCAN, BisectingKMeans, KMeans
from sklearn.datasets import load_iris, load_wine
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from zennit_clusters import direction, explain, make_explainer, neuralize, neuralize_partition, summarize
from zennit_clusters.summary import _columns
from zennit_clusters.validation import sign_stabiliser

from references.centroids import bisecting_pairs, kmeans_pairs
from references.contrast import pair_contributions, pair_parts
from references.direction import assert_direction_matches, member_direction, mixture_direction

COVARIANCE_TYPES = ['tied', 'diag', 'spherical', 'full']


@pytest.fixture(scope='module')
def wine():
    return StandardScaler().fit_transform(load_wine().data)


@pytest.fixture(scope='module')
def blobs():
    """Random float64 data in 5 loose groups, D = 12."""
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=2.0, size=(5, 12))
    return centres[rng.integers(5, size=1500)] + rng.normal(size=(1500, 12))


def _two_paths(model, x, **options):
    """Codes of the grouped path and of the pairs path, from one explainer."""
    explainer = make_explainer(model, cluster=options.pop('cluster', None), beta=options.pop('beta', None),
                               output='direction')
    assert explainer.direction_path == 'grouped'
    grouped = explainer(x, **options)[2]
    explainer.direction_path = 'pairs'
    pairs = explainer(x, **options)[2]
    return grouped.numpy(), pairs.numpy()


@pytest.mark.parametrize('name', ['KMeans', 'BisectingKMeans'])
@pytest.mark.parametrize('options', [{}, {'beta': 0.0}, {'beta': math.inf}, {'cluster': 2}, {'contrast': 'random'}])
def test_grouped_path_equals_pairs_path(blobs, name, options):
    estimator = (KMeans(5, n_init=1, random_state=0) if name == 'KMeans' else BisectingKMeans(5, random_state=0))
    estimator.fit(blobs)
    model = neuralize(estimator, X=blobs)
    x = torch.from_numpy(blobs)
    options = dict(options)
    if options.get('contrast') == 'random':
        options['contrast'] = torch.from_numpy(np.random.default_rng(0).integers(0, 5, len(blobs)))
    grouped, pairs = _two_paths(model, x, **options)
    assert grouped.dtype == np.int8 and grouped.shape == blobs.shape
    differ = np.argwhere(grouped != pairs)
    # every difference is a tie by the slow reference (none expected on continuous data)
    beta = options.get('beta', model.beta)
    for n, i in differ:
        c = options.get('cluster', int(estimator.predict(blobs[n:n + 1])[0]))
        pairs_c = kmeans_pairs(estimator.cluster_centers_, c) if name == 'KMeans' else bisecting_pairs(estimator, c)
        part, offsets = pair_parts(blobs[n], pairs_c, beta)
        signed = (np.abs(part[:, i]) * np.sign(offsets[:, i])).sum()
        assert abs(signed) <= 1e-9 * np.abs(part[:, i]).sum(), (n, i)
    assert len(differ) <= 1e-3 * grouped.size
    # the public function takes the grouped path, in chunks, for numpy and float32 alike
    np.testing.assert_array_equal(direction(model, blobs, chunk_size=97, **{
        k: (v.numpy() if torch.is_tensor(v) else v) for k, v in options.items()}), grouped)
    single = direction(model, blobs.astype(np.float32), **{
        k: (v.numpy() if torch.is_tensor(v) else v) for k, v in options.items()})
    assert single.dtype == np.int8 and (single == grouped).mean() > 0.99


def test_grouped_path_against_the_reference_rowwise(blobs):
    """The grouped codes are the definition itself (not only the pairs path's reading of it)."""
    estimator = KMeans(5, n_init=1, random_state=0).fit(blobs)
    model = neuralize(estimator, X=blobs)
    codes, labels = direction(model, blobs), estimator.predict(blobs)
    compared = 0
    for n in range(0, len(blobs), 25):
        part, offsets = pair_parts(blobs[n], kmeans_pairs(estimator.cluster_centers_, labels[n]), model.beta)
        compared += assert_direction_matches(codes[n], (np.abs(part) * np.sign(offsets)).sum(0), np.abs(part).sum(0))
    assert compared > 0.95 * 60 * blobs.shape[1]


@pytest.mark.parametrize('covariance_type', COVARIANCE_TYPES)
def test_mixture_direction_matches_the_reference(wine, covariance_type):
    gmm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(wine)
    model = neuralize(gmm, X=wine)
    codes = direction(model, wine)
    against = direction(model, wine, contrast=2)
    assert codes.dtype == np.int8 and codes.shape == wine.shape
    compared = 0
    for n in range(0, len(wine), 9):
        compared += assert_direction_matches(codes[n], *mixture_direction(gmm, wine[n], model.beta))
        if gmm.predict(wine[n:n + 1])[0] == 2:
            assert not against[n].any()  # h_cc = 0: no pair, no direction
        else:
            compared += assert_direction_matches(against[n], *mixture_direction(gmm, wine[n], model.beta, contrast=2))
    assert compared > 0.9 * 2 * 20 * wine.shape[1] * 2 / 3
    # a fixed cluster and the nearest competitor only
    fixed = direction(model, wine[::20], cluster=1, beta=math.inf)
    for row, n in enumerate(range(0, len(wine), 20)):
        assert_direction_matches(fixed[row], *mixture_direction(gmm, wine[n], math.inf, cluster=1))


@pytest.mark.parametrize('covariance_type', COVARIANCE_TYPES)
def test_one_feature_mixture_high_and_low(covariance_type):
    """Hand-built 1-D mixture: one cluster around -3, one around +3 (the second wider). High x speaks for the
    upper cluster, low x for the lower one; against its own cluster's competitor a point's direction says which
    side of the boundary it is on."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-3.0, 1.0, 300), rng.normal(3.0, 1.5, 300)])[:, None]
    gmm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    upper = int(np.argmax(gmm.means_[:, 0]))
    points = np.array([[-5.0], [-2.0], [2.0], [5.0]])
    labels = gmm.predict(points)
    assert list(labels == upper) == [False, False, True, True]
    codes = direction(gmm, points)
    np.testing.assert_array_equal(codes[:, 0], [-1, -1, 1, 1])
    # explaining the upper cluster for every point: the same codes (the one boundary's root is the same)
    np.testing.assert_array_equal(direction(gmm, points, cluster=upper)[:, 0], [-1, -1, 1, 1])
    # the codes say where x lies against the boundary, whichever cluster is explained; the relevance's sign says
    # for or against: x = 5 is high and speaks against the lower cluster, x = -5 low and speaks for it
    lower = 1 - upper
    np.testing.assert_array_equal(direction(gmm, points, cluster=lower)[:, 0], [-1, -1, 1, 1])
    relevance = explain(gmm, points, cluster=lower)[:, 0]
    assert relevance[0] > 0 and relevance[3] < 0


def test_diagonal_feature_with_equal_parameters_has_no_direction():
    """Two diagonal components that differ in feature 0 only: feature 1's terms vanish identically, code 0."""
    from zennit_clusters.families.mixture.converters import mixture_model
    means = torch.tensor([[-2.0, 0.5], [2.0, 0.5]], dtype=torch.float64)
    precisions = torch.tensor([[1.0, 4.0], [1.0, 4.0]], dtype=torch.float64)
    biases = torch.zeros(2, dtype=torch.float64)
    model = mixture_model(means, precisions, biases, 'diag', beta=1.0)
    codes = direction(model, np.array([[3.0, 7.0], [-3.0, -7.0], [0.5, 0.5]]))
    np.testing.assert_array_equal(codes, [[1, 0], [-1, 0], [1, 0]])


@pytest.mark.parametrize('source', ['partition', 'dbscan'])
def test_member_direction_matches_the_reference(source):
    iris = StandardScaler().fit_transform(load_iris().data)
    if source == 'partition':
        labels = KMeans(3, n_init=2, random_state=0).fit_predict(iris)
        model = neuralize_partition(iris, labels, max_members=20)
    else:
        model = neuralize(DBSCAN(eps=0.8, min_samples=5).fit(iris), X=iris)
    origin = 0 if model.margin.origin is None else model.margin.origin.numpy()
    members = model.margin.members.numpy() + origin
    member_labels = model.margin.member_group.numpy()
    codes, assigned, _ = (direction(model, iris), *explain(model, iris, return_logits=True)[1:])
    with_contrast = direction(model, iris, cluster=0, contrast=1)
    compared = 0
    for n in range(0, len(iris), 10):
        if assigned[n] >= 0:  # noise rows: the noise branch has no direction, the member pairs' share is small
            compared += assert_direction_matches(codes[n], *member_direction(
                iris[n], members, member_labels, model.gamma, model.beta, model.relevance_gamma))
        compared += assert_direction_matches(with_contrast[n], *member_direction(
            iris[n], members, member_labels, model.gamma, model.beta, model.relevance_gamma, cluster=0, contrast=1))
    assert compared > 0.9 * 4 * len(range(0, len(iris), 10))


def test_member_direction_hand_built():
    """Two groups on a line, feature 1 the same for every member: feature 0 high speaks for the upper group, low
    for the lower; feature 1 separates no pair and gets 0."""
    X = np.array([[-3.0, 1.0], [-2.5, 1.0], [-2.0, 1.0], [2.0, 1.0], [2.5, 1.0], [3.0, 1.0]])
    model = neuralize_partition(X, np.array([0, 0, 0, 1, 1, 1]))
    codes = direction(model, np.array([[4.0, 9.0], [-4.0, -9.0], [1.0, 1.0]]))
    np.testing.assert_array_equal(codes, [[1, 0], [-1, 0], [1, 0]])


def test_summarize_tells_two_mixture_clusters_apart(wine):
    """K = 2 GaussianMixture on wine: the summary's directions tell the clusters apart, on the features where
    their typical values differ most, and agree with the medians."""
    gmm = GaussianMixture(2, covariance_type='diag', random_state=0).fit(wine)
    summary = summarize(gmm, wine, top=13)
    a, b = (_columns(summary[c].features) for c in (0, 1))
    assert set(a['direction']) | set(b['direction']) <= {'high', 'low', 'mixed'}
    direction_of = [dict(zip(t['feature'], zip(t['direction'], t['median'], t['median_rest']))) for t in (a, b)]
    gap = {name: abs(med - rest) for name, (_, med, rest) in direction_of[0].items()}
    clear = sorted(gap, key=gap.get, reverse=True)[:5]  # the five features the clusters differ in most
    for name in clear:
        word_a, median_a, rest_a = direction_of[0][name]
        word_b, _, _ = direction_of[1][name]
        assert {word_a, word_b} == {'high', 'low'}, name
        assert (word_a == 'high') == (median_a > rest_a), name


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(1, 5), st.integers(1, 40), st.integers(0, 2**16),
       st.sampled_from([0.0, 1.0, math.inf]), st.booleans())
def test_grouped_equals_pairs_on_random_centroids(k, d, n, seed, beta, with_contrast):
    """Any K, D, N (one row, one feature included): the grouped codes are int8 in {-1, 0, 1} and equal the pairs
    path's away from ties."""
    rng = np.random.default_rng(seed)
    centres = torch.from_numpy(rng.normal(size=(k, d)))
    x = torch.from_numpy(rng.normal(scale=2.0, size=(n, d)))
    model = neuralize(centres, beta=1.0)
    options = {'beta': beta}
    if with_contrast:
        options['contrast'] = torch.from_numpy(rng.integers(0, k, n))
    grouped, pairs = _two_paths(model, x, **options)
    assert grouped.dtype == np.int8 and grouped.shape == (n, d) and set(np.unique(grouped)) <= {-1, 0, 1}
    labels = torch.cdist(x, centres).argmin(1).numpy()
    for row, i in np.argwhere(grouped != pairs):
        c = labels[row]
        if with_contrast:  # the one pair (c, k) counts whole: its part is the contribution w (x - m)
            rival = int(options['contrast'][row])
            assert rival != c  # rows with k == c have no pair: 0 on both paths
            contribution, offset = pair_contributions(x[row].numpy(), centres[c].numpy(), centres[rival].numpy())
            part, offsets = contribution[None], offset[None]
        else:
            part, offsets = pair_parts(x[row].numpy(), kmeans_pairs(centres.numpy(), c), beta)
        signed = (np.abs(part[:, i]) * np.sign(offsets[:, i])).sum()
        assert abs(signed) <= 1e-9 * np.abs(part[:, i]).sum(), (row, i)
