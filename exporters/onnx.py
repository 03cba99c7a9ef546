"""Export a clustering model, its cluster evidence and its NEON explanation as an ONNX graph.

The graph is the closed-form explainer of :func:`zennit_clusters.make_explainer`, exported with torch's
ONNX exporter, so every model family that :func:`zennit_clusters.neuralize` supports exports without
code of its own here. Its contract:

- input ``X``: (batch, D), float32 (default) or float64, with a dynamic batch axis;
- output ``label``: int64 (batch,), the estimator's ``predict``; -1 for rows holding NaN or infinity;
- output ``logits``: (batch, K), the cluster evidence ``f_k(x)`` (NEON.md); ``argmax == label``;
- output ``relevance`` (only with ``explain=True``): (batch, D), the NEON relevance of every feature for
  the evidence of the row's assigned cluster.

In float32 the graph first subtracts a fixed centre (NEON.md section 1), computed in float64 and folded
into the graph as a constant, so labels stay exact on data far from the origin. ``metadata_props``
record the producer and version, the source model, K, D, beta, dtype and what each output means.

After writing, :func:`export` runs the file in onnxruntime and compares it with the estimator (see
:func:`verify`); a mismatch is an error and no file is left behind.

Command line (``python -m exporters.onnx --help``)::

    python -m exporters.onnx model.pkl -o model.onnx --explain
"""
import argparse
import contextlib
import dataclasses
import io
import math
import os
import pickle
import re
import sys
import uuid
import warnings

import numpy as np

__all__ = [
    'export', 'build_graph', 'verify', 'probe_data', 'make_session', 'main', 'ExportError', 'ExportCheckError',
    'ProviderUnavailableError', 'PrecisionWarning', 'ExportResult', 'CheckResult', 'INPUT_NAME', 'OUTPUT_NAMES',
    'MIN_OPSET',
]

INPUT_NAME = 'X'
OUTPUT_NAMES = ('label', 'logits', 'relevance')
#: ONNX opset 17 lacks the reduction forms (axes as an input) the graph uses
MIN_OPSET = 18
DTYPES = ('float32', 'float64')
PROVIDERS = {'cpu': 'CPUExecutionProvider', 'cuda': 'CUDAExecutionProvider'}
PRODUCER = 'zennit-clusters'

#: How the check scales its tolerances (see :func:`verify`), per row: a multiple of the rounding error that
#: torch's own float32 evaluation of the explainer shows on the row (the largest over ROUNDING_SAMPLES nearby
#: points), plus a multiple of the dtype's unit roundoff times the row's largest value (about 6e-5 of it in
#: float32, 1e-13 in float64), since onnxruntime's kernels round differently from torch's (its log-sum-exp
#: loses up to 1.4e-5 of the row's scale where torch loses 1e-7). Over k-means, bisecting k-means, Gaussian
#: mixtures of every covariance type, kernel k-means and agglomerative member networks on digits, wine and
#: breast cancer (raw and offset by 1000), onnxruntime's largest error was a quarter of this tolerance.
ROUNDING_FACTOR = 64.0
ULP_FACTOR = 1024.0
ROUNDING_SAMPLES = 3
#: relevance errors above this fraction of the row's largest relevance are counted as imprecise
IMPRECISE = 0.01


class ExportError(RuntimeError):
    """The model could not be exported to a working ONNX graph."""


class ExportCheckError(ExportError):
    """The written graph disagrees with the estimator under onnxruntime; the file was removed."""


class ProviderUnavailableError(ExportError):
    """The requested onnxruntime execution provider is not available here."""


