"""Export a clustering model, its cluster evidence and its NEON explanation as an ONNX graph.

The graph is the closed-form explainer of :func:`zennit_clusters.make_explainer`, exported with torch's
ONNX exporter, so every model family that :func:`zennit_clusters.neuralize` supports exports without
code of its own here. Its contract (``docs/onnx.md``):

- input ``X``: (batch, D), float32 or float64, with a dynamic batch axis;
- output ``label``: int64 (batch,), the estimator's ``predict``; -1 for rows holding NaN or infinity;
- output ``logits``: (batch, K), the cluster evidence ``f_k(x)`` (NEON); ``argmax == label``;
- output ``relevance`` (only with ``explain=True``): (batch, D), the NEON relevance of every feature for
  the evidence of the row's assigned cluster;
- output ``parts`` (only with ``per_competitor=True``): (batch, K, D), each competitor's part of ``relevance``;
- output ``contrasts`` (only with ``contrasts=True``): (batch, K, D), ``[n, k]`` the relevance of the margin
  h_ck between the row's cluster c and competitor k ("why c rather than k"), zero at k = c; and, for families
  with a constant term (mixtures), ``contrast_constants`` (batch, K), with ``contrasts.sum(-1) +
  contrast_constants == h_ck``.

float32 by default; float64 by default for model families whose float32 arithmetic cannot keep the check's
bound (member-point networks), which the result and the metadata say. In float32 the graph first subtracts a
fixed centre, computed in float64, so labels stay exact on data far from the origin. ``metadata_props``
record the producer and version, the source model, K, D, beta, dtype, what each output means, and the
check's outcome.

Before anything is written, :func:`export` runs the graph in onnxruntime and holds it to its contract (see
:func:`verify`); a graph that misses it raises :class:`ExportCheckError` and no file is written or replaced,
unless ``keep_unverified=True`` keeps it with the failure recorded in its metadata. The file appears in one
step, so a killed export leaves the old file (or none), never a partial one.

Modules: :mod:`~exporters.onnx.contract` (names, errors), :mod:`~exporters.onnx.graph` (building),
:mod:`~exporters.onnx.probes`, :mod:`~exporters.onnx.tolerances`, :mod:`~exporters.onnx.exact`,
:mod:`~exporters.onnx.verify` (the check), :mod:`~exporters.onnx.files` (atomic writing),
:mod:`~exporters.onnx.inspect`, :mod:`~exporters.onnx.session`, and ``__main__`` (the command line,
``python -m exporters.onnx --help``). Importing this package loads none of torch, onnx or numpy; they load
when first needed.
"""
import dataclasses
import importlib
import math
import os
import warnings

from .contract import (DTYPES, INPUT_NAME, MIN_OPSET, OUTPUT_NAMES, PRODUCER, ExportCheckError, ExportError,
                       PrecisionWarning, ProviderUnavailableError, check_dtype, check_opset)

__all__ = [
    'export', 'build_graph', 'verify', 'probe_data', 'make_session', 'main', 'ExportError', 'ExportCheckError',
    'ProviderUnavailableError', 'PrecisionWarning', 'ExportResult', 'CheckResult', 'INPUT_NAME', 'OUTPUT_NAMES',
    'MIN_OPSET', 'inspect_graph', 'check_graph',
]

