"""Removal curves of an attribution (MoRF, LeRF, ABPC), the fraction of points leaving their cluster, and
comparisons under several removal values."""
import math
import numbers

import numpy as np
import torch

from .removal import REMOVALS, removal_name, removal_values

__all__ = ['evidence_function', 'RemovalCurves', 'removal_curves', 'fraction_leaving', 'compare_attributions',
           'BATCH_SIZE', 'NORMALIZATIONS']

#: default number of rows per evaluation of the evidence function
BATCH_SIZE = 8192


NORMALIZATIONS = ('mean', 'point', None)


def evidence_function(model):
    """A function mapping an (N, D) numpy array to the (N, K) numpy array of cluster evidence.

    Parameters
    ----------
    model : NeuralizedModel, fitted estimator, torch.nn.Module or callable
        A neuralized model or any torch module mapping (N, D) tensors to (N, K) evidence is run under
        ``torch.no_grad()`` in the dtype and on the device of its first floating-point parameter or
        buffer (float64 on the CPU for neuralized models). A fitted estimator is neuralized first
        (:func:`~zennit_clusters.neuralize`). Any other callable is taken to already map numpy arrays to
        (N, K) evidence and is returned wrapped in ``np.asarray``.

    Returns
    -------
    callable
        ``fn(Z) -> np.ndarray`` of shape (N, K), float64.
    """
    if not isinstance(model, torch.nn.Module) and callable(model):
        def from_callable(Z):
            return np.asarray(model(Z), dtype=np.float64)
        return from_callable
    if not isinstance(model, torch.nn.Module):
        from ..api import neuralize
        model = neuralize(model)
    tensors = [t for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point()]
    dtype = tensors[0].dtype if tensors else torch.float64
    device = tensors[0].device if tensors else torch.device('cpu')

    from ..core import NeuralizedModel
    # a neuralized model's evidence() is its cheaper form (O(N K) for k-means, no (N, K, K - 1) margins)
    forward = model.evidence if isinstance(model, NeuralizedModel) else model

    def from_module(Z):
        with torch.no_grad():
            out = forward(torch.as_tensor(np.asarray(Z), dtype=dtype, device=device))
        return out.detach().to(device='cpu', dtype=torch.float64).numpy()
    return from_module


