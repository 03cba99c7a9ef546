"""Pipelines: per-feature scalers in front of any supported clustering model, folded into the network exactly.

The folder holds the scaling layer, the closed-form explainer (the head's, on the scaled input) and the
converter; this module registers them. The scaling passes relevance through unchanged (zennit's ``Pass``).
"""
from ...core import Family, register_family
from .converters import PER_FEATURE_SCALERS, convert_pipeline
from .explainer import PipelineExplainer
from .layers import FeatureScaling, NeuralizedPipeline

__all__ = ['FeatureScaling', 'NeuralizedPipeline', 'PipelineExplainer', 'FAMILY']


def _layer_rules(beta, epsilon):
    from zennit.rules import Pass  # zennit is imported only when rules are asked for
    return [(FeatureScaling, Pass())]


FAMILY = register_family(Family(
    name='pipeline',
    converters={'sklearn.pipeline.Pipeline': convert_pipeline},
    explainers={NeuralizedPipeline: PipelineExplainer},
    layer_rules=_layer_rules,
    pickle_names={'sklearn.pipeline.Pipeline': set(PER_FEATURE_SCALERS)},
))
