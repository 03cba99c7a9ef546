"""How closely an exported graph must reproduce the float64 closed form: the check's tolerances.

The tolerances are derived, row by row, from the floating-point error of the model family's own computation:

1. **Measured rounding** ``rho``: torch evaluates the same closed-form explainer in float32 at the row
   (rounded to float32) and at ``ROUNDING_SAMPLES - 1`` random one-ulp perturbations of it, and compares
   with float64 at the same points; the largest difference per row, scaled by the ratio of the unit roundoffs
   for a float64 graph, is ``rho``. This is the error the family's arithmetic makes on that row: a few unit
   roundoffs of the row's scale for centroid models and Gaussian mixtures, up to the row's whole scale for
   member-point networks (log-mean-exp pools of many nearly cancelling terms).
2. **Rounding tolerance**: ``ROUNDING_FACTOR * rho + ULP_FACTOR * u * m``, with ``u`` the graph dtype's unit
   roundoff and ``m`` the row's largest reference value (of the logits; for relevance, of the logits and the
   relevance). onnxruntime's kernels round differently from torch's (its log-sum-exp loses up to 1.4e-5 of the
   row's scale where torch loses 1e-7), hence the second term.
3. **The bound of the contract**: whatever the rounding, no compared row may be off by more than
   ``BOUND[dtype] * m`` (0.1 % of the row's scale in float32, 1e-6 in float64). An explanation that misses it
   is not an explanation of that row, whatever its cause; the tolerance is the smaller of 2. and 3.

A family whose float32 computation itself misses the bound on some probe row (``rho > BOUND / BOUND_MARGIN``)
cannot give a float32 graph that keeps the contract, so :func:`exporters.onnx.export` exports it in float64
unless told otherwise (:func:`float32_suffices`).

Measured on the generated probe data (``rho`` in units of ``u * m``, median / 99.9 % / max): relevance of
k-means on digits 0.11 / 1.0 / 1.2 (also offset by 1000), bisecting k-means 0.17 / 3.4 / 4.1, Gaussian
mixtures (diag, full, tied on wine) 0.3-0.5 / 42-900 / 57-1,500; kernel k-means, agglomerative, DBSCAN and
HDBSCAN member networks 6-53 / 1.7e7-2.1e7 / 1.8e7-2.6e7, i.e. float32 relevance off by the row's whole scale.
The float64 graphs of the member networks stay within 7.4e-9 of the row's scale.
"""
import dataclasses

import numpy as np

__all__ = ['ROUNDING_FACTOR', 'ULP_FACTOR', 'ROUNDING_SAMPLES', 'BOUND', 'BOUND_MARGIN', 'Measurement', 'measure',
           'run_explainer', 'float32_suffices', 'ContrastMeasurement', 'measure_contrasts', 'run_contrasts',
           'CONTRAST_ELEMENTS']

ROUNDING_FACTOR = 64.0
ULP_FACTOR = 1024.0
ROUNDING_SAMPLES = 3
#: the contract: the largest error a compared row may show, as a fraction of the row's largest value
BOUND = {'float32': 1e-3, 'float64': 1e-6}
#: float32 is chosen by default only where its measured rounding stays this many times inside the bound
BOUND_MARGIN = 4.0


def run_explainer(explainer, x, chunk=1 << 16):
    """label, logits, relevance of a torch explainer module on a numpy array, in float64 numpy."""
    import torch

    labels, logits, relevance = [], [], []
    with torch.no_grad():
        for start in range(0, x.shape[0], chunk):
            outputs = explainer(torch.from_numpy(np.ascontiguousarray(x[start:start + chunk])))
            labels.append(outputs[0].numpy())
            logits.append(outputs[1].double().numpy())
            relevance.append(outputs[2].double().numpy())
    return np.concatenate(labels), np.concatenate(logits), np.concatenate(relevance)


@dataclasses.dataclass
class Measurement:
    """The float64 reference of some rows and the tolerances a graph in ``dtype`` must meet on them.

    Attributes
    ----------
    label, logits, relevance : ndarray
        The float64 closed-form explainer at the rows.
    logit_rounding, relevance_rounding : ndarray (n,)
        ``rho`` of the logits and the relevance (see the module docstring), in ``dtype``.
    logit_scale, relevance_scale : ndarray (n,)
        ``m``: the rows' largest reference logit, and largest logit or relevance.
    logit_tolerance, relevance_tolerance : ndarray (n,)
        The tolerance of each row.
    resolvable : ndarray of bool (n,)
        Finite rows far enough from a decision boundary for their label (and relevance) to be compared.
    """
    dtype: str
    label: np.ndarray
    logits: np.ndarray
    relevance: np.ndarray
    logit_rounding: np.ndarray
    relevance_rounding: np.ndarray
    logit_scale: np.ndarray
    relevance_scale: np.ndarray
    logit_tolerance: np.ndarray
    relevance_tolerance: np.ndarray
    resolvable: np.ndarray


