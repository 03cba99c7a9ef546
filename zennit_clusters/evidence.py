"""Passes that need only the (N, K) evidence, in row chunks: the default stiffness over training data and the
chunked forms of the module's forward (``predict``, ``predict_evidence``). Re-exported by :mod:`zennit_clusters.api`."""
import math

import numpy as np
import torch

from .validation import as_feature_tensor, check_finite_rows

__all__ = ['beta_of_total', 'evidence_total', 'evidence_chunks', 'predict', 'predict_evidence']


def neuralize(model):
    from .api import neuralize as convert  # api imports this module: imported when called
    return convert(model)


def beta_of_total(total, count):
    """The heuristic ``1 / mean f_c`` from the sum of the rows' largest evidence and their number (a sum kept per
    chunk, or per block of a distributed collection); 0 where there is no scale to take."""
    mean_evidence = total / count if count else math.nan
    if not mean_evidence > 0 or not math.isfinite(1.0 / mean_evidence):
        # every point on a boundary (e.g. all centroids identical): no scale to take; split evenly
        return 0.0
    return 1.0 / mean_evidence


def evidence_total(model, x, name, rows=None):
    """Sum over the rows of ``x`` (those of the mask ``rows``) of the largest evidence in float64, and their number."""
    total = 0.0
    mask = None if rows is None else torch.as_tensor(np.asarray(rows, dtype=bool))
    for start, chunk, evidence in evidence_chunks(model, x, dtype=torch.float64, name=name):
        best = evidence.max(1).values
        if mask is not None:
            best = best[mask[start:start + len(best)]]
        total += float(best.sum())
    return total, x.shape[0] if mask is None else int(mask.sum())


def evidence_chunks(model, x, chunk_size=None, dtype=None, name='X'):
    """Yield ``(start, chunk, evidence)`` over row chunks of a feature tensor: the one loop behind every pass
    that needs only the (N, K) evidence (the default stiffness, :meth:`NeuralizedModel.predict`).

    Each chunk is cast to ``dtype`` (default its own), its evidence is checked to be finite (the first row with
    NaN or infinity is named, counted in X's rows), and the evidence comes from the model's ``evidence`` (O(N K) for k-means where
    the layered forward holds (N, K, K - 1) margins). Rows per chunk: :data:`CHUNK_ELEMENTS` over the widest
    per-row intermediate the model declares (``evidence_row_elements``).
    """
    model_dtype = dtype if dtype is not None else x.dtype
    if chunk_size is None:
        width = max(x.shape[1], model.n_clusters, int(getattr(model, 'evidence_row_elements', 0)))
        chunk_size = max(1, _chunk_elements() // width)
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f'chunk_size must be a positive int, got {chunk_size!r}.')
    with torch.no_grad():
        for start in range(0, x.shape[0], chunk_size):
            chunk = x[start:start + chunk_size].to(model_dtype)
            evidence = model.evidence(chunk)
            # NaN or infinity in a row of x makes its evidence non-finite: the small array is checked
            check_finite_rows(chunk, evidence, name=name, offset=start)
            yield start, chunk, evidence


def predict(model, X, chunk_size=None):
    """Each row's cluster from the neuralized network, in row chunks (bounded memory for any N).

    Parameters
    ----------
    model : NeuralizedModel or fitted estimator
    X : array-like or torch.Tensor of shape (n_samples, n_features)
        Finite values (NaN or infinity is refused, naming the row).
    chunk_size : int, optional
        Rows per pass; default :data:`CHUNK_ELEMENTS` over the model's widest per-row intermediate.

    Returns
    -------
    labels : int64 array of shape (n_samples,)
        The argmax of the evidence (the estimator's ``predict``); -1 for noise where the model has a noise
        rule. numpy for numpy X, a tensor on X's device for a tensor.
    """
    model = neuralize(model)
    x, from_numpy = as_feature_tensor(model.encode(X), model.n_features_in_)
    labels = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for start, _, evidence in evidence_chunks(model, x, chunk_size):
        label = evidence.argmax(1)
        if model.noise_radius is not None:
            label = torch.where(evidence.amax(1) < 0, torch.full_like(label, -1), label)
        labels[start:start + len(label)] = label
    return labels.numpy() if from_numpy else labels


def predict_evidence(model, X, chunk_size=None, out=None):
    """The (n_samples, n_clusters) evidence ``f_c(x)`` of every row, in row chunks: ``model(x)`` without the
    layered forward's (N, K, K - 1) intermediates, for inputs of any size.

    Parameters
    ----------
    model, X, chunk_size
        As for :func:`predict`.
    out : array or tensor of shape (n_samples, n_clusters), optional
        Where to write the evidence (X's float dtype; numpy for numpy X).

    Returns
    -------
    evidence : array of shape (n_samples, n_clusters), X's float dtype
    """
    model = neuralize(model)
    x, from_numpy = as_feature_tensor(model.encode(X), model.n_features_in_)
    shape = (x.shape[0], model.n_clusters)
    if out is None:
        result = torch.empty(shape, dtype=x.dtype, device=x.device)
    else:
        result = torch.from_numpy(out) if from_numpy and isinstance(out, np.ndarray) else out
        if not torch.is_tensor(result) or tuple(result.shape) != shape or result.dtype != x.dtype:
            raise ValueError(f'out must be an array of shape {shape} and dtype {x.dtype}, got '
                             f'{type(out).__name__} {tuple(getattr(out, "shape", ()))} {getattr(out, "dtype", None)}.')
    for start, _, evidence in evidence_chunks(model, x, chunk_size):
        result[start:start + evidence.shape[0]] = evidence
    if out is not None:
        return out
    return result.numpy() if from_numpy else result


def _chunk_elements():
    from .api import CHUNK_ELEMENTS
    return CHUNK_ELEMENTS
