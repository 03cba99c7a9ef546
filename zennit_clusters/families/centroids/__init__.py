"""Centroid models: k-means, mini-batch and bisecting k-means, and torch centroid tensors and heads.

A point goes to the nearest centroid (k-means) or down the bisection tree (bisecting k-means); either rule is a
network of pairwise margins and a min-pool, reproduced exactly (docs/method.md, sections 1 and 2). The folder
holds the family's equations, layers, Zennit rules, closed-form explainer with its compiled row step, and
converters; this module registers them.
"""
import torch

from ...core import Family, register_family
from .bisecting import convert_bisecting_kmeans
from .converters import centroid_model, convert_centroid_module, convert_centroid_tensor, convert_kmeans
from .explainer import CentroidExplainer
from .layers import MinPool, NeuralizedCentroids, PairwiseMargin, flat_pairs
from .sparse import SPARSE_TYPES, explain_sparse

__all__ = ['CentroidExplainer', 'MinPool', 'NeuralizedCentroids', 'PairwiseMargin', 'centroid_model', 'flat_pairs',
           'FAMILY']


def _layer_rules(beta, epsilon):
    from .rules import layer_rules  # zennit is imported only when rules are asked for
    return layer_rules(beta, epsilon)


FAMILY = register_family(Family(
    name='centroids',
    # scikit-learn's types by full name: the registry dispatches without importing scikit-learn
    converters={'sklearn.cluster._kmeans.KMeans': convert_kmeans,
                'sklearn.cluster._kmeans.MiniBatchKMeans': convert_kmeans,
                'sklearn.cluster._bisect_k_means.BisectingKMeans': convert_bisecting_kmeans,
                torch.Tensor: convert_centroid_tensor, torch.nn.Module: convert_centroid_module},
    explainers={NeuralizedCentroids: CentroidExplainer},
    layer_rules=_layer_rules,
    pickle_names={'sklearn.cluster._bisect_k_means.BisectingKMeans': {
        'sklearn.cluster._bisect_k_means._BisectingTree',  # the bisection tree predict() descends
        'sklearn.cluster._kmeans._kmeans_single_lloyd',    # stored as the inner k-means routine
        'sklearn.cluster._kmeans._kmeans_single_elkan',    # ... with algorithm='elkan'
    }},
    # scipy sparse rows (TF-IDF documents): relevance on the stored entries, the absent terms as one per row
    data_adapters={name: explain_sparse for name in SPARSE_TYPES},
))
