"""The user's columns: DataFrame checks by name and order, feature names, and relevance summed back onto the
columns an encoder made several of (one-hot categories). Re-exported by :mod:`zennit_clusters.validation`."""
import numpy as np
import torch

__all__ = ['is_dataframe', 'frame_values', 'column_mismatch', 'check_columns', 'resolve_feature_names',
           'group_relevance', 'as_user_results']


def is_dataframe(X):
    """Whether X is a pandas DataFrame (recognised by type name: pandas is not imported for the check)."""
    return any(f'{kind.__module__}.{kind.__qualname__}' in ('pandas.DataFrame', 'pandas.core.frame.DataFrame') for kind in type(X).__mro__)


def frame_values(X):
    """A numeric DataFrame's values as one numpy array, missing values (``pd.NA``, ``None``) as NaN.

    Columns that are all numpy floats keep their (common) dtype; any other numeric column (integers, booleans,
    pandas' nullable ``Int64``/``Float64``/``boolean``, whose ``to_numpy()`` would be an object array) makes the
    array float64. A NaN then gets what a NaN gets: the pipeline's imputer, or a refusal naming the row.
    """
    if all(isinstance(dtype, np.dtype) and dtype.kind == 'f' for dtype in X.dtypes):
        return X.to_numpy()
    return X.to_numpy(dtype=np.float64, na_value=np.nan)


def column_mismatch(got, expected):
    """What differs between a DataFrame's columns and the ones a model was fitted on, in words; '' if nothing.

    Names the missing columns, the unexpected ones, and, where the set is right but not the order, the first
    positions that differ (scikit-learn's rule: names and order as at fit).
    """
    got, expected = [str(name) for name in got], [str(name) for name in expected]
    missing = [name for name in expected if name not in set(got)]
    extra = [name for name in got if name not in set(expected)]
    parts = []
    if missing:
        parts.append(f'missing column(s) {missing}')
    if extra:
        parts.append(f'unexpected column(s) {extra}')
    if not parts and got != expected:
        if len(set(got)) != len(got):
            duplicated = sorted({name for name in got if got.count(name) > 1})
            parts.append(f'duplicated column(s) {duplicated}')
        else:
            moved = [f'{name!r} at position {got.index(name)} (fitted at {position})'
                     for position, name in enumerate(expected) if got[position] != name]
            parts.append(f'columns in another order than at fit: {", ".join(moved[:5])}'
                         + (f' and {len(moved) - 5} more' if len(moved) > 5 else ''))
    return '; '.join(parts)


def check_columns(X, feature_names, numeric=True, name='X'):
    """Check a DataFrame's columns against the names a model was fitted on; other inputs pass unchanged.

    Parameters
    ----------
    X : pandas.DataFrame, array-like or torch.Tensor
    feature_names : array-like of str or None
        ``feature_names_in_`` of the fitted model, or None (fitted without names: a DataFrame is taken by position).
    numeric : bool
        Whether the columns must hold numbers (then a DataFrame comes back as a numpy array); False where encoders
        that take categories come first (the DataFrame comes back as it is).

    Raises
    ------
    ValueError
        Missing, unexpected, duplicated or reordered columns (scikit-learn's rule: the names and order as at fit).
    TypeError
        With ``numeric``, a column that holds no numbers (naming it and its dtype).
    """
    if not is_dataframe(X):
        return X
    if feature_names is not None:
        mismatch = column_mismatch(X.columns, feature_names)
        if mismatch:
            raise ValueError(f'{name} does not have the columns the model was fitted on: {mismatch}. Expected '
                             f'{[str(n) for n in feature_names]}; pass X[model.feature_names_in_] to select and '
                             'order them.')
    if not numeric:
        return X
    bad = [f'{column!r} ({dtype})' for column, dtype in X.dtypes.items() if getattr(dtype, 'kind', 'O') not in 'biuf']
    if bad:
        raise TypeError(f'{name} column(s) {", ".join(bad)} do not hold numbers; the model takes numeric columns '
                        '(encode categories first, e.g. with a OneHotEncoder in the pipeline).')
    return frame_values(X)


