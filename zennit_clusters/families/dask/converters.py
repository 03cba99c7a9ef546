"""dask-ml's ``KMeans``: the nearest centroid, as scikit-learn's (the centroids are a numpy array)."""
from ...validation import check_fitted
from ..centroids import centroid_model

__all__ = ['convert_dask_kmeans']


def convert_dask_kmeans(estimator, X=None, beta=None):
    """``dask_ml.cluster.KMeans``: ``predict`` is the nearest centroid (``pairwise_distances_argmin_min``).

    ``X`` may be a dask array (its default stiffness is then computed block by block, see
    :func:`.adapters.dask_beta`) or anything :func:`~zennit_clusters.neuralize` takes.
    """
    check_fitted(estimator, 'cluster_centers_')
    source = 'dask_ml.KMeans'
    from .adapters import dask_beta, is_dask_collection
    if X is not None and is_dask_collection(X):
        model = centroid_model(estimator.cluster_centers_, source, beta=beta)
        if beta is None:
            model.beta = dask_beta(model, X)
        return model
    return centroid_model(estimator.cluster_centers_, source, X=X, beta=beta)
