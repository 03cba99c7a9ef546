"""Converters of fitted ``pyspark.ml.clustering`` models: each reads the parameters out of the model and builds
the network of an existing family (centroids, mixture); nothing of the arithmetic is Spark's own.

- ``KMeansModel``: nearest centroid. ``distanceMeasure='euclidean'`` is the k-means network on
  ``clusterCenters()``; ``'cosine'`` is that network on the unit sphere behind ``x / |x|``
  (:mod:`.cosine`).
- ``BisectingKMeansModel``: Spark's ``predict`` descends the bisection tree (``ClusteringTreeNode.predict``:
  at each node the child of least cost), as scikit-learn's ``BisectingKMeans`` does, so the network is the
  tree network of :mod:`zennit_clusters.families.centroids.bisecting`. Spark keeps the tree in the JVM model's
  ``parentModel`` (an ``mllib.clustering.BisectingKMeansModel``, whose ``root`` is the tree); the converter
  reads every node's centre from there through py4j. A cosine tree is the same on the unit sphere.
- ``GaussianMixtureModel``: full covariances, to the mixture family. Spark's ``MultivariateGaussian`` uses
  the pseudo-inverse of the covariance over the eigenvalues above ``tol = eps * max(d) * D`` and the matching
  pseudo-determinant; the converter does the same, so the log-scores ``s_k = log w_k + log N_k(x)`` are Spark's.
"""
import numpy as np
import torch

from ...api import resolve_beta
from ..centroids import centroid_model
from ..centroids.bisecting import _tree_paths
from ..centroids.layers import NeuralizedCentroids
from ..mixture import mixture_model
from .cosine import NeuralizedCosine, RowNormalization

__all__ = ['convert_kmeans_model', 'convert_bisecting_kmeans_model', 'convert_gaussian_mixture_model',
           'DISTANCE_MEASURES', 'SPARK_EPSILON']

DISTANCE_MEASURES = ('euclidean', 'cosine')

#: ``org.apache.spark.mllib.util.MLUtils.EPSILON``: the machine epsilon of float64 as Spark computes it
SPARK_EPSILON = float(np.finfo(np.float64).eps)


def _distance_measure(model):
    measure = model.getDistanceMeasure()
    if measure not in DISTANCE_MEASURES:
        raise ValueError(f'{type(model).__name__} has distanceMeasure={measure!r}; supported: {DISTANCE_MEASURES}.')
    return measure


def _unit_rows(centres):
    norms = np.linalg.norm(centres, axis=1, keepdims=True)
    if not (norms > 0).all():
        raise ValueError('a cosine model has a zero centroid, which has no direction.')
    return centres / norms


def _on_the_sphere(head, n_features, source, X=None, beta=None):
    """Put a head fitted on unit vectors behind the row normalisation; set its stiffness on the stack."""
    model = NeuralizedCosine(RowNormalization(n_features), head, source=source)
    model.beta = resolve_beta(model, X, beta)
    return model


def convert_kmeans_model(model, X=None, beta=None):
    """``pyspark.ml.clustering.KMeansModel``: nearest centroid, Euclidean or by angle."""
    centres = np.asarray(model.clusterCenters(), dtype=np.float64)
    if _distance_measure(model) == 'euclidean':
        return centroid_model(centres, 'pyspark.KMeansModel', X=X, beta=beta)
    head = centroid_model(_unit_rows(centres), 'pyspark.KMeansModel(cosine)', beta=1.0)
    return _on_the_sphere(head, centres.shape[1], head.source, X=X, beta=beta)


class _Node:
    """A node of Spark's bisection tree as :func:`.centroids.bisecting._tree_paths` walks it."""
    def __init__(self, java_node, unit):
        children = list(java_node.children())
        centre = np.asarray(java_node.centerWithNorm().vector().toArray(), dtype=np.float64)
        self.center = _unit_rows(centre[None])[0] if unit else centre
        if not children:
            self.left = self.right = None
            self.label = int(java_node.index())
            return
        if len(children) != 2:
            raise ValueError(f'a node of the bisection tree has {len(children)} children; a bisection has 2.')
        # predict() takes the first child of least cost (minBy): the tree network's ties are measure zero
        self.left, self.right = (_Node(child, unit) for child in children)


def _spark_tree(model):
    """The root of the bisection tree inside the JVM model (``parentModel.root``)."""
    java_model = getattr(model, '_java_obj', None)
    if java_model is None:
        raise TypeError('this BisectingKMeansModel has no JVM model (a Spark Connect model?); only classic '
                        'PySpark models can be read.')
    accessor = 'org$apache$spark$ml$clustering$BisectingKMeansModel$$parentModel'
    try:
        parent = getattr(java_model, accessor)()
        return parent.root()
    except Exception as error:  # py4j raises its own error types for a missing member
        raise TypeError(f'cannot read the bisection tree of this BisectingKMeansModel (Spark changed where it keeps '
                        f'it?): {error}') from None


