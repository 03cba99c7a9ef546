"""The stage table: what each preprocessing transformer of a pipeline becomes, keyed by its full type name.

A pipeline ``[t_1, ..., t_n, model]`` is split in two (docs/pipelines.md):

- host-side encoding, ``t_1 .. t_s``: run by the fitted transformers' own ``transform`` in numpy/pandas before
  torch (string categories, column selection, imputation, vectorizers). Each of these stages says, for every
  column it outputs, which of its input columns that column was made from (``sources``), so that relevance
  can be summed back onto the user's columns; ``s`` is the position of the last stage that must run there.
- numeric layers, ``t_s+1 .. t_n``: folded into the torch network, exactly. Per-feature affine maps (the
  scalers) and row normalisation are one-to-one per column (relevance passes through them unchanged); a
  projection (PCA, TruncatedSVD) is folded into the head (:func:`.converters.lift_head`): a centroid head's
  centres are lifted back to input space (``mu -> mu C + mean``), so the lifted model is exactly k-means in input
  space and its midpoint rule applies there; a whitened PCA (``z = diag(s) C (x - mean)``) lifts them to
  ``mean + C^T diag(1/s) mu`` and keeps the metric ``M = C^T diag(s^2) C`` (the margins stay linear in x, with
  the same midpoint roots); a Gaussian mixture's components are pulled back through ``W`` (whitened or not) into a
  mixture in input space (:mod:`..mixture.projection`).

A stage builder is registered once per type (subclasses follow their base) with :func:`register_stage`; a
vectorizer stage (text) is a host stage whose ``sources`` is None: its outputs (the terms) are the columns
relevance is reported on.
"""
import dataclasses

import numpy as np

from ...core import full_name

__all__ = ['Stage', 'register_stage', 'stage_for', 'STAGES', 'HOST', 'EITHER', 'NETWORK', 'Projection',
           'column_sources', 'feature_scaling']

#: where a stage may run: only host-side (encoders), in either place (one-to-one per column), only in the network
HOST, EITHER, NETWORK = 'host', 'either', 'network'


@dataclasses.dataclass(frozen=True)
class Stage:
    """What one transformer type becomes in a neuralized pipeline.

    Parameters
    ----------
    placement : {'host', 'either', 'network'}
        Where it runs: host-side only, either (it runs host-side when a host-only stage comes after it, else in
        the network), or in the network only.
    sources : callable or None
        ``sources(transformer, n_inputs) -> int array of shape (n_outputs,)``: the input column each output column
        is made from; returning None declares the outputs new columns of their own (a vectorizer's terms). Needed
        for host and either stages.
    layer : callable or None
        ``layer(transformer, n_inputs) -> torch.nn.Module`` (one-to-one per column) or :class:`Projection`.
        Needed for either and network stages.
    keeps_sparse : bool
        Whether host-side output that is scipy sparse stays sparse (vectorizers, scalers on sparse input); else it
        is made dense (one-hot columns of a table).
    """
    placement: str
    sources: object = None
    layer: object = None
    keeps_sparse: bool = False


@dataclasses.dataclass(frozen=True)
class Projection:
    """An affine projection ``z = W (x - mean)``, ``W = diag(scale) C`` with orthonormal rows ``C`` (d, D).

    ``scale`` is None without whitening (``W = C``), else the per-component factor of ``PCA(whiten=True)``,
    ``1 / sqrt(explained_variance_)``.
    """
    components: np.ndarray
    mean: np.ndarray
    scale: np.ndarray = None

    @property
    def whitened(self):
        return self.scale is not None

    @property
    def factor(self):
        """The (d, D) linear map W of ``z = W (x - mean)``, float64: ``diag(scale) C``, or C unwhitened."""
        return self.components if self.scale is None else self.components * self.scale[:, None]

    def preimages(self, points):
        """``mean + W^+ z`` for rows z (the minimum-norm pre-images, the transformer's ``inverse_transform``)."""
        lifted = points if self.scale is None else points / self.scale
        return lifted @ self.components + self.mean


STAGES = {}


def register_stage(type_name, stage):
    """Register the stage builder of a transformer type, by full name (``'sklearn.decomposition._pca.PCA'``)."""
    if not isinstance(stage, Stage):
        raise TypeError(f'register_stage takes a Stage, got {type(stage).__name__}.')
    if stage.placement not in (HOST, EITHER, NETWORK):
        raise ValueError(f'placement must be one of {HOST!r}, {EITHER!r}, {NETWORK!r}, got {stage.placement!r}.')
    STAGES[full_name(type_name)] = stage
    return stage


