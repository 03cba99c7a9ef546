"""Torch modules of neuralized clustering models.

Each layer of NEON.md is its own leaf module with one tensor in and one tensor out, so that Zennit can
attach a rule to it; parameters are buffers (a neuralized model is not trained). The arithmetic is in
:mod:`zennit_clusters.functional`.
"""
import math

import torch

from . import functional as NF
from .validation import check_beta, check_gamma

__all__ = ['NeuralizedModel', 'PairwiseMargin', 'MinPool', 'NeuralizedCentroids', 'flat_pairs']


def _check_features(x, n_features, layer):
    if not torch.is_tensor(x) or x.dim() != 2:
        got = f'shape {tuple(x.shape)}' if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f'{layer} expects a 2-d tensor of shape (n_samples, {n_features}), got {got}.')
    if x.shape[1] != n_features:
        raise ValueError(
            f'{layer} expects {n_features} features per sample, got {x.shape[1]} '
            f'(input of shape {tuple(x.shape)}).'
        )
    if not x.is_floating_point():
        raise TypeError(f'{layer} expects a floating-point tensor, got dtype {x.dtype}.')


class NeuralizedModel:
    """Marker base of every neuralized model: a torch module mapping (N, D) inputs to (N, K) evidence.

    Subclasses provide ``n_clusters``, ``n_features_in_``, ``cluster_centers`` (a (K, D) tensor of
    representative points, used for the default stiffness) and ``source``. The default soft-min stiffness
    ``beta`` of explanations lives on the model's last pool, ``self.pool``; models that wrap another
    neuralized model delegate it to that model instead.
    """
    @property
    def beta(self):
        return self.pool.beta

    @beta.setter
    def beta(self, value):
        self.pool.beta = check_beta(value, allow_none=False)


def frame_centre(points):
    """The fixed point every model family subtracts from inputs and its centres (NEON.md section 1).

    Far from the origin, float32 scores lose the digits that decide a label (digits + 1000: 0.4 % of labels
    differ from ``predict`` without centring). Centring on the mean of the model's points, rounded to float32 so
    that the float32 subtraction is exact, keeps them. Where that mean lies within half the points' spread of
    the origin (standardised data, for one), centring cannot gain precision, and the centre is zero: the
    closed form and the ONNX graph then skip the subtraction, a full pass over X.

    Parameters
    ----------
    points : torch.Tensor of shape (M, D)
        The model's centres, means or member points, float64.

    Returns
    -------
    torch.Tensor of shape (D,), float64
    """
    mean = points.mean(0).to(torch.float32).to(torch.float64)
    spread = float((points - mean).square().sum(1).mean().sqrt())
    if float(mean.norm()) <= 0.5 * spread:
        return torch.zeros_like(mean)
    return mean


class PairwiseMargin(torch.nn.Module):
    """Linear layer of pairwise margins ``h[c, l] = |x - mu_rival|^2 - |x - mu_own|^2``.

    Parameters
    ----------
    centres : torch.Tensor of shape (M, D)
        The centres (centroids, or tree nodes of a bisecting model), in input coordinates.
    own, rival : torch.LongTensor of shape (K, L)
        For cluster c, the pairs ``(own[c, l], rival[c, l])`` whose margins must all be positive for
        a point to be assigned to c. Padding pairs (``valid`` false) must have ``own == rival``.
    valid : torch.BoolTensor of shape (K, L)
        Which pairs are real.
    centre : torch.Tensor of shape (D,), optional
        A fixed point subtracted from inputs and centres before computing scores, which keeps float32
        exact on data far from the origin (NEON.md section 1). Default: :func:`frame_centre` of the centres.

    Notes
    -----
    Input (N, D), output (N, K, L). Margins of padding pairs are exactly zero.
    """
    def __init__(self, centres, own, rival, valid, centre=None):
        super().__init__()
        centres = torch.as_tensor(centres, dtype=torch.float64)
        if centre is None:
            centre = frame_centre(centres)
        centre = torch.as_tensor(centre, dtype=torch.float64)
        self.register_buffer('centre', centre)
        self.register_buffer('centres', centres - centre)
        self.register_buffer('own', torch.as_tensor(own, dtype=torch.long))
        self.register_buffer('rival', torch.as_tensor(rival, dtype=torch.long))
        self.register_buffer('valid', torch.as_tensor(valid, dtype=torch.bool))

    @property
    def n_features(self):
        return self.centres.shape[1]

    def centred(self, x):
        """Inputs and centres in the centred frame, in the input's dtype and on its device."""
        _check_features(x, self.n_features, type(self).__name__)
        centre = self.centre.to(device=x.device, dtype=x.dtype)
        return x - centre, self.centres.to(device=x.device, dtype=x.dtype)

    def forward(self, x):
        x, centres = self.centred(x)
        scores = NF.centroid_scores(x, centres)
        margins = NF.pair_margins(scores, self.own.flatten(), self.rival.flatten())
        return margins.reshape(x.shape[0], *self.own.shape)

    def extra_repr(self):
        return f'centres={self.centres.shape[0]}, features={self.n_features}, pairs={tuple(self.own.shape)}'


