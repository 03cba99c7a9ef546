"""The ONNX exporter's graph: its contract, its agreement with scikit-learn and the closed-form explainer
under onnxruntime (batch sizes 1 to thousands, data far from the origin, float64), and every registered model
family. Exports take seconds, so graphs are exported once per session (``conftest.py``) and shared.
"""
import importlib.util
import math
import os

import numpy as np
import onnx
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from onnx_helpers import CentroidModule, assert_rows_close, reference, run
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import zennit_clusters
from zennit_clusters import explain, neuralize
from zennit_clusters.core import converter_for, families as registered_families
from exporters.onnx import export, make_session


# ------------------------------------------------------------------------------------------ the contract

@pytest.mark.parametrize('name', ['KMeans', 'MiniBatchKMeans', 'BisectingKMeans', 'tensor'])
def test_graph_contract(exported, models, name):
    path, result, _ = exported[name]
    model = neuralize(models[name])
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    assert max(op.version for op in proto.opset_import if op.domain in ('', 'ai.onnx')) >= 18

    (x,) = proto.graph.input
    assert x.name == 'X'
    assert x.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    batch, features = x.type.tensor_type.shape.dim
    assert batch.dim_param and not batch.HasField('dim_value')  # a dynamic batch axis
    assert features.dim_value == model.n_features_in_

    outputs = {value.name: value.type.tensor_type for value in proto.graph.output}
    assert list(outputs) == ['label', 'logits', 'relevance']
    assert outputs['label'].elem_type == onnx.TensorProto.INT64
    assert [d.dim_value for d in outputs['logits'].shape.dim][1:] == [model.n_clusters]
    assert [d.dim_value for d in outputs['relevance'].shape.dim][1:] == [model.n_features_in_]
    assert result.outputs == ('label', 'logits', 'relevance')
    assert not [f for f in os.listdir(path.parent) if f.endswith('.tmp')]


def test_metadata(exported, models):
    path, result, _ = exported['KMeans']
    proto = onnx.load(path)
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    model = neuralize(models['KMeans'])
    assert metadata['producer'] == proto.producer_name == 'zennit-clusters'
    assert metadata['producer_version'] == proto.producer_version == zennit_clusters.__version__
    assert metadata['source_model'] == 'KMeans'
    assert metadata['source_type'] == 'sklearn.cluster._kmeans.KMeans'
    assert int(metadata['n_clusters']) == 10 and int(metadata['n_features']) == 64
    assert float(metadata['beta']) == model.beta == result.beta  # repr round-trips exactly
    assert metadata['dtype'] == 'float32' and metadata['explain'] == 'true'
    for name in ('label', 'logits', 'relevance'):
        assert len(metadata[f'output.{name}']) > 20
    assert '-1' in metadata['output.label']  # the NaN convention is documented in the file


# ------------------------------------------------------------------------- agreement under onnxruntime

@pytest.mark.parametrize('name', ['KMeans', 'MiniBatchKMeans', 'BisectingKMeans', 'tensor'])
def test_real_data_matches_predict_and_explainer(exported, models, digits, name):
    """All 1797 digits in one batch: labels identical to predict, logits and relevance to float32 rounding."""
    _, _, session = exported[name]
    out = run(session, digits.astype(np.float32))
    (labels, logits, relevance), (logits32, relevance32) = reference(models[name], digits)
    if name != 'tensor':
        np.testing.assert_array_equal(out['label'], models[name].predict(digits))
    np.testing.assert_array_equal(out['label'], labels)
    assert out['label'].dtype == np.int64 and out['logits'].dtype == np.float32
    assert_rows_close(out['logits'], logits, logits32)
    assert_rows_close(out['relevance'], relevance, relevance32)
    # the explanation is conservative in the graph too: relevance sums to the explained evidence
    evidence = logits[np.arange(len(labels)), labels]
    np.testing.assert_allclose(out['relevance'].sum(1, dtype=np.float64), evidence, rtol=1e-4,
                               atol=1e-5 * np.abs(logits).max())


