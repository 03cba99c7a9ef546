"""The two O(N K D) operations of the closed-form explainer, fused on the CPU when the C kernels are built.

:func:`centred_linear` and :func:`centred_addcmul` are plain tensor operations; the NEON equations that
use them live in :mod:`zennit_clusters.functional`. Each has a torch expression, which runs on every
device, under autograd and while torch traces a graph (the ONNX export), and a C kernel
(``zennit_clusters/_kernels.c``) that fuses the centring into the product and writes its result once.
On CPU the kernels are several times faster than the torch expression for K ~ 10 clusters: matrix
libraries handle an inner or outer dimension of 10 poorly, and the torch expression materialises the
centred X and two (N, D) products. Both give the same values up to rounding (the tests compare them).

The kernels are used when the C extension imported, the tensors are plain CPU tensors of one dtype
(float32 or float64) and nothing needs their gradient; otherwise the torch expression runs. Set the
environment variable ``ZENNIT_CLUSTERS_NO_KERNELS=1`` to always use torch.
"""
import os

import torch
import torch.nn.functional as F

try:
    from . import _kernels
except ImportError:  # built without a C compiler: torch does the work
    _kernels = None

__all__ = ['centred_linear', 'centred_addcmul', 'defer_centring', 'flat_centroid_explain', 'kernels_available',
           'usable']


def kernels_available():
    """Whether the compiled CPU kernels are importable and enabled."""
    return _kernels is not None and os.environ.get('ZENNIT_CLUSTERS_NO_KERNELS', '') in ('', '0')


def _is_transformed(tensor):
    """Tensors whose memory is not what their values say: inside vmap or functorch transforms (no storage
    of their own), or lazily negated or conjugated views."""
    wrapped = getattr(torch._C, '_functorch', None)
    if wrapped is not None and wrapped.is_functorch_wrapped_tensor(tensor):
        return True
    return tensor.is_neg() or tensor.is_conj()


def usable(*tensors):
    """Whether the C kernels can take these tensors (None entries, absent optional operands, are skipped):
    plain, contiguous CPU float32/float64 tensors of one dtype with storage of their own, outside autograd
    and graph tracing (fake and functional tensors are subclasses)."""
    if not kernels_available() or torch.jit.is_tracing():
        return False
    tensors = [t for t in tensors if t is not None]
    dtype = tensors[0].dtype
    if dtype not in (torch.float32, torch.float64):
        return False
    grad = torch.is_grad_enabled()
    return all(
        type(t) is torch.Tensor and t.device.type == 'cpu' and t.dtype == dtype and t.is_contiguous()
        and not (grad and t.requires_grad) and not _is_transformed(t)
        for t in tensors
    )


def _check_shapes(x, width, centre):
    """Raise ValueError unless x is (N, width) and centre (if any) is (width,): the kernels trust both."""
    if x.dim() != 2 or x.shape[1] != width:
        raise ValueError(f'x must be 2-d with {width} features, got shape {tuple(x.shape)}.')
    if centre is not None and tuple(centre.shape) != (width,):
        raise ValueError(f'centre must have shape ({width},), got {tuple(centre.shape)}.')


def defer_centring(x, centre):
    """``(x, centre)`` when the kernels will centre ``x`` on the fly, else ``(x - centre, None)``: centred once,
    for every later product (and as one node in an exported graph). A centre of None is no centring."""
    if centre is None or usable(x, centre):
        return x, centre
    return x - centre, None


def _fits(out, shape, like):
    """Whether ``out`` can receive a result of ``shape`` directly (else the result is copied into it)."""
    return (out is not None and type(out) is torch.Tensor and out.shape == shape and out.dtype == like.dtype
            and out.device == like.device and out.is_contiguous() and not out.requires_grad)


def _kernel_target(out, shape, like):
    """Where a kernel writes a result of ``shape``: ``out`` itself if it fits, else a new tensor."""
    return out if _fits(out, shape, like) else torch.empty(shape, dtype=like.dtype)


def _deliver(out, result):
    """The result as the caller asked for it: in ``out`` (copied there if the kernel could not write it)."""
    return result if out is None or result is out else out.copy_(result)


def _zero_if_none(centre, x):
    """The kernels always subtract a centre; no centre is a zero one."""
    return torch.zeros(x.shape[1], dtype=x.dtype, device=x.device) if centre is None else centre


def centred_linear(x, centre, weight, bias):
    """``F.linear(x - centre, weight, bias)`` without materialising ``x - centre``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
    centre : torch.Tensor of shape (D,) or None
        Subtracted from every row of ``x`` first; None for no centring.
    weight : torch.Tensor of shape (M, D)
    bias : torch.Tensor of shape (M,)

    Returns
    -------
    torch.Tensor of shape (N, M)
    """
    # F.linear, not x @ W: a one-row matmul can stall on two busy cores, and cdist does not export.
    if centre is None:
        return F.linear(x, weight, bias)
    weight, bias = weight.contiguous(), bias.contiguous()
    if not usable(x, centre, weight, bias):
        return F.linear(x - centre, weight, bias)
    _check_shapes(x, weight.shape[1], centre)
    (n, d), m = x.shape, weight.shape[0]
    if tuple(bias.shape) != (m,):
        raise ValueError(f'bias must have shape ({m},), got {tuple(bias.shape)}.')
    out = torch.empty(n, m, dtype=x.dtype)
    _kernels.centred_linear(x.dtype == torch.float64, x.data_ptr(), centre.data_ptr(), weight.data_ptr(),
                            bias.data_ptr(), out.data_ptr(), n, d, m, torch.get_num_threads())
    return out


