"""explain on scipy sparse input (k-means, mini-batch and bisecting k-means): the stored entries' relevance, the
absent term, and their agreement with the dense explanation, predict and the reference from the equations."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, strategies as st
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture

from references.centroids import bisecting_pairs, kmeans_pairs, neon_reference, split_present_absent
from zennit_clusters import explain, explain_with_constant, neuralize
from zennit_clusters.families.centroids import sparse as sparse_module


def random_sparse(rng, n_rows, n_features, density, dtype=np.float64, empty_rows=(), zero_columns=()):
    dense = rng.random((n_rows, n_features)) * (rng.random((n_rows, n_features)) < density)
    if np.dtype(dtype).kind in 'iu':
        dense = np.round(dense * 5)
    dense[list(empty_rows)] = 0
    dense[:, list(zero_columns)] = 0
    return sp.csr_matrix(dense.astype(dtype))


@pytest.fixture(scope='module')
def fitted():
    rng = np.random.default_rng(0)
    X = random_sparse(rng, 400, 60, 0.15, zero_columns=[3, 17])
    return X, {'kmeans': KMeans(5, n_init=2, random_state=0).fit(X),
               'minibatch': MiniBatchKMeans(4, n_init=2, random_state=0).fit(X),
               'bisecting': BisectingKMeans(5, random_state=0).fit(X)}


def stored_mask(X):
    coo = sp.coo_matrix(X)
    mask = np.zeros(X.shape, dtype=bool)
    mask[coo.row, coo.col] = True
    return mask


@pytest.mark.parametrize('name', ['kmeans', 'minibatch', 'bisecting'])
def test_labels_conservation_and_dense_agreement(fitted, name):
    X, models = fitted
    estimator = models[name]
    relevance, absent, labels, logits = explain_with_constant(estimator, X, return_logits=True)
    assert sp.issparse(relevance) and relevance.format == 'csr'
    np.testing.assert_array_equal(labels, estimator.predict(X))
    evidence = logits[np.arange(X.shape[0]), labels]
    np.testing.assert_allclose(np.asarray(relevance.sum(1)).ravel() + absent, evidence, rtol=1e-12, atol=1e-12)
    # the same pattern as X, and the dense explanation of the same rows at the stored entries and in total
    np.testing.assert_array_equal(relevance.indptr, X.indptr)
    np.testing.assert_array_equal(relevance.indices, X.indices)
    dense, dense_labels, dense_logits = explain(estimator, X.toarray(), return_logits=True)
    np.testing.assert_array_equal(dense_labels, labels)
    np.testing.assert_allclose(dense_logits, logits, rtol=1e-12, atol=1e-12)
    mask = stored_mask(X)
    np.testing.assert_allclose(relevance.toarray()[mask], dense[mask], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(absent, (dense * ~mask).sum(1), rtol=1e-9, atol=1e-12)
    # explain() gives the stored entries' relevance alone
    only = explain(estimator, X)
    np.testing.assert_array_equal(only.toarray(), relevance.toarray())


@pytest.mark.parametrize('name', ['kmeans', 'bisecting'])
def test_against_the_reference_from_the_equations(fitted, name):
    X, models = fitted
    estimator = models[name]
    model = neuralize(estimator)
    relevance, absent = explain_with_constant(model, X[:12])
    mask = stored_mask(X[:12])
    for row, label in enumerate(estimator.predict(X[:12])):
        pairs = (kmeans_pairs(estimator.cluster_centers_, label) if name == 'kmeans'
                 else bisecting_pairs(estimator, label))
        evidence, reference = neon_reference(X[row].toarray()[0], pairs, model.beta)
        present, absent_reference = split_present_absent(mask[row], reference)
        np.testing.assert_allclose(relevance[row].toarray()[0][mask[row]], present, rtol=1e-9, atol=1e-12)
        assert math.isclose(absent[row], absent_reference, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(relevance[row].sum() + absent[row], evidence, rel_tol=1e-12, abs_tol=1e-12)


def test_chosen_cluster_beta_and_chunks(fitted):
    X, models = fitted
    estimator = models['kmeans']
    for cluster, beta in ((2, 0.0), (None, math.inf), (0, 3.0)):
        relevance, absent, labels, logits = explain_with_constant(estimator, X, cluster=cluster, beta=beta,
                                                                  return_logits=True)
        dense = explain(estimator, X.toarray(), cluster=cluster, beta=beta)
        explained = labels if cluster is None else np.full_like(labels, cluster)
        np.testing.assert_allclose(np.asarray(relevance.sum(1)).ravel() + absent,
                                   logits[np.arange(X.shape[0]), explained], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(relevance.toarray()[stored_mask(X)], dense[stored_mask(X)], rtol=1e-9, atol=1e-11)
        # one row per chunk gives the same numbers: an explanation never depends on its batch
        one, one_absent = explain_with_constant(estimator, X, cluster=cluster, beta=beta, chunk_size=1)
        np.testing.assert_allclose(one.toarray(), relevance.toarray(), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(one_absent, absent, rtol=1e-13, atol=1e-15)


def test_small_chunk_budget_splits_rows(fitted, monkeypatch):
    X, models = fitted
    reference = explain_with_constant(models['kmeans'], X)
    monkeypatch.setattr(sparse_module, 'CHUNK_ELEMENTS', 64)  # a few entries per chunk: many chunks
    assert len(sparse_module._row_chunks(X.indptr, 5, None)) > 50
    chunked = explain_with_constant(models['kmeans'], X)
    np.testing.assert_allclose(chunked[0].toarray(), reference[0].toarray(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(chunked[1], reference[1], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize('convert', [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array, sp.csc_array,
                                     sp.coo_array, sp.lil_matrix])
def test_formats_keep_their_kind(fitted, convert):
    X, models = fitted
    given_X = convert(X[:30])
    relevance = explain(models['kmeans'], given_X)
    assert relevance.format == given_X.format
    assert isinstance(relevance, sp.sparray) == isinstance(given_X, sp.sparray)
    np.testing.assert_allclose(relevance.toarray(), explain(models['kmeans'], X[:30]).toarray(), rtol=0, atol=0)


def test_refusals(fitted):
    X, models = fitted
    bad = X[:5].copy()
    bad.data[2] = np.nan
    row = int(np.searchsorted(bad.indptr, 2, side='right') - 1)
    with pytest.raises(ValueError, match=f'NaN \\(first in row {row}\\)'):
        explain(models['kmeans'], bad)
    with pytest.raises(ValueError, match='has 59 features, but the model expects 60'):
        explain(models['kmeans'], X[:, :59])
    with pytest.raises(TypeError, match='out= takes a dense buffer'):
        explain(models['kmeans'], X, out=np.empty(X.shape))
    with pytest.raises(TypeError, match='real numbers'):
        explain(models['kmeans'], sp.csr_matrix(X.astype(np.complex128)))
    with pytest.raises(ValueError, match='0 samples'):
        explain(models['kmeans'], X[:0])
    mixture = GaussianMixture(2, covariance_type='diag', random_state=0).fit(X[:100].toarray())
    with pytest.raises(TypeError, match='supports centroid models .* got a NeuralizedMixture'):
        explain(mixture, X[:5])


@given(seed=st.integers(0, 2 ** 16), n_rows=st.integers(1, 25), n_features=st.integers(2, 30),
       density=st.sampled_from([0.0, 0.05, 0.3, 1.0]), dtype=st.sampled_from([np.float32, np.float64, np.int64]),
       duplicates=st.booleans(), n_clusters=st.integers(2, 5), bisecting=st.booleans())
def test_random_sparse_matrices(seed, n_rows, n_features, density, dtype, duplicates, n_clusters, bisecting):
    """Empty rows, all-zero columns, duplicate entries, float32/float64/int data: conservation, predict, and the
    dense explanation of the same rows (which sees the duplicates summed)."""
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(60, n_features))
    estimator = (BisectingKMeans(n_clusters, random_state=0) if bisecting
                 else KMeans(n_clusters, n_init=1, random_state=0)).fit(train)
    X = random_sparse(rng, n_rows, n_features, density, dtype=dtype, empty_rows=[0],
                      zero_columns=[n_features - 1])
    if duplicates and X.nnz:
        coo = X.tocoo()
        half = np.arange(0, coo.nnz, 2)  # split every other entry into two that sum to it
        data = np.concatenate([coo.data, coo.data[half] - coo.data[half] // 2 if coo.data.dtype.kind == 'i'
                               else coo.data[half] / 2])
        data[half] = coo.data[half] // 2 if coo.data.dtype.kind == 'i' else coo.data[half] / 2
        X = sp.coo_matrix((data, (np.concatenate([coo.row, coo.row[half]]), np.concatenate([coo.col, coo.col[half]]))),
                          shape=coo.shape)
    dense_X = X.toarray().astype(np.float64)
    relevance, absent, labels, logits = explain_with_constant(estimator, X, return_logits=True)
    assert relevance.dtype == (np.float32 if dtype == np.float32 else np.float64)
    assert relevance.shape == X.shape and relevance.format == X.format
    np.testing.assert_array_equal(labels, estimator.predict(dense_X))
    evidence = logits[np.arange(n_rows), labels].astype(np.float64)
    tolerance = 1e-5 if dtype == np.float32 else 1e-10
    scale = 1.0 + np.abs(relevance.toarray()).sum(1) + np.abs(absent)
    assert (np.abs(relevance.toarray().astype(np.float64).sum(1) + absent - evidence) <= tolerance * scale).all()
    dense = explain(estimator, dense_X)
    mask = stored_mask(sp.csr_matrix(X))  # after summing duplicates
    np.testing.assert_allclose(relevance.toarray()[mask], dense[mask], rtol=tolerance, atol=tolerance * scale.max())
    np.testing.assert_allclose(absent, (dense * ~mask).sum(1), rtol=tolerance, atol=tolerance * scale.max())


def test_the_callers_matrix_is_left_alone(fitted):
    """Duplicates and unsorted indices are summed and sorted in a copy; the result never shares X's arrays."""
    X, models = fitted
    coo = X[:20].tocoo()
    order = np.random.default_rng(1).permutation(coo.nnz)
    rows, cols, data = coo.row[order], coo.col[order], coo.data[order]
    unsorted = sp.csr_matrix((np.concatenate([data, data[:5]]), (np.concatenate([rows, rows[:5]]),
                                                                  np.concatenate([cols, cols[:5]]))), shape=(20, 60))
    unsorted.has_canonical_format = False
    before = (unsorted.data.copy(), unsorted.indices.copy(), unsorted.indptr.copy())
    relevance = explain(models['kmeans'], unsorted)
    for array, saved in zip((unsorted.data, unsorted.indices, unsorted.indptr), before):
        np.testing.assert_array_equal(array, saved)
    canonical = X[:20]
    result = explain(models['kmeans'], canonical)
    assert not np.shares_memory(result.indices, canonical.indices)
    summed = unsorted.toarray()  # the duplicates summed
    np.testing.assert_allclose(relevance.toarray(), explain(models['kmeans'], summed) * (summed != 0),
                               rtol=1e-9, atol=1e-12)
