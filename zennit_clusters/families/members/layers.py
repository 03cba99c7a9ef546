"""Torch modules of member-point networks (docs/method.md, section 3): Gaussian kernel k-means and partitions."""
import math

import torch

from ...core import CentredFrameLayer, NeuralizedModel
from ...equations import centroid_scores, masked_min
from ...validation import check_beta, check_gamma, check_layer_input, frame_origin, tie_threshold
from ..centroids.layers import MinPool
from .equations import group_index, group_logmeanexp

__all__ = ['MemberMargin', 'LogMeanExpPool', 'NeuralizedMembers', 'MEMBER_RULE', 'DBSCAN_RULE']

#: what a label of a member network without a noise rule means (HDBSCAN, OPTICS, agglomerative, ...)
MEMBER_RULE = ('the cluster with the largest mean Gaussian kernel to its member points (the member network\'s '
               'rule); never -1 for noise: the estimator has no rule for new points, and its training noise is '
               'left out of the members')
#: what a label of a DBSCAN network means
DBSCAN_RULE = ('-1 (noise) where no core sample lies within eps (DBSCAN\'s rule, exactly: every logit is then '
               'negative); otherwise the member network\'s cluster (largest mean Gaussian kernel to its members)')


class MemberMargin(CentredFrameLayer):
    """Linear layer of all member-pair margins ``h[i, j] = |x - u_j|^2 - |x - u_i|^2 = s_i - s_j``.

    The first layer of docs/method.md, section 3 (``w_ij = 2 (u_i - u_j)``, ``b_ij = |u_j|^2 - |u_i|^2``), computed
    from the (N, M) member scores ``s = centroid_scores(x, u)`` and never as a (pairs, D) weight tensor.

    Parameters
    ----------
    members : torch.Tensor of shape (M, D)
        Member points, in input coordinates.
    member_group : torch.LongTensor of shape (M,)
        Cluster of each member.
    origin : torch.Tensor of shape (D,), optional
        Fixed point subtracted from inputs and members (docs/method.md, section 1); default :func:`.frame_origin` of
        the members.

    Notes
    -----
    Input (N, D), output (N, M, M): axis 1 is the member i of the explained cluster, axis 2 the member j
    of a competitor. Pairs within one cluster are computed too (the pools and the min-pool give them no
    relevance). Memory is M^2 per input row, which is what a layer-by-layer Zennit pass needs; the
    closed form (:class:`.MemberExplainer`) needs only (members of one cluster) x M.
    """
    def __init__(self, members, member_group, origin=None):
        super().__init__()
        members = torch.as_tensor(members, dtype=torch.float64)
        if origin is None:
            origin = frame_origin(members)
        origin = torch.as_tensor(origin, dtype=torch.float64)
        self.register_buffer('origin', origin)
        self.register_buffer('members', members - origin)
        self.register_buffer('member_group', torch.as_tensor(member_group, dtype=torch.long))
        #: size of the scores (mean squared norm of the centred members): sets the default stabiliser
        self.scale = float((self.members ** 2).sum(1).mean()) or 1.0

    def tie_threshold(self, dtype):
        """Tie threshold of pair margins: ``sqrt(machine epsilon) * scale``.

        Margins are differences of scores of size ``scale``, so margins below ~machine epsilon x scale are
        rounding noise. Pairs with ``|h| < epsilon`` count as ties and carry no relevance (their per-feature
        midpoint terms do not sum to their relevance: see :func:`.tie_reciprocal`);
        all other pairs conserve exactly. The threshold is far above the rounding noise in both float32 and
        float64, so both dtypes find the same ties.
        """
        return tie_threshold(dtype, self.scale)

    @property
    def n_features(self):
        return self.members.shape[1]

    def centred(self, x):
        """Inputs and members in the centred frame, in the input's dtype and on its device."""
        check_layer_input(x, self.n_features, type(self).__name__)
        origin = self.origin.to(device=x.device, dtype=x.dtype)
        return x - origin, self.members.to(device=x.device, dtype=x.dtype)

    def pair_valid(self):
        """(M, M) pairs of members of different clusters (the others carry no relevance)."""
        return self.member_group.unsqueeze(1) != self.member_group.unsqueeze(0)

    def forward(self, x):
        x, members = self.centred(x)
        scores = centroid_scores(x, members)
        return scores.unsqueeze(2) - scores.unsqueeze(1)

    def extra_repr(self):
        return f'members={self.members.shape[0]}, features={self.n_features}'


