"""neuralize(): the network's argmax is the estimator's own predict, on real data, in float64 and float32."""
import numpy as np
import pytest
import torch
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans

from zennit_clusters import MinPool, NeuralizedCentroids, PairwiseMargin, explain, neuralize
from references.centroids import bisecting_pairs, kmeans_pairs, margin

ESTIMATORS = {
    'KMeans': lambda k: KMeans(n_clusters=k, n_init=3, random_state=0),
    'MiniBatchKMeans': lambda k: MiniBatchKMeans(n_clusters=k, n_init=3, random_state=0),
    'BisectingKMeans': lambda k: BisectingKMeans(n_clusters=k, random_state=0),
    'BisectingKMeans-largest': lambda k: BisectingKMeans(n_clusters=k, random_state=0,
                                                        bisecting_strategy='largest_cluster'),
}


@pytest.fixture(scope='module')
def fitted(real_data):
    return {(name, data): make(k).fit(X) for name, make in ESTIMATORS.items() for data, (X, k) in real_data.items()}


@pytest.mark.parametrize('name', ESTIMATORS)
@pytest.mark.parametrize('data', ['digits', 'wine', 'breast_cancer'])
def test_argmax_equals_predict_float64(fitted, real_data, name, data):
    X, _ = real_data[data]
    estimator = fitted[name, data]
    model = neuralize(estimator)
    logits = model(torch.as_tensor(X))
    assert logits.dtype == torch.float64
    np.testing.assert_array_equal(logits.argmax(1).numpy(), estimator.predict(X))
    # f_c > 0 exactly for the assigned cluster (no point of real data sits on a boundary)
    assigned = logits.max(1).values
    assert (assigned > 0).all()
    assert ((logits > 0).sum(1) == 1).all()


@pytest.mark.parametrize('name', ESTIMATORS)
@pytest.mark.parametrize('data', ['digits', 'wine', 'breast_cancer'])
@pytest.mark.parametrize('offset', [0.0, 1000.0])
def test_argmax_equals_predict_float32_far_from_origin(real_data, name, data, offset):
    X, k = real_data[data]
    X32 = (X + offset).astype(np.float32)
    estimator = ESTIMATORS[name](k).fit(X + offset)
    model = neuralize(estimator)
    # sklearn predicts in float64 only: feed it the very float32 values we use
    expected = estimator.predict(X32.astype(np.float64))
    np.testing.assert_array_equal(model(torch.as_tensor(X32)).argmax(1).numpy(), expected)
    _, labels, _ = explain(model, X32, return_logits=True)
    np.testing.assert_array_equal(labels, expected)


def test_float32_without_centring_would_fail(digits):
    """The centring of docs/method.md section 1 matters: without it, float32 labels go wrong far from the origin
    (at an offset of 1e4, half of them with this machine's float32 products; at 1e3 some BLAS builds still get
    every label right)."""
    X = digits + 1e4
    estimator = KMeans(n_clusters=10, n_init=3, random_state=0).fit(X)
    model = neuralize(estimator)
    model_uncentred = NeuralizedCentroids.from_pairs(
        model.cluster_centers, model.margin.own, model.margin.rival, model.margin.valid, beta=1.0,
        source='test', origin=torch.zeros(X.shape[1], dtype=torch.float64))
    x32 = torch.as_tensor(X, dtype=torch.float32)
    wrong = (model_uncentred(x32).argmax(1).numpy() != estimator.predict(X)).mean()
    right = (model(x32).argmax(1).numpy() != estimator.predict(X)).mean()
    assert right == 0 and wrong > 0


@pytest.mark.parametrize('name', ESTIMATORS)
def test_margins_match_reference_equations(fitted, real_data, name):
    X, k = real_data['wine']
    estimator = fitted[name, 'wine']
    model = neuralize(estimator)
    logits = model(torch.as_tensor(X[:20])).numpy()
    for n, x in enumerate(X[:20]):
        for c in range(k):
            pairs = (bisecting_pairs(estimator, c) if 'Bisecting' in name
                     else kmeans_pairs(estimator.cluster_centers_, c))
            expected = min(margin(x, own, rival) for own, rival in pairs)
            np.testing.assert_allclose(logits[n, c], expected, rtol=1e-9, atol=1e-9 * np.abs(x).max() ** 2)


