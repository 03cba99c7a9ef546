"""Pipelines of per-feature scalers and a clustering model: the scaling folds into the network exactly.

``make_pipeline(StandardScaler(), KMeans())`` is how most people cluster tabular data. Each scaler maps
feature i to ``z_i = (x_i - offset_i) * scale_i``; the network gets that as a first layer, and because
the scaling is one-to-one per feature, the relevance of raw feature i is the relevance of ``z_i``
(the midpoint rule is invariant: ``w_i / s_i (x_i - m'_i) = w_i (z_i - m_i)``).
"""
import numpy as np
from ...api import neuralize
from ...core import full_name
from ...validation import check_fitted, check_training_data
from .layers import FeatureScaling, NeuralizedPipeline

__all__ = ['convert_pipeline', 'feature_scaling', 'PER_FEATURE_SCALERS']

#: transformers known to act on each feature separately by an affine map (full names: nothing of scikit-learn is
#: imported to recognise them)
PER_FEATURE_SCALERS = tuple(f'sklearn.preprocessing._data.{name}'
                            for name in ('StandardScaler', 'MinMaxScaler', 'MaxAbsScaler', 'RobustScaler'))


def is_per_feature_scaler(step):
    """Whether ``step`` is one of ``PER_FEATURE_SCALERS`` or a subclass of one."""
    return any(full_name(type_) in PER_FEATURE_SCALERS for type_ in type(step).__mro__)


def feature_scaling(transformer, n_features):
    """The (offset, scale) of a fitted per-feature affine transformer, read off by probing it.

    Probing (rather than reading ``mean_``/``scale_``/``min_``) covers every option of the scalers
    (``with_mean=False``, ``feature_range``, ``clip=False`` ...) with one code path; a random probe then
    checks the map really is per-feature affine.
    """
    zero = np.zeros((1, n_features))
    shift = transformer.transform(zero)[0]
    scale = transformer.transform(np.eye(n_features))[np.arange(n_features), np.arange(n_features)] - shift
    probe = np.random.default_rng(0).normal(size=(8, n_features)) * 10
    if not np.allclose(transformer.transform(probe), probe * scale + shift, rtol=1e-9, atol=1e-9):
        raise TypeError(f'{type(transformer).__name__} does not act as a per-feature affine map on this data.')
    if (scale == 0).any():
        raise ValueError(f'{type(transformer).__name__} maps feature(s) {np.flatnonzero(scale == 0).tolist()} '
                         'to a constant; such a pipeline cannot be explained per feature.')
    return -shift / scale, scale


def convert_pipeline(pipeline, X=None, beta=None):
    """A ``Pipeline`` of per-feature scalers ending in a supported clustering model."""
    check_fitted(pipeline)
    from .text import convert_text_pipeline, is_text_pipeline  # the vectorizer stage (text.py)
    if is_text_pipeline(pipeline):
        return convert_text_pipeline(pipeline, X=X, beta=beta)
    *preprocessing, (_, estimator) = pipeline.steps
    steps = [(name, step) for name, step in preprocessing if step not in (None, 'passthrough')]
    for name, step in steps:
        if not is_per_feature_scaler(step):
            raise TypeError(
                f'Pipeline step {name!r} is a {type(step).__name__}; only per-feature scalers '
                f'({", ".join(name.rsplit(".", 1)[1] for name in PER_FEATURE_SCALERS)}) can precede the clustering model.')
    if not steps:
        return neuralize(estimator, X=X, beta=beta)
    n_features = steps[0][1].n_features_in_
    offset, scale = np.zeros(n_features), np.ones(n_features)
    for _, step in steps:  # compose z = ((x - o1) s1 - o2) s2 ... into one (x - offset) * scale
        step_offset, step_scale = feature_scaling(step, n_features)
        offset, scale = offset + step_offset / scale, scale * step_scale
    scaling = FeatureScaling(offset, scale)
    Z = None
    if X is not None:
        Z = pipeline[:-1].transform(check_training_data(X, n_features).numpy())
    head = neuralize(estimator, X=Z, beta=beta)
    names = '+'.join(type(step).__name__ for _, step in steps)
    return NeuralizedPipeline(scaling, head, source=f'Pipeline({names}, {head.source})')
