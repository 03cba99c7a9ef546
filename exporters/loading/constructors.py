"""The loader's own stand-ins for the names a pickle may reference: inert references and checked constructors.

A name admitted by the allow-list is never called as it is. It resolves to one of:

- :class:`Constructor`: a function of the loader that checks every argument and builds the object itself
  (numpy arrays, dtypes and scalars only of plain dtypes the loader builds from their name; never from a
  file's dtype state);
- :class:`ClassRef`: an admitted class, instantiated without its constructor (``cls.__new__(cls)``), its state
  set once, on that fresh instance only;
- :class:`Marker`: a name that may only appear as an argument of a constructor (``numpy.ndarray``,
  ``builtins.object``, ...);
- :class:`FunctionRef`: a function an estimator keeps as an attribute; never callable, replaced after the
  load by the real function where (and only where) the estimator's family needs it;
- :class:`TypeValue`: a numpy scalar type or a Python number type kept as a value (an encoder's or a
  vectorizer's ``dtype=np.float64``); never instantiated or called, replaced by the type after the load.

Names whose stand-in is one of the loader's own (not the class the name would import) and that a family may
declare are in :func:`declared_standins`.
"""
import math

import numpy as np

from .errors import Refusal

#: the dtype names a file may ask for: booleans, integers, floats, complex numbers, fixed-width strings;
#: ``O8`` (object) only for arrays of plain Python scalars, ``V<n>`` only as records of plain numeric fields
_PLAIN = frozenset({'b1', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'f2', 'f4', 'f8', 'f16', 'c8', 'c16',
                    'c32'})
_OBJECT_ITEMS = (str, int, float, bool, type(None))


class Marker:
    """A name that may only be an argument of a constructor (never called, never built)."""
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f'<{self.name}>'


class FunctionRef(Marker):
    """A function named by a file: kept inert, substituted after the load where a family needs it."""


class ClassRef(Marker):
    """An admitted class: rebuilt by ``cls.__new__(cls)`` and a single state update, never by calling it."""
    def __init__(self, name, cls):
        super().__init__(name)
        self.cls = cls


class TypeValue(Marker):
    """A plain number type named by a file as a value (``dtype=np.float64``); becomes that type after the load."""
    def __init__(self, name, type_):
        super().__init__(name)
        self.type = type_


class Constructor(Marker):
    """A checked constructor standing for ``name``; called as ``function(unpickler, *args)``."""
    def __init__(self, name, function):
        super().__init__(name)
        self.function = function


class Forbidden(Marker):
    """A name refused with a specific reason as soon as the file references it."""
    def __init__(self, name, what, why):
        super().__init__(name)
        self.what, self.why = what, why


def _bad(what, why='which no supported model holds', refused=None):
    return Refusal(what, why, refused or what)


def check_shape(shape, what='an array'):
    """A tuple of non-negative ints of at most 32 dimensions; returns the element count."""
    if not isinstance(shape, tuple) or len(shape) > 32 or not all(
            type(n) is int and 0 <= n < 1 << 62 for n in shape):
        raise _bad(f'it gives {what} the shape {shape!r:.80}', 'which is not a tuple of non-negative sizes',
                   'array shape')
    return math.prod(shape)


class DtypeSpec:
    """A dtype asked for by name (``numpy.dtype('f8', False, True)``); its state only supplies a byte order.

    The real dtype is built by :meth:`resolve` from the name, the byte order and, for records, fields
    that are themselves plain numeric dtypes. The file's own dtype state (flags, item size, fields) is
    never applied to a dtype object.
    """
    def __init__(self, spec):
        self.spec, self.order, self.fields, self.itemsize = spec, '|', None, None

    def apply(self, state):
        if not isinstance(state, tuple) or len(state) not in (8, 9) or type(state[0]) is not int:
            raise _bad(f'it gives a dtype the state {state!r:.80}', 'which is not a numpy dtype state', 'dtype state')
        order, subarray, names, fields, elsize = state[1:6]
        if order not in ('<', '>', '|', '='):
            raise _bad(f'it gives a dtype the byte order {order!r:.20}', 'which numpy does not know', 'dtype state')
        if subarray is not None:
            raise _bad('it holds a sub-array dtype', 'which no supported model holds', 'sub-array dtype')
        self.order = order
        if self.spec.startswith('V'):
            self.itemsize = int(self.spec[1:])
            self.fields = self._record_fields(names, fields)
        elif names is not None or fields is not None:
            raise _bad(f'it gives the plain dtype {self.spec} record fields', 'which would make it a different '
                       'dtype than the one named', 'dtype fields')

    def _record_fields(self, names, fields):
        if not isinstance(names, tuple) or not isinstance(fields, dict) or set(names) != set(fields) or not all(
                isinstance(name, str) for name in names):
            raise _bad('it holds a record dtype without consistent field names', 'which numpy never writes',
                       'record dtype')
        built = []
        for name in names:
            entry = fields[name]
            if not isinstance(entry, tuple) or len(entry) != 2 or not isinstance(entry[0], DtypeSpec) \
                    or type(entry[1]) is not int:
                raise _bad(f'its record field {name!r:.40} is not (dtype, offset)', 'which numpy never writes',
                           'record dtype')
            field, offset = entry
            if field.spec not in _PLAIN:
                raise _bad(f'its record dtype has a field {name!r:.40} of dtype {field.spec}',
                           'records may hold plain numeric fields only', 'record dtype with non-numeric field')
            if not 0 <= offset <= self.itemsize - field.resolve().itemsize:
                raise _bad(f'its record field {name!r:.40} lies outside the record', 'which would read memory '
                           'that is not the record\'s', 'record dtype offset')
            built.append((name, field.resolve(), offset))
        return built

    def resolve(self):
        """The numpy dtype this spec stands for (built here, from the name)."""
        if self.fields is not None:
            return np.dtype({'names': [n for n, _, _ in self.fields], 'formats': [d for _, d, _ in self.fields],
                             'offsets': [o for _, _, o in self.fields], 'itemsize': self.itemsize})
        dtype = np.dtype(self.spec)
        return dtype.newbyteorder(self.order) if self.order in '<>' and dtype.kind not in 'OVb' else dtype


