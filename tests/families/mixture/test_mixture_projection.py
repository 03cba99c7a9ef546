"""Gaussian mixtures after a projection (PCA, whitened PCA, TruncatedSVD), neuralized in the user's input space.

Real data as DataFrames (wine behind a StandardScaler; breast cancer raw, far from the origin). For every
covariance type and projection: labels == ``pipeline.predict`` on every row, the log-odds == those of the
z-space head, conservation in float64, the relevance == a slow reference from the equations
(tests/references/mixtures.py), the Zennit path == the closed form, contrast and per-competitor parts, and the
ONNX graph under onnxruntime (labels == predict, relevance == closed form). Plus a hypothesis test over random
projections, numbers of components and covariance types, and the refusals that remain.
"""
import functools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from references.mixtures import projected_mixture_reference
from scipy.special import logsumexp
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from zennit.attribution import Gradient

from zennit_clusters import ClusterComposite, explain, explain_with_constant, neuralize

pytestmark = [pytest.mark.filterwarnings('error:X does not have valid feature names'),
              pytest.mark.filterwarnings('error:X has feature names')]

COVARIANCE_TYPES = ('full', 'tied', 'diag', 'spherical')
PROJECTIONS = {'pca': lambda d: PCA(d), 'pca-whiten': lambda d: PCA(d, whiten=True),
               'svd': lambda d: TruncatedSVD(d, random_state=0)}


@functools.lru_cache(maxsize=None)
def frame(name):
    return {'wine': load_wine, 'cancer': load_breast_cancer}[name](as_frame=True).data


@functools.lru_cache(maxsize=None)
def fitted(name, covariance_type, projection, n_components=3, d=4, bayesian=False):
    X = frame(name)
    mixture = (BayesianGaussianMixture(n_components=n_components, covariance_type=covariance_type, random_state=0,
                                       max_iter=200) if bayesian else
               GaussianMixture(n_components, covariance_type=covariance_type, random_state=0))
    steps = [StandardScaler()] if name == 'wine' else []  # breast cancer raw: areas in the thousands
    return make_pipeline(*steps, PROJECTIONS[projection](d), mixture).fit(X)


def log_odds(mixture, Z):
    """log p(c|z) / (1 - p(c|z)) from the estimator's own weighted log-probabilities."""
    scores = mixture._estimate_weighted_log_prob(Z)
    return np.stack([scores[:, c] - logsumexp(np.delete(scores, c, axis=1), axis=1)
                     for c in range(scores.shape[1])], 1)


def projection_input(pipeline, X):
    """u: what the projection takes (the relevance on u is the relevance on X: scalers pass it one to one)."""
    return np.asarray(pipeline[:-2].transform(X)) if len(pipeline.steps) > 2 else X.to_numpy()


def zennit_relevance(model, x, labels):
    onehot = torch.nn.functional.one_hot(torch.tensor(np.asarray(labels)), model.n_clusters).double()
    with Gradient(model, ClusterComposite()) as attributor:
        _, relevance = attributor(x.clone().requires_grad_(), attr_output=lambda y: y * onehot)
    return relevance.detach().numpy()


CASES = [(name, cov, proj) for name in ('wine', 'cancer') for cov in COVARIANCE_TYPES for proj in PROJECTIONS]


