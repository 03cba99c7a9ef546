"""zennit-clusters: explain cluster assignments with NEON, as a plugin for Zennit.

>>> from zennit_clusters import neuralize, explain, ClusterComposite
>>> model = neuralize(kmeans)        # torch module: (N, D) -> (N, K) cluster evidence
>>> R = explain(model, X)            # (N, D) relevance; R.sum(1) == evidence of the assigned cluster
"""
from .composites import ClusterComposite, cluster_layer_map
from .converters import neuralize, supported_types
from .converters.deep import CentroidHead, NeuralizedDeep, StudentTHead, explain_deep, neuralize_deep
from .converters.kernel import neuralize_partition
from .explain import (CentroidExplainer, MemberExplainer, MixtureExplainer, PipelineExplainer, explain,
                      explain_with_constant, make_explainer)
from .kernel_kmeans import KernelKMeans
from .layers import (FeatureScaling, GaussianLogRatio, LogMeanExpPool, MemberMargin, MinPool, NeuralizedCentroids,
                     NeuralizedMembers, NeuralizedMixture, NeuralizedModel, NeuralizedPipeline, PairwiseMargin,
                     SoftMinPool)
from .rules import LogMeanExpShares, LogRatioSplit, MemberMidpoint, Midpoint, SoftMin

__version__ = '0.1.0'

__all__ = [
    # the public contract
    'neuralize', 'explain', 'ClusterComposite',
    # closed-form explainers and their variants
    'make_explainer', 'explain_with_constant', 'explain_deep', 'CentroidExplainer', 'MixtureExplainer',
    'MemberExplainer', 'PipelineExplainer',
    # more ways in
    'neuralize_partition', 'neuralize_deep', 'supported_types', 'cluster_layer_map', 'KernelKMeans',
    'CentroidHead', 'StudentTHead',
    # neuralized models and their layers
    'NeuralizedModel', 'NeuralizedCentroids', 'NeuralizedMixture', 'NeuralizedMembers', 'NeuralizedPipeline',
    'NeuralizedDeep', 'PairwiseMargin', 'MinPool', 'GaussianLogRatio', 'SoftMinPool', 'MemberMargin',
    'LogMeanExpPool', 'FeatureScaling',
    # zennit rules
    'Midpoint', 'SoftMin', 'LogRatioSplit', 'MemberMidpoint', 'LogMeanExpShares',
    '__version__',
]
