"""Kernel k-means and labelled partitions, through the member-point network (docs/method.md, section 3).

A cluster is represented by member points u_j; x goes to the cluster with the largest mean Gaussian kernel
``mean_{j in C_k} exp(-gamma |x - u_j|^2)``, i.e. the smallest soft-min distance
``LME^{-gamma}_{j in C_k} |x - u_j|^2``. :class:`.NeuralizedMembers` is that rule as
a four-layer network.

- :class:`.KernelKMeans`: the members are the training points and
  gamma is the kernel's; the network's argmax *is* ``predict`` for ``assignment='mean_kernel'`` (exact), and the
  mean-kernel rule on the estimator's clusters for ``assignment='feature_space'`` (approximate).
- A labelled partition (DBSCAN, HDBSCAN, OPTICS, AgglomerativeClustering, SpectralClustering, or plain
  labels via :func:`neuralize_partition`) has no rule for new points: the network *defines* one from the
  training data and its labels (noise excluded, at most ``max_members`` points per cluster), and agrees with
  ``labels_`` on most, not all, training points.
"""
import math
import warnings

import numpy as np
import torch

from ...api import resolve_beta
from ...core import full_name
from ...validation import as_feature_tensor, check_finite_values, check_fitted, check_gamma
from .layers import NeuralizedMembers

__all__ = ['neuralize_partition', 'member_gamma', 'convert_partition', 'convert_kernel_kmeans', 'DEFAULT_MAX_MEMBERS',
           'GAMMA_SCALE']

#: default cap on member points per cluster of a labelled partition (see :func:`neuralize_partition`)
DEFAULT_MAX_MEMBERS = 64

#: the default gamma of a partition is GAMMA_SCALE / (median squared distance of a member to its nearest
#: other member): stiff enough that the soft-min distance follows the labels closely (see the notes)
GAMMA_SCALE = 4.0


def member_gamma(members):
    """The default pool stiffness of a partition: ``GAMMA_SCALE / median_j min_{i != j} |u_i - u_j|^2``.

    Only distances > 0 count (duplicates are skipped). It depends on the member points alone, never on the
    points being explained; 1.0 if all members coincide.
    """
    members = torch.as_tensor(members, dtype=torch.float64)
    nearest = torch.full((members.shape[0],), math.inf, dtype=torch.float64)
    for start in range(0, members.shape[0], 512):
        block = members[start:start + 512]
        # exact differences, so that duplicates give exactly 0
        distance = torch.cdist(block, members, compute_mode='donot_use_mm_for_euclid_dist') ** 2
        nearest[start:start + 512] = distance.masked_fill(distance == 0, math.inf).amin(1)
    nearest = nearest[torch.isfinite(nearest)]
    if nearest.numel() == 0:
        return 1.0
    return GAMMA_SCALE / float(nearest.median())


def _check_training_data(X, n_labels, what):
    """The labelled points as numpy in their own float dtype (no float64 copy of all of X: the members are cast
    once chosen), every value checked finite in row blocks, as all training data is."""
    if X is None:
        raise ValueError(f'a labelled partition needs the training data: neuralize(est, X=X_train) ({what} has '
                         'labels but no rule for new points; the network is built from the labelled points).')
    shape = tuple(X.shape) if hasattr(X, 'shape') else np.shape(X)
    if len(shape) != 2:
        raise ValueError(f'X must be 2-d (n_samples, n_features), got shape {shape}.')
    x, _ = as_feature_tensor(X, shape[1], name='X (training data)')
    check_finite_values(x, 'X (training data)')
    X = x.cpu().numpy()
    if X.shape[0] != n_labels:
        raise ValueError(f'X has {X.shape[0]} rows but there are {n_labels} labels: pass the training data the '
                         f'{what} was fitted on.')
    return X


