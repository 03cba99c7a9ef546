"""explain() on dask arrays and DataFrames: lazy collections of the same kind, one block (partition) at a time.

Each block is explained by :func:`zennit_clusters.explain` itself (the compiled row step for k-means, bounded
memory within the block), so that the results equal ``explain()`` on the same rows. The neuralized model enters
the task graph once, as one node that every block's task depends on: a distributed scheduler sends it to each
worker once, not once per block.
"""
import numpy as np
import torch

from ...api import beta_of_total, evidence_total, explain, neuralize
from ...core import full_name
from ...validation import check_dask_array, check_dask_frame, check_finite_values

__all__ = ['explain_array', 'explain_frame', 'dask_beta', 'is_dask_collection', 'ARRAY_TYPE', 'FRAME_TYPE']

ARRAY_TYPE = 'dask.array.core.Array'
FRAME_TYPE = 'dask.dataframe.dask_expr._collection.DataFrame'

#: names of the logit and label columns of a DataFrame's explanation (``return_logits=True``)
LABEL_COLUMN = 'label'


def is_dask_collection(X):
    """Whether X is a dask array or DataFrame (by type name: no import of dask)."""
    return any(full_name(kind) in (ARRAY_TYPE, FRAME_TYPE) for kind in type(X).__mro__)


def _model_node(model):
    """The model as one node of the task graph (shipped once per worker, never embedded in every task)."""
    import dask
    return dask.delayed(model, pure=True, traverse=False)


def _refuse_out(out):
    if out is not None:
        raise TypeError('out= is not supported for dask input: the result is a lazy dask collection. Store it '
                        'with dask.array.store(relevance, target) or relevance.to_zarr(...) instead.')


def _explain_rows(x, model, options, with_logits, offset, where):
    """explain() on one block's rows (float numpy), NaN and infinity refused naming the row of the whole X."""
    check_finite_values(torch.from_numpy(x), 'X', offset=offset) if where is None else _check_frame_rows(x, where)
    if not with_logits:
        return explain(model, x, **options)
    return explain(model, x, return_logits=True, **options)


def _check_frame_rows(x, index):
    finite = np.isfinite(x).all(1)
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        what = 'NaN' if np.isnan(x[first]).any() else 'infinity'
        raise ValueError(f'X contains {what} (first in the row with index {index[first]!r}); NEON needs finite '
                         'input.')


def _array_block(block, model, dtype, options, with_logits, block_info=None):
    offset = block_info[0]['array-location'][0][0] if block_info else 0
    x = np.ascontiguousarray(block, dtype=dtype)
    result = _explain_rows(x, model, options, with_logits, offset, None)
    if not with_logits:
        return result
    relevance, labels, logits = result
    # one block holds all three (labels are small integers, exact in float): computed once, sliced lazily
    return np.concatenate([relevance, logits, labels[:, None].astype(dtype)], axis=1)


def explain_array(model, X, cluster=None, beta=None, chunk_size=None, epsilon=None, return_logits=False, out=None):
    """:func:`~zennit_clusters.explain` on a dask array: a lazy dask array of relevance, block by block.

    Parameters
    ----------
    model : anything :func:`~zennit_clusters.neuralize` accepts
    X : dask.array.Array of shape (n_samples, n_features)
        Chunked along rows only (each row in one block: ``X.rechunk({1: -1})`` otherwise). float32 and float64
        are kept; integers are computed in float64.
    cluster, beta, chunk_size, epsilon
        As for :func:`~zennit_clusters.explain`, applied within each block.
    return_logits : bool
        Also return the labels (int64, (n_samples,)) and the logits ((n_samples, n_clusters)), lazily too; computed
        together (``dask.compute(relevance, labels, logits)``) the blocks are explained once.
    out : None
        Not supported (the result is lazy); store it with ``dask.array.store``.

    Returns
    -------
    relevance : dask.array.Array of shape (n_samples, n_features), same row chunks as X
    labels, logits : dask arrays, only with ``return_logits``

    Raises
    ------
    ValueError
        At once for a wrong width or chunks along the features; when computed, for a block with NaN or infinity
        (naming the first such row of X).
    """
    model, dtype, options, node = _prepare(model, X, check_dask_array, out, cluster=cluster, beta=beta,
                                           chunk_size=chunk_size, epsilon=epsilon)
    n_features, n_clusters = model.n_features_in_, model.n_clusters
    width = n_features + (n_clusters + 1 if return_logits else 0)
    result = X.map_blocks(_array_block, node, dtype, options, return_logits, chunks=(X.chunks[0], (width,)),
                          dtype=dtype, meta=np.empty((0, width), dtype=dtype), name='zennit-explain')
    if not return_logits:
        return result
    relevance = result[:, :n_features]
    logits = result[:, n_features:n_features + n_clusters]
    labels = result[:, -1].astype(np.int64)
    return relevance, labels, logits