def centred_addcmul(weights, first, second, x, centre=None, value=1.0, out=None):
    """``weights @ first + value * (x - centre) * (weights @ second)``, fused.

    Parameters
    ----------
    weights : torch.Tensor of shape (N, M)
    first, second : torch.Tensor of shape (M, D)
    x : torch.Tensor of shape (N, D)
    centre : torch.Tensor of shape (D,) or None
        Subtracted from every row of ``x``; None for no centring.
    value : float
    out : torch.Tensor of shape (N, D), optional
        Where to write the result.

    Returns
    -------
    torch.Tensor of shape (N, D)
        ``out`` when given.
    """
    (n, d), m = x.shape, weights.shape[1]
    first, second, weights = first.contiguous(), second.contiguous(), weights.contiguous()
    if not usable(x, centre, weights, first, second):
        if centre is not None:
            x = x - centre
        # F.linear on contiguous (D, M) operands runs MKL's fast path for a small inner dimension M
        # (3-6x faster than weights @ first); value goes into the small (M, D) operand, which saves an
        # (N, D) multiplication in an exported graph; addcmul fuses the multiply-add into one (N, D) pass.
        products = F.linear(weights, first.t().contiguous()), F.linear(weights, (value * second).t().contiguous())
        if out is None:
            return torch.addcmul(*products, x)
        if _fits(out, (n, d), x):
            return torch.addcmul(*products, x, out=out)
        return out.copy_(torch.addcmul(*products, x))
    _check_shapes(x, first.shape[1], centre)
    if weights.shape[0] != n or first.shape != second.shape or first.shape[0] != m:
        raise ValueError(f'weights {tuple(weights.shape)}, first {tuple(first.shape)} and second '
                         f'{tuple(second.shape)} do not fit x of shape {tuple(x.shape)}.')
    centre = _zero_if_none(centre, x)
    target = _kernel_target(out, (n, d), x)
    _kernels.centred_addcmul(x.dtype == torch.float64, x.data_ptr(), centre.data_ptr(), weights.data_ptr(),
                             first.data_ptr(), second.data_ptr(), float(value), target.data_ptr(), n, d, m,
                             torch.get_num_threads())
    return _deliver(out, target)


def flat_centroid_explain(x, centre, centres, cluster, beta, epsilon, out=None):
    """The closed-form explainer of a flat centroid model (k-means) in one C kernel, row by row.

    The same computation as :class:`zennit_clusters.explain.CentroidExplainer` with the functions of
    :mod:`zennit_clusters.functional` (scores, top-two logits, pair margins, soft-min shares, stabilised
    factors, midpoint relevance), fused so that each row of X is read once and stays in L1 from its scores
    to its relevance. Call only when :func:`usable` holds for ``x``, ``centre`` and ``centres``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
    centre : torch.Tensor of shape (D,) or None
        The centre of the frame, subtracted from ``x``; None for none.
    centres : torch.Tensor of shape (K, D)
        Centred centroids.
    cluster : int or None
        Explain this cluster for every row; None for each row's own.
    beta : float
        Soft-min stiffness (``math.inf`` allowed).
    epsilon : float
        Stabiliser of the division by a margin.
    out : torch.Tensor of shape (N, D), optional
        Where to write the relevance.

    Returns
    -------
    label : torch.LongTensor of shape (N,)
    logits : torch.Tensor of shape (N, K)
    relevance : torch.Tensor of shape (N, D)
    """
    from .functional import score_weights  # functional imports this module

    _check_shapes(x, centres.shape[1], centre)
    (n, d), k = x.shape, centres.shape[0]
    if cluster is not None and not 0 <= cluster < k:
        raise ValueError(f'cluster must be in [0, {k}) or None, got {cluster}.')
    centre = _zero_if_none(centre, x)
    centres = centres.contiguous()  # bound to a name: the kernel reads it after this line
    weight, bias = score_weights(centres)
    squares = (centres * centres).contiguous()
    label = torch.empty(n, dtype=torch.long)
    logits = torch.empty(n, k, dtype=x.dtype)
    relevance = _kernel_target(out, (n, d), x)
    _kernels.flat_explain(x.dtype == torch.float64, x.data_ptr(), centre.data_ptr(), weight.data_ptr(),
                          bias.data_ptr(), squares.data_ptr(), centres.data_ptr(),
                          -1 if cluster is None else int(cluster), float(beta), float(epsilon), label.data_ptr(),
                          logits.data_ptr(), relevance.data_ptr(), n, d, k, torch.get_num_threads())
    return label, logits, _deliver(out, relevance)
