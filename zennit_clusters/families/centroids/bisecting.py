"""Bisecting k-means: ``predict`` descends the bisection tree, so the network follows the tree.

A point reaches leaf c iff at every split on the way down it is closer to the child on c's path than to
that child's sibling. The evidence is therefore ``f_c(x) = min over the splits on c's path of
|x - mu_sibling|^2 - |x - mu_child|^2``: the same two layers as k-means (pairwise margins, min-pool) on
the tree's node centres. It differs from nearest-centroid assignment, which ``BisectingKMeans`` does not do.
"""
import numpy as np
import torch

from ...validation import check_fitted
from .layers import NeuralizedCentroids
from .sparse import centroid_beta

__all__ = ['convert_bisecting_kmeans']


def _tree_paths(root):
    """Node centres and, for every leaf label, the (child on path, sibling) index pairs from the root down."""
    centres, paths = [], {}

    def visit(node, path):
        if node.left is None:
            paths[node.label] = path
            return
        left, right = len(centres), len(centres) + 1
        centres.extend([node.left.center, node.right.center])
        visit(node.left, path + [(left, right)])
        visit(node.right, path + [(right, left)])

    visit(root, [])
    return np.asarray(centres, dtype=np.float64), paths


def convert_bisecting_kmeans(estimator, X=None, beta=None):
    """``BisectingKMeans``: one margin per split on the path from the root to each leaf."""
    check_fitted(estimator, 'cluster_centers_')
    tree = getattr(estimator, '_bisecting_tree', None)
    if tree is None:
        raise TypeError('this BisectingKMeans has no _bisecting_tree: the scikit-learn version is not supported.')
    centres, paths = _tree_paths(tree)
    n_clusters = len(paths)
    if n_clusters < 2:
        raise ValueError(f'a cluster model needs at least 2 clusters to explain, got {n_clusters}.')
    # predict() adds the training mean back to the tree's centres (fit centres the data)
    centres = centres + getattr(estimator, '_X_mean', 0.0)
    depth = max(len(path) for path in paths.values())
    own = np.zeros((n_clusters, depth), dtype=np.int64)
    rival = np.zeros((n_clusters, depth), dtype=np.int64)
    valid = np.zeros((n_clusters, depth), dtype=bool)
    for label, path in paths.items():
        for level, (child, sibling) in enumerate(path):
            own[label, level], rival[label, level], valid[label, level] = child, sibling, True
    leaves = np.zeros(n_clusters, dtype=np.int64)
    for label, path in paths.items():
        leaves[label] = path[-1][0]
    model = NeuralizedCentroids.from_pairs(torch.from_numpy(centres), own, rival, valid, beta=1.0,
                                           source=type(estimator).__name__, leaves=leaves)
    model.beta = centroid_beta(model, X, beta)
    return model
