"""The ONNX graph of a clustering model: the closed-form explainer, exported with torch's ONNX exporter.

The graph is :func:`zennit_clusters.make_explainer` of the neuralized model, so every family that
:func:`zennit_clusters.neuralize` supports exports without code of its own here. Its contract is in
:mod:`exporters.onnx.contract` and ``docs/onnx.md``.
"""
import contextlib
import io
import re
import warnings

import numpy as np

from .contract import (CONTRAST_CONSTANTS_NAME, CONTRASTS_NAME, INPUT_NAME, MIN_OPSET, OUTPUT_NAMES, PARTS_NAME,
                       PRODUCER, ExportError, check_dtype, check_opset, describe_outputs)

__all__ = ['build_graph', 'graph_module', 'contrast_explainer', 'output_names', 'type_name', 'set_metadata',
           'metadata_of']


def type_name(obj):
    """``module.QualName`` of an object's type, as recorded in the metadata."""
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


def graph_module(explainer, with_relevance, with_parts=False, contrasts=None):
    """The module torch exports: the explainer's outputs, without relevance unless asked for.

    Parameters
    ----------
    explainer : torch.nn.Module
        A closed-form explainer (:func:`zennit_clusters.make_explainer`): ``X -> (label, logits, relevance)``.
    with_relevance : bool
        Keep the ``relevance`` output; without it the exporter drops every node only relevance needs.
    with_parts : bool
        The explainer returns per-competitor parts (``output='parts'``): the graph outputs their sum over the
        competitors as ``relevance`` and the parts themselves after it.
    contrasts : torch.nn.Module, optional
        An explainer built with ``output='contrasts'`` (:func:`contrast_explainer`): the graph adds its (N, K, D)
        contrastive relevance after the other outputs, and its (N, K) constants where it ``has_constant``.
        Without ``with_relevance``, label and logits come from it and ``explainer`` is not used.

    Returns
    -------
    torch.nn.Module
    """
    import torch

    class ClusterGraph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.explainer = explainer
            self.contrasts = contrasts

        def forward(self, X):
            outputs = ()
            if with_relevance or contrasts is None:
                label, logits, relevance = self.explainer(X)
                outputs = (label, logits) + ((relevance.sum(1), relevance) if with_parts else
                                             (relevance,) if with_relevance else ())
            if contrasts is not None:
                if contrasts.has_constant:
                    label_c, logits_c, relevance_c, constants = contrasts.forward_with_constant(X)
                    tail = (relevance_c, constants)
                else:
                    label_c, logits_c, relevance_c = contrasts(X)
                    tail = (relevance_c,)
                outputs = (outputs or (label_c, logits_c)) + tail
            return outputs

    return ClusterGraph().eval()


def contrast_explainer(model, epsilon=None):
    """The closed-form explainer of ``contrasts``: ``output='contrasts'``, for the families that have pairwise
    margins, else a ValueError that says why.

    Parameters
    ----------
    model : NeuralizedModel

    Returns
    -------
    torch.nn.Module
        float64 on the CPU.

    Raises
    ------
    ValueError
        For a model with a noise rule (DBSCAN), a family without pairwise margins, or a margin graph in which
        some clusters have no pair between them.
    """
    import torch

    from zennit_clusters import make_explainer

    if model.noise_radius is not None:
        raise ValueError(f'contrasts=True: this {model.source} model has a noise rule (label -1 for points far from '
                         'every core sample); a noise row has no assigned cluster c, so "why c rather than k" is not '
                         'defined for it. Export without contrasts; zennit_clusters.explain(model, X, contrast=k) '
                         'explains a chosen pair in Python.')
    try:
        explainer = make_explainer(model, output='contrasts', epsilon=epsilon)
    except (TypeError, ValueError) as error:
        raise ValueError(f'contrasts=True needs pairwise margins between clusters (centroid models, Gaussian '
                         f'mixtures, member networks), which this {model.source} model ({type(model).__name__}) '
                         f'does not have: {error}') from None
    try:  # refusals that the explainer only makes on data (a margin graph with unseparated clusters)
        with torch.no_grad():
            explainer(model.cluster_centers.detach().to(torch.float64).cpu()[:1])
    except ValueError as error:
        raise ValueError(f'contrasts=True: {error}') from None
    return explainer


def output_names(explain, per_competitor=False, contrasts=False, contrast_constants=False):
    """The graph's output names, in order, for the outputs asked for."""
    names = list(OUTPUT_NAMES if explain or per_competitor else OUTPUT_NAMES[:2])
    names += [PARTS_NAME] if per_competitor else []
    names += [CONTRASTS_NAME] if contrasts else []
    names += [CONTRAST_CONSTANTS_NAME] if contrasts and contrast_constants else []
    return tuple(names)


def _rename_values(graph, renames):
    """Rename graph inputs/outputs (and every use) where the exporter did not take the requested names."""
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        value.name = renames.get(value.name, value.name)