class LogMeanExpPool(torch.nn.Module):
    """Log-mean-exp pool over the members of each cluster, along one axis: ``LME^gamma_{m in C_k} h_m``.

    ``LME^gamma_{m in C} h_m = (1/gamma) log( (1/|C|) sum_{m in C} exp(gamma h_m) )``: a soft maximum for
    ``gamma > 0``, a soft minimum for ``gamma < 0`` (the second and third layers of docs/method.md, section 3).

    Parameters
    ----------
    groups, valid : torch.Tensor of shape (K, L)
        Padded member index of each cluster (:func:`.group_index`).
    member_group : torch.LongTensor of shape (M,)
        Cluster of each member.
    gamma : float
        Signed stiffness (non-zero).
    dim : int
        The member axis of the input (counting the batch axis); it becomes a cluster axis of size K.

    relevance_gamma : float, optional
        Signed stiffness of the relevance redistribution (same sign as gamma); default gamma.

    Notes
    -----
    Relevance goes back through the pool with the shares ``softmax(relevance_gamma h)`` within each cluster
    (:class:`.LogMeanExpShares`); with the default ``relevance_gamma = gamma`` that is
    the pool's own gradient. The shares sum to one, so the pool conserves relevance by construction,
    although the LME is not positively homogeneous.
    """
    def __init__(self, groups, valid, member_group, gamma, dim, relevance_gamma=None):
        super().__init__()
        self.register_buffer('groups', torch.as_tensor(groups, dtype=torch.long))
        self.register_buffer('valid', torch.as_tensor(valid, dtype=torch.bool))
        self.register_buffer('member_group', torch.as_tensor(member_group, dtype=torch.long))
        self.register_buffer('counts', self.valid.sum(1).to(torch.float64))
        gamma = float(gamma)
        if gamma == 0 or not math.isfinite(gamma):
            raise ValueError(f'gamma must be finite and non-zero, got {gamma}.')
        self.gamma = gamma
        self.dim = int(dim)
        self.relevance_gamma = gamma if relevance_gamma is None else float(relevance_gamma)
        if self.relevance_gamma * gamma <= 0 or not math.isfinite(self.relevance_gamma):
            raise ValueError(f'relevance_gamma must be finite with the sign of gamma ({gamma}), got {relevance_gamma}.')

    def forward(self, h):
        values = h.movedim(self.dim, -1)
        pooled = group_logmeanexp(values, self.groups.to(h.device), self.valid.to(h.device), self.gamma)
        return pooled.movedim(-1, self.dim)

    def extra_repr(self):
        return (f'gamma={self.gamma:g}, relevance_gamma={self.relevance_gamma:g}, dim={self.dim}, '
                f'clusters={self.groups.shape[0]}')


