"""The optional ``contrasts`` output ("why c rather than k" against every competitor) and, for mixtures,
``contrast_constants``, under real onnxruntime: equal to ``explain(model, X, contrast=k)``, summing to the margin
h_ck of independent references (squared distances, scikit-learn's log-probabilities, the bisection tree, the slow
member-network reference), zero at k = c; the float32 graph within the tolerances module's bounds; the check
catching a wrong graph; the command line; the Zennit path; and the refusals."""
import pickle

import numpy as np
import onnx
import pytest
import torch
from sklearn.cluster import DBSCAN, BisectingKMeans, KMeans
from sklearn.datasets import load_iris, load_wine
from sklearn.mixture import GaussianMixture

from zennit_clusters import explain, explain_with_constant, neuralize, neuralize_partition
from exporters.onnx import check_graph, export, main, make_session
from exporters.onnx.tolerances import measure_contrasts
from references.centroids import bisecting_pairs, margin
from references.contrast import bisecting_competitors
from references.members import member_network_reference


@pytest.fixture(scope='module')
def wine_scaled():
    X = load_wine().data
    return (X - X.mean(0)) / X.std(0)


def fitted(name, X):
    if name == 'KMeans':
        return KMeans(3, n_init=2, random_state=0).fit(X)
    if name == 'BisectingKMeans':
        return BisectingKMeans(4, random_state=0).fit(X)
    if name.startswith('GaussianMixture'):
        return GaussianMixture(3, covariance_type=name.split('-')[1], random_state=0).fit(X)
    return neuralize_partition(*partition_of(X), gamma=0.7)


def partition_of(X):
    """The members and labels of the partition (a member network), for the model and the slow reference."""
    return X[::2], KMeans(3, n_init=2, random_state=0).fit_predict(X[::2])


def margins_reference(name, estimator, X, labels):
    """(N, K) h_ck of each row's cluster c against every k, from the estimator itself (nothing of the library)."""
    rows = np.arange(len(X))
    if name == 'KMeans':
        distances = ((X[:, None] - estimator.cluster_centers_[None]) ** 2).sum(-1)
        return distances - distances[rows, labels][:, None]
    if name.startswith('GaussianMixture'):
        weighted = estimator._estimate_weighted_log_prob(X)  # log pi_k N(x | k), scikit-learn's own
        return weighted[rows, labels][:, None] - weighted
    h = np.zeros((len(X), estimator.n_clusters))
    for n in range(len(X)):
        c = int(labels[n])
        for (own, rival), competitors in zip(bisecting_pairs(estimator, c), bisecting_competitors(estimator, c)):
            for k in competitors:
                h[n, k] = margin(X[n], own, rival)
    return h


@pytest.fixture(scope='module')
def graphs(wine_scaled, tmp_path_factory):
    """float64 graphs with contrasts (no relevance: one explainer to trace), exported once per family."""
    folder = tmp_path_factory.mktemp('contrast_graphs')
    cache = {}

    def graph(name):
        if name not in cache:
            estimator = fitted(name, wine_scaled)
            path = folder / f'{name}.onnx'
            result = export(estimator, path, contrasts=True, dtype='float64', X=wine_scaled)
            cache[name] = estimator, path, result
        return cache[name]
    return graph


@pytest.mark.parametrize('covariance_type', ['tied', 'spherical'])
def test_contrasts_explainer_equals_contrast_path(wine_scaled, covariance_type):
    """The explainer's output='contrasts' (what the graph runs) is contrast=k for every k, bit for bit; for the
    covariance types that no graph below exports (tied: root points on linear boundaries; spherical)."""
    from zennit_clusters import make_explainer
    X = wine_scaled
    model = neuralize(fitted(f'GaussianMixture-{covariance_type}', X))
    with torch.no_grad():
        _, _, contrasts, constants = make_explainer(model, output='contrasts').forward_with_constant(
            torch.as_tensor(X))
    for k in range(3):
        relevance, constant = explain_with_constant(model, X, contrast=k)
        np.testing.assert_array_equal(contrasts[:, k].numpy(), relevance)
        np.testing.assert_array_equal(constants[:, k].numpy(), constant)
    with pytest.raises(ValueError, match='ask for one of the two'):
        make_explainer(model, output='contrasts')(torch.as_tensor(X), contrast=torch.zeros(len(X), dtype=torch.long))


@pytest.mark.parametrize('name', ['KMeans', 'BisectingKMeans', 'GaussianMixture-diag', 'GaussianMixture-full',
                                  'partition'])