def metadata_of(proto):
    """``metadata_props`` of a graph as a dict."""
    return {prop.key: prop.value for prop in proto.metadata_props}


def set_metadata(proto, updates):
    """Add or replace entries of a graph's ``metadata_props`` (in place), keeping the order of the others."""
    import onnx

    metadata = {**metadata_of(proto), **updates}
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, metadata)


def _export_program(module, example, names, opset, source):
    import torch

    from zennit_clusters import compiled

    log = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), \
                compiled.torch_only():
            warnings.simplefilter('ignore')
            return torch.onnx.export(
                module, (example,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                output_names=names, dynamic_shapes={'X': {0: torch.export.Dim('batch')}}, optimize=True,
                verbose=False, custom_translation_table={torch.ops.aten.scalar_tensor.default: _exact_scalar_tensor})
    except Exception as error:  # noqa: BLE001 -- the exporter raises many types; all mean the same here
        first = str(error).strip().splitlines()[0] if str(error).strip() else ''
        raise ExportError(f'torch.onnx could not export the explainer of {source} '
                          f'({type(error).__name__}: {first}).') from error


def build_graph(model_or_estimator, explain=False, beta=None, dtype='float32', opset=MIN_OPSET, source_type=None,
                precision_note=None, per_competitor=False, contrasts=False):
    """The ONNX graph of a clustering model, in memory, unchecked (see :func:`exporters.onnx.export`).

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
    precision_note : str, optional
        Recorded as ``dtype_reason`` in the metadata (why this dtype was chosen).
    per_competitor : bool
        Add the ``parts`` output (batch, K, D) after ``relevance`` (implies ``explain``): each competitor's part
        of the explanation, for the families whose explainer offers it (centroid models, mixtures, member
        networks without a noise rule).
    contrasts : bool
        Add the ``contrasts`` output (batch, K, D) after the others: ``[n, k]`` the relevance of the margin h_ck
        between the row's cluster and competitor k (``explain(..., contrast=k)``), and, for families with a
        constant term (Gaussian mixtures), ``contrast_constants`` (batch, K). Centroid models, mixtures and member
        networks without a noise rule; others raise a ValueError.

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

    dtype = check_dtype(dtype)
    opset = check_opset(opset)
    model = neuralize(model_or_estimator)
    beta = model.beta if check_beta(beta) is None else check_beta(beta)
    torch_dtype = getattr(torch, dtype)
    explain = explain or per_competitor
    explainer = make_explainer(model, beta=beta, output='parts' if per_competitor else 'relevance')
    explainer = explainer.to(torch_dtype).eval()
    contrasting = contrast_explainer(model).to(torch_dtype).eval() if contrasts else None
    with_constants = bool(contrasts and contrasting.has_constant)
    names = list(output_names(explain, per_competitor, contrasts, with_constants))
    n_clusters, n_features = int(model.n_clusters), int(model.n_features_in_)
    example = model.cluster_centers.detach().to(torch_dtype).cpu()
    example = example.repeat(max(1, -(-2 // example.shape[0])), 1)  # >= 2 rows: batch 1 would be specialised
    proto = _export_program(graph_module(explainer, explain, per_competitor, contrasting), example, names, opset,
                            model.source).model_proto

    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != len(names):
        raise ExportError(f'the exported graph has inputs {[v.name for v in graph.input]} and outputs '
                          f'{[v.name for v in graph.output]}; expected one input and outputs {names}.')
    renames = {graph.input[0].name: INPUT_NAME, **{value.name: name for value, name in zip(graph.output, names)}}
    if any(old != new for old, new in renames.items()):
        _rename_values(graph, renames)

    docs = describe_outputs(n_clusters, n_features, dtype, beta, explain, label_rule=model.label_rule,
                            noise=model.noise_radius is not None, with_parts=per_competitor,
                            with_contrasts=contrasts, with_contrast_constants=with_constants)
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
        'source_type': source_type or type_name(model_or_estimator),
        'neuralized_model': type(model).__name__,
        'n_clusters': str(n_clusters),
        'n_features': str(n_features),
        'beta': repr(float(beta)),
        'dtype': dtype,
        'explain': 'true' if explain else 'false',
        'per_competitor': 'true' if per_competitor else 'false',
        'contrasts': 'true' if contrasts else 'false',
        'label_rule': model.label_rule,
        'noise_radius': '' if model.noise_radius is None else repr(float(model.noise_radius)),
        'input.X': graph.input[0].doc_string,
    }
    if precision_note:
        metadata['dtype_reason'] = precision_note
    if explainer.origin is not None:  # every Explainer declares the origin of its centred frame
        metadata['centring'] = ('the graph subtracts a fixed centre (the mean of the model\'s centres, computed in '
                                'float64) from X first, so float32 stays exact on data far from the origin')
    else:
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
