"""The compiled CPU primitives and their loader: primitive tensor operations only, importing no model family.

:func:`centred_linear` and :func:`centred_addcmul` are the two O(N K D) operations of the closed-form
explainers; the equations that use them live in :mod:`zennit_clusters.equations`. Each has a torch expression,
which runs on every device, under autograd and while torch traces a graph (the ONNX export), and a C
implementation (``zennit_clusters/compiled/_cpu.c``) that folds the centring into the product and writes its
result once. On CPU the C code is several times faster than the torch expression for K ~ 10 clusters: matrix
libraries handle an inner or outer dimension of 10 poorly, and the torch expression materialises the centred X
and two (N, D) products. Both give the same values up to rounding (tests/compiled holds them together).

The compiled code runs when the extension imported, the tensors are plain CPU tensors of one dtype (float32 or
float64), nothing needs their gradient and no :func:`torch_only` block is active; otherwise torch runs. Set the
environment variable ``ZENNIT_CLUSTERS_NO_COMPILED=1`` (or the older ``ZENNIT_CLUSTERS_NO_KERNELS=1``) to
always use torch. A family's own fused code (the k-means row step) lives in its folder and uses the helpers
here (:func:`usable`, :func:`check_shapes`, :func:`output_target`, :func:`deliver`).
"""
import contextlib
import os
import threading

import torch
import torch.nn.functional as F

try:
    from . import _cpu
except ImportError:  # built without a C compiler: torch does the work
    _cpu = None

__all__ = ['available', 'usable', 'torch_only', 'instruction_set', 'centred_linear', 'centred_addcmul',
           'defer_centring', 'check_shapes', 'output_target', 'deliver', 'zero_if_none']

#: environment variables that switch the compiled code off (the second is the name of earlier releases)
DISABLE_VARIABLES = ('ZENNIT_CLUSTERS_NO_COMPILED', 'ZENNIT_CLUSTERS_NO_KERNELS')


def available():
    """Whether the compiled CPU primitives are importable and enabled."""
    return _cpu is not None and all(os.environ.get(name, '') in ('', '0') for name in DISABLE_VARIABLES)


class _TorchOnly(threading.local):
    active = False


_torch_only = _TorchOnly()


@contextlib.contextmanager
def torch_only():
    """Run every operation of this package as torch expressions inside the block (in this thread).

    The exporter enters it while torch traces the explainer into a graph: the graph must hold the torch
    operations, never a call into compiled code.
    """
    previous, _torch_only.active = _torch_only.active, True
    try:
        yield
    finally:
        _torch_only.active = previous


def instruction_set(name=None):
    """The instruction set the primitives run (``'avx512'``, ``'avx2'``, ``'generic'``); with a name (``'best'``
    for the widest this CPU runs), switch to it first. None without the extension."""
    if _cpu is None:
        return None
    return _cpu.instruction_set() if name is None else _cpu.instruction_set(name)


def _is_transformed(tensor):
    """Tensors whose memory is not what their values say: inside vmap or functorch transforms (no storage
    of their own), or lazily negated or conjugated views."""
    wrapped = getattr(torch._C, '_functorch', None)
    if wrapped is not None and wrapped.is_functorch_wrapped_tensor(tensor):
        return True
    return tensor.is_neg() or tensor.is_conj()


def usable(*tensors):
    """Whether the compiled code can take these tensors (None entries, absent optional operands, are skipped).

    They must be plain, contiguous CPU float32/float64 tensors of one dtype with memory of their own (not a
    subclass such as a fake or functional tensor, nor a vmap or lazily negated view: the C code reads the
    memory), outside autograd, and not inside :func:`torch_only` (which an exporter tracing a graph enters).
    """
    if not available() or _torch_only.active or torch.jit.is_tracing():
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


def check_shapes(x, width, origin):
    """Raise ValueError unless x is (N, width) and origin (if any) is (width,): the C code trusts both."""
    if x.dim() != 2 or x.shape[1] != width:
        raise ValueError(f'x must be 2-d with {width} features, got shape {tuple(x.shape)}.')
    if origin is not None and tuple(origin.shape) != (width,):
        raise ValueError(f'origin must have shape ({width},), got {tuple(origin.shape)}.')


