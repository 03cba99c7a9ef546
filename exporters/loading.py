"""Load a fitted clustering model from a file without running code hidden in the file.

A pickle (and joblib, which is a pickle) names functions and classes that the loader calls to rebuild
the object; a crafted file can name ``os.system``. :func:`load_model` therefore reads ``.pkl``,
``.pickle`` and ``.joblib`` files with an unpickler that resolves only an allow-list of names: the
estimator classes registered with :func:`zennit_clusters.neuralize`, plus exactly the numpy, joblib and
scikit-learn internals those estimators need to be rebuilt (found by disassembling real pickles of each
supported estimator with every pickle protocol and with ``joblib.dump``). Anything else is refused before
it is imported or called, with an error naming it. ``trust_pickle=True`` (``--trust-pickle`` on the
command line) loads any pickle, for files you made yourself.

``.skops`` files are loaded with skops, trusting only allow-listed types; torch files (``.pt``, ``.pth``)
with ``torch.load(weights_only=True)``: a (K, D) centroid tensor, or a state dict holding one.

The allow-list lives here and nowhere else. It is derived from the family registry
(:mod:`zennit_clusters.core`), so a model family that registers a converter is admitted by name; a family whose
fitted estimator holds other objects (as ``BisectingKMeans`` holds its tree, or a ``Pipeline`` its scalers)
declares them in its ``Family.pickle_names``, or a user adds them with :func:`allow_types`.
"""
import _compat_pickle
import os
import pickle
import re

__all__ = [
    'load_model', 'allow_types', 'allowed_names', 'UnsafePickleError', 'ModelFileError', 'PICKLE_SUFFIXES',
    'SKOPS_SUFFIXES', 'TORCH_SUFFIXES', 'SUPPORTED_SUFFIXES', 'TRUST_FLAG',
]

PICKLE_SUFFIXES = ('.pkl', '.pickle', '.joblib')
SKOPS_SUFFIXES = ('.skops',)
TORCH_SUFFIXES = ('.pt', '.pth')
SUPPORTED_SUFFIXES = PICKLE_SUFFIXES + SKOPS_SUFFIXES + TORCH_SUFFIXES

#: how the override is spelled in messages (the command-line flag; ``trust_pickle=True`` in Python)
TRUST_FLAG = '--trust-pickle'

#: Names every supported estimator pickle may reference, whatever the estimator: numpy array, dtype and
#: scalar reconstruction (numpy 2 spells ``numpy._core``, numpy 1 ``numpy.core``), the legacy
#: RandomState that sklearn keeps when ``random_state`` is a ``np.random.RandomState``, how protocols
#: 0-2 spell bytes and plain objects, and joblib's array container.
BASE_NAMES = frozenset({
    'numpy.ndarray',
    'numpy.dtype',
    'numpy._core.multiarray._reconstruct',
    'numpy.core.multiarray._reconstruct',
    'numpy._core.multiarray.scalar',
    'numpy.core.multiarray.scalar',
    'numpy._core.numeric._frombuffer',
    'numpy.core.numeric._frombuffer',
    'numpy.random._pickle.__randomstate_ctor',
    'numpy.random._pickle.__bit_generator_ctor',
    'numpy.random._mt19937.MT19937',
    '_codecs.encode',
    'copyreg._reconstructor',
    'builtins.object',
    'joblib.numpy_pickle.NumpyArrayWrapper',
})

#: Extra names admitted with :func:`allow_types`, keyed by the estimator's full type name (the families declare
#: their own in the registry, ``zennit_clusters.core.Family.pickle_names``).
_ESTIMATOR_INTERNALS = {}


class ModelFileError(ValueError):
    """A model file that cannot be read: missing, unreadable, corrupt, of an unknown kind, or not a model."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that references a name outside the allow-list; nothing it names was imported or called.

    Attributes
    ----------
    refused : str
        The full name (``module.qualname``) that was refused.
    """
    def __init__(self, message, refused):
        super().__init__(message)
        self.refused = refused


def _full_name(type_):
    return f'{type_.__module__}.{type_.__qualname__}'


def allow_types(estimator_type, *names):
    """Admit ``names`` in pickles of ``estimator_type`` (once that type is registered with the converters).

    Parameters
    ----------
    estimator_type : type or str
        The estimator class, or its full name ``module.qualname``
        (e.g. ``'sklearn.cluster._bisect_k_means.BisectingKMeans'``).
    *names : str
        Full names (``module.qualname``) of the classes or functions a fitted estimator of that type holds.
        Only admit names that are safe to call with arbitrary arguments: pickles call what they name.
    """
    key = estimator_type if isinstance(estimator_type, str) else _full_name(estimator_type)
    _ESTIMATOR_INTERNALS.setdefault(key, set()).update(names)