@pytest.mark.parametrize('name,covariance_type,projection', CASES, ids=['-'.join(case) for case in CASES])
def test_exact_in_input_space(name, covariance_type, projection):
    X = frame(name)
    pipeline = fitted(name, covariance_type, projection)
    model = neuralize(pipeline, X=X)
    relevance, constant, labels, logits = explain_with_constant(model, X, return_logits=True)
    assert list(relevance.columns) == list(X.columns)
    relevance, constant, labels, logits = (v.to_numpy() for v in (relevance, constant, labels, logits))
    np.testing.assert_array_equal(labels, pipeline.predict(X))
    rows = np.arange(len(X))
    np.testing.assert_allclose(relevance.sum(1) + constant, logits[rows, labels], rtol=1e-10, atol=1e-10)
    # the same posterior log-odds as the mixture in z (where they are finite)
    expected = log_odds(pipeline[-1], pipeline[:-1].transform(X))
    finite = np.abs(expected) < 30  # beyond, p = 1 - 1e-13: the estimator's own rounding dominates
    np.testing.assert_allclose(logits[finite], expected[finite], rtol=1e-7, atol=1e-7)
    # tied stays tied; every other type becomes full in u (W^T diag(p) W is not diagonal)
    head = model.head if hasattr(model, 'head') else model
    assert head.covariance_type == ('tied' if covariance_type == 'tied' else 'full')
    # against the slow reference, on a subsample
    sample = rows[::max(1, len(X) // 12)]
    U = projection_input(pipeline, X)
    ref_relevance, ref_constant, ref_evidence = projected_mixture_reference(U[sample], pipeline[-2], pipeline[-1])
    scale = np.abs(ref_relevance).max()
    np.testing.assert_allclose(ref_evidence, logits[sample, labels[sample]], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(relevance[sample], ref_relevance, rtol=1e-6, atol=1e-8 * scale)
    np.testing.assert_allclose(constant[sample], ref_constant, atol=1e-8 * max(scale, 1.0))
    # the Zennit path through the same network
    via_zennit = zennit_relevance(model, torch.tensor(X.to_numpy()), labels)
    np.testing.assert_allclose(via_zennit, relevance, rtol=1e-6, atol=1e-9 * np.abs(relevance).max())


@pytest.mark.parametrize('covariance_type', COVARIANCE_TYPES)
def test_contrast_and_per_competitor(covariance_type):
    X = frame('wine')
    pipeline = fitted('wine', covariance_type, 'pca-whiten')
    model = neuralize(pipeline, X=X)
    relevance, constant, labels = (v.to_numpy() for v in explain_with_constant(model, X, return_logits=True)[:3])
    scores = pipeline[-1]._estimate_weighted_log_prob(pipeline[:-1].transform(X))
    rows = np.arange(len(X))
    competitor = (labels + 1) % 3
    against, against_constant = explain_with_constant(model, X, contrast=competitor)
    np.testing.assert_allclose(against.to_numpy().sum(1) + against_constant.to_numpy(),
                               scores[rows, labels] - scores[rows, competitor], rtol=1e-8, atol=1e-8)
    parts, part_constant = explain_with_constant(model, X, per_competitor=True)
    parts, part_constant = np.asarray(parts), np.asarray(part_constant)
    np.testing.assert_allclose(parts.sum(1), relevance, rtol=1e-9, atol=1e-9 * np.abs(relevance).max())
    np.testing.assert_allclose(part_constant.sum(1), constant, atol=1e-9)
    np.testing.assert_array_equal(parts[rows, labels], 0.0)


# every covariance type and every projection once: the graph in u is a tied or a full mixture whatever the projection
# (an export takes seconds; the network itself is checked on every combination above)
ONNX_CASES = [('full', 'pca'), ('tied', 'svd'), ('diag', 'pca-whiten'), ('spherical', 'pca-whiten')]


@pytest.mark.parametrize('covariance_type,projection', ONNX_CASES, ids=['-'.join(case) for case in ONNX_CASES])
def test_onnx_graph(tmp_path, covariance_type, projection):
    pytest.importorskip('onnxruntime')
    from exporters.onnx import export, make_session
    X = frame('wine')
    pipeline = fitted('wine', covariance_type, projection)
    result = export(pipeline, tmp_path / 'model.onnx', explain=True, X=X, training_data=X)
    assert result.check.passed
    session = make_session(str(tmp_path / 'model.onnx'), 'cpu')
    names = [output.name for output in session.get_outputs()]
    got = dict(zip(names, session.run(None, {'X': X.to_numpy(dtype=np.float32)})))
    np.testing.assert_array_equal(got['label'], pipeline.predict(X))
    closed = explain(neuralize(pipeline, X=X), X).to_numpy()
    np.testing.assert_allclose(got['relevance'], closed, rtol=1e-3, atol=1e-3 * np.abs(closed).max())


def test_bayesian_mixture_after_a_projection():
    X = frame('wine')
    pipeline = fitted('wine', 'full', 'pca', bayesian=True)
    relevance, constant, labels, logits = explain_with_constant(pipeline, X, return_logits=True)
    np.testing.assert_array_equal(labels.to_numpy(), pipeline.predict(X))
    np.testing.assert_allclose(relevance.to_numpy().sum(1) + constant.to_numpy(),
                               logits.to_numpy()[np.arange(len(X)), labels.to_numpy()], rtol=1e-10, atol=1e-10)


@settings(max_examples=15, deadline=None)
@given(name=st.sampled_from(['wine', 'cancer']), covariance_type=st.sampled_from(COVARIANCE_TYPES),
       projection=st.sampled_from(list(PROJECTIONS)), d=st.integers(1, 6), n_components=st.integers(2, 4),
       seed=st.integers(0, 2 ** 16), dtype=st.sampled_from([np.float64, np.float32]))
def test_random_projections(name, covariance_type, projection, d, n_components, seed, dtype):
    """Any projection width, number of components and covariance type: labels, log-odds, conservation."""
    X = frame(name).iloc[np.random.default_rng(seed).permutation(len(frame(name)))[:150]]
    mixture = GaussianMixture(n_components, covariance_type=covariance_type, random_state=seed % 7, reg_covar=1e-4)
    pipeline = make_pipeline(StandardScaler(), PROJECTIONS[projection](d), mixture).fit(X)
    model = neuralize(pipeline, X=X)
    relevance, constant, labels, logits = (np.asarray(v) for v in explain_with_constant(
        model, X.astype(dtype), return_logits=True))
    assert relevance.dtype == dtype and relevance.shape == X.shape
    evidence = logits[np.arange(len(X)), labels]
    expected = log_odds(mixture, pipeline[:-1].transform(X))
    if dtype is np.float64:
        np.testing.assert_array_equal(labels, pipeline.predict(X))
        np.testing.assert_allclose(relevance.sum(1) + constant, evidence, rtol=1e-9, atol=1e-9)
        finite = np.abs(expected) < 30
        np.testing.assert_allclose(logits[finite], expected[finite], rtol=1e-6, atol=1e-6)
    else:  # float32: labels may differ only where two components are within rounding of each other
        top = np.sort(expected, 1)
        clear = top[:, -1] - top[:, -2] > 1e-2
        np.testing.assert_array_equal(labels[clear], pipeline.predict(X)[clear])
        np.testing.assert_allclose(relevance.sum(1) + constant, evidence, rtol=1e-3,
                                   atol=1e-3 * max(1.0, np.abs(evidence).max()))


def test_refusals():
    from sklearn.cluster import KMeans
    from zennit_clusters.families.mixture.projection import projected_parameters
    X = frame('wine')
    # k-means after a whitened PCA is folded (tests/families/pipeline/test_whiten.py): its labels here
    whitened = make_pipeline(StandardScaler(), PCA(3, whiten=True), KMeans(3, n_init=2, random_state=0)).fit(X)
    np.testing.assert_array_equal(neuralize(whitened, X=X).predict(X), whitened.predict(X))
    # a rank-deficient W whose range misses a mean: no Gaussian in u has the pulled-back score
    W = np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    means = np.array([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match='rank 1 < 2 and the means of component'):
        projected_parameters(means, np.ones((2, 2)), 'diag', W, np.zeros(3))
    with pytest.raises(ValueError, match='W must be'):
        projected_parameters(means, np.ones((2, 2)), 'diag', W.T, np.zeros(3))


@pytest.mark.parametrize('covariance_type', ['full', 'diag'])
def test_factored_products_equal_the_full_precisions(covariance_type):
    """The pulled-back full mixture computes P_k u through W (K d D per row); the same model with the (K, D, D)
    precisions alone gives the same logits, relevance and constant."""
    from zennit_clusters.families.mixture import mixture_model
    X = frame('cancer')
    model = neuralize(fitted('cancer', covariance_type, 'pca-whiten'), X=X).head  # behind the column check
    ratio = model.ratio
    assert ratio.factor is not None
    plain = mixture_model((ratio.means + ratio.origin).numpy(), ratio.precisions.numpy(), ratio.biases.numpy(),
                          'full', beta=model.beta)
    assert plain.ratio.factor is None
    got, expected = (explain_with_constant(m, X.to_numpy(), return_logits=True) for m in (model, plain))
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-8 * max(1.0, np.abs(b).max()))
