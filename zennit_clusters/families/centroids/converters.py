"""k-means and torch centroid heads: nearest-centroid assignment, neuralized exactly (docs/method.md, section 1)."""
import numpy as np
import torch

from ...validation import check_fitted
from .layers import NeuralizedCentroids, flat_pairs
from .sparse import centroid_beta

__all__ = ['centroid_model', 'convert_kmeans', 'convert_centroid_tensor', 'convert_centroid_module',
           'CENTROID_ATTRIBUTES']

# attribute names under which torch clustering heads commonly keep their centroids (a documented declaration:
# neuralize() takes a (K, D) tensor under one of them as the centroids, then checks the module's forward)
CENTROID_ATTRIBUTES = ('centroids', 'cluster_centers', 'cluster_centers_', 'centers', 'centres', 'prototypes')


def centroid_model(centroids, source, X=None, beta=None):
    """The neuralized nearest-centroid model of a (K, D) array of centroids.

    ``f_c(x) = min_{k != c} |x - mu_k|^2 - |x - mu_c|^2``, one margin per ordered pair.
    """
    if torch.is_tensor(centroids):
        centroids = centroids.detach().cpu()
    centroids = torch.as_tensor(np.asarray(centroids, dtype=np.float64) if not torch.is_tensor(centroids)
                                else centroids.to(torch.float64))
    if centroids.dim() != 2:
        raise ValueError(f'centroids must be 2-d of shape (n_clusters, n_features), got shape {tuple(centroids.shape)}.')
    if centroids.shape[0] < 2:
        raise ValueError(f'a cluster model needs at least 2 clusters to explain, got {centroids.shape[0]}.')
    if not bool(torch.isfinite(centroids).all()):
        raise ValueError('centroids contain NaN or infinity.')
    own, rival = flat_pairs(centroids.shape[0])
    model = NeuralizedCentroids.from_pairs(centroids, own, rival, torch.ones_like(own, dtype=torch.bool),
                                           beta=1.0, source=source)
    model.beta = centroid_beta(model, X, beta)  # sparse training data (a term matrix) stays sparse
    return model


def convert_kmeans(estimator, X=None, beta=None):
    """``KMeans`` and ``MiniBatchKMeans``: ``predict`` is the nearest centroid."""
    check_fitted(estimator, 'cluster_centers_')
    return centroid_model(estimator.cluster_centers_, type(estimator).__name__, X=X, beta=beta)


def convert_centroid_tensor(centroids, X=None, beta=None):
    """A (K, D) tensor of centroids: a deep k-means head on some feature space."""
    return centroid_model(centroids, 'torch.Tensor', X=X, beta=beta)


def convert_centroid_module(module, X=None, beta=None):
    """A torch clustering module: one of :data:`.torch_heads.ACCEPTED_FORMS`, checked on probe points first."""
    from .torch_heads import convert_torch_module  # it builds on centroid_model above
    return convert_torch_module(module, X=X, beta=beta)
