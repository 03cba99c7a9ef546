"""The export check: run a graph under onnxruntime and hold it to its contract against the float64 closed form.

The contract (``docs/onnx.md``): on every probe row,

- rows with NaN or infinity get label -1;
- every other row's logits, and (for graphs with the ``relevance`` output) its relevance, are within the row's
  tolerance of the float64 closed-form explainer (:mod:`exporters.onnx.tolerances`: measured rounding of the
  family's own computation, never more than ``BOUND[dtype]`` of the row's scale);
- rows farther from a decision boundary than the dtype can resolve get the reference label: the estimator's
  ``predict`` or, where ``predict`` is known to be "the nearest centre" and disagrees with the network, the
  nearest centre in exact arithmetic (:mod:`exporters.onnx.exact`); for models without a ``predict`` (torch
  heads, centroid tensors, labelled partitions) the float64 closed-form explainer itself;
- graphs with the ``contrasts`` output: on every compared row and for every competitor k, ``contrasts[:, k]``
  (and ``contrast_constants[:, k]``) are within the row's contrast tolerance of
  ``zennit_clusters.explain_with_constant(model, X, contrast=k)``, checked a chunk of rows at a time;
- batch size 1 gives what the row gives inside the full batch.
"""
import dataclasses
import math
import os

import numpy as np

from .contract import CONTRAST_CONSTANTS_NAME, CONTRASTS_NAME, INPUT_NAME, PARTS_NAME, ExportCheckError
from .exact import exact_nearest, nearest_centre_predict
from .probes import probe_data
from .session import make_session
from .tolerances import BOUND, measure

__all__ = ['CheckResult', 'verify', 'check_graph']


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """What :func:`verify` compared, and the largest differences it found.

    Attributes
    ----------
    n_rows : int
        Probe rows run through the graph.
    n_compared : int
        Rows whose labels (and relevance) were compared.
    n_excluded : int
        Finite rows within the graph dtype's rounding error of a decision boundary, whose labels may
        legitimately differ; their logits are still compared.
    n_nonfinite : int
        Rows with NaN or infinity, for which the graph must output label -1.
    reference : str
        What the labels were compared with: the estimator's ``predict``, exact arithmetic on the rows where
        ``predict`` disagrees with the network (``n_exact``), or the float64 closed-form explainer.
    max_logit_error, max_relevance_error : float
        Largest absolute differences from the float64 closed-form explainer (relevance: NaN without it).
    n_imprecise : int
        Compared rows whose relevance is off by more than 1 % of the row's largest value (0 on a passed check).
    batch_sizes : tuple of int
        The batch sizes the graph was run with.
    passed : bool
        Whether the graph keeps the contract (False only for graphs kept with ``keep_unverified``).
    failures : tuple of str
        Every way the graph missed the contract (empty on a pass).
    worst : float
        The largest error over all compared rows and outputs as a multiple of its row's tolerance (<= 1 passes).
    n_exact : int
        Rows on which the estimator's ``predict`` disagreed with the network and exact arithmetic decided.
    dtype : str
        The graph's dtype.
    bound : float
        ``BOUND[dtype]``: no row's tolerance exceeds this fraction of its scale.
    max_contrast_error : float
        Largest absolute difference of ``contrasts`` (and ``contrast_constants``) from the float64 closed form
        (NaN for graphs without them).
    """
    n_rows: int
    n_compared: int
    n_excluded: int
    n_nonfinite: int
    reference: str
    max_logit_error: float
    max_relevance_error: float
    n_imprecise: int
    batch_sizes: tuple
    passed: bool = True
    failures: tuple = ()
    worst: float = 0.0
    n_exact: int = 0
    dtype: str = 'float32'
    bound: float = BOUND['float32']
    max_contrast_error: float = math.nan

    def summary(self):
        """One line for the metadata: passed or failed, and by how much."""
        state = 'passed' if self.passed else 'FAILED'
        relevance = '' if math.isnan(self.max_relevance_error) else f', relevance {self.max_relevance_error:.3g}'
        if not math.isnan(self.max_contrast_error):
            relevance += f', contrasts {self.max_contrast_error:.3g}'
        text = (f'{state}: {self.n_rows} probe rows ({self.n_compared} compared, {self.n_excluded} within rounding '
                f'of a boundary, {self.n_nonfinite} non-finite) against {self.reference}; max errors logits '
                f'{self.max_logit_error:.3g}{relevance}; worst row at {self.worst:.3g} times its tolerance '
                f'(bound {self.bound:g} of the row\'s scale in {self.dtype})')
        return text + ('' if self.passed else '; ' + '; '.join(self.failures))


