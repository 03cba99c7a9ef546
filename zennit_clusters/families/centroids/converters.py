"""k-means and torch centroid heads: nearest-centroid assignment, neuralized exactly (docs/method.md, section 1)."""
import numpy as np
import torch

from ...api import resolve_beta
from ...validation import check_fitted
from .layers import NeuralizedCentroids, flat_pairs

__all__ = ['centroid_model', 'convert_kmeans', 'find_centroids', 'convert_centroid_tensor', 'convert_centroid_module',
           'CENTROID_ATTRIBUTES']

# attribute names under which torch clustering heads commonly keep their centroids
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
    model.beta = resolve_beta(model, X, beta)
    return model


def convert_kmeans(estimator, X=None, beta=None):
    """``KMeans`` and ``MiniBatchKMeans``: ``predict`` is the nearest centroid."""
    check_fitted(estimator, 'cluster_centers_')
    return centroid_model(estimator.cluster_centers_, type(estimator).__name__, X=X, beta=beta)


def find_centroids(module):
    """The (K, D) centroid tensor held by a torch clustering head.

    Looks for an attribute named like centroids (see ``CENTROID_ATTRIBUTES``), else for the module's only
    2-d parameter or buffer.
    """
    for name in CENTROID_ATTRIBUTES:
        value = getattr(module, name, None)
        if torch.is_tensor(value) and value.dim() == 2:
            return value
    candidates = [(name, tensor) for name, tensor in list(module.named_parameters()) + list(module.named_buffers())
                  if tensor.dim() == 2]
    if len(candidates) == 1:
        return candidates[0][1]
    found = ', '.join(f'{name} {tuple(t.shape)}' for name, t in candidates) or 'none'
    raise TypeError(
        f'Cannot find the centroids of torch module {type(module).__name__}: expected an attribute named one of '
        f'{", ".join(CENTROID_ATTRIBUTES)} or exactly one 2-d parameter/buffer; 2-d tensors found: {found}.'
    )


def convert_centroid_tensor(centroids, X=None, beta=None):
    """A (K, D) tensor of centroids: a deep k-means head on some feature space."""
    return centroid_model(centroids, 'torch.Tensor', X=X, beta=beta)


def convert_centroid_module(module, X=None, beta=None):
    """A torch module holding one (K, D) centroid tensor."""
    return centroid_model(find_centroids(module), type(module).__name__, X=X, beta=beta)