def resolve_feature_names(n_features, feature_names=None, X=None, model=None):
    """The names of a model's D input features (the network's input columns), as a tuple of str.

    The first that applies wins: ``feature_names``; ``model.get_feature_names_out()`` of a neuralized model fitted
    on named columns (after any encoding: one name per encoded column); the columns of a DataFrame ``X``;
    ``feature_names_in_`` of an estimator fitted on a frame; else ``'x0'`` .. ``'x{D-1}'`` (scikit-learn's
    default names).

    Raises
    ------
    ValueError
        For a number of names other than ``n_features``, or repeated names (a table keyed by them would merge
        two features).
    """
    from .core import NeuralizedModel  # here, not at the top: core imports this module
    source, names = 'feature_names', feature_names
    if names is None and isinstance(model, NeuralizedModel) and getattr(model, 'feature_names_in_', None) is not None \
            and callable(getattr(model, 'get_feature_names_out', None)):
        names, source = model.get_feature_names_out(), "the model's get_feature_names_out()"
    if names is None and X is not None and hasattr(X, 'columns') and not torch.is_tensor(X):
        names, source = list(X.columns), 'the columns of X'
    if names is None and model is not None and not isinstance(model, NeuralizedModel) \
            and getattr(model, 'feature_names_in_', None) is not None:
        # not get_feature_names_out(): on a scikit-learn clusterer it names the outputs (cluster distances)
        names, source = model.feature_names_in_, "the estimator's feature_names_in_"
    if names is None:
        return tuple(f'x{i}' for i in range(n_features))
    if isinstance(names, str):
        raise TypeError(f'{source} must be a sequence of {n_features} names, got one string {names!r}.')
    names = tuple(str(name) for name in names)
    if len(names) != n_features:
        raise ValueError(f'{source} has {len(names)} names, but the model has {n_features} features.')
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f'{source} repeats names: {repeated}; each feature needs its own name.')
    return names


def group_relevance(model, relevance):
    """Sum the relevance of a model's network input columns onto the user's columns (``model.feature_groups``).

    Relevance is additive, so the sum over the columns one encoder made from one input column is that column's
    relevance, and conservation carries over exactly. numpy or torch in, the same out; the columns are the last axis
    (per-competitor parts, (N, K, D), are grouped per competitor).
    """
    groups = model.feature_groups
    if groups is None:
        return relevance
    if relevance.ndim == 3:
        rows, competitors, _ = relevance.shape
        grouped = group_relevance(model, relevance.reshape(rows * competitors, -1))
        return grouped.reshape(rows, competitors, -1)
    index, names = groups
    if torch.is_tensor(relevance):
        grouped = relevance.new_zeros(relevance.shape[0], len(names))
        return grouped.index_add_(1, torch.as_tensor(index, device=relevance.device), relevance)
    grouped = np.zeros((relevance.shape[0], len(names)), dtype=relevance.dtype)
    for column in range(len(names)):  # few user columns: one row sum each (np.add.at is slower)
        members = np.flatnonzero(index == column)
        if len(members) == 1:
            grouped[:, column] = relevance[:, members[0]]
        elif len(members):
            grouped[:, column] = relevance[:, members].sum(1)
    return grouped


def as_user_results(model, X, relevance, labels, logits, constant, grouped):
    """Relevance on the user's columns where asked; pandas results (X's index, column names) for DataFrame X."""
    if grouped and model.feature_groups is not None:
        relevance = group_relevance(model, relevance)
        names = model.feature_groups[1]
    else:
        names = model.get_feature_names_out()
    if not is_dataframe(X):
        return relevance, labels, logits, constant
    import pandas as pd
    if labels is not None:  # None where explain() did not keep them (return_logits=False)
        labels = pd.Series(labels, index=X.index, name='label')
        logits = pd.DataFrame(logits, index=X.index, columns=pd.RangeIndex(logits.shape[1]))
    if relevance.ndim == 3:  # per-competitor parts (and their constants) stay arrays: no frame holds (N, K, D)
        return relevance, labels, logits, constant
    if model.feature_names_in_ is None and model.feature_groups is None and len(X.columns) == relevance.shape[1]:
        names = X.columns  # fitted without names: the frame's own
    relevance = pd.DataFrame(relevance, index=X.index, columns=pd.Index(names))
    constant = None if constant is None else pd.Series(constant, index=X.index, name='constant')
    return relevance, labels, logits, constant