def allowed_names():
    """The full set of names a pickle may reference, as of now (the registry may grow at run time).

    ``BASE_NAMES``; every estimator type a registered family converts (torch objects excepted: they come from
    torch files), with the names the family declares for it (:func:`zennit_clusters.core.pickle_admissions`)
    and those added with :func:`allow_types`; and the import paths of releases before 0.2 of the package's own
    classes (a pickled ``KernelKMeans`` of 0.1 names ``zennit_clusters.kernel_kmeans.KernelKMeans``).
    """
    from zennit_clusters._legacy import legacy_names
    from zennit_clusters.core import pickle_admissions

    names = set(BASE_NAMES)
    for full, internals in pickle_admissions().items():
        names.add(full)
        names |= internals
        names |= _ESTIMATOR_INTERNALS.get(full, set())
    names |= set(legacy_names(names))
    return frozenset(names)


def _supported_list():
    from zennit_clusters import supported_types
    return ', '.join(supported_types())


def _refusal(name, source):
    """The error for a refused name, saying what it is and how to override."""
    if name.startswith('sklearn.') and name.rsplit('.', 1)[-1][:1].isupper() and '._' in name:
        what = f'{name}, which is not a supported estimator (supported: {_supported_list()})'
    else:
        what = f'{name}, which is not one of the types a supported clustering model needs'
    return UnsafePickleError(
        f'refused to load {source}: it references {what}. Pickle files can run arbitrary code when loaded, '
        f'so only allow-listed types are rebuilt. If you made this file yourself and trust it, pass '
        f'{TRUST_FLAG} (trust_pickle=True in Python).',
        refused=name,
    )


class _AllowList:
    """Mixin for pure-Python unpicklers: resolve only allow-listed globals, refuse extension codes."""
    source = 'the file'

    def find_class(self, module, name):
        # the same Python-2 renaming the stock unpickler applies, so the check sees the real name
        if self.proto < 3 and self.fix_imports:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        full = f'{module}.{name}'
        if full not in allowed_names():
            raise _refusal(full, self.source)
        return super().find_class(module, name)

    def _refuse_extension(self):
        # EXT opcodes look names up in copyreg's registry and may bypass find_class through its cache
        raise UnsafePickleError(f'refused to load {self.source}: it uses pickle extension codes, which no '
                                f'supported model needs. If you trust the file, pass {TRUST_FLAG}.',
                                refused='pickle extension code')


def _restricted_dispatch(base):
    dispatch = base.dispatch.copy()
    for opcode in (pickle.EXT1, pickle.EXT2, pickle.EXT4):
        dispatch[opcode[0]] = _AllowList._refuse_extension
    return dispatch


class _SafeUnpickler(_AllowList, pickle._Unpickler):
    """Plain pickle streams (the object arrays that joblib nests in its files)."""
    dispatch = _restricted_dispatch(pickle._Unpickler)


def _safe_joblib_unpickler():
    """The allow-list unpickler for pickle and joblib files (joblib's reader handles both formats)."""
    import numpy as np
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    class SafeJoblibUnpickler(_AllowList, NumpyUnpickler):
        dispatch = _restricted_dispatch(NumpyUnpickler)

        def load_build(self):
            # joblib stores array bytes after the pickled NumpyArrayWrapper; read them ourselves so that
            # object arrays are unpickled through the allow-list whatever the joblib version, and so that
            # no array subclass other than ndarray is rebuilt
            pickle._Unpickler.load_build(self)
            wrapper = self.stack[-1]
            if not isinstance(wrapper, NumpyArrayWrapper):
                return
            if wrapper.subclass is not np.ndarray or not isinstance(wrapper.dtype, np.dtype):
                raise UnsafePickleError(
                    f'refused to load {self.source}: it holds an array of type '
                    f'{getattr(wrapper.subclass, "__qualname__", wrapper.subclass)!s}, not numpy.ndarray. '
                    f'If you trust the file, pass {TRUST_FLAG}.', refused=repr(wrapper.subclass))
            self.stack.pop()
            if wrapper.dtype.hasobject:
                inner = _SafeUnpickler(self.file_handle)
                inner.source = self.source
                array = inner.load()
                if not isinstance(array, np.ndarray):
                    raise pickle.UnpicklingError('a joblib object array did not unpickle to an array')
            else:
                array = wrapper.read(self, self.ensure_native_byte_order)
            self.stack.append(array)

        dispatch[pickle.BUILD[0]] = load_build

    return SafeJoblibUnpickler


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


def _load_pickle(path, trust):
    import joblib

    if trust:
        return joblib.load(path)  # reads plain pickles and joblib files alike
    source = os.fspath(path)
    with open(path, 'rb') as handle:
        with _open_joblib_stream(handle, source) as stream:
            if isinstance(stream, str):
                # joblib < 0.10 kept arrays in companion .npy files loaded with pickling allowed
                raise UnsafePickleError(
                    f'refused to load {source}: it was written by joblib < 0.10, whose companion files '
                    f'cannot be checked. If you trust the file, pass {TRUST_FLAG}.', refused='joblib < 0.10 format')
            unpickler = _safe_joblib_unpickler()(source, stream, ensure_native_byte_order=True)
            unpickler.source = source
            return unpickler.load()


