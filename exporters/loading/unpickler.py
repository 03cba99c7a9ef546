"""The restricted unpickler: a pure-Python opcode interpreter that builds data, never behaviour.

It runs the opcodes of :class:`pickle._Unpickler` with these changes:

- a name (``GLOBAL``, ``STACK_GLOBAL``) resolves only through a table of stand-ins (see
  ``constructors``); anything else is refused before it is imported;
- ``REDUCE`` calls only the loader's own checked constructors; ``NEWOBJ``, ``NEWOBJ_EX`` and
  ``copyreg._reconstructor`` only create bare instances of admitted classes, without arguments;
- ``BUILD`` applies state once, and only to an object this load created (a fresh instance, array, dtype
  or random state), never to a class, function, module or anything shared with the process;
- ``INST``, ``OBJ``, extension codes and out-of-band buffers are refused; persistent ids only where the
  format defines them (torch);
- every opcode, memo entry, nesting level and byte read is counted against a :class:`~.budget.Budget`.

A refused file therefore leaves the process as it was: nothing outside the objects it created was touched.
"""
import _compat_pickle
import io
import pickle
import struct

import numpy as np

from .budget import Budget
from .constructors import ClassRef, Constructor, DtypeSpec, Forbidden, Marker, build_array
from .errors import Refusal

_NOT_DATA = 'and only the plain data a supported clustering model holds is rebuilt from a file'