class MinPool(torch.nn.Module):
    """Min-pool over the last axis, over the entries marked valid: ``f_c = min_l h[c, l]``.

    Parameters
    ----------
    valid : torch.BoolTensor of shape (K, L)
        Which entries take part in the minimum.
    beta : float
        The soft-min stiffness used when relevance is redistributed through this pool and no rule
        overrides it (see :class:`zennit_clusters.rules.SoftMinRedistribution`). The forward pass is
        always the hard minimum.
    """
    def __init__(self, valid, beta):
        super().__init__()
        self.register_buffer('valid', torch.as_tensor(valid, dtype=torch.bool))
        self.beta = float(beta)

    def forward(self, h):
        return NF.masked_min(h, self.valid.to(h.device))

    def extra_repr(self):
        return f'beta={self.beta:g}'


class NeuralizedCentroids(torch.nn.Sequential, NeuralizedModel):
    """A centroid clustering model rewritten as a two-layer network: pairwise margins, then min-pool.

    ``model(x)`` returns the (N, K) cluster evidence ``f_c(x)``; its argmax is the source model's
    label, and ``f_c(x) > 0`` exactly for points assigned to c.

    Parameters
    ----------
    margin : PairwiseMargin
    pool : MinPool
    source : str
        Name of the model this was made from (recorded in exports).
    leaves : torch.LongTensor of shape (K,), optional
        Index of each cluster's own centroid among the centres (default: centre c for cluster c).

    Attributes
    ----------
    n_clusters : int
    n_features_in_ : int
    beta : float
        Default soft-min stiffness of explanations (:func:`zennit_clusters.explain` with ``beta=None``).
    """
    def __init__(self, margin, pool, source='centroids', leaves=None):
        super().__init__()
        self.margin = margin
        self.pool = pool
        self.source = source
        if leaves is None:
            leaves = torch.arange(margin.own.shape[0])
        self.register_buffer('leaves', torch.as_tensor(leaves, dtype=torch.long))

    @property
    def cluster_centers(self):
        """(K, D) float64 centroid of each cluster, in input coordinates."""
        return self.margin.centres[self.leaves] + self.margin.centre

    @property
    def is_flat(self):
        """Whether each cluster competes with every other centroid directly (the k-means graph)."""
        margin = self.margin
        n_clusters = margin.own.shape[0]
        if margin.centres.shape[0] != n_clusters or margin.own.shape[1] != n_clusters - 1:
            return False
        own, rival = flat_pairs(n_clusters)
        return bool((margin.own == own).all() and (margin.rival == rival).all() and margin.valid.all())

    @property
    def n_clusters(self):
        return self.margin.own.shape[0]

    @property
    def n_features_in_(self):
        return self.margin.n_features

    @classmethod
    def from_pairs(cls, centres, own, rival, valid, beta, source, leaves=None, centre=None):
        """Build the network from a margin graph (see :mod:`zennit_clusters.functional`)."""
        valid = torch.as_tensor(valid, dtype=torch.bool)
        own = torch.as_tensor(own, dtype=torch.long)
        rival = torch.where(valid, torch.as_tensor(rival, dtype=torch.long), own)
        return cls(PairwiseMargin(centres, own, rival, valid, centre), MinPool(valid, beta), source, leaves)


def flat_pairs(n_clusters):
    """The k-means margin graph: cluster c against every other centroid, ``(own, rival)`` of shape (K, K-1)."""
    index = torch.arange(n_clusters)
    own = index.unsqueeze(1).expand(n_clusters, n_clusters - 1)
    others = index.unsqueeze(0).expand(n_clusters, n_clusters)
    rival = others[~torch.eye(n_clusters, dtype=torch.bool)].reshape(n_clusters, n_clusters - 1)
    return own, rival