def make_dtype(unpickler, spec, align=False, copy=True):
    """``numpy.dtype(spec, align, copy)`` for a plain dtype name only."""
    if not isinstance(spec, str) or type(align) is not bool or type(copy) is not bool:
        raise _bad(f'it asks for numpy.dtype{(spec, align, copy)!r:.80}', 'which is not how numpy writes a dtype',
                   'numpy.dtype arguments')
    kind, size = spec[:1], spec[1:]
    if spec in _PLAIN or spec == 'O8' or (kind in 'VUS' and size.isdigit() and 0 < int(size) <= 1 << 16):
        return unpickler.fresh(DtypeSpec(spec), 'dtype')
    raise _bad(f'it asks for the dtype {spec!r:.40}', 'only plain numeric, boolean, string and record dtypes are '
               'rebuilt', 'dtype ' + spec[:40])


def as_dtype(spec, what, allow_object=False):
    """The resolved dtype of a :class:`DtypeSpec` argument, refusing object dtypes unless allowed."""
    if not isinstance(spec, DtypeSpec):
        raise _bad(f'it gives {what} the dtype {type(spec).__name__}', 'not a dtype the loader built', 'dtype')
    dtype = spec.resolve()
    if dtype.hasobject and not allow_object:
        raise _bad(f'it holds {what} of object dtype', 'only plain numeric data is rebuilt here', 'object dtype')
    return dtype


def reconstruct(unpickler, cls, shape, typecode):
    """``numpy._core.multiarray._reconstruct``: the empty ``ndarray`` that the state then fills."""
    if not (isinstance(cls, Marker) and cls.name == 'numpy.ndarray') or shape != (0,) or typecode != b'b':
        raise _bad(f'it calls numpy\'s _reconstruct with {(cls, shape, typecode)!r:.80}',
                   'only plain numpy.ndarray is rebuilt, as numpy writes it', 'numpy._reconstruct arguments')
    return unpickler.fresh(np.empty(0, dtype=np.int8), 'array')


def build_array(unpickler, array, state):
    """Fill a fresh array from ``(version, shape, dtype, is_fortran, data)``, with a dtype built here."""
    if not isinstance(state, tuple) or len(state) != 5 or type(state[0]) is not int:
        raise _bad(f'it gives an array the state {state!r:.80}', 'which is not a numpy array state', 'array state')
    _, shape, spec, fortran, data = state
    count = check_shape(shape)
    dtype = as_dtype(spec, 'an array', allow_object=True)
    if type(fortran) is not bool:
        raise _bad('it gives an array a non-boolean memory order', 'which numpy never writes', 'array state')
    if dtype.hasobject:
        if not isinstance(data, list) or len(data) != count or not all(type(x) in _OBJECT_ITEMS for x in data):
            raise _bad('it holds an object array whose items are not plain strings or numbers',
                       'object arrays may hold only str, int, float, bool or None', 'object array items')
        unpickler.budget.spend(8 * count, 'an object array')
    elif not isinstance(data, (bytes, bytearray)) or len(data) != count * dtype.itemsize:
        raise _bad(f'it holds an array of shape {shape} and dtype {dtype} with '
                   f'{len(data) if isinstance(data, (bytes, bytearray)) else type(data).__name__} bytes of data',
                   f'not the {count * dtype.itemsize} bytes that shape needs', 'array data size')
    array.__setstate__((1, shape, dtype, fortran, data))


def frombuffer(unpickler, buffer, spec, shape, order):
    """``numpy._core.numeric._frombuffer`` (protocol 5): plain data of exactly the declared size."""
    if isinstance(buffer, memoryview) or not isinstance(buffer, (bytes, bytearray)):
        raise _bad(f'it builds an array from a {type(buffer).__name__}', 'only in-band bytes are read',
                   'array buffer')
    dtype = as_dtype(spec, 'an array')
    count = check_shape(shape)
    if order not in ('C', 'F') or len(buffer) != count * dtype.itemsize:
        raise _bad(f'it holds an array of shape {shape} and dtype {dtype} with {len(buffer)} bytes of data',
                   f'not the {count * dtype.itemsize} bytes that shape needs', 'array data size')
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