#: public names defined in submodules, loaded on first use (keeps ``python -m exporters.onnx --help`` fast)
_LAZY = {
    'build_graph': 'graph', 'verify': 'verify', 'check_graph': 'verify', 'CheckResult': 'verify',
    'probe_data': 'probes', 'make_session': 'session', 'main': '__main__', 'inspect_graph': 'inspect',
    'ROUNDING_FACTOR': 'tolerances', 'ULP_FACTOR': 'tolerances', 'ROUNDING_SAMPLES': 'tolerances',
    'BOUND': 'tolerances', 'PROVIDERS': 'session',
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f'{__name__}.{_LAZY[name]}'), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote, and how it was checked.

    Attributes
    ----------
    path, source : str
        The file, and the source model's name.
    n_clusters, n_features : int
    beta : float
    dtype : str
        The graph's dtype.
    opset : int
    outputs : tuple of str
    check : CheckResult
        ``check.passed`` is False only for a graph kept with ``keep_unverified=True``.
    dtype_reason : str
        Why this dtype: asked for, or float64 because the family's float32 arithmetic misses the bound.
    """
    path: str
    source: str
    n_clusters: int
    n_features: int
    beta: float
    dtype: str
    opset: int
    outputs: tuple
    check: object
    dtype_reason: str = ''

    def __str__(self):
        check = self.check
        excluded = (f' ({check.n_excluded} within {self.dtype} rounding of a boundary: labels not compared)'
                    if check.n_excluded else '')
        explained = not math.isnan(check.max_relevance_error)
        errors = f'{check.max_logit_error:.3g}' + (f' and {check.max_relevance_error:.3g}' if explained else '')
        head = (f'wrote {self.path}: {self.source}, K={self.n_clusters}, D={self.n_features}, {self.dtype}, '
                f'opset {self.opset}, beta={self.beta:g}, outputs {", ".join(self.outputs)}.\n')
        if self.dtype_reason and self.dtype == 'float64':
            head += f'{self.dtype_reason}.\n'
        if not check.passed:
            return head + (f'NOT VERIFIED (kept with keep_unverified): the graph misses its contract under '
                           f'onnxruntime, worst row at {check.worst:.3g} times its tolerance: '
                           + '; '.join(check.failures) + '.')
        contrasted = not math.isnan(getattr(check, 'max_contrast_error', math.nan))
        if contrasted:
            errors += f' and {check.max_contrast_error:.3g}'
        return head + (f'Checked under onnxruntime on {check.n_rows} rows{excluded}, batch sizes '
                       f'{" and ".join(map(str, check.batch_sizes))}: labels identical to {check.reference}; logits'
                       f'{" and relevance" if explained else ""}{" and contrasts (every k)" if contrasted else ""} match the '
                       f'float64 closed-form explainer '
                       f'(max errors {errors}; worst row at {check.worst:.2g} of its tolerance, bound '
                       f'{check.bound:g} of the row\'s scale).')


def _choose_dtype(model, beta, X, explain, seed, contrasts=False):
    """float32 where the family's float32 arithmetic keeps the bound on the probe rows, else float64."""
    from .probes import probe_data
    from .tolerances import BOUND, float32_suffices

    rows = probe_data(model, seed=seed) if X is None else X
    ok, worst, n_rows = float32_suffices(model, beta, rows, explain, seed, contrasts=contrasts)
    if ok:
        return 'float32', ''
    return 'float64', (f'float64 by default: the float32 arithmetic of this {model.source} model is off by up to '
                       f'{worst:.3g} of a row\'s scale on {n_rows} probe rows, more than the check allows '
                       f'({BOUND["float32"]:g}); pass dtype="float32" to insist (the check will then fail)')