#: probe rows per run of the graph: the graph's intermediates (the (rows, K, K - 1) margins of k-means) stay this
#: many rows whatever the number of probe rows
SESSION_ROWS = 1 << 14


#: elements of one (rows, K, D) output (``parts``, ``contrasts``) per run of the graph: such graphs run fewer rows
WIDE_ELEMENTS = 1 << 22


def session_rows(names, n_clusters, n_features):
    """Rows per run of a graph with these outputs: :data:`SESSION_ROWS`, fewer where an output (and the
    intermediates behind it) is (rows, K, D)."""
    if PARTS_NAME in names or CONTRASTS_NAME in names:
        return max(1, min(SESSION_ROWS, WIDE_ELEMENTS // max(1, n_clusters * n_features)))
    return SESSION_ROWS


def run_in_chunks(session, names, x, rows=None):
    """The outputs ``names`` of the graph on ``x``, run ``rows`` (default :data:`SESSION_ROWS`) rows at a time,
    concatenated."""
    rows = SESSION_ROWS if rows is None else rows
    names = list(names)
    if len(x) <= rows:
        return dict(zip(names, session.run(names, {INPUT_NAME: x})))
    parts = [session.run(names, {INPUT_NAME: x[start:start + rows]}) for start in range(0, len(x), rows)]
    return {name: np.concatenate([part[i] for part in parts]) for i, name in enumerate(names)}


def _check_contrasts(session, model, x_graph, compared, n_rows, seed, failures):
    """Compare the graph's ``contrasts`` (and ``contrast_constants``) with the float64 closed form of
    ``explain_with_constant(model, X, contrast=k)`` for every k on the compared rows, ``n_rows`` rows at a time, so that no (N, K, D) array of all
    the rows is held. Returns (the largest absolute error, the worst row's error over its tolerance)."""
    import torch

    from zennit_clusters import make_explainer

    from .tolerances import measure_contrasts

    # the closed form's contrast=k path, on the graph's input columns (explain() itself would encode and regroup the
    # columns of a pipeline): what explain_with_constant(model, X, contrast=k) runs chunk by chunk
    explainer = make_explainer(model)

    outputs = [output.name for output in session.get_outputs()]
    names = [name for name in (CONTRASTS_NAME, CONTRAST_CONSTANTS_NAME) if name in outputs]
    dtype = x_graph.dtype.name
    n_clusters = int(model.n_clusters)
    rows = np.flatnonzero(compared)
    max_error, worst, n_wrong, first = 0.0, 0.0, 0, None
    for start in range(0, len(rows), n_rows):
        chunk = rows[start:start + n_rows]
        x = x_graph[chunk]
        got = dict(zip(names, session.run(names, {INPUT_NAME: x})))
        for name, shape in ((CONTRASTS_NAME, (len(chunk), n_clusters, x.shape[1])),
                            (CONTRAST_CONSTANTS_NAME, (len(chunk), n_clusters))):
            if name in got and (got[name].shape != shape or got[name].dtype != x.dtype):
                raise ExportCheckError(f'output {name} has shape {got[name].shape} and dtype {got[name].dtype}; '
                                       f'expected {shape} and {x.dtype}.')
        x64 = x.astype(np.float64)
        error = np.zeros(len(chunk))
        for k in range(n_clusters):
            with torch.no_grad():
                competitor = torch.full((len(chunk),), k, dtype=torch.long)
                _, _, relevance, constant = explainer.forward_with_constant(torch.from_numpy(x64), contrast=competitor)
            relevance, constant = relevance.numpy(), constant.numpy()
            error = np.fmax(error, np.abs(got[CONTRASTS_NAME][:, k] - relevance).max(1))
            if CONTRAST_CONSTANTS_NAME in got:
                error = np.fmax(error, np.abs(got[CONTRAST_CONSTANTS_NAME][:, k] - constant))
            elif np.any(constant != 0):  # a graph that leaves out a constant the family has cannot sum to h_ck
                error = np.fmax(error, np.abs(constant))
        tolerance = measure_contrasts(model, x64, dtype, seed).tolerance
        with np.errstate(invalid='ignore', divide='ignore'):
            ratio = np.nan_to_num(error / tolerance, nan=np.inf)
        max_error = max(max_error, float(np.nan_to_num(error, nan=np.inf).max()))
        worst = max(worst, float(ratio.max()))
        if (ratio > 1).any():
            n_wrong += int((ratio > 1).sum())
            if first is None:
                index = int(np.argmax(ratio > 1))
                first = (int(chunk[index]), float(error[index]), float(tolerance[index]))
    if n_wrong:
        row, error, tolerance = first
        failures.append(f'contrasts differ from explain(..., contrast=k) beyond {dtype} rounding on {n_wrong} rows '
                        f'(first row {row}: max error {error:.3g}, tolerance {tolerance:.3g})')
    return max_error, worst


def _first(mask):
    return int(np.flatnonzero(mask)[0])


def _predict(estimator, x):
    """``estimator.predict`` on float64 rows, cast to the dtype its parameters were fitted in."""
    centres = getattr(estimator, 'cluster_centers_', None)
    # KMeans.predict raises "Buffer dtype mismatch" unless X has the centroids' dtype
    dtype = centres.dtype if isinstance(centres, np.ndarray) and centres.dtype.kind == 'f' else np.float64
    x = x.astype(dtype)
    if type(estimator).__module__.startswith('pyspark.'):
        # a pyspark.ml model's predict takes one ml Vector (its batch form is transform() on a Spark DataFrame)
        from pyspark.ml.linalg import Vectors
        return np.asarray([estimator.predict(Vectors.dense(row)) for row in x.astype(np.float64)], dtype=np.int64)
    names = getattr(estimator, 'feature_names_in_', None)
    if names is not None and len(names) == x.shape[1]:  # fitted on a DataFrame: give it one, without sklearn's warning
        import pandas as pd
        x = pd.DataFrame(x, columns=names)
    return np.asarray(estimator.predict(x))


def _reference_labels(estimator, x64, finite, resolvable, network, failures):
    """The labels the graph must give, their name, and how many rows exact arithmetic decided."""
    import torch

    if isinstance(estimator, (torch.Tensor, torch.nn.Module)) or not callable(getattr(estimator, 'predict', None)):
        return network, 'the float64 closed-form explainer', 0
    name = f'{type(estimator).__name__}.predict'
    reference = np.full(len(x64), -1, dtype=np.int64)
    reference[finite] = _predict(estimator, x64[finite])
    wrong = resolvable & (network != reference)
    n_exact = 0
    centres = nearest_centre_predict(estimator) if wrong.any() else None
    if centres is not None:
        rows = np.flatnonzero(wrong)
        nearest = exact_nearest(x64[rows], centres)
        network_exact = nearest[np.arange(len(rows)), network[rows]]
        predict_exact = nearest[np.arange(len(rows)), reference[rows]]
        decided = rows[network_exact & ~predict_exact]  # predict is wrong there, the network right
        reference[decided] = network[decided]
        n_exact = len(decided)
        wrong = resolvable & (network != reference)
        if n_exact:
            name = (f'exact nearest-centre arithmetic on the {n_exact} rows where {name} is less exact than the '
                    f'network (its |x|^2 - 2 x.mu + |mu|^2 cancels), {name} on the others')
    if wrong.any():
        row = _first(wrong)
        failures.append(f'the neuralized model itself disagrees with {name} on {int(wrong.sum())} rows (first row '
                        f'{row}: {network[row]} vs {reference[row]}), so no graph of it can reproduce predict')
    return reference, name, n_exact


def check_graph(graph, model_or_estimator, X=None, execution_provider='cpu', seed=0, training_data=None):
    """:func:`verify` on a graph given as a path, bytes or proto, returning a failed result instead of raising.

    Returns
    -------
    CheckResult
        ``passed`` False (with ``failures``) if the graph misses the contract.

    Raises
    ------
    ExportCheckError
        Only when nothing can be checked (unknown input dtype, wrong output shapes, no finite or no
        resolvable probe row).
    """
    import onnx
    import torch

    from zennit_clusters import neuralize
    from zennit_clusters.validation import check_n_features

    model = neuralize(model_or_estimator, X=training_data)
    if isinstance(graph, bytes):
        proto = onnx.load_from_string(graph)
    elif hasattr(graph, 'SerializeToString'):
        proto, graph = graph, graph.SerializeToString()
    else:
        proto = onnx.load(os.fspath(graph), load_external_data=False)
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    beta = float(metadata['beta']) if 'beta' in metadata else None
    elem_type = proto.graph.input[0].type.tensor_type.elem_type
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    if dtype not in (np.float32, np.float64):
        raise ExportCheckError(f'the graph input has dtype {dtype}; expected float32 or float64.')
    session = make_session(graph, execution_provider)
    names = [output.name for output in session.get_outputs()]
    with_relevance = 'relevance' in names
    n_clusters, n_features = int(model.n_clusters), int(model.n_features_in_)

    if X is None:
        X = probe_data(model, seed=seed)
    else:  # the user's columns (a DataFrame is checked against the fitted names) -> the graph's input
        X = model.encode(X)
    if torch.is_tensor(X):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.dtype.kind not in 'fiu':
        raise TypeError(f'probe data X must hold real numbers, got an array of dtype {X.dtype}.')
    check_n_features(X, n_features, name='probe data X')
    x_graph = np.ascontiguousarray(X, dtype=dtype)        # what the graph receives
    x64 = x_graph.astype(np.float64)                        # the same values, for the references
    finite = np.isfinite(x64).all(1)
    if not finite.any():
        raise ExportCheckError(f'the {len(X)} probe rows all hold NaN or infinity; nothing to check the graph on.')

    found = measure(model, beta, x64, dtype.name, seed)
    n_rows = session_rows(names, n_clusters, n_features)
    # the contrasts are compared a chunk at a time below (_check_contrasts), never held for all the rows
    main = [name for name in names if name not in (CONTRASTS_NAME, CONTRAST_CONSTANTS_NAME)]
    got = run_in_chunks(session, main, x_graph, rows=n_rows)
    expected_shapes = {'label': (len(X),), 'logits': (len(X), n_clusters), 'relevance': (len(X), n_features),
                       'parts': (len(X), n_clusters, n_features)}
    for name, array in got.items():
        want_dtype = np.int64 if name == 'label' else dtype
        if array.shape != expected_shapes[name] or array.dtype != want_dtype:
            raise ExportCheckError(f'output {name} has shape {array.shape} and dtype {array.dtype}; expected '
                                   f'{expected_shapes[name]} and {np.dtype(want_dtype)}.')
    if not found.resolvable.any():
        raise ExportCheckError(f'could not check labels: all {int(finite.sum())} finite probe rows lie within '
                               f'{dtype} rounding of a decision boundary. Pass other probe data.')

    failures = []
    resolvable = found.resolvable
    if np.any(~finite) and np.any(got['label'][~finite] != -1):
        row = _first(~finite & (got['label'] != -1))
        failures.append(f'row {row} holds NaN or infinity but got label {got["label"][row]} instead of -1')
    # a pipeline with host-side encoders: the graph takes the encoded matrix, which the pipeline's numeric part predicts on
    numeric_part = getattr(model, 'numeric_estimator', None)
    estimator = model_or_estimator if numeric_part is None else numeric_part(model_or_estimator)
    reference, reference_name, n_exact = _reference_labels(estimator, x64, finite, resolvable, found.label,
                                                           failures)
    wrong = resolvable & (got['label'] != reference)
    if wrong.any():
        row = _first(wrong)
        failures.append(f'labels differ from {reference_name} on {int(wrong.sum())} of {int(resolvable.sum())} rows '
                        f'(first row {row}: graph {got["label"][row]}, reference {reference[row]})')

    with np.errstate(invalid='ignore', divide='ignore'):
        logit_error = np.abs(got['logits'] - found.logits)
        logit_ratio = np.where(finite, np.nan_to_num(logit_error.max(1) / found.logit_tolerance, nan=np.inf), 0.0)
    wrong = logit_ratio > 1
    if wrong.any():
        row = _first(wrong)
        failures.append(f'logits differ beyond {dtype} rounding on {int(wrong.sum())} rows (first row {row}: max '
                        f'error {logit_error[row].max():.3g}, tolerance {found.logit_tolerance[row]:.3g})')
    max_logit_error = float(logit_error[finite].max())
    worst = float(logit_ratio.max())

    max_relevance_error, n_imprecise = math.nan, 0
    compared = resolvable & (got['label'] == found.label)
    max_contrast_error = math.nan
    if CONTRASTS_NAME in names and compared.any():
        max_contrast_error, contrast_worst = _check_contrasts(session, model, x_graph, compared, n_rows, seed,
                                                              failures)
        worst = max(worst, contrast_worst)
    if with_relevance:
        with np.errstate(invalid='ignore', divide='ignore'):
            relevance_error = np.abs(got['relevance'] - found.relevance)
            ratio = np.where(compared, np.nan_to_num(relevance_error.max(1) / found.relevance_tolerance, nan=np.inf),
                             0.0)
            n_imprecise = int((compared & ~(relevance_error.max(1) <= 0.01 * found.relevance_scale)).sum())
        wrong = ratio > 1
        if wrong.any():
            row = _first(wrong)
            failures.append(f'relevance differs beyond {dtype} rounding on {int(wrong.sum())} rows (first row {row}: '
                            f'max error {relevance_error[row].max():.3g}, tolerance '
                            f'{found.relevance_tolerance[row]:.3g}, row scale {found.relevance_scale[row]:.3g})')
        max_relevance_error = float(np.nan_to_num(relevance_error[compared], nan=np.inf).max()) \
            if compared.any() else 0.0
        worst = max(worst, float(ratio.max()))
        if 'parts' in got and compared.any():
            # each competitor's part against the float64 closed form, within the row's relevance tolerance
            from zennit_clusters import explain
            parts = explain(model, x64[compared], beta=beta, per_competitor=True)
            part_error = np.abs(got['parts'][compared] - parts).max((1, 2))
            part_ratio = np.nan_to_num(part_error / found.relevance_tolerance[compared], nan=np.inf)
            if (part_ratio > 1).any():
                row = int(np.flatnonzero(compared)[np.argmax(part_ratio > 1)])
                failures.append(f'per-competitor parts differ beyond {dtype} rounding on {int((part_ratio > 1).sum())} '
                                f'rows (first row {row})')
            worst = max(worst, float(part_ratio.max()))

    # a single row must give what the same row gives inside a large batch (the batch axis is dynamic)
    batch_sizes = (len(X),)
    if len(X) > 1:
        row = _first(finite)
        single = dict(zip(names, session.run(None, {INPUT_NAME: x_graph[row:row + 1]})))
        batch_sizes = (len(X), 1)
        if single['label'][0] != got['label'][row] and resolvable[row]:
            failures.append(f'batch size 1 gives label {single["label"][0]} for row {row}, the batch '
                            f'{got["label"][row]}')
        if np.abs(single['logits'][0] - got['logits'][row]).max() > 2 * found.logit_tolerance[row]:
            failures.append(f'batch size 1 gives other logits for row {row} than the full batch')
        if with_relevance and resolvable[row] and \
                np.abs(single['relevance'][0] - got['relevance'][row]).max() > 2 * found.relevance_tolerance[row]:
            failures.append(f'batch size 1 gives other relevance for row {row} than the full batch')

    return CheckResult(
        n_rows=len(X), n_compared=int(resolvable.sum()), n_excluded=int((finite & ~resolvable).sum()),
        n_nonfinite=int((~finite).sum()), reference=reference_name, max_logit_error=max_logit_error,
        max_relevance_error=max_relevance_error, n_imprecise=n_imprecise, batch_sizes=batch_sizes,
        passed=not failures, failures=tuple(failures), worst=worst, n_exact=n_exact, dtype=dtype.name,
        bound=BOUND[dtype.name], max_contrast_error=max_contrast_error)


def failure_message(check):
    """The error message of a failed check."""
    return ('the ONNX graph does not keep its contract under onnxruntime: ' + '; '.join(check.failures) + '.')


def verify(path, model_or_estimator, X=None, execution_provider='cpu', seed=0, training_data=None):
    """Check an exported graph under onnxruntime against the model it was exported from.

    Labels must be identical to the estimator's ``predict`` (exact arithmetic decides the rows where a
    nearest-centre ``predict`` disagrees with the network; the float64 closed-form explainer is the reference
    for models without a ``predict``), logits and relevance must match the float64 closed-form explainer
    (:func:`zennit_clusters.make_explainer`) to each row's tolerance, and rows with NaN or infinity must get
    label -1. The graph runs at the full batch and at batch size 1.

    Tolerances are per row (:mod:`exporters.onnx.tolerances`): ``ROUNDING_FACTOR`` (64) times the rounding
    error that torch's own float32 evaluation of the same explainer shows on that row (the largest over the
    row and two one-ulp perturbations of it, scaled to the graph's dtype), plus ``ULP_FACTOR`` (1024) times the
    dtype's unit roundoff times the row's largest reference value, and never more than ``BOUND[dtype]`` (1e-3
    in float32, 1e-6 in float64) times that value. A wrong graph misses them by orders of magnitude; rounding
    does not; a family whose float32 arithmetic is off by more than the bound fails in float32.

    Points closer to a decision boundary than the dtype can resolve may legitimately change cluster in
    float32. They are excluded from the label and relevance comparison by their float64 margin: a row
    is compared when the gap between its two largest float64 logits exceeds twice its logit tolerance
    (and, for float32, torch's float32 evaluation gives the float64 label). The result counts them
    (``n_excluded``); their logits are still compared.

    Parameters
    ----------
    path : str, os.PathLike, bytes or onnx.ModelProto
        The ONNX graph, as written by :func:`exporters.onnx.export` (beta is read from its metadata).
    model_or_estimator : the model it was exported from
    X : array-like of shape (n, D), optional
        Probe rows; default :func:`probe_data`. Rows with NaN or infinity are allowed.
    execution_provider : {'cpu', 'cuda'}
    seed : int
        Seed of the generated probe data.
    training_data : array-like of shape (n, D), optional
        Passed to :func:`zennit_clusters.neuralize` (models that need it, such as labelled partitions).

    Returns
    -------
    CheckResult

    Raises
    ------
    ExportCheckError
        On any miss, naming the first offending row (``error.check`` holds the full result).
    """
    check = check_graph(path, model_or_estimator, X=X, execution_provider=execution_provider, seed=seed,
                        training_data=training_data)
    if not check.passed:
        raise ExportCheckError(failure_message(check), check=check)
    return check
