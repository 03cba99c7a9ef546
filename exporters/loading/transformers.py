"""What a pipeline's transformers must hold after loading: plain parameters, plain fitted state, consistent shapes.

The pipeline family admits the transformer types of its stage table (``zennit_clusters.families.pipeline``:
imputers, encoders, column transformers, projections, Normalizer, vectorizers). A file can give any of them
parameters that are behaviour (a tokenizer, an analyzer, a FunctionTransformer's function, a callable
strategy), attributes no fitted transformer has, or fitted state that would index out of range, crash deep in
numpy, or be silently wrong. Each check below:

- admits only the attributes a fitted instance has: the constructor's parameters, the fitted attributes listed
  here, ``n_features_in_``, ``feature_names_in_`` and ``set_output``'s configuration; anything else is refused;
- refuses every callable parameter (``tokenizer``, ``preprocessor``, ``analyzer``, ``strip_accents``,
  ``func``, ``feature_name_combiner``, ...): only the plain values scikit-learn names are admitted;
- checks the fitted state against itself: a vocabulary that is a bijection onto ``range(V)``, ``idf_`` of
  length V, finite and positive, components of shape ``(k, n_features_in_)`` and finite, categories sorted and
  unique as scikit-learn makes them, a ColumnTransformer's columns inside ``range(n_features_in_)`` and its
  output blocks contiguous and as wide as its parts;
- bounds what a file chooses that costs time later: regular expressions (length, at most one group for a
  token pattern, no nested or alternating unbounded repeats, the shapes of catastrophic backtracking), n-gram
  ranges, stop-word lists.

:func:`output_width` gives the number of columns each step makes, so that a pipeline's steps can be checked to
fit each other. Types without a check here are refused by :func:`~.families.check_estimator`. Shared pieces are
in ``attributes``, the text vectorizers' checks in ``vectorizers``.
"""
import string

import numpy as np

from .attributes import (_SCALAR_TYPES, _attributes, _fitted, _flag, _index, _number, _plain, _scalar_type,
                         _value, _width, check_pattern)
from .families import _describe, _fail, array, integer
from .vectorizers import check_tfidf_transformer, check_vectorizer

# -- encoders and imputers ----------------------------------------------------------------------------------------

def _sorted_unique(values):
    """Whether a fitted category array is sorted and unique as scikit-learn makes it (a missing value last)."""
    if values.dtype.kind in 'iub':
        return bool(np.all(values[1:] > values[:-1]))
    if values.dtype.kind == 'f':
        present = values[~np.isnan(values)]
        return bool(np.isnan(values).sum() <= 1 and not np.isnan(values[:len(present)]).any()
                    and np.isfinite(present).all() and np.all(present[1:] > present[:-1]))
    items = list(values)
    missing = [item for item in items if item is None or (type(item) is float and item != item)]
    present = items[:len(items) - len(missing)]
    if len(missing) > 1 or any(item is None or (type(item) is float and item != item) for item in present):
        return False
    kinds = {type(item) for item in present}
    if len(kinds) > 1:
        return False
    return all(a < b for a, b in zip(present, present[1:]))


def _categories(estimator):
    width = _width(estimator)
    categories = getattr(estimator, 'categories_', None)
    if not isinstance(categories, list) or len(categories) != width:
        _fail(estimator, 'categories_', _describe(categories), f'a list of {width} arrays')
    for index, values in enumerate(categories):
        if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.kind not in 'iubfOU' or \
                not len(values) or not _sorted_unique(values):
            _fail(estimator, 'categories_', f'{_describe(values)} for column {index}' if not isinstance(
                values, np.ndarray) or values.ndim != 1 else f'the categories {values[:5].tolist()!r:.80}... of '
                f'column {index}, not sorted and unique', 'one sorted array of unique categories per column')
    parameter = getattr(estimator, 'categories', None)
    if not (parameter == 'auto' if isinstance(parameter, str) else isinstance(parameter, list)
            and len(parameter) == width):
        _fail(estimator, 'categories', _describe(parameter), "'auto' or one list of categories per column")
    for attribute in ('min_frequency', 'max_categories'):
        if getattr(estimator, attribute, None) is not None:
            _fail(estimator, attribute, repr(getattr(estimator, attribute))[:40], 'None (the loader does not admit '
                  'infrequent categories yet)')
    _value(estimator, '_infrequent_enabled', (False,), 'False (infrequent categories are not admitted)')
    _scalar_type(estimator, 'dtype')
    return categories


