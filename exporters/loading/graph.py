"""Post-load walk of the loaded object graph: only data, no leftovers, and bounded once shared references
are counted as copies.

A 2 KB pickle can hold a list whose two items are the same list, 32 levels deep: 2^32 paths. Nothing is
wrong while it is loaded, but the first code that walks it as a tree (``repr``, ``copy.deepcopy``,
``np.asarray``, a converter) never ends. The walk below visits every object once and computes what the
graph would be as a tree (objects, bytes of array data, depth), refusing what exceeds the budget.
"""
import types

import numpy as np

from .constructors import NUMBER_TYPES, DtypeSpec, Marker, TypeValue
from .errors import Refusal

_ATOMS = (type(None), bool, int, float, complex, str, bytes, bytearray, np.generic, np.dtype, slice,
          type(Ellipsis))
_CONTAINERS = (list, tuple, dict, set, frozenset)
_NUMBER_TYPES = frozenset(NUMBER_TYPES.values())


def _children(obj, admitted):
    """The objects ``obj`` refers to, or raise a Refusal when ``obj`` is not data."""
    if isinstance(obj, _ATOMS) or (isinstance(obj, type) and obj in _NUMBER_TYPES):
        return ()
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            return list(obj.ravel(order='K'))
        return ()
    if isinstance(obj, dict):
        children = [*obj.keys(), *obj.values()]
        if type(obj) is not dict:
            children.extend(_instance_children(obj, admitted))
        return children
    if isinstance(obj, _CONTAINERS) and type(obj) in _CONTAINERS:
        return list(obj)
    if isinstance(obj, (np.random.RandomState, np.random.MT19937)):
        return ()
    if isinstance(obj, Marker):
        raise Refusal(f'it holds a reference to {obj.name} as a value', 'which is not data (a function or '
                      'class no supported model keeps there)', obj.name)
    if isinstance(obj, DtypeSpec):
        return ()
    if isinstance(obj, types.FunctionType) and f'{obj.__module__}.{obj.__qualname__}' in admitted:
        return ()  # a routine an estimator keeps, put back by name (see families)
    return _instance_children(obj, admitted)


def _instance_children(obj, admitted):
    name = f'{type(obj).__module__}.{type(obj).__qualname__}'
    if name not in admitted:
        raise Refusal(f'it holds a {name}', 'which is not one of the types a supported clustering model holds',
                      name)
    state = getattr(obj, '__dict__', None)
    if state is None:
        return ()
    return [*state.keys(), *state.values()]


def check_graph(root, budget, admitted):
    """Walk ``root``'s graph once; refuse non-data, cycles and tree-expanded sizes beyond ``budget``.

    Parameters
    ----------
    root : object
    budget : Budget
        ``max_objects`` bounds the objects counted as a tree, ``max_bytes`` the array bytes counted so,
        ``max_depth`` the nesting.
    admitted : frozenset of str
        Full names of the classes whose instances may appear (their ``__dict__`` is walked).

    Returns
    -------
    int
        The number of distinct objects.
    """
    sizes = {}       # id -> (tree objects, tree bytes, depth) once finished
    on_path = set()  # ids of the objects whose children are being visited (a cycle returns to one)
    keep = []        # keep the objects alive so that ids stay unique during the walk
    stack = [(root, None)]
    while stack:
        obj, children = stack.pop()
        key = id(obj)
        if children is None:
            if key in sizes:
                continue
            if key in on_path:
                raise Refusal(f'it holds a reference cycle through a {type(obj).__name__}',
                              'which no supported model holds', 'reference cycle')
            if len(sizes) + len(on_path) > budget.max_objects:
                budget.objects(len(sizes) + len(on_path), 'distinct objects')
            found = _children(obj, admitted)
            if not found:
                nbytes = obj.nbytes if isinstance(obj, np.ndarray) else 0
                sizes[key] = (1, nbytes, 1)
                keep.append(obj)
                continue
            on_path.add(key)
            keep.append(obj)
            if len(on_path) > budget.max_depth:
                budget.depth(len(on_path), 'object nesting')
            stack.append((obj, found))
            stack.extend((child, None) for child in found if id(child) not in sizes)
            continue
        on_path.discard(key)
        total, nbytes, depth = 1, getattr(obj, 'nbytes', 0) if isinstance(obj, np.ndarray) else 0, 0
        for child in children:
            count, child_bytes, child_depth = sizes[id(child)]
            total += count
            nbytes += child_bytes
            depth = max(depth, child_depth)
        if total > budget.max_objects:
            raise Refusal(f'its shared references expand to {total} objects when read as a tree',
                          f'more than the object budget of {budget.max_objects} (max_objects)', 'shared references')
        if nbytes > budget.max_bytes:
            raise Refusal(f'its shared references expand to {nbytes} bytes of arrays when read as a tree',
                          f'more than the memory budget of {budget.max_bytes} bytes (max_bytes)', 'shared arrays')
        sizes[key] = (total, nbytes, depth + 1)
    return len(sizes)


def _resolve(value):
    return value.resolve() if isinstance(value, DtypeSpec) else value.type if isinstance(value, TypeValue) else value


def replace_dtype_specs(root):
    """Turn dtype and number-type stand-ins left as values into the dtypes and types they name (in dicts, lists
    and tuples: a tuple holding one is rebuilt)."""
    seen, stack = set(), [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            for key, value in obj.items():
                if isinstance(value, (DtypeSpec, TypeValue)):
                    obj[key] = _resolve(value)
                elif type(value) is tuple and any(isinstance(item, (DtypeSpec, TypeValue)) for item in value):
                    obj[key] = tuple(_resolve(item) for item in value)
                else:
                    stack.append(value)
        elif type(obj) is list:
            for index, value in enumerate(obj):
                if isinstance(value, (DtypeSpec, TypeValue)):
                    obj[index] = _resolve(value)
                elif type(value) is tuple and any(isinstance(item, (DtypeSpec, TypeValue)) for item in value):
                    obj[index] = tuple(_resolve(item) for item in value)
                else:
                    stack.append(value)
        elif type(obj) is tuple:
            stack.extend(obj)
        elif hasattr(obj, '__dict__') and not isinstance(obj, (Marker, type)):
            stack.append(obj.__dict__)
