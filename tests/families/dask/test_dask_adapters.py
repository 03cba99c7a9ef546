"""explain() on dask arrays and DataFrames (lazy, block by block, on a distributed.LocalCluster), and dask-ml's
KMeans: results equal explain() on the same rows, labels equal the estimator's predict, bad input is refused."""
import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.mixture import GaussianMixture

import zennit_clusters as zc
from zennit_clusters.core import NeuralizedModel

da = pytest.importorskip('dask.array', reason='dask is not installed (pip install zennit-clusters[dask])')
dd = pytest.importorskip('dask.dataframe', reason='dask[dataframe] is not installed')
pd = pytest.importorskip('pandas')
import dask  # noqa: E402


@pytest.fixture(scope='module')
def wine():
    data = load_wine()
    return data.data, data.feature_names, KMeans(3, n_init=2, random_state=0).fit(data.data)


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_dask_array_explanation_is_lazy_and_equals_explain(dask_client, wine, dtype):
    X, _, km = wine
    x = X.astype(dtype)
    dX = da.from_array(x, chunks=(40, -1))
    relevance = zc.explain(km, dX)
    assert isinstance(relevance, da.Array) and relevance.chunks == (dX.chunks[0], (13,))
    assert relevance.dtype == dtype
    np.testing.assert_array_equal(relevance.compute(), zc.explain(km, x))
    lazy = zc.explain(km, dX, return_logits=True)
    assert all(isinstance(part, da.Array) for part in lazy)
    got = dask.compute(*lazy)
    want = zc.explain(km, x, return_logits=True)
    np.testing.assert_array_equal(got[1], want[1])
    assert got[1].dtype == np.int64
    np.testing.assert_array_equal(got[1], km.predict(X))
    for a, b in ((got[0], want[0]), (got[2], want[2])):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)


def test_options_reach_every_block_and_other_families_work(dask_client):
    X = load_breast_cancer().data
    gmm = GaussianMixture(2, covariance_type='full', random_state=0).fit(X)
    dX = da.from_array(X, chunks=(100, -1))
    got = zc.explain(gmm, dX, cluster=1, beta=2.0).compute()
    np.testing.assert_allclose(got, zc.explain(gmm, X, cluster=1, beta=2.0), rtol=1e-12, atol=1e-12)
    integers = da.from_array(np.rint(X).astype(np.int64), chunks=(200, -1))
    assert zc.explain(gmm, integers).dtype == np.float64


def test_the_model_is_one_node_of_the_graph(dask_client, wine):
    X, _, km = wine
    relevance = zc.explain(km, da.from_array(X, chunks=(20, -1)))
    graph = dict(relevance.__dask_graph__())
    holders = [key for key, task in graph.items() if isinstance(getattr(task, 'value', None), NeuralizedModel)]
    assert len(holders) == 1, holders
    assert relevance.numblocks[0] == 9  # nine block tasks depend on that one node