def _prepare(model, X, check, out, **options):
    """What both collections need before the graph is built: the neuralized model, X's checked dtype, the
    options (their errors raised now, not when a block is computed) and the model as one graph node."""
    _refuse_out(out)
    model = neuralize(model)
    dtype = check(X, model.n_features_in_)
    _check_options(model, options)
    return model, dtype, options, _model_node(model)


def _check_options(model, options):
    """The options' errors at once, not when a block is computed: explain() on one row of the model's centre."""
    explain(model, model.cluster_centers[:1].numpy(), **options)


def _logit_columns(n_clusters):
    return [f'logit_{k}' for k in range(n_clusters)]


def _frame_partition(part, model, dtype, options, with_logits, columns):
    import pandas as pd
    x = np.ascontiguousarray(part.to_numpy(dtype=dtype, na_value=np.nan))  # pd.NA as NaN: refused by row
    result = _explain_rows(x, model, options, with_logits, 0, part.index)
    if not with_logits:
        return pd.DataFrame(result, index=part.index, columns=part.columns)
    relevance, labels, logits = result
    frame = pd.DataFrame(np.concatenate([relevance, logits], axis=1), index=part.index, columns=columns[:-1])
    frame[columns[-1]] = labels
    return frame


def explain_frame(model, X, cluster=None, beta=None, chunk_size=None, epsilon=None, return_logits=False, out=None):
    """:func:`~zennit_clusters.explain` on a dask DataFrame whose columns are the features, in order.

    Returns a lazy dask DataFrame of relevance with X's columns, index and partitions; with ``return_logits`` also
    a lazy Series of labels (int64, named ``'label'``) and a DataFrame of logits (columns ``logit_0`` ...).
    Options as for :func:`explain_array`. A row with NaN or infinity is refused when computed, naming its index.
    """
    import pandas as pd
    model, dtype, options, node = _prepare(model, X, check_dask_frame, out, cluster=cluster, beta=beta,
                                           chunk_size=chunk_size, epsilon=epsilon)
    n_features, n_clusters = model.n_features_in_, model.n_clusters
    names = list(X.columns)
    index = X._meta.index
    if not return_logits:
        meta = pd.DataFrame({name: np.empty(0, dtype=dtype) for name in names}, index=index)
        meta.columns = X.columns
        return X.map_partitions(_frame_partition, node, dtype, options, False, None, meta=meta)
    # internal column names for the combined frame (a feature may be called 'label'), renamed on selection
    internal = [f'__relevance_{j}' for j in range(n_features)] + _logit_columns(n_clusters) + ['__label']
    meta = pd.DataFrame({name: np.empty(0, dtype=dtype) for name in internal[:-1]}, index=index)
    meta['__label'] = np.empty(0, dtype=np.int64)
    combined = X.map_partitions(_frame_partition, node, dtype, options, True, internal, meta=meta)
    relevance = combined[internal[:n_features]].rename(columns=dict(zip(internal[:n_features], names)))
    logits = combined[_logit_columns(n_clusters)]
    labels = combined['__label'].rename(LABEL_COLUMN)
    return relevance, labels, logits


def _block_total(x, model, offset, index=None):
    x = np.ascontiguousarray(x)
    x = x.astype(np.float64) if x.dtype.kind != 'f' else x
    if index is None:
        check_finite_values(torch.from_numpy(x), 'X (training data)', offset=offset)
    else:
        _check_frame_rows(x, index)
    return evidence_total(model, torch.from_numpy(x), 'X (training data)')


def _frame_total(part, model):
    return _block_total(part.to_numpy(), model, 0, part.index)


def dask_beta(model, X):
    """The default stiffness ``1 / mean f_c`` over a dask array or DataFrame of training data, one block at a
    time (a running sum per block, summed at the end; nothing of X's size is gathered)."""
    import dask
    node = _model_node(model)
    if full_name(type(X)) == FRAME_TYPE or hasattr(X, 'columns'):
        check_dask_frame(X, model.n_features_in_, 'X (training data)')
        parts = [dask.delayed(_frame_total)(part, node) for part in X.to_delayed()]
    else:
        check_dask_array(X, model.n_features_in_, 'X (training data)')
        offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]])
        parts = [dask.delayed(_block_total)(block, node, int(offset))
                 for block, offset in zip(X.to_delayed().ravel(), offsets)]
    totals = dask.compute(*parts)
    return beta_of_total(sum(total for total, _ in totals), sum(count for _, count in totals))
