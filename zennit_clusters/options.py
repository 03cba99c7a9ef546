"""Checks of explain()'s options for contrastive explanations and reference points. Re-exported by
:mod:`zennit_clusters.validation`."""
import numbers

import numpy as np
import torch

__all__ = ['check_contrast', 'check_reference']


def check_contrast(contrast, n_clusters, x):
    """Validate the competitor of a contrastive explanation: an int in [0, n_clusters) for every row, or an (N,)
    array of them (one per row of ``x``). Returns an int64 tensor of shape (N,) on ``x``'s device."""
    if isinstance(contrast, bool):
        raise TypeError(f'contrast must be an int in [0, {n_clusters}) or an array of them, got a bool.')
    if isinstance(contrast, (numbers.Integral, np.integer)):
        contrast = torch.full((x.shape[0],), int(contrast), dtype=torch.long, device=x.device)
    else:
        if torch.is_tensor(contrast):
            values = contrast.detach()
        else:
            try:
                values = torch.from_numpy(np.asarray(contrast))
            except (TypeError, ValueError) as error:
                raise TypeError(f'contrast must be an int or an array of ints, got {type(contrast).__name__}: '
                                f'{error}') from None
        if values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
            raise TypeError(f'contrast must hold integer cluster indices, got dtype {values.dtype}.')
        if values.shape != (x.shape[0],):
            raise ValueError(f'contrast must be an int or of shape ({x.shape[0]},) (one competitor per row of X), '
                             f'got shape {tuple(values.shape)}.')
        contrast = values.to(device=x.device, dtype=torch.long)
    if contrast.numel() and not bool(((contrast >= 0) & (contrast < n_clusters)).all()):
        bad = contrast[(contrast < 0) | (contrast >= n_clusters)][0]
        raise ValueError(f'contrast must be in [0, {n_clusters}) for a model with {n_clusters} clusters, '
                         f'got {int(bad)}.')
    return contrast


def check_reference(reference, x, centres=None):
    """Validate the reference point of :func:`~zennit_clusters.explain` and return it as an (N, D) tensor like
    ``x`` (None stays None: the midpoint rule).

    Parameters
    ----------
    reference : None, 'mean', 'zero', 0, array-like of shape (D,) or (N, D)
        'mean' is the unweighted mean of the model's cluster centres (``centres``, (K, D)), a property of the
        model, never of the batch; pass the data mean as an array to use it.
    x : torch.Tensor of shape (N, D)
    centres : torch.Tensor of shape (K, D), optional
    """
    if reference is None:
        return None
    n_rows, n_features = x.shape
    if isinstance(reference, str):
        if reference == 'mean':
            point = centres.to(dtype=x.dtype, device=x.device).mean(0)
        elif reference == 'zero':
            point = torch.zeros(n_features, dtype=x.dtype, device=x.device)
        else:
            raise ValueError(f"reference must be None, 'mean', 'zero', 0, or an array of shape ({n_features},) or "
                             f"({n_rows}, {n_features}), got {reference!r}.")
        return point.expand(n_rows, n_features)
    if isinstance(reference, bool):
        raise TypeError('reference must be a point, a name or 0, got a bool.')
    if isinstance(reference, numbers.Number) and reference == 0:
        return torch.zeros(n_features, dtype=x.dtype, device=x.device).expand(n_rows, n_features)
    try:
        point = reference.detach() if torch.is_tensor(reference) else torch.from_numpy(
            np.ascontiguousarray(reference, dtype=np.float64))
    except (TypeError, ValueError) as error:
        raise TypeError(f'reference must be a point (array of numbers), got {type(reference).__name__}: '
                        f'{error}') from None
    point = point.unsqueeze(0) if point.dim() == 1 else point
    if point.dim() != 2 or point.shape[1] != n_features:
        raise ValueError(f'reference must be of shape ({n_features},) or ({n_rows}, {n_features}), '
                         f'got shape {tuple(reference.shape) if hasattr(reference, "shape") else np.shape(reference)}.')
    point = point.to(dtype=x.dtype, device=x.device)
    if point.shape[0] == 1:
        point = point.expand(n_rows, n_features)
    elif point.shape[0] != n_rows:
        raise ValueError(f'reference must be of shape ({n_features},) or ({n_rows}, {n_features}) (one point per row '
                         f'of X), got {point.shape[0]} rows.')
    if not bool(torch.isfinite(point).all()):
        raise ValueError('reference contains NaN or infinity; a reference point must be finite.')
    return point
