"""DBSCAN's noise rule as a layer of the member-point network (docs/method.md, section 3, "Noise").

DBSCAN labels a new point with a cluster when a core sample lies within ``eps`` of it, and as noise (-1)
otherwise. With ``v*`` the nearest core sample (of any cluster), the *radius evidence*

    e(x) = eps^2 - |x - v*|^2 = sum_i t_i(x),     t_i(x) = eps^2 / D - (x_i - v*_i)^2

is >= 0 exactly when the point is not noise. The network's cluster evidence becomes
``g_c(x) = min(f_c(x), e(x))``: since the assigned cluster has ``f_c >= 0``, every ``g_c`` is negative exactly
when ``e < 0``, so "all logits negative" is DBSCAN's noise rule, and otherwise the largest ``g_c`` is the member
network's cluster. Relevance passes the min with the soft-min shares (as every min-pool) and leaves ``e`` by its
per-feature terms ``t_i``: ``R_i = R_e t_i / e``, conservative because ``sum_i t_i = e`` by construction.
"""
import torch

from ...core import CentredFrameLayer
from ...equations import centroid_scores, sign_stabilize
from ...validation import check_layer_input

__all__ = ['CoreRadius', 'radius_terms', 'radius_relevance', 'noise_labels', 'NOISE_LABEL']

#: the label of noise points, as in scikit-learn's ``labels_``
NOISE_LABEL = -1


def radius_terms(x, core, radius, metric=None):
    """Per-feature terms ``t_i = radius^2 / D - (x_i - v*_i)^2`` of the radius evidence, and ``|x - v*|^2``.

    With a ``metric`` M (a DBSCAN fitted after an orthonormal projection, lifted to its input space: M = C^T C),
    the distance is ``d^T M d`` (``d = x - v*``) and the terms ``t_i = radius^2 / D - d_i (M d)_i``, summing to
    ``radius^2 - d^T M d``; the nearest core sample is the Euclidean one, which is the nearest in the metric
    when every core sample lies in the projection's affine row space (docs/pipelines.md).

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Centred inputs.
    core : torch.Tensor of shape (C, D)
        Centred core samples.
    radius : float
        DBSCAN's ``eps``.
    metric : torch.Tensor of shape (D, D), optional
        Symmetric positive semi-definite; default the identity.

    Returns
    -------
    terms : torch.Tensor of shape (N, D)
        Summing to ``e = radius^2 - |x - v*|^2`` over the features.
    distance : torch.Tensor of shape (N,)
        The squared distance to the nearest core sample ``v*`` (computed feature by feature, not from scores).
    """
    nearest = centroid_scores(x, core).argmax(1)
    difference = x - core.index_select(0, nearest)
    squares = difference * difference if metric is None else difference * (difference @ metric)
    return (radius * radius) / x.shape[1] - squares, squares.sum(1)


def radius_relevance(terms, evidence, relevance, epsilon, relative, magnitude):
    """``R_i = R t_i / (e + stabiliser sign(e))``: the radius evidence's relevance on the features.

    Parameters
    ----------
    terms : torch.Tensor of shape (N, D)
        From :func:`radius_terms`.
    evidence : torch.Tensor of shape (N,)
        ``e``, the sum of the terms.
    relevance : torch.Tensor of shape (N,)
        Relevance arriving at ``e``.
    epsilon, relative : float
        The stabiliser (:func:`zennit_clusters.validation.sign_stabiliser`).
    magnitude : torch.Tensor of shape (N,)
        ``radius^2 + |x - v*|^2``, the size of the rounding error of ``e``.

    Returns
    -------
    torch.Tensor of shape (N, D)
    """
    factor = relevance / sign_stabilize(evidence, epsilon, relative, magnitude)
    return terms * factor.unsqueeze(1)


def noise_labels(logits, label):
    """``label`` with -1 wherever every logit is negative (DBSCAN's noise rule, see the module docstring)."""
    return torch.where(logits.amax(1) < 0, torch.full_like(label, NOISE_LABEL), label)


class CoreRadius(CentredFrameLayer):
    """The radius evidence ``e(x) = eps^2 - |x - v*|^2`` to the nearest core sample (DBSCAN's rule).

    Parameters
    ----------
    core : torch.Tensor of shape (C, D)
        DBSCAN's core samples (``components_``), in input coordinates.
    radius : float
        DBSCAN's ``eps``.
    origin : torch.Tensor of shape (D,)
        The origin of the member network's centred frame.
    metric : torch.Tensor of shape (D, D), optional
        The distance ``d^T M d`` of :func:`radius_terms`; default Euclidean.

    Notes
    -----
    Input (N, D), output (N,). Every core sample is kept (no cap as for member points): the rule is exact.
    """
    def __init__(self, core, radius, origin, metric=None):
        super().__init__()
        origin = torch.as_tensor(origin, dtype=torch.float64)
        self.register_buffer('origin', origin)
        self.register_buffer('core', torch.as_tensor(core, dtype=torch.float64) - origin)
        self.radius = float(radius)
        if metric is not None:
            metric = torch.as_tensor(metric, dtype=torch.float64)
            if tuple(metric.shape) != (self.core.shape[1],) * 2:
                raise ValueError(f'the metric must be ({self.core.shape[1]}, {self.core.shape[1]}), got '
                                 f'{tuple(metric.shape)}.')
        self.register_buffer('metric', metric)

    def metric_for(self, x):
        """The metric in x's dtype and device, or None (Euclidean; also for layers saved before metrics existed)."""
        metric = getattr(self, 'metric', None)
        return None if metric is None else metric.to(device=x.device, dtype=x.dtype)

    def centred(self, x):
        check_layer_input(x, self.core.shape[1], type(self).__name__)
        return x - self.origin.to(device=x.device, dtype=x.dtype), self.core.to(device=x.device, dtype=x.dtype)

    def forward(self, x):
        return radius_terms(*self.centred(x), self.radius, self.metric_for(x))[0].sum(1)

    def extra_repr(self):
        return f'core_samples={self.core.shape[0]}, radius={self.radius:g}'