@pytest.mark.parametrize('name', ['KMeans', 'BisectingKMeans'])
def test_batch_size_one_and_thousands(exported, models, many_rows, name):
    """The batch axis is dynamic: 5391 rows at once, and rows one at a time, give the same answers."""
    _, _, session = exported[name]
    estimator = models[name]
    rows = many_rows.astype(np.float32)
    out = run(session, rows)
    (labels, logits, relevance), (logits32, relevance32) = reference(estimator, rows)
    predicted = estimator.predict(rows.astype(np.float64))
    # jittered rows may fall within float32 rounding of a boundary; real rows above are all compared
    top = np.sort(logits, 1)
    clear = top[:, -1] - top[:, -2] > 1e-5 * np.abs(logits).max(1)
    assert clear.mean() > 0.999
    np.testing.assert_array_equal(out['label'][clear], predicted[clear])
    assert_rows_close(out['logits'], logits, logits32)
    assert_rows_close(out['relevance'][clear], relevance[clear], relevance32[clear])

    for row in np.random.default_rng(1).choice(np.flatnonzero(clear), 25, replace=False):
        single = run(session, rows[row:row + 1])
        assert single['label'].shape == (1,) and single['relevance'].shape == (1, rows.shape[1])
        assert single['label'][0] == out['label'][row]
        assert_rows_close(single['logits'], logits[row:row + 1], logits32[row:row + 1])
        assert_rows_close(single['relevance'], relevance[row:row + 1], relevance32[row:row + 1])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_batches_match_predict(exported, models, data):
    """Any batch (1 to 64 rows, anywhere from the data's range to far outside it) is labelled as predict does."""
    _, _, session = exported['KMeans']
    estimator = models['KMeans']
    n_rows = data.draw(st.integers(1, 64), label='rows')
    scale = data.draw(st.sampled_from([1.0, 16.0, 1e3]), label='scale')
    X = data.draw(arrays(np.float32, (n_rows, 64), elements=st.floats(-1, 1, width=32)), label='X') * np.float32(scale)
    X = X + np.float32(8)
    out = run(session, X)
    (labels, logits, relevance), (logits32, relevance32) = reference(estimator, X)
    top = np.sort(logits, 1)
    clear = top[:, -1] - top[:, -2] > 1e-5 * np.abs(logits).max(1)
    np.testing.assert_array_equal(out['label'][clear], estimator.predict(X.astype(np.float64))[clear])
    assert_rows_close(out['logits'], logits, logits32)
    assert_rows_close(out['relevance'][clear], relevance[clear], relevance32[clear])


def test_far_from_origin_labels_stay_exact_in_float32(digits, tmp_path):
    """Digits offset by 1000 in every feature: the float32 graph still labels every row as predict does.

    Without the centring folded into the graph, float32 distances cancel badly out there: the naive float32
    evidence below is off by orders of magnitude more than the graph's. The export is checked on the
    user's rows (one of them NaN) instead of generated probe data.
    """
    X = digits + 1000.0
    estimator = KMeans(10, n_init=2, random_state=0).fit(X)
    probe = X[:300].copy()
    probe[7, 0] = np.nan
    result = export(estimator, tmp_path / 'offset.onnx', explain=True, X=probe)
    assert result.check.n_rows == 300 and result.check.n_nonfinite == 1
    assert result.check.n_compared + result.check.n_excluded == 299 and result.check.n_compared > 290

    out = run(make_session(tmp_path / 'offset.onnx'), X.astype(np.float32))
    np.testing.assert_array_equal(out['label'], estimator.predict(X))
    (labels, logits, relevance), (logits32, relevance32) = reference(estimator, X)
    assert_rows_close(out['logits'], logits, logits32)
    assert_rows_close(out['relevance'], relevance, relevance32)

    x32, centres32 = X.astype(np.float32), estimator.cluster_centers_.astype(np.float32)
    distances = (x32 * x32).sum(1, keepdims=True) - 2 * x32 @ centres32.T + (centres32 * centres32).sum(1)
    top = np.sort(distances, 1)
    naive_evidence = (top[:, 1] - top[:, 0]).astype(np.float64)  # the winner's f_c: second-nearest - nearest
    exact_evidence = logits.max(1)
    graph_error = np.abs(out['logits'].max(1) - exact_evidence).max()
    assert np.abs(naive_evidence - exact_evidence).max() > 100 * graph_error


