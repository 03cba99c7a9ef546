"""Torch modules of neuralized centroid models: pairwise margins, then a min-pool (docs/method.md, section 1).

Each layer is its own leaf module with one tensor in and one tensor out, so that Zennit can attach a rule to it;
parameters are buffers (a neuralized model is not trained). The arithmetic is in
:mod:`zennit_clusters.equations` and :mod:`zennit_clusters.families.centroids.equations`.
"""
import torch

from ...core import CentredFrameLayer, NeuralizedModel
from ...equations import centroid_scores, masked_min, pair_margins
from ...validation import check_layer_input, frame_origin
from .equations import flat_logits, top_two

__all__ = ['PairwiseMargin', 'MinPool', 'NeuralizedCentroids', 'flat_pairs', 'metric_directions']


class PairwiseMargin(CentredFrameLayer):
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
    origin : torch.Tensor of shape (D,), optional
        A fixed point subtracted from inputs and centres before computing scores, which keeps float32
        exact on data far from the origin (docs/method.md, section 1). Default: :func:`.frame_origin` of the centres.
    metric : torch.Tensor of shape (R, D), optional
        A factor W of a positive semi-definite metric ``M = W^T W``: the margins are then
        ``|x - mu_rival|_M^2 - |x - mu_own|_M^2 = |W (x - mu_rival)|^2 - |W (x - mu_own)|^2`` (k-means on a
        whitened PCA, ``W = diag(1 / sqrt(explained_variance_)) components_``; docs/pipelines.md). Kept as the
        buffer ``directions``, ``a_m = M (mu_m - origin)`` (M, D), and None (the Euclidean metric, ``a = mu``)
        by default.

    Notes
    -----
    Input (N, D), output (N, K, L). Margins of padding pairs are exactly zero. With a metric each margin is
    still linear in x, ``h = 2 (a_own - a_rival)^T x - a_own^T mu_own + a_rival^T mu_rival``, and the midpoint
    ``(mu_own + mu_rival) / 2`` still lies on its boundary.
    """
    def __init__(self, centres, own, rival, valid, origin=None, metric=None):
        super().__init__()
        centres = torch.as_tensor(centres, dtype=torch.float64)
        if origin is None:
            origin = frame_origin(centres)
        origin = torch.as_tensor(origin, dtype=torch.float64)
        self.register_buffer('origin', origin)
        self.register_buffer('centres', centres - origin)
        self.register_buffer('directions', None if metric is None else metric_directions(self.centres, metric))
        # own copies: expanded index views (flat_pairs) could not receive a loaded state dict
        self.register_buffer('own', torch.as_tensor(own, dtype=torch.long).clone())
        self.register_buffer('rival', torch.as_tensor(rival, dtype=torch.long).clone())
        self.register_buffer('valid', torch.as_tensor(valid, dtype=torch.bool))

    @property
    def n_features(self):
        return self.centres.shape[1]

    def centred(self, x):
        """Inputs and centres in the centred frame, in the input's dtype and on its device."""
        check_layer_input(x, self.n_features, type(self).__name__)
        origin = self.origin.to(device=x.device, dtype=x.dtype)
        return x - origin, self.centres.to(device=x.device, dtype=x.dtype)

    def __setstate__(self, state):
        # modules pickled before the metric existed have no directions: they are Euclidean
        state.get('_buffers', {}).setdefault('directions', None)
        super().__setstate__(state)

    def directions_like(self, x):
        """The metric's directions ``a_m`` in ``x``'s dtype and on its device, or None (Euclidean)."""
        return None if self.directions is None else self.directions.to(device=x.device, dtype=x.dtype)

    def forward(self, x):
        x, centres = self.centred(x)
        scores = centroid_scores(x, centres, directions=self.directions_like(x))
        margins = pair_margins(scores, self.own.flatten(), self.rival.flatten())
        return margins.reshape(x.shape[0], *self.own.shape)

    def extra_repr(self):
        metric = '' if self.directions is None else ', metric=True'
        return f'centres={self.centres.shape[0]}, features={self.n_features}, pairs={tuple(self.own.shape)}{metric}'


def metric_directions(centres, metric):
    """``a_m = W^T W mu_m`` for centred centres (M, D) and a metric factor W (R, D), in float64."""
    metric = torch.as_tensor(metric, dtype=torch.float64)
    if metric.dim() != 2 or metric.shape[1] != centres.shape[1] or not bool(torch.isfinite(metric).all()):
        raise ValueError(f'metric must be a finite (R, {centres.shape[1]}) factor W of M = W^T W, got shape '
                         f'{tuple(metric.shape)}.')
    return (centres @ metric.T) @ metric


class MinPool(torch.nn.Module):
    """Min-pool over the last axis, over the entries marked valid: ``f_c = min_l h[c, l]``.

    Parameters
    ----------
    valid : torch.BoolTensor of shape (K, L)
        Which entries take part in the minimum.
    beta : float
        The soft-min stiffness used when relevance is redistributed through this pool and no rule
        overrides it (see :class:`.SoftMin`). The forward pass is
        always the hard minimum.
    """
    def __init__(self, valid, beta):
        super().__init__()
        self.register_buffer('valid', torch.as_tensor(valid, dtype=torch.bool))
        self.beta = float(beta)

    def forward(self, h):
        return masked_min(h, self.valid.to(h.device))

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
        return self.margin.centres[self.leaves] + self.margin.origin

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

    def evidence(self, x):
        """The (N, K) evidence, for k-means from the two largest scores (O(N K) memory where the layered forward
        holds the (N, K, K - 1) margins); the same values, since ``min_k (s_c - s_k) = s_c - max_k s_k``."""
        if not self.is_flat:
            return self(x)
        x, centres = self.margin.centred(x)
        scores = centroid_scores(x, centres, directions=self.margin.directions_like(x))
        _, first, second = top_two(scores)
        return flat_logits(scores, first, second)

    @property
    def evidence_row_elements(self):
        """(N, K) scores for k-means (:meth:`evidence`), the margin graph's pairs otherwise."""
        return self.n_clusters if self.is_flat else max(self.n_clusters, int(self.margin.own.numel()))

    @property
    def n_features_in_(self):
        return self.margin.n_features

    @property
    def has_metric(self):
        """Whether the margins use a metric of their own (k-means after a whitened PCA), not the Euclidean one."""
        return self.margin.directions is not None

    @classmethod
    def from_pairs(cls, centres, own, rival, valid, beta, source, leaves=None, origin=None, metric=None):
        """Build the network from a margin graph (see :mod:`zennit_clusters.families.centroids.equations`);
        ``metric`` as in :class:`PairwiseMargin`."""
        valid = torch.as_tensor(valid, dtype=torch.bool)
        own = torch.as_tensor(own, dtype=torch.long)
        rival = torch.where(valid, torch.as_tensor(rival, dtype=torch.long), own)
        return cls(PairwiseMargin(centres, own, rival, valid, origin, metric), MinPool(valid, beta), source, leaves)


def flat_pairs(n_clusters):
    """The k-means margin graph: cluster c against every other centroid, ``(own, rival)`` of shape (K, K-1)."""
    index = torch.arange(n_clusters)
    own = index.unsqueeze(1).expand(n_clusters, n_clusters - 1)
    others = index.unsqueeze(0).expand(n_clusters, n_clusters)
    rival = others[~torch.eye(n_clusters, dtype=torch.bool)].reshape(n_clusters, n_clusters - 1)
    return own, rival