# ---------------------------------------------------------------------------------------------------------
# Gaussian mixtures (NEON.md section 4)
# ---------------------------------------------------------------------------------------------------------

__all__ += ['COVARIANCE_TYPES', 'GaussianLogRatio', 'SoftMinPool', 'NeuralizedMixture']

#: covariance types of scikit-learn's Gaussian mixtures
COVARIANCE_TYPES = ('full', 'tied', 'diag', 'spherical')


class GaussianLogRatio(torch.nn.Module):
    """Pairwise log-ratios of a Gaussian mixture, ``h[c, j] = log pi_c N(x|c) - log pi_k N(x|k)``, k = rival[c, j].

    Parameters
    ----------
    means : torch.Tensor of shape (K, D)
        Component means, in input coordinates.
    precisions : torch.Tensor
        Inverse covariances: (K, D, D) for ``'full'``, (D, D) for ``'tied'``, (K, D) for ``'diag'``,
        (K,) or (K, D) for ``'spherical'``.
    biases : torch.Tensor of shape (K,)
        ``b_k = log pi_k N(mu_k | mu_k, Sigma_k)``: everything in a component's log-score that does not
        depend on x (log weight, log-determinant, and the variational terms of a Bayesian mixture).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    centre : torch.Tensor of shape (D,), optional
        Fixed point subtracted from inputs and means (NEON.md section 1); default :func:`frame_centre` of the
        means.

    Notes
    -----
    Input (N, D), output (N, K, K - 1), the pairs of :func:`flat_pairs`. Tied covariances make every
    log-ratio linear: it is stored per pair as ``h = w^T (x - x0) + kappa`` with a root point x0 on the
    boundary (see :func:`zennit_clusters.functional.tied_root_points`); the forward pass is one
    (N, D) x (D, K (K - 1)) product. Otherwise ``h = s_c - s_k`` from the component scores; for full
    covariances the layer also keeps, per pair, the root point on the line through the two means that the
    relevance rule starts from (:func:`zennit_clusters.functional.segment_roots`).
    """
    def __init__(self, means, precisions, biases, covariance_type, centre=None):
        super().__init__()
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f'covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}.')
        means = torch.as_tensor(means, dtype=torch.float64)
        precisions = torch.as_tensor(precisions, dtype=torch.float64)
        biases = torch.as_tensor(biases, dtype=torch.float64)
        n_components, n_features = means.shape
        expected = {'full': (n_components, n_features, n_features), 'tied': (n_features, n_features),
                    'diag': (n_components, n_features), 'spherical': (n_components,)}[covariance_type]
        if covariance_type == 'spherical' and precisions.dim() == 1:
            precisions = precisions.unsqueeze(1).expand(n_components, n_features).clone()
            expected = (n_components, n_features)
        elif covariance_type == 'spherical':
            expected = (n_components, n_features)
        if tuple(precisions.shape) != expected or tuple(biases.shape) != (n_components,):
            raise ValueError(
                f'a {covariance_type!r} mixture of {n_components} components in {n_features} features needs '
                f'precisions of shape {expected} and biases of shape ({n_components},), got '
                f'{tuple(precisions.shape)} and {tuple(biases.shape)}.'
            )
        if centre is None:
            centre = frame_centre(means)
        centre = torch.as_tensor(centre, dtype=torch.float64)
        self.covariance_type = covariance_type
        self.register_buffer('centre', centre)
        self.register_buffer('means', means - centre)
        self.register_buffer('precisions', precisions)
        self.register_buffer('biases', biases)
        own, rival = flat_pairs(n_components)
        self.register_buffer('own', own.clone())
        self.register_buffer('rival', rival.clone())
        self.register_buffer('valid', torch.ones_like(own, dtype=torch.bool))
        # pairs of identical components: their log-ratio is exactly 0 everywhere (not a rounding residue)
        same = (means[own] == means[rival]).all(-1) & (biases[own] == biases[rival])
        if covariance_type != 'tied':
            same &= (precisions[own] == precisions[rival]).flatten(2).all(-1)
        self.register_buffer('null', same)
        if covariance_type == 'tied':
            weight, root, kappa = NF.tied_root_points(
                self.means, precisions, biases, own.flatten(), rival.flatten()
            )
            self.register_buffer('weight', weight)
            self.register_buffer('root', root)
            self.register_buffer('kappa', kappa)
            self.register_buffer('offset', kappa - (weight * root).sum(1))
        elif covariance_type == 'full':
            root, slope, kappa = NF.segment_roots(self.means, precisions, biases, own.flatten(), rival.flatten())
            self.register_buffer('root', root)
            self.register_buffer('slope', slope)
            self.register_buffer('kappa', kappa)

    @property
    def linear(self):
        """Whether the log-ratios are linear in x (tied covariance)."""
        return self.covariance_type == 'tied'

    @property
    def n_features(self):
        return self.means.shape[1]

    @property
    def n_components(self):
        return self.means.shape[0]

    def _buffer(self, name, x):
        return getattr(self, name).to(device=x.device, dtype=x.dtype)

    def centred(self, x):
        """Inputs in the centred frame (validated), in the input's dtype and on its device."""
        _check_features(x, self.n_features, type(self).__name__)
        return x - self._buffer('centre', x)

    def scores(self, x):
        """Component log-scores ``s_k = log pi_k N(x|k)`` of centred inputs, (N, K); not for tied mixtures."""
        means, precisions, biases = (self._buffer(name, x) for name in ('means', 'precisions', 'biases'))
        if precisions.dim() == 2:
            return NF.diagonal_scores(x, means, precisions, biases)
        return NF.quadratic_scores(NF.quadratic_terms(x, means, precisions), biases)

    def log_ratios(self, x):
        """Pairwise log-ratios (N, K (K - 1)) of centred inputs, pairs flattened in row-major order."""
        if self.linear:
            return torch.nn.functional.linear(x, self._buffer('weight', x), self._buffer('offset', x))
        own, rival = self.own.flatten().to(x.device), self.rival.flatten().to(x.device)
        return NF.pair_margins(self.scores(x), own, rival).masked_fill(self.null.flatten().to(x.device), 0.0)

    def forward(self, x):
        x = self.centred(x)
        return self.log_ratios(x).reshape(x.shape[0], *self.own.shape)

    def extra_repr(self):
        return (f'covariance_type={self.covariance_type!r}, components={self.n_components}, '
                f'features={self.n_features}')