def test_centring_only_where_it_buys_precision(digits, tmp_path):
    """Offset data keep the subtraction of the centre; standardised data (mean centroid at the origin) do not
    get one, as it would cost a pass over X and gain nothing. Either way labels equal predict in float32."""
    standardised = StandardScaler().fit_transform(digits)
    offset = KMeans(6, n_init=1, random_state=0).fit(digits + 1000.0)
    standard = KMeans(6, n_init=1, random_state=0).fit(standardised)
    for estimator, X, subtracts in ((offset, digits + 1000.0, True), (standard, standardised, False)):
        result = export(estimator, tmp_path / 'model.onnx', explain=True)
        graph = onnx.load(str(tmp_path / 'model.onnx'))
        uses_x = [node.op_type for node in graph.graph.node if 'X' in node.input]
        metadata = {prop.key: prop.value for prop in graph.metadata_props}
        if subtracts:
            assert uses_x == ['Sub'] and metadata['centring'].startswith('the graph subtracts')
        else:
            assert 'Sub' not in uses_x and metadata['centring'].startswith('none')
        out = run(make_session(tmp_path / 'model.onnx'), X.astype(np.float32))
        np.testing.assert_array_equal(out['label'], estimator.predict(X))
        assert result.check.n_compared > 0


def test_label_and_logits_graph_computes_no_relevance(models, exported, digits, tmp_path):
    path = tmp_path / 'labels.onnx'
    result = export(models['KMeans'], path)
    proto = onnx.load(path)
    assert [value.name for value in proto.graph.output] == ['label', 'logits']
    assert result.outputs == ('label', 'logits') and math.isnan(result.check.max_relevance_error)
    full = onnx.load(exported['KMeans'][0])
    # relevance needs two (N, K) x (K, D) products; the graph without it is only the score product
    products = {op: sum(n.op_type in ('MatMul', 'Gemm') for n in graph.graph.node) for op, graph in
                (('labels', proto), ('full', full))}
    assert products['labels'] < products['full'] and len(proto.graph.node) < len(full.graph.node)
    out = run(make_session(path), digits.astype(np.float32))
    out_full = run(exported['KMeans'][2], digits.astype(np.float32))
    np.testing.assert_array_equal(out['label'], out_full['label'])
    np.testing.assert_allclose(out['logits'], out_full['logits'], rtol=1e-6, atol=1e-3)


def test_float64_export_with_chosen_beta_and_opset(models, digits, tmp_path):
    path = tmp_path / 'double.onnx'
    estimator = models['BisectingKMeans']
    result = export(estimator, path, explain=True, beta=math.inf, dtype='float64', opset=20)
    proto = onnx.load(path)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert max(op.version for op in proto.opset_import if op.domain in ('', 'ai.onnx')) == 20
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    assert metadata['dtype'] == 'float64' and metadata['beta'] == 'inf' and result.beta == math.inf
    out = run(make_session(path), digits)
    relevance, labels, logits = explain(estimator, digits, beta=math.inf, return_logits=True)
    relevance32, _, logits32 = explain(estimator, digits.astype(np.float32), beta=math.inf, return_logits=True)
    assert out['logits'].dtype == np.float64
    np.testing.assert_array_equal(out['label'], estimator.predict(digits))
    np.testing.assert_array_equal(out['label'], labels)
    # float64 all the way, beta included (torch.onnx rounds Python scalars to float32 unless told otherwise)
    ratio = np.finfo(np.float64).eps / np.finfo(np.float32).eps
    assert_rows_close(out['logits'], logits, logits32, factor=1e-13, rounding_ratio=ratio)
    assert_rows_close(out['relevance'], relevance, relevance32, factor=1e-13, rounding_ratio=ratio)


def test_rows_with_nan_or_infinity_get_label_minus_one(exported, digits):
    _, _, session = exported['KMeans']
    X = digits[:4].astype(np.float32).copy()
    X[1, 3] = np.nan
    X[2, 0] = np.inf
    out = run(session, X)
    assert out['label'].tolist()[1:3] == [-1, -1]
    assert (out['label'][[0, 3]] >= 0).all() and np.isfinite(out['logits'][[0, 3]]).all()


# ------------------------------------------------------------------------------- every model family

