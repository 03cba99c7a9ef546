"""Gaussian mixtures: exact log-odds, the relevance rules against slow references, the three paths.

The references here are written from the equations, independently of the library: component log-densities
from ``scipy.stats.multivariate_normal`` with the estimator's ``covariances_`` (inverted here, not read from
``precisions_cholesky_``), explicit loops over competitors and features, roots found by bracketing, and the
integrated gradient of the full-covariance rule by Gauss-Legendre quadrature instead of the midpoint rule.
"""
import functools
import math
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import NotFittedError
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky
from sklearn.preprocessing import StandardScaler
from zennit.attribution import Gradient

from zennit_clusters import (ClusterComposite, GaussianLogRatio, MixtureExplainer, NeuralizedMixture, explain,
                             explain_with_constant, make_explainer, neuralize)

COVARIANCE_TYPES = ('full', 'tied', 'diag', 'spherical')


# ------------------------------------------------------------------------------------------------------------
# data and fitted models (cached: fitting dominates the run time)
# ------------------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def dataset(name):
    loader = {'iris': load_iris, 'wine': load_wine, 'cancer': load_breast_cancer, 'digits': load_digits}[name]
    data = loader().data.astype(np.float64)
    if name == 'digits':
        return data  # raw 0..16 pixels, many of them constant
    return StandardScaler().fit_transform(data)


@functools.lru_cache(maxsize=None)
def fitted(name, covariance_type, bayesian=False, n_components=3):
    X = dataset(name)
    if bayesian:
        estimator = BayesianGaussianMixture(n_components=n_components, covariance_type=covariance_type,
                                            random_state=0, max_iter=200)
    else:
        estimator = GaussianMixture(n_components, covariance_type=covariance_type, random_state=0)
    return estimator.fit(X)


def sklearn_log_odds(estimator, X):
    """log p(c|x) / (1 - p(c|x)) from the estimator's own weighted log-probabilities (stable where p ~ 1)."""
    scores = estimator._estimate_weighted_log_prob(X)
    n_clusters = scores.shape[1]
    return np.stack([scores[:, c] - logsumexp(np.delete(scores, c, axis=1), axis=1) for c in range(n_clusters)], 1)


def logits_of(model, X):
    with torch.no_grad():
        return model(torch.as_tensor(X)).numpy()


def zennit_relevance(model, X, cluster=None, beta=None):
    x = torch.as_tensor(X).clone().requires_grad_()
    with torch.no_grad():
        logits = model(x)
    target = logits.argmax(1) if cluster is None else torch.full((len(X),), cluster)
    onehot = torch.nn.functional.one_hot(target, model.n_clusters).to(x.dtype)
    with Gradient(model, ClusterComposite(beta=beta)) as attributor:
        _, relevance = attributor(x, attr_output=lambda y: y * onehot)
    return relevance.detach().numpy()


MODELS = [(name, cov, bayes) for name in ('wine',) for cov in COVARIANCE_TYPES for bayes in (False, True)]
MODELS += [('iris', cov, False) for cov in COVARIANCE_TYPES]
MODEL_IDS = [f'{n}-{c}-{"bgmm" if b else "gmm"}' for n, c, b in MODELS]


# ------------------------------------------------------------------------------------------------------------
# the forward pass is exact
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name,covariance_type,bayesian', MODELS, ids=MODEL_IDS)
def test_logits_are_the_posterior_log_odds(name, covariance_type, bayesian):
    estimator = fitted(name, covariance_type, bayesian)
    X = dataset(name)
    model = neuralize(estimator)
    assert isinstance(model, NeuralizedMixture) and model.covariance_type == covariance_type
    logits = logits_of(model, X)
    reference = sklearn_log_odds(estimator, X)
    np.testing.assert_allclose(logits, reference, rtol=1e-10, atol=1e-10)
    # and against predict_proba itself, where p is not too close to 0 or 1 for log(p / (1 - p)) to be exact
    proba = estimator.predict_proba(X)
    usable = (proba > 1e-6) & (proba < 1 - 1e-6)
    assert usable.sum() > 10
    np.testing.assert_allclose(logits[usable], np.log(proba[usable]) - np.log1p(-proba[usable]), rtol=1e-7, atol=1e-7)
    np.testing.assert_array_equal(logits.argmax(1), estimator.predict(X))