def _as_array(X, name, n_features=None):
    """X as a 2-d numpy array of real numbers in its own float dtype (integers become float64); no copy of a float
    array: the functions below cast row chunks to float64 as they go, so that memory beyond X stays O(chunk)."""
    if torch.is_tensor(X):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.dtype.kind not in 'biuf':
        raise TypeError(f'{name} must hold real numbers, got an array of dtype {X.dtype}.')
    if X.dtype.kind != 'f' or X.dtype == np.float16:
        X = X.astype(np.float64)
    if X.ndim != 2:
        raise ValueError(f'{name} must be 2-d of shape (n_samples, n_features), got shape {X.shape}.')
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f'{name} has {X.shape[1]} features, expected {n_features}.')
    rows = max(1, BATCH_SIZE * 64 // max(1, X.shape[1]))
    for start in range(0, X.shape[0], rows):  # in blocks: no (N, D) mask
        if not np.isfinite(X[start:start + rows]).all():
            raise ValueError(f'{name} contains NaN or infinity.')
    return X


def _rows64(X, rows):
    """Rows of X as float64 (a copy of those rows only)."""
    return np.asarray(X[rows], dtype=np.float64)


def _check_evidence(E, n_rows):
    if E.ndim != 2 or E.shape[0] != n_rows:
        raise ValueError(f'the evidence function must return an array of shape ({n_rows}, n_clusters), '
                         f'got shape {E.shape}.')
    return E


def _check_clusters(clusters, n_rows, n_clusters):
    if isinstance(clusters, numbers.Integral) and not isinstance(clusters, bool):
        clusters = np.full(n_rows, int(clusters))
    clusters = np.asarray(clusters)
    if clusters.shape != (n_rows,) or clusters.dtype.kind not in 'iu':
        raise ValueError(f'clusters must be an int or an integer array of shape ({n_rows},), '
                         f'got {clusters.dtype} array of shape {clusters.shape}.')
    if clusters.size and (clusters.min() < 0 or clusters.max() >= n_clusters):
        raise ValueError(f'clusters must be in [0, {n_clusters}), got values in '
                         f'[{clusters.min()}, {clusters.max()}].')
    return clusters.astype(np.int64)


def _check_steps(steps, n_features):
    """Sorted unique feature counts to remove, always starting at 0."""
    if steps is None:
        counts = np.arange(n_features + 1)
    elif isinstance(steps, numbers.Integral) and not isinstance(steps, bool):
        if steps < 1:
            raise ValueError(f'steps must be a positive int or a sequence of feature counts, got {steps}.')
        counts = np.round(np.linspace(0, n_features, min(steps, n_features) + 1)).astype(np.int64)
    else:
        counts = np.asarray(steps)
        if counts.ndim != 1 or counts.dtype.kind not in 'iu' or counts.size == 0:
            raise ValueError('steps must be None, a positive int, or a 1-d sequence of feature counts.')
        if counts.min() < 0 or counts.max() > n_features:
            raise ValueError(f'feature counts in steps must lie in [0, {n_features}].')
    return np.unique(np.concatenate([[0], counts])).astype(np.int64)


def _progress(total, enabled, desc):
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:  # tqdm is optional
            pass
        else:
            return tqdm(total=total, desc=desc, leave=False)

    class Silent:
        def update(self, n=1):
            pass

        def close(self):
            pass
    return Silent()


def _perturbed_evidence(fn, X, attributions, descending, counts, clusters, values, batch_size, bar):
    """Evidence ``f_c`` (N, S) of each point's cluster after removing its ``counts[s]`` first-ranked features.

    Rows go in chunks of ``batch_size``; each chunk's removal order (:func:`_ranks`) is computed once for all its
    steps, and the perturbed inputs of several steps are stacked into one call of ``fn`` while they fit in
    ``batch_size`` rows. Memory beyond X and the result is O(batch_size).
    """
    n_rows = X.shape[0]
    out = np.empty((n_rows, len(counts)))
    chunk = max(1, min(n_rows, batch_size))
    per_call = max(1, batch_size // chunk)
    for first in range(0, n_rows, chunk):
        rows = slice(first, min(first + chunk, n_rows))
        x = _rows64(X, rows)
        ranks = _ranks(_rows64(attributions, rows), descending)
        for start in range(0, len(counts), per_call):
            steps = range(start, min(start + per_call, len(counts)))
            inputs = []
            for s in steps:
                removed = ranks < counts[s]
                inputs.append(np.where(removed, values(rows, x, removed), x))
            evidence = _check_evidence(np.asarray(fn(np.concatenate(inputs))), sum(len(z) for z in inputs))
            n = len(x)
            for offset, s in enumerate(steps):
                out[rows, s] = evidence[offset * n + np.arange(n), clusters[rows]]
            bar.update(len(steps))
    return out


def _ranks(attributions, descending):
    """``ranks[i, j]``: the step at which feature j of point i is removed (stable order among ties)."""
    order = np.argsort(-attributions if descending else attributions, axis=1, kind='stable')
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(order.shape[1])[None, :].repeat(order.shape[0], 0), axis=1)
    return ranks


class RemovalCurves:
    """MoRF and LeRF curves of one attribution under one removal value.

    Attributes
    ----------
    n_removed : ndarray of shape (S,)
        Number of features removed at each step (starts at 0).
    fractions : ndarray of shape (S,)
        ``n_removed / n_features``: the x-axis of the curves and of the areas.
    morf_points, lerf_points : ndarray of shape (N, S)
        Evidence ``f_c`` of each point's cluster c after each step, most / least relevant first.
    evidence : ndarray of shape (N,)
        ``f_c(x)`` of the unperturbed points.
    clusters : ndarray of shape (N,)
        The cluster c tracked for each point.
    removal : str
        ``'mean'``, ``'zero'``, ``'knn'`` or ``'array'``.
    normalize : {'mean', 'point', None}
        How :attr:`morf`, :attr:`lerf` and the areas are scaled (see :func:`removal_curves`).
    morf, lerf : ndarray of shape (S,)
        The mean curves, normalized.
    auc_morf, auc_lerf : float
        Areas under the mean curves over ``fractions`` (trapezoid rule).
    abpc : float
        ``auc_lerf - auc_morf``; higher is better, about 0 for a random ranking.
    """

    def __init__(self, n_removed, n_features, morf_points, lerf_points, clusters, removal, normalize='mean'):
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be 'mean', 'point' or None, got {normalize!r}.")
        self.n_removed = np.asarray(n_removed)
        self.n_features = int(n_features)
        self.fractions = self.n_removed / self.n_features
        self.morf_points = morf_points
        self.lerf_points = lerf_points
        self.evidence = morf_points[:, 0].copy()
        self.clusters = clusters
        self.removal = removal
        self.normalize = normalize
        self.morf = self._mean_curve(morf_points)
        self.lerf = self._mean_curve(lerf_points)
        self.auc_morf = self._area(self.morf)
        self.auc_lerf = self._area(self.lerf)
        self.abpc = self.auc_lerf - self.auc_morf

    def _mean_curve(self, points):
        if self.normalize == 'point':
            return (points / self.evidence[:, None]).mean(0)
        curve = points.mean(0)
        if self.normalize == 'mean':
            return curve / np.abs(self.evidence).mean()
        return curve

    def _area(self, curve):
        if len(curve) < 2:
            return 0.0
        return float(np.sum(np.diff(self.fractions) * (curve[1:] + curve[:-1]) / 2.0))

    def renormalized(self, normalize):
        """The same curves with another normalization (no new evaluations)."""
        return RemovalCurves(self.n_removed, self.n_features, self.morf_points, self.lerf_points,
                             self.clusters, self.removal, normalize)

    def as_dict(self):
        """Summary numbers and mean curves as plain Python values."""
        return {'removal': self.removal, 'normalize': self.normalize, 'abpc': self.abpc,
                'auc_morf': self.auc_morf, 'auc_lerf': self.auc_lerf,
                'fractions': self.fractions.tolist(), 'morf': self.morf.tolist(), 'lerf': self.lerf.tolist()}

    def __repr__(self):
        return (f'RemovalCurves(removal={self.removal!r}, points={self.morf_points.shape[0]}, '
                f'steps={len(self.n_removed)}, abpc={self.abpc:.4g}, auc_morf={self.auc_morf:.4g}, '
                f'auc_lerf={self.auc_lerf:.4g})')


def _setup(model, X, attributions, clusters, removal, X_reference, n_neighbors):
    fn = evidence_function(model)
    X = _as_array(X, 'X')
    if attributions is not None:
        attributions = _as_array(attributions, 'attributions')
        if attributions.shape != X.shape:
            raise ValueError(f'attributions must have the shape of X {X.shape}, got {attributions.shape}.')
    X_reference = X if X_reference is None else _as_array(X_reference, 'X_reference', X.shape[1])
    # each point's assigned cluster, from the evidence in row chunks (never all N x K at once)
    assigned, n_clusters = [], None
    for start in range(0, X.shape[0], BATCH_SIZE):
        rows = slice(start, start + BATCH_SIZE)
        evidence = _check_evidence(np.asarray(fn(_rows64(X, rows))), len(X[rows]))
        n_clusters = evidence.shape[1]
        if clusters is None:
            assigned.append(evidence.argmax(1))
    if n_clusters is None:
        n_clusters = _check_evidence(np.asarray(fn(np.zeros((0, X.shape[1])))), 0).shape[1]
    if clusters is None:
        clusters = np.concatenate(assigned) if assigned else np.zeros(0, dtype=np.int64)
    clusters = _check_clusters(clusters, X.shape[0], n_clusters)
    values = removal_values(removal, X, X_reference, n_neighbors)
    return fn, X, attributions, clusters, values


def removal_curves(model, X, attributions, clusters=None, removal='mean', steps=None, X_reference=None,
                   n_neighbors=10, normalize='mean', batch_size=BATCH_SIZE, progress=False):
    """Feature-removal curves (MoRF, LeRF) and their areas for one attribution.

    Parameters
    ----------
    model : NeuralizedModel, fitted estimator, torch.nn.Module or callable
        Gives the cluster evidence; see :func:`evidence_function`. A callable maps an (N, D) numpy array
        to (N, K) evidence.
    X : array-like of shape (N, D)
        The explained points.
    attributions : array-like of shape (N, D)
        Relevance of each feature of each point (from any method).
    clusters : int or array of shape (N,), optional
        The cluster whose evidence is tracked; default each point's assigned cluster (argmax evidence).
    removal : {'mean', 'zero', 'knn'} or array of shape (D,) or (N, D)
        What a removed feature becomes (see the module docstring).
    steps : None, int or sequence of int
        Feature counts at which the evidence is evaluated: None for every count 0..D, an int for that
        many evenly spaced steps, or explicit counts (0 is always added).
    X_reference : array-like of shape (M, D), optional
        Data for the mean and the kNN in-fill; default ``X``.
    n_neighbors : int
        Neighbours of the kNN in-fill.
    normalize : {'mean', 'point', None}
        ``'mean'`` (default) divides the mean curve by the mean ``|f_c(x)|`` over the points, so curves
        start at 1 and are comparable across data sets. ``'point'`` divides each point's curve by its own
        ``f_c(x)`` before averaging (scale-free per point, but dominated by points near a boundary, whose
        ``f_c(x)`` is small). None keeps the raw evidence.
    batch_size : int
        Rows per call of the evidence function.
    progress : bool
        Show a progress bar (needs ``tqdm``; silently none without it).

    Returns
    -------
    RemovalCurves
    """
    fn, X, attributions, clusters, values = _setup(model, X, attributions, clusters, removal, X_reference,
                                                   n_neighbors)
    _check_batch_size(batch_size)
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be 'mean', 'point' or None, got {normalize!r}.")
    counts = _check_steps(steps, X.shape[1])
    n_tasks = len(counts) * math.ceil(X.shape[0] / min(X.shape[0], batch_size))
    bar = _progress(2 * n_tasks, progress, f'removal ({removal_name(removal)})')
    try:
        curves = [_perturbed_evidence(fn, X, attributions, descending, counts, clusters, values, batch_size, bar)
                  for descending in (True, False)]
    finally:
        bar.close()
    return RemovalCurves(counts, X.shape[1], curves[0], curves[1], clusters, removal_name(removal), normalize)


def fraction_leaving(model, X, attributions, k, clusters=None, removal='mean', X_reference=None, n_neighbors=10,
                     batch_size=BATCH_SIZE):
    """Fraction of points that leave their cluster once their ``k`` most relevant features are removed.

    A point leaves cluster c when c is no longer the argmax of its evidence.

    Parameters
    ----------
    model, X, attributions, clusters, removal, X_reference, n_neighbors, batch_size
        As in :func:`removal_curves`.
    k : int or sequence of int
        How many of the most relevant features to remove.

    Returns
    -------
    float, or ndarray of floats for a sequence ``k``.
    """
    fn, X, attributions, clusters, values = _setup(model, X, attributions, clusters, removal, X_reference,
                                                   n_neighbors)
    _check_batch_size(batch_size)
    scalar = isinstance(k, numbers.Integral) and not isinstance(k, bool)
    ks = np.atleast_1d(np.asarray(k))
    if ks.ndim != 1 or ks.dtype.kind not in 'iu' or (ks < 0).any() or (ks > X.shape[1]).any():
        raise ValueError(f'k must be an int or ints in [0, {X.shape[1]}], got {k!r}.')
    left = np.zeros(len(ks), dtype=np.int64)
    chunk = max(1, min(X.shape[0], batch_size))
    for start in range(0, X.shape[0], chunk):  # row chunks outside: each chunk's ranks once, O(chunk) memory
        rows = slice(start, start + chunk)
        x = _rows64(X, rows)
        ranks = _ranks(_rows64(attributions, rows), True)
        for i, count in enumerate(ks):
            removed = ranks < count
            evidence = _check_evidence(np.asarray(fn(np.where(removed, values(rows, x, removed), x))), len(x))
            left[i] += int((evidence.argmax(1) != clusters[rows]).sum())
    leaving = left / X.shape[0]
    return float(leaving[0]) if scalar else leaving


def compare_attributions(model, X, attributions, removals=REMOVALS, **kwargs):
    """Removal curves of several attributions under several removal values.

    Parameters
    ----------
    model, X
        As in :func:`removal_curves`.
    attributions : dict of str to array of shape (N, D)
        Attributions by method name.
    removals : sequence
        Removal values (names or arrays).
    **kwargs
        Passed to :func:`removal_curves`.

    Returns
    -------
    dict
        ``result[removal_name][method] -> RemovalCurves``.
    """
    return {removal_name(removal): {name: removal_curves(model, X, A, removal=removal, **kwargs)
                                     for name, A in attributions.items()}
            for removal in removals}


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f'batch_size must be a positive int, got {batch_size!r}.')
