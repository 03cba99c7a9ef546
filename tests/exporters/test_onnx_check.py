"""The export check: failures are errors that leave no file, providers, bad arguments, and the precision of
constants in float64 graphs."""
import os

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx_helpers import RelabelledKMeans, run
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError

from zennit_clusters import neuralize
from exporters.onnx import ExportCheckError, ProviderUnavailableError, export, make_session, probe_data, verify

CUDA = 'CUDAExecutionProvider' in onnxruntime.get_available_providers()


# ------------------------------------------------------------------------------------- the export check

def test_check_failure_is_an_error_and_leaves_no_file(digits, tmp_path):
    """A graph that does not reproduce predict is refused: nothing new on disk, an older file untouched."""
    estimator = RelabelledKMeans(4, n_init=1, random_state=0).fit(digits)
    path = tmp_path / 'relabelled.onnx'
    path.write_bytes(b'previous export')
    with pytest.raises(ExportCheckError, match='labels differ from RelabelledKMeans.predict'):
        export(estimator, path, explain=True)
    assert path.read_bytes() == b'previous export' and os.listdir(tmp_path) == ['relabelled.onnx']


def test_verify_tells_the_graph_of_another_model(exported, models, digits):
    path, _, _ = exported['KMeans']
    other = KMeans(10, n_init=1, random_state=5).fit(digits[::-1])
    with pytest.raises(ExportCheckError, match='differ'):
        verify(path, other)
    assert verify(path, models['KMeans']).n_compared > 0


def test_unusable_probe_data_is_refused(exported, models, digits):
    path, model = exported['KMeans'][0], models['KMeans']
    with pytest.raises(ValueError, match='probe data X has 5 features'):
        verify(path, model, X=digits[:10, :5])
    with pytest.raises(ExportCheckError, match='all hold NaN or infinity'):
        verify(path, model, X=np.full((3, 64), np.nan))
    with pytest.raises(TypeError, match='real numbers'):
        verify(path, model, X=np.array([['a'] * 64]))


def test_probe_data_surrounds_the_clusters(models):
    model = neuralize(models['KMeans'])
    X = probe_data(model, n_rows=1000, seed=3)
    np.testing.assert_array_equal(X, probe_data(model, n_rows=1000, seed=3))
    labels = model(torch.from_numpy(X)).argmax(1).numpy()
    assert set(labels.tolist()) == set(range(10))  # every cluster is probed
    evidence = model(torch.from_numpy(X)).max(1).values.numpy()
    # points near boundaries as well as deep inside clusters
    assert (evidence < 0.05 * evidence.max()).mean() > 0.1 and (evidence > 0.3 * evidence.max()).any()


# --------------------------------------------------------------------------------- execution providers

@pytest.mark.skipif(CUDA, reason='CUDA is available here: the missing-provider error cannot happen')
def test_cuda_provider_missing_is_a_clear_error(exported, models, tmp_path):
    with pytest.raises(ProviderUnavailableError, match='onnxruntime-gpu'):
        make_session(exported['KMeans'][0], execution_provider='cuda')
    with pytest.raises(ProviderUnavailableError, match='CPUExecutionProvider'):
        export(models['KMeans'], tmp_path / 'gpu.onnx', execution_provider='cuda')
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not CUDA, reason='needs onnxruntime-gpu and a GPU')
def test_cuda_provider_runs_the_graph(exported, models, digits):
    session = make_session(exported['KMeans'][0], execution_provider='cuda')
    assert session.get_providers()[0] == 'CUDAExecutionProvider'
    np.testing.assert_array_equal(run(session, digits.astype(np.float32))['label'], models['KMeans'].predict(digits))


def test_unknown_provider(exported):
    with pytest.raises(ValueError, match='cpu, cuda'):
        make_session(exported['KMeans'][0], execution_provider='tpu')


# ------------------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize('kwargs, error, message', [
    ({'dtype': 'float16'}, ValueError, 'float32, float64'),
    ({'opset': 17}, ValueError, '>= 18'),
    ({'opset': 18.0}, TypeError, 'int'),
    ({'beta': -1.0}, ValueError, 'beta'),
    ({'beta': 'soft'}, TypeError, 'beta'),
])
def test_bad_arguments(models, tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        export(models['KMeans'], tmp_path / 'x.onnx', **kwargs)
    assert os.listdir(tmp_path) == []


def test_bad_models_and_paths(digits, models, tmp_path):
    with pytest.raises(NotFittedError):
        export(KMeans(3), tmp_path / 'x.onnx')
    with pytest.raises(TypeError, match='Cannot neuralize'):
        export({'not': 'a model'}, tmp_path / 'x.onnx')
    with pytest.raises(FileNotFoundError, match='output directory'):
        export(models['KMeans'], tmp_path / 'missing' / 'x.onnx')
    with pytest.raises(IsADirectoryError):
        export(models['KMeans'], tmp_path)
    assert os.listdir(tmp_path) == []


def test_check_catches_float32_constants_in_a_float64_graph(models, tmp_path):
    """torch.onnx's default translation rounds Python scalars (beta) to float32 even in float64 graphs. The
    exporter translates them exactly; a graph exported the default way is off by about 1e-8 relative, which
    the check, at float64 tolerance, refuses."""
    import contextlib
    import io

    from zennit_clusters import make_explainer
    from exporters.onnx import build_graph
    from exporters.onnx.graph import graph_module

    estimator = models['KMeans']
    beta = neuralize(estimator).beta
    good = build_graph(estimator, explain=True, dtype='float64')
    module = graph_module(make_explainer(estimator).double().eval(), True)
    with contextlib.redirect_stdout(io.StringIO()):
        program = torch.onnx.export(module, (torch.zeros(2, 64, dtype=torch.float64),), dynamo=True, opset_version=18,
                                    input_names=['X'], output_names=['label', 'logits', 'relevance'],
                                    dynamic_shapes={'X': {0: torch.export.Dim('batch')}})
    constants = [onnx.numpy_helper.to_array(t) for t in program.model_proto.graph.initializer if t.dims == []]
    if any(c.dtype == np.float64 and c.item() == -beta for c in constants):
        pytest.skip('this torch.onnx keeps float64 scalars exact; nothing to catch')
    assert any(c.item() == -np.float32(beta) for c in constants)  # beta, rounded to float32

    bad = program.model_proto
    bad.metadata_props.extend(good.metadata_props)  # the beta the check reads
    onnx.save(bad, tmp_path / 'rounded.onnx')
    with pytest.raises(ExportCheckError, match='relevance differs beyond float64 rounding'):
        verify(tmp_path / 'rounded.onnx', estimator)
    onnx.save(good, tmp_path / 'exact.onnx')
    assert verify(tmp_path / 'exact.onnx', estimator).max_relevance_error < 1e-9
