"""pyspark.ml.clustering models neuralized: labels equal the models' own transform() on real data.

KMeans (Euclidean, cosine), BisectingKMeans (Euclidean, cosine; the tree, which differs from the nearest
leaf centroid) and GaussianMixture, on sklearn's iris, wine and digits. Conservation in float64, and the
cosine network's Zennit path agrees with its closed form.
"""
import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris

from zennit_clusters import ClusterComposite, explain, neuralize

pytest.importorskip('pyspark', reason='pyspark is not installed (pip install zennit-clusters[spark])')
clustering = pytest.importorskip('pyspark.ml.clustering')


@pytest.fixture(scope='module')
def datasets(wine, digits):
    iris = load_iris().data
    standard_wine = (wine - wine.mean(0)) / wine.std(0)
    return {'iris': iris, 'wine': wine, 'standard_wine': standard_wine, 'digits': digits}


def spark_predictions(fitted, frame, frames):
    return frames.by_id(fitted.transform(frame), 'prediction')[0]


def check_model(fitted, X, frame, frames):
    predictions = spark_predictions(fitted, frame, frames)
    model = neuralize(fitted)
    relevance, labels, logits = explain(model, X, return_logits=True)
    np.testing.assert_array_equal(labels, predictions)
    evidence = logits[np.arange(len(X)), labels]
    np.testing.assert_allclose(relevance.sum(1), evidence, rtol=1e-9, atol=1e-9 * np.abs(evidence).max())
    return model, relevance, labels


@pytest.mark.parametrize('name,k,measure', [('iris', 3, 'euclidean'), ('digits', 10, 'euclidean'),
                                            ('wine', 4, 'cosine'), ('digits', 10, 'cosine')])
def test_kmeans_model(spark, frames, datasets, name, k, measure):
    X = datasets[name]
    frame = frames.vectors(X)
    fitted = clustering.KMeans(k=k, seed=0, distanceMeasure=measure, maxIter=30).fit(frame)
    model, _, _ = check_model(fitted, X, frame, frames)
    assert model.n_clusters == k and model.n_features_in_ == X.shape[1]


@pytest.mark.parametrize('name,k,measure', [('iris', 5, 'euclidean'), ('digits', 8, 'euclidean'),
                                            ('wine', 5, 'cosine')])
def test_bisecting_kmeans_model_follows_the_tree(spark, frames, datasets, name, k, measure):
    X = datasets[name]
    frame = frames.vectors(X)
    fitted = clustering.BisectingKMeans(k=k, seed=0, distanceMeasure=measure).fit(frame)
    _, _, labels = check_model(fitted, X, frame, frames)
    if name == 'digits':
        # here the tree's labels differ from the nearest leaf centroid's: the network follows the tree
        centres = np.asarray(fitted.clusterCenters())
        nearest = ((X[:, None, :] - centres[None]) ** 2).sum(2).argmin(1)
        assert (nearest != labels).sum() > 0


@pytest.mark.parametrize('name,k', [('iris', 3), ('standard_wine', 3)])
def test_gaussian_mixture_model(spark, frames, datasets, name, k):
    X = datasets[name]
    frame = frames.vectors(X)
    fitted = clustering.GaussianMixture(k=k, seed=0, maxIter=50).fit(frame)
    check_model(fitted, X, frame, frames)
    # the evidence is the posterior log-odds log p / (1 - p): its sigmoid is Spark's probability column, up to
    # the epsilon Spark adds to every weighted density (it lifts the posteriors of far rows by ~1e-4 on wine)
    _, _, logits = explain(fitted, X, return_logits=True)
    probability, = frames.by_id(fitted.transform(frame), 'probability')
    with np.errstate(over='ignore'):
        np.testing.assert_allclose(1 / (1 + np.exp(-logits)), np.stack(probability), atol=1e-9 if name == 'iris' else 1e-3)


def test_cosine_network_zennit_path_agrees(spark, frames, datasets):
    X = datasets['wine']
    frame = frames.vectors(X)
    fitted = clustering.KMeans(k=4, seed=0, distanceMeasure='cosine').fit(frame)
    model, relevance, labels = check_model(fitted, X, frame, frames)
    from zennit.attribution import Gradient
    with Gradient(model, ClusterComposite()) as attributor:
        onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), model.n_clusters).double()
        _, zennit_relevance = attributor(torch.as_tensor(X), attr_output=lambda y: y * onehot)
    np.testing.assert_allclose(zennit_relevance.numpy(), relevance, rtol=1e-6, atol=1e-8 * np.abs(relevance).max())
    # a zero row has no direction: refused, naming the row
    with pytest.raises(ValueError, match='row 1'):
        explain(model, np.vstack([X[:1], np.zeros((1, X.shape[1]))]))


@pytest.mark.parametrize('kind,measure', [('KMeans', 'euclidean'), ('KMeans', 'cosine'),
                                          ('BisectingKMeans', 'euclidean'), ('GaussianMixture', None)])
def test_spark_models_export_to_onnx(spark, frames, datasets, kind, measure, tmp_path):
    """Every Spark converter's network exports; onnxruntime's labels are the Spark model's own predictions."""
    pytest.importorskip('onnxruntime')
    from exporters.onnx import export, make_session
    X = datasets['iris']
    frame = frames.vectors(X)
    options = {'seed': 0} if measure is None else {'seed': 0, 'distanceMeasure': measure}
    fitted = getattr(clustering, kind)(k=3, **options).fit(frame)
    path = tmp_path / f'{kind}.onnx'
    export(fitted, path, explain=True, X=X, dtype='float64')  # the exporter's own check runs on X
    label, logits, relevance = make_session(path).run(None, {'X': X})
    np.testing.assert_array_equal(label, spark_predictions(fitted, frame, frames))
    np.testing.assert_allclose(relevance, explain(fitted, X), rtol=1e-9, atol=1e-9)
