"""zennit-clusters: explain cluster assignments with NEON, as a plugin for Zennit.

>>> from zennit_clusters import neuralize, explain, ClusterComposite
>>> model = neuralize(kmeans)        # torch module: (N, D) -> (N, K) cluster evidence
>>> R = explain(model, X)            # (N, D) relevance; R.sum(1) == evidence of the assigned cluster

The package is organised by model family (``zennit_clusters/families/<name>/``, one registration each); this
module holds the public names only.
"""
from . import _legacy  # noqa: F401  (old import paths, for pickles and user code)
from .api import explain, explain_with_constant, make_explainer, neuralize, supported_types
from .composites import ClusterComposite, cluster_layer_map
from .core import Explainer, NeuralizedModel
from .families.centroids import CentroidExplainer, MinPool, NeuralizedCentroids, PairwiseMargin
from .families.centroids.rules import Midpoint, SoftMin
from .families.deep import CentroidHead, NeuralizedDeep, StudentTHead, explain_deep, neuralize_deep
from .families.members import (KernelKMeans, LogMeanExpPool, MemberExplainer, MemberMargin, NeuralizedMembers,
                               neuralize_partition)
from .families.members.rules import LogMeanExpShares, MemberMidpoint
from .families.mixture import GaussianLogRatio, MixtureExplainer, NeuralizedMixture, SoftMinPool
from .families.mixture.rules import LogRatioSplit
from .families.pipeline import FeatureScaling, NeuralizedPipeline, PipelineExplainer

__version__ = '0.2.0'

__all__ = [
    # the public contract
    'neuralize', 'explain', 'ClusterComposite',
    # closed-form explainers and their variants
    'make_explainer', 'explain_with_constant', 'explain_deep', 'Explainer', 'CentroidExplainer', 'MixtureExplainer',
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
