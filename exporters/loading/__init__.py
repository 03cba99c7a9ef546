"""Load a fitted clustering model from a file without running code hidden in the file.

:func:`load_model` admits data, not behaviour. Pickles (``.pkl``, ``.pickle``) and joblib files
(``.joblib``, compressed or not) are read by the loader's own opcode interpreter (``unpickler``): the
names a file may reference are the estimator classes registered with :func:`zennit_clusters.neuralize`
and what their fitted state holds (``registry``), each standing for a checked constructor of the loader
(``constructors``), never for the named function itself. ``.skops`` and torch files are inspected before
skops or ``torch.load(weights_only=True)`` reads them (``skops_files``, ``torch_files``). Every load runs
within a :class:`~.budget.Budget` of bytes, objects and depth; after it, the object graph is checked to
be plain data of bounded size (``graph``) and every estimator against what its family reads
(``families``). Every refusal is one line naming the file, what it holds and why that is refused.

``trust_pickle=True`` (``--trust-pickle`` on the command line) skips all of it, for files you made
yourself. See ``docs/loading.md`` for the threat model.
"""
import os

from .budget import (DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_OBJECTS, Budget,
                     _size)
from .errors import TRUST_FLAG, ModelFileError, Refusal, UnsafePickleError
from .registry import (BASE_NAMES, _ESTIMATOR_INTERNALS,  # noqa: F401 -- re-exported
                       _registered_estimators, allow_types, allowed_names, estimator_names, supported_list)

__all__ = [
    'load_model', 'allow_types', 'allowed_names', 'UnsafePickleError', 'ModelFileError', 'PICKLE_SUFFIXES',
    'SKOPS_SUFFIXES', 'TORCH_SUFFIXES', 'SUPPORTED_SUFFIXES', 'TRUST_FLAG', 'Budget',
]

PICKLE_SUFFIXES = ('.pkl', '.pickle', '.joblib')
SKOPS_SUFFIXES = ('.skops',)
TORCH_SUFFIXES = ('.pt', '.pth')
SUPPORTED_SUFFIXES = PICKLE_SUFFIXES + SKOPS_SUFFIXES + TORCH_SUFFIXES

_KINDS = {**dict.fromkeys(PICKLE_SUFFIXES, 'pickle/joblib'), **dict.fromkeys(SKOPS_SUFFIXES, 'skops'),
          **dict.fromkeys(TORCH_SUFFIXES, 'torch')}


def _check_is_model(obj, source):
    """Refuse plain data (a dict, a list, an array) with a message saying what the file held instead."""
    kind = type(obj)
    if kind.__module__ in ('builtins', 'numpy', 'collections'):
        raise ModelFileError(f'{source} holds a {kind.__module__}.{kind.__qualname__}, not a fitted clustering '
                             f'model (supported: {supported_list()}).')
    return obj


def _check_loaded(obj, source, budget, admitted):
    """The post-load checks of pickle and skops files: plain data of bounded size, estimators as their
    family reads them, a registered estimator at the top."""
    from .families import check_estimator, sub_estimators
    from .graph import check_graph, replace_dtype_specs
    _check_is_model(obj, source)
    full = f'{type(obj).__module__}.{type(obj).__qualname__}'
    if full not in estimator_names():
        raise ModelFileError(f'{source} holds a {full}, not a fitted clustering model (supported: '
                             f'{supported_list()}).')
    replace_dtype_specs(obj)
    stack, seen = [obj], set()
    while stack:  # every estimator in the graph (a pipeline's steps, a column transformer's parts), each once
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        check_estimator(item)
        stack.extend(sub_estimators(item))
    check_graph(obj, budget, admitted)
    return obj


