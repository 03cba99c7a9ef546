"""Every input check and every numeric policy of the library, once.

Checks at the boundary raise clear errors naming what was expected and what came. The numeric policies are
the stabiliser of the division by a margin (:func:`sign_epsilon`), the tie threshold of member-pair margins
(:func:`tie_threshold`) and the origin of the centred frame every family computes in (:func:`frame_origin`).
"""
import math
import numbers

import numpy as np
import torch

__all__ = ['is_dataframe', 'check_columns', 'column_mismatch', 'as_feature_tensor', 'check_training_data',
           'check_sparse_input', 'check_finite_values', 'check_dask_array', 'check_dask_frame', 'check_finite_rows',
           'check_cluster', 'check_n_features',
           'check_beta', 'check_gamma', 'check_fitted', 'check_dense_values', 'check_explainer_input',
           'check_layer_input', 'check_output_buffer', 'overlaps', 'frame_origin', 'sign_epsilon', 'sign_stabiliser',
           'tie_threshold', 'tie_relative', 'tie_stabiliser', 'check_contrast', 'check_reference',
           'resolve_feature_names']


def check_fitted(estimator, attributes=None):
    """scikit-learn's ``check_is_fitted``, imported when first needed (scikit-learn takes a second to import, and
    ``import zennit_clusters`` should not pay it); raises ``sklearn.exceptions.NotFittedError``."""
    from sklearn.utils.validation import check_is_fitted
    check_is_fitted(estimator, attributes)


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


def _explained_dtype(dtype, name):
    if dtype.kind not in 'biuf':
        raise TypeError(f'{name} must hold real numbers, got dtype {dtype}.')
    if dtype.kind in 'biu':
        return np.dtype(np.float64)
    return np.dtype(np.float32) if dtype.itemsize <= 4 else np.dtype(np.float64)


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
        check_dense_values(X, name)
        tensor, from_numpy = X.detach(), False
        if tensor.is_complex():
            raise TypeError(f'{name} must be real-valued, got dtype {tensor.dtype}.')
        if not tensor.is_floating_point() or tensor.dtype in (torch.float16, torch.bfloat16):
            tensor = tensor.to(torch.float64 if not tensor.is_floating_point() else torch.float32)
    else:
        if hasattr(X, 'toarray') and hasattr(X, 'nnz'):
            raise TypeError(f'{name} must be a dense array; got a sparse matrix ({type(X).__name__}). '
                            'Call X.toarray() first.')
        if isinstance(X, np.ma.MaskedArray) and np.ma.is_masked(X):
            raise TypeError(f'{name} is a masked array with masked entries, which have no value to explain; fill them '
                            '(X.filled(value)) or drop those rows first.')
        try:
            array = frame_values(X) if is_dataframe(X) else np.asarray(X)
        except (TypeError, ValueError, RuntimeError) as error:
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


def check_training_data(X, n_features, name='X (training data)'):
    """Training data as a float64 tensor of shape (n_samples, n_features), every value finite; else a clear error."""
    x, _ = as_feature_tensor(X, n_features, name=name)
    x = x.to(torch.float64)
    check_finite_values(x, name)
    return x


#: at most this many elements per pass of :func:`check_finite_values` (bounded memory for any number of rows)
_FINITE_BLOCK = 1 << 22


def check_finite_values(x, name='X', offset=0):
    """Raise ValueError naming the first row of ``x`` (N, D) with NaN or infinity; checked in row blocks, so that
    the boolean mask never has the size of ``x``."""
    rows = max(1, _FINITE_BLOCK // max(1, x.shape[1]))
    for start in range(0, x.shape[0], rows):
        block = x[start:start + rows]
        finite = torch.isfinite(block).all(1)
        if not bool(finite.all()):
            check_finite_rows(block, block, name=name, offset=offset + start, finite=finite)


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
        hint = (' Missing values (None, pd.NA) count as NaN: impute them, e.g. with a SimpleImputer in the pipeline.'
                if what == 'NaN' else '')
        raise ValueError(f'{name} contains {what} (first in row {row}); NEON needs finite input.{hint}')


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


def check_dense_values(x, name='X'):
    """Raise TypeError for a torch tensor without values in strided memory: sparse layouts and the meta device."""
    if x.layout != torch.strided:
        raise TypeError(f'{name} must be a dense tensor, got layout {x.layout}; call X.to_dense() first.')
    if x.device.type == 'meta':
        raise TypeError(f'{name} is on the meta device and holds no values; materialise it first '
                        '(e.g. torch.empty_like(X, device="cpu") filled with data).')


def check_explainer_input(x, explainer, n_features=None):
    """Raise unless an explainer's input is a dense real float32/float64 torch tensor of shape (N, n_features).

    The closed-form explainers take the tensors that :func:`~zennit_clusters.explain` prepares; called directly,
    they need the same. Only what is fixed when a graph is traced is checked (the number of rows is not).
    """
    if not torch.is_tensor(x):
        raise TypeError(f'{explainer} expects a torch tensor of shape (n_samples, n_features), got '
                        f'{type(x).__name__}; use torch.as_tensor(x), or explain() for array-like input.')
    check_dense_values(x, f'{explainer} input')
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f'{explainer} expects a float32 or float64 tensor, got dtype {x.dtype}; cast it (x.double()), '
                        'or use explain(), which does.')
    width = 'n_features' if n_features is None else n_features
    if x.dim() != 2 or (n_features is not None and x.shape[1] != n_features):
        raise ValueError(f'{explainer} expects a 2-d tensor of shape (n_samples, {width}), got shape '
                         f'{tuple(x.shape)}.')