def test_contrasts_output_equals_closed_form_and_sums_to_margin(graphs, wine_scaled, name):
    X = wine_scaled
    estimator, path, result = graphs(name)
    model = neuralize(estimator)
    mixture = name.startswith('GaussianMixture')
    names = ['label', 'logits', 'contrasts'] + (['contrast_constants'] if mixture else [])
    assert result.outputs == tuple(names) and result.check.passed and result.check.max_contrast_error < 1e-10
    proto = onnx.load(path)
    assert [value.name for value in proto.graph.output] == names
    metadata = {p.key: p.value for p in proto.metadata_props}
    assert metadata['contrasts'] == 'true' and 'h_ck' in metadata['output.contrasts']
    assert mixture == ('output.contrast_constants' in metadata)

    got = dict(zip(names, make_session(str(path)).run(None, {'X': X})))
    labels = got['label']
    rows = np.arange(len(X))
    n_clusters = got['logits'].shape[1]
    assert got['contrasts'].shape == (len(X), n_clusters, X.shape[1])
    constants = got.get('contrast_constants', np.zeros((len(X), n_clusters)))
    for k in range(n_clusters):
        expected, constant = explain_with_constant(model, X, contrast=k)
        scale = np.abs(expected).max()
        np.testing.assert_allclose(got['contrasts'][:, k], expected, rtol=1e-10, atol=1e-10 * scale)
        np.testing.assert_allclose(got['contrasts'][:, k], explain(model, X, contrast=k), rtol=1e-10,
                                   atol=1e-10 * scale)
        np.testing.assert_allclose(constants[:, k], constant, rtol=1e-10, atol=1e-10 * max(1.0, scale))
    # zero at k = c, exactly
    assert not got['contrasts'][rows, labels].any() and not constants[rows, labels].any()
    # contrasts.sum(-1) + contrast_constants == h_ck of the estimator itself
    totals = got['contrasts'].sum(-1) + constants
    if name == 'partition':
        for n in range(0, len(X), 15):  # the slow reference, one row at a time
            for k in range(n_clusters):
                _, _, expected, _ = member_network_reference(
                    X[n], *partition_of(X), 0.7, model.beta, epsilon=model.margin.tie_threshold(torch.float64),
                    kappa=model.relevance_gamma, contrast=k)
                np.testing.assert_allclose(got['contrasts'][n, k], expected, rtol=1e-8,
                                           atol=1e-10 * (np.abs(expected).max() + 1))
                assert (k == labels[n]) == (not expected.any())
    else:
        assert (labels == estimator.predict(X)).all()
        h = margins_reference(name, estimator, X, labels)
        np.testing.assert_allclose(totals, h, rtol=1e-9, atol=1e-9 * np.abs(h).max())


@pytest.mark.parametrize('name', ['KMeans'])
def test_contrasts_output_float32_within_bounds(tmp_path, wine_scaled, name):
    """float32 graphs (the default dtype), with relevance next to the contrasts for k-means (a float32 mixture,
    with its constants, is one more 4-second export: add 'GaussianMixture-diag' here to run it)."""
    X = wine_scaled
    estimator = fitted(name, X)
    with_relevance = name == 'KMeans'
    result = export(estimator, tmp_path / 'graph32.onnx', explain=with_relevance, contrasts=True, X=X)
    assert result.dtype == 'float32' and result.check.passed
    assert result.outputs == (('label', 'logits') + (('relevance',) if with_relevance else ()) + ('contrasts',)
                              + (() if with_relevance else ('contrast_constants',)))
    x32 = X.astype(np.float32)
    got = dict(zip(result.outputs, make_session(str(tmp_path / 'graph32.onnx')).run(None, {'X': x32})))
    contrasts = got['contrasts']
    constants = got.get('contrast_constants', np.zeros(contrasts.shape[:2], np.float32))
    model = neuralize(estimator)
    x64 = x32.astype(np.float64)
    error = np.zeros(len(X))
    for k in range(model.n_clusters):
        expected, constant = explain_with_constant(model, x64, contrast=k)
        error = np.fmax(error, np.abs(contrasts[:, k] - expected).max(1))
        error = np.fmax(error, np.abs(constants[:, k] - constant))
    found = measure_contrasts(model, x64, 'float32')
    assert (error <= found.tolerance).all(), f'{(error / found.tolerance).max():.3g} times the tolerance'
    assert (found.tolerance <= 1e-3 * found.scale).all()  # the tolerance is within the contract's bound
    assert error.max() > 0  # float32 rounding is there: the comparison is not of a float64 graph
    if with_relevance:
        np.testing.assert_allclose(got['relevance'], explain(model, x64), rtol=1e-3,
                                   atol=1e-4 * np.abs(got['relevance']).max())