class _Counters:
    """Counts shared by an unpickler and the ones it nests (joblib object arrays)."""
    def __init__(self):
        self.opcodes = 0
        self.fresh = {}  # id -> [object, kind, built]


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickle ``file`` resolving names through ``names`` (full name -> stand-in) within ``budget``.

    Parameters
    ----------
    file : file-like
        A :class:`~.budget.BudgetedReader` (or any object with ``read``, ``readinto``, ``readline``).
    names : dict
        ``{module.qualname: stand-in}``, see ``constructors``.
    budget : Budget
    unknown : callable, optional
        ``unknown(full_name) -> Refusal`` for a name outside ``names``.
    persistent : callable, optional
        ``persistent(pid) -> object`` where the format defines persistent ids (torch).
    counters : _Counters, optional
        Shared with an enclosing unpickler.
    """
    dispatch = pickle._Unpickler.dispatch.copy()

    def __init__(self, file, names, budget=None, unknown=None, persistent=None, counters=None):
        super().__init__(file, fix_imports=True, encoding='latin1')
        self.file, self.names, self.budget = file, names, budget or Budget()
        self.unknown, self.persistent = unknown, persistent
        self.counters = counters or _Counters()
        self.build_hooks = {}

    # ----------------------------------------------------------------------------------- bookkeeping
    def fresh(self, obj, kind):
        """Record ``obj`` as created by this load (the only objects ``BUILD`` may touch)."""
        self.counters.fresh[id(obj)] = [obj, kind, False]
        return obj

    def is_fresh(self, obj):
        entry = self.counters.fresh.get(id(obj))
        return entry is not None and entry[0] is obj

    def instantiate(self, cls):
        """A bare instance of an admitted class (``cls.__new__(cls)``, no constructor call)."""
        if not isinstance(cls, ClassRef):
            name = cls.name if isinstance(cls, Marker) else type(cls).__name__
            raise Refusal(f'it instantiates {name}', f'which is not an admitted class, {_NOT_DATA}', name)
        hook = self.build_hooks.get(cls.name)
        if hook is not None:
            return self.fresh(hook[0](), cls.name)
        return self.fresh(cls.cls.__new__(cls.cls), 'instance')

    def load(self):
        """Run the opcodes, counting each against the budget; returns the unpickled object."""
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)
        self.read, self.readinto, self.readline = (self._unframer.read, self._unframer.readinto,
                                                   self._unframer.readline)
        self.metastack, self.stack, self.proto = [], [], 0
        self.append = self.stack.append
        read, dispatch, counters, limit = self.read, self.dispatch, self.counters, self.budget.max_objects
        try:
            while True:
                key = read(1)
                if not key:
                    raise EOFError
                counters.opcodes += 1
                if counters.opcodes > limit:
                    self.budget.objects(counters.opcodes, 'pickle opcodes')
                dispatch[key[0]](self)
        except pickle._Stop as stop:
            return stop.value
        except KeyError as error:
            raise pickle.UnpicklingError(f'invalid opcode or memo key {error}') from None

    # ----------------------------------------------------------------------------------- names
    def find_class(self, module, name):
        if self.proto < 3 and (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif self.proto < 3 and module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        full = f'{module}.{name}'
        standin = self.names.get(full)
        if isinstance(standin, Forbidden):
            raise Refusal(standin.what, standin.why, full)
        if standin is None:
            raise (self.unknown(full) if self.unknown else Refusal(f'it references {full}', _NOT_DATA, full))
        return standin

    # ----------------------------------------------------------------------------------- calls
    def load_reduce(self):
        args = self.stack.pop()
        function = self.stack[-1]
        if not isinstance(args, tuple):
            raise pickle.UnpicklingError('REDUCE arguments are not a tuple')
        if isinstance(function, Constructor):
            self.stack[-1] = function.function(self, *args)
        elif isinstance(function, ClassRef) and issubclass(function.cls, dict) and args == ():
            self.stack[-1] = self.instantiate(function)  # OrderedDict(): items follow as SETITEMS
        else:
            name = function.name if isinstance(function, Marker) else type(function).__name__
            raise Refusal(f'it calls {name}', f'which is not one of the constructors a supported model needs, '
                          f'{_NOT_DATA}', name)
    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self._newobj(cls, args, {})
    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self._newobj(cls, args, kwargs)
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def _newobj(self, cls, args, kwargs):
        if args != () or kwargs != {}:
            name = cls.name if isinstance(cls, Marker) else type(cls).__name__
            raise Refusal(f'it creates {name} with constructor arguments', 'which no supported model needs', name)
        self.append(self.instantiate(cls))

    def load_build(self):
        state = self.stack.pop()
        target = self.stack[-1]
        entry = self.counters.fresh.get(id(target))
        if entry is None or entry[0] is not target:
            name = target.name if isinstance(target, Marker) else f'a {type(target).__name__}'
            raise Refusal(f'it sets state on {name}', 'which this load did not create: a file may only fill in '
                          'objects it built itself, never a class, function or module', 'BUILD on ' + str(name))
        if entry[2]:
            raise Refusal(f'it sets the state of one {type(target).__name__} twice', 'which no pickler writes',
                          'BUILD twice')
        entry[2] = True
        kind = entry[1]
        if kind == 'dtype':
            target.apply(state)
        elif kind == 'array':
            build_array(self, target, state)
        elif kind in self.build_hooks:
            replacement = self.build_hooks[kind][1](self, target, state)
            if replacement is not target:
                self.stack[-1] = replacement
        elif kind in ('bitgen', 'randomstate'):
            _set_random_state(target, state)
        else:
            _set_instance_state(target, state)
    dispatch[pickle.BUILD[0]] = load_build

    # ----------------------------------------------------------------------------------- containers
    def _check_container(self, target, kinds):
        """Item opcodes call the target's own ``__setitem__``/``append``/``add``: only for plain containers
        (and fresh dict subclasses such as OrderedDict), never for an array, estimator or sparse matrix."""
        if type(target) in kinds or (isinstance(target, dict) and dict in kinds and self.is_fresh(target)):
            return
        name = target.name if isinstance(target, Marker) else type(target).__name__
        raise Refusal(f'it adds items to a {name}', 'only plain lists, dicts and sets are filled item by item',
                      'items on ' + name)

    def _marked(self):
        return self.metastack[-1][-1] if self.metastack and self.metastack[-1] else None

    def load_setitem(self):
        if len(self.stack) < 3:
            raise pickle.UnpicklingError('SETITEM on a short stack')
        self._check_container(self.stack[-3], (dict,))
        pickle._Unpickler.load_setitem(self)
    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self):
        self._check_container(self._marked(), (dict,))
        pickle._Unpickler.load_setitems(self)
    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_append(self):
        if len(self.stack) < 2:
            raise pickle.UnpicklingError('APPEND on a short stack')
        self._check_container(self.stack[-2], (list,))
        pickle._Unpickler.load_append(self)
    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self):
        self._check_container(self._marked(), (list,))
        pickle._Unpickler.load_appends(self)
    dispatch[pickle.APPENDS[0]] = load_appends

    def load_additems(self):
        self._check_container(self._marked(), (set,))
        pickle._Unpickler.load_additems(self)
    dispatch[pickle.ADDITEMS[0]] = load_additems

    # ----------------------------------------------------------------------------------- refusals
    def _refuse(self, what):
        raise Refusal(f'it uses {what}', 'which no supported model\'s file holds', what)

    def load_inst(self):
        self._refuse('the INST opcode (a class called with arguments)')
    dispatch[pickle.INST[0]] = load_inst

    def load_obj(self):
        self._refuse('the OBJ opcode (a class called with arguments)')
    dispatch[pickle.OBJ[0]] = load_obj

    def load_ext(self):
        self._refuse('pickle extension codes')
    for _opcode in (pickle.EXT1, pickle.EXT2, pickle.EXT4):
        dispatch[_opcode[0]] = load_ext

    def load_buffer(self):
        self._refuse('out-of-band buffers')
    for _opcode in (pickle.NEXT_BUFFER, pickle.READONLY_BUFFER):
        dispatch[_opcode[0]] = load_buffer

    def persistent_load(self, pid):
        if self.persistent is None:
            self._refuse('persistent ids (references to data outside the file)')
        return self.persistent(pid)

    # ----------------------------------------------------------------------------------- budgets
    def load_mark(self):
        pickle._Unpickler.load_mark(self)
        if len(self.metastack) > self.budget.max_depth:
            self.budget.depth(len(self.metastack), 'pickle mark stack')
    dispatch[pickle.MARK[0]] = load_mark

    def _memo_check(self):
        if len(self.memo) > self.budget.max_objects:
            self.budget.objects(len(self.memo), 'memo entries')

    for _opcode in (pickle.PUT, pickle.BINPUT, pickle.LONG_BINPUT, pickle.MEMOIZE):
        def _memoize(self, _base=pickle._Unpickler.dispatch[_opcode[0]]):
            _base(self)
            self._memo_check()
        dispatch[_opcode[0]] = _memoize

    def load_bytearray8(self):
        size, = struct.unpack('<Q', self.read(8))
        self.budget.spend(size, 'a byte array')
        self.budget.used_bytes -= size  # counted again as it is read
        data = self.read(size)
        if len(data) != size:
            raise pickle.UnpicklingError('truncated byte array')
        self.append(bytearray(data))
    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    def load_long4(self):
        size, = struct.unpack('<i', self.read(4))
        if not 0 <= size <= 64:
            raise Refusal(f'it holds a {size}-byte integer', 'no model holds integers beyond 512 bits', 'huge int')
        self.append(pickle.decode_long(self.read(size)))
    dispatch[pickle.LONG4[0]] = load_long4

    def frame_exhausted(self):
        """Whether the current pickle frame is fully read (joblib stores array bytes after it)."""
        frame = self._unframer.current_frame
        return frame is None or frame.tell() == len(frame.getbuffer())

    del _opcode, _memoize


def _set_instance_state(target, state):
    """Set a fresh instance's attributes from a dict of str keys (sklearn's own ``__setstate__`` for
    estimators: it also checks the scikit-learn version)."""
    if isinstance(state, tuple) and len(state) == 2 and state[1] is None:
        state = state[0]
    if not isinstance(state, dict) or not all(isinstance(key, str) for key in state):
        raise Refusal(f'it gives a {type(target).__name__} the state {type(state).__name__}',
                      'only a dict of attributes is set on a rebuilt object', 'instance state')
    from sklearn.base import BaseEstimator
    if isinstance(target, BaseEstimator):
        BaseEstimator.__setstate__(target, dict(state))
    else:
        target.__dict__.update(state)


def _set_random_state(target, state):
    """numpy validates a bit generator's or RandomState's state itself; only its shape is checked here."""
    if isinstance(target, np.random.MT19937) and isinstance(state, tuple) and len(state) == 2 \
            and state[1] is None:
        state = state[0]  # numpy 2 adds the seed sequence, None for a legacy-seeded generator
    if not isinstance(state, dict) or not all(isinstance(key, str) for key in state):
        raise Refusal('it gives a random generator a state that is not a dict', 'which numpy never writes',
                      'random state')
    if isinstance(target, np.random.RandomState):
        target.set_state(state)
    else:
        target.state = state


def resolve_leftover(obj):
    """A dtype stand-in left as a value (an estimator attribute) becomes the dtype it names."""
    return obj.resolve() if isinstance(obj, DtypeSpec) else obj


def loads(data, names, budget=None, **options):
    """Unpickle bytes with :class:`RestrictedUnpickler` (a convenience for tests and torch's data.pkl)."""
    from .budget import BudgetedReader
    budget = budget or Budget()
    return RestrictedUnpickler(BudgetedReader(io.BytesIO(data), budget, 'the pickle'), names, budget,
                               **options).load()