def _drop_index(estimator, attribute, categories):
    index = getattr(estimator, attribute, None)
    if index is None:
        return [None] * len(categories)
    if not isinstance(index, np.ndarray) or index.shape != (len(categories),) or not all(
            item is None or (isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))
                             and 0 <= item < len(values)) for item, values in zip(index, categories)):
        _fail(estimator, attribute, _describe(index), 'None, or one category index (or None) per column')
    return list(index)


def check_one_hot(estimator):
    _attributes(estimator, ('categories_', 'drop_idx_', '_drop_idx_after_grouping', '_n_features_outs',
                            '_infrequent_enabled'))
    _value(estimator, 'handle_unknown', ('error', 'ignore', 'infrequent_if_exist', 'warn'),
           "'error', 'ignore', 'infrequent_if_exist' or 'warn'")
    _value(estimator, 'feature_name_combiner', ('concat',), "'concat' (a function is not admitted)")
    _flag(estimator, 'sparse_output', optional=False)
    drop = getattr(estimator, 'drop', None)
    if isinstance(drop, (list, np.ndarray)):
        ok = all(_plain(item) for item in np.asarray(drop, dtype=object).ravel())
    else:
        ok = drop is None or drop in ('first', 'if_binary')
    if not ok:
        _fail(estimator, 'drop', _describe(drop), "None, 'first', 'if_binary' or one category per column")
    if not _fitted(estimator):
        return
    categories = _categories(estimator)
    dropped = _drop_index(estimator, 'drop_idx_', categories)
    if _drop_index(estimator, '_drop_idx_after_grouping', categories) != dropped:
        _fail(estimator, '_drop_idx_after_grouping', 'other categories than drop_idx_', 'the same as drop_idx_')
    expected = [len(values) - (index is not None) for values, index in zip(categories, dropped)]
    if getattr(estimator, '_n_features_outs', None) != expected:
        _fail(estimator, '_n_features_outs', repr(getattr(estimator, '_n_features_outs', None))[:60],
              f'the columns its categories make, {expected!r:.60}')


def check_ordinal(estimator):
    _attributes(estimator, ('categories_', '_missing_indices', '_infrequent_enabled'))
    _value(estimator, 'handle_unknown', ('error', 'use_encoded_value'), "'error' or 'use_encoded_value'")
    for attribute in ('unknown_value', 'encoded_missing_value'):
        value = getattr(estimator, attribute, None)
        if not (value is None or (isinstance(value, (int, float, np.integer, np.floating))
                                  and not isinstance(value, (bool, np.bool_)))):
            _fail(estimator, attribute, repr(value)[:40], 'None, an integer or NaN')
    if not _fitted(estimator):
        return
    categories = _categories(estimator)
    missing = getattr(estimator, '_missing_indices', None)
    if not isinstance(missing, dict) or not all(
            _index(key, len(categories)) and _index(value, len(categories[key])) for key, value in missing.items()):
        _fail(estimator, '_missing_indices', _describe(missing), 'a dict of column index -> category index')


def check_imputer(estimator):
    _attributes(estimator, ('statistics_', 'indicator_', '_fit_dtype', '_fill_dtype'))
    _value(estimator, 'strategy', ('mean', 'median', 'most_frequent', 'constant'),
           "'mean', 'median', 'most_frequent' or 'constant' (a function is not admitted)")
    for attribute in ('missing_values', 'fill_value'):
        if not _plain(getattr(estimator, attribute, None)):
            _fail(estimator, attribute, _describe(getattr(estimator, attribute, None)), 'a number, string or None')
    for attribute in ('add_indicator', 'keep_empty_features', 'copy'):
        _flag(estimator, attribute)
    if not _fitted(estimator):
        return
    width = _width(estimator)
    for attribute in ('_fit_dtype', '_fill_dtype'):
        value = getattr(estimator, attribute, None)
        if value is not None and not (isinstance(value, np.dtype) and not value.hasobject or value == np.dtype('O')):
            _fail(estimator, attribute, _describe(value), 'a numpy dtype')
    statistics = getattr(estimator, 'statistics_', None)
    if not isinstance(statistics, np.ndarray) or statistics.shape != (width,) or not (
            statistics.dtype.kind in 'iuf' and not np.isinf(statistics).any() if statistics.dtype.kind != 'O'
            else all(_plain(item) for item in statistics)):
        _fail(estimator, 'statistics_', _describe(statistics), f'one value per column ({width}), no infinities')
    indicator = getattr(estimator, 'indicator_', None)
    if indicator is not None:
        if type(indicator).__name__ != 'MissingIndicator' or not estimator.add_indicator or \
                getattr(indicator, 'n_features_in_', None) != width:
            _fail(estimator, 'indicator_', _describe(indicator), f'None, or a MissingIndicator of the {width} columns '
                  'when add_indicator=True')


