"""zennit-clusters: explain cluster assignments with NEON, as a plugin for Zennit.

>>> from zennit_clusters import neuralize, explain, ClusterComposite
>>> model = neuralize(kmeans)        # torch module: (N, D) -> (N, K) cluster evidence
>>> R = explain(model, X)            # (N, D) relevance; R.sum(1) == evidence of the assigned cluster
"""
from .composites import ClusterComposite, cluster_layer_map
from .converters import neuralize, supported_types
from .explain import CentroidExplainer, explain, make_explainer
from .layers import MinPool, NeuralizedCentroids, NeuralizedModel, PairwiseMargin
from .rules import Midpoint, SoftMin

__version__ = '0.1.0'

__all__ = [
    'neuralize', 'explain', 'make_explainer', 'ClusterComposite', 'cluster_layer_map', 'supported_types',
    'NeuralizedModel', 'NeuralizedCentroids', 'PairwiseMargin', 'MinPool', 'CentroidExplainer',
    'Midpoint', 'SoftMin', '__version__',
]