def convert_bisecting_kmeans_model(model, X=None, beta=None):
    """``pyspark.ml.clustering.BisectingKMeansModel``: one margin per split from the root to each leaf."""
    unit = _distance_measure(model) == 'cosine'
    centres, paths = _tree_paths(_Node(_spark_tree(model), unit))
    n_clusters = len(paths)
    if n_clusters < 2:
        raise ValueError(f'a cluster model needs at least 2 clusters to explain, got {n_clusters}.')
    if sorted(paths) != list(range(n_clusters)):
        raise ValueError(f'the bisection tree has leaf labels {sorted(paths)}, expected 0..{n_clusters - 1}.')
    depth = max(len(path) for path in paths.values())
    own = np.zeros((n_clusters, depth), dtype=np.int64)
    rival = np.zeros((n_clusters, depth), dtype=np.int64)
    valid = np.zeros((n_clusters, depth), dtype=bool)
    leaves = np.zeros(n_clusters, dtype=np.int64)
    for label, path in paths.items():
        for level, (child, sibling) in enumerate(path):
            own[label, level], rival[label, level], valid[label, level] = child, sibling, True
        leaves[label] = path[-1][0]
    source = 'pyspark.BisectingKMeansModel' + ('(cosine)' if unit else '')
    head = NeuralizedCentroids.from_pairs(torch.from_numpy(centres), own, rival, valid, beta=1.0, source=source,
                                          leaves=leaves)
    if unit:
        return _on_the_sphere(head, centres.shape[1], source, X=X, beta=beta)
    head.beta = resolve_beta(head, X, beta)
    return head


def spark_gaussian(mean, cov):
    """Precision and ``log N(mu | mu, Sigma)`` as Spark's ``MultivariateGaussian`` computes them.

    Spark (``calculateCovarianceConstants``) takes the eigen-decomposition ``Sigma = U diag(d) U^T``, keeps the
    eigenvalues above ``tol = eps * max(d) * D``, and uses ``U diag(1/d) U^T`` over those and the
    pseudo-determinant ``prod d`` over those.
    """
    eigenvalues, vectors = np.linalg.eigh(cov)
    tol = SPARK_EPSILON * eigenvalues.max() * mean.shape[0]
    kept = eigenvalues > tol
    if not kept.any():
        raise ValueError('a Gaussian of the mixture has a zero covariance matrix.')
    inverse = np.where(kept, 1.0 / np.where(kept, eigenvalues, 1.0), 0.0)
    precision = (vectors * inverse) @ vectors.T
    precision = 0.5 * (precision + precision.T)
    log_peak = -0.5 * (mean.shape[0] * np.log(2 * np.pi) + np.log(eigenvalues[kept]).sum())
    return precision, log_peak


def convert_gaussian_mixture_model(model, X=None, beta=None):
    """``pyspark.ml.clustering.GaussianMixtureModel`` (full covariances): to the mixture family.

    Spark's probabilities are ``(eps + w_k N_k(x)) / sum_j (eps + w_j N_j(x))`` (``computeProbabilities``, with
    ``eps`` = :data:`SPARK_EPSILON`); its prediction is their argmax, which is the argmax of the log-scores
    ``s_k`` the network computes, except where every ``w_k N_k(x)`` is below about ``eps``: there Spark's
    probabilities all round to ``eps`` and its argmax falls to the first such component, while the network
    keeps the largest density (see ``label_rule``).
    """
    weights = np.asarray(model.weights, dtype=np.float64)
    means, precisions, biases = [], [], []
    for weight, gaussian in zip(weights, model.gaussians):
        mean = np.asarray(gaussian.mean.toArray(), dtype=np.float64)
        precision, log_peak = spark_gaussian(mean, np.asarray(gaussian.cov.toArray(), dtype=np.float64))
        means.append(mean), precisions.append(precision), biases.append(np.log(weight) + log_peak)
    means, precisions, biases = np.stack(means), np.stack(precisions), np.asarray(biases)
    if means.shape[0] < 2:
        raise ValueError(f'a cluster model needs at least 2 clusters to explain, got {means.shape[0]}.')
    for name, value in (('means', means), ('precisions', precisions), ('log weights', biases)):
        if not np.isfinite(value).all():
            raise ValueError(f'the mixture has non-finite {name} (a component of zero weight?); it cannot be '
                             'neuralized.')
    neuralized = mixture_model(means, precisions, biases, 'full', source='pyspark.GaussianMixtureModel',
                               X=X, beta=beta)
    neuralized.label_rule = ("Spark's prediction wherever some w_k N_k(x) exceeds about 2.2e-16 (MLUtils.EPSILON); "
                             "below that Spark's argmax falls to the first component, the network's to the densest")
    return neuralized
