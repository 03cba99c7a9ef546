"""The compiled k-means row step (``_row_step.c`` beside this file), and when it may run.

The torch twin of this step is :meth:`.CentroidExplainer._forward_flat`;
the explainer takes the compiled step on plain CPU tensors (:func:`zennit_clusters.compiled.usable`) when the
extension is built, and torch otherwise.
"""
import torch

from ... import compiled
from ...equations import score_weights

try:
    from . import _row_step
except ImportError:  # built without a C compiler: torch does the work
    _row_step = None

__all__ = ['available', 'instruction_set', 'flat_explain']


def available():
    """Whether the compiled row step is importable and enabled (see :func:`zennit_clusters.compiled.available`)."""
    return _row_step is not None and compiled.available()


def instruction_set(name=None):
    """The instruction set the row step runs; with a name (``'best'`` for the widest), switch to it first."""
    if _row_step is None:
        return None
    return _row_step.instruction_set() if name is None else _row_step.instruction_set(name)


def flat_explain(x, origin, centres, cluster, beta, epsilon, relative=0.0, out=None, directions=None, tables=None):
    """The closed-form explainer of a flat centroid model (k-means) in one C kernel, row by row.

    The same computation as :meth:`CentroidExplainer._forward_flat <.explainer.CentroidExplainer>` with the
    equations (scores, top-two logits, pair margins, soft-min shares, stabilised factors, midpoint relevance),
    fused so that each row of X is read once and stays in L1 from its scores to its relevance. Call only when
    :func:`available` and :func:`zennit_clusters.compiled.usable` hold for ``x``, ``origin`` and ``centres``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
    origin : torch.Tensor of shape (D,) or None
        The origin of the centred frame, subtracted from ``x``; None for none.
    centres : torch.Tensor of shape (K, D)
        Centred centroids.
    cluster : int or None
        Explain this cluster for every row; None for each row's own.
    beta : float
        Soft-min stiffness (``math.inf`` allowed).
    epsilon : float
        Absolute stabiliser of the division by a margin.
    relative : float
        Relative stabiliser: the margin ``h_k = s_c - s_k`` is divided by
        ``h_k + sign(h_k) (epsilon + relative (|s_c| + |s_k|))``.
    out : torch.Tensor of shape (N, D), optional
        Where to write the relevance.
    directions, tables : torch.Tensor of shapes (K, D) and (K, K, D), optional
        Under a metric (k-means after a whitened PCA): the directions ``a`` and :func:`.metric_tables`; the twin is
        then :meth:`CentroidExplainer._forward_metric <.explainer.CentroidExplainer>`.

    Returns
    -------
    label : torch.LongTensor of shape (N,)
    logits : torch.Tensor of shape (N, K)
    relevance : torch.Tensor of shape (N, D)
    """
    compiled.check_shapes(x, centres.shape[1], origin)
    (n, d), k = x.shape, centres.shape[0]
    if cluster is not None and not 0 <= cluster < k:
        raise ValueError(f'cluster must be in [0, {k}) or None, got {cluster}.')
    origin = compiled.zero_if_none(origin, x)
    centres = centres.contiguous()  # bound to a name: the kernel reads it after this line
    weight, bias = score_weights(centres, directions)
    if directions is None:
        squares, second, stride = (centres * centres).contiguous(), centres, 0
    else:
        if tables.shape != (k, k, d) or directions.shape != (k, d):
            raise ValueError(f'directions {tuple(directions.shape)} and tables {tuple(tables.shape)} do not fit '
                             f'{k} centres of width {d}.')
        squares, second, stride = tables.contiguous(), directions.contiguous(), k * d
    label = torch.empty(n, dtype=torch.long)
    logits = torch.empty(n, k, dtype=x.dtype)
    relevance = compiled.output_target(out, (n, d), x)
    _row_step.flat_explain(x.dtype == torch.float64, x.data_ptr(), origin.data_ptr(), weight.data_ptr(),
                          bias.data_ptr(), squares.data_ptr(), second.data_ptr(), stride,
                          -1 if cluster is None else int(cluster), float(beta), float(epsilon), float(relative),
                          label.data_ptr(),
                          logits.data_ptr(), relevance.data_ptr(), n, d, k, torch.get_num_threads())
    return label, logits, compiled.deliver(out, relevance)
