"""The host-side part of a neuralized pipeline: encoders run by their own ``transform`` before torch."""
import numpy as np
import torch

from ...validation import check_columns, frame_values, is_dataframe

__all__ = ['Encoding']


class Encoding:
    """The host-side stages of a pipeline and how their output columns map back onto the user's columns.

    Parameters
    ----------
    steps : list of (name, fitted transformer)
        Run in order by their own ``transform`` (exactly what the pipeline does), possibly none: then only the
        column check runs.
    n_columns_in : int
        The width of the user's X.
    feature_names_in : array of str or None
        The columns the pipeline was fitted on (None: fitted on an array, columns are taken by position).
    names_out : array of str
        The names of the encoded columns (the network's input).
    sources : int array of shape (n_features_out,)
        The user's column (by position in ``original_names``) each encoded column was made from.
    original_names : array of str
        The columns relevance is summed onto: the user's columns, or a vectorizer's terms.
    keeps_sparse : bool
        Whether sparse output stays sparse (vectorizers); else it is made dense.
    """
    def __init__(self, steps, n_columns_in, feature_names_in, names_out, sources, original_names, keeps_sparse=False):
        self.steps = list(steps)
        self.n_columns_in_ = int(n_columns_in)
        self.feature_names_in_ = None if feature_names_in is None else np.asarray(feature_names_in, dtype=object)
        self.names_out = np.asarray(names_out, dtype=object)
        self.sources = np.asarray(sources, dtype=np.intp)
        self.original_names = np.asarray(original_names, dtype=object)
        self.keeps_sparse = bool(keeps_sparse)

    @property
    def groups(self):
        """``(sources, original_names)``, or None where every encoded column is the user's column of that
        position (nothing to sum)."""
        if len(self.sources) == len(self.original_names) and (self.sources == np.arange(len(self.sources))).all():
            return None
        return self.sources, self.original_names

    def transform(self, X):
        """The encoded numeric matrix of the user's X (dense float numpy, or scipy sparse for vectorizers)."""
        if not self.steps:
            return check_columns(X, self.feature_names_in_, numeric=True)
        if torch.is_tensor(X):
            # a tensor is the encoded matrix, as the torch module's forward takes it
            if X.dim() != 2 or X.shape[1] != len(self.names_out):
                raise ValueError(f'a torch tensor is taken as the encoded matrix ({len(self.names_out)} columns, '
                                 f'model.get_feature_names_out()), got shape {tuple(X.shape)}; this pipeline encodes '
                                 f'its input in numpy/pandas first ({self._step_names()}): pass a DataFrame or an '
                                 'array of the columns it was fitted on.')
            return X
        if is_dataframe(X):
            X = check_columns(X, self.feature_names_in_, numeric=False)
        elif self.feature_names_in_ is not None:
            # an array for a pipeline fitted on names: by position, as scikit-learn takes it (without its warning)
            array = np.asarray(X, dtype=object if not hasattr(X, 'dtype') else None)
            if array.ndim != 2 or array.shape[1] != self.n_columns_in_:
                raise ValueError(f'X has shape {array.shape}, but the pipeline was fitted on {self.n_columns_in_} '
                                 f'columns {[str(n) for n in self.feature_names_in_]}.')
            import pandas as pd
            X = pd.DataFrame(array, columns=self.feature_names_in_)
        for name, step in self.steps:
            try:
                X = step.transform(X)
            except (ValueError, TypeError) as error:
                raise type(error)(f'pipeline step {name!r} ({type(step).__name__}) cannot transform X: '
                                  f'{error}') from error
        if is_dataframe(X):  # set_output(transform='pandas')
            X = frame_values(X)
        if hasattr(X, 'toarray') and hasattr(X, 'nnz'):
            return X if self.keeps_sparse else X.toarray()
        try:
            return np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(f'the pipeline\'s encoders ({self._step_names()}) give non-numeric values: {error}') \
                from None

    def _step_names(self):
        return ', '.join(type(step).__name__ for _, step in self.steps)