class SoftMinPool(torch.nn.Module):
    """Soft-min pool with stiffness 1 in the forward pass: ``f_c = -log sum_{valid l} exp(-h[c, l])``.

    On the pairwise log-ratios of a mixture, this is exactly the posterior log-odds
    ``log p(c|x) / (1 - p(c|x))``.

    Parameters
    ----------
    valid : torch.BoolTensor of shape (K, L)
        Which entries take part.
    beta : float
        The stiffness of the relevance redistribution through this pool (the
        :class:`~zennit_clusters.rules.SoftMin` rule reads it when no beta is given). The forward
        stiffness is always 1, the model's own.
    """
    def __init__(self, valid, beta=1.0):
        super().__init__()
        self.register_buffer('valid', torch.as_tensor(valid, dtype=torch.bool))
        self.beta = check_beta(beta, allow_none=False)

    def forward(self, h):
        return NF.soft_min(h, self.valid.to(h.device), 1.0)

    def extra_repr(self):
        return f'beta={self.beta:g}'


class NeuralizedMixture(torch.nn.Sequential, NeuralizedModel):
    """A Gaussian mixture rewritten as a two-layer network: pairwise log-ratios, then a soft-min pool.

    ``model(x)`` returns the (N, K) posterior log-odds ``f_c(x) = log p(c|x) / (1 - p(c|x))``, exactly (no
    approximation); its argmax is the mixture's ``predict``, and ``f_c(x) > 0`` iff ``p(c|x) > 1/2``.

    Parameters
    ----------
    ratio : GaussianLogRatio
    pool : SoftMinPool
    source : str
        Name of the estimator this was made from.

    Attributes
    ----------
    n_clusters : int
    n_features_in_ : int
    covariance_type : str
    beta : float
        Default stiffness of the relevance redistribution; 1 (the model's own soft-min) unless set.
    default_beta : float
        1.0: the stiffness :func:`~zennit_clusters.neuralize` gives a mixture when none is asked for,
        whatever training data it is given.
    """
    default_beta = 1.0

    def __init__(self, ratio, pool, source='GaussianMixture'):
        super().__init__()
        self.ratio = ratio
        self.pool = pool
        self.source = source

    @property
    def covariance_type(self):
        return self.ratio.covariance_type

    @property
    def cluster_centers(self):
        """(K, D) float64 component means, in input coordinates."""
        return self.ratio.means + self.ratio.centre

    @property
    def n_clusters(self):
        return self.ratio.n_components

    @property
    def n_features_in_(self):
        return self.ratio.n_features


