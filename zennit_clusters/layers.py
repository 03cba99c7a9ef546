"""Torch modules of neuralized clustering models.

Each layer of NEON.md is its own leaf module with one tensor in and one tensor out, so that Zennit can
attach a rule to it; parameters are buffers (a neuralized model is not trained). The arithmetic is in
:mod:`zennit_clusters.functional`.
"""
import math

import torch

from . import functional as NF

__all__ = ['NeuralizedModel', 'PairwiseMargin', 'MinPool', 'NeuralizedCentroids', 'check_beta', 'flat_pairs']


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
    representative points, used for the default stiffness), a settable ``beta`` and ``source``.
    """


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
        exact on data far from the origin (NEON.md section 1). Default: the mean of the centres,
        rounded to float32 so that the float32 subtraction is exact.

    Notes
    -----
    Input (N, D), output (N, K, L). Margins of padding pairs are exactly zero.
    """
    def __init__(self, centres, own, rival, valid, centre=None):
        super().__init__()
        centres = torch.as_tensor(centres, dtype=torch.float64)
        if centre is None:
            centre = centres.mean(0).to(torch.float32).to(torch.float64)
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

    @property
    def beta(self):
        return self.pool.beta

    @beta.setter
    def beta(self, value):
        self.pool.beta = check_beta(value, allow_none=False)

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


def check_beta(beta, allow_none=True):
    """Validate a soft-min stiffness: a float >= 0 (``math.inf`` allowed), or None where allowed."""
    if beta is None:
        if allow_none:
            return None
        raise TypeError('beta must be a float >= 0 (or math.inf), got None.')
    if isinstance(beta, (bool, str, bytes)):
        raise TypeError(f'beta must be a float >= 0 (or math.inf), got {type(beta).__name__} {beta!r}.')
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        raise TypeError(f'beta must be a float >= 0 (or math.inf), got {type(beta).__name__}.') from None
    if math.isnan(beta) or beta < 0:
        raise ValueError(f'beta must be >= 0 (or math.inf for nearest-competitor only), got {beta}.')
    return beta
