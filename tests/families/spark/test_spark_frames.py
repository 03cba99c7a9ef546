"""explain() on a Spark DataFrame: the same numbers as explain() on the same rows, new columns added lazily,
the ONNX graph per partition, and clear errors for bad input.

Models: scikit-learn's KMeans and GaussianMixture, and a pyspark.ml KMeansModel, on sklearn's digits, wine and
iris, in three partitions of a local[2] session.
"""
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture

from zennit_clusters import explain

pytest.importorskip('pyspark', reason='pyspark is not installed (pip install zennit-clusters[spark])')
pytest.importorskip('pyarrow', reason='pyarrow is not installed (pip install zennit-clusters[spark])')
from pyspark.errors import PythonException  # noqa: E402


@pytest.fixture(scope='module')
def digits_kmeans(digits):
    return KMeans(n_clusters=10, n_init=1, random_state=0).fit(digits)


def test_frame_equals_explain(spark, frames, digits, digits_kmeans):
    relevance, labels, logits = explain(digits_kmeans, digits, return_logits=True)
    frame = frames.vectors(digits)
    result = explain(digits_kmeans, frame, return_logits=True)
    assert result.columns == ['id', 'features', 'prediction', 'evidence', 'relevance', 'logits']
    got_labels, got_evidence, got_relevance, got_logits, features = frames.by_id(
        result, 'prediction', 'evidence', 'relevance', 'logits', 'features')
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_allclose(np.stack(got_relevance), relevance, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.stack(got_logits), logits, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got_evidence, logits[np.arange(len(labels)), labels], rtol=1e-12)
    np.testing.assert_allclose(np.stack(got_relevance).sum(1), got_evidence, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(np.asarray(features, dtype=float).reshape(digits.shape), digits)  # passed through

    # one column per feature, named, from the same explanation
    names = [f'pixel_{i}' for i in range(64)]
    wide = explain(digits_kmeans, frame, relevance_columns=names, prediction_col='cluster')
    assert wide.columns == ['id', 'features', 'cluster', 'evidence'] + names
    columns = frames.by_id(wide, 'cluster', *names)
    np.testing.assert_array_equal(columns[0], labels)
    np.testing.assert_allclose(np.stack(columns[1:], 1), relevance, rtol=1e-9, atol=1e-9)


def test_float32_arrays_fixed_cluster_and_beta(spark, frames, wine):
    X = ((wine - wine.mean(0)) / wine.std(0)).astype(np.float32)
    mixture = GaussianMixture(n_components=3, random_state=0).fit(X)
    relevance, labels, logits = explain(mixture, X, cluster=1, beta=0.5, return_logits=True)
    result = explain(mixture, frames.arrays(X, 'float'), cluster=1, beta=0.5)
    assert dict(result.dtypes)['relevance'] == 'array<float>' and dict(result.dtypes)['evidence'] == 'float'
    got_labels, got_evidence, got_relevance = frames.by_id(result, 'prediction', 'evidence', 'relevance')
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_allclose(np.stack(got_relevance), relevance, rtol=1e-5, atol=1e-5 * np.abs(relevance).max())
    np.testing.assert_allclose(got_evidence, logits[:, 1], rtol=1e-5, atol=1e-5)


def test_spark_model_on_its_frame(spark, frames):
    from pyspark.ml.clustering import KMeans as SparkKMeans
    X = load_iris().data
    frame = frames.vectors(X)
    fitted = SparkKMeans(k=3, seed=0, distanceMeasure='cosine').fit(frame)
    explained = explain(fitted, fitted.transform(frame), prediction_col='cluster')
    spark_labels, labels, relevance = frames.by_id(explained, 'prediction', 'cluster', 'relevance')
    np.testing.assert_array_equal(labels, spark_labels)
    np.testing.assert_allclose(np.stack(relevance), explain(fitted, X), rtol=1e-9, atol=1e-12)


def test_onnx_graph_per_partition(spark, frames, tmp_path):
    pytest.importorskip('onnxruntime')
    from exporters.onnx import export, make_session
    X = load_iris().data
    kmeans = KMeans(n_clusters=3, n_init=1, random_state=0).fit(X)
    path = tmp_path / 'iris.onnx'
    export(kmeans, path, explain=True)
    session = make_session(str(path))
    labels, logits, relevance = session.run(None, {'X': X.astype(np.float32)})
    result = explain(None, frames.vectors(X), onnx=path)
    assert dict(result.dtypes)['relevance'] == 'array<float>'
    got_labels, got_relevance, got_evidence = frames.by_id(result, 'prediction', 'relevance', 'evidence')
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_array_equal(got_labels, kmeans.predict(X))
    np.testing.assert_allclose(np.stack(got_relevance), relevance, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.stack(got_relevance), explain(kmeans, X), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_evidence, logits[np.arange(len(X)), labels], rtol=1e-6)
    with pytest.raises(ValueError, match='beta is fixed'):
        explain(None, frames.vectors(X), onnx=path, beta=1.0)


def test_eager_errors(spark, frames, digits, digits_kmeans):
    frame = frames.vectors(digits)
    with pytest.raises(ValueError, match="no column 'pixels'.*id, features"):
        explain(digits_kmeans, frame, features_col='pixels')
    with pytest.raises(TypeError, match="column 'id' must hold pyspark.ml.linalg vectors or arrays"):
        explain(digits_kmeans, frame, features_col='id')
    with pytest.raises(ValueError, match='has column\\(s\\) id already'):
        explain(digits_kmeans, frame, prediction_col='id')
    with pytest.raises(ValueError, match='names 2 columns, but the model takes 64'):
        explain(digits_kmeans, frame, relevance_columns=['a', 'b'])
    with pytest.raises(TypeError, match='out= writes into'):
        explain(digits_kmeans, frame, out=np.empty_like(digits))
    with pytest.raises(ValueError, match='nonfinite must be one of'):
        explain(digits_kmeans, frame, nonfinite='drop')
    with pytest.raises(ValueError, match='cluster'):
        explain(digits_kmeans, frame, cluster=10)
    with pytest.raises(TypeError, match='unexpected keyword argument\\(s\\) features_col'):
        explain(digits_kmeans, digits, features_col='features')
    # vectors assembled from columns declare their size: a mismatch is refused before anything runs
    from pyspark.ml.feature import VectorAssembler
    columns = spark.createDataFrame([tuple(float(v) for v in row[:3]) for row in digits[:5]], ['a', 'b', 'c'])
    assembled = VectorAssembler(inputCols=['a', 'b', 'c'], outputCol='features').transform(columns)
    with pytest.raises(ValueError, match='vectors of size 3 \\(its ML metadata\\), but the model takes 64'):
        explain(digits_kmeans, assembled)


def test_row_errors_when_the_partition_runs(spark, frames, wine):
    kmeans = KMeans(n_clusters=3, n_init=1, random_state=0).fit(wine)
    X = wine[:40].copy()
    X[7, 2] = np.nan
    lazy = explain(kmeans, frames.arrays(X))  # lazy: nothing ran, so nothing was refused yet
    with pytest.raises(PythonException, match="column 'features' holds NaN in partition \\d, row \\d+"):
        lazy.collect()
    # nonfinite='null': label -1, null evidence and relevance for that row, the others as explain() gives them
    labels, evidence, relevance, ids = frames.by_id(explain(kmeans, frames.arrays(X), nonfinite='null'),
                                                    'prediction', 'evidence', 'relevance', 'id')
    assert labels[7] == -1 and evidence[7] is None and relevance[7] is None
    keep = np.arange(40) != 7
    expected, expected_labels, _ = explain(kmeans, X[keep], return_logits=True)
    np.testing.assert_array_equal(labels[keep], expected_labels)
    np.testing.assert_allclose(np.stack(relevance[keep]), expected, rtol=1e-9, atol=1e-9)
    # a row of the wrong size, and a null row
    from pyspark.sql import types as T
    schema = T.StructType([T.StructField('id', T.LongType()), T.StructField('features', T.ArrayType(T.DoubleType()))])
    rows = [(i, [float(v) for v in row]) for i, row in enumerate(wine[:6])]
    short = spark.createDataFrame(rows[:3] + [(3, [1.0, 2.0])] + rows[4:], schema).coalesce(1)
    with pytest.raises(PythonException, match="column 'features' has a value of size 2 in partition 0, row 3 .*"
                                              "takes 13 features"):
        explain(kmeans, short).collect()
    empty = spark.createDataFrame(rows[:2] + [(2, None)], schema).coalesce(1)
    with pytest.raises(PythonException, match="column 'features' is null in partition 0, row 2"):
        explain(kmeans, empty).collect()
    labels, = frames.by_id(explain(kmeans, empty, nonfinite='null'), 'prediction')
    np.testing.assert_array_equal(labels, np.r_[kmeans.predict(wine[:2]), -1])
