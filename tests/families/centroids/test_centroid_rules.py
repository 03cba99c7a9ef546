"""The Zennit path (Gradient attributor + ClusterComposite) against the closed form and the reference.

Runs on zennit 0.5.1 and, in `make test`, again on zennit 1.0.0.
"""
import math

import numpy as np
import pytest
import torch
from sklearn.cluster import BisectingKMeans, KMeans
from zennit.attribution import Gradient

from zennit_clusters import ClusterComposite, Midpoint, SoftMin, explain, neuralize
from references.centroids import bisecting_pairs, kmeans_pairs, neon_reference


def zennit_relevance(model, x, cluster, composite):
    """Relevance through zennit, seeded with the evidence f_c of the explained cluster."""
    x = torch.as_tensor(x)
    with Gradient(model, composite) as attributor:
        def seed(logits):
            chosen = logits.argmax(1) if cluster is None else torch.full((len(logits),), cluster)
            return logits * torch.nn.functional.one_hot(chosen, logits.shape[1]).to(logits.dtype)
        output, relevance = attributor(x, attr_output=seed)
    return output.detach(), relevance


@pytest.fixture(scope='module', params=['KMeans', 'BisectingKMeans'])
def fitted(request, wine):
    X = (wine - wine.mean(0)) / wine.std(0)
    estimator = (KMeans(n_clusters=5, n_init=2, random_state=0) if request.param == 'KMeans'
                 else BisectingKMeans(n_clusters=5, random_state=0)).fit(X)
    return request.param, estimator, neuralize(estimator, X=X), X


@pytest.mark.parametrize('beta', [0.0, None, 0.3, math.inf])
@pytest.mark.parametrize('cluster', [None, 2])
def test_zennit_path_equals_closed_form_and_reference(fitted, beta, cluster):
    name, estimator, model, X = fitted
    logits, relevance = zennit_relevance(model, X, cluster, ClusterComposite(beta=beta))
    closed = explain(model, X, cluster=cluster, beta=beta)
    np.testing.assert_allclose(relevance.numpy(), closed, rtol=1e-6, atol=1e-9 * np.abs(closed).max())

    beta_value = model.beta if beta is None else beta
    for n in range(0, len(X), 20):
        c = int(logits[n].argmax()) if cluster is None else cluster
        pairs = (bisecting_pairs(estimator, c) if name == 'BisectingKMeans'
                 else kmeans_pairs(estimator.cluster_centers_, c))
        evidence, expected = neon_reference(X[n], pairs, beta_value)
        np.testing.assert_allclose(relevance[n].numpy(), expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())
        # conservation: the relevance on the features sums to the evidence it was seeded with
        assert float(relevance[n].sum()) == pytest.approx(evidence, rel=1e-9, abs=1e-10)


def test_rule_beta_overrides_model_beta(fitted):
    _, _, model, X = fitted
    _, default = zennit_relevance(model, X, None, ClusterComposite())
    _, overridden = zennit_relevance(model, X, None, ClusterComposite(beta=10 * model.beta))
    np.testing.assert_allclose(default.numpy(), explain(model, X), rtol=1e-6, atol=1e-9)
    assert not np.allclose(default.numpy(), overridden.numpy())


def test_hooks_are_removed_after_attribution(fitted):
    _, _, model, X = fitted
    x = torch.as_tensor(X[:4]).requires_grad_()
    zennit_relevance(model, X[:4], None, ClusterComposite())
    logits = model(x)
    (gradient,) = torch.autograd.grad(logits[:, 0].sum(), x)
    # plain autograd again: the gradient of the hard min, not relevance
    assert not torch.allclose(gradient, torch.as_tensor(explain(model, X[:4], cluster=0)))


def test_rules_copy_their_arguments():
    rule = SoftMin(beta=0.7)
    assert rule.copy() is not rule and rule.copy().beta == 0.7
    midpoint = Midpoint(epsilon=1e-3)
    assert midpoint.copy().epsilon == 1e-3
    with pytest.raises(ValueError, match='beta'):
        SoftMin(beta=-1.0)


@pytest.mark.parametrize('name', ['KMeans', 'BisectingKMeans'])
def test_zennit_contrast_matches_closed_form(wine_models, name):
    """The Zennit path of "why c rather than k": the margin layer with the Midpoint rule, seeded with h_ck."""
    from zennit_clusters import contrast_output
    X, estimators = wine_models
    model = neuralize(estimators[name], X=X)
    x = torch.as_tensor(X)
    labels = model(x).argmax(1)
    for k in range(4):
        with Gradient(model.margin, ClusterComposite()) as attributor:
            _, relevance = attributor(x, attr_output=contrast_output(model, labels, k))
        expected = explain(model, X, contrast=k)
        np.testing.assert_allclose(relevance.detach().numpy(), expected, rtol=1e-8, atol=1e-12)