def check_layer_input(x, n_features, layer):
    """Raise unless a layer's input ``x`` is a 2-d floating-point tensor with ``n_features`` columns."""
    if not torch.is_tensor(x):
        raise TypeError(f'{layer} expects a torch tensor of shape (n_samples, {n_features}), got {type(x).__name__}; '
                        'use torch.as_tensor(x).')
    if x.layout != torch.strided:
        raise TypeError(f'{layer} expects a dense tensor, got layout {x.layout}; call x.to_dense() first.')
    if x.dim() != 2:
        got = f'shape {tuple(x.shape)}' if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f'{layer} expects a 2-d tensor of shape (n_samples, {n_features}), got {got}.')
    if x.shape[1] != n_features:
        raise ValueError(
            f'{layer} expects {n_features} features per sample, got {x.shape[1]} '
            f'(input of shape {tuple(x.shape)}).'
        )
    if not x.is_floating_point():
        raise TypeError(f'{layer} expects a floating-point tensor, got dtype {x.dtype}.')


def check_output_buffer(out, x, from_numpy):
    """The tensor view of a user's ``out`` buffer, after checking it can hold the relevance of ``x``."""
    expected = (f'a C-contiguous {"numpy array" if from_numpy else f"tensor on {x.device}"} of shape '
                f'{tuple(x.shape)} and dtype {str(x.dtype).replace("torch.", "")}')
    if from_numpy:
        if not isinstance(out, np.ndarray):
            raise TypeError(f'out must be {expected} (numpy X gives numpy relevance), got {type(out).__name__}.')
        if not out.flags.writeable:
            raise ValueError('out must be writeable; got a read-only array.')
        tensor = torch.from_numpy(out) if out.dtype.kind == 'f' and out.flags.c_contiguous else None
    else:
        if not torch.is_tensor(out):
            raise TypeError(f'out must be {expected} (tensor X gives tensor relevance), got {type(out).__name__}.')
        tensor = out.detach() if out.is_contiguous() else None
    if tensor is None or tensor.shape != x.shape or tensor.dtype != x.dtype or tensor.device != x.device:
        got = (f'{type(out).__name__} of shape {tuple(out.shape)}, dtype {str(out.dtype).replace("torch.", "")}'
               + ('' if from_numpy else f' on {out.device}'))
        layout = out.flags.c_contiguous if from_numpy else out.is_contiguous()
        raise ValueError(f'out must be {expected}; got a{"" if layout else " non-contiguous"} {got}.')
    if overlaps(tensor, x) and tensor.data_ptr() != x.data_ptr():
        # out = X itself works (each row is read before it is written); a shifted overlap would read rows
        # that are already overwritten
        raise ValueError('out overlaps X without being X; pass X itself (to overwrite it) or separate memory.')
    return tensor


def overlaps(a, b):
    """Whether the memory spans of two tensors (from their first to their last element) intersect."""
    def span(t):
        last = sum((size - 1) * abs(stride) for size, stride in zip(t.shape, t.stride()))
        return t.data_ptr(), t.data_ptr() + (last + 1) * t.element_size()
    (a_start, a_end), (b_start, b_end) = span(a), span(b)
    return a.device == b.device and a_start < b_end and b_start < a_end


def frame_origin(points):
    """The origin of the centred frame: the fixed point every family subtracts from inputs and its points.

    Far from the origin, float32 scores lose the digits that decide a label (digits + 1000: 0.4 % of labels
    differ from ``predict`` without centring). Centring on the mean of the model's points, rounded to float32 so
    that the float32 subtraction is exact, keeps them. Where that mean lies within half the points' spread of
    the origin (standardised data, for one), centring cannot gain precision, and the centre is zero: the
    closed form and the ONNX graph then skip the subtraction (docs/method.md, section 1), a full pass over X.

    Parameters
    ----------
    points : torch.Tensor of shape (M, D)
        The model's centres, means or member points, float64.

    Returns
    -------
    torch.Tensor of shape (D,), float64
    """
    mean = points.mean(0).to(torch.float32).to(torch.float64)
    spread = float((points - mean).square().sum(1).mean().sqrt())
    if float(mean.norm()) <= 0.5 * spread:
        return torch.zeros_like(mean)
    return mean