def _check_no_conflicts(members, labels, classes):
    """Identical points with different labels have a zero margin everywhere: refuse them by name."""
    _, first, inverse = np.unique(members, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    conflict = labels != labels[first[inverse]]
    if conflict.any():
        j = int(np.flatnonzero(conflict)[0])
        i = int(first[inverse[j]])
        raise ValueError(
            f'training points {i} and {j} are identical but labelled {classes[labels[i]]!r} and '
            f'{classes[labels[j]]!r}: a partition must give identical points the same label.')


def neuralize_partition(X, labels, *, gamma=None, beta=None, max_members=DEFAULT_MAX_MEMBERS, random_state=0,
                        relevance_gamma=None, source='labels'):
    """The member-point network of a labelled partition of X (docs/method.md, section 3).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The labelled points.
    labels : array-like of shape (n_samples,)
        Cluster labels (any sortable values). For integer labels, negative values mark noise (scikit-learn's
        -1; HDBSCAN also uses -2 and -3) and those points are left out.
    gamma : float, optional
        Stiffness of the log-mean-exp pools (the Gaussian kernel ``exp(-gamma |x - u|^2)``). Default
        :func:`member_gamma` of the kept members: ``4 / median squared nearest-member distance``.
    beta : float, optional
        Soft-min stiffness of explanations; default ``1 / mean f_c`` over the non-noise points of X.
    max_members : int or None, default 64
        At most this many member points per cluster, drawn uniformly at random without replacement
        (seeded by ``random_state``, so the network is deterministic); None keeps every point. The cost of
        an explanation grows with (members of the explained cluster) x (all members): halving the cap
        makes it about four times faster, at some loss of agreement with the labels (see the README table).
    random_state : int, default 0
    relevance_gamma : float, optional
        Stiffness of the pools' relevance redistribution, shares ``softmax(relevance_gamma s)`` over a
        cluster's members; default gamma (the pools' own gradient). Larger values send the relevance through
        the nearest members of each cluster (fewer negative relevances; see the README's spread table).
        Any value keeps the explanation conservative: the shares sum to one.
    source : str
        Name recorded in the model (and in exports).

    Returns
    -------
    NeuralizedMembers
        ``model.classes_`` maps cluster index k to its label.

    Raises
    ------
    ValueError
        If every point is noise, if fewer than two clusters remain, if identical points carry different
        labels, or if X and labels do not match.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f'labels must be 1-d, got shape {labels.shape}.')
    X = _check_training_data(X, labels.shape[0], source)
    if labels.dtype.kind in 'iu':
        keep = labels >= 0
        if not keep.any():
            raise ValueError(f'all {labels.size} points are labelled noise (label < 0): there is no cluster to '
                             'explain.')
    else:
        keep = np.ones(labels.shape, dtype=bool)
    classes, index = np.unique(labels[keep], return_inverse=True)
    index = index.reshape(-1)
    if len(classes) < 2:
        raise ValueError(f'a cluster model needs at least 2 clusters to explain; the labels hold '
                         f'{len(classes)} (not counting noise).')
    if max_members is not None and (isinstance(max_members, bool) or not isinstance(max_members, (int, np.integer))
                                    or max_members < 1):
        raise ValueError(f'max_members must be a positive int or None, got {max_members!r}.')
    kept_rows = np.flatnonzero(keep)  # rows of X, not a copy of them

    rng = np.random.default_rng(random_state)
    chosen = []
    for k in range(len(classes)):
        rows = np.flatnonzero(index == k)
        if max_members is not None and rows.size > max_members:
            rows = np.sort(rng.choice(rows, size=max_members, replace=False))
        chosen.append(rows)
    chosen = np.concatenate(chosen)
    members, member_labels = X[kept_rows[chosen]].astype(np.float64), index[chosen]
    _check_no_conflicts(members, member_labels, classes)

    gamma = member_gamma(members) if gamma is None else check_gamma(gamma)
    model = NeuralizedMembers.from_members(members, member_labels, gamma, beta=1.0, source=source,
                                           classes=classes.tolist(), relevance_gamma=relevance_gamma)
    model.beta = resolve_beta(model, X, beta, rows=None if keep.all() else keep)
    return model


def convert_partition(estimator, X=None, beta=None):
    """A fitted clusterer with ``labels_`` but no ``predict``: the member-point network of its partition.

    Needs the training data (``neuralize(est, X=X_train)``); uses :func:`neuralize_partition`'s defaults.
    """
    check_fitted(estimator, 'labels_')
    name = type(estimator).__name__
    X = _check_training_data(X, len(estimator.labels_), name)
    model = neuralize_partition(X, estimator.labels_, beta=beta, source=name)
    if any(full_name(type_) == DBSCAN_TYPE for type_ in type(estimator).__mro__):
        _add_dbscan_noise(model, estimator, X)
    return model


#: DBSCAN has a rule for new points, noise included, that the network reproduces (by name: no scikit-learn import)
DBSCAN_TYPE = 'sklearn.cluster._dbscan.DBSCAN'


def _add_dbscan_noise(model, estimator, X):
    """DBSCAN's rule for new points, noise included (:meth:`.NeuralizedMembers.set_noise_rule`).

    Needs the Euclidean metric (the member network is Euclidean too); with another metric the model keeps
    the member rule and says so in ``label_rule``.
    """
    metric, p = estimator.metric, getattr(estimator, 'p', None)
    euclidean = metric == 'euclidean' or (metric == 'minkowski' and p in (None, 2))
    if not euclidean:
        warnings.warn(f'DBSCAN(metric={metric!r}): the noise rule is only neuralized for the Euclidean metric; '
                      'the model never labels noise (see model.label_rule).', UserWarning, stacklevel=4)
        return
    core = np.asarray(X)[np.asarray(estimator.core_sample_indices_, dtype=np.int64)]
    if core.shape[0] == 0:
        return
    model.set_noise_rule(core, estimator.eps)


def convert_kernel_kmeans(estimator, X=None, beta=None):
    """``KernelKMeans``: every training point is a member, gamma is the kernel's.

    Exact (argmax == ``predict``) for ``assignment='mean_kernel'``; for ``'feature_space'`` the network is
    the mean-kernel rule on the same clusters and agrees with ``predict`` only where the clusters' self-
    similarities do not decide. ``X`` (optional) sets the default stiffness; otherwise the training data does.
    """
    check_fitted(estimator, 'labels_')
    if estimator.assignment != 'mean_kernel':
        warnings.warn("KernelKMeans(assignment='feature_space') has no exact neuralization: the network uses the "
                      "mean-kernel rule on the same clusters, which drops the clusters' self-similarity, and "
                      "agrees with predict() only approximately.", UserWarning, stacklevel=3)
    labels = np.asarray(estimator.labels_)
    n_clusters = int(estimator.n_clusters)
    model = NeuralizedMembers.from_members(
        estimator.X_fit_, labels, estimator.gamma_, beta=1.0,
        source=f'KernelKMeans({estimator.assignment})', classes=list(range(n_clusters)))
    model.beta = resolve_beta(model, estimator.X_fit_ if X is None else X, beta)
    return model
