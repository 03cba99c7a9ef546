"""The check is a contract: tolerances bounded by BOUND, float64 by default where float32 cannot keep them, an
explicit flag to keep a failed graph (recorded in its metadata), and exact arithmetic where the estimator's own
predict is less exact than the network."""
import os
from fractions import Fraction

import numpy as np
import onnx
import pytest
from onnx_helpers import run
from sklearn.cluster import DBSCAN, KMeans
from sklearn.preprocessing import StandardScaler

from zennit_clusters import explain, neuralize
from exporters.onnx import ExportCheckError, export, main, make_session, probe_data, verify
from exporters.onnx.tolerances import BOUND


@pytest.fixture(scope='module')
def dbscan(wine):
    """A DBSCAN member-point network (noise included) on standardised wine: float32 relevance is ill-conditioned."""
    X = StandardScaler().fit_transform(wine)[::2]
    return DBSCAN(eps=2.3, min_samples=4).fit(X), X


def _metadata(path):
    return {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}


def test_member_networks_export_in_float64_by_default_and_keep_the_bound(dbscan, tmp_path):
    """The float32 graph of a member-point network is off by up to the row's whole relevance on probe rows (421
    and 1,030 before, kept with a warning); by default it is exported in float64, within BOUND of every row."""
    estimator, X = dbscan
    path = tmp_path / 'dbscan.onnx'
    result = export(estimator, path, explain=True, training_data=X)
    assert result.dtype == 'float64' and result.check.passed and result.check.dtype == 'float64'
    assert 'float64 by default' in str(result) and 'float32 arithmetic' in str(result)
    metadata = _metadata(path)
    assert metadata['dtype'] == 'float64' and metadata['dtype_reason'].startswith('float64 by default')
    assert metadata['check'].startswith('passed')

    model = neuralize(estimator, X=X)
    rows = probe_data(model)
    out = run(make_session(path), rows)
    relevance, labels, logits = explain(model, rows, return_logits=True)
    scale = np.maximum(np.abs(relevance).max(1), np.abs(logits).max(1))
    np.testing.assert_array_equal(out['label'], labels)
    assert (np.abs(out['relevance'] - relevance).max(1) <= BOUND['float64'] * scale).all()


def test_a_graph_that_misses_the_bound_fails_and_leaves_no_file(dbscan, tmp_path):
    """Insisting on float32 for the member network: ExportCheckError, the older file untouched, nothing else; with
    keep_unverified the graph is written and its metadata says it failed, and by how much."""
    estimator, X = dbscan
    path = tmp_path / 'dbscan.onnx'
    path.write_bytes(b'previous export')
    with pytest.raises(ExportCheckError, match='relevance differs beyond float32 rounding') as error:
        export(estimator, path, explain=True, training_data=X, dtype='float32')
    assert path.read_bytes() == b'previous export' and os.listdir(tmp_path) == ['dbscan.onnx']
    check = error.value.check
    assert not check.passed and check.worst > 1 and check.max_relevance_error > BOUND['float32']

    with pytest.warns(UserWarning, match='failed the export check and was kept'):
        kept = export(estimator, path, explain=True, training_data=X, dtype='float32', keep_unverified=True,
                      X=probe_data(neuralize(estimator, X=X)))
    assert not kept.check.passed and 'NOT VERIFIED' in str(kept)
    metadata = _metadata(path)
    assert metadata['check'].startswith('FAILED') and 'times its tolerance' in metadata['check']
    assert f'{kept.check.worst:.3g}' in metadata['check'] and 'relevance differs' in metadata['check']
    with pytest.raises(ExportCheckError):  # the kept file still fails when checked again
        verify(path, estimator, training_data=X)


def test_command_line_keep_unverified(dbscan, tmp_path, capsys, monkeypatch):
    estimator, X = dbscan
    import pickle
    monkeypatch.chdir(tmp_path)
    with open('dbscan.pkl', 'wb') as handle:
        pickle.dump(estimator, handle)
    np.save('train.npy', X)
    arguments = ['dbscan.pkl', '--train-data', 'train.npy', '--explain', '--dtype', 'float32']
    assert main(arguments + ['--keep-unverified']) == 3  # without the flag: exit 1 and no file (tested above)
    captured = capsys.readouterr()
    assert 'NOT VERIFIED' in captured.out and 'failed the export check' in captured.err
    assert _metadata('dbscan.onnx')['check'].startswith('FAILED')


def _exact_labels(X, centres):
    """Nearest centre in rational arithmetic, written out plainly (the slow reference)."""
    exact_x = [[Fraction(v) for v in row] for row in X.tolist()]
    exact_c = [[Fraction(v) for v in row] for row in centres.tolist()]
    labels = []
    for row in exact_x:
        distances = [sum((a - b) ** 2 for a, b in zip(row, centre)) for centre in exact_c]
        labels.append(min(range(len(distances)), key=distances.__getitem__))
    return np.array(labels)


def test_labels_are_checked_against_exact_arithmetic_where_predict_cancels(tmp_path):
    """float64 k-means at feature scale 1e-6 and offset 1e3: predict cancels (wrong on most rows), the centred
    network does not. The check compares with exact arithmetic on those rows and says so, instead of refusing
    the correct graph and blaming the neuralized model."""
    X = 1e3 + 1e-6 * np.random.default_rng(1).normal(size=(400, 4))
    estimator = KMeans(5, n_init=1, random_state=0).fit(X)
    exact = _exact_labels(X, estimator.cluster_centers_)
    assert (estimator.predict(X) != exact).mean() > 0.3  # predict's own cancellation
    path = tmp_path / 'tiny.onnx'
    result = export(estimator, path, dtype='float64', X=X)
    assert result.check.passed and result.check.n_exact > 0.3 * len(X)
    assert result.check.reference.startswith('exact nearest-centre arithmetic on the')
    assert 'exact nearest-centre arithmetic' in str(result) and 'KMeans.predict on the others' in str(result)
    out = run(make_session(path), X)
    np.testing.assert_array_equal(out['label'], exact)


def test_exact_arithmetic_does_not_excuse_a_wrong_predict(digits, tmp_path):
    """A predict that is not "the nearest centre" (a relabelling subclass) is never overruled."""
    from onnx_helpers import RelabelledKMeans

    estimator = RelabelledKMeans(4, n_init=1, random_state=0).fit(digits)
    with pytest.raises(ExportCheckError, match='labels differ from RelabelledKMeans.predict') as error:
        export(estimator, tmp_path / 'x.onnx')
    assert error.value.check.n_exact == 0
