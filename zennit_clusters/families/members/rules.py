"""Zennit rules of the member-point layers; the min-pool over competitors takes the centroid family's ``SoftMin``."""
import torch

from ...equations import centroid_scores
from ...validation import tie_stabiliser
from ..rule_base import InputRule, StabilizedRule
from .equations import block_pair_relevance, group_shares
from .layers import LogMeanExpPool, MemberMargin
from .noise import CoreRadius, radius_relevance, radius_terms

__all__ = ['MemberMidpoint', 'LogMeanExpShares', 'RadiusTerms', 'layer_rules']


class MemberMidpoint(StabilizedRule):
    """Midpoint rule for :class:`.MemberMargin`, root ``m_ij = (u_i + u_j) / 2``.

    ``R_d = sum_{i, j} w_ij,d (x_d - m_ij,d) / h_ij * R_ij``: exactly conservative, ``sum_d R_d = sum_ij R_ij``,
    except for ties (``|h_ij| < epsilon``), which the rule cannot split and which carry no relevance (pairs
    within one cluster carry none either).

    Parameters
    ----------
    epsilon : float, optional
        Absolute tie threshold of the margins. Default (:func:`zennit_clusters.validation.tie_stabiliser`):
        sqrt(machine epsilon of the input) x (the members' mean squared norm + ``|s_i| + |s_j|`` of the pair).
    """
    def backward(self, module, grad_input, grad_output):
        x = self.stored_tensors['input']
        absolute, relative = tie_stabiliser(x.dtype, module.scale, self.epsilon)
        with torch.no_grad():
            x_centred, members = module.centred(x)
            scores = centroid_scores(x_centred, members)
            margins = scores.unsqueeze(2) - scores.unsqueeze(1)
            magnitude = scores.abs().unsqueeze(2) + scores.abs().unsqueeze(1) if relative else None
            own = torch.arange(members.shape[0], device=x.device)
            valid = module.pair_valid().to(x.device)
            relevance = block_pair_relevance(x_centred, members, own, valid, margins, grad_output[0], absolute,
                                             relative, magnitude)
        return (relevance,)


class LogMeanExpShares(InputRule):
    """Soft redistribution for :class:`.LogMeanExpPool`.

    ``R_m = softmax_{m' in C_k}(kappa h_m')_m R_k`` for member m of cluster k, with the pool's
    ``relevance_gamma`` kappa (by default its gamma: the pool's own gradient): shares that sum to one, so
    ``sum_m R_m = sum_k R_k`` exactly. The LME is not homogeneous, so this is not a Taylor decomposition of
    the pool; it passes each cluster's relevance on in proportion to each member's weight in the pool.
    """
    def backward(self, module, grad_input, grad_output):
        values = self.stored_tensors['input'].movedim(module.dim, -1)
        relevance = grad_output[0].movedim(module.dim, -1)
        device = values.device
        member_group = module.member_group.to(device)
        with torch.no_grad():
            shares = group_shares(values, module.groups.to(device), module.valid.to(device), member_group,
                                  module.relevance_gamma)
            relevance = shares * relevance.index_select(-1, member_group)
        return (relevance.movedim(-1, module.dim),)


class RadiusTerms(StabilizedRule):
    """Rule of :class:`.CoreRadius` (DBSCAN's radius evidence ``e = eps^2 - |x - v*|^2``).

    ``R_i = R_e t_i / e`` with the per-feature terms ``t_i = eps^2 / D - (x_i - v*_i)^2``, which sum to ``e``:
    conservative. ``epsilon`` as in :class:`.Midpoint` (default relative to ``eps^2 + |x - v*|^2``).
    """
    def backward(self, module, grad_input, grad_output):
        x = self.stored_tensors['input']
        absolute, relative = self.stabiliser_for(x)
        with torch.no_grad():
            terms, distance = radius_terms(*module.centred(x), module.radius, module.metric_for(x))
            relevance = radius_relevance(terms, terms.sum(1), grad_output[0], absolute, relative,
                                         module.radius ** 2 + distance)
        return (relevance,)


def layer_rules(beta, epsilon):
    """The rules of the member-point layers (their min-pools are the centroid family's :class:`MinPool`)."""
    return [(MemberMargin, MemberMidpoint(epsilon=epsilon)), (LogMeanExpPool, LogMeanExpShares()),
            (CoreRadius, RadiusTerms(epsilon=epsilon))]
