"""Bad input gets a clear ValueError/TypeError naming what was expected and what came."""
import math

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression

from zennit_clusters import explain, make_explainer, neuralize


@pytest.fixture(scope='module')
def kmeans(wine):
    return KMeans(n_clusters=3, n_init=2, random_state=0).fit(wine)


def test_unfitted_estimator():
    with pytest.raises(NotFittedError, match='not fitted'):
        neuralize(KMeans(n_clusters=3))
    with pytest.raises(ValueError):  # NotFittedError is a ValueError, as in scikit-learn
        explain(KMeans(n_clusters=3), np.zeros((2, 2)))


@pytest.mark.parametrize('thing', [LinearRegression(), 'kmeans.pkl', 3.0, None, np.zeros((3, 2))])
def test_unsupported_estimator(thing):
    with pytest.raises(TypeError, match='Cannot neuralize an object of type .*Supported: .*KMeans'):
        neuralize(thing)


def test_torch_module_without_centroids():
    with pytest.raises(TypeError, match='Cannot neuralize torch module Sequential: no centroids or clustering head'):
        neuralize(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)))


def test_wrong_number_of_features(kmeans, wine):
    with pytest.raises(ValueError, match='X has 12 features, but the model was fitted on 13 features'):
        explain(kmeans, wine[:, :12])
    model = neuralize(kmeans)
    with pytest.raises(ValueError, match='PairwiseMargin expects 13 features per sample, got 12'):
        model(torch.zeros(4, 12, dtype=torch.float64))
    with pytest.raises(ValueError, match='expects a 2-d tensor'):
        model(torch.zeros(13, dtype=torch.float64))


@pytest.mark.parametrize('shape', [(13,), (2, 13, 1), (0, 13)])
def test_wrong_shape(kmeans, shape):
    with pytest.raises(ValueError, match='2-d|0 samples'):
        explain(kmeans, np.zeros(shape))


@pytest.mark.parametrize('value, what', [(math.nan, 'NaN'), (math.inf, 'infinity'), (-math.inf, 'infinity')])
@pytest.mark.parametrize('as_tensor', [False, True])
def test_nan_and_inf(kmeans, wine, value, what, as_tensor):
    X = wine.copy()
    X[57, 4] = value
    X = torch.as_tensor(X) if as_tensor else X
    with pytest.raises(ValueError, match=f'X contains {what} \\(first in row 57\\)'):
        explain(kmeans, X)
    with pytest.raises(ValueError, match=f'row 57'):
        explain(kmeans, X, chunk_size=10)  # row numbers count from the start of X, not of the chunk
    with pytest.raises(ValueError, match='training data'):
        neuralize(kmeans, X=X)


def test_overflow_is_reported(kmeans, wine):
    with pytest.raises(ValueError, match='overflows'):
        explain(kmeans, (wine[:3] * 1e35).astype(np.float32))


@pytest.mark.parametrize('cluster, error', [(3, ValueError), (-1, ValueError), (1.0, TypeError), ('0', TypeError),
                                            (True, TypeError)])
def test_cluster_out_of_range(kmeans, wine, cluster, error):
    with pytest.raises(error, match=r'cluster must be (in|an int in) \[0, 3\)'):
        explain(kmeans, wine, cluster=cluster)


def test_cluster_accepts_numpy_and_torch_integers(kmeans, wine):
    expected = explain(kmeans, wine, cluster=2)
    np.testing.assert_array_equal(explain(kmeans, wine, cluster=np.int64(2)), expected)
    np.testing.assert_array_equal(explain(kmeans, wine, cluster=torch.tensor(2)), expected)


@pytest.mark.parametrize('beta, error', [(-0.1, ValueError), (math.nan, ValueError), ('1', TypeError),
                                         ([1.0], TypeError), (True, TypeError)])
def test_bad_beta(kmeans, wine, beta, error):
    with pytest.raises(error, match='beta must be'):
        explain(kmeans, wine, beta=beta)
    with pytest.raises(error, match='beta must be'):
        neuralize(kmeans, beta=beta)


@pytest.mark.parametrize('X, error, message', [
    (np.array([['a', 'b']] * 2), TypeError, 'must hold real numbers'),
    (np.ones((2, 13), dtype=complex), TypeError, 'must hold real numbers'),
    (torch.ones(2, 13, dtype=torch.complex64), TypeError, 'real-valued'),
    # scipy sparse X is explained by the centroid family's sparse path (tests/families/centroids/test_sparse.py)
    (scipy.sparse.csr_matrix(np.ones((2, 13), dtype=complex)), TypeError, 'must hold real numbers'),
])
def test_bad_array_types(kmeans, X, error, message):
    with pytest.raises(error, match=message):
        explain(kmeans, X)


def test_bad_chunk_size(kmeans, wine):
    with pytest.raises(ValueError, match='chunk_size must be a positive int'):
        explain(kmeans, wine, chunk_size=0)


def test_single_cluster_is_refused():
    with pytest.raises(ValueError, match='at least 2 clusters'):
        neuralize(torch.zeros(1, 3))
    with pytest.raises(ValueError, match='NaN or infinity'):
        neuralize(torch.tensor([[0.0, 1.0], [math.nan, 0.0]]))


def test_make_explainer_validates(kmeans):
    with pytest.raises(ValueError, match='cluster must be in'):
        make_explainer(kmeans, cluster=5)