def _load(source, kind, trust, budget):
    if kind == 'pickle/joblib':
        from .pickle_files import load_pickle, trusted_pickle
        if trust:
            return trusted_pickle(source)
        obj, admitted = load_pickle(source, budget)
        return _check_loaded(obj, source, budget, admitted)
    if kind == 'skops':
        from .skops_files import load_skops, trusted_skops
        if trust:
            return trusted_skops(source)
        allowed = allowed_names()
        return _check_loaded(load_skops(source, budget, allowed), source, budget, allowed)
    from .torch_files import load_torch, trusted_torch
    return trusted_torch(source) if trust else load_torch(source, budget)


def load_model(path, trust_pickle=False, *, max_file_bytes=DEFAULT_MAX_FILE_BYTES, max_bytes=DEFAULT_MAX_BYTES,
               max_objects=DEFAULT_MAX_OBJECTS, max_depth=DEFAULT_MAX_DEPTH):
    """Load a fitted clustering model from a file, refusing files that could run code or exhaust the process.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.pkl``/``.pickle``/``.joblib`` file (plain pickle, protocols 0-5, or ``joblib.dump``, compressed
        or not), a ``.skops`` file, or a torch file ``.pt``/``.pth`` holding a (K, D) centroid tensor or a
        state dict with one (named like centroids, or the only 2-d tensor).
    trust_pickle : bool
        Load the file with no checks at all (``joblib.load``, ``torch.load(weights_only=False)``, skops
        trusting every type). Only for files you made yourself: such a file can run any code when loaded.
    max_file_bytes : int, keyword-only
        Largest file accepted (default 1 GiB).
    max_bytes : int, keyword-only
        Bytes the load may read or allocate, counted before allocation (default 1 GiB).
    max_objects : int, keyword-only
        Pickle opcodes, memo entries, archive members, and objects of the loaded graph counted as a tree
        (default 1 000 000).
    max_depth : int, keyword-only
        Nesting depth of the pickle and of the loaded graph (default 1000).

    Returns
    -------
    object
        An estimator (checked against what its family reads), a tensor, or a torch module. Whether it is
        fitted is checked by :func:`zennit_clusters.neuralize`.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    UnsafePickleError
        The file was refused (the error's ``refused`` says what); nothing it names was called and the
        process is as it was before.
    ModelFileError
        The file is corrupt, truncated, of an unknown kind, or holds plain data rather than a model.
    """
    source = os.fspath(path)
    if not os.path.exists(source):
        raise FileNotFoundError(f'model file not found: {source}')
    if os.path.isdir(source):
        raise ModelFileError(f'{source} is a directory, not a model file.')
    suffix = os.path.splitext(source)[1].lower()
    kind = _KINDS.get(suffix)
    if kind is None:
        raise ModelFileError(
            f'cannot tell what kind of model file {source} is from its suffix {suffix or "(none)"!r}; '
            f'expected one of {", ".join(SUPPORTED_SUFFIXES)}.')
    size = os.path.getsize(source)
    if not trust_pickle and size > max_file_bytes:
        raise UnsafePickleError(f'refused to load {source}: the file is {_size(size)}, more than the file size '
                                f'budget of {_size(max_file_bytes)} (pass max_file_bytes= to raise it).',
                                refused='file size')
    budget = Budget(max_file_bytes, max_bytes, max_objects, max_depth)
    fmt = {'pickle/joblib': 'pickle', 'skops': 'skops', 'torch': 'torch'}[kind]
    try:
        obj = _load(source, kind, trust_pickle, budget)
    except Refusal as refusal:
        raise refusal.error(source, fmt) from None
    except (UnsafePickleError, ModelFileError, FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (MemoryError, RecursionError) as error:
        raise ModelFileError(f'{source} is not a readable {kind} model file (corrupt?): reading it raised '
                             f'{type(error).__name__}.') from None
    except Exception as error:  # noqa: BLE001 -- corrupt files fail in many ways; report them all the same way
        detail = ' '.join(f'{type(error).__name__}: {error}'.split()) if str(error) else type(error).__name__
        raise ModelFileError(f'{source} is not a readable {kind} model file (corrupt or truncated?): '
                             f'{detail[:300]}') from None
    return _check_is_model(obj, source)
