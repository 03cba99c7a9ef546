"""Torch files (``.pt``, ``.pth``): a (K, D) centroid tensor, or a state dict holding one.

Before torch reads anything, the archive is inspected: its ``data.pkl`` is run through the restricted
unpickler with stand-ins for torch's tensor constructors, so every tensor's dtype, size, stride and storage
offset is checked against its storage (whose size is checked against the archive member) and the budget.
Sparse, meta, quantized and subclassed tensors are refused by name, as is any other global. Only then is
the file read by ``torch.load(weights_only=True)``, which rebuilds exactly what was checked.
"""
import collections
import math
import pickle
import re
import zipfile

from .budget import Budget
from .constructors import ClassRef, Constructor, Forbidden, Marker
from .errors import ModelFileError, Refusal
from .graph import check_graph
from .unpickler import loads

_ITEMSIZES = {'Double': 8, 'Float': 4, 'Half': 2, 'BFloat16': 2, 'Long': 8, 'Int': 4, 'Short': 2, 'Char': 1,
              'Byte': 1, 'Bool': 1, 'ComplexFloat': 8, 'ComplexDouble': 16}
_KINDS = {'_rebuild_sparse_tensor': 'a sparse tensor', '_rebuild_sparse_csr': 'a sparse tensor',
          '_rebuild_meta_tensor_no_storage': 'a meta tensor (one without data)',
          '_rebuild_qtensor': 'a quantized tensor', '_rebuild_nested_tensor': 'a nested tensor',
          '_rebuild_wrapper_subclass': 'a tensor subclass', '_rebuild_device_tensor_from_numpy': 'a device tensor',
          '_rebuild_xla_tensor': 'an XLA tensor', '_rebuild_mlc_tensor': 'an MLC tensor',
          '_rebuild_tensor': 'a legacy tensor'}
_TENSOR_ONLY = ('and a model file may hold only dense CPU tensors of numbers (centroids, or a state dict '
                'holding them)')


class StorageSpec:
    """A storage a tensor points to: its archive member, element size and element count."""
    def __init__(self, key, itemsize, numel):
        self.key, self.itemsize, self.numel = key, itemsize, numel


class TensorSpec:
    """What a tensor of the file would be, checked but not built."""
    def __init__(self, size):
        self.size = size


def _ints(value, what):
    if not isinstance(value, tuple) or len(value) > 32 or not all(type(n) is int and 0 <= n < 1 << 62
                                                                   for n in value):
        raise Refusal(f'it gives a tensor the {what} {value!r:.80}', 'which is not a tuple of non-negative ints',
                      f'tensor {what}')
    return value


