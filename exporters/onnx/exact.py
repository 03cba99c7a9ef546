"""Nearest-centroid labels in exact arithmetic, for rows where an estimator's own ``predict`` rounds badly.

scikit-learn's ``KMeans.predict`` computes ``|x|^2 - 2 x.mu + |mu|^2`` without centring; on data far from the
origin at a small scale (offset 1e3, scale 1e-6 in float64) that cancels, and ``predict`` mislabels rows the
centred network labels correctly. On the rows where the two disagree, the check asks exact arithmetic: every
float64 value is an integer times a power of two, so the squared distances are computed exactly with Python
integers.
"""
import numpy as np

__all__ = ['nearest_centre_predict', 'exact_nearest']


def nearest_centre_predict(estimator):
    """The (K, D) float64 centres if ``estimator.predict`` is documented to be "the nearest centre", else None.

    Only scikit-learn's ``KMeans`` and ``MiniBatchKMeans`` whose ``predict`` is not overridden qualify
    (``BisectingKMeans.predict`` follows its tree, not the nearest centre).
    """
    try:
        from sklearn.cluster import KMeans, MiniBatchKMeans
    except ImportError:
        return None
    for kind in (KMeans, MiniBatchKMeans):
        if isinstance(estimator, kind) and type(estimator).predict is kind.predict:
            centres = getattr(estimator, 'cluster_centers_', None)
            if isinstance(centres, np.ndarray) and centres.ndim == 2:
                return centres.astype(np.float64)
    return None


def _as_integers(values, shift):
    """Finite float64 values times ``2**shift``, as exact Python integers (``shift`` large enough)."""
    mantissa, exponent = np.frexp(values)
    mantissa = (mantissa * 2.0 ** 53).astype(np.int64)  # exact: a float64 significand has 53 bits
    exponent = exponent.astype(np.int64) - 53 + shift
    out = np.empty(values.shape, dtype=object)
    flat = out.reshape(-1)
    for index, (m, e) in enumerate(zip(mantissa.reshape(-1).tolist(), exponent.reshape(-1).tolist())):
        flat[index] = m << e if e >= 0 else m >> -e  # e < 0 only for zero mantissas
    return out


def exact_nearest(x, centres):
    """For each row, the set of its nearest centres by exact squared Euclidean distance.

    Parameters
    ----------
    x : ndarray (n, D), finite float64
    centres : ndarray (K, D), finite float64

    Returns
    -------
    ndarray of bool (n, K)
        True for the centres at the smallest exact distance (several on exact ties).
    """
    x = np.asarray(x, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    values = np.concatenate([x.reshape(-1), centres.reshape(-1)])
    nonzero = values[values != 0]
    if nonzero.size == 0:
        return np.ones((len(x), len(centres)), dtype=bool)
    shift = int(53 - np.frexp(nonzero)[1].min())  # the smallest value's last bit becomes 2**0
    xi, ci = _as_integers(x, shift), _as_integers(centres, shift)
    distances = ((xi[:, None, :] - ci[None, :, :]) ** 2).sum(-1)  # exact integers (n, K)
    smallest = distances.min(1)
    return distances == smallest[:, None]