# ---------------------------------------------------------------------------------------------------------
# Member-point networks (NEON.md section 3): Gaussian kernel k-means and labelled partitions
# ---------------------------------------------------------------------------------------------------------

__all__ += ['MemberMargin', 'LogMeanExpPool', 'NeuralizedMembers', 'member_epsilon']


def member_epsilon(dtype, scale):
    """Default stabiliser of member-pair margins: ``sqrt(machine epsilon of dtype) * scale`` (see
    :meth:`MemberMargin.default_epsilon`)."""
    return math.sqrt(torch.finfo(dtype).eps) * scale


class MemberMargin(torch.nn.Module):
    """Linear layer of all member-pair margins ``h[i, j] = |x - u_j|^2 - |x - u_i|^2 = s_i - s_j``.

    The first layer of NEON.md section 3 (``w_ij = 2 (u_i - u_j)``, ``b_ij = |u_j|^2 - |u_i|^2``), computed
    from the (N, M) member scores ``s = centroid_scores(x, u)`` and never as a (pairs, D) weight tensor.

    Parameters
    ----------
    members : torch.Tensor of shape (M, D)
        Member points, in input coordinates.
    member_group : torch.LongTensor of shape (M,)
        Cluster of each member.
    centre : torch.Tensor of shape (D,), optional
        Fixed point subtracted from inputs and members (NEON.md section 1); default :func:`frame_centre` of
        the members.

    Notes
    -----
    Input (N, D), output (N, M, M): axis 1 is the member i of the explained cluster, axis 2 the member j
    of a competitor. Pairs within one cluster are computed too (the pools and the min-pool give them no
    relevance). Memory is M^2 per input row, which is what a layer-by-layer Zennit pass needs; the
    closed form (:class:`zennit_clusters.explain.MemberExplainer`) needs only (members of one cluster) x M.
    """
    def __init__(self, members, member_group, centre=None):
        super().__init__()
        members = torch.as_tensor(members, dtype=torch.float64)
        if centre is None:
            centre = frame_centre(members)
        centre = torch.as_tensor(centre, dtype=torch.float64)
        self.register_buffer('centre', centre)
        self.register_buffer('members', members - centre)
        self.register_buffer('member_group', torch.as_tensor(member_group, dtype=torch.long))
        #: size of the scores (mean squared norm of the centred members): sets the default stabiliser
        self.scale = float((self.members ** 2).sum(1).mean()) or 1.0

    def default_epsilon(self, dtype):
        """Tie threshold of pair margins: ``sqrt(machine epsilon) * scale``.

        Margins are differences of scores of size ``scale``, so margins below ~machine epsilon x scale are
        rounding noise. Pairs with ``|h| < epsilon`` count as ties and carry no relevance (their per-feature
        midpoint terms do not sum to their relevance: see :func:`zennit_clusters.functional.tie_reciprocal`);
        all other pairs conserve exactly. The threshold is far above the rounding noise in both float32 and
        float64, so both dtypes find the same ties.
        """
        return member_epsilon(dtype, self.scale)

    @property
    def n_features(self):
        return self.members.shape[1]

    def centred(self, x):
        """Inputs and members in the centred frame, in the input's dtype and on its device."""
        _check_features(x, self.n_features, type(self).__name__)
        centre = self.centre.to(device=x.device, dtype=x.dtype)
        return x - centre, self.members.to(device=x.device, dtype=x.dtype)

    def pair_valid(self):
        """(M, M) pairs of members of different clusters (the others carry no relevance)."""
        return self.member_group.unsqueeze(1) != self.member_group.unsqueeze(0)

    def forward(self, x):
        x, members = self.centred(x)
        scores = NF.centroid_scores(x, members)
        return scores.unsqueeze(2) - scores.unsqueeze(1)

    def extra_repr(self):
        return f'members={self.members.shape[0]}, features={self.n_features}'


