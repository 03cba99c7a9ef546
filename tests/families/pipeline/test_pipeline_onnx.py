"""ONNX graphs of pipelines under onnxruntime: labels == pipeline.predict, relevance == the closed form.

Numeric pipelines (scalers, Normalizer, PCA, TruncatedSVD) take the user's columns; pipelines with host-side
encoders (one-hot, ordinal, imputation, column selection) take the encoded matrix ``model.encode(X)``, whose
column names the graph records in ``metadata_props['input_columns']`` (docs/pipelines.md).
"""
import json

import numpy as np
import onnx
import pytest
from sklearn.cluster import BisectingKMeans, KMeans
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, Normalizer, OneHotEncoder, StandardScaler

from exporters.onnx import export, make_session
from zennit_clusters import explain, neuralize

pytestmark = [pytest.mark.filterwarnings('error:X does not have valid feature names'),
              pytest.mark.filterwarnings('error:X has feature names')]


@pytest.fixture(scope='module')
def frame():
    data = load_wine(as_frame=True).data
    data['colour'] = np.random.default_rng(0).choice(['red', 'white', 'rose'], len(data))
    return data


NUMERIC = {
    'scaler+pca+kmeans': lambda: make_pipeline(StandardScaler(), PCA(4), KMeans(3, n_init=3, random_state=0)),
    'minmax+normalizer+kmeans': lambda: make_pipeline(MinMaxScaler(), Normalizer(), KMeans(3, n_init=3,
                                                                                           random_state=0)),
    'scaler+svd+bisecting': lambda: make_pipeline(StandardScaler(), TruncatedSVD(5, random_state=0),
                                                  BisectingKMeans(3, random_state=0)),
}


def _run(path, X):
    session = make_session(str(path), 'cpu')
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {'X': np.ascontiguousarray(X, dtype=np.float32)})))


@pytest.mark.parametrize('name', NUMERIC)
def test_numeric_pipeline_graph(frame, tmp_path, name):
    numbers = frame.drop(columns='colour')
    pipeline = NUMERIC[name]().fit(numbers)
    result = export(pipeline, tmp_path / 'model.onnx', explain=True, X=numbers, training_data=numbers)
    assert result.check.passed
    got = _run(tmp_path / 'model.onnx', numbers.to_numpy())
    np.testing.assert_array_equal(got['label'], pipeline.predict(numbers))
    closed = explain(neuralize(pipeline, X=numbers), numbers.to_numpy())
    np.testing.assert_allclose(got['relevance'], closed, rtol=1e-3, atol=1e-4 * np.abs(closed).max())
    with pytest.raises(ValueError, match='another order'):
        export(pipeline, tmp_path / 'other.onnx', X=numbers[numbers.columns[::-1]])


def test_encoded_pipeline_graph_takes_the_encoded_matrix(frame, tmp_path):
    gaps = frame.copy()
    gaps.loc[::7, 'hue'] = np.nan
    pipeline = make_pipeline(
        ColumnTransformer([('num', make_pipeline(SimpleImputer(), StandardScaler()),
                            make_column_selector(dtype_include='number')),
                           ('cat', OneHotEncoder(), ['colour'])]), KMeans(3, n_init=3, random_state=0)).fit(gaps)
    model = neuralize(pipeline, X=gaps)
    result = export(pipeline, tmp_path / 'model.onnx', explain=True, X=gaps, training_data=gaps)
    assert result.check.passed
    proto = onnx.load(str(tmp_path / 'model.onnx'))
    columns = json.loads({p.key: p.value for p in proto.metadata_props}['input_columns'])
    assert columns == list(model.get_feature_names_out()) and 'cat__colour_red' in columns
    got = _run(tmp_path / 'model.onnx', model.encode(gaps))
    np.testing.assert_array_equal(got['label'], pipeline.predict(gaps))
    closed = explain(model, gaps, grouped=False).to_numpy()
    np.testing.assert_allclose(got['relevance'], closed, rtol=1e-3, atol=1e-4 * np.abs(closed).max())
