"""Kernel k-means with a Gaussian kernel, as a scikit-learn estimator (scikit-learn has none).

The kernel is ``k(x, y) = exp(-gamma |x - y|^2)``. A cluster C is represented by its members (the training
points assigned to it), through the mean of their images in the kernel's feature space. Two assignment rules
are offered:

``assignment='feature_space'`` (textbook kernel k-means): the nearest cluster mean in feature space,

    |phi(x) - m_C|^2 = k(x, x) - 2 M_C(x) + Q_C,
    M_C(x) = mean_{j in C} k(x, u_j),   Q_C = mean_{i, j in C} k(u_i, u_j),

so, with k(x, x) = 1, the cluster maximising ``2 M_C(x) - Q_C``.

``assignment='mean_kernel'`` (the default; the form of Kauffmann et al., docs/method.md, section 3): the cluster
maximising ``M_C(x)``, i.e. minimising the soft-min distance

    D_C(x) = LME^{-gamma}_{j in C} |x - u_j|^2 = -(1/gamma) log M_C(x).

It drops the per-cluster self-similarity ``Q_C`` (the mean kernel among the members: 1 for a singleton,
small for a spread-out cluster). The two rules agree wherever all clusters are equally compact. Only the
mean-kernel rule has an exact neuralization: ``Q_C`` is additive in kernel space, and ``2 M_C - Q_C`` is not
a monotone function of ``D_C`` alone, so no per-cluster bias on the network's log-domain margins
``D_k - D_c`` can reproduce it. :func:`zennit_clusters.neuralize` therefore reproduces ``predict`` exactly
for ``'mean_kernel'`` and approximately (the mean-kernel rule on the same clusters) for ``'feature_space'``.

Both rules are fitted by Lloyd-style alternation: assign every training point with the rule, recompute the
clusters, until no label changes. Training points are members of their own cluster while being assigned (as
in textbook kernel k-means), so ``labels_`` equals ``predict(X_train)`` once the fit has converged.
Memory and time are O(n_samples^2) per iteration (the (n, n) score matrix is kept).
"""
import numbers
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ...equations import centroid_scores
from ...validation import check_gamma
from .equations import group_index, group_logmeanexp

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6
    def validate_data(estimator, X, reset=True, **kwargs):
        return estimator._validate_data(X, reset=reset, **kwargs)

__all__ = ['KernelKMeans']

#: rows of score matrices computed per block; fixed, so that fit and predict round identically
_ROW_BLOCK = 1024

ASSIGNMENTS = ('mean_kernel', 'feature_space')