def check_missing_indicator(estimator):
    _attributes(estimator, ('features_', '_n_features', '_precomputed'))
    _value(estimator, 'features', ('missing-only', 'all'), "'missing-only' or 'all'")
    _value(estimator, 'sparse', ('auto', True, False), "'auto', True or False")
    _flag(estimator, 'error_on_new')
    if not _plain(getattr(estimator, 'missing_values', None)):
        _fail(estimator, 'missing_values', _describe(estimator.missing_values), 'a number, string or None')
    if not _fitted(estimator):
        return
    width = _width(estimator)
    _flag(estimator, '_precomputed')
    if getattr(estimator, '_n_features', width) != width:
        _fail(estimator, '_n_features', repr(estimator._n_features)[:40], f'n_features_in_ ({width})')
    features = array(estimator, 'features_', ('M',), kind='i')
    if features.size and (features.min() < 0 or features.max() >= width or np.any(features[1:] <= features[:-1])):
        _fail(estimator, 'features_', 'column indices outside range or not increasing',
              f'increasing column indices in 0..{width - 1}')


def check_function(estimator):
    """Only the identity (``func=None``): what a ColumnTransformer's ``remainder='passthrough'`` becomes."""
    _attributes(estimator)
    for attribute in ('func', 'inverse_func', 'kw_args', 'inv_kw_args'):
        if getattr(estimator, attribute, None) is not None:
            _fail(estimator, attribute, _describe(getattr(estimator, attribute)), 'None (a FunctionTransformer is '
                  'admitted only as the identity; a function of the file is not)')
    _value(estimator, 'feature_names_out', (None, 'one-to-one'), "None or 'one-to-one' (a function is not admitted)")
    for attribute in ('validate', 'accept_sparse', 'check_inverse'):
        _flag(estimator, attribute)
    if _fitted(estimator):
        _width(estimator)


# -- column transformer -------------------------------------------------------------------------------------------

def check_column_selector(selector):
    """``make_column_selector``: its three plain fields only (it is called at fit, never at transform)."""
    unknown = sorted(set(vars(selector)) - {'pattern', 'dtype_include', 'dtype_exclude'})
    if unknown:
        _fail(selector, unknown[0], 'set', "only pattern, dtype_include and dtype_exclude")
    check_pattern(selector, 'pattern')
    for attribute in ('dtype_include', 'dtype_exclude'):
        value = getattr(selector, attribute, None)
        items = value if isinstance(value, (list, tuple)) else [value]
        if len(items) > 100 or not all(item is None and value is None or type(item) is str and len(item) <= 100
                                       or item in _SCALAR_TYPES for item in items):
            _fail(selector, attribute, _describe(value), 'None, dtype names or numpy number types')


def _selection(estimator, name, columns, width, names):
    """A part's columns as a ColumnTransformer keeps them: inside ``range(width)`` or among the fitted names."""
    where = f'part {name!r:.40}'
    if type(columns).__name__ == 'make_column_selector':
        check_column_selector(columns)
        return
    if isinstance(columns, slice):
        if not all(part is None or type(part) in (int, str) for part in (columns.start, columns.stop, columns.step)):
            _fail(estimator, 'transformers_', f'{where} selecting {columns!r:.60}', 'slices of indices or names')
        return
    items = list(columns) if isinstance(columns, (list, tuple, np.ndarray)) else [columns]
    if len(items) > max(width, 1) and not (isinstance(columns, np.ndarray) and columns.dtype == bool):
        _fail(estimator, 'transformers_', f'{where} selecting {len(items)} columns', f'at most {width} columns')
    if isinstance(columns, np.ndarray) and columns.dtype == bool:
        if columns.shape != (width,):
            _fail(estimator, 'transformers_', f'{where} selecting by a mask of shape {columns.shape}',
                  f'a mask of {width} columns')
        return
    for item in items:
        if isinstance(item, (bool, np.bool_)):
            ok = len(items) == width
        elif isinstance(item, (int, np.integer)):
            ok = -width <= item < width
        elif type(item) is str or isinstance(item, np.str_):
            ok = names is None or item in names
        else:
            ok = False
        if not ok:
            _fail(estimator, 'transformers_', f'{where} selecting column {item!r:.40}',
                  f'columns among its {width} inputs' + (' (by index or fitted name)' if names is not None else ''))


def _part(estimator, attribute, step):
    if isinstance(step, str):
        if step not in ('drop', 'passthrough'):
            _fail(estimator, attribute, f'a part {step!r:.40}', "'drop', 'passthrough' or a transformer")
    elif not hasattr(type(step), '_get_param_names'):  # an estimator: checked itself by the loader's walk
        _fail(estimator, attribute, f'a part of type {full_type(step)}', 'a transformer')


