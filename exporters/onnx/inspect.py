"""What an exported ``.onnx`` file promises: its inputs and outputs, its metadata, producer and opset.

``python -m exporters.onnx inspect model.onnx [--json]`` prints :func:`inspect_graph`'s result.
"""
import json
import os

__all__ = ['inspect_graph', 'format_inspection']

_DTYPES = {1: 'float32', 2: 'uint8', 3: 'int8', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16',
           11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16'}


def _value(value, metadata):
    tensor = value.type.tensor_type
    shape = [dim.dim_param or (dim.dim_value if dim.HasField('dim_value') else '?') for dim in tensor.shape.dim]
    meaning = value.doc_string or metadata.get(f'output.{value.name}') or metadata.get(f'input.{value.name}') or ''
    return {'name': value.name, 'dtype': _DTYPES.get(tensor.elem_type, f'onnx type {tensor.elem_type}'),
            'shape': shape, 'meaning': meaning}


def inspect_graph(path):
    """The contract of an exported graph, read from the file (the graph is not run).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        ``path``, ``producer``, ``producer_version``, ``ir_version``, ``opset`` (domain -> version),
        ``inputs`` and ``outputs`` (each a list of ``name``, ``dtype``, ``shape`` with the dynamic axis by its
        name, ``meaning``), ``metadata`` (every ``metadata_props`` entry), ``check`` (the export check's
        summary, or None for files without one) and ``doc``.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is not an ONNX graph.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'ONNX file not found: {path}')
    import onnx

    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as error:  # noqa: BLE001 -- DecodeError and others
        raise ValueError(f'{path} is not a readable ONNX file ({type(error).__name__}: {error}).') from None
    if not proto.graph.input and not proto.graph.output:
        raise ValueError(f'{path} holds no ONNX graph.')
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    return {
        'path': path,
        'producer': proto.producer_name,
        'producer_version': proto.producer_version,
        'ir_version': int(proto.ir_version),
        'opset': {(op.domain or 'ai.onnx'): int(op.version) for op in proto.opset_import},
        'inputs': [_value(value, metadata) for value in proto.graph.input],
        'outputs': [_value(value, metadata) for value in proto.graph.output],
        'metadata': metadata,
        'check': metadata.get('check'),
        'doc': proto.doc_string or proto.graph.doc_string,
    }


def format_inspection(info, as_json=False):
    """:func:`inspect_graph`'s result as text for people, or as JSON (``as_json``)."""
    if as_json:
        return json.dumps(info, indent=2, sort_keys=False)

    def shape(entry):
        dims = list(map(str, entry['shape']))
        return '(' + ', '.join(dims) + (',' if len(dims) == 1 else '') + ')'

    lines = [f'{info["path"]}: {info["doc"]}' if info['doc'] else info['path'],
             f'  producer  {info["producer"] or "?"} {info["producer_version"]}'.rstrip(),
             f'  opset     ' + ', '.join(f'{domain} {version}' for domain, version in info['opset'].items())
             + f' (IR version {info["ir_version"]})',
             '  inputs']
    for entry in info['inputs']:
        lines.append(f'    {entry["name"]:10s} {entry["dtype"]:8s} {shape(entry):16s} {entry["meaning"]}')
    lines.append('  outputs')
    for entry in info['outputs']:
        lines.append(f'    {entry["name"]:10s} {entry["dtype"]:8s} {shape(entry):16s} {entry["meaning"]}')
    if info['check']:
        lines.append(f'  check     {info["check"]}')
    skip = {'check'} | {f'output.{e["name"]}' for e in info['outputs']} | {f'input.{e["name"]}' for e in info['inputs']}
    rest = {key: value for key, value in info['metadata'].items() if key not in skip}
    if rest:
        lines.append('  metadata')
        width = max(map(len, rest))
        lines.extend(f'    {key:{width}s}  {value}' for key, value in rest.items())
    return '\n'.join(lines)
