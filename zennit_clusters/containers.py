"""Checks of data that is not a dense array: scipy sparse matrices and dask collections (their explanation runs
through the families' data adapters). Re-exported by :mod:`zennit_clusters.validation`."""
import numpy as np

__all__ = ['check_sparse_input', 'check_dask_array', 'check_dask_frame']


def _explained_dtype(*args):
    from .validation import _explained_dtype as explained  # validation re-exports this module: imported late
    return explained(*args)


def check_dask_array(X, n_features, name='X'):
    """The float dtype a dask array's blocks are explained in; a clear error for what cannot be explained block by
    block: not 2-d, an unknown or wrong width, chunks along the features, values that are not real numbers."""
    if X.ndim != 2:
        raise ValueError(f'{name} must be a 2-d dask array of shape (n_samples, {n_features}), got {X.ndim}-d of '
                         f'shape {X.shape}.')
    if X.shape[1] != X.shape[1] or X.shape[1] != n_features:  # NaN: width unknown
        raise ValueError(f'{name} has {X.shape[1]} features, but the model was fitted on {n_features} features.')
    if X.numblocks[1] != 1:
        raise ValueError(f'{name} is chunked along its features (column chunks {X.chunks[1]}): each row must lie in '
                         f'one block. Rechunk it with X.rechunk({{1: -1}}).')
    return _explained_dtype(np.dtype(X.dtype), name)


def check_dask_frame(X, n_features, name='X'):
    """The float dtype a dask DataFrame's partitions are explained in: one numeric column per feature."""
    columns = list(X.columns)
    if len(columns) != n_features:
        raise ValueError(f'{name} has {len(columns)} columns, but the model was fitted on {n_features} features '
                         '(the columns are the features, in order: select them first, X[feature_names]).')
    bad = [f'{column!r} ({dtype})' for column, dtype in X.dtypes.items()
           if not isinstance(dtype, np.dtype) or dtype.kind not in 'biuf']
    if bad:
        raise TypeError(f'{name} must hold real numbers in every column; got {", ".join(bad)}.')
    return _explained_dtype(np.result_type(*X.dtypes), name)


def check_sparse_input(X, n_features, name='X'):
    """A scipy sparse matrix or array of shape (n_samples, n_features) as canonical float64 CSR.

    Canonical: sorted column indices and no duplicate entries (duplicates are summed, as scipy does in every
    arithmetic operation); explicit zeros are kept, so that the pattern of the result is that of X. float32 and
    integer (and boolean) data are converted to float64; anything else is refused.

    Returns
    -------
    csr : scipy.sparse.csr_matrix
        float64, canonical; it shares X's arrays where X was all of that already (treat it as read-only).
    """
    import scipy.sparse
    if not scipy.sparse.issparse(X):
        raise TypeError(f'{name} must be a scipy sparse matrix or array, got {type(X).__name__}.')
    if X.ndim != 2:
        raise ValueError(f'{name} must be 2-d of shape (n_samples, {n_features}), got shape {X.shape}.')
    dtype = np.dtype(X.dtype)
    if not (dtype.kind in 'fiub') or dtype.kind == 'f' and dtype.itemsize > 8:
        raise TypeError(f'{name} must hold real numbers (float32, float64, integers or booleans), got sparse dtype '
                        f'{dtype}.')
    if X.shape[1] != n_features:
        raise ValueError(f'{name} has {X.shape[1]} features, but the model expects {n_features}.')
    if X.shape[0] == 0:
        raise ValueError(f'{name} has 0 samples; at least 1 is required.')
    csr = scipy.sparse.csr_matrix(X, dtype=np.float64)  # shares X's arrays where X is float64 CSR already
    if not csr.has_canonical_format:
        csr = csr.copy()  # never sort or sum the caller's own arrays
        csr.sum_duplicates()  # also sorts the indices
    finite = np.isfinite(csr.data)
    if not finite.all():
        entry = int(np.flatnonzero(~finite)[0])
        row = int(np.searchsorted(csr.indptr, entry, side='right') - 1)
        what = 'NaN' if np.isnan(csr.data[entry]) else 'infinity'
        raise ValueError(f'{name} contains {what} (first in row {row}); NEON needs finite input.')
    return csr