def sign_epsilon(dtype):
    """The machine epsilon of ``dtype``: the relative part of :func:`sign_stabiliser` (and the absolute
    stabiliser of the mixtures' log-ratios, which carry no scale of their own)."""
    return torch.finfo(dtype).eps


def sign_stabiliser(dtype, epsilon=None):
    """The stabiliser of the division by a margin, ``h + sign(h) (absolute + relative (|s_own| + |s_rival|))``.

    A margin ``h = s_own - s_rival`` is a difference of two scores; its rounding error is about the machine
    epsilon times ``|s_own| + |s_rival|``, so a stabiliser of that size changes a margin only where the margin is
    rounding noise anyway, at every scale of the data (an absolute machine epsilon swamps every margin of data
    whose squared distances are below it: k-means at feature scale 1e-5 in float32 lost 90 % of f_c).
    ``absolute`` is the smallest normal number of the dtype, so that the divisor is never zero.

    Parameters
    ----------
    dtype : torch.dtype
    epsilon : float or None
        None (the default) for the relative stabiliser above; a float for an absolute one, ``h + epsilon sign(h)``
        whatever the scores (the meaning ``epsilon=`` had before; 0 is allowed and then ``h = 0`` divides by 0).

    Returns
    -------
    absolute, relative : float
    """
    if epsilon is None:
        info = torch.finfo(dtype)
        return info.tiny, info.eps
    epsilon = float(epsilon)
    if not math.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f'epsilon must be a finite float >= 0 or None, got {epsilon}.')
    return epsilon, 0.0


def tie_threshold(dtype, scale):
    """Tie threshold of member-pair margins: ``sqrt(machine epsilon of dtype) * scale``.

    Margins are differences of scores of size ``scale``, so margins below ~machine epsilon x scale are rounding
    noise. Pairs with ``|h| < threshold`` count as ties and carry no relevance; the threshold is far above the
    rounding noise in both float32 and float64, so both dtypes find the same ties.
    """
    return math.sqrt(torch.finfo(dtype).eps) * scale


#: the relative tie threshold in units of the machine epsilon (:func:`tie_relative`)
TIE_RELATIVE_ULPS = 64


def tie_relative(dtype):
    """The relative part of the tie threshold: 64 machine epsilons, times ``|s_i| + |s_j|`` of the pair.

    Far from the members, the scores s grow with |x| and a margin ``s_i - s_j`` carries a rounding error of about
    machine epsilon x ``(|s_i| + |s_j|)``, far above the absolute :func:`tie_threshold`: such margins (and their
    per-feature terms) are rounding noise, and dividing by them sent float32 relevance sums off by 4 orders of
    magnitude. A pair counts as a tie when ``|h| < tie_threshold + tie_relative (|s_i| + |s_j|)``; above it, the
    rounding error of the pair's per-feature terms is at most 1/64 of its relevance (in practice machine epsilon
    x ``|s|``, the precision of f_c itself). Near the members ``|s|`` is about the members' scale and the
    absolute part (sqrt(machine epsilon) x scale) dominates, so both dtypes still find the same ties there.
    """
    return TIE_RELATIVE_ULPS * torch.finfo(dtype).eps


def tie_stabiliser(dtype, scale, epsilon=None):
    """The tie threshold of a member-pair margin ``h = s_i - s_j``: ``absolute + relative (|s_i| + |s_j|)``.

    Parameters
    ----------
    dtype : torch.dtype
    scale : float
        The members' mean squared norm (:attr:`.MemberMargin.scale`).
    epsilon : float or None
        None (the default) for :func:`tie_threshold` plus :func:`tie_relative` times the pair's scores; a float
        for an absolute threshold alone (the meaning ``epsilon=`` had before).

    Returns
    -------
    absolute, relative : float
    """
    if epsilon is None:
        return tie_threshold(dtype, scale), tie_relative(dtype)
    return sign_stabiliser(dtype, epsilon)


# the checks of other concepts, in their own modules, importable from here as before
from .columns import check_columns, column_mismatch, frame_values, is_dataframe, resolve_feature_names  # noqa: E402
from .containers import check_dask_array, check_dask_frame, check_sparse_input  # noqa: E402
from .options import check_contrast, check_reference  # noqa: E402
