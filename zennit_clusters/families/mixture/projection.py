"""A Gaussian mixture fitted on projected data, rewritten exactly as a mixture in the projection's input space.

A pipeline ``... -> PCA(d[, whiten]) or TruncatedSVD(d) -> GaussianMixture`` fits the mixture on
``z = W (u - m)``, with ``W = C`` (orthonormal rows) without whitening and ``W = diag(1 / sqrt(ev)) C`` with it.
A component ``N(mu_k, S_k)`` in z scores

    s_k(z) = -1/2 (z - mu_k)^T P_k (z - mu_k) + b_k,          P_k = S_k^-1,

and with ``z - mu_k = W (u - a_k)`` for any pre-image ``a_k`` of ``mu_k`` (``W (a_k - m) = mu_k``):

    s_k(u) = -1/2 (u - a_k)^T Q_k (u - a_k) + b_k,            Q_k = W^T P_k W,

exactly, with the same constant ``b_k`` (log weight, the z-space log-determinant, a Bayesian mixture's
variational terms). ``Q_k`` is positive semi-definite of rank d < D: the scores are constant along the null
space of W, and nothing in the mixture layers needs an inverse, a Cholesky factor or a log-determinant of it
(the layers take precisions and constants as given). The log-ratios ``h_ck = s_c - s_k`` are therefore the
same functions of u as of z, and so are the posterior log-odds, the labels and the evidence.

- tied in z stays tied in u (one shared ``Q``): the log-ratios are linear in u, the root-point rule applies;
- full, diag and spherical in z become full in u (``W^T diag(p_k) W`` is not diagonal): the full rule, the
  exact integrated gradient from a root on the line through the two lifted means, applies.

The pre-image is the minimum-norm one, ``a_k = m + W^+ mu_k``, i.e. the transformer's ``inverse_transform`` of
the mean (for PCA ``m + C^T mu_k``, whitened ``m + C^T diag(sqrt(ev)) mu_k``): the lifted means lie in the
affine row space, so the roots (on the lines between lifted means) lie there too. The choice does not change
any log-ratio (``Q_k`` annihilates the null space), only where the rules start from.

When W has full row rank (always for PCA and TruncatedSVD components) a pre-image exists; if it did not (a
rank-deficient W and a mean off its range), the pulled-back score would gain a linear term no Gaussian in u
has, and :func:`project_mixture` refuses.
"""
import numpy as np

from .converters import mixture_model
from .layers import NeuralizedMixture

__all__ = ['project_mixture', 'projected_parameters', 'PREIMAGE_TOLERANCE']

#: the largest relative residual |W (a_k - m) - mu_k| / (1 + |mu_k|) of the lifted means that is accepted
PREIMAGE_TOLERANCE = 1e-8


def projected_parameters(means, precisions, covariance_type, matrix, mean):
    """The means, precisions and covariance type in u of a mixture given in ``z = W (u - mean)``.

    Parameters
    ----------
    means : ndarray of shape (K, d)
        Component means in z.
    precisions : ndarray
        (K, d, d) full, (d, d) tied, (K, d) diag or spherical (a spherical precision expanded to a diagonal).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    matrix : ndarray of shape (d, D)
        ``W``.
    mean : ndarray of shape (D,)
        ``m``.

    Returns
    -------
    lifted_means : ndarray of shape (K, D)
        ``m + W^+ mu_k``.
    lifted_precisions : ndarray
        ``W^T P_k W``: (D, D) for tied, else (K, D, D).
    lifted_type : {'tied', 'full'}
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    precisions = np.asarray(precisions, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != means.shape[1] or mean.shape != (matrix.shape[1],):
        raise ValueError(f'the projection maps {mean.shape} inputs with a matrix of shape {matrix.shape}, but the '
                         f'mixture has {means.shape[1]} features: W must be (n_features of the mixture, D) and '
                         'the mean (D,).')
    # minimum-norm pre-images by least squares (SVD): exact for every full-row-rank W, whitened or not
    offsets = np.linalg.lstsq(matrix, means.T, rcond=None)[0].T
    residual = np.abs(offsets @ matrix.T - means).max(1) / (1.0 + np.abs(means).max(1))
    if not (residual <= PREIMAGE_TOLERANCE).all():
        bad = np.flatnonzero(~(residual <= PREIMAGE_TOLERANCE)).tolist()
        raise ValueError(f'the projection matrix W has rank {np.linalg.matrix_rank(matrix)} < {matrix.shape[0]} '
                         f'and the means of component(s) {bad} are not in its range (relative residual '
                         f'{residual.max():.1e}): the pulled-back scores have a linear term no Gaussian in the '
                         'input space has, so the mixture cannot be rewritten there exactly.')
    if covariance_type == 'tied':
        lifted = matrix.T @ precisions @ matrix
    elif covariance_type == 'full':
        lifted = np.einsum('ai,kab,bj->kij', matrix, precisions, matrix, optimize=True)
    elif covariance_type in ('diag', 'spherical'):
        lifted = np.einsum('ai,ka,aj->kij', matrix, precisions, matrix, optimize=True)
    else:
        raise ValueError(f"covariance_type must be one of 'full', 'tied', 'diag', 'spherical', got "
                         f'{covariance_type!r}.')
    lifted = 0.5 * (lifted + np.swapaxes(lifted, -1, -2))  # symmetric to the last bit
    return mean + offsets, lifted, 'tied' if covariance_type == 'tied' else 'full'


def project_mixture(head, matrix, mean, source=None):
    """The neuralized mixture ``head`` (fitted on ``z = W (u - mean)``) as the same mixture in u.

    The returned :class:`.NeuralizedMixture` computes the same posterior log-odds (see the module docstring),
    keeps the head's stiffness and constants, and is explained by the mixture family's own rules: tied stays
    tied, every other covariance type becomes full.

    Parameters
    ----------
    head : NeuralizedMixture
    matrix : ndarray of shape (d, D)
        ``W`` (``Projection.factor``).
    mean : ndarray of shape (D,)
    source : str, optional
        The name to give the model; default the head's.
    """
    if not isinstance(head, NeuralizedMixture):
        raise TypeError(f'project_mixture takes a neuralized Gaussian mixture, got {type(head).__name__}.')
    ratio = head.ratio
    means = (ratio.means + ratio.origin).numpy()
    precisions = ratio.precisions.numpy()
    lifted_means, lifted_precisions, lifted_type = projected_parameters(
        means, precisions, ratio.covariance_type, matrix, mean)
    factor = factor_precisions = None
    if lifted_type == 'full':  # P_k u computed as W^T (P_k (W u)): K d D per row instead of K D^2
        factor = np.asarray(matrix, dtype=np.float64)
        factor_precisions = precisions if precisions.ndim == 3 else np.stack([np.diag(p) for p in precisions])
    return mixture_model(lifted_means, lifted_precisions, ratio.biases.numpy(), lifted_type,
                         source=head.source if source is None else source, beta=head.beta,
                         factor=factor, factor_precisions=factor_precisions)