def stage_for(transformer):
    """The registered stage of a transformer's type or its nearest base class, else None."""
    for candidate in type(transformer).__mro__:
        stage = STAGES.get(full_name(candidate))
        if stage is not None:
            return stage
    return None


def _dense(values):
    """A transformer's output as a numpy array (set_output may make it a DataFrame, encoders sparse)."""
    if hasattr(values, 'toarray'):
        values = values.toarray()
    return np.asarray(values, dtype=np.float64)


def _named(transformer, rows):
    """Probe rows as the transformer was fitted: a DataFrame with its column names, so that scikit-learn does not
    warn that they have none."""
    names = getattr(transformer, 'feature_names_in_', None)
    if names is None:
        return rows
    import pandas as pd
    return pd.DataFrame(rows, columns=names)


def _identity(transformer, n_inputs):
    return np.arange(n_inputs)


# -- per-feature affine maps (the scalers) ------------------------------------------------------------------------

def feature_scaling(transformer, n_features):
    """The (offset, scale) of a fitted per-feature affine transformer, ``z = (x - offset) * scale``, by probing it.

    Probing (rather than reading ``mean_``/``scale_``/``min_``) covers every option of the scalers
    (``with_mean=False``, ``feature_range``, ``clip=False`` ...) with one code path; a random probe then
    checks the map really is per-feature affine.
    """
    def transform(rows):
        return _dense(transformer.transform(_named(transformer, rows)))
    shift = transform(np.zeros((1, n_features)))[0]
    scale = transform(np.eye(n_features))[np.arange(n_features), np.arange(n_features)] - shift
    probe = np.random.default_rng(0).normal(size=(8, n_features)) * 10
    if not np.allclose(transform(probe), probe * scale + shift, rtol=1e-9, atol=1e-9):
        raise TypeError(f'{type(transformer).__name__} does not act as a per-feature affine map on this data.')
    if (scale == 0).any():
        raise ValueError(f'{type(transformer).__name__} maps feature(s) {np.flatnonzero(scale == 0).tolist()} '
                         'to a constant; such a pipeline cannot be explained per feature.')
    return -shift / scale, scale


def _scaling_layer(transformer, n_inputs):
    from .layers import FeatureScaling
    return FeatureScaling(*feature_scaling(transformer, n_inputs))


def _normalizer_layer(transformer, n_inputs):
    from .layers import RowNormalization
    return RowNormalization(transformer.norm, n_inputs)


# -- projections --------------------------------------------------------------------------------------------------

def _projection(transformer, n_inputs):
    name = type(transformer).__name__
    components = np.asarray(transformer.components_, dtype=np.float64)
    scale = None
    if getattr(transformer, 'whiten', False):
        # z = (x - mean_) C^T / sqrt(explained_variance_): k-means on z is k-means in x under the metric
        # C^T diag(1 / explained_variance_) C (docs/pipelines.md); a component of zero variance has no scale
        variance = np.asarray(transformer.explained_variance_, dtype=np.float64)
        if not (np.isfinite(variance).all() and (variance > 0).all()):
            raise ValueError(f'{name}(whiten=True) has components of zero or non-finite explained variance '
                             f'({variance[~(np.isfinite(variance) & (variance > 0))].tolist()}); whitening divides '
                             'by their square root. Fit it with fewer components.')
        scale = 1.0 / np.sqrt(variance)
    mean = np.asarray(getattr(transformer, 'mean_', None) if getattr(transformer, 'mean_', None) is not None
                      else np.zeros(n_inputs), dtype=np.float64)
    gram = components @ components.T
    if not np.allclose(gram, np.eye(len(gram)), atol=1e-8):
        raise TypeError(f'the components of {name} are not orthonormal (|C C^T - I| = '
                        f'{np.abs(gram - np.eye(len(gram))).max():.2g}); it cannot be folded exactly.')
    projection = Projection(components, mean, scale)
    probe = np.random.default_rng(0).normal(size=(8, n_inputs))
    if not np.allclose(_dense(transformer.transform(_named(transformer, probe))), (probe - mean) @ projection.factor.T,
                       rtol=1e-8, atol=1e-8):
        raise TypeError(f'{name} does not act as the projection (x - mean_) components_.T'
                        f'{" / sqrt(explained_variance_)" if scale is not None else ""} on probe data.')
    return projection


# -- encoders (host-side) -----------------------------------------------------------------------------------------

