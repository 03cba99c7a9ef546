"""explain(): the closed form against the slow reference, conservation, chunking, types and devices."""
import math

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from zennit_clusters import explain, make_explainer, neuralize
from references.centroids import bisecting_pairs, kmeans_pairs, neon_reference

BETAS = [0.0, 'model', 'half', math.inf]


def resolve(beta, model):
    return {'model': model.beta, 'half': 0.5 * model.beta}.get(beta, beta)


def pairs_of(name, estimator, cluster):
    if name == 'BisectingKMeans':
        return bisecting_pairs(estimator, cluster)
    return kmeans_pairs(estimator.cluster_centers_, cluster)


@pytest.mark.parametrize('name', ['KMeans', 'BisectingKMeans'])
@pytest.mark.parametrize('beta', BETAS)
@pytest.mark.parametrize('which', ['assigned', 'other'])
def test_closed_form_matches_reference(wine_models, name, beta, which):
    X, estimators = wine_models
    estimator = estimators[name]
    model = neuralize(estimator, X=X)
    beta = resolve(beta, model)
    labels = estimator.predict(X)
    points = X[::6]
    for x, label in zip(points, labels[::6]):
        cluster = int(label) if which == 'assigned' else (int(label) + 1) % 4
        evidence, expected = neon_reference(x, pairs_of(name, estimator, cluster), beta)
        relevance, _, logits = explain(model, x[None], cluster=cluster, beta=beta, return_logits=True)
        assert logits[0, cluster] == pytest.approx(evidence, rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(relevance[0], expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())
        if which == 'other':
            assert evidence < 0


@pytest.mark.parametrize('beta', BETAS)
def test_conservation_float64_real_data(real_data, beta):
    for X, k in real_data.values():
        model = neuralize(KMeans(n_clusters=k, n_init=2, random_state=0).fit(X), X=X)
        beta_value = resolve(beta, model)
        for cluster in (None, 0):
            relevance, labels, logits = explain(model, X, cluster=cluster, beta=beta_value, return_logits=True)
            explained = labels if cluster is None else np.full(len(X), cluster)
            evidence = logits[np.arange(len(X)), explained]
            scale = (X ** 2).sum(1).max()
            np.testing.assert_allclose(relevance.sum(1), evidence, rtol=1e-10, atol=1e-12 * scale)


def test_hard_min_gives_all_to_nearest_competitor(wine_models):
    X, estimators = wine_models
    estimator = estimators['KMeans']
    model = neuralize(estimator)
    x = X[:1]
    label = int(estimator.predict(x)[0])
    pairs = kmeans_pairs(estimator.cluster_centers_, label)
    others = [k for k in range(4) if k != label]
    margins = [((x[0] - estimator.cluster_centers_[k]) ** 2).sum() - ((x[0] - estimator.cluster_centers_[label]) ** 2).sum()
               for k in others]
    nearest = int(np.argmin(margins))
    _, expected = neon_reference(x[0], [pairs[nearest]], beta=0.0)
    np.testing.assert_allclose(explain(model, x, beta=math.inf)[0], expected, rtol=1e-9)


def test_soft_min_tends_to_hard_min(wine_models):
    X, estimators = wine_models
    model = neuralize(estimators['KMeans'])
    hard = explain(model, X, beta=math.inf)
    soft = explain(model, X, beta=1e6 * model.beta)
    np.testing.assert_allclose(soft, hard, rtol=1e-6, atol=1e-9)


def test_chunking_and_batch_independence(digits):
    model = neuralize(KMeans(n_clusters=10, n_init=2, random_state=0).fit(digits))
    whole = explain(model, digits)
    np.testing.assert_array_equal(explain(model, digits, chunk_size=97), whole)
    # an explanation of one point never depends on the other points explained with it
    for row in (0, 500, 1796):
        np.testing.assert_allclose(explain(model, digits[row:row + 1])[0], whole[row], rtol=1e-12, atol=1e-12)


def test_numpy_in_numpy_out_torch_in_torch_out(wine_models):
    X, estimators = wine_models
    estimator = estimators['KMeans']
    relevance = explain(estimator, X)
    assert isinstance(relevance, np.ndarray) and relevance.dtype == np.float64 and relevance.shape == X.shape
    x = torch.as_tensor(X, dtype=torch.float32)
    relevance32 = explain(estimator, x)
    assert torch.is_tensor(relevance32) and relevance32.dtype == torch.float32 and relevance32.device == x.device
    np.testing.assert_allclose(relevance32.numpy(), relevance, rtol=1e-3, atol=1e-4 * np.abs(relevance).max())
    # integer input is explained in float64; lists work too
    ints = np.round(X * 10).astype(np.int64)
    assert explain(estimator, ints).dtype == np.float64
    np.testing.assert_array_equal(explain(estimator, ints.tolist()), explain(estimator, ints.astype(float)))
    # a tensor that requires grad is fine and gives a tensor without a graph
    assert not explain(estimator, x.clone().requires_grad_()).requires_grad


def test_float32_conservation_far_from_origin(digits):
    X = (digits + 1000.0).astype(np.float32)
    estimator = KMeans(n_clusters=10, n_init=2, random_state=0).fit(X.astype(np.float64))
    relevance, labels, logits = explain(estimator, X, return_logits=True)
    np.testing.assert_array_equal(labels, estimator.predict(X.astype(np.float64)))
    evidence = logits[np.arange(len(X)), labels]
    reference, _, _ = explain(estimator, X.astype(np.float64), return_logits=True)
    np.testing.assert_allclose(relevance.sum(1), evidence, rtol=1e-3, atol=1e-3 * evidence.mean())
    np.testing.assert_allclose(relevance, reference, rtol=1e-2, atol=1e-3 * np.abs(reference).max())


def test_explainer_module_outputs(wine_models):
    X, estimators = wine_models
    explainer = make_explainer(estimators['KMeans'])
    assert isinstance(explainer, torch.nn.Module)
    label, logits, relevance = explainer(torch.as_tensor(X))
    assert label.dtype == torch.int64 and logits.shape == (len(X), 4) and relevance.shape == X.shape
    bad = torch.as_tensor(X[:3]).clone()
    bad[1, 2] = math.nan
    label, _, _ = explainer(bad)
    assert label.tolist()[1] == -1 and label.tolist()[0] >= 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device on this machine')
def test_cuda_input_stays_on_device(wine_models):
    X, estimators = wine_models
    x = torch.as_tensor(X, device='cuda')
    relevance = explain(estimators['KMeans'], x)
    assert relevance.device.type == 'cuda'
    np.testing.assert_allclose(relevance.cpu().numpy(), explain(estimators['KMeans'], X), rtol=1e-9, atol=1e-12)