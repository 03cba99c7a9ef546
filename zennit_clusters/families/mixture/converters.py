"""Gaussian mixtures: the posterior log-odds are exactly a soft-min (stiffness 1) of pairwise log-ratios.

For scikit-learn's ``GaussianMixture`` and ``BayesianGaussianMixture`` with every covariance type, the
component log-scores are ``s_k(x) = -1/2 (x - mu_k)^T P_k (x - mu_k) + b_k`` (``P_k`` from
``precisions_cholesky_``; ``b_k`` holds the log weight, the log-determinant and, for the Bayesian
mixture, its variational terms) and ``predict_proba`` is ``softmax(s)``. Hence (docs/method.md, section 4)

    log p(c|x) / (1 - p(c|x)) = -log sum_{k != c} exp(-h_ck),   h_ck = s_c - s_k,

two layers (:class:`.GaussianLogRatio`, :class:`.SoftMinPool`),
no approximation. The default stiffness of the relevance redistribution is 1, the model's own.
"""
import numpy as np
import torch

from ...api import resolve_beta
from ...validation import check_fitted
from .layers import COVARIANCE_TYPES, GaussianLogRatio, NeuralizedMixture, SoftMinPool

__all__ = ['convert_gaussian_mixture', 'mixture_model', 'mixture_parameters']


def mixture_parameters(estimator):
    """Means, precisions and biases of a fitted scikit-learn Gaussian mixture, in float64.

    The biases are read off the estimator's own weighted log-probabilities at the means, where the
    quadratic term vanishes: ``b_k = log pi_k N(mu_k | mu_k, Sigma_k)`` (for a Bayesian mixture, with its
    expected log weights and variational terms), so the neuralized model reproduces the estimator's
    ``predict_proba`` whatever prior it was fitted with.

    Returns
    -------
    means : ndarray (K, D)
    precisions : ndarray, (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical
    biases : ndarray (K,)
    """
    check_fitted(estimator, ('means_', 'precisions_cholesky_'))
    covariance_type = estimator.covariance_type
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f'covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}.')
    means = np.asarray(estimator.means_, dtype=np.float64)
    if means.ndim != 2:
        raise ValueError(f'means_ must be 2-d of shape (n_components, n_features), got shape {means.shape}.')
    n_components = means.shape[0]
    if n_components < 2:
        raise ValueError(f'a cluster model needs at least 2 clusters to explain, got {n_components}.')
    cholesky = np.asarray(estimator.precisions_cholesky_, dtype=np.float64)
    if covariance_type in ('full', 'tied'):
        precisions = cholesky @ np.swapaxes(cholesky, -1, -2)
        precisions = 0.5 * (precisions + np.swapaxes(precisions, -1, -2))  # symmetric to the last bit
    else:
        precisions = cholesky ** 2
    weighted_log_prob = getattr(estimator, '_estimate_weighted_log_prob', None)
    if weighted_log_prob is None:
        raise TypeError(f'{type(estimator).__name__} has no _estimate_weighted_log_prob: '
                        'this scikit-learn version is not supported.')
    with np.errstate(all='ignore'):
        biases = np.asarray(weighted_log_prob(means), dtype=np.float64).diagonal().copy()
    for name, value in (('means_', means), ('precisions_cholesky_', precisions), ('log weights', biases)):
        if not np.isfinite(value).all():
            raise ValueError(f'the mixture has non-finite {name} (a component with zero weight or a singular '
                             'covariance); it cannot be neuralized.')
    return means, precisions, biases


def mixture_model(means, precisions, biases, covariance_type, source='GaussianMixture', X=None, beta=None,
                  factor=None, factor_precisions=None):
    """The neuralized model of a Gaussian mixture given by its parameters (see :func:`mixture_parameters`);
    ``factor``, ``factor_precisions`` as for :class:`.GaussianLogRatio` (full precisions ``W^T P'_k W``)."""
    ratio = GaussianLogRatio(torch.from_numpy(np.asarray(means, dtype=np.float64)),
                             torch.from_numpy(np.asarray(precisions, dtype=np.float64)),
                             torch.from_numpy(np.asarray(biases, dtype=np.float64)), covariance_type,
                             factor=factor, factor_precisions=factor_precisions)
    model = NeuralizedMixture(ratio, SoftMinPool(ratio.valid, beta=1.0), source=source)
    model.beta = resolve_beta(model, X, beta)
    return model


def convert_gaussian_mixture(estimator, X=None, beta=None):
    """``GaussianMixture`` and ``BayesianGaussianMixture``, every covariance type.

    ``X`` does not change the default stiffness of a mixture (it is 1, the model's own soft-min); ``beta``
    sets another one.
    """
    means, precisions, biases = mixture_parameters(estimator)
    return mixture_model(means, precisions, biases, estimator.covariance_type, source=type(estimator).__name__,
                         X=X, beta=beta)
