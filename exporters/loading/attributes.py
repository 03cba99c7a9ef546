"""Checks shared by the loader's checks of a pipeline's transformers (``transformers``, ``vectorizers``): only known
attributes, plain parameter values, bounded regular expressions."""
import re

import numpy as np

from .constructors import NUMBER_TYPES, _OBJECT_ITEMS
from .errors import Refusal
from .families import _describe, _fail, integer

#: characters of a regular expression a file may choose (scikit-learn's token pattern has 15)
MAX_PATTERN = 1000
#: the largest n of the n-grams a vectorizer may make
MAX_NGRAM = 10
#: stop words a vectorizer may list
MAX_STOP_WORDS = 100_000
_COMMON = frozenset({'n_features_in_', 'feature_names_in_', '_sklearn_output_config'})
_SCALAR_TYPES = frozenset(NUMBER_TYPES.values())
_CONCRETE_TYPES = frozenset(t for t in _SCALAR_TYPES if t in (float, int, bool) or not t.__name__.endswith(
    ('number', 'integer', 'floating')))


# -- shared pieces ------------------------------------------------------------------------------------------------

def _attributes(estimator, fitted=()):
    """Refuse attributes that are neither parameters, listed fitted attributes, nor common ones."""
    params = set(type(estimator)._get_param_names()) if hasattr(type(estimator), '_get_param_names') else set()
    unknown = sorted(set(vars(estimator)) - params - set(fitted) - _COMMON)
    if unknown:
        name = type(estimator).__name__
        raise Refusal(f'its {name} has the attribute {unknown[0]!r:.60}', f'which is neither a parameter nor a fitted '
                      f'attribute of a {name} (only those are admitted)', f'{name}.{unknown[0]:.60}')
    config = getattr(estimator, '_sklearn_output_config', None)
    if config is not None and not (isinstance(config, dict) and all(
            isinstance(key, str) and isinstance(value, str) for key, value in config.items())):
        _fail(estimator, '_sklearn_output_config', _describe(config), "set_output's dict of strings")


def _value(estimator, attribute, allowed, expected):
    """``estimator.attribute`` must be one of ``allowed`` (compared by equality, types by identity)."""
    value = getattr(estimator, attribute, None)
    if not any(value is option or (type(value) is type(option) and value == option) for option in allowed):
        _fail(estimator, attribute, repr(value)[:60] if _plain(value) else _describe(value), expected)
    return value


def _flag(estimator, attribute, optional=True):
    value = getattr(estimator, attribute, None)
    if not (value is None and optional) and type(value) is not bool:
        _fail(estimator, attribute, repr(value)[:40], 'True or False')
    return value


def _number(estimator, attribute, low=None, high=None, optional=True, integral=False):
    value = getattr(estimator, attribute, None)
    if value is None and optional:
        return None
    kinds = (int, np.integer) if integral else (int, float, np.integer, np.floating)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kinds) or not np.isfinite(value) or (
            low is not None and value < low) or (high is not None and value > high):
        _fail(estimator, attribute, repr(value)[:40], f'a finite {"integer" if integral else "number"}'
              f'{f" >= {low}" if low is not None else ""}{f" <= {high}" if high is not None else ""}')
    return value


def _scalar_type(estimator, attribute, concrete=True):
    value = getattr(estimator, attribute, None)
    if value not in (_CONCRETE_TYPES if concrete else _SCALAR_TYPES):
        _fail(estimator, attribute, repr(value)[:40], 'a numpy number type (np.float64, ...)')


def _plain(value):
    return type(value) in _OBJECT_ITEMS or isinstance(value, (np.floating, np.integer, np.bool_))


def _index(value, size):
    """Whether ``value`` is an integer index into ``range(size)`` (Python or numpy, never a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and 0 <= value < size


def _names_in(estimator, width):
    names = getattr(estimator, 'feature_names_in_', None)
    if names is not None and (not isinstance(names, np.ndarray) or names.shape != (width,) or not all(
            type(name) is str for name in names)):
        _fail(estimator, 'feature_names_in_', _describe(names), f'{width} column names')


def _width(estimator):
    width = integer(estimator, 'n_features_in_', 1)
    _names_in(estimator, width)
    return width


def _fitted(estimator):
    return any(key.endswith('_') and not key.startswith('__') for key in vars(estimator))


def check_pattern(estimator, attribute, max_groups=None):
    """A regular expression chosen by the file: bounded, compiling, without the shapes of catastrophic backtracking
    (an unbounded repeat inside another repeat, or an alternation under an unbounded repeat)."""
    pattern = getattr(estimator, attribute, None)
    if pattern is None:
        return
    if type(pattern) is not str or len(pattern) > MAX_PATTERN:
        _fail(estimator, attribute, _describe(pattern) if type(pattern) is not str else
              f'a pattern of {len(pattern)} characters', f'a regular expression of at most {MAX_PATTERN} characters')
    try:
        compiled = re.compile(pattern)
        parsed = re._parser.parse(pattern)
    except (re.error, RecursionError, OverflowError) as error:
        _fail(estimator, attribute, f'{pattern!r:.60}, which does not compile ({error})', 'a regular expression')
    if max_groups is not None and compiled.groups > max_groups:
        _fail(estimator, attribute, f'{pattern!r:.60} with {compiled.groups} groups', f'at most {max_groups} group')
    stack = [(parsed, False)]
    while stack:
        items, under = stack.pop()
        for op, arg in items:
            name = str(op)
            if name in ('MAX_REPEAT', 'MIN_REPEAT'):
                low, high, body = arg
                unbounded = high == re._parser.MAXREPEAT or high > 1000
                if under and unbounded:
                    _fail(estimator, attribute, f'{pattern!r:.60}, an unbounded repeat inside a repeat',
                          'a regular expression without nested repeats (they can take exponential time)')
                stack.append((body, under or high > 1))
            elif name == 'BRANCH':
                if under:
                    _fail(estimator, attribute, f'{pattern!r:.60}, an alternation inside a repeat',
                          'a regular expression without alternations under a repeat (they can take exponential '
                          'time)')
                stack.extend((branch, under) for branch in arg[1])
            elif name == 'SUBPATTERN':
                stack.append((arg[-1], under))
            elif name in ('ASSERT', 'ASSERT_NOT'):
                stack.append((arg[1], under))
            elif name == 'GROUPREF_EXISTS':
                stack.extend((part, under) for part in arg[1:] if part is not None)
            elif name == 'ATOMIC_GROUP':
                stack.append((arg, under))