class PrecisionWarning(UserWarning):
    """The graph's relevance is ill-conditioned in its dtype on some rows (see ``CheckResult.n_imprecise``)."""


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
        What the labels were compared with (the estimator's ``predict`` or the float64 explainer).
    max_logit_error, max_relevance_error : float
        Largest absolute differences from the float64 closed-form explainer (relevance: NaN without it).
    n_imprecise : int
        Compared rows whose relevance is off by more than 1 % of the row's largest value: ill-conditioned
        in the graph's dtype (as in torch's own evaluation of the explainer); float64 avoids it.
    batch_sizes : tuple of int
        The batch sizes the graph was run with.
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


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote, and how it was checked."""
    path: str
    source: str
    n_clusters: int
    n_features: int
    beta: float
    dtype: str
    opset: int
    outputs: tuple
    check: CheckResult

    def __str__(self):
        check = self.check
        excluded = (f' ({check.n_excluded} within {self.dtype} rounding of a boundary: labels not compared)'
                    if check.n_excluded else '')
        explained = not math.isnan(check.max_relevance_error)
        errors = f'{check.max_logit_error:.3g}' + (f' and {check.max_relevance_error:.3g}' if explained else '')
        return (f'wrote {self.path}: {self.source}, K={self.n_clusters}, D={self.n_features}, {self.dtype}, '
                f'opset {self.opset}, beta={self.beta:g}, outputs {", ".join(self.outputs)}.\n'
                f'Checked under onnxruntime on {check.n_rows} rows{excluded}, batch sizes '
                f'{" and ".join(map(str, check.batch_sizes))}: labels identical to {check.reference}; logits'
                f'{" and relevance" if explained else ""} match the float64 closed-form explainer '
                f'(max errors {errors}).')


# ----------------------------------------------------------------------------------------------- helpers

def _check_dtype(dtype):
    """``'float32'``/``'float64'`` (or the numpy/torch dtype) -> the name."""
    name = getattr(dtype, '__name__', None) or str(dtype).replace('torch.', '')
    name = {'float': 'float32', 'double': 'float64'}.get(name, name)
    if name not in DTYPES:
        raise ValueError(f'dtype must be one of {", ".join(DTYPES)}, got {dtype!r}.')
    return name


def _check_opset(opset):
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f'opset must be an int >= {MIN_OPSET}, got {type(opset).__name__} {opset!r}.')
    if opset < MIN_OPSET:
        raise ValueError(f'opset must be >= {MIN_OPSET} (the graph needs opset-18 reductions), got {opset}.')
    return int(opset)


def _check_provider(execution_provider):
    """The onnxruntime provider list for ``'cpu'`` or ``'cuda'``; a clear error if it is not available."""
    name = str(execution_provider).lower()
    if name not in PROVIDERS:
        raise ValueError(f'execution_provider must be one of {", ".join(PROVIDERS)}, got {execution_provider!r}.')
    import onnxruntime

    provider = PROVIDERS[name]
    available = onnxruntime.get_available_providers()
    if provider not in available:
        raise ProviderUnavailableError(
            f'the {name.upper()} execution provider was requested, but this onnxruntime {onnxruntime.__version__} '
            f'offers only {", ".join(available)}. For CUDA install the onnxruntime-gpu package that matches your '
            f'CUDA version (in place of onnxruntime); or use the CPU provider (--provider cpu).')
    # CPU stays as the fallback for any node the GPU provider does not implement
    return [provider] if provider == 'CPUExecutionProvider' else [provider, 'CPUExecutionProvider']


def make_session(model, execution_provider='cpu', threads=None):
    """An onnxruntime session for an exported graph.

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
        The graph (a file path, serialized bytes or the proto).
    execution_provider : {'cpu', 'cuda'}
        ``'cuda'`` needs the onnxruntime-gpu package and a working CUDA setup; CPU covers the nodes the
        GPU provider lacks.
    threads : int, optional
        Intra-op threads (default: onnxruntime's choice, one per physical core).

    Raises
    ------
    ProviderUnavailableError
        If the provider is not available, or onnxruntime could not start it.
    """
    import onnxruntime

    providers = _check_provider(execution_provider)
    if hasattr(model, 'SerializeToString'):
        model = model.SerializeToString()
    elif not isinstance(model, bytes):
        model = os.fspath(model)
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    session = onnxruntime.InferenceSession(model, options, providers=providers)
    if providers[0] not in session.get_providers():
        # onnxruntime falls back to the CPU silently when CUDA libraries or the driver are missing
        raise ProviderUnavailableError(
            f'onnxruntime could not start the {providers[0]} (it fell back to {", ".join(session.get_providers())}); '
            'check the CUDA driver and libraries onnxruntime-gpu needs.')
    return session


def _source_type(obj):
    kind = type(obj)
    return f'{kind.__module__}.{kind.__qualname__}'


def _exact_scalar_tensor(s, dtype=1, layout='', device='', pin_memory=False):
    """ONNX translation of ``aten.scalar_tensor`` keeping the scalar's full precision.

    torch.onnx's default translation (torch 2.14, onnxscript 0.7) makes a float32 constant and casts it,
    so a float64 graph would multiply by beta rounded to float32 (a 1e-8 relative error in relevance).
    """
    import onnx
    from onnxscript import opset18 as op

    dtype = 1 if dtype in (None, -1) else int(dtype)  # torch's default dtype, float32
    value = np.array(s, dtype=onnx.helper.tensor_dtype_to_np_dtype(dtype))
    return op.Constant(value=onnx.numpy_helper.from_array(value))


def _graph_module(explainer, with_relevance):
    """The module torch exports: the explainer's outputs, without relevance unless asked for."""
    import torch

    class ClusterGraph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.explainer = explainer

        def forward(self, X):
            label, logits, relevance = self.explainer(X)
            # without relevance the exporter drops every node that only relevance needs
            return (label, logits, relevance) if with_relevance else (label, logits)

    return ClusterGraph().eval()


def _rename_values(graph, renames):
    """Rename graph inputs/outputs (and every use) where the exporter did not take the requested names."""
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        value.name = renames.get(value.name, value.name)


def _describe_outputs(n_clusters, n_features, dtype, beta, with_relevance):
    docs = {
        'label': 'int64 (batch,): the assigned cluster, as the estimator\'s predict; -1 for rows with NaN or '
                 'infinity.',
        'logits': f'{dtype} (batch, {n_clusters}): cluster evidence f_k(x) of NEON; argmax is label, and f_k > 0 '
                  'exactly for the assigned cluster of a centroid model.',
    }
    if with_relevance:
        docs['relevance'] = (
            f'{dtype} (batch, {n_features}): NEON relevance of each input feature for the evidence of the '
            f'row\'s assigned cluster (soft-min stiffness beta={beta!r}); sums over features to '
            'logits[row, label], less any input-independent term a model family reports separately '
            '(zennit_clusters.explain_with_constant).')
    return docs


# ---------------------------------------------------------------------------------------------- the graph

def build_graph(model_or_estimator, explain=False, beta=None, dtype='float32', opset=MIN_OPSET, source_type=None):
    """The ONNX graph of a clustering model, in memory, unchecked (see :func:`export`).

    Parameters
    ----------
    model_or_estimator : fitted estimator, torch.Tensor, torch.nn.Module or NeuralizedModel
        Anything :func:`zennit_clusters.neuralize` accepts.
    explain : bool
        Add the ``relevance`` output.
    beta : float, optional
        Soft-min stiffness of the explanation (>= 0, ``math.inf`` for the nearest competitor only);
        default the model's own.
    dtype : {'float32', 'float64'}
    opset : int
        ONNX opset, >= 18.
    source_type : str, optional
        The type recorded as ``source_type`` in the metadata; default that of ``model_or_estimator``.

    Returns
    -------
    onnx.ModelProto
        Passed ``onnx.checker.check_model(full_check=True)``.
    """
    import onnx
    import torch

    import zennit_clusters
    from zennit_clusters import make_explainer, neuralize
    from zennit_clusters.validation import check_beta

    dtype = _check_dtype(dtype)
    opset = _check_opset(opset)
    model = neuralize(model_or_estimator)
    beta = model.beta if check_beta(beta) is None else check_beta(beta)
    torch_dtype = getattr(torch, dtype)
    explainer = make_explainer(model, beta=beta).to(torch_dtype).eval()
    module = _graph_module(explainer, explain)
    names = list(OUTPUT_NAMES if explain else OUTPUT_NAMES[:2])
    n_clusters, n_features = int(model.n_clusters), int(model.n_features_in_)
    example = model.cluster_centers.detach().to(torch_dtype).cpu()
    example = example.repeat(max(1, -(-2 // example.shape[0])), 1)  # >= 2 rows: batch 1 would be specialised

    log = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            warnings.simplefilter('ignore')
            program = torch.onnx.export(
                module, (example,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                output_names=names, dynamic_shapes={'X': {0: torch.export.Dim('batch')}}, optimize=True,
                verbose=False, custom_translation_table={torch.ops.aten.scalar_tensor.default: _exact_scalar_tensor})
    except Exception as error:  # noqa: BLE001 -- the exporter raises many types; all mean the same here
        first = str(error).strip().splitlines()[0] if str(error).strip() else ''
        raise ExportError(f'torch.onnx could not export the explainer of {model.source} '
                          f'({type(error).__name__}: {first}).') from error
    proto = program.model_proto

    graph = proto.graph
    renames = {}
    if len(graph.input) != 1 or len(graph.output) != len(names):
        raise ExportError(f'the exported graph has inputs {[v.name for v in graph.input]} and outputs '
                          f'{[v.name for v in graph.output]}; expected one input and outputs {names}.')
    renames[graph.input[0].name] = INPUT_NAME
    renames.update({value.name: name for value, name in zip(graph.output, names)})
    if any(old != new for old, new in renames.items()):
        _rename_values(graph, renames)

    docs = _describe_outputs(n_clusters, n_features, dtype, beta, explain)
    graph.name = re.sub(r'\W+', '_', f'zennit_clusters_{model.source}').strip('_')
    graph.doc_string = f'NEON cluster evidence{" and explanation" if explain else ""} of a {model.source} model.'
    graph.input[0].doc_string = f'{dtype} (batch, {n_features}): the points to assign (and explain).'
    for value in graph.output:
        value.doc_string = docs[value.name]
    proto.producer_name = PRODUCER
    proto.producer_version = zennit_clusters.__version__
    proto.doc_string = graph.doc_string
    metadata = {
        'producer': PRODUCER,
        'producer_version': zennit_clusters.__version__,
        'exporter': f'torch {torch.__version__} (torch.onnx, dynamo)',
        'source_model': str(model.source),
        'source_type': source_type or _source_type(model_or_estimator),
        'neuralized_model': type(model).__name__,
        'n_clusters': str(n_clusters),
        'n_features': str(n_features),
        'beta': repr(float(beta)),
        'dtype': dtype,
        'explain': 'true' if explain else 'false',
        'input.X': graph.input[0].doc_string,
    }
    if isinstance(getattr(explainer, 'centre', None), torch.Tensor):
        metadata['centring'] = ('the graph subtracts a fixed centre (the mean of the model\'s centres, computed in '
                                'float64) from X first, so float32 stays exact on data far from the origin')
    elif hasattr(explainer, 'centre'):
        metadata['centring'] = ('none: the model\'s centre is zero (by default because the mean of its centres, '
                                'means or members lies within half their spread of the origin, where subtracting '
                                'it would not make float32 more exact)')
    metadata.update({f'output.{name}': doc for name, doc in docs.items()})
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, metadata)
    if proto.ByteSize() > 2 ** 31 - 1:
        raise ExportError(f'the graph is {proto.ByteSize() / 2 ** 30:.1f} GiB; ONNX files are limited to 2 GiB '
                          '(too many clusters or features).')
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as error:  # noqa: BLE001 -- ValidationError, InferenceError
        raise ExportError(f'the exported graph fails onnx.checker: {error}') from error
    return proto


# ---------------------------------------------------------------------------------------------- the check

def probe_data(model_or_estimator, n_rows=2048, seed=0):
    """Points that exercise every part of a clustering model: around, between and far from its clusters.

    Built from the model's cluster centres alone (``cluster_centers`` of the neuralized model), so it
    works for every model family: each centre itself; Gaussian noise around each centre with a norm of
    about half the distance to its nearest neighbour (points inside the cluster and across its borders);
    points on random segments between two centres near their middle, with little noise (close to
    decision boundaries); and points 2 to 20 times further out than the centres (large inputs).

    Parameters
    ----------
    model_or_estimator : anything :func:`zennit_clusters.neuralize` accepts
    n_rows : int
        About how many rows to make (at least one per centre).
    seed : int
        Seed of the random generator: the same model and seed give the same rows.

    Returns
    -------
    ndarray of shape (n, D), float64
    """
    from zennit_clusters import neuralize

    centres = neuralize(model_or_estimator).cluster_centers.detach().cpu().double().numpy()
    n_clusters, n_features = centres.shape
    rng = np.random.default_rng(seed)
    middle = centres.mean(0)
    spread = np.linalg.norm(centres - middle, axis=1).max()
    spread = spread if np.isfinite(spread) and spread > 0 else 1.0
    distance = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    distance[np.eye(n_clusters, dtype=bool)] = np.inf
    nearest = distance.min(1)
    nearest = np.where(np.isfinite(nearest) & (nearest > 0), nearest, spread)
    per_cluster = max(1, n_rows // (2 * n_clusters))
    n_between = max(n_clusters, n_rows // 2 - n_clusters)
    n_far = max(n_clusters, n_rows // 16)

    around = np.repeat(centres, per_cluster, 0) + rng.standard_normal((n_clusters * per_cluster, n_features)) \
        * np.repeat(nearest / (2 * np.sqrt(n_features)), per_cluster)[:, None]
    first = rng.integers(n_clusters, size=n_between)
    second = (first + rng.integers(1, n_clusters, size=n_between)) % n_clusters
    weight = rng.uniform(0.4, 0.6, size=(n_between, 1))
    between = weight * centres[first] + (1 - weight) * centres[second] \
        + rng.standard_normal((n_between, n_features)) * nearest.min() / (20 * np.sqrt(n_features))
    pick = rng.integers(n_clusters, size=n_far)
    far = middle + (centres[pick] - middle) * rng.uniform(2, 20, size=(n_far, 1)) \
        + rng.standard_normal((n_far, n_features)) * spread / np.sqrt(n_features)
    return np.concatenate([centres, around, between, far])


def _run_explainer(explainer, x, chunk=1 << 16):
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


def _predict(estimator, x):
    """``estimator.predict`` on float64 rows, cast to the dtype its parameters were fitted in."""
    centres = getattr(estimator, 'cluster_centers_', None)
    # KMeans.predict raises "Buffer dtype mismatch" unless X has the centroids' dtype
    dtype = centres.dtype if isinstance(centres, np.ndarray) and centres.dtype.kind == 'f' else np.float64
    return np.asarray(estimator.predict(x.astype(dtype)))


def _first_bad(mask):
    return int(np.flatnonzero(mask)[0])


def _rounding_errors(model, beta, x64, explainer, dtype, seed):
    """Per-row size of the rounding error of the explainer evaluated in ``dtype``, estimated with torch.

    torch evaluates the explainer in float32 at the rows (rounded to float32) and at two random one-ulp
    perturbations of them, against float64 at the same points; the largest difference per row, scaled from
    float32's unit roundoff to ``dtype``'s, is the row's rounding error. Several samples, because a single
    one can be small by luck on an ill-conditioned row.

    Returns
    -------
    low_label : ndarray (n,)
        torch's float32 labels at the rows themselves.
    logits, relevance : ndarray (n,)
        Largest rounding error of the row's logits and relevance.
    """
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
        labels, logits, relevance = _run_explainer(low, points)
        _, ref_logits, ref_relevance = _run_explainer(explainer, points.astype(np.float64))
        with np.errstate(invalid='ignore'):
            logit_error = np.fmax(logit_error, np.abs(logits - ref_logits).max(1))
            relevance_error = np.fmax(relevance_error, np.abs(relevance - ref_relevance).max(1))
        if sample == 0:
            low_label = labels
    scale = float(np.finfo(dtype).eps / np.finfo(np.float32).eps)
    return low_label, logit_error * scale, relevance_error * scale


def verify(path, model_or_estimator, X=None, execution_provider='cpu', seed=0, training_data=None):
    """Check an exported graph under onnxruntime against the model it was exported from.

    Labels must be identical to the estimator's ``predict`` (to the float64 closed-form explainer for
    models without one), logits and relevance must match the float64 closed-form explainer
    (:func:`zennit_clusters.make_explainer`) to the rounding error of the graph's dtype, and rows with
    NaN or infinity must get label -1. The graph runs at the full batch and at batch size 1.

    Tolerances are per row: ``ROUNDING_FACTOR`` (64) times the rounding error that torch's own float32
    evaluation of the explainer shows on that row (the largest over the row and two one-ulp perturbations
    of it, scaled to the graph's dtype), plus ``ULP_FACTOR`` (1024) times the dtype's unit roundoff times
    the row's largest reference value. A wrong graph misses them by orders of magnitude; rounding does not.

    Points closer to a decision boundary than the dtype can resolve may legitimately change cluster in
    float32. They are excluded from the label and relevance comparison by their float64 margin: a row
    is compared when the gap between its two largest float64 logits exceeds twice its logit tolerance
    (and, for float32, torch's float32 evaluation gives the float64 label). The generated probe data
    make such rows rare; the result counts them (``n_excluded``), and their logits are still compared.

    Parameters
    ----------
    path : str or os.PathLike
        The ONNX file, as written by :func:`export` (beta is read from its metadata).
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
        On any mismatch, naming the first offending row.
    """
    import onnx
    import torch

    from zennit_clusters import make_explainer, neuralize
    from zennit_clusters.validation import check_n_features

    model = neuralize(model_or_estimator, X=training_data)
    proto = onnx.load(os.fspath(path), load_external_data=False)
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    beta = float(metadata['beta']) if 'beta' in metadata else None
    elem_type = proto.graph.input[0].type.tensor_type.elem_type
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    if dtype not in (np.float32, np.float64):
        raise ExportCheckError(f'the graph input has dtype {dtype}; expected float32 or float64.')
    session = make_session(path, execution_provider)
    names = [output.name for output in session.get_outputs()]
    with_relevance = 'relevance' in names
    n_clusters, n_features = int(model.n_clusters), int(model.n_features_in_)

    if X is None:
        X = probe_data(model, seed=seed)
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

    unit = float(np.finfo(dtype).eps) / 2
    explainer = make_explainer(model, beta=beta)
    ref_label, ref_logits, ref_relevance = _run_explainer(explainer, x64)
    low_label, logit_rounding, relevance_rounding = _rounding_errors(model, beta, x64, explainer, dtype, seed)

    got = dict(zip(names, session.run(None, {INPUT_NAME: x_graph})))
    expected_shapes = {'label': (len(X),), 'logits': (len(X), n_clusters), 'relevance': (len(X), n_features)}
    for name, array in got.items():
        want_dtype = np.int64 if name == 'label' else dtype
        if array.shape != expected_shapes[name] or array.dtype != want_dtype:
            raise ExportCheckError(f'output {name} has shape {array.shape} and dtype {array.dtype}; expected '
                                   f'{expected_shapes[name]} and {np.dtype(want_dtype)}.')

    failures = []
    reference_name = 'the float64 closed-form explainer'
    if np.any(~finite) and np.any(got['label'][~finite] != -1):
        row = _first_bad(~finite & (got['label'] != -1))
        failures.append(f'row {row} holds NaN or infinity but got label {got["label"][row]} instead of -1')

    with np.errstate(invalid='ignore'):
        logit_tol = ROUNDING_FACTOR * logit_rounding + ULP_FACTOR * unit * np.abs(ref_logits).max(1)
        top = np.sort(ref_logits, 1)
        gap = top[:, -1] - top[:, -2]
        resolvable = finite & (gap > 2 * logit_tol)
        if dtype == np.float32:
            resolvable &= low_label == ref_label

    reference = ref_label
    estimator = model_or_estimator
    if not isinstance(estimator, (torch.Tensor, torch.nn.Module)) and callable(getattr(estimator, 'predict', None)):
        reference_name = f'{type(estimator).__name__}.predict'
        reference = np.full(len(X), -1, dtype=np.int64)
        reference[finite] = _predict(estimator, x64[finite])
        wrong = resolvable & (ref_label != reference)
        if wrong.any():
            row = _first_bad(wrong)
            failures.append(f'the neuralized model itself disagrees with {reference_name} on {int(wrong.sum())} '
                            f'rows (first row {row}: {ref_label[row]} vs {reference[row]}), so no graph of it can '
                            'reproduce predict')

    wrong = resolvable & (got['label'] != reference)
    if wrong.any():
        row = _first_bad(wrong)
        failures.append(f'labels differ from {reference_name} on {int(wrong.sum())} of {int(resolvable.sum())} rows '
                        f'(first row {row}: graph {got["label"][row]}, reference {reference[row]})')

    logit_error = np.abs(got['logits'] - ref_logits)
    wrong = finite & (logit_error > logit_tol[:, None]).any(1)
    if wrong.any():
        row = _first_bad(wrong)
        failures.append(f'logits differ beyond {dtype} rounding on {int(wrong.sum())} rows (first row {row}: '
                        f'max error {logit_error[row].max():.3g}, tolerance {logit_tol[row]:.3g})')
    max_logit_error = float(logit_error[finite].max())

    max_relevance_error = math.nan
    relevance_tol = None
    n_imprecise = 0
    if with_relevance:
        with np.errstate(invalid='ignore'):
            magnitude = np.maximum(np.abs(ref_relevance).max(1), np.abs(ref_logits).max(1))
            relevance_tol = ROUNDING_FACTOR * relevance_rounding + ULP_FACTOR * unit * magnitude
        compared = resolvable & (got['label'] == ref_label)
        relevance_error = np.abs(got['relevance'] - ref_relevance)
        wrong = compared & (relevance_error > relevance_tol[:, None]).any(1)
        if wrong.any():
            row = _first_bad(wrong)
            failures.append(f'relevance differs beyond {dtype} rounding on {int(wrong.sum())} rows (first row {row}: '
                            f'max error {relevance_error[row].max():.3g}, tolerance {relevance_tol[row]:.3g})')
        max_relevance_error = float(relevance_error[compared].max()) if compared.any() else 0.0
        with np.errstate(invalid='ignore'):
            n_imprecise = int((compared & (relevance_error.max(1) > IMPRECISE * magnitude)).sum())

    # a single row must give what the same row gives inside a large batch (the batch axis is dynamic)
    batch_sizes = (len(X),)
    if len(X) > 1:
        row = int(np.flatnonzero(finite)[0])
        single = dict(zip(names, session.run(None, {INPUT_NAME: x_graph[row:row + 1]})))
        batch_sizes = (len(X), 1)
        if single['label'][0] != got['label'][row] and resolvable[row]:
            failures.append(f'batch size 1 gives label {single["label"][0]} for row {row}, the batch '
                            f'{got["label"][row]}')
        if np.abs(single['logits'][0] - got['logits'][row]).max() > 2 * logit_tol[row]:
            failures.append(f'batch size 1 gives other logits for row {row} than the full batch')
        if with_relevance and resolvable[row] and \
                np.abs(single['relevance'][0] - got['relevance'][row]).max() > 2 * relevance_tol[row]:
            failures.append(f'batch size 1 gives other relevance for row {row} than the full batch')

    if failures:
        raise ExportCheckError(f'the ONNX graph does not reproduce the model under onnxruntime: '
                               + '; '.join(failures) + '.')
    if not resolvable.any():
        raise ExportCheckError(f'could not check labels: all {int(finite.sum())} finite probe rows lie within '
                               f'{dtype} rounding of a decision boundary. Pass other probe data.')
    return CheckResult(
        n_rows=len(X), n_compared=int(resolvable.sum()), n_excluded=int((finite & ~resolvable).sum()),
        n_nonfinite=int((~finite).sum()), reference=reference_name, max_logit_error=max_logit_error,
        max_relevance_error=max_relevance_error, n_imprecise=n_imprecise, batch_sizes=batch_sizes)


# --------------------------------------------------------------------------------------------- the export

def export(model_or_estimator, path, explain=False, beta=None, dtype='float32', opset=MIN_OPSET, *, X=None,
           training_data=None, execution_provider='cpu', seed=0):
    """Write a clustering model as an ONNX graph, then check it under onnxruntime.

    Parameters
    ----------
    model_or_estimator : fitted estimator, torch.Tensor, torch.nn.Module or NeuralizedModel
        Anything :func:`zennit_clusters.neuralize` accepts (a fitted scikit-learn ``KMeans``,
        ``MiniBatchKMeans``, ``BisectingKMeans``, Gaussian mixture, a (K, D) centroid tensor, ...).
    path : str or os.PathLike
        Where to write the ``.onnx`` file. An existing file is replaced only once the new graph has
        passed the check.
    explain : bool
        Add the ``relevance`` output (the NEON explanation of each row's assigned cluster).
    beta : float, optional
        Soft-min stiffness of the explanation (>= 0, ``math.inf`` for the nearest competitor only);
        default the model's own. Recorded in the metadata either way.
    dtype : {'float32', 'float64'}
        Input, logits and relevance dtype. float32 subtracts a float64-computed centre inside the
        graph, so labels stay exact on data far from the origin.
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
        The graph disagrees with the estimator under onnxruntime; no file is left behind.

    Warns
    -----
    PrecisionWarning
        If the relevance is ill-conditioned in ``dtype`` on some probe rows (the file is still written).
    """
    dtype = _check_dtype(dtype)
    opset = _check_opset(opset)
    _check_provider(execution_provider)  # fail before the slow export, not after
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f'the output directory does not exist: {directory}')
    if os.path.isdir(path):
        raise IsADirectoryError(f'the output path is a directory: {path}')

    from zennit_clusters import neuralize
    from zennit_clusters.validation import check_beta
    from zennit_clusters.validation import check_n_features

    model = neuralize(model_or_estimator, X=training_data)
    beta = model.beta if check_beta(beta) is None else check_beta(beta)
    if X is not None:  # a wrong width fails now, not after the slow export
        check_n_features(np.asarray(X), model.n_features_in_, name='probe data X')
    # record the type the user exported, not the neuralized module it became
    proto = build_graph(model, explain=explain, beta=beta, dtype=dtype, opset=opset,
                        source_type=_source_type(model_or_estimator))

    # write next to the target and move into place only after the check: a failed export leaves nothing
    temporary = os.path.join(directory, f'.{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        try:
            handle = open(temporary, 'xb')
        except PermissionError:
            raise PermissionError(f'cannot write to {directory}: permission denied') from None
        with handle:
            handle.write(proto.SerializeToString())
        check = verify(temporary, model_or_estimator, X=X, execution_provider=execution_provider, seed=seed,
                       training_data=training_data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    if check.n_imprecise:
        warnings.warn(PrecisionWarning(
            f'{model.source}: on {check.n_imprecise} of {check.n_compared} probe rows the {dtype} relevance is off by '
            f'more than {IMPRECISE:.0%} of the row\'s largest value (ill-conditioned in {dtype}, in torch as in the '
            f'graph); export with dtype float64 for exact explanations of this model.'), stacklevel=2)
    outputs = tuple(OUTPUT_NAMES if explain else OUTPUT_NAMES[:2])
    return ExportResult(path=path, source=str(model.source), n_clusters=int(model.n_clusters),
                        n_features=int(model.n_features_in_), beta=float(beta), dtype=dtype, opset=opset,
                        outputs=outputs, check=check)


# ------------------------------------------------------------------------------------------ command line

DESCRIPTION = """\
Export a fitted clustering model to ONNX, with its cluster evidence and, on request, its NEON explanation.

The graph has one input, "X" (batch, D), and the outputs
  label      int64 (batch,)  the cluster of each row, as the model's predict (-1 for rows with NaN/inf)
  logits     (batch, K)      the evidence for each cluster (NEON); argmax is label
  relevance  (batch, D)      with --explain: how much each feature contributes to the evidence of the
                             row's cluster (sums over features to logits[row, label])
Before the file is kept, the graph is run in onnxruntime and compared with the model on generated
probe data (or --probe-data): identical labels, logits and relevance to float rounding."""

EPILOG = """\
model files:
  .pkl .pickle .joblib  a pickled scikit-learn estimator (pickle.dump or joblib.dump); loaded through an
                        allow-list, so a file that would run code when loaded is refused
  .skops                saved with skops.io.dump
  .pt .pth              a (K, D) tensor of centroids, or a state dict holding one (torch.save)
  Supported models: what zennit_clusters.neuralize accepts (KMeans, MiniBatchKMeans, BisectingKMeans,
  GaussianMixture, ...: see zennit_clusters.supported_types()).

examples:
  python -m exporters.onnx kmeans.pkl                     # writes kmeans.onnx next to it
  python -m exporters.onnx kmeans.joblib -o served.onnx --explain --beta 0.01
  python -m exporters.onnx centroids.pt --dtype float64 --probe-data sample.npy
  python -m exporters.onnx dbscan.pkl --train-data X_train.npy

exit status: 0 written and checked; 1 the model could not be loaded, exported or checked (no file is
written); 2 bad command-line usage."""


def _beta_arg(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number >= 0 or "inf", got {text!r}') from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0 (or "inf" for the nearest competitor only), got {text}')
    return value


def _opset_arg(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer >= {MIN_OPSET}, got {text!r}') from None
    if value < MIN_OPSET:
        raise argparse.ArgumentTypeError(f'must be >= {MIN_OPSET} (the graph needs opset-18 reductions), got {value}')
    return value


def _parser():
    parser = argparse.ArgumentParser(
        prog='python -m exporters.onnx', description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', metavar='MODEL', help='the fitted model file (.pkl, .joblib, .skops, .pt; see below)')
    parser.add_argument('-o', '--output', metavar='OUT', help='where to write the graph (default: MODEL with the '
                        'suffix .onnx, in the same folder)')
    parser.add_argument('--explain', action='store_true', help='add the "relevance" output (the explanation)')
    parser.add_argument('--beta', type=_beta_arg, metavar='B', help='stiffness of the explanation\'s split between '
                        'competing clusters: 0 = evenly, larger = towards the nearest, "inf" = nearest only '
                        '(default: the model\'s own value)')
    parser.add_argument('--dtype', choices=DTYPES, default='float32', help='float type of X, logits and relevance '
                        '(default float32; labels stay exact on data far from the origin)')
    parser.add_argument('--opset', type=_opset_arg, default=MIN_OPSET, metavar='N',
                        help=f'ONNX opset version, >= {MIN_OPSET} (default {MIN_OPSET})')
    parser.add_argument('--probe-data', metavar='FILE.npy', help='check the graph on these rows (an (n, D) array '
                        'saved with numpy.save) instead of generated probe data')
    parser.add_argument('--train-data', metavar='FILE.npy', help='the model\'s training data (an (n, D) .npy '
                        'array): sets the default beta from the data, and models without a predict rule '
                        '(DBSCAN, agglomerative, ...) need it')
    parser.add_argument('--provider', choices=tuple(PROVIDERS), default='cpu', help='onnxruntime execution '
                        'provider for the check (default cpu; cuda needs the onnxruntime-gpu package)')
    parser.add_argument('--trust-pickle', action='store_true', help='load the model file without the allow-list: '
                        'ONLY for files you made yourself, since a pickle can run any code when loaded')
    parser.add_argument('--debug', action='store_true', help='on errors, show the full Python traceback')
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f'warning: {message}', file=sys.stderr if file is None else file)


def _load_array(path, what):
    if not os.path.exists(path):
        raise FileNotFoundError(f'{what} file not found: {path}')
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:  # noqa: BLE001 -- np.load fails with many types on a bad file
        raise ValueError(f'cannot read {what} {path} as a .npy array ({type(error).__name__}: {error}).') from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f'{what} {path} holds several arrays (.npz); save one (n, D) array with numpy.save.')
    return array


def _run(args):
    from exporters.loading import load_model

    output = args.output or os.path.splitext(args.model)[0] + '.onnx'
    if os.path.abspath(output) == os.path.abspath(args.model):
        raise ValueError(f'the output {output} would overwrite the model file; pass another -o.')
    probe = _load_array(args.probe_data, 'probe data') if args.probe_data else None
    training = _load_array(args.train_data, 'training data') if args.train_data else None
    if not os.path.exists(args.model):
        raise FileNotFoundError(f'model file not found: {args.model}')
    estimator = load_model(args.model, trust_pickle=args.trust_pickle)
    try:
        result = export(estimator, output, explain=args.explain, beta=args.beta, dtype=args.dtype, opset=args.opset,
                        X=probe, training_data=training, execution_provider=args.provider)
    except ValueError as error:
        from sklearn.exceptions import NotFittedError
        if isinstance(error, NotFittedError):
            raise ValueError(f'{args.model} holds a model that was never fitted: {error}') from error
        raise
    print(result)


def main(argv=None):
    """The command line; returns the exit status (0 success, 1 failure, 2 usage)."""
    args = _parser().parse_args(argv)  # exits with status 2 and a usage message on bad usage
    if args.debug:
        _run(args)
        return 0
    show_warning, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        _run(args)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        print(f'error: {error}; the exporter needs onnx, onnxruntime and onnxscript: '
              'pip install "zennit-clusters[onnx]"', file=sys.stderr)
        return 1
    except (OSError, ValueError, TypeError, pickle.UnpicklingError, ExportError) as error:
        # expected failures: a missing, refused, corrupt or unsupported model file, an unfitted model, a
        # graph that does not check out; UnsafePickleError is an UnpicklingError
        print(f'error: {error}', file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 -- a command line reports, it does not dump a traceback
        print(f'error: unexpected {type(error).__name__}: {error} (rerun with --debug for the traceback)',
              file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = show_warning
    return 0


if __name__ == '__main__':
    sys.exit(main())