def check_column_transformer(estimator):
    _attributes(estimator, ('_columns', '_transformer_to_input_indices', '_remainder', 'sparse_output_',
                            'transformers_', 'output_indices_', '_n_features', '_name_to_fitted_passthrough'))
    _number(estimator, 'sparse_threshold', 0, 1)
    _number(estimator, 'n_jobs', integral=True)
    _flag(estimator, 'verbose')
    names_out = getattr(estimator, 'verbose_feature_names_out', True)
    if not (type(names_out) is bool or type(names_out) is str and len(names_out) <= 200 and {
            field for _, field, _, _ in string.Formatter().parse(names_out) if field is not None} <= {
            'transformer_name', 'feature_name'}):
        _fail(estimator, 'verbose_feature_names_out', repr(names_out)[:60], 'a bool or a format of transformer_name '
              'and feature_name')
    weights = getattr(estimator, 'transformer_weights', None)
    if weights is not None and not (isinstance(weights, dict) and all(
            type(key) is str and isinstance(value, (int, float)) and np.isfinite(value)
            for key, value in weights.items())):
        _fail(estimator, 'transformer_weights', _describe(weights), 'None or a dict of part name -> number')
    remainder = getattr(estimator, 'remainder', None)
    _part(estimator, 'remainder', remainder)
    specified = getattr(estimator, 'transformers', None)
    if not isinstance(specified, list) or not all(isinstance(entry, tuple) and len(entry) == 3 and type(entry[0]) is str
                                                  for entry in specified):
        _fail(estimator, 'transformers', _describe(specified), 'a list of (name, transformer, columns)')
    for name, step, columns in specified:
        _part(estimator, 'transformers', step)
        if type(columns).__name__ == 'make_column_selector':
            check_column_selector(columns)
    if not _fitted(estimator):
        return
    width = _width(estimator)
    names = getattr(estimator, 'feature_names_in_', None)
    names = None if names is None else set(names.tolist())
    _flag(estimator, 'sparse_output_')
    fitted = getattr(estimator, 'transformers_', None)
    if not isinstance(fitted, list) or not all(isinstance(entry, tuple) and len(entry) == 3 and type(entry[0]) is str
                                               for entry in fitted) or len({e[0] for e in fitted}) != len(fitted):
        _fail(estimator, 'transformers_', _describe(fitted), 'a list of (unique name, transformer, columns)')
    inputs = getattr(estimator, '_transformer_to_input_indices', None)
    if not isinstance(inputs, dict) or not all(
            type(key) is str and isinstance(value, list) and all(type(i) is int and 0 <= i < width for i in value)
            for key, value in inputs.items()):
        _fail(estimator, '_transformer_to_input_indices', _describe(inputs) if not isinstance(inputs, dict) else
              'a column index outside range', f'lists of column indices in 0..{width - 1}')
    blocks = getattr(estimator, 'output_indices_', None)
    if not isinstance(blocks, dict) or set(blocks) != {entry[0] for entry in fitted} | ({'remainder'} & set(blocks)):
        _fail(estimator, 'output_indices_', _describe(blocks), 'one slice per part')
    stop = 0
    for name, step, columns in fitted:
        _part(estimator, 'transformers_', step)
        _selection(estimator, name, columns, width, names)
        if name not in inputs:
            _fail(estimator, '_transformer_to_input_indices', f'no columns for part {name!r:.40}', 'every part\'s')
        block = blocks[name]
        if not isinstance(block, slice) or block.step is not None or block.start != stop \
                or type(block.stop) is not int or block.stop < block.start:
            _fail(estimator, 'output_indices_', f'{block!r:.40} for part {name!r:.40}',
                  f'contiguous slices from {stop}')
        made = len(inputs[name]) if step == 'passthrough' else 0 if step == 'drop' else output_width(step)
        if made is not None and block.stop - block.start != made and block.stop != block.start:
            _fail(estimator, 'output_indices_', f'{block!r:.40} for part {name!r:.40}', f'the {made} columns it makes')
        if not isinstance(step, str) and getattr(step, 'n_features_in_', len(inputs[name])) != len(inputs[name]):
            _fail(estimator, 'transformers_', f'part {name!r:.40} fitted on {step.n_features_in_} columns',
                  f'the {len(inputs[name])} columns it selects')
        stop = block.stop
    remainder_state = getattr(estimator, '_remainder', None)
    if remainder_state is not None and not (isinstance(remainder_state, tuple) and len(remainder_state) == 3):
        _fail(estimator, '_remainder', _describe(remainder_state), '(name, transformer, columns)')