def _families(wine):
    """One fitted model per converter of the registry: (model, training data or None)."""
    from zennit_clusters import CentroidHead, KernelKMeans

    scaled = StandardScaler().fit_transform(wine)
    centroids = KMeans(3, n_init=1, random_state=0).fit(scaled).cluster_centers_
    return {
        'GaussianMixture': (GaussianMixture(3, covariance_type='diag', random_state=0).fit(wine), None),
        'Pipeline': (make_pipeline(StandardScaler(), KMeans(3, n_init=1, random_state=0)).fit(wine), None),
        'KernelKMeans': (KernelKMeans(3, random_state=0).fit(scaled[::3]), None),
        'AgglomerativeClustering': (AgglomerativeClustering(3).fit(scaled[::3]), scaled[::3]),
        'CentroidHead': (CentroidHead(centroids), None),
        'torch.nn.Module': (CentroidModule(centroids), None),
        **_optional_families(scaled),
    }


def _optional_families(scaled):
    """Cases of converters for optional extras ([dask]), where the extra is installed."""
    try:
        from dask_ml.cluster import KMeans as DaskKMeans
    except ImportError:
        return {}
    return {'dask_ml.KMeans': (DaskKMeans(n_clusters=3, random_state=0).fit(scaled), None)}


#: converters of optional extras, by the package their estimator comes from (no case where it is not installed)
OPTIONAL_CONVERTERS = {'convert_dask_kmeans': 'dask_ml'}

#: converters whose export case lives beside the session their models need (one Spark session per test run)
EXPORTED_ELSEWHERE = {name: 'tests/families/spark/test_spark_models.py::test_spark_models_export_to_onnx'
                      for name in ('convert_kmeans_model', 'convert_bisecting_kmeans_model',
                                   'convert_gaussian_mixture_model')}


#: registered converters that cannot be exported by design, with the reason
NOT_EXPORTABLE = {'convert_deep': 'a NeuralizedDeep stacks a feature extractor under the head; export its head'}


@pytest.fixture(scope='module')
def families(wine, models):
    return {**_families(wine), **{name: (models[name], None) for name in ('KMeans', 'BisectingKMeans', 'tensor')}}


def test_every_registered_family_has_an_export_case(families):
    covered = {converter_for(type(model)).__name__ for model, _ in families.values()}
    registered = {converter.__name__ for family in registered_families() for converter in family.converters.values()}
    absent = {name for name, package in OPTIONAL_CONVERTERS.items() if importlib.util.find_spec(package) is None}
    missing = registered - covered - set(NOT_EXPORTABLE) - set(EXPORTED_ELSEWHERE) - absent
    assert not missing, f'converters without an export test case: {sorted(missing)}'


#: families whose float32 arithmetic misses the check's bound, exported in float64 by default
FLOAT64_BY_DEFAULT = {'KernelKMeans', 'AgglomerativeClustering'}


@pytest.mark.parametrize('name', ['GaussianMixture', 'Pipeline', 'KernelKMeans', 'AgglomerativeClustering',
                                  'CentroidHead', 'torch.nn.Module', 'dask_ml.KMeans'])
def test_every_family_exports(families, wine, tmp_path, name):
    if name not in families:
        pytest.skip(f'{name}: its optional extra is not installed (pip install zennit-clusters[dask])')
    model, training = families[name]
    path = tmp_path / 'family.onnx'
    X = wine if name in ('GaussianMixture', 'Pipeline') else StandardScaler().fit_transform(wine)
    # checked on the data itself (the generated probe data are tested on the families above)
    result = export(model, path, explain=True, training_data=training, X=X)
    assert result.check.passed and result.check.n_compared > 0.9 * result.check.n_rows
    # member-point networks are exported in float64 (their float32 relevance is off by up to the row's scale)
    assert result.dtype == ('float64' if name in FLOAT64_BY_DEFAULT else 'float32')
    out = run(make_session(path), X.astype(result.dtype))
    fitted = neuralize(model, X=training)
    (labels, logits, _), (logits32, _) = reference(fitted, X)
    np.testing.assert_array_equal(out['label'], labels)
    if hasattr(model, 'predict') and not isinstance(model, torch.nn.Module):
        np.testing.assert_array_equal(out['label'], model.predict(X))
    assert_rows_close(out['logits'], logits, logits32)