def _rounding_errors(model, beta, x64, explainer, seed):
    """torch's float32 labels at the rows, and the largest float32 rounding error per row (logits, relevance)."""
    import torch

    from zennit_clusters import make_explainer

    low = make_explainer(model, beta=beta).to(torch.float32)  # a new module: .to() works in place
    x32 = x64.astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    logit_error = np.zeros(len(x64))
    relevance_error = np.zeros(len(x64))
    low_label = None
    for sample in range(ROUNDING_SAMPLES):
        if sample == 0:
            points = x32
        else:
            direction = np.where(rng.random(x32.shape) < 0.5, -np.inf, np.inf).astype(np.float32)
            points = np.nextafter(x32, direction)
        labels, logits, relevance = run_explainer(low, points)
        _, ref_logits, ref_relevance = run_explainer(explainer, points.astype(np.float64))
        with np.errstate(invalid='ignore'):
            logit_error = np.fmax(logit_error, np.abs(logits - ref_logits).max(1))
            relevance_error = np.fmax(relevance_error, np.abs(relevance - ref_relevance).max(1))
        if sample == 0:
            low_label = labels
    return low_label, logit_error, relevance_error


def measure(model, beta, x64, dtype, seed=0):
    """The reference and the per-row tolerances of a graph in ``dtype`` on the rows ``x64``.

    Parameters
    ----------
    model : NeuralizedModel
    beta : float or None
        The explanation's stiffness (None: the model's own).
    x64 : ndarray (n, D), float64
        The rows exactly as the graph receives them (already rounded to ``dtype``), NaN allowed.
    dtype : {'float32', 'float64'}
    seed : int
        Seed of the one-ulp perturbations.

    Returns
    -------
    Measurement
    """
    from zennit_clusters import make_explainer

    finite = np.isfinite(x64).all(1)
    explainer = make_explainer(model, beta=beta)
    label, logits, relevance = run_explainer(explainer, x64)
    low_label, logit_rounding, relevance_rounding = _rounding_errors(model, beta, x64, explainer, seed)
    ratio = float(np.finfo(dtype).eps / np.finfo(np.float32).eps)
    logit_rounding, relevance_rounding = logit_rounding * ratio, relevance_rounding * ratio
    unit = float(np.finfo(dtype).eps) / 2
    with np.errstate(invalid='ignore'):
        logit_scale = np.abs(logits).max(1)
        relevance_scale = np.maximum(np.abs(relevance).max(1), logit_scale)
        logit_tolerance = np.minimum(ROUNDING_FACTOR * logit_rounding + ULP_FACTOR * unit * logit_scale,
                                     BOUND[dtype] * logit_scale)
        relevance_tolerance = np.minimum(ROUNDING_FACTOR * relevance_rounding + ULP_FACTOR * unit * relevance_scale,
                                         BOUND[dtype] * relevance_scale)
        top = np.sort(logits, 1)
        gap = top[:, -1] - top[:, -2]
        resolvable = finite & (gap > 2 * logit_tolerance)
        if model.noise_radius is not None:  # noise or not is decided by the sign of the largest logit
            resolvable &= np.abs(top[:, -1]) > 2 * logit_tolerance
        if dtype == 'float32':
            resolvable &= low_label == label
    return Measurement(dtype, label, logits, relevance, logit_rounding, relevance_rounding, logit_scale,
                       relevance_scale, logit_tolerance, relevance_tolerance, resolvable)


#: elements of the (rows, K, D) contrasts per chunk when the explainer runs them in torch (32 MB in float64)
CONTRAST_ELEMENTS = 1 << 22


