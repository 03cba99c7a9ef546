"""Zennit rules of the centroid layers (docs/method.md, section 2): the midpoint rule and the soft-min split.

``SoftMin`` is also the rule of the mixtures' soft-min pool and of the member networks' min-pool.
"""
import torch

from ...equations import centroid_scores, pair_margins, softmin_shares
from ...validation import check_beta
from ..rule_base import InputRule, StabilizedRule
from .equations import competitor_columns, margin_relevance
from .layers import MinPool, PairwiseMargin

__all__ = ['Midpoint', 'SoftMin', 'layer_rules', 'contrast_output']


class Midpoint(StabilizedRule):
    """Midpoint rule for :class:`.PairwiseMargin` (deep Taylor, root on the boundary).

    ``R_i = sum_pairs w_i (x_i - m_i) / h * R_pair`` with ``m = (mu_own + mu_rival) / 2``: exactly
    conservative, ``sum_i R_i = sum_pairs R_pair``. Under a metric (the layer's ``directions``, k-means after a
    whitened PCA) ``w = 2 (a_own - a_rival)`` with the same midpoint (:func:`.metric_pair_relevance`).

    Parameters
    ----------
    epsilon : float, optional
        Absolute sign-preserving stabiliser of the division by the margin. Default: relative to the margin's
        scores, machine epsilon x ``(|s_own| + |s_rival|)`` (:func:`zennit_clusters.validation.sign_stabiliser`).
    """
    def backward(self, module, grad_input, grad_output):
        x = self.stored_tensors['input']
        relevance = grad_output[0]
        absolute, relative = self.stabiliser_for(x)
        with torch.no_grad():
            x_centred, centres = module.centred(x)
            own, rival, valid = (t.flatten().to(x.device) for t in (module.own, module.rival, module.valid))
            directions = module.directions_like(x)  # None for the Euclidean metric
            scores = centroid_scores(x_centred, centres, directions=directions)
            margins = pair_margins(scores, own, rival)
            magnitude = scores[:, own].abs() + scores[:, rival].abs()
            relevance = margin_relevance(
                x_centred, centres, own, rival, valid, margins, relevance.flatten(1), absolute,
                relative=relative, magnitude=magnitude, directions=directions
            )
        return (relevance,)


class SoftMin(InputRule):
    """Soft-min redistribution for :class:`.MinPool`.

    ``R_k = p_k R_out`` with ``p = softmax_k(-beta h_k)`` over the pooled entries: conservative,
    ``sum_k R_k = R_out``. The forward pass stays the hard minimum.

    Parameters
    ----------
    beta : float or None
        Stiffness >= 0; ``math.inf`` for the nearest competitor only; None (default) for the value the
        model was neuralized with (``MinPool.beta``).
    """
    def __init__(self, beta=None):
        super().__init__()
        self.beta = check_beta(beta)

    def copy(self):
        return self.__class__(beta=self.beta)

    def backward(self, module, grad_input, grad_output):
        margins = self.stored_tensors['input']
        beta = module.beta if self.beta is None else self.beta
        with torch.no_grad():
            shares = softmin_shares(margins, module.valid.to(margins.device), beta)
        return (shares * grad_output[0].unsqueeze(-1),)


def contrast_output(model, cluster, competitor):
    """``attr_output`` for a Zennit attributor on ``model.margin`` that explains the margin ``h_ck`` of "c rather
    than k" (docs/method.md, section 7), as ``explain(model, X, cluster=..., contrast=k)`` does in closed form.

    >>> with Gradient(model.margin, ClusterComposite()) as attributor:
    ...     _, R = attributor(x, attr_output=contrast_output(model, labels, k))   # R.sum(1) == h_ck(x)

    Parameters
    ----------
    model : NeuralizedCentroids
    cluster : int or torch.LongTensor of shape (N,)
        The explained cluster c of every row (e.g. the labels).
    competitor : int or torch.LongTensor of shape (N,)
        The competitor k of every row; rows with k == c get no relevance (h_cc is identically zero).

    Returns
    -------
    callable
        ``margins (N, K, L) -> margins`` kept at each row's pair (c, k) only.
    """
    margin = model.margin
    column, _ = competitor_columns(margin.own, margin.rival, margin.valid, model.leaves)

    def select(margins):
        n_rows = margins.shape[0]
        own = torch.as_tensor(cluster, device=margins.device).expand(n_rows)
        rival = torch.as_tensor(competitor, device=margins.device).expand(n_rows)
        pair = column.to(margins.device)[own, rival]
        mask = torch.zeros_like(margins)
        rows = torch.arange(n_rows, device=margins.device)
        mask[rows, own, pair.clamp(min=0)] = (pair >= 0).to(margins.dtype)
        return margins * mask
    return select


def layer_rules(beta, epsilon):
    """The rules of the centroid layers, for :func:`zennit_clusters.cluster_layer_map`."""
    return [(PairwiseMargin, Midpoint(epsilon=epsilon)), (MinPool, SoftMin(beta=beta))]
