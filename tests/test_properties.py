"""Property-based tests: shapes, dtypes, exactness and conservation on random models and data."""
import math
import warnings

import numpy as np
import torch
from hypothesis import assume, example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.cluster import KMeans
from zennit.attribution import Gradient

from zennit_clusters import ClusterComposite, explain, neuralize
from references.centroids import kmeans_pairs, nearest_centroid, neon_reference

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def problems(draw):
    """Centroids (possibly duplicated or nearly so), data around them, and an offset far from the origin."""
    n_clusters = draw(st.integers(2, 6))
    n_features = draw(st.integers(1, 6))
    n_samples = draw(st.integers(1, 40))
    centroids = draw(arrays(np.float64, (n_clusters, n_features), elements=finite))
    duplicate = draw(st.sampled_from(['none', 'exact', 'near']))
    if duplicate != 'none':
        centroids[1] = centroids[0] + (1e-7 if duplicate == 'near' else 0.0)
    X = draw(arrays(np.float64, (n_samples, n_features), elements=finite))
    offset = draw(st.sampled_from([0.0, 1e3, -1e4]))
    beta = draw(st.sampled_from([0.0, 0.1, 1.0, math.inf]))
    return centroids + offset, X + offset, beta


def scale_of(X, centroids):
    return max(1.0, float(((X[:, None] - centroids[None]) ** 2).sum(-1).max()))


@given(problems())
def test_label_is_nearest_centroid_and_relevance_conserves(problem):
    centroids, X, beta = problem
    model = neuralize(torch.as_tensor(centroids), beta=1.0)
    relevance, labels, logits = explain(model, X, beta=beta, return_logits=True)
    assert relevance.shape == X.shape and relevance.dtype == np.float64
    assert logits.shape == (len(X), len(centroids)) and labels.dtype == np.int64

    expected, gap, distances = nearest_centroid(X, centroids)
    tolerance = 1e-9 * scale_of(X, centroids)
    clear = gap > tolerance
    np.testing.assert_array_equal(labels[clear], expected[clear])
    # within rounding of a tie, any of the tied nearest centroids is a correct answer
    tied = distances[np.arange(len(X)), labels] - distances.min(1) <= tolerance
    assert tied.all()

    evidence = logits[np.arange(len(X)), labels]
    assert (evidence >= -tolerance).all()
    np.testing.assert_allclose(relevance.sum(1), evidence, rtol=1e-9, atol=tolerance)


@given(problems())
# near-duplicate centroids far from the origin: the case that once caught cancellation in the reference
@example((np.array([[-1e4], [-1e4 + 1e-7]]), np.array([[-1e4]]), 0.0))
def test_closed_form_matches_reference_and_zennit(problem):
    centroids, X, beta = problem
    model = neuralize(torch.as_tensor(centroids), beta=1.0)
    x = X[:5]
    relevance, labels, _ = explain(model, x, beta=beta, return_logits=True)
    _, gap, _ = nearest_centroid(x, centroids)
    tolerance = 1e-9 * scale_of(x, centroids)
    for n in range(len(x)):
        evidence, expected = neon_reference(x[n], kmeans_pairs(centroids, int(labels[n])), beta,
                                            epsilon=np.finfo(np.float64).eps)
        # near a tie the soft-min shares are ill-conditioned (h ~ 0): compare where the point is clear
        if gap[n] > 1e-6 * scale_of(x, centroids):
            np.testing.assert_allclose(relevance[n], expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max() + tolerance)
        assert abs(relevance[n].sum() - evidence) <= 1e-9 * abs(evidence) + tolerance

    with Gradient(model, ClusterComposite(beta=beta)) as attributor:
        onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), len(centroids)).double()
        _, zennit_relevance = attributor(torch.as_tensor(x), attr_output=lambda y: y * onehot)
    np.testing.assert_allclose(zennit_relevance.numpy(), relevance, rtol=1e-6, atol=1e-6 * np.abs(relevance).max() + tolerance)


@given(problems(), st.sampled_from([np.float32, np.float64]), st.booleans())
def test_dtypes_and_containers(problem, dtype, as_tensor):
    centroids, X, beta = problem
    X = X.astype(dtype)
    X_in = torch.as_tensor(X) if as_tensor else X
    relevance = explain(neuralize(torch.as_tensor(centroids)), X_in, beta=beta)
    assert type(relevance) is (torch.Tensor if as_tensor else np.ndarray)
    assert relevance.shape == X.shape
    assert relevance.dtype == (torch.float32 if dtype == np.float32 else torch.float64) if as_tensor else \
        relevance.dtype == dtype
    assert np.isfinite(np.asarray(relevance)).all()


@given(st.integers(2, 5), st.integers(1, 4), st.integers(0, 2**16), st.sampled_from([0.0, 1e3]))
def test_sklearn_kmeans_on_random_data(n_clusters, n_features, seed, offset):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, n_features)) * rng.uniform(0.1, 10) + offset
    assume(len(np.unique(X, axis=0)) >= n_clusters)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # ConvergenceWarning on degenerate draws
        estimator = KMeans(n_clusters=n_clusters, n_init=1, random_state=0).fit(X)
    for dtype in (np.float64, np.float32):
        x = X.astype(dtype)
        _, labels, _ = explain(estimator, x, return_logits=True)
        expected = estimator.predict(x.astype(np.float64))
        _, gap, _ = nearest_centroid(x.astype(np.float64), estimator.cluster_centers_)
        resolution = (1e-9 if dtype == np.float64 else 1e-4) * scale_of(x.astype(np.float64), estimator.cluster_centers_)
        clear = gap > resolution
        np.testing.assert_array_equal(labels[clear], expected[clear])
