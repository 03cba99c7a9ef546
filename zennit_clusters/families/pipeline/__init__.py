"""Pipelines: encoders, scalers, normalisation and projections in front of a supported clustering model.

The folder holds the stage table (:mod:`.stages`: transformer type -> host-side encoding or network layer), the
host-side encoding, the one-to-one layers, the closed-form explainer (the head's, behind the layers) and the
converter; this module registers them. The layers pass relevance through unchanged (zennit's ``Pass``).
"""
from ...core import Family, register_family
from .converters import convert_pipeline
from .encoding import Encoding
from .explainer import PipelineExplainer
from .layers import FeatureScaling, NeuralizedPipeline, ProjectedNormalization, RowNormalization
from .stages import STAGES, Projection, Stage, register_stage, stage_for
from .text import PROJECTIONS, ROW_WISE, VECTORIZERS

__all__ = ['FeatureScaling', 'RowNormalization', 'ProjectedNormalization', 'NeuralizedPipeline', 'PipelineExplainer', 'Encoding', 'Stage',
           'Projection', 'register_stage', 'stage_for', 'FAMILY']


#: what a pipeline's pickle may reference (the safe loader's admissions, exporters/loading/transformers.py checks
#: each class): every type of the stage table and of the text stages, what their fitted state holds (the
#: vectorizer's TfidfTransformer, an imputer's MissingIndicator, a column selector, the slices of a
#: ColumnTransformer's output_indices_) and the number types kept as ``dtype=`` values
PICKLE_NAMES = frozenset({
    *STAGES, *VECTORIZERS, *ROW_WISE, *PROJECTIONS,
    'sklearn.feature_extraction.text.TfidfVectorizer', 'sklearn.impute._base.MissingIndicator',
    'sklearn.compose._column_transformer.make_column_selector', 'builtins.slice',
    *(f'numpy.{name}' for name in ('float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8',
                                    'uint16', 'uint32', 'uint64', 'bool', 'bool_', 'number', 'integer', 'floating',
                                    'signedinteger', 'unsignedinteger')),
    'builtins.float', 'builtins.int', 'builtins.bool',
})


def _layer_rules(beta, epsilon):
    from zennit.rules import Pass  # zennit is imported only when rules are asked for
    return [((FeatureScaling, RowNormalization, ProjectedNormalization), Pass())]


FAMILY = register_family(Family(
    name='pipeline',
    converters={'sklearn.pipeline.Pipeline': convert_pipeline},
    explainers={NeuralizedPipeline: PipelineExplainer},
    layer_rules=_layer_rules,
    pickle_names={'sklearn.pipeline.Pipeline': PICKLE_NAMES},
))