@pytest.mark.parametrize('name,covariance_type,n_components', [
    ('cancer', 'full', 2), ('cancer', 'tied', 2), ('cancer', 'diag', 2), ('cancer', 'spherical', 2),
    ('digits', 'diag', 10), ('digits', 'spherical', 10), ('digits', 'tied', 10),
])
def test_argmax_equals_predict_on_real_data(name, covariance_type, n_components):
    estimator = fitted(name, covariance_type, n_components=n_components)
    X = dataset(name)
    relevance, labels, logits = explain(estimator, X, return_logits=True)
    np.testing.assert_array_equal(labels, estimator.predict(X))
    np.testing.assert_array_equal(logits.argmax(1), estimator.predict(X))
    # digits: pixel variances of 1e-6 give scores near 1e8; rounding is relative to a row's largest score
    row_scale = np.abs(estimator._estimate_weighted_log_prob(X)).max(1, keepdims=True)
    assert np.all(np.abs(logits - sklearn_log_odds(estimator, X)) <= 1e-9 * np.abs(logits) + 1e-13 * row_scale + 1e-10)
    if n_components == 2:
        np.testing.assert_allclose(logits[:, 0], -logits[:, 1], rtol=1e-12, atol=1e-12)  # K = 2: f_0 = h = -f_1


def test_float32_on_uncentred_data():
    """Centring keeps float32 labels right far from the origin (docs/method.md, section 1)."""
    X = dataset('wine') * 3.0 + 1000.0
    for covariance_type in COVARIANCE_TYPES:
        estimator = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
        relevance, constant, labels, logits = explain_with_constant(estimator, X.astype(np.float32),
                                                                    return_logits=True)
        assert relevance.dtype == np.float32
        assert (labels == estimator.predict(X)).mean() == 1.0, covariance_type
        np.testing.assert_allclose(logits, sklearn_log_odds(estimator, X), rtol=1e-3, atol=2e-3)
        evidence = logits[np.arange(len(X)), labels]
        np.testing.assert_allclose(relevance.sum(1) + constant, evidence, rtol=1e-3, atol=1e-3)
        reference = explain(estimator, X)
        scale = np.abs(reference).max()
        np.testing.assert_allclose(relevance, reference, atol=2e-4 * scale)


# ------------------------------------------------------------------------------------------------------------
# the relevance rules against slow references from the equations
# ------------------------------------------------------------------------------------------------------------

def covariance_matrices(estimator):
    """(K, D, D) covariance of each component from ``covariances_`` (not from the precisions)."""
    K, D = estimator.means_.shape
    cov = np.asarray(estimator.covariances_, dtype=np.float64)
    if estimator.covariance_type == 'full':
        return cov
    if estimator.covariance_type == 'tied':
        return np.repeat(cov[None], K, 0)
    if estimator.covariance_type == 'diag':
        return np.stack([np.diag(c) for c in cov])
    return np.stack([c * np.eye(D) for c in cov])