def test_check_catches_wrong_contrasts(graphs, wine_scaled):
    """A graph whose contrasts are off by 1e-5 of their value (labels, logits and relevance intact) fails."""
    X = wine_scaled
    estimator, path, _ = graphs('GaussianMixture-diag')
    proto = onnx.load(path)
    graph = proto.graph
    output = next(value for value in graph.output if value.name == 'contrasts')
    for node in graph.node:
        node.output[:] = ['contrasts_raw' if name == 'contrasts' else name for name in node.output]
        node.input[:] = ['contrasts_raw' if name == 'contrasts' else name for name in node.input]
    graph.initializer.append(onnx.numpy_helper.from_array(np.array(1 + 1e-5), 'contrasts_scale'))
    graph.node.append(onnx.helper.make_node('Mul', ['contrasts_raw', 'contrasts_scale'], [output.name]))
    check = check_graph(proto.SerializeToString(), estimator, X=X)
    assert not check.passed and check.max_contrast_error > 0
    assert any(failure.startswith('contrasts differ') for failure in check.failures), check.failures
    assert check.max_logit_error < 1e-10  # only the contrasts are wrong


def test_zennit_contrast_equals_onnx(graphs, wine_scaled):
    from zennit.attribution import Gradient

    from zennit_clusters import ClusterComposite, contrast_output
    X = wine_scaled
    estimator, path, _ = graphs('KMeans')
    label, _, contrasts = make_session(str(path)).run(None, {'X': X})
    model = neuralize(estimator)
    x = torch.as_tensor(X)
    for k in range(3):
        with Gradient(model.margin, ClusterComposite()) as attributor:
            _, relevance = attributor(x, attr_output=contrast_output(model, torch.as_tensor(label), k))
        np.testing.assert_allclose(relevance.detach().numpy(), contrasts[:, k], rtol=1e-8,
                                   atol=1e-12 * np.abs(contrasts).max())


def test_cli_contrasts_round_trip(tmp_path, wine_scaled, capsys):
    X = wine_scaled
    estimator = fitted('KMeans', X)
    model_path, out = tmp_path / 'kmeans.pkl', tmp_path / 'served.onnx'
    with open(model_path, 'wb') as file:
        pickle.dump(estimator, file)
    probe = tmp_path / 'probe.npy'
    np.save(probe, X)
    assert main([str(model_path), '-o', str(out), '--contrasts', '--dtype', 'float64', '--probe-data',
                 str(probe)]) == 0
    assert 'contrasts' in capsys.readouterr().out
    session = make_session(str(out))
    assert [o.name for o in session.get_outputs()] == ['label', 'logits', 'contrasts']
    contrasts = session.run(None, {'X': X})[2]
    np.testing.assert_allclose(contrasts[:, 2], explain(estimator, X, contrast=2), rtol=1e-10, atol=1e-12)
    assert main(['inspect', str(out)]) == 0
    text = capsys.readouterr().out
    assert 'contrasts' in text and 'h_ck' in text


def test_contrasts_refused_clearly(tmp_path, capsys):
    X = load_iris().data
    X = (X - X.mean(0)) / X.std(0)
    dbscan = DBSCAN(eps=0.8, min_samples=5).fit(X)
    with pytest.raises(ValueError, match='noise rule.*no assigned cluster'):
        export(dbscan, tmp_path / 'dbscan.onnx', contrasts=True, training_data=X)
    assert not (tmp_path / 'dbscan.onnx').exists()
    # cosine k-means (the Spark family) has no closed-form contrast
    from zennit_clusters.families.spark.converters import _on_the_sphere
    centres = X[:3] / np.linalg.norm(X[:3], axis=1, keepdims=True)
    cosine = _on_the_sphere(neuralize(torch.as_tensor(centres)), X.shape[1], 'cosine k-means')
    with pytest.raises(ValueError, match='needs pairwise margins'):
        export(cosine, tmp_path / 'cosine.onnx', contrasts=True)
    # the command line says the same, with exit status 1
    path = tmp_path / 'dbscan.pkl'
    with open(path, 'wb') as file:
        pickle.dump(dbscan, file)
    train = tmp_path / 'train.npy'
    np.save(train, X)
    assert main([str(path), '--contrasts', '--train-data', str(train)]) == 1
    assert 'noise rule' in capsys.readouterr().err


def test_check_runs_contrasts_in_chunks(graphs, wine_scaled, monkeypatch):
    """With (rows, K, D) outputs the check runs a few rows at a time; chunked, it finds what it finds in one run."""
    import importlib
    # the module, not the package's lazily exported function of the same name
    verify = importlib.import_module('exporters.onnx.verify')
    X = wine_scaled
    estimator, path, result = graphs('KMeans')
    whole = check_graph(str(path), estimator, X=X)
    monkeypatch.setattr(verify, 'WIDE_ELEMENTS', 3 * X.shape[1] * 7)  # 7 rows per run: 26 runs
    assert verify.session_rows(['label', 'logits', 'contrasts'], 3, X.shape[1]) == 7
    chunked = check_graph(str(path), estimator, X=X)
    assert whole.passed and chunked.passed
    assert chunked.max_contrast_error == whole.max_contrast_error and chunked.n_compared == whole.n_compared