def test_dask_dataframe_explanation_keeps_columns_index_and_partitions(dask_client, wine):
    X, names, km = wine
    frame = pd.DataFrame(X, columns=names, index=pd.RangeIndex(1000, 1000 + len(X)))
    dframe = dd.from_pandas(frame, npartitions=4)
    relevance = zc.explain(km, dframe)
    assert isinstance(relevance, dd.DataFrame) and relevance.npartitions == 4
    computed = relevance.compute()
    assert list(computed.columns) == names and (computed.index == frame.index).all()
    np.testing.assert_array_equal(computed.to_numpy(), zc.explain(km, X))
    rel, labels, logits = dask.compute(*zc.explain(km, dframe, return_logits=True))
    want = zc.explain(km, X, return_logits=True)
    assert list(rel.columns) == names and labels.name == 'label' and labels.dtype == np.int64
    assert list(logits.columns) == ['logit_0', 'logit_1', 'logit_2']
    np.testing.assert_array_equal(labels.to_numpy(), km.predict(X))
    np.testing.assert_allclose(rel.to_numpy(), want[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(logits.to_numpy(), want[2], rtol=1e-12, atol=0)


def test_a_feature_called_label_does_not_clash(dask_client, wine):
    X, names, km = wine
    dframe = dd.from_pandas(pd.DataFrame(X, columns=['label'] + names[1:]), npartitions=2)
    rel, labels, _ = dask.compute(*zc.explain(km, dframe, return_logits=True))
    assert list(rel.columns)[0] == 'label' and labels.name == 'label'
    np.testing.assert_array_equal(rel.to_numpy(), zc.explain(km, X))


def test_bad_input_is_refused_clearly(dask_client, wine):
    X, names, km = wine
    with pytest.raises(ValueError, match='12 features, but the model was fitted on 13'):
        zc.explain(km, da.from_array(X[:, :12], chunks=(50, -1)))
    with pytest.raises(ValueError, match=r'chunked along its features .*rechunk\(\{1: -1\}\)'):
        zc.explain(km, da.from_array(X, chunks=(50, 5)))
    with pytest.raises(ValueError, match='must be a 2-d dask array'):
        zc.explain(km, da.from_array(X[:, 0], chunks=50))
    with pytest.raises(TypeError, match='out= is not supported'):
        zc.explain(km, da.from_array(X, chunks=(50, -1)), out=np.empty_like(X))
    with pytest.raises(ValueError, match='beta'):
        zc.explain(km, da.from_array(X, chunks=(50, -1)), beta=-1.0)  # at once, not at compute time
    bad = X.copy()
    bad[130, 2] = np.nan
    lazy = zc.explain(km, da.from_array(bad, chunks=(50, -1)))
    with pytest.raises(ValueError, match=r'NaN \(first in row 130\)'):
        lazy.compute()
    frame = pd.DataFrame(bad, columns=names, index=pd.RangeIndex(500, 500 + len(X)))
    with pytest.raises(ValueError, match='NaN .first in the row with index 630'):
        zc.explain(km, dd.from_pandas(frame, npartitions=3)).compute()
    with pytest.raises(ValueError, match='12 columns, but the model was fitted on 13'):
        zc.explain(km, dd.from_pandas(frame.iloc[:, :12], npartitions=2))
    text = frame.assign(**{names[0]: 'a'})
    with pytest.raises(TypeError, match='real numbers in every column'):
        zc.explain(km, dd.from_pandas(text, npartitions=2))


def test_dask_ml_kmeans_is_exact_against_its_predict(dask_client):
    dask_ml_cluster = pytest.importorskip('dask_ml.cluster', reason='dask-ml is not installed')
    X = load_breast_cancer().data
    dX = da.from_array(X, chunks=(100, -1))
    estimator = dask_ml_cluster.KMeans(n_clusters=4, random_state=0).fit(dX)
    model = zc.neuralize(estimator)
    assert 'dask_ml.KMeans' in zc.supported_types() and model.source == 'dask_ml.KMeans'
    np.testing.assert_array_equal(model.predict(X), estimator.predict(dX).compute())
    relevance, labels, logits = dask.compute(*zc.explain(estimator, dX, return_logits=True))
    np.testing.assert_array_equal(labels, estimator.predict(dX).compute())
    np.testing.assert_allclose(relevance.sum(1), logits[np.arange(len(X)), labels], rtol=1e-9)
    # the default stiffness over dask training data, block by block, equals the one over the same numpy rows
    assert zc.neuralize(estimator, X=dX).beta == pytest.approx(zc.neuralize(estimator, X=X).beta, rel=1e-12)
    bad = X.copy()
    bad[250, 0] = np.inf
    with pytest.raises(ValueError, match=r'infinity \(first in row 250\)'):
        zc.neuralize(estimator, X=da.from_array(bad, chunks=(100, -1)))