def reference_relevance(estimator, X, beta=1.0, cluster=None):
    """Slow NEON relevance (per point, per competitor, per feature) and constant, from the equations.

    Only for GaussianMixture: the component log-score is ``log w_k + log N(x | mu_k, Sigma_k)``.
    """
    means = estimator.means_
    covs = covariance_matrices(estimator)
    precs = np.linalg.inv(covs)
    log_w = np.log(estimator.weights_)
    K, D = means.shape
    cov_type = estimator.covariance_type

    def score(k, z):
        return log_w[k] + multivariate_normal(means[k], covs[k]).logpdf(z)

    def h(c, k, z):
        return score(c, z) - score(k, z)

    def grad_h(c, k, z):
        grad = np.zeros(D)
        for i in range(D):
            for j in range(D):
                grad[i] += -precs[c][i, j] * (z[j] - means[c][j]) + precs[k][i, j] * (z[j] - means[k][j])
        return grad

    nodes, weights = np.polynomial.legendre.leggauss(8)
    relevance, constant, evidence = np.zeros_like(X), np.zeros(len(X)), np.zeros(len(X))
    for n, x in enumerate(X):
        scores = np.array([score(k, x) for k in range(K)])
        c = int(np.argmax(scores)) if cluster is None else cluster
        others = [k for k in range(K) if k != c]
        hs = np.array([h(c, k, x) for k in others])
        f = -logsumexp(-hs)
        evidence[n] = f
        if math.isinf(beta):
            shares = (hs == hs.min()).astype(float)
        else:
            shares = np.exp(-beta * (hs - hs.min()))
        shares /= shares.sum()
        for k, hk, share in zip(others, hs, shares):
            a = share * f / hk
            if cov_type == 'tied':
                delta = means[c] - means[k]
                w = precs[0] @ delta
                x0 = (means[c] + means[k]) / 2 - (log_w[c] - log_w[k]) / (delta @ precs[0] @ delta) * delta
                assert abs(h(c, k, x0)) < 1e-8  # the root is on the boundary
                for i in range(D):
                    relevance[n, i] += a * w[i] * (x[i] - x0[i])
            elif cov_type in ('diag', 'spherical'):
                var_c, var_k = np.diag(covs[c]), np.diag(covs[k])
                terms = [0.5 * ((x[i] - means[k][i]) ** 2 / var_k[i] - (x[i] - means[c][i]) ** 2 / var_c[i])
                         for i in range(D)]
                rest = log_w[c] - log_w[k] + 0.5 * sum(math.log(var_k[i] / var_c[i]) for i in range(D))
                assert abs(sum(terms) + rest - hk) < 1e-8 * max(1.0, abs(hk))
                for i in range(D):
                    relevance[n, i] += a * terms[i]
                constant[n] += a * rest
            else:  # full: root on the segment between the means, integrated gradient by quadrature
                delta = means[c] - means[k]
                t = brentq(lambda t: h(c, k, means[k] + t * delta), 0.0, 1.0, xtol=1e-14, rtol=1e-14)
                x0 = means[k] + t * delta
                gradient = sum(wq / 2 * grad_h(c, k, x0 + (tq + 1) / 2 * (x - x0)) for tq, wq in zip(nodes, weights))
                for i in range(D):
                    relevance[n, i] += a * (x[i] - x0[i]) * gradient[i]
                constant[n] += a * h(c, k, x0)
    return relevance, constant, evidence


@pytest.mark.parametrize('covariance_type', COVARIANCE_TYPES)
@pytest.mark.parametrize('beta,cluster', [(1.0, None), (0.3, None), (math.inf, None), (1.0, 1)])
def test_relevance_matches_slow_reference(covariance_type, beta, cluster):
    estimator = fitted('wine', covariance_type)
    X = dataset('wine')[::12]
    relevance, constant = explain_with_constant(estimator, X, beta=beta, cluster=cluster)
    ref_relevance, ref_constant, ref_evidence = reference_relevance(estimator, X, beta=beta, cluster=cluster)
    scale = np.abs(ref_relevance).max()
    np.testing.assert_allclose(relevance, ref_relevance, rtol=1e-7, atol=1e-9 * scale)
    np.testing.assert_allclose(constant, ref_constant, rtol=1e-7, atol=1e-9 * scale)
    np.testing.assert_allclose(relevance.sum(1) + constant, ref_evidence, rtol=1e-10, atol=1e-10)
    if covariance_type in ('tied', 'full'):
        np.testing.assert_allclose(constant, 0.0, atol=1e-9)  # roots exist: no constant
    else:
        assert np.abs(constant).max() > 1e-3  # the weights and variances differ: a real constant


# ------------------------------------------------------------------------------------------------------------
# closed form, Zennit and ONNX agree; conservation
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name,covariance_type,bayesian', MODELS, ids=MODEL_IDS)
def test_zennit_equals_closed_form_and_conserves(name, covariance_type, bayesian):
    estimator = fitted(name, covariance_type, bayesian)
    X = dataset(name)
    model = neuralize(estimator)
    for beta, cluster in ((None, None), (0.5, None), (math.inf, None), (None, 2)):
        relevance, constant, labels, logits = explain_with_constant(model, X, beta=beta, cluster=cluster,
                                                                    return_logits=True)
        explained = labels if cluster is None else np.full(len(X), cluster)
        evidence = logits[np.arange(len(X)), explained]
        np.testing.assert_allclose(relevance.sum(1) + constant, evidence, rtol=1e-11, atol=1e-11)
        np.testing.assert_array_equal(relevance, explain(model, X, beta=beta, cluster=cluster))
        via_zennit = zennit_relevance(model, X, cluster=cluster, beta=beta)
        scale = np.abs(relevance).max()
        np.testing.assert_allclose(via_zennit, relevance, rtol=1e-6, atol=1e-9 * scale)
    # the rules are really in play: the plain gradient is something else
    x = torch.as_tensor(X).clone().requires_grad_()
    model(x).max(1).values.sum().backward()
    assert not np.allclose(x.grad.numpy(), relevance, atol=1e-3)