def defer_centring(x, origin):
    """``(x, origin)`` when the compiled code will centre ``x`` on the fly, else ``(x - origin, None)``: centred once,
    for every later product (and as one node in an exported graph). An origin of None is no centring."""
    if origin is None or usable(x, origin):
        return x, origin
    return x - origin, None


def _fits(out, shape, like):
    """Whether ``out`` can receive a result of ``shape`` directly (else the result is copied into it)."""
    return (out is not None and type(out) is torch.Tensor and out.shape == shape and out.dtype == like.dtype
            and out.device == like.device and out.is_contiguous() and not out.requires_grad)


def output_target(out, shape, like):
    """Where the C code writes a result of ``shape``: ``out`` itself if it fits, else a new tensor."""
    return out if _fits(out, shape, like) else torch.empty(shape, dtype=like.dtype)


def deliver(out, result):
    """The result as the caller asked for it: in ``out`` (copied there if the C code could not write it)."""
    return result if out is None or result is out else out.copy_(result)


def zero_if_none(origin, x):
    """The C code always subtracts an origin; no origin is a zero one."""
    return torch.zeros(x.shape[1], dtype=x.dtype, device=x.device) if origin is None else origin


def centred_linear(x, origin, weight, bias):
    """``F.linear(x - origin, weight, bias)`` without materialising ``x - origin``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
    origin : torch.Tensor of shape (D,) or None
        Subtracted from every row of ``x`` first; None for no centring.
    weight : torch.Tensor of shape (M, D)
    bias : torch.Tensor of shape (M,)

    Returns
    -------
    torch.Tensor of shape (N, M)
    """
    # F.linear, not x @ W: a one-row matmul can stall on two busy cores, and cdist does not export.
    if origin is None:
        return F.linear(x, weight, bias)
    weight, bias = weight.contiguous(), bias.contiguous()
    if not usable(x, origin, weight, bias):
        return F.linear(x - origin, weight, bias)
    check_shapes(x, weight.shape[1], origin)
    (n, d), m = x.shape, weight.shape[0]
    if tuple(bias.shape) != (m,):
        raise ValueError(f'bias must have shape ({m},), got {tuple(bias.shape)}.')
    out = torch.empty(n, m, dtype=x.dtype)
    _cpu.centred_linear(x.dtype == torch.float64, x.data_ptr(), origin.data_ptr(), weight.data_ptr(),
                            bias.data_ptr(), out.data_ptr(), n, d, m, torch.get_num_threads())
    return out


def centred_addcmul(weights, first, second, x, origin=None, value=1.0, out=None):
    """``weights @ first + value * (x - origin) * (weights @ second)``, fused.

    Parameters
    ----------
    weights : torch.Tensor of shape (N, M)
    first, second : torch.Tensor of shape (M, D)
    x : torch.Tensor of shape (N, D)
    origin : torch.Tensor of shape (D,) or None
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
    if not usable(x, origin, weights, first, second):
        if origin is not None:
            x = x - origin
        # F.linear on contiguous (D, M) operands runs MKL's fast path for a small inner dimension M
        # (3-6x faster than weights @ first); value goes into the small (M, D) operand, which saves an
        # (N, D) multiplication in an exported graph; addcmul fuses the multiply-add into one (N, D) pass.
        products = F.linear(weights, first.t().contiguous()), F.linear(weights, (value * second).t().contiguous())
        if out is None:
            return torch.addcmul(*products, x)
        if _fits(out, (n, d), x):
            return torch.addcmul(*products, x, out=out)
        return out.copy_(torch.addcmul(*products, x))
    check_shapes(x, first.shape[1], origin)
    if weights.shape[0] != n or first.shape != second.shape or first.shape[0] != m:
        raise ValueError(f'weights {tuple(weights.shape)}, first {tuple(first.shape)} and second '
                         f'{tuple(second.shape)} do not fit x of shape {tuple(x.shape)}.')
    origin = zero_if_none(origin, x)
    target = output_target(out, (n, d), x)
    _cpu.centred_addcmul(x.dtype == torch.float64, x.data_ptr(), origin.data_ptr(), weights.data_ptr(),
                             first.data_ptr(), second.data_ptr(), float(value), target.data_ptr(), n, d, m,
                             torch.get_num_threads())
    return deliver(out, target)