def test_bisecting_kmeans_is_not_nearest_centroid(fitted, real_data):
    """The tree matters: on digits, BisectingKMeans.predict differs from the nearest leaf centroid."""
    X, _ = real_data['digits']
    estimator = fitted['BisectingKMeans', 'digits']
    nearest = ((X[:, None] - estimator.cluster_centers_[None]) ** 2).sum(-1).argmin(1)
    assert (nearest != estimator.predict(X)).any()
    np.testing.assert_array_equal(neuralize(estimator)(torch.as_tensor(X)).argmax(1).numpy(), estimator.predict(X))


def test_layers_are_separate_leaves(fitted):
    model = neuralize(fitted['KMeans', 'wine'])
    leaves = [module for module in model.modules() if not list(module.children())]
    assert [type(leaf) for leaf in leaves] == [PairwiseMargin, MinPool]
    x = torch.randn(5, 13, dtype=torch.float64)
    margins = model.margin(x)
    assert margins.shape == (5, 3, 2)
    torch.testing.assert_close(model.pool(margins), model(x))
    assert model.n_clusters == 3 and model.n_features_in_ == 13 and model.source == 'KMeans'
    np.testing.assert_allclose(model.cluster_centers.numpy(), fitted['KMeans', 'wine'].cluster_centers_)


def test_torch_centroid_heads():
    torch.manual_seed(0)
    centroids = torch.randn(4, 3)

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.centroids = torch.nn.Parameter(centroids.clone())

        def forward(self, x):  # a forward is what neuralize() checks (tests/families/centroids/test_torch_heads.py)
            return torch.cdist(x, self.centroids)

    class Anonymous(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer('codebook', centroids.clone())

        def forward(self, x):
            return -((x[:, None] - self.codebook) ** 2).sum(-1)

    x = torch.randn(200, 3)
    expected = torch.cdist(x.double(), centroids.double()).argmin(1)
    for head in (centroids, Head(), Anonymous()):
        model = neuralize(head)
        assert isinstance(model, NeuralizedCentroids)
        torch.testing.assert_close(model(x).argmax(1), expected)
        assert model(x).dtype == torch.float32


def test_neuralize_is_idempotent_and_beta_policy(fitted, real_data):
    X, _ = real_data['wine']
    estimator = fitted['KMeans', 'wine']
    model = neuralize(estimator)
    assert neuralize(model) is model
    # default without data: the 1 / mean f_c heuristic evaluated at the centroids
    centroids = estimator.cluster_centers_
    at_centroids = [min(((centroids[c] - centroids[k]) ** 2).sum() for k in range(3) if k != c) for c in range(3)]
    assert model.beta == pytest.approx(1.0 / np.mean(at_centroids), rel=1e-12)
    # with training data: 1 / mean over the data of the evidence of each point's own cluster
    with_data = neuralize(estimator, X=X)
    evidence = with_data(torch.as_tensor(X)).max(1).values
    assert with_data.beta == pytest.approx(1.0 / float(evidence.mean()), rel=1e-12)
    assert neuralize(estimator, X=X, beta=0.25).beta == 0.25
    retuned = neuralize(model, beta=3.0)
    assert retuned.beta == 3.0 and model.beta != 3.0


def test_kmeans_with_duplicate_centroids_matches_predict():
    centroids = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 1.0]])
    estimator = KMeans(n_clusters=3, init=centroids, n_init=1, max_iter=1).fit(centroids + [[0, 0], [1e-3, 0], [0, 0]])
    estimator.cluster_centers_ = centroids.copy()
    X = np.random.default_rng(0).normal(size=(300, 2)) * 2
    logits = neuralize(estimator)(torch.as_tensor(X))
    np.testing.assert_array_equal(logits.argmax(1).numpy(), estimator.predict(X))


def test_frame_origin_is_the_float32_mean_unless_zero_is_as_good():
    from zennit_clusters.validation import frame_origin
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(8, 5, generator=generator, dtype=torch.float64)
    points -= points.mean(0)
    spread = float(points.square().sum(1).mean().sqrt())
    near = points + 0.4 * spread / 5 ** 0.5  # mean at 0.4 spread from the origin
    far = points + 1000.0
    assert torch.equal(frame_origin(near), torch.zeros(5, dtype=torch.float64))
    centre = frame_origin(far)
    assert torch.equal(centre, far.mean(0).float().double())  # exactly representable in float32
    assert frame_origin(points + 0.6 * spread / 5 ** 0.5).abs().min() > 0