def test_onnx_graph_agrees():
    onnxruntime = pytest.importorskip('onnxruntime')
    pytest.importorskip('onnxscript')
    import warnings
    X = dataset('wine')
    for covariance_type in COVARIANCE_TYPES:
        estimator = fitted('wine', covariance_type)
        explainer = make_explainer(estimator).eval()
        x = torch.from_numpy(X)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            program = torch.onnx.export(explainer, (x[:4],), dynamo=True, opset_version=18, verbose=False,
                                        input_names=['X'], output_names=['label', 'logits', 'relevance'],
                                        dynamic_shapes={'x': {0: torch.export.Dim('batch')}})
        session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(),
                                               providers=['CPUExecutionProvider'])
        label, logits, relevance = session.run(None, {'X': X})
        ref_relevance, ref_labels, ref_logits = explain(estimator, X, return_logits=True)
        np.testing.assert_array_equal(label, estimator.predict(X))
        np.testing.assert_allclose(logits, ref_logits, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(relevance, ref_relevance, rtol=1e-9, atol=1e-10 * np.abs(ref_relevance).max())


@pytest.mark.parametrize('covariance_type', COVARIANCE_TYPES)
def test_exporter_if_present(tmp_path, covariance_type):
    """The project's ONNX exporter exports mixtures through make_explainer (and verifies them itself)."""
    onnx_exporter = pytest.importorskip('exporters.onnx')
    onnxruntime = pytest.importorskip('onnxruntime')
    if not hasattr(onnx_exporter, 'export'):
        pytest.skip('exporters.onnx has no export() yet')
    X = dataset('wine')
    estimator = fitted('wine', covariance_type)
    path = tmp_path / 'gmm.onnx'
    onnx_exporter.export(estimator, str(path), explain=True)
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {'X': X.astype(np.float32)})))
    relevance, labels, logits = explain(estimator, X, return_logits=True)
    np.testing.assert_array_equal(outputs['label'], labels)
    np.testing.assert_allclose(outputs['logits'], logits, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(outputs['relevance'], relevance, rtol=1e-3, atol=1e-3 * np.abs(relevance).max())


# ------------------------------------------------------------------------------------------------------------
# stiffness, batch independence, API
# ------------------------------------------------------------------------------------------------------------

def test_default_beta_is_one_and_never_from_data():
    estimator = fitted('wine', 'diag')
    X = dataset('wine')
    assert neuralize(estimator).beta == 1.0
    assert neuralize(estimator, X=X).beta == 1.0
    assert neuralize(estimator, beta=0.25).beta == 0.25
    model = neuralize(estimator)
    assert neuralize(model, X=X).beta == 1.0
    assert neuralize(model, beta=3.0).beta == 3.0 and model.beta == 1.0
    # one row alone is explained exactly as inside a batch
    alone = np.concatenate([explain(model, X[i:i + 1]) for i in range(0, len(X), 37)])
    np.testing.assert_allclose(alone, explain(model, X)[::37], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(explain(model, X, chunk_size=7), explain(model, X), rtol=1e-12, atol=1e-12)


def test_beta_one_shares_are_competitor_posteriors():
    """With beta = 1 each competitor's share of f_c is p(k|x) / (1 - p(c|x))."""
    estimator = fitted('wine', 'full')
    X = dataset('wine')[:20]
    proba = estimator.predict_proba(X)
    model = neuralize(estimator)
    ratio = model.ratio
    with torch.no_grad():
        h = ratio(torch.from_numpy(X))
    scores = estimator._estimate_weighted_log_prob(X)
    labels = proba.argmax(1)
    from zennit_clusters import equations as NF
    for n, c in enumerate(labels):
        shares = NF.softmin_shares(h[n, c], ratio.valid[c], 1.0).numpy()
        others = [k for k in range(3) if k != c]
        np.testing.assert_allclose(shares, np.exp(scores[n, others] - logsumexp(scores[n, others])), rtol=1e-9)
        if proba[n, c] < 1 - 1e-6:  # where 1 - p(c|x) is accurate, straight from predict_proba
            np.testing.assert_allclose(shares, proba[n, others] / (1 - proba[n, c]), rtol=1e-6)


def test_torch_in_torch_out_and_constant_method():
    estimator = fitted('iris', 'spherical')
    X = torch.from_numpy(dataset('iris'))
    relevance, constant = explain_with_constant(estimator, X)
    assert torch.is_tensor(relevance) and relevance.shape == X.shape and constant.shape == (len(X),)
    explainer = make_explainer(estimator)
    assert isinstance(explainer, MixtureExplainer)
    torch.testing.assert_close(explainer.constant(X), constant)
    label, logits, rel = explainer(X)
    torch.testing.assert_close(rel, relevance)
    # centroid models have no constant
    from sklearn.cluster import KMeans
    kmeans = KMeans(3, n_init=3, random_state=0).fit(X.numpy())
    _, constant = explain_with_constant(kmeans, X.numpy())
    assert np.all(constant == 0)


# ------------------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------------------

def test_errors():
    X = dataset('iris')
    with pytest.raises(NotFittedError):
        neuralize(GaussianMixture(3))
    with pytest.raises(NotFittedError):
        explain(BayesianGaussianMixture(n_components=3), X)
    estimator = fitted('iris', 'full')
    with pytest.raises(ValueError, match='5 features, but the model was fitted on 4'):
        explain(estimator, np.zeros((3, 5)))
    model = neuralize(estimator)
    with pytest.raises(ValueError, match='expects 4 features'):
        model(torch.zeros(3, 5, dtype=torch.float64))
    bad = X[:5].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match='NaN.*row 3'):
        explain(estimator, bad)
    with pytest.raises(ValueError, match='row 2'):
        explain_with_constant(estimator, np.where(np.arange(5)[:, None] == 2, np.inf, X[:5]))
    with pytest.raises(ValueError, match='cluster must be in'):
        explain(estimator, X, cluster=3)
    with pytest.raises(ValueError, match='beta must be >= 0'):
        explain(estimator, X, beta=-1.0)
    with pytest.raises(ValueError, match='at least 2 clusters'):
        neuralize(GaussianMixture(1).fit(X))
    with pytest.raises(ValueError, match='covariance_type must be one of'):
        GaussianLogRatio(torch.zeros(2, 2), torch.ones(2, 2), torch.zeros(2), 'banana')
    with pytest.raises(ValueError, match='needs precisions of shape'):
        GaussianLogRatio(torch.zeros(2, 3), torch.ones(2, 2), torch.zeros(2), 'diag')
    broken = GaussianMixture(2).fit(X)
    broken.weights_ = np.array([1.0, 0.0])
    with pytest.raises(ValueError, match='non-finite'):
        neuralize(broken)


# ------------------------------------------------------------------------------------------------------------
# property-based: random mixtures, K = 2, D = 1, ties, extreme weights, far points
# ------------------------------------------------------------------------------------------------------------

def make_mixture(covariance_type, means, covariances, weights):
    """A GaussianMixture with the given parameters, as if fitted."""
    estimator = GaussianMixture(len(means), covariance_type=covariance_type)
    estimator.weights_ = np.asarray(weights, dtype=np.float64)
    estimator.means_ = np.asarray(means, dtype=np.float64)
    estimator.covariances_ = np.asarray(covariances, dtype=np.float64)
    estimator.precisions_cholesky_ = _compute_precision_cholesky(estimator.covariances_, covariance_type)
    estimator.converged_, estimator.n_iter_, estimator.lower_bound_ = True, 1, 0.0
    estimator.n_features_in_ = estimator.means_.shape[1]
    return estimator


@st.composite
def mixtures(draw):
    covariance_type = draw(st.sampled_from(COVARIANCE_TYPES))
    n_clusters = draw(st.integers(2, 4))
    n_features = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    tie = draw(st.booleans())          # two identical components
    same_means = draw(st.booleans())   # components 0 and 1 share their mean (other covariances)
    skew = draw(st.sampled_from([0.0, 3.0, 12.0]))  # log-weight spread
    spread = draw(st.sampled_from([0.3, 2.0, 8.0]))  # distance between means in units of std
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=spread, size=(n_clusters, n_features))
    if covariance_type == 'full':
        A = rng.normal(size=(n_clusters, n_features, n_features))
        covariances = A @ np.swapaxes(A, 1, 2) + 0.2 * np.eye(n_features)
    elif covariance_type == 'tied':
        A = rng.normal(size=(n_features, n_features))
        covariances = A @ A.T + 0.2 * np.eye(n_features)
    elif covariance_type == 'diag':
        covariances = rng.uniform(0.2, 3.0, size=(n_clusters, n_features))
    else:
        covariances = rng.uniform(0.2, 3.0, size=n_clusters)
    weights = np.exp(rng.normal(scale=skew, size=n_clusters)) if skew else np.ones(n_clusters)
    weights = weights / weights.sum() + 1e-12
    if same_means:
        means[1] = means[0]
    if tie:
        means[1] = means[0]
        weights[1] = weights[0]
        if covariance_type != 'tied':
            covariances[1] = covariances[0]
    estimator = make_mixture(covariance_type, means, covariances, weights / weights.sum())
    n_rows = draw(st.integers(1, 12))
    far = draw(st.sampled_from([1.0, 10.0]))
    X = rng.normal(scale=far * (1 + spread), size=(n_rows, n_features))
    X[: n_rows // 3] = means[rng.integers(n_clusters, size=n_rows // 3)]  # points at the means
    return estimator, X, tie


# MIXTURE_EXAMPLES=2000 for a longer hunt
PROPERTY_SETTINGS = settings(max_examples=int(os.environ.get('MIXTURE_EXAMPLES', 60)), deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(mixtures(), st.sampled_from([None, 0.0, 1.0, 4.0, math.inf]))
def test_property_exact_and_conservative(case, beta):
    estimator, X, tie = case
    n_rows, n_features = X.shape
    n_clusters = estimator.means_.shape[0]
    model = neuralize(estimator)
    relevance, constant, labels, logits = explain_with_constant(model, X, beta=beta, return_logits=True)
    assert relevance.shape == (n_rows, n_features) and constant.shape == (n_rows,)
    assert logits.shape == (n_rows, n_clusters) and labels.shape == (n_rows,)
    assert np.isfinite(relevance).all() and np.isfinite(constant).all()

    scores = estimator._estimate_weighted_log_prob(X)
    scale = 1e-10 * (1 + np.abs(scores).max())
    np.testing.assert_allclose(logits, sklearn_log_odds(estimator, X), rtol=1e-9, atol=scale)
    top2 = np.sort(scores, 1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e3 * scale  # not a numerical tie
    np.testing.assert_array_equal(labels[clear], estimator.predict(X)[clear])
    if tie:
        # identical components get identical evidence, and predict picks the first of them
        np.testing.assert_allclose(logits[:, 0], logits[:, 1], rtol=1e-12, atol=scale)
        assert not np.any(labels == 1)
    if n_clusters == 2:
        np.testing.assert_allclose(logits[:, 0], -logits[:, 1], rtol=1e-12, atol=scale)

    evidence = logits[np.arange(n_rows), labels]
    magnitude = np.abs(relevance).sum(1) + np.abs(constant) + np.abs(evidence) + 1
    np.testing.assert_allclose(relevance.sum(1) + constant, evidence, rtol=0, atol=1e-10 * magnitude.max())
    if estimator.covariance_type == 'tied':
        # no constant where no two components share their mean, beyond what the stabiliser keeps from the
        # features, R_pair epsilon / (|h| + epsilon) (sizeable only for points within a few epsilon of a boundary)
        shared_mean = np.all(estimator.means_[:, None] == estimator.means_[None], -1) & ~np.eye(n_clusters, dtype=bool)
        if not shared_mean.any():
            with torch.no_grad():
                h = model.ratio(torch.from_numpy(X)).numpy()[np.arange(n_rows), labels]
            eps = np.finfo(np.float64).eps
            kept = np.abs(evidence) * (eps / (np.abs(h) + eps)).sum(1)
            assert np.all(np.abs(constant) <= 4 * kept + 1e-13 * magnitude.max())

    via_zennit = zennit_relevance(model, X, beta=beta)
    np.testing.assert_allclose(via_zennit, relevance, rtol=1e-6, atol=1e-9 * magnitude.max())


@PROPERTY_SETTINGS
@given(mixtures(), st.data())
def test_property_any_cluster(case, data):
    """Explaining a cluster that is not the assigned one stays conservative (f_c may be negative)."""
    estimator, X, _ = case
    n_clusters = estimator.means_.shape[0]
    cluster = data.draw(st.integers(0, n_clusters - 1))
    relevance, constant, labels, logits = explain_with_constant(estimator, X, cluster=cluster, return_logits=True)
    evidence = logits[:, cluster]
    magnitude = np.abs(relevance).sum(1) + np.abs(constant) + np.abs(evidence) + 1
    np.testing.assert_allclose(relevance.sum(1) + constant, evidence, rtol=0, atol=1e-9 * magnitude.max())


# ------------------------------------------------------------------------------------------------------------
# the full-covariance rule: reduces to the tied rule, and the branch without a root
# ------------------------------------------------------------------------------------------------------------

def test_full_rule_with_equal_covariances_is_the_tied_rule():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(3, 3))
    covariance = A @ A.T + 0.5 * np.eye(3)
    means, weights = rng.normal(scale=2.0, size=(4, 3)), np.array([0.1, 0.2, 0.3, 0.4])
    tied = make_mixture('tied', means, covariance, weights)
    full = make_mixture('full', means, np.repeat(covariance[None], 4, 0), weights)
    X = rng.normal(scale=3.0, size=(50, 3))
    for beta in (1.0, 0.2):
        r_tied, c_tied, l_tied, f_tied = explain_with_constant(tied, X, beta=beta, return_logits=True)
        r_full, c_full, l_full, f_full = explain_with_constant(full, X, beta=beta, return_logits=True)
        np.testing.assert_array_equal(l_tied, l_full)
        np.testing.assert_allclose(f_full, f_tied, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(r_full, r_tied, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(c_full, 0.0, atol=1e-10)


def test_full_rule_without_a_root_on_the_line():
    """A narrow, rare rival never wins along the line through the means: the vertex, and h(x0) as constant."""
    from scipy.optimize import minimize_scalar
    means = np.array([[0.0], [1.0]])
    estimator = make_mixture('full', means, np.array([[[1.0]], [[0.25]]]), np.array([1 - 1e-4, 1e-4]))
    model = neuralize(estimator)
    assert model.ratio.kappa[0] > 0  # pair (0, 1): no root
    X = np.linspace(-3, 3, 13)[:, None]
    relevance, constant, labels, logits = explain_with_constant(estimator, X, cluster=0, return_logits=True)
    np.testing.assert_allclose(relevance.sum(1) + constant, logits[:, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(zennit_relevance(model, X, cluster=0), relevance, rtol=1e-6, atol=1e-12)

    def h(z):
        return (multivariate_normal(0.0, 1.0).logpdf(z) + np.log(1 - 1e-4)
                - multivariate_normal(1.0, 0.25).logpdf(z) - np.log(1e-4))

    x0 = minimize_scalar(h, bracket=(0.0, 1.0), tol=1e-12).x
    assert h(x0) > 0
    nodes, weights = np.polynomial.legendre.leggauss(8)
    for x, r, c, f in zip(X[:, 0], relevance[:, 0], constant, logits[:, 0]):
        a = 1.0  # K = 2: f_0 = h, one competitor
        gradient = sum(w / 2 * (-(z - 0.0) / 1.0 + (z - 1.0) / 0.25)
                       for z, w in zip(x0 + (nodes + 1) / 2 * (x - x0), weights))
        np.testing.assert_allclose(r, a * (x - x0) * gradient, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(c, a * h(x0), rtol=1e-9)
        np.testing.assert_allclose(f, h(x), rtol=1e-10)
