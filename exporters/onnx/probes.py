"""Probe data for the export check: points around, between and far from a model's clusters."""
import numpy as np

__all__ = ['probe_data']


def probe_data(model_or_estimator, n_rows=2048, seed=0):
    """Points that exercise every part of a clustering model: around, between and far from its clusters.

    Built from the model's cluster centres alone (``cluster_centers`` of the neuralized model), so it
    works for every model family: each centre itself; Gaussian noise around each centre with a norm of
    about half the distance to its nearest neighbour (points inside the cluster and across its borders);
    points on random segments between two centres near their middle, with little noise (close to
    decision boundaries); and points 2 to 20 times further out than the centres (large inputs).

    Parameters
    ----------
    model_or_estimator : anything :func:`zennit_clusters.neuralize` accepts
    n_rows : int
        About how many rows to make (at least one per centre).
    seed : int
        Seed of the random generator: the same model and seed give the same rows.

    Returns
    -------
    ndarray of shape (n, D), float64
    """
    from zennit_clusters import neuralize

    centres = neuralize(model_or_estimator).cluster_centers.detach().cpu().double().numpy()
    n_clusters, n_features = centres.shape
    rng = np.random.default_rng(seed)
    middle = centres.mean(0)
    spread = np.linalg.norm(centres - middle, axis=1).max()
    spread = spread if np.isfinite(spread) and spread > 0 else 1.0
    distance = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    distance[np.eye(n_clusters, dtype=bool)] = np.inf
    nearest = distance.min(1)
    nearest = np.where(np.isfinite(nearest) & (nearest > 0), nearest, spread)
    per_cluster = max(1, n_rows // (2 * n_clusters))
    n_between = max(n_clusters, n_rows // 2 - n_clusters)
    n_far = max(n_clusters, n_rows // 16)

    around = np.repeat(centres, per_cluster, 0) + rng.standard_normal((n_clusters * per_cluster, n_features)) \
        * np.repeat(nearest / (2 * np.sqrt(n_features)), per_cluster)[:, None]
    first = rng.integers(n_clusters, size=n_between)
    second = (first + rng.integers(1, n_clusters, size=n_between)) % n_clusters
    weight = rng.uniform(0.4, 0.6, size=(n_between, 1))
    between = weight * centres[first] + (1 - weight) * centres[second] \
        + rng.standard_normal((n_between, n_features)) * nearest.min() / (20 * np.sqrt(n_features))
    pick = rng.integers(n_clusters, size=n_far)
    far = middle + (centres[pick] - middle) * rng.uniform(2, 20, size=(n_far, 1)) \
        + rng.standard_normal((n_far, n_features)) * spread / np.sqrt(n_features)
    return np.concatenate([centres, around, between, far])