def _load_skops(path, trust):
    import skops.io

    source = os.fspath(path)
    untrusted = skops.io.get_untrusted_types(file=source)
    if not trust:
        allowed = allowed_names()
        for name in untrusted:
            if name not in allowed:
                raise _refusal(name, source)
    return skops.io.load(source, trusted=untrusted)


def _load_torch(path, trust):
    import torch

    source = os.fspath(path)
    try:
        obj = torch.load(source, map_location='cpu', weights_only=not trust)
    except pickle.UnpicklingError as error:
        if trust:
            raise
        # torch names the global its weights-only unpickler refused; anything else is a damaged file
        refused = re.search(r'Unsupported global: GLOBAL (\S+)', str(error))
        if refused is None:
            detail = re.search(r'WeightsUnpickler error:\s*(.+)', str(error))
            raise ModelFileError(f'{source} is not a readable torch file (corrupt or truncated?): '
                                 f'{detail.group(1).strip() if detail else "unpickling failed"}') from None
        raise UnsafePickleError(
            f'refused to load {source}: it references {refused.group(1)}, and torch files are loaded with '
            f'torch.load(weights_only=True), which rebuilds tensors and plain containers only. Save the '
            f'centroids (a tensor) or a state_dict instead; or, if you made this file yourself and trust it, '
            f'pass {TRUST_FLAG}.', refused=refused.group(1)) from None
    if isinstance(obj, dict) and obj and all(torch.is_tensor(value) for value in obj.values()):
        obj = _state_dict_head(obj)
    return obj


def _state_dict_head(state):
    """A torch module holding a state dict's tensors as buffers, for ``neuralize``'s module converter."""
    import torch

    head = torch.nn.Module()
    short = [key.rsplit('.', 1)[-1] for key in state]
    for key, name, tensor in zip(state, short, state.values()):
        # 'head.centroids' -> 'centroids', so the converter finds centroids by name; keep keys unique
        head.register_buffer(name if short.count(name) == 1 else key.replace('.', '_'), tensor)
    return head


def _check_is_model(obj, source):
    """Refuse plain data (a dict, a list, an array) with a message saying what the file held instead."""
    kind = type(obj)
    if kind.__module__ in ('builtins', 'numpy'):
        raise ModelFileError(
            f'{source} holds a {kind.__module__}.{kind.__qualname__}, not a fitted clustering model '
            f'(supported: {_supported_list()}).')
    return obj


def load_model(path, trust_pickle=False):
    """Load a fitted clustering model from a file, refusing files that could run code when loaded.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.pkl``/``.pickle``/``.joblib`` file (plain pickle or ``joblib.dump``, compressed or not), a
        ``.skops`` file, or a torch file ``.pt``/``.pth`` holding a (K, D) centroid tensor or a state dict
        with one (named like centroids, or the only 2-d tensor).
    trust_pickle : bool
        Load any pickle (and torch files with ``weights_only=False``, skops files trusting every type).
        Only for files you made yourself: a pickle can run arbitrary code when loaded.

    Returns
    -------
    object
        What the file holds: an estimator, a tensor, or a torch module. It is not checked to be
        supported or fitted; :func:`zennit_clusters.neuralize` does that.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    UnsafePickleError
        The file references a type outside the allow-list (the error's ``refused`` names it).
    ModelFileError
        The file is corrupt, truncated, of an unknown kind, or holds plain data rather than a model.
    """
    source = os.fspath(path)
    if not os.path.exists(source):
        raise FileNotFoundError(f'model file not found: {source}')
    if os.path.isdir(source):
        raise ModelFileError(f'{source} is a directory, not a model file.')
    suffix = os.path.splitext(source)[1].lower()
    if suffix in PICKLE_SUFFIXES:
        loader, kind = _load_pickle, 'pickle/joblib'
    elif suffix in SKOPS_SUFFIXES:
        loader, kind = _load_skops, 'skops'
    elif suffix in TORCH_SUFFIXES:
        loader, kind = _load_torch, 'torch'
    else:
        raise ModelFileError(
            f'cannot tell what kind of model file {source} is from its suffix {suffix or "(none)"!r}; '
            f'expected one of {", ".join(SUPPORTED_SUFFIXES)}.')
    try:
        obj = loader(source, trust_pickle)
    except (UnsafePickleError, ModelFileError, FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except MemoryError:
        raise ModelFileError(f'{source} is not a readable {kind} model file (it asks for more memory than '
                             f'there is; corrupt?).') from None
    except Exception as error:  # noqa: BLE001 -- corrupt files fail in many ways; report them all the same way
        detail = f'{type(error).__name__}: {error}' if str(error) else type(error).__name__
        raise ModelFileError(f'{source} is not a readable {kind} model file (corrupt or truncated?): '
                             f'{detail}') from error
    return _check_is_model(obj, source)
