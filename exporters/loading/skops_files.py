"""``.skops`` files: a zip of a JSON schema and ``.npy`` arrays, read by skops trusting only admitted types.

Before skops reads anything, the archive is checked: the members' declared sizes against the budget (a
deflated member can stand for gigabytes), every ``.npy`` header against its member's size (numpy allocates
what a header declares before reading), and the schema's size, node count and depth.
"""
import ast
import json
import zipfile

from .errors import ModelFileError, Refusal

_HEADER = 'a .npy array header'


def _check_npy(archive, info, budget):
    """The header of an array member: a plain dtype, and exactly the data its shape needs."""
    import numpy as np
    with archive.open(info) as member:
        head = member.read(min(info.file_size, 1 << 16))
    if head[:6] != b'\x93NUMPY' or len(head) < 10:
        raise ModelFileError(f'member {info.filename} is not a .npy array')
    major = head[6]
    length, start = (int.from_bytes(head[8:10], 'little'), 10) if major == 1 else \
        (int.from_bytes(head[8:12], 'little'), 12)
    try:
        header = ast.literal_eval(head[start:start + length].decode('latin1'))
        dtype = np.dtype(header['descr'])
        shape = tuple(header['shape'])
    except Exception:  # noqa: BLE001 -- any malformed header is a corrupt file
        raise ModelFileError(f'member {info.filename} has a malformed .npy header') from None
    if dtype.hasobject:
        raise Refusal(f'its member {info.filename} is an object array', 'skops stores object arrays otherwise; '
                      'an object .npy would need pickle', 'object .npy')
    if not all(type(n) is int and n >= 0 for n in shape) or \
            info.file_size != start + length + dtype.itemsize * int(np.prod(shape, dtype=object)):
        raise Refusal(f'its member {info.filename} declares an array of shape {shape} and dtype {dtype} in '
                      f'{info.file_size} bytes', 'the declared size must match the data', 'npy size')


def _check_schema(text, budget):
    """Parse the schema with its node count and nesting bounded."""
    try:
        schema = json.loads(text)
    except RecursionError:
        raise Refusal('its schema nests too deeply to parse', 'more than the depth budget (max_depth)',
                      'schema depth') from None
    stack, count = [(schema, 1)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > budget.max_objects:
            budget.objects(count, 'schema nodes')
        if depth > budget.max_depth:
            budget.depth(depth, 'schema nesting')
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return schema


def inspect_archive(source, budget):
    """Check the archive of a ``.skops`` file before skops reads it."""
    if not zipfile.is_zipfile(source):
        raise ModelFileError(f'{source} is not a readable skops model file (corrupt or truncated?): it is not a '
                             'zip archive.')
    with zipfile.ZipFile(source) as archive:
        infos = archive.infolist()
        budget.objects(len(infos), 'archive members')
        total = sum(info.file_size for info in infos)
        budget.spend(total, f'{len(infos)} archive members, once decompressed')
        names = {info.filename for info in infos}
        if 'schema.json' not in names:
            raise ModelFileError(f'{source} is not a readable skops model file (corrupt or truncated?): it has no '
                                 'schema.json.')
        for info in infos:
            if info.filename.endswith('.npy'):
                _check_npy(archive, info, budget)
        _check_schema(archive.read('schema.json'), budget)


def unknown_skops_type(name, source):
    """The refusal of a type outside the allow-list, in skops' terms."""
    return Refusal(f'it holds an object of type {name}', 'which is not one of the types a supported clustering '
                   'model holds, and skops rebuilds only the types it is told to trust', name)


def load_skops(source, budget, allowed):
    """Inspect, check the types the file names against ``allowed``, then ``skops.io.load``."""
    inspect_archive(source, budget)
    import skops.io  # seconds on first import: after the archive checks, so that a refusal is immediate
    untrusted = skops.io.get_untrusted_types(file=source)
    for name in untrusted:
        if name not in allowed:
            raise unknown_skops_type(name, source)
    return skops.io.load(source, trusted=untrusted)


def trusted_skops(source):
    """``skops.io.load`` trusting every type the file names (``trust_pickle=True``)."""
    import skops.io
    return skops.io.load(source, trusted=skops.io.get_untrusted_types(file=source))