class LogMeanExpPool(torch.nn.Module):
    """Log-mean-exp pool over the members of each cluster, along one axis: ``LME^gamma_{m in C_k} h_m``.

    ``LME^gamma_{m in C} h_m = (1/gamma) log( (1/|C|) sum_{m in C} exp(gamma h_m) )``: a soft maximum for
    ``gamma > 0``, a soft minimum for ``gamma < 0`` (the second and third layers of NEON.md section 3).

    Parameters
    ----------
    groups, valid : torch.Tensor of shape (K, L)
        Padded member index of each cluster (:func:`zennit_clusters.functional.group_index`).
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
    (:class:`zennit_clusters.rules.LogMeanExpShares`); with the default ``relevance_gamma = gamma`` that is
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
        pooled = NF.group_logmeanexp(values, self.groups.to(h.device), self.valid.to(h.device), self.gamma)
        return pooled.movedim(-1, self.dim)

    def extra_repr(self):
        return (f'gamma={self.gamma:g}, relevance_gamma={self.relevance_gamma:g}, dim={self.dim}, '
                f'clusters={self.groups.shape[0]}')


class NeuralizedMembers(torch.nn.Sequential, NeuralizedModel):
    """A member-point cluster model as the four-layer network of NEON.md section 3.

    Cluster k is a set of member points u_j (j in C_k); x belongs to the cluster with the smallest soft-min
    distance ``D_k(x) = LME^{-gamma}_{j in C_k} |x - u_j|^2``, i.e. the largest mean Gaussian kernel
    ``mean_{j in C_k} exp(-gamma |x - u_j|^2)``. The layers are

        h[i, j] = |x - u_j|^2 - |x - u_i|^2       (MemberMargin, linear in x)
        LME^{+gamma} over i in C_c                (LogMeanExpPool, soft max-pool over the cluster's members)
        LME^{-gamma} over j in C_k                (LogMeanExpPool, soft min-pool over a competitor's members)
        min over k != c                           (MinPool)

    and ``f_c(x) = min_{k != c} D_k(x) - D_c(x)`` exactly: positive iff x is assigned to c.

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
    def __init__(self, margin, own_pool, rival_pool, pool, source='members', classes=None):
        super().__init__()
        self.margin = margin
        self.own_pool = own_pool
        self.rival_pool = rival_pool
        self.pool = pool
        self.source = source
        n_clusters = own_pool.groups.shape[0]
        self.classes_ = list(range(n_clusters)) if classes is None else list(classes)

    @classmethod
    def from_members(cls, members, labels, gamma, beta, source='members', classes=None, centre=None,
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
        groups, valid, counts = NF.group_index(labels, n_clusters)
        if bool((counts == 0).any()):
            raise ValueError(f'cluster {int((counts == 0).nonzero()[0, 0])} has no member points.')
        margin = MemberMargin(members, labels, centre)
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
        scores = NF.centroid_scores(x, members)
        pooled = NF.group_logmeanexp(scores, self.own_pool.groups.to(x.device), self.own_pool.valid.to(x.device),
                                     self.gamma)
        return NF.masked_min(pooled.unsqueeze(2) - pooled.unsqueeze(1), self.pool.valid.to(x.device))

    @property
    def members(self):
        """(M, D) float64 member points, in input coordinates."""
        return self.margin.members + self.margin.centre

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


class FeatureScaling(torch.nn.Module):
    """Per-feature affine map ``z = (x - offset) * scale``: the scalers of a preprocessing pipeline.

    Relevance passes through it unchanged (feature i of z is feature i of x), by zennit's ``Pass`` rule.
    The subtraction comes first so that float32 stays exact on data far from the origin.
    """
    def __init__(self, offset, scale):
        super().__init__()
        self.register_buffer('offset', torch.as_tensor(offset, dtype=torch.float64))
        self.register_buffer('scale', torch.as_tensor(scale, dtype=torch.float64))

    def forward(self, x):
        _check_features(x, self.offset.shape[0], type(self).__name__)
        return (x - self.offset.to(x)) * self.scale.to(x)


class NeuralizedPipeline(torch.nn.Sequential, NeuralizedModel):
    """A neuralized clustering model behind per-feature scaling: ``model(x) = head(scaling(x))``."""
    def __init__(self, scaling, head, source):
        super().__init__()
        self.scaling = scaling
        self.head = head
        self.source = source

    @property
    def n_clusters(self):
        return self.head.n_clusters

    @property
    def n_features_in_(self):
        return self.scaling.offset.shape[0]

    @property
    def cluster_centers(self):
        """(K, D) cluster centres in input (unscaled) coordinates."""
        return self.head.cluster_centers / self.scaling.scale + self.scaling.offset

    @property
    def beta(self):
        return self.head.beta

    @beta.setter
    def beta(self, value):
        self.head.beta = value