def export(model_or_estimator, path, explain=False, beta=None, dtype=None, opset=MIN_OPSET, *, X=None,
           training_data=None, execution_provider='cpu', seed=0, keep_unverified=False, per_competitor=False,
           contrasts=False):
    """Build a clustering model's ONNX graph, check it under onnxruntime, and only then write it.

    Parameters
    ----------
    model_or_estimator : fitted estimator, torch.Tensor, torch.nn.Module or NeuralizedModel
        Anything :func:`zennit_clusters.neuralize` accepts (a fitted scikit-learn ``KMeans``,
        ``MiniBatchKMeans``, ``BisectingKMeans``, Gaussian mixture, a (K, D) centroid tensor, ...).
    path : str or os.PathLike
        Where to write the ``.onnx`` file. An existing file is replaced, in one step, only by a graph that
        passed the check.
    explain : bool
        Add the ``relevance`` output (the NEON explanation of each row's assigned cluster).
    beta : float, optional
        Soft-min stiffness of the explanation (>= 0, ``math.inf`` for the nearest competitor only);
        default the model's own. Recorded in the metadata either way.
    dtype : {'float32', 'float64'}, optional
        Input, logits and relevance dtype. Default float32, or float64 where the family's float32 arithmetic
        cannot keep the check's bound on the probe rows (member-point networks: DBSCAN, HDBSCAN,
        agglomerative, kernel k-means); the result's message and the ``dtype_reason`` metadata say so.
    opset : int
        ONNX opset, >= 18 (default 18).
    X : array-like of shape (n, D), optional
        Probe data for the check, instead of the generated :func:`probe_data`.
    training_data : array-like of shape (n, D), optional
        The model's training data, passed to :func:`zennit_clusters.neuralize`: it sets the default
        beta by the authors' heuristic, and labelled partitions (DBSCAN, ...) need it to be neuralized.
    execution_provider : {'cpu', 'cuda'}
        The onnxruntime provider the check runs on. ``'cuda'`` needs onnxruntime-gpu.
    seed : int
        Seed of the generated probe data.
    per_competitor : bool
        Also add the ``parts`` output (batch, K, D) after ``relevance`` (implies ``explain``): the part of the
        explanation that comes from each competing cluster, checked against
        ``zennit_clusters.explain(..., per_competitor=True)``.
    contrasts : bool
        Also add the ``contrasts`` output (batch, K, D) after the others: ``[n, k]`` the relevance of the margin
        h_ck between the row's assigned cluster c and competitor k by the midpoint rule, what
        ``zennit_clusters.explain(model, X, contrast=k)`` gives for that row (zero at k = c; beta plays no part);
        for families with a constant term (Gaussian mixtures) also ``contrast_constants`` (batch, K), so that
        ``contrasts.sum(-1) + contrast_constants == h_ck``. The check compares both with the closed form for
        every k. Centroid models, mixtures and member networks; a model with a noise rule (DBSCAN) or a family
        without pairwise margins raises a ValueError.
    keep_unverified : bool
        Write a graph that fails the check anyway; its ``metadata_props['check']`` then starts with
        ``FAILED`` and says by how much, and ``result.check.passed`` is False.

    Returns
    -------
    ExportResult
        Where the file went and what the check compared (``str()`` gives a one-paragraph summary).

    Raises
    ------
    TypeError, ValueError
        Bad arguments; an unsupported or unfitted model (``sklearn.exceptions.NotFittedError``).
    ProviderUnavailableError
        The execution provider is not available.
    ExportError
        torch could not export the model, or the graph fails ``onnx.checker``.
    ExportCheckError
        The graph misses the check's contract under onnxruntime; nothing was written (``error.check``).
    """
    dtype = None if dtype is None else check_dtype(dtype)
    opset = check_opset(opset)
    from .session import check_provider

    check_provider(execution_provider)  # fail before the slow export, not after
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f'the output directory does not exist: {directory}')
    if os.path.isdir(path):
        raise IsADirectoryError(f'the output path is a directory: {path}')
    if not os.access(directory, os.W_OK):
        raise PermissionError(f'cannot write to {directory}: permission denied')

    import numpy as np

    from zennit_clusters import neuralize
    from zennit_clusters.validation import check_beta, check_n_features

    from .files import write_atomically
    from .graph import build_graph, contrast_explainer, set_metadata, type_name
    from .verify import check_graph, failure_message

    model = neuralize(model_or_estimator, X=training_data)
    beta = model.beta if check_beta(beta) is None else check_beta(beta)
    if contrasts:
        contrast_explainer(model)  # refuse a family without a contrastive reading now, not after the slow steps
    encoded = None if X is None else model.encode(X)  # the graph's input: the user's columns, encoded where a
    if X is not None:  # pipeline encodes; a wrong width (or wrong DataFrame columns) fails now, not after the export
        check_n_features(np.asarray(encoded), model.n_features_in_, name='probe data X')
    reason = 'float64, as asked' if dtype == 'float64' else 'float32, as asked' if dtype else ''
    if dtype is None:
        dtype, reason = _choose_dtype(model, beta, encoded, explain or per_competitor, seed, contrasts)
        reason = reason or 'float32 (the default; the model\'s float32 arithmetic keeps the check\'s bound)'
    # record the type the user exported, not the neuralized module it became
    explain = explain or per_competitor
    proto = build_graph(model, explain=explain, beta=beta, dtype=dtype, opset=opset,
                        source_type=type_name(model_or_estimator), precision_note=reason,
                        per_competitor=per_competitor, contrasts=contrasts)
    check = check_graph(proto.SerializeToString(), model_or_estimator, X=X, execution_provider=execution_provider,
                        seed=seed, training_data=training_data)
    if not check.passed and not keep_unverified:
        raise ExportCheckError(failure_message(check) + ' No file was written (keep_unverified=True keeps it, '
                               'marked as failed in its metadata).', check=check)
    set_metadata(proto, {'check': check.summary()})
    if model.feature_groups is not None or model.feature_names_in_ is not None:
        import json
        # the input contract of a pipeline: the graph takes the network's input columns, named here (for host-side
        # encoders, the encoded matrix: model.encode(X)); docs/pipelines.md
        set_metadata(proto, {'input_columns': json.dumps([str(name) for name in model.get_feature_names_out()])})
    write_atomically(path, proto.SerializeToString())
    if not check.passed:
        warnings.warn(f'{path} failed the export check and was kept (keep_unverified): {failure_message(check)}',
                      stacklevel=2)
    outputs = tuple(value.name for value in proto.graph.output)
    return ExportResult(path=path, source=str(model.source), n_clusters=int(model.n_clusters),
                        n_features=int(model.n_features_in_), beta=float(beta), dtype=dtype, opset=opset,
                        outputs=outputs, check=check, dtype_reason=reason)
