"""Pipelines: encoders, scalers, normalisation and projections in front of a supported clustering model.

The folder holds the stage table (:mod:`.stages`: transformer type -> host-side encoding or network layer), the
host-side encoding, the one-to-one layers, the closed-form explainer (the head's, behind the layers) and the
converter; this module registers them. The layers pass relevance through unchanged (zennit's ``Pass``).
"""
from ...core import Family, register_family
from .converters import PER_FEATURE_SCALERS, convert_pipeline
from .encoding import Encoding
from .explainer import PipelineExplainer
from .layers import FeatureScaling, NeuralizedPipeline, ProjectedNormalization, RowNormalization
from .stages import Projection, Stage, register_stage, stage_for

__all__ = ['FeatureScaling', 'RowNormalization', 'ProjectedNormalization', 'NeuralizedPipeline', 'PipelineExplainer', 'Encoding', 'Stage',
           'Projection', 'register_stage', 'stage_for', 'FAMILY']


def _layer_rules(beta, epsilon):
    from zennit.rules import Pass  # zennit is imported only when rules are asked for
    return [((FeatureScaling, RowNormalization, ProjectedNormalization), Pass())]


FAMILY = register_family(Family(
    name='pipeline',
    converters={'sklearn.pipeline.Pipeline': convert_pipeline},
    explainers={NeuralizedPipeline: PipelineExplainer},
    layer_rules=_layer_rules,
    pickle_names={'sklearn.pipeline.Pipeline': set(PER_FEATURE_SCALERS)},
))
