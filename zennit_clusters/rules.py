"""Zennit rules for the layers of neuralized clustering models (NEON.md section 2).

Both rules are plain :class:`zennit.core.Hook` subclasses with the three-argument ``forward`` and the
relevance computed in ``backward``: that form behaves the same on zennit 0.5.1 and 1.0.0, whereas
``BasicHook`` parameter swapping (needed for a per-pair reference point) does not.
"""
import torch
from zennit.core import Hook

from . import functional as NF
from .layers import check_beta

__all__ = ['Midpoint', 'SoftMin', 'default_epsilon']


def default_epsilon(dtype):
    """Stabiliser of the division by a margin: the machine epsilon of ``dtype``."""
    return torch.finfo(dtype).eps


class Midpoint(Hook):
    """Midpoint rule for :class:`~zennit_clusters.layers.PairwiseMargin` (deep Taylor, root on the boundary).

    ``R_i = sum_pairs w_i (x_i - m_i) / h * R_pair`` with ``m = (mu_own + mu_rival) / 2``: exactly
    conservative, ``sum_i R_i = sum_pairs R_pair``.

    Parameters
    ----------
    epsilon : float, optional
        Sign-preserving stabiliser of the division by the margin. Default: machine epsilon of the input.
    """
    def __init__(self, epsilon=None):
        super().__init__()
        self.epsilon = epsilon

    def copy(self):
        return self.__class__(epsilon=self.epsilon)

    def forward(self, module, input, output):
        self.stored_tensors['input'] = input[0].detach()

    def backward(self, module, grad_input, grad_output):
        x = self.stored_tensors['input']
        relevance = grad_output[0]
        epsilon = default_epsilon(x.dtype) if self.epsilon is None else self.epsilon
        with torch.no_grad():
            x_centred, centres = module.centred(x)
            own, rival, valid = (t.flatten().to(x.device) for t in (module.own, module.rival, module.valid))
            margins = NF.pair_margins(NF.centroid_scores(x_centred, centres), own, rival)
            relevance = NF.margin_relevance(
                x_centred, centres, own, rival, valid, margins, relevance.flatten(1), epsilon
            )
        return (relevance,)


class SoftMin(Hook):
    """Soft-min redistribution for :class:`~zennit_clusters.layers.MinPool`.

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

    def forward(self, module, input, output):
        self.stored_tensors['input'] = input[0].detach()

    def backward(self, module, grad_input, grad_output):
        margins = self.stored_tensors['input']
        beta = module.beta if self.beta is None else self.beta
        with torch.no_grad():
            shares = NF.softmin_shares(margins, module.valid.to(margins.device), beta)
        return (shares * grad_output[0].unsqueeze(-1),)
