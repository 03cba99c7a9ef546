"""Zennit rules of the member-point layers; the min-pool over competitors takes the centroid family's ``SoftMin``."""
import torch

from ...equations import centroid_scores
from ..rule_base import InputRule, StabilizedRule
from .equations import block_pair_relevance, group_logmeanexp, group_shares
from .layers import LogMeanExpPool, MemberMargin

__all__ = ['MemberMidpoint', 'LogMeanExpShares', 'layer_rules']


class MemberMidpoint(StabilizedRule):
    """Midpoint rule for :class:`.MemberMargin`, root ``m_ij = (u_i + u_j) / 2``.

    ``R_d = sum_{i, j} w_ij,d (x_d - m_ij,d) / h_ij * R_ij``: exactly conservative, ``sum_d R_d = sum_ij R_ij``,
    except for ties (``|h_ij| < epsilon``), which the rule cannot split and which carry no relevance (pairs
    within one cluster carry none either).

    Parameters
    ----------
    epsilon : float, optional
        Tie threshold of the margins. Default :meth:`.MemberMargin.tie_threshold`:
        sqrt(machine epsilon of the input) x the members' mean squared norm.
    """
    def backward(self, module, grad_input, grad_output):
        x = self.stored_tensors['input']
        threshold = module.tie_threshold(x.dtype) if self.epsilon is None else self.epsilon
        with torch.no_grad():
            x_centred, members = module.centred(x)
            scores = centroid_scores(x_centred, members)
            margins = scores.unsqueeze(2) - scores.unsqueeze(1)
            own = torch.arange(members.shape[0], device=x.device)
            valid = module.pair_valid().to(x.device)
            relevance = block_pair_relevance(x_centred, members, own, valid, margins, grad_output[0], threshold)
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
            kappa = module.relevance_gamma
            pooled = group_logmeanexp(values, module.groups.to(device), module.valid.to(device), kappa)
            shares = group_shares(values, pooled, member_group, module.counts.to(device), kappa)
            relevance = shares * relevance.index_select(-1, member_group)
        return (relevance.movedim(-1, module.dim),)


def layer_rules(beta, epsilon):
    """The rules of the member-point layers (their min-pool is the centroid family's :class:`MinPool`)."""
    return [(MemberMargin, MemberMidpoint(epsilon=epsilon)), (LogMeanExpPool, LogMeanExpShares())]