def run_contrasts(explainer, x, n_clusters):
    """(contrasts (n, K, D), constants (n, K)) of an ``output='contrasts'`` explainer on a numpy array, in float64
    numpy, :data:`CONTRAST_ELEMENTS` elements of contrasts per chunk."""
    import torch

    rows = max(1, CONTRAST_ELEMENTS // (int(explainer.n_features_in_) * int(n_clusters)))
    contrasts, constants = [], []
    with torch.no_grad():
        for start in range(0, x.shape[0], rows):
            outputs = explainer.forward_with_constant(torch.from_numpy(np.ascontiguousarray(x[start:start + rows])))
            contrasts.append(outputs[2].double().numpy())
            constants.append(outputs[3].double().numpy())
    return np.concatenate(contrasts), np.concatenate(constants)


@dataclasses.dataclass
class ContrastMeasurement:
    """The per-row tolerance of a graph's ``contrasts`` (and ``contrast_constants``) on some rows.

    Attributes
    ----------
    rounding : ndarray (n,)
        ``rho`` of the contrasts and their constants (torch's float32 against float64, as for the relevance).
    scale : ndarray (n,)
        ``m``: the row's largest reference contrast, constant or margin h_ck.
    tolerance : ndarray (n,)
    """
    dtype: str
    rounding: np.ndarray
    scale: np.ndarray
    tolerance: np.ndarray


def measure_contrasts(model, x64, dtype, seed=0):
    """The per-row tolerance of a graph's contrastive relevance, derived as :func:`measure` derives that of the
    relevance (``rho`` from float32 at the row and one-ulp perturbations of it, the ulp term, the bound), with
    ``m`` the row's largest value of the float64 contrasts, their constants and the margins h_ck they sum to.

    Parameters
    ----------
    model : NeuralizedModel
    x64 : ndarray (n, D), float64
        The rows as the graph receives them (finite).
    dtype : {'float32', 'float64'}
    seed : int

    Returns
    -------
    ContrastMeasurement
    """
    import torch

    from .graph import contrast_explainer

    n_clusters = int(model.n_clusters)
    high = contrast_explainer(model)
    low = contrast_explainer(model).to(torch.float32)
    contrasts, constants = run_contrasts(high, x64, n_clusters)
    x32 = x64.astype(np.float32)
    rng = np.random.default_rng(seed + 2)
    rounding = np.zeros(len(x64))
    for sample in range(ROUNDING_SAMPLES):
        if sample == 0:
            points = x32
        else:
            direction = np.where(rng.random(x32.shape) < 0.5, -np.inf, np.inf).astype(np.float32)
            points = np.nextafter(x32, direction)
        got, got_constants = run_contrasts(low, points, n_clusters)
        # float64 at the same float32 points (for a float64 graph, x64 itself is not a float32 point)
        want, want_constants = run_contrasts(high, points.astype(np.float64), n_clusters)
        with np.errstate(invalid='ignore'):
            rounding = np.fmax(rounding, np.abs(got - want).max((1, 2)))
            rounding = np.fmax(rounding, np.abs(got_constants - want_constants).max(1))
    rounding = rounding * float(np.finfo(dtype).eps / np.finfo(np.float32).eps)
    unit = float(np.finfo(dtype).eps) / 2
    with np.errstate(invalid='ignore'):
        margins = contrasts.sum(2) + constants
        scale = np.maximum(np.maximum(np.abs(contrasts).max((1, 2)), np.abs(constants).max(1)),
                           np.abs(margins).max(1))
        tolerance = np.minimum(ROUNDING_FACTOR * rounding + ULP_FACTOR * unit * scale, BOUND[dtype] * scale)
    return ContrastMeasurement(dtype, rounding, scale, tolerance)


def float32_suffices(model, beta, X, explain, seed=0, contrasts=False):
    """Whether the family's float32 computation keeps the contract's bound on the probe rows ``X``.

    Returns
    -------
    ok : bool
        True if on every comparable row the measured float32 rounding of the logits (and, with ``explain``,
        of the relevance; with ``contrasts``, of the contrastive relevance) stays ``BOUND_MARGIN`` times inside
        ``BOUND['float32']`` of the row's scale.
    worst : float
        The largest measured rounding over the rows, as a fraction of the row's scale.
    n_rows : int
        How many rows miss.
    """
    x64 = np.asarray(X, dtype=np.float32).astype(np.float64)
    found = measure(model, beta, x64, 'float32', seed)
    with np.errstate(invalid='ignore', divide='ignore'):
        fraction = found.logit_rounding / found.logit_scale
        if explain:
            fraction = np.fmax(fraction, found.relevance_rounding / found.relevance_scale)
    if contrasts and found.resolvable.any():
        resolvable = np.flatnonzero(found.resolvable)
        step = max(1, CONTRAST_ELEMENTS // (int(model.n_clusters) * int(model.n_features_in_)))
        for start in range(0, len(resolvable), step):  # (rows, K, D) references a chunk at a time
            rows = resolvable[start:start + step]
            contrast = measure_contrasts(model, x64[rows], 'float32', seed)
            with np.errstate(invalid='ignore', divide='ignore'):
                fraction[rows] = np.fmax(fraction[rows], contrast.rounding / contrast.scale)
    fraction = np.where(found.resolvable, np.nan_to_num(fraction, nan=0.0, posinf=np.inf), 0.0)
    misses = fraction > BOUND['float32'] / BOUND_MARGIN
    return not misses.any(), float(fraction.max()) if len(fraction) else 0.0, int(misses.sum())