class NeuralizedMembers(torch.nn.Sequential, NeuralizedModel):
    """A member-point cluster model as the four-layer network of docs/method.md, section 3.

    Cluster k is a set of member points u_j (j in C_k); x belongs to the cluster with the smallest soft-min
    distance ``D_k(x) = LME^{-gamma}_{j in C_k} |x - u_j|^2``, i.e. the largest mean Gaussian kernel
    ``mean_{j in C_k} exp(-gamma |x - u_j|^2)``. The layers are

        h[i, j] = |x - u_j|^2 - |x - u_i|^2       (MemberMargin, linear in x)
        LME^{+gamma} over i in C_c                (LogMeanExpPool, soft max-pool over the cluster's members)
        LME^{-gamma} over j in C_k                (LogMeanExpPool, soft min-pool over a competitor's members)
        min over k != c                           (MinPool)

    and ``f_c(x) = min_{k != c} D_k(x) - D_c(x)`` exactly: positive iff x is assigned to c.

    With a noise rule (:meth:`set_noise_rule`, DBSCAN's "a core sample within eps, else noise"), a fifth layer
    takes ``g_c = min(f_c, e)`` with the radius evidence ``e = eps^2 - |x - v*|^2`` (:class:`.CoreRadius`): all
    logits are negative exactly on the points DBSCAN's rule calls noise, and the explainers label them -1.
    :attr:`label_rule` says in words what a label means.

    Parameters
    ----------
    margin : MemberMargin
    own_pool, rival_pool : LogMeanExpPool
    pool : MinPool
    source : str
    classes : array-like of shape (K,), optional
        The label each cluster index stands for (for partitions whose labels are not 0..K-1).

    Notes
    -----
    ``model(x)`` materialises all M^2 member pairs per row (what Zennit needs); :meth:`evidence` gives the
    same logits in O(N M D). Identical member points in different clusters are not allowed (their margin is
    zero everywhere, so the midpoint rule cannot split it).
    """
    #: what a label means, in words (recorded in exports); models pickled before noise rules existed have this one
    label_rule = MEMBER_RULE

    def __init__(self, margin, own_pool, rival_pool, pool, source='members', classes=None):
        super().__init__()
        self.margin = margin
        self.own_pool = own_pool
        self.rival_pool = rival_pool
        self.pool = pool
        self.source = source
        n_clusters = own_pool.groups.shape[0]
        self.classes_ = list(range(n_clusters)) if classes is None else list(classes)
        #: what a label means, in words (recorded in exports); see :meth:`set_noise_rule`
        self.label_rule = MEMBER_RULE

    def set_noise_rule(self, core, radius, rule=None, metric=None):
        """Label -1 (noise) every point with no core sample within ``radius`` (DBSCAN's rule for new points).

        Parameters
        ----------
        core : array-like of shape (C, D)
            The core samples (DBSCAN's ``components_``), all of them.
        radius : float
            DBSCAN's ``eps`` (Euclidean).
        rule : str, optional
            The new :attr:`label_rule`; default :data:`DBSCAN_RULE`.
        metric : array-like of shape (D, D), optional
            The radius's metric ``d^T M d`` (a DBSCAN fitted after an orthonormal projection ``C``, lifted to the
            projection's input space: ``M = C^T C``); default Euclidean.
        """
        from .noise import CoreRadius
        radius = float(radius)
        if not radius > 0 or not math.isfinite(radius):
            raise ValueError(f'the noise radius must be a finite float > 0, got {radius}.')
        core = torch.as_tensor(core, dtype=torch.float64)
        if core.dim() != 2 or core.shape[0] == 0 or core.shape[1] != self.n_features_in_:
            raise ValueError(f'core samples must be a non-empty (C, {self.n_features_in_}) array, got shape '
                             f'{tuple(core.shape)}.')
        self.radius = CoreRadius(core, radius, self.margin.origin, metric)
        self.radius_pool = MinPool(torch.ones(self.n_clusters, 2, dtype=torch.bool), self.pool.beta)
        self.label_rule = DBSCAN_RULE if rule is None else rule
        return self

    @property
    def noise_radius(self):
        """DBSCAN's ``eps`` when the model has a noise rule, else None (labels are never -1 for noise)."""
        radius = getattr(self, 'radius', None)
        return None if radius is None else radius.radius

    @property
    def beta(self):
        return self.pool.beta

    @beta.setter
    def beta(self, value):
        self.pool.beta = check_beta(value, allow_none=False)
        if getattr(self, 'radius_pool', None) is not None:
            self.radius_pool.beta = self.pool.beta

    def forward(self, x):
        logits = self.pool(self.rival_pool(self.own_pool(self.margin(x))))
        return self._with_noise(x, logits)

    def _with_noise(self, x, logits):
        """``min(f_c, e)`` through the radius pool where the model has a noise rule; ``logits`` otherwise."""
        if getattr(self, 'radius', None) is None:
            return logits
        radius = self.radius(x).unsqueeze(1).expand_as(logits)
        return self.radius_pool(torch.stack([logits, radius], -1))

    @classmethod
    def from_members(cls, members, labels, gamma, beta, source='members', classes=None, origin=None,
                     relevance_gamma=None):
        """Build the network from member points and their cluster indices in ``[0, K)``."""
        members = torch.as_tensor(members, dtype=torch.float64)
        labels = torch.as_tensor(labels, dtype=torch.long)
        gamma = check_gamma(gamma)
        if members.dim() != 2 or labels.shape != members.shape[:1]:
            raise ValueError(f'members must be (M, D) with one label each, got {tuple(members.shape)} and '
                             f'{tuple(labels.shape)} labels.')
        if not bool(torch.isfinite(members).all()):
            raise ValueError('member points contain NaN or infinity.')
        n_clusters = int(labels.max()) + 1 if labels.numel() else 0
        if n_clusters < 2:
            raise ValueError(f'a cluster model needs at least 2 clusters to explain, got {n_clusters}.')
        groups, valid, counts = group_index(labels, n_clusters)
        if bool((counts == 0).any()):
            raise ValueError(f'cluster {int((counts == 0).nonzero()[0, 0])} has no member points.')
        margin = MemberMargin(members, labels, origin)
        own_pool = LogMeanExpPool(groups, valid, labels, gamma, dim=1)
        rival_pool = LogMeanExpPool(groups, valid, labels, -gamma, dim=2)
        pool = MinPool(~torch.eye(n_clusters, dtype=torch.bool), beta)
        model = cls(margin, own_pool, rival_pool, pool, source, classes)
        if relevance_gamma is not None:
            model.relevance_gamma = relevance_gamma
        return model

    def evidence(self, x):
        """The (N, K) logits ``f_c(x)`` without the (N, M, M) pair tensor: ``min_{k != c} S_c - S_k``."""
        x, members = self.margin.centred(x)
        scores = centroid_scores(x, members)
        pooled = group_logmeanexp(scores, self.own_pool.groups.to(x.device), self.own_pool.valid.to(x.device),
                                     self.gamma)
        logits = masked_min(pooled.unsqueeze(2) - pooled.unsqueeze(1), self.pool.valid.to(x.device))
        return self._with_noise(x, logits)

    @property
    def evidence_row_elements(self):
        """(N, M) member scores and (N, K, K) pooled margins of :meth:`evidence` (and the core samples' distances)."""
        radius = getattr(self, 'radius', None)
        cores = 0 if radius is None else int(radius.core.shape[0])
        return int(self.margin.members.shape[0]) + self.n_clusters * self.n_clusters + cores

    @property
    def members(self):
        """(M, D) float64 member points, in input coordinates."""
        return self.margin.members + self.margin.origin

    @property
    def member_labels(self):
        """(M,) cluster index of each member."""
        return self.margin.member_group

    @property
    def cluster_centers(self):
        """(K, D) float64 mean of each cluster's members, in input coordinates."""
        sums = torch.zeros(self.n_clusters, self.n_features_in_, dtype=torch.float64)
        sums = sums.index_add(0, self.member_labels, self.members)
        return sums / self.own_pool.counts.unsqueeze(1)

    @property
    def gamma(self):
        """Stiffness of the log-mean-exp pools: the Gaussian kernel ``exp(-gamma |x - u|^2)``."""
        return self.own_pool.gamma

    @property
    def relevance_gamma(self):
        """Stiffness of the pools' relevance redistribution: shares ``softmax(relevance_gamma s)`` over the
        members of a cluster. Default gamma (the pools' own gradient); larger values send the relevance to
        the nearest members of each cluster (see the notes of :func:`zennit_clusters.neuralize_partition`)."""
        return self.own_pool.relevance_gamma

    @relevance_gamma.setter
    def relevance_gamma(self, value):
        value = check_gamma(value)
        self.own_pool.relevance_gamma = value
        self.rival_pool.relevance_gamma = -value

    @property
    def n_clusters(self):
        return self.own_pool.groups.shape[0]

    @property
    def n_features_in_(self):
        return self.margin.n_features
