"""Input validation at the library's boundary: clear errors naming what was expected and what came."""
import math
import numbers

import numpy as np
import torch

__all__ = ['as_feature_tensor', 'check_finite_rows', 'check_cluster', 'check_n_features', 'check_beta', 'check_gamma']


def check_n_features(x, n_features, name='X'):
    """Raise ValueError unless ``x`` has shape (n_samples, n_features) with n_samples >= 1."""
    if x.ndim != 2:
        raise ValueError(
            f'{name} must be 2-d of shape (n_samples, {n_features}), got {x.ndim}-d of shape {tuple(x.shape)}. '
            'Reshape a single sample with x.reshape(1, -1).'
        )
    if x.shape[1] != n_features:
        raise ValueError(
            f'{name} has {x.shape[1]} features, but the model was fitted on {n_features} features.'
        )
    if x.shape[0] == 0:
        raise ValueError(f'{name} has 0 samples; at least 1 is required.')


def as_feature_tensor(X, n_features, name='X'):
    """Turn array-like input into a floating-point torch tensor without copying where possible.

    Parameters
    ----------
    X : numpy.ndarray, torch.Tensor, or array-like of shape (n_samples, n_features)
    n_features : int
        The number of features the model expects.
    name : str
        How to call the input in error messages.

    Returns
    -------
    tensor : torch.Tensor
        float32 and float64 are kept; integer and boolean input becomes float64.
    from_numpy : bool
        Whether the caller should get numpy back.
    """
    if torch.is_tensor(X):
        tensor, from_numpy = X.detach(), False
        if tensor.is_complex():
            raise TypeError(f'{name} must be real-valued, got dtype {tensor.dtype}.')
        if not tensor.is_floating_point() or tensor.dtype in (torch.float16, torch.bfloat16):
            tensor = tensor.to(torch.float64 if not tensor.is_floating_point() else torch.float32)
    else:
        if hasattr(X, 'toarray') and hasattr(X, 'nnz'):
            raise TypeError(f'{name} must be a dense array; got a sparse matrix ({type(X).__name__}). '
                            'Call X.toarray() first.')
        try:
            array = np.asarray(X)
        except (TypeError, ValueError) as error:
            raise TypeError(f'{name} must be array-like of numbers, got {type(X).__name__}: {error}') from None
        if array.dtype.kind in 'biu':
            array = array.astype(np.float64)
        elif array.dtype.kind != 'f':
            raise TypeError(f'{name} must hold real numbers, got an array of dtype {array.dtype}.')
        elif array.dtype == np.float16:
            array = array.astype(np.float32)
        array = np.ascontiguousarray(array)
        if not array.flags.writeable:  # torch.from_numpy warns on read-only memory
            array = array.copy()
        tensor, from_numpy = torch.from_numpy(array), True
    check_n_features(tensor, n_features, name)
    return tensor, from_numpy


def check_finite_rows(x, values, name='X', offset=0, finite=None):
    """Raise ValueError if ``values`` (derived from ``x`` row by row) is not finite, naming the first bad row.

    Checking a small derived array (the (N, K) logits) is cheaper than checking X itself, and any NaN or
    infinity in a row of X makes that row's scores non-finite. ``offset`` is added to reported row numbers
    (for chunks of a larger X). ``finite``, a boolean per row, says which rows are finite where that is
    known already (the explainers label the others -1).
    """
    if finite is None:
        finite = torch.isfinite(values).reshape(values.shape[0], -1).all(1)
    if not bool(finite.all()):
        row = int((~finite).nonzero()[0, 0])
        bad = x[row][~torch.isfinite(x[row])]
        row += offset
        what = 'NaN' if bool(torch.isnan(bad).any()) else 'infinity'
        if bad.numel() == 0:
            raise ValueError(f'{name} row {row} overflows the model\'s arithmetic (values too large).')
        raise ValueError(f'{name} contains {what} (first in row {row}); NEON needs finite input.')


def check_cluster(cluster, n_clusters):
    """Validate a cluster index: an integer in [0, n_clusters), or None for each point's own cluster."""
    if cluster is None:
        return None
    if isinstance(cluster, bool) or not isinstance(cluster, (numbers.Integral, np.integer)):
        if not (torch.is_tensor(cluster) and cluster.numel() == 1 and not cluster.is_floating_point()):
            raise TypeError(f'cluster must be an int in [0, {n_clusters}) or None, got {type(cluster).__name__}.')
    cluster = int(cluster)
    if not 0 <= cluster < n_clusters:
        raise ValueError(f'cluster must be in [0, {n_clusters}) for a model with {n_clusters} clusters, got {cluster}.')
    return cluster


def check_beta(beta, allow_none=True):
    """Validate a soft-min stiffness: a float >= 0 (``math.inf`` allowed), or None where allowed."""
    if beta is None:
        if allow_none:
            return None
        raise TypeError('beta must be a float >= 0 (or math.inf), got None.')
    if isinstance(beta, (bool, str, bytes)):
        raise TypeError(f'beta must be a float >= 0 (or math.inf), got {type(beta).__name__} {beta!r}.')
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        raise TypeError(f'beta must be a float >= 0 (or math.inf), got {type(beta).__name__}.') from None
    if math.isnan(beta) or beta < 0:
        raise ValueError(f'beta must be >= 0 (or math.inf for nearest-competitor only), got {beta}.')
    return beta


def check_gamma(gamma):
    """Validate the stiffness of the log-mean-exp pools (the Gaussian kernel's gamma): a finite float > 0."""
    if isinstance(gamma, (bool, str, bytes)) or gamma is None:
        raise TypeError(f'gamma must be a finite float > 0, got {type(gamma).__name__} {gamma!r}.')
    try:
        gamma = float(gamma)
    except (TypeError, ValueError):
        raise TypeError(f'gamma must be a finite float > 0, got {type(gamma).__name__}.') from None
    if not math.isfinite(gamma) or gamma <= 0:
        raise ValueError(f'gamma must be a finite float > 0, got {gamma}.')
    return gamma
