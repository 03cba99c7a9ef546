"""Plain pickles and joblib files (joblib's reader handles both, compressed or not)."""
import os

import numpy as np

from .budget import BudgetedReader
from .constructors import ClassRef, FunctionRef, Marker, as_dtype, check_shape, declared_standins, numpy_names
from .errors import Refusal
from .registry import BASE_NAMES, allowed_names, supported_list
from .unpickler import RestrictedUnpickler

WRAPPER = 'joblib.numpy_pickle.NumpyArrayWrapper'
_WRAPPER_KEYS = {'subclass', 'shape', 'order', 'dtype', 'allow_mmap', 'numpy_array_alignment_bytes'}


class JoblibArray:
    """Stand-in for joblib's NumpyArrayWrapper: its state says which array follows in the stream."""


def read_joblib_array(unpickler, wrapper, state):
    """The array a NumpyArrayWrapper announces, read from the stream by the loader with the declared size
    checked against the budget before anything is allocated."""
    if not isinstance(state, dict) or not {'subclass', 'shape', 'dtype'} <= set(state) <= _WRAPPER_KEYS:
        raise Refusal('it holds a joblib array header with unexpected fields', 'which joblib never writes',
                      'joblib array header')
    subclass, shape, order = state['subclass'], state['shape'], state.get('order', 'C')
    if not (isinstance(subclass, Marker) and subclass.name == 'numpy.ndarray') or order not in ('C', 'F'):
        raise Refusal(f'it holds a joblib array of type {getattr(subclass, "name", type(subclass).__name__)}',
                      'only plain numpy.ndarray is rebuilt', 'joblib array subclass')
    count = check_shape(tuple(shape) if isinstance(shape, list) else shape, 'a joblib array')
    dtype = as_dtype(state['dtype'], 'a joblib array', allow_object=True)
    if not unpickler.frame_exhausted():
        raise Refusal('it holds joblib array data inside a pickle frame', 'which joblib never writes',
                      'joblib framing')
    if dtype.hasobject:
        inner = RestrictedUnpickler(unpickler.file, unpickler.names, unpickler.budget, unpickler.unknown,
                                    counters=unpickler.counters)
        inner.build_hooks = unpickler.build_hooks
        array = inner.load()
        if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
            raise Refusal('its joblib object array does not unpickle to an array of the declared shape',
                          'which joblib never writes', 'joblib object array')
        return array
    if state.get('numpy_array_alignment_bytes') is not None:
        padding = unpickler.file.read(1)
        if padding and padding[0]:
            unpickler.file.read(padding[0])
    nbytes = count * dtype.itemsize
    unpickler.budget.spend(nbytes, f'a joblib array of shape {tuple(shape)} and dtype {dtype}')
    array = np.empty(count, dtype=dtype)
    view, done, raw = memoryview(array.reshape(-1).view(np.uint8)), 0, unpickler.file.raw
    while done < nbytes:
        chunk = raw.read(min(nbytes - done, 1 << 24))
        if not chunk:
            raise EOFError(f'joblib array data ends after {done} of {nbytes} bytes')
        view[done:done + len(chunk)] = chunk
        done += len(chunk)
    array = array.reshape(shape[::-1]).T if order == 'F' else array.reshape(shape)
    if dtype.byteorder not in ('=', '|') and dtype.fields is None and dtype.isnative is False:
        array = array.astype(dtype.newbyteorder('='))
    return array


def pickle_names():
    """The stand-ins of every name a supported estimator's pickle may reference, as of now."""
    import importlib

    from zennit_clusters._legacy import legacy_names

    table = numpy_names()
    names = allowed_names()
    moved = legacy_names(names)  # 0.1's import paths: resolved where the class lives now, without a warning
    declared = declared_standins()  # slices and number types: the loader's own stand-ins, never the class
    for name in names - BASE_NAMES:
        if name in declared:
            table[name] = declared[name]
            continue
        module_name, _, attribute = moved.get(name, name).rpartition('.')
        try:
            obj = importlib.import_module(module_name)
            for part in attribute.split('.'):
                obj = getattr(obj, part)
        except (ImportError, AttributeError):
            continue  # a declared type this installation does not have: nothing can reference it
        table[name] = ClassRef(name, obj) if isinstance(obj, type) else FunctionRef(name)
    table[WRAPPER] = ClassRef(WRAPPER, JoblibArray)
    return table


def unknown_name(full):
    """The Refusal for a name outside the allow-list, saying what it is."""
    last = full.rsplit('.', 1)[-1]
    if full.startswith('sklearn.') and last[:1].isupper() and '._' in full:
        return Refusal(f'it references {full}, which is not a supported estimator (supported: {supported_list()})',
                       'and only the plain data a supported clustering model holds is rebuilt from a file', full)
    return Refusal(f'it references {full}, which is not one of the types a supported clustering model needs',
                   'and pickle files can run any code they name when loaded, so only allow-listed types are '
                   'rebuilt', full)


def _open_joblib_stream(handle, path):
    """Undo joblib's optional compression (zlib, gzip, bz2, lzma, xz, lz4); a context manager."""
    import joblib.numpy_pickle as numpy_pickle

    opener = getattr(numpy_pickle, '_validate_fileobject_and_memmap', None)
    if opener is not None:
        return _FirstOf(opener(handle, path, None))
    import joblib.numpy_pickle_utils as utils  # joblib < 1.4
    return utils._read_fileobject(handle, path, None)


class _FirstOf:
    """Adapt joblib's ``(file object, mmap mode)`` context manager to one yielding the file object."""
    def __init__(self, manager):
        self.manager = manager

    def __enter__(self):
        stream, _ = self.manager.__enter__()
        return stream

    def __exit__(self, *exc):
        return self.manager.__exit__(*exc)


def load_pickle(source, budget):
    """Read a pickle or joblib file with the restricted unpickler; returns the object and the admitted names."""
    names = pickle_names()
    with open(source, 'rb') as handle:
        with _open_joblib_stream(handle, source) as stream:
            if isinstance(stream, str):
                # joblib < 0.10 kept arrays in companion .npy files loaded with pickling allowed
                raise Refusal('it was written by joblib < 0.10', 'whose companion files cannot be checked',
                              'joblib < 0.10 format')
            plain = stream is handle
            reader = BudgetedReader(stream, budget, 'file bytes' if plain else 'decompressed bytes',
                                    size=os.path.getsize(source) - handle.tell() if plain else None)
            unpickler = RestrictedUnpickler(reader, names, budget, unknown=unknown_name)
            unpickler.build_hooks[WRAPPER] = (JoblibArray, read_joblib_array)
            obj = unpickler.load()
    return obj, _admitted_types(names)


def _admitted_types(names):
    return frozenset(name for name, standin in names.items()
                     if isinstance(standin, (ClassRef, FunctionRef)) and name != WRAPPER)


def trusted_pickle(source):
    """``joblib.load``: runs whatever the file names (``trust_pickle=True``)."""
    import joblib
    return joblib.load(source)


__all__ = ['load_pickle', 'trusted_pickle', 'pickle_names', 'unknown_name']
