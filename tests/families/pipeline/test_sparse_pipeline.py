"""scipy sparse X through one-to-one pipeline layers (per-feature scaling without offset, row normalisation) and
into centroid models fitted on sparse data, without densifying: against the dense path on the same data."""
import numpy as np
import pytest
import scipy.sparse
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, Normalizer, StandardScaler

from zennit_clusters import explain, explain_with_constant, neuralize


@pytest.fixture(scope='module')
def counts():
    """Word-count-like data: 400 rows x 60 columns, 8 % stored, non-negative integers as float."""
    rng = np.random.default_rng(0)
    X = scipy.sparse.random(400, 60, density=0.08, random_state=1, format='csr', data_rvs=lambda n: rng.integers(1, 9, n))
    return X.astype(np.float64)


def _check_against_dense(model, dense_model, X):
    dense = X.toarray()
    relevance, absent, labels, logits = explain_with_constant(model, X, return_logits=True)
    assert scipy.sparse.issparse(relevance) and relevance.format == X.format
    np.testing.assert_array_equal(relevance.indices, X.indices)  # X's pattern
    reference, ref_labels, ref_logits = explain(dense_model, dense, return_logits=True)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-11, atol=1e-11 * np.abs(ref_logits).max())
    stored = dense != 0
    scale = np.abs(reference).max()
    # the stored entries as the dense rule has them; the absent ones together in the constant
    np.testing.assert_allclose(relevance.toarray()[stored], reference[stored], rtol=1e-10, atol=1e-12 * scale)
    np.testing.assert_allclose(absent, (reference * ~stored).sum(1), rtol=1e-10, atol=1e-11 * scale)
    evidence = logits[np.arange(X.shape[0]), labels]
    np.testing.assert_allclose(np.asarray(relevance.sum(1)).ravel() + absent, evidence, rtol=1e-10,
                               atol=1e-11 * np.abs(evidence).max())
    return labels


@pytest.mark.parametrize('make', [lambda: KMeans(4, n_init=3, random_state=0),
                                  lambda: MiniBatchKMeans(4, n_init=3, random_state=0),
                                  lambda: BisectingKMeans(4, random_state=0)])
def test_centroid_model_fitted_on_sparse_data(counts, make):
    """neuralize(km, X=X_sparse): the default beta from the sparse rows, equal to the dense one."""
    estimator = make().fit(counts)
    model = neuralize(estimator, X=counts)
    dense_model = neuralize(estimator, X=counts.toarray())
    assert model.beta == pytest.approx(dense_model.beta, rel=1e-12)
    labels = _check_against_dense(model, dense_model, counts)
    np.testing.assert_array_equal(labels, estimator.predict(counts))


@pytest.mark.parametrize('steps', [[MaxAbsScaler()], [StandardScaler(with_mean=False)], [Normalizer()],
                                   [MaxAbsScaler(), Normalizer('l1')], [StandardScaler(with_mean=False),
                                                                        Normalizer('max')]],
                         ids=['maxabs', 'scaler-no-mean', 'l2', 'maxabs+l1', 'scaler+max'])
def test_one_to_one_layers_keep_the_pattern(counts, steps):
    pipeline = make_pipeline(*steps, KMeans(4, n_init=3, random_state=0)).fit(counts)
    model = neuralize(pipeline, X=counts)
    dense_model = neuralize(pipeline, X=counts.toarray())
    assert model.beta == pytest.approx(dense_model.beta, rel=1e-12)
    labels = _check_against_dense(model, dense_model, counts)
    np.testing.assert_array_equal(labels, pipeline.predict(counts))
    # float32 and CSC input: the same pattern, format and dtype back
    relevance = explain(model, counts.astype(np.float32).tocsc())
    assert relevance.format == 'csc' and relevance.dtype == np.float32


def test_what_cannot_keep_the_pattern_is_refused(counts):
    dense = counts.toarray()
    centred = make_pipeline(StandardScaler(), KMeans(3, n_init=3, random_state=0)).fit(dense)
    with pytest.raises(TypeError, match='absent entry of a sparse X non-zero.*with_mean=False'):
        explain(centred, counts)
    encoded = make_pipeline(ColumnTransformer([('s', MaxAbsScaler(), [0, 1, 2])], remainder='passthrough'),
                            KMeans(3, n_init=3, random_state=0)).fit(dense)
    with pytest.raises(TypeError, match='encodes its input host-side'):
        explain(encoded, counts)