class KernelKMeans(ClusterMixin, BaseEstimator):
    """Kernel k-means with the Gaussian kernel ``k(x, y) = exp(-gamma |x - y|^2)``.

    Parameters
    ----------
    n_clusters : int, default 8
    gamma : float or 'scale', default 'scale'
        Kernel stiffness. ``'scale'`` uses ``1 / (n_features * X.var())`` (as scikit-learn's SVC), which is
        ``2 / (mean squared distance between two training points)``.
    assignment : {'mean_kernel', 'feature_space'}, default 'mean_kernel'
        ``'mean_kernel'``: the cluster whose members have the largest mean kernel with x (the form NEON
        neuralizes exactly). ``'feature_space'``: the nearest cluster mean in feature space (textbook kernel
        k-means; neuralized approximately). See the module docstring.
    n_init : int, default 10
        Runs from different kernel k-means++ seeds; the one with the lowest :attr:`inertia_` is kept.
    max_iter : int, default 100
        Assignment steps per run.
    random_state : int, RandomState instance or None, default None

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
    gamma_ : float
        The kernel stiffness used.
    X_fit_ : ndarray of shape (n_samples, n_features)
        The training data: the members of the clusters, needed by :meth:`predict`.
    inertia_ : float
        The kernel k-means objective ``sum_x |phi(x) - m_{c(x)}|^2`` of the training data (for both rules).
    self_similarity_ : ndarray of shape (n_clusters,)
        ``Q_C``, the mean kernel value between two members of each cluster.
    n_iter_ : int
        Assignment steps of the kept run.
    n_features_in_ : int

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X = load_iris().data
    >>> model = KernelKMeans(n_clusters=3, random_state=0).fit(X)
    >>> bool((model.predict(X) == model.labels_).all())
    True
    """

    def __init__(self, n_clusters=8, *, gamma='scale', assignment='mean_kernel', n_init=10, max_iter=100,
                 random_state=None):
        self.n_clusters = n_clusters
        self.gamma = gamma
        self.assignment = assignment
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state

    # -- parameters -----------------------------------------------------------------------------------------

    def _check_params(self, X):
        for name, minimum in (('n_clusters', 1), ('n_init', 1), ('max_iter', 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                raise ValueError(f'{name} must be an int >= {minimum}, got {value!r}.')
        if self.n_clusters > X.shape[0]:
            raise ValueError(f'n_samples={X.shape[0]} should be >= n_clusters={self.n_clusters}.')
        if self.assignment not in ASSIGNMENTS:
            raise ValueError(f'assignment must be one of {ASSIGNMENTS}, got {self.assignment!r}.')
        if isinstance(self.gamma, str):
            if self.gamma != 'scale':
                raise ValueError(f"gamma must be a float > 0 or 'scale', got {self.gamma!r}.")
            variance = float(X.var())
            return 1.0 / (X.shape[1] * variance) if variance > 0 else 1.0
        return check_gamma(self.gamma)

    # -- the assignment rule, shared by fit and predict ----------------------------------------------------

    def _scores(self, x_centred):
        """Member scores ``s = 2 u^T x - |u|^2`` against the training points, in fixed row blocks."""
        members = torch.from_numpy(self._members)
        return torch.cat([centroid_scores(block, members) for block in torch.split(x_centred, _ROW_BLOCK)])

    def _cluster_scores(self, scores, sqnorm, labels, self_similarity=None):
        """(N, K) assignment scores (larger is better) from member scores and member labels.

        ``S_k = LME^{+gamma}_{j in C_k} s_j``, so that ``log M_k(x) = gamma (S_k - |x|^2)``.
        """
        groups, valid, counts = group_index(labels, self.n_clusters)
        pooled = group_logmeanexp(scores, groups, valid, self.gamma_)
        pooled = pooled.masked_fill(counts == 0, -np.inf)
        if self.assignment == 'mean_kernel':
            return pooled, None
        mean_kernel = torch.exp(self.gamma_ * (pooled - sqnorm.unsqueeze(1)))
        if self_similarity is None:
            # Q_k = mean_{i in C_k} M_k(u_i): the training points are the members
            own = mean_kernel.gather(1, labels.unsqueeze(1)).squeeze(1)
            self_similarity = torch.zeros(self.n_clusters, dtype=own.dtype).index_add(0, labels, own)
            self_similarity = self_similarity / counts.clamp(min=1)
        return (2.0 * mean_kernel - self_similarity).masked_fill(counts == 0, -np.inf), self_similarity

    # -- fit ------------------------------------------------------------------------------------------------

    def fit(self, X, y=None):
        """Fit kernel k-means on X (n_samples, n_features); ``y`` is ignored."""
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=1)
        self.gamma_ = self._check_params(X)
        self._mean = X.mean(0)
        self._members = np.ascontiguousarray(X - self._mean)
        x = torch.from_numpy(self._members)
        scores = self._scores(x)
        sqnorm = (x * x).sum(1)
        kernel = torch.exp(-self.gamma_ * (sqnorm.unsqueeze(1) - scores).clamp(min=0))
        random_state = check_random_state(self.random_state)

        best = None
        for _ in range(self.n_init):
            labels, iterations, converged = self._lloyd(self._seed(kernel, random_state), kernel)
            inertia = _inertia(kernel, labels, self.n_clusters)
            if best is None or inertia < best[0]:
                best = (inertia, labels, iterations, converged)

        # polish the kept run with the exact rule of predict() (log-domain, a max-shift per cluster), so that
        # labels_ == predict(X_train) at the fixed point: the fast steps above round differently near ties
        _, labels, self.n_iter_, _ = best
        converged = False
        for _ in range(self.max_iter):
            assignment, _ = self._cluster_scores(scores, sqnorm, labels)
            new = self._fill_empty(assignment.argmax(1), assignment)
            if torch.equal(new, labels):
                converged = True
                break
            labels = new
            self.n_iter_ += 1
        inertia = _inertia(kernel, labels, self.n_clusters)
        if not converged:
            warnings.warn(f'KernelKMeans did not converge in max_iter={self.max_iter} assignment steps; labels_ '
                          'may differ from predict(X) on the training data. Increase max_iter.',
                          ConvergenceWarning, stacklevel=2)
        self.labels_ = labels.numpy()
        self.inertia_ = float(inertia)
        # Q_k as predict() uses it (computed like the assignment steps, so labels_ == predict(X_train))
        _, similarity = self._cluster_scores(scores, sqnorm, labels)
        if similarity is None:
            similarity = _self_similarity(kernel, labels, self.n_clusters)
        self.self_similarity_ = similarity.numpy()
        self.X_fit_ = X.copy()
        return self

    def _lloyd(self, labels, kernel):
        """Fast assignment steps on the training kernel matrix: ``M = K Z / |C|`` is one (n, n) x (n, K) product.

        Exact in arithmetic: a training point is its own member (``k(x, x) = 1``), so its own cluster's mean
        kernel never underflows, and a cluster that underflows to 0 could not have won.
        """
        for iteration in range(1, self.max_iter + 1):
            onehot = F.one_hot(labels, self.n_clusters).to(kernel.dtype)
            counts = onehot.sum(0)
            mean_kernel = (kernel @ onehot) / counts.clamp(min=1)
            if self.assignment == 'mean_kernel':
                assignment = mean_kernel.log()
            else:
                self_similarity = (onehot * mean_kernel).sum(0) / counts.clamp(min=1)
                assignment = 2.0 * mean_kernel - self_similarity
            assignment = assignment.masked_fill(counts == 0, -np.inf)
            new = self._fill_empty(assignment.argmax(1), assignment)
            if torch.equal(new, labels):
                return labels, iteration, True
            labels = new
        return labels, self.max_iter, False

    def _seed(self, kernel, random_state):
        """Kernel k-means++: seeds drawn with probability proportional to the squared feature-space distance
        ``2 - 2 k(x, seed)`` to the nearest seed; every point then joins its nearest seed."""
        n_samples = kernel.shape[0]
        seeds = [int(random_state.randint(n_samples))]
        distance = 2.0 - 2.0 * kernel[seeds[0]]
        for _ in range(1, self.n_clusters):
            weights = distance.clamp(min=0).numpy()
            total = weights.sum()
            seed = int(random_state.choice(n_samples, p=weights / total)) if total > 0 else \
                int(random_state.randint(n_samples))
            seeds.append(seed)
            distance = torch.minimum(distance, 2.0 - 2.0 * kernel[seed])
        labels = kernel[:, seeds].argmax(1)
        return self._fill_empty(labels, kernel[:, seeds])

    def _fill_empty(self, labels, assignment):
        """Give every empty cluster the worst-fitting point of a cluster with more than one member."""
        labels = labels.clone()
        counts = torch.bincount(labels, minlength=self.n_clusters)
        for empty in (counts == 0).nonzero().flatten().tolist():
            fit = assignment.gather(1, labels.unsqueeze(1)).squeeze(1)
            movable = counts[labels] > 1
            point = int(fit.masked_fill(~movable, np.inf).argmin())
            counts[labels[point]] -= 1
            labels[point] = empty
            counts[empty] += 1
        return labels

    # -- predict --------------------------------------------------------------------------------------------

    def predict(self, X):
        """The cluster of each row of X under the estimator's assignment rule."""
        check_is_fitted(self, 'labels_')
        X = validate_data(self, X, dtype=np.float64, reset=False)
        labels = torch.from_numpy(self.labels_)
        self_similarity = None if self.assignment == 'mean_kernel' else torch.from_numpy(self.self_similarity_)
        x = torch.from_numpy(np.ascontiguousarray(X - self._mean))
        out = []
        # bounded memory: a block of rows against all members at a time
        for block in torch.split(x, _ROW_BLOCK):
            scores = self._scores(block)
            assignment, _ = self._cluster_scores(scores, (block * block).sum(1), labels, self_similarity)
            out.append(assignment.argmax(1))
        return torch.cat(out).numpy()


def _self_similarity(kernel, labels, n_clusters):
    """``Q_k = mean_{i, j in C_k} k(u_i, u_j)``."""
    onehot = F.one_hot(labels, n_clusters).to(kernel.dtype)
    counts = onehot.sum(0).clamp(min=1)
    return (onehot * (kernel @ onehot)).sum(0) / counts ** 2


def _inertia(kernel, labels, n_clusters):
    """The kernel k-means objective ``sum_x |phi(x) - m_c(x)|^2 = n - sum_k |C_k| Q_k`` (k(x, x) = 1)."""
    counts = torch.bincount(labels, minlength=n_clusters).to(kernel.dtype)
    return float(kernel.shape[0] - (counts * _self_similarity(kernel, labels, n_clusters)).sum())
