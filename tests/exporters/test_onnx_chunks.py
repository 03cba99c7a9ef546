"""The export check runs the graph in row chunks (issue 11: bounded memory of the probe runs): the same verdict and
the same numbers as one run over all probe rows."""
import sys

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_wine

# verify() first: loading its submodule through another lazy name (check_graph) would leave the package's
# attribute `verify` bound to the submodule, not the function (exporters/onnx/__init__.py, _LAZY)
from exporters.onnx import verify as _verify_function  # noqa: F401
from exporters.onnx import export, probe_data

verify = sys.modules['exporters.onnx.verify']  # the module behind check_graph, for SESSION_ROWS


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    X = load_wine().data
    km = KMeans(4, n_init=2, random_state=0).fit(X)
    path = tmp_path_factory.mktemp('chunks') / 'kmeans.onnx'
    export(km, path, explain=True)
    return km, path


def test_chunked_probe_runs_give_the_unchunked_check(exported, monkeypatch):
    km, path = exported
    X = probe_data(km, n_rows=3000, seed=3)
    whole = verify.check_graph(path, km, X=X)
    monkeypatch.setattr(verify, 'SESSION_ROWS', 97)  # ragged chunks
    chunked = verify.check_graph(path, km, X=X)
    assert whole.passed and chunked.passed
    assert (chunked.n_rows, chunked.n_compared, chunked.n_excluded) == (whole.n_rows, whole.n_compared,
                                                                         whole.n_excluded)
    assert chunked.max_logit_error == pytest.approx(whole.max_logit_error, rel=1e-6, abs=1e-12)
    assert chunked.max_relevance_error == pytest.approx(whole.max_relevance_error, rel=1e-6, abs=1e-12)


def test_run_in_chunks_concatenates_every_output(exported):
    km, path = exported
    from exporters.onnx.session import make_session
    session = make_session(path.read_bytes(), 'cpu')
    names = [output.name for output in session.get_outputs()]
    x = np.ascontiguousarray(probe_data(km, n_rows=500), dtype=np.float32)
    whole = verify.run_in_chunks(session, names, x, rows=len(x))
    parts = verify.run_in_chunks(session, names, x, rows=33)
    assert set(parts) == set(names) == {'label', 'logits', 'relevance'}
    np.testing.assert_array_equal(parts['label'], whole['label'])
    for name in ('logits', 'relevance'):
        np.testing.assert_allclose(parts[name], whole[name], rtol=1e-5, atol=1e-3)