# -- projections, normalisation -----------------------------------------------------------------------------------

def check_projection(estimator):
    """PCA and TruncatedSVD: finite components of shape (k, n_features_in_), their statistics of length k."""
    pca = type(estimator).__name__ == 'PCA'
    _attributes(estimator, ('components_', 'explained_variance_', 'explained_variance_ratio_', 'singular_values_',
                            *(('mean_', 'n_components_', 'n_samples_', 'noise_variance_', '_fit_svd_solver')
                              if pca else ())))
    _flag(estimator, 'whiten')
    _flag(estimator, 'copy')
    if not _fitted(estimator):
        return
    width = _width(estimator)
    sizes = {'D': width}
    array(estimator, 'components_', ('k', 'D'), sizes=sizes)
    for attribute in ('explained_variance_', 'explained_variance_ratio_', 'singular_values_'):
        array(estimator, attribute, ('k',), sizes=sizes, optional=True)
    if pca:
        array(estimator, 'mean_', ('D',), sizes=sizes)
        if integer(estimator, 'n_components_', 1) != sizes['k']:
            _fail(estimator, 'n_components_', estimator.n_components_, f'the number of components ({sizes["k"]})')
        _number(estimator, 'noise_variance_')
        _number(estimator, 'n_samples_', 1, integral=True)
        if estimator.whiten:
            variance = array(estimator, 'explained_variance_', ('k',), sizes=sizes)
            if not (variance > 0).all():
                _fail(estimator, 'explained_variance_', 'a zero or negative variance', 'positive variances (whiten)')


def check_normalizer(estimator):
    _attributes(estimator)
    _value(estimator, 'norm', ('l1', 'l2', 'max'), "'l1', 'l2' or 'max'")
    _flag(estimator, 'copy')
    if _fitted(estimator):
        _width(estimator)


# -- the table ----------------------------------------------------------------------------------------------------

_TEXT = 'sklearn.feature_extraction.text.'
#: full type name -> check; every class the pipeline family admits must be here (or it is refused)
CHECKS = {
    'sklearn.impute._base.SimpleImputer': check_imputer,
    'sklearn.impute._base.MissingIndicator': check_missing_indicator,
    'sklearn.preprocessing._encoders.OneHotEncoder': check_one_hot,
    'sklearn.preprocessing._encoders.OrdinalEncoder': check_ordinal,
    'sklearn.preprocessing._function_transformer.FunctionTransformer': check_function,
    'sklearn.compose._column_transformer.ColumnTransformer': check_column_transformer,
    'sklearn.compose._column_transformer.make_column_selector': check_column_selector,
    'sklearn.decomposition._pca.PCA': check_projection,
    'sklearn.decomposition._truncated_svd.TruncatedSVD': check_projection,
    'sklearn.preprocessing._data.Normalizer': check_normalizer,
    _TEXT + 'CountVectorizer': check_vectorizer,
    _TEXT + 'TfidfVectorizer': check_vectorizer,
    _TEXT + 'TfidfTransformer': check_tfidf_transformer,
}


def full_type(obj):
    return f'{type(obj).__module__}.{type(obj).__qualname__}'


def output_width(step):
    """The number of columns a checked step makes, or None where it cannot be told from its fitted state."""
    name = full_type(step)
    if isinstance(step, str) or not _fitted(step):
        return None
    if name in (_TEXT + 'CountVectorizer', _TEXT + 'TfidfVectorizer'):
        return len(step.vocabulary_)
    if name.endswith(('.PCA', '.TruncatedSVD')):
        return step.components_.shape[0]
    if name.endswith('.OneHotEncoder'):
        return sum(step._n_features_outs)
    if name.endswith('.SimpleImputer'):
        statistics = step.statistics_
        kept = len(statistics) if step.keep_empty_features or statistics.dtype.kind != 'f' else \
            int((~np.isnan(statistics)).sum())
        return kept + (len(step.indicator_.features_) if step.indicator_ is not None else 0)
    if name.endswith('.ColumnTransformer'):
        return max((block.stop for block in step.output_indices_.values()), default=0)
    if name == 'sklearn.pipeline.Pipeline':
        steps = [s for _, s in step.steps if not (isinstance(s, str) or s is None)]
        return output_width(steps[-1]) if steps else None
    if name.endswith(('.OrdinalEncoder', '.FunctionTransformer', '.Normalizer', '.TfidfTransformer',
                      'Scaler')):
        return getattr(step, 'n_features_in_', None)
    return None
