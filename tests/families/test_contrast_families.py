"""Contrastive explanations and per-competitor parts of mixtures and member networks (float64), against
scikit-learn's own log-probabilities and the slow member-network reference; refusals where a family has no
pairwise reading."""
import numpy as np
import pytest
import torch
from sklearn.cluster import DBSCAN
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
from sklearn.cluster import KMeans

from zennit_clusters import direction, explain, explain_with_constant, neuralize, neuralize_partition
from references.members import member_network_reference


def standardize(X):
    return (X - X.mean(0)) / X.std(0)


@pytest.mark.parametrize('covariance_type', ['tied', 'diag', 'spherical', 'full'])
def test_mixture_contrast_sums_to_log_ratio(wine, covariance_type):
    X = standardize(wine)
    mixture = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    model = neuralize(mixture)
    labels = mixture.predict(X)
    weighted = mixture._estimate_weighted_log_prob(X)  # log pi_k N(x | k), scikit-learn's own
    rows = np.arange(len(X))
    for competitor in range(3):
        relevance, constant = explain_with_constant(model, X, contrast=competitor)
        h = weighted[rows, labels] - weighted[rows, competitor]
        np.testing.assert_allclose(relevance.sum(1) + constant, h, rtol=1e-9, atol=1e-9)
        assert not relevance[labels == competitor].any()
        np.testing.assert_allclose(explain(model, X, contrast=competitor), relevance)


@pytest.mark.parametrize('covariance_type', ['tied', 'diag', 'full'])
@pytest.mark.parametrize('beta', [None, 0.3])
def test_mixture_parts_sum_to_explanation_and_rebuild_it_from_contrasts(wine, covariance_type, beta):
    X = standardize(wine)
    mixture = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    model = neuralize(mixture)
    relevance, constant = explain_with_constant(model, X, beta=beta)
    parts, constant_parts = explain_with_constant(model, X, beta=beta, per_competitor=True)
    assert parts.shape == (len(X), 3, X.shape[1]) and constant_parts.shape == (len(X), 3)
    np.testing.assert_allclose(parts.sum(1), relevance, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(constant_parts.sum(1), constant, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(explain(model, X, beta=beta, per_competitor=True), parts)
    # each part is the contrast of its competitor scaled by R_k / h_ck, with R_k the soft-min share of f_c
    # (from scikit-learn's log-probabilities)
    labels = mixture.predict(X)
    weighted = mixture._estimate_weighted_log_prob(X)
    rows = np.arange(len(X))
    beta = 1.0 if beta is None else beta
    h = weighted[rows, labels][:, None] - weighted  # (N, K), h_cc = 0
    others = np.arange(3)[None] != labels[:, None]
    evidence = -np.log(np.where(others, np.exp(-h), 0.0).sum(1))
    shares = np.where(others, np.exp(-beta * h), 0.0)
    shares /= shares.sum(1, keepdims=True)
    for k in range(3):
        contrast = explain(model, X, contrast=k)
        keep = labels != k
        factor = (shares[:, k] * evidence / np.where(keep, h[:, k], 1.0))[:, None]
        np.testing.assert_allclose(parts[keep, k], factor[keep] * contrast[keep], rtol=1e-7, atol=1e-10)
        assert not parts[~keep, k].any()


def test_member_network_contrast_and_parts_match_reference(wine):
    X = standardize(wine)[::2]
    labels = KMeans(3, n_init=2, random_state=0).fit_predict(X)
    model = neuralize_partition(X, labels, gamma=0.7)
    queries = X[::9]
    parts = explain(model, queries, per_competitor=True)
    np.testing.assert_allclose(parts.sum(1), explain(model, queries), rtol=1e-10, atol=1e-12)
    _, assigned, logits = explain(model, queries, return_logits=True)
    epsilon = model.margin.tie_threshold(torch.float64)
    for k in range(3):
        contrast = explain(model, queries, contrast=k)
        for n in range(len(queries)):
            c = int(assigned[n])
            _, _, expected, _ = member_network_reference(queries[n], X, labels, 0.7, model.beta, epsilon=epsilon,
                                                         kappa=model.relevance_gamma, contrast=k)
            np.testing.assert_allclose(contrast[n], expected, rtol=1e-8, atol=1e-10 * (np.abs(expected).max() + 1))
            _, _, part, _ = member_network_reference(queries[n], X, labels, 0.7, model.beta, epsilon=epsilon,
                                                     kappa=model.relevance_gamma, only=k)
            np.testing.assert_allclose(parts[n, k], part, rtol=1e-8, atol=1e-10 * (np.abs(part).max() + 1))
            if c == k:
                assert not contrast[n].any()


def test_member_network_contrast_sums_to_margin(wine):
    X = standardize(wine)
    labels = KMeans(3, n_init=2, random_state=0).fit_predict(X)
    model = neuralize_partition(X, labels)
    relevance, assigned, logits = explain(model, X, return_logits=True)
    contrast = explain(model, X, cluster=0, contrast=2)
    # h_02 = S_0 - S_2 from the pooled scores: with f_c = min_k h_ck, and cluster 0 against 2
    with torch.no_grad():
        from zennit_clusters.equations import centroid_scores
        from zennit_clusters.families.members.equations import group_logmeanexp
        x = torch.from_numpy(X) - (0 if model.margin.origin is None else model.margin.origin)
        pooled = group_logmeanexp(centroid_scores(x, model.margin.members), model.own_pool.groups,
                                  model.own_pool.valid, model.gamma).numpy()
    np.testing.assert_allclose(contrast.sum(1), pooled[:, 0] - pooled[:, 2], rtol=1e-8, atol=1e-9)


def test_refusals_where_no_pairwise_reading(wine):
    X = standardize(wine)
    mixture = neuralize(GaussianMixture(3, random_state=0).fit(X))
    assert direction(mixture, X).dtype == np.int8  # a direction, from the log-ratios' roots (test_direction.py)
    with pytest.raises(ValueError, match='reference need pairwise margins'):
        explain(mixture, X, reference='zero')
    iris = standardize(load_iris().data)
    dbscan = neuralize(DBSCAN(eps=0.8, min_samples=5).fit(iris), X=iris)
    with pytest.raises(ValueError, match='noise rule'):
        explain(dbscan, iris, per_competitor=True)
    # one margin is still defined: c against k, without the noise branch
    relevance, labels, _ = explain(dbscan, iris, return_logits=True)
    contrast = explain(dbscan, iris, contrast=1)
    assert np.isfinite(contrast).all() and not contrast[labels == 1].any()


def test_pipeline_passes_contrast_and_reference_through(wine):
    pipeline = make_pipeline(StandardScaler(), KMeans(3, n_init=2, random_state=0)).fit(wine)
    model = neuralize(pipeline, X=wine)
    head = pipeline[-1]
    scaled = pipeline[0].transform(wine)
    distances = ((scaled[:, None] - head.cluster_centers_[None]) ** 2).sum(-1)
    labels = head.predict(scaled)
    rows = np.arange(len(wine))
    contrast = explain(model, wine, contrast=1)
    np.testing.assert_allclose(contrast.sum(1), distances[:, 1] - distances[rows, labels], rtol=1e-9, atol=1e-9)
    # zero removal in scaled coordinates is the raw mean: reference=mean of the data, raw
    raw = explain(model, wine, reference=wine.mean(0))
    direct = explain(neuralize(head, X=scaled), scaled, reference=np.zeros(wine.shape[1]))
    np.testing.assert_allclose(raw, direct, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(explain(model, wine, per_competitor=True).sum(1), explain(model, wine),
                               rtol=1e-9, atol=1e-12)