def _rebuild_tensor(budget):
    def rebuild(unpickler, storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
        if not isinstance(storage, StorageSpec) or type(offset) is not int or offset < 0:
            raise Refusal('it builds a tensor on something other than a storage of the file',
                          'which torch never writes', 'tensor storage')
        size, stride = _ints(size, 'size'), _ints(stride, 'stride')
        if len(size) != len(stride) or type(requires_grad) is not bool or hooks not in (None, {}) or \
                metadata not in (None, {}):
            raise Refusal('it builds a tensor with hooks, metadata or mismatched strides', 'which a saved model '
                          'does not hold', 'tensor arguments')
        if any(s == 0 and n > 1 for n, s in zip(size, stride)):
            raise Refusal(f'it holds a tensor of size {size} with a zero stride (an expanded view)',
                          f'which would stand for {math.prod(size)} elements of a {storage.numel}-element '
                          f'storage; save a real tensor (.contiguous()) instead', 'zero-stride tensor')
        count = math.prod(size)
        budget.spend(count * storage.itemsize, f'a tensor of size {size}')
        extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if count else offset
        if extent > storage.numel:
            raise Refusal(f'it holds a tensor of size {size}, stride {stride} at offset {offset}',
                          f'which reads past the end of its {storage.numel}-element storage', 'tensor bounds')
        return TensorSpec(size)
    return rebuild


def _rebuild_parameter(unpickler, data, requires_grad=False, hooks=None, state=None):
    if not isinstance(data, TensorSpec) or state not in (None, {}):
        raise Refusal('it builds a parameter from something other than a tensor', 'which torch never writes',
                      'parameter')
    return data


def torch_names(budget):
    """Stand-ins for the names torch's own writer uses for dense tensors and state dicts."""
    table = {f'torch.{kind}Storage': Marker(f'torch.{kind}Storage') for kind in _ITEMSIZES}
    table.update({f'torch._utils.{name}': Forbidden(f'torch._utils.{name}', f'it holds {what}', _TENSOR_ONLY)
                  for name, what in _KINDS.items()})
    table['torch._tensor._rebuild_from_type_v2'] = Forbidden('torch._tensor._rebuild_from_type_v2',
                                                             'it holds a tensor subclass', _TENSOR_ONLY)
    table['torch._utils._rebuild_tensor_v2'] = Constructor('torch._utils._rebuild_tensor_v2', _rebuild_tensor(budget))
    table['torch._utils._rebuild_parameter'] = Constructor('torch._utils._rebuild_parameter', _rebuild_parameter)
    table['torch._utils._rebuild_parameter_with_state'] = table['torch._utils._rebuild_parameter']
    table['collections.OrderedDict'] = ClassRef('collections.OrderedDict', collections.OrderedDict)
    return table


def _unknown(full):
    return Refusal(f'it references {full}', 'and torch files are read like torch.load(weights_only=True), which '
                   'rebuilds tensors and plain containers only; save the centroids (a tensor) or a state_dict '
                   'instead', full)


def inspect_archive(source, budget):
    """Check a torch zip archive's members and its data.pkl before torch reads it."""
    if not zipfile.is_zipfile(source):
        raise ModelFileError(f'{source} is not a readable torch model file (corrupt or truncated?): it is not a '
                             'zip archive (the format torch.save writes since torch 1.6).')
    with zipfile.ZipFile(source) as archive:
        members = {info.filename: info for info in archive.infolist()}
        budget.objects(len(members), 'archive members')
        pickles = [name for name in members if name.endswith('/data.pkl') or name == 'data.pkl']
        if len(pickles) != 1:
            raise ModelFileError(f'{source} is not a readable torch model file (corrupt or truncated?): it holds '
                                 f'{len(pickles)} data.pkl members, not one.')
        prefix = pickles[0][:-len('data.pkl')]
        budget.spend(members[pickles[0]].file_size, 'the data.pkl member')
        data = archive.read(pickles[0])
        seen = {}

        def persistent(pid):
            if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == 'storage' and isinstance(pid[1], Marker)
                    and isinstance(pid[2], str) and isinstance(pid[3], str) and type(pid[4]) is int and pid[4] >= 0):
                raise Refusal(f'it refers to the outside object {pid!r:.80}', 'torch files refer only to their '
                              'own storages', 'persistent id')
            itemsize = _ITEMSIZES[pid[1].name[len('torch.'):-len('Storage')]]
            member = members.get(f'{prefix}data/{pid[2]}')
            if member is None or member.file_size != pid[4] * itemsize:
                raise Refusal(f'it declares a storage of {pid[4]} elements whose data member holds '
                              f'{member.file_size if member else "no"} bytes', 'the sizes must agree', 'storage size')
            if pid[2] not in seen:
                budget.spend(member.file_size, f'storage {pid[2]}')
                seen[pid[2]] = StorageSpec(pid[2], itemsize, pid[4])
            return seen[pid[2]]

        table = torch_names(budget)
        obj = loads(data, table, budget, unknown=_unknown, persistent=persistent)
    check_graph(obj, budget, frozenset({'collections.OrderedDict', f'{__name__}.TensorSpec'}))
    return obj


def _reword(error, source):
    """One line for torch's own refusal of a weights-only load."""
    text = ' '.join(str(error).split())
    refused = re.search(r'Unsupported global: GLOBAL (\S+)', text)
    detail = refused.group(1) if refused else re.sub(r'^.*?WeightsUnpickler error:\s*', '', text)[:200]
    return Refusal(f'torch.load(weights_only=True) refused it: {detail}', _TENSOR_ONLY.replace('and ', '', 1),
                   detail)


def load_torch(source, budget=None):
    """Inspect, then ``torch.load(weights_only=True)``; a dict of tensors gives its centroid tensor."""
    import torch
    inspect_archive(source, budget or Budget())
    try:
        obj = torch.load(source, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        raise _reword(error, source) from None
    if isinstance(obj, dict) and obj and all(torch.is_tensor(value) for value in obj.values()):
        obj = _state_dict_head(obj, source)
    return obj


def trusted_torch(source):
    """``torch.load(weights_only=False)`` (``trust_pickle=True``)."""
    import torch
    obj = torch.load(source, map_location='cpu', weights_only=False)
    if isinstance(obj, dict) and obj and all(torch.is_tensor(value) for value in obj.values()):
        obj = _state_dict_head(obj, source)
    return obj


def _state_dict_head(state, source):
    """The (K, D) centroid tensor of a state dict, for ``neuralize``: a state dict is data, with no forward.

    The tensor whose key ends in one of the names a centroid tensor goes by (``head.centroids``), or the only
    tensor of a one-tensor state dict. Otherwise (a ``Linear``'s weight and bias, two candidates) a one-line
    refusal naming the file and its tensors: a state dict has no forward that could prove a tensor's role.
    """
    from zennit_clusters.families.centroids.converters import CENTROID_ATTRIBUTES

    matrices = [(key, tensor) for key, tensor in state.items() if tensor.dim() == 2]
    named = [(key, tensor) for key, tensor in matrices if key.rsplit('.', 1)[-1] in CENTROID_ATTRIBUTES]
    chosen = named if named else (matrices if len(state) == 1 else [])
    if len(chosen) == 1:
        return chosen[0][1]
    found = ', '.join(f'{key} {tuple(tensor.shape)}' for key, tensor in state.items())
    raise ModelFileError(f'{source} is a state dict whose centroids cannot be told: expected one 2-d tensor named '
                         f'one of {", ".join(CENTROID_ATTRIBUTES)} (or a state dict of one tensor); tensors found: '
                         f'{found}.')