def scalar(unpickler, spec, data=None):
    """``numpy._core.multiarray.scalar``: a numpy scalar of a plain dtype from exactly its bytes."""
    dtype = as_dtype(spec, 'a scalar')
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise _bad(f'it holds a {dtype} scalar with {type(data).__name__} data', f'not {dtype.itemsize} bytes',
                   'scalar data')
    return np.frombuffer(data, dtype=dtype)[0].copy()


def encode(unpickler, text, encoding='utf-8'):
    """``_codecs.encode(text, 'latin1')``: how protocols 0-2 spell bytes."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise _bad(f'it calls _codecs.encode on {type(text).__name__} with {encoding!r:.20}',
                   'only latin-1 text to bytes is how pickles spell bytes', '_codecs.encode arguments')
    return text.encode('latin1')


def reconstructor(unpickler, cls, base, state):
    """``copyreg._reconstructor(cls, object, None)`` (protocols 0-1): a fresh instance of an admitted class."""
    if not (isinstance(base, Marker) and base.name == 'builtins.object') or state is not None:
        raise _bad('it calls copyreg._reconstructor with a base other than object',
                   'which would call that base\'s constructor', 'copyreg._reconstructor arguments')
    return unpickler.instantiate(cls)


def bit_generator(unpickler, name='MT19937'):
    """``numpy.random._pickle.__bit_generator_ctor``: a fresh MT19937 (the only one a RandomState uses)."""
    if not (name == 'MT19937' or isinstance(name, Marker) and name.name == 'numpy.random._mt19937.MT19937'):
        raise _bad(f'it asks for the bit generator {name!r:.40}', 'only MT19937 is rebuilt', 'bit generator')
    return unpickler.fresh(np.random.MT19937(), 'bitgen')


def random_state(unpickler, generator='MT19937', ctor=None):
    """``numpy.random._pickle.__randomstate_ctor``: a RandomState on a fresh MT19937."""
    if isinstance(generator, str):
        generator = bit_generator(unpickler, generator)
    if not isinstance(generator, np.random.MT19937) or not unpickler.is_fresh(generator):
        raise _bad('it builds a RandomState on something other than a fresh MT19937', 'which numpy never writes',
                   'RandomState arguments')
    return unpickler.fresh(np.random.RandomState(generator), 'randomstate')


def make_slice(unpickler, start=None, stop=None, step=None):
    """``builtins.slice(start, stop, step)`` of ints or None (a ColumnTransformer's ``output_indices_``)."""
    if not all(value is None or type(value) is int for value in (start, stop, step)):
        raise _bad(f'it builds a slice of {(start, stop, step)!r:.80}', 'only slices of integers are rebuilt',
                   'slice arguments')
    return slice(start, stop, step)


#: number types an estimator keeps as values: ``dtype=`` of encoders and vectorizers, the ``dtype_include`` of a
#: column selector (numpy 2 spells ``np.bool_`` as ``numpy.bool``)
NUMBER_TYPES = {f'numpy.{name}': getattr(np, name) for name in (
    'float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',
    'number', 'integer', 'floating', 'signedinteger', 'unsignedinteger')}
NUMBER_TYPES.update({'builtins.float': float, 'builtins.int': int, 'builtins.bool': bool})
NUMBER_TYPES.update({'numpy.bool': np.bool_, 'numpy.bool_': np.bool_})


def declared_standins():
    """Names a family may declare (``Family.pickle_names``) that stand for a loader constructor or an inert type
    value rather than for the class they would import: ``builtins.slice`` and :data:`NUMBER_TYPES`."""
    table = {name: TypeValue(name, type_) for name, type_ in NUMBER_TYPES.items()}
    table['builtins.slice'] = Constructor('builtins.slice', make_slice)
    return table


def numpy_names():
    """The numpy, copyreg and codecs names of ``BASE_NAMES`` and what each stands for."""
    table = {'numpy.ndarray': Marker('numpy.ndarray'), 'builtins.object': Marker('builtins.object'),
             'numpy.random._mt19937.MT19937': Marker('numpy.random._mt19937.MT19937')}
    for base in ('numpy._core', 'numpy.core'):
        table[f'{base}.multiarray._reconstruct'] = Constructor('numpy._reconstruct', reconstruct)
        table[f'{base}.multiarray.scalar'] = Constructor('numpy.scalar', scalar)
        table[f'{base}.numeric._frombuffer'] = Constructor('numpy._frombuffer', frombuffer)
    table.update({
        'numpy.dtype': Constructor('numpy.dtype', make_dtype),
        '_codecs.encode': Constructor('_codecs.encode', encode),
        'copyreg._reconstructor': Constructor('copyreg._reconstructor', reconstructor),
        'numpy.random._pickle.__randomstate_ctor': Constructor('RandomState', random_state),
        'numpy.random._pickle.__bit_generator_ctor': Constructor('MT19937', bit_generator),
    })
    return table