def _imputer_sources(imputer, n_inputs):
    statistics = np.asarray(imputer.statistics_)
    kept = np.arange(n_inputs)
    if not getattr(imputer, 'keep_empty_features', False) and statistics.dtype.kind == 'f':
        kept = np.flatnonzero(~np.isnan(statistics))  # columns empty at fit are dropped
    indicator = getattr(imputer, 'indicator_', None)
    if getattr(imputer, 'add_indicator', False) and indicator is not None:
        kept = np.concatenate([kept, np.asarray(indicator.features_, dtype=np.intp)])
    return kept


def _one_hot_sources(encoder, n_inputs):
    # columns per input feature after drop= and infrequent categories (scikit-learn's own count)
    widths = np.asarray(encoder._n_features_outs, dtype=np.intp)
    return np.repeat(np.arange(n_inputs), widths)


def _column_transformer_sources(transformer, n_inputs):
    sources = np.full(sum(s.stop - s.start for s in transformer.output_indices_.values()), -1, dtype=np.intp)
    inputs = transformer._transformer_to_input_indices  # resolved at fit: names, masks, selectors, remainder
    for name, step, _ in transformer.transformers_:
        block = transformer.output_indices_[name]
        if step == 'drop' or block.stop == block.start:
            continue
        columns = np.asarray(inputs[name], dtype=np.intp)
        inner = np.arange(len(columns)) if step == 'passthrough' else column_sources(step, len(columns), name)
        if inner is None:
            raise TypeError(f'ColumnTransformer part {name!r} ({type(step).__name__}) makes new columns of its own; '
                            'it is supported as a pipeline step of its own, not inside a ColumnTransformer.')
        sources[block] = columns[inner]
    return sources


def column_sources(transformer, n_inputs, name=None):
    """For a host-side transformer (or a Pipeline of them), the input column each output column comes from.

    Raises TypeError for a transformer that mixes columns (a projection) or has no stage.
    """
    label = f'{name!r} ({type(transformer).__name__})' if name else type(transformer).__name__
    if full_name(type(transformer)) == 'sklearn.pipeline.Pipeline':
        sources = np.arange(n_inputs)
        for step_name, step in transformer.steps:
            if step in (None, 'passthrough'):
                continue
            inner = column_sources(step, len(sources), step_name)
            sources = sources[inner]
        return sources
    stage = stage_for(transformer)
    if stage is None:
        raise TypeError(f'{label} is not a supported preprocessing step; supported: {supported_stages()}.')
    if stage.sources is None:
        raise TypeError(f'{label} mixes columns ({stage.placement} stage); it can only run inside the network, '
                        'after every encoder.')
    return stage.sources(transformer, n_inputs)


def supported_stages():
    """Short names of the registered transformer types."""
    return ', '.join(sorted({name.rsplit('.', 1)[1] for name in STAGES}))


def _function_sources(transformer, n_inputs):
    # a ColumnTransformer keeps remainder='passthrough' as an identity FunctionTransformer
    if transformer.func is not None:
        raise TypeError(f'FunctionTransformer({transformer.func!r}) applies a function of its own; only the identity '
                        "(func=None, what ColumnTransformer's 'passthrough' becomes) is supported.")
    return np.arange(n_inputs)


SCALERS = tuple(f'sklearn.preprocessing._data.{name}'
                for name in ('StandardScaler', 'MinMaxScaler', 'MaxAbsScaler', 'RobustScaler'))

for _name in SCALERS:
    register_stage(_name, Stage(EITHER, sources=_identity, layer=_scaling_layer, keeps_sparse=True))
register_stage('sklearn.preprocessing._data.Normalizer',
               Stage(EITHER, sources=_identity, layer=_normalizer_layer, keeps_sparse=True))
register_stage('sklearn.decomposition._pca.PCA', Stage(NETWORK, layer=_projection))
register_stage('sklearn.decomposition._truncated_svd.TruncatedSVD', Stage(NETWORK, layer=_projection))
register_stage('sklearn.impute._base.SimpleImputer', Stage(HOST, sources=_imputer_sources))
register_stage('sklearn.preprocessing._encoders.OneHotEncoder', Stage(HOST, sources=_one_hot_sources))
register_stage('sklearn.preprocessing._encoders.OrdinalEncoder', Stage(HOST, sources=_identity))
register_stage('sklearn.preprocessing._function_transformer.FunctionTransformer',
               Stage(HOST, sources=_function_sources, keeps_sparse=True))
register_stage('sklearn.compose._column_transformer.ColumnTransformer',
               Stage(HOST, sources=_column_transformer_sources))
