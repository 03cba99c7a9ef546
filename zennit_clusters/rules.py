"""Zennit rules for the layers of neuralized clustering models (NEON.md section 2).

Both rules are plain :class:`zennit.core.Hook` subclasses with the three-argument ``forward`` and the
relevance computed in ``backward``: that form behaves the same on zennit 0.5.1 and 1.0.0, whereas
``BasicHook`` parameter swapping (needed for a per-pair reference point) does not.
"""
import torch
from zennit.core import Hook

from . import functional as NF
from .validation import check_beta

__all__ = ['Midpoint', 'SoftMin', 'default_epsilon']


def default_epsilon(dtype):
    """Stabiliser of the division by a margin: the machine epsilon of ``dtype``."""
    return torch.finfo(dtype).eps


class InputRule(Hook):
    """A rule that keeps its layer's input from the forward pass, for the relevance in ``backward``."""
    def forward(self, module, input, output):
        self.stored_tensors['input'] = input[0].detach()


class StabilizedRule(InputRule):
    """A rule that divides by its layer's outputs, with a sign-preserving stabiliser.

    Parameters
    ----------
    epsilon : float, optional
        The stabiliser; default (None) the machine epsilon of the input's dtype.
    """
    def __init__(self, epsilon=None):
        super().__init__()
        self.epsilon = epsilon

    def copy(self):
        return self.__class__(epsilon=self.epsilon)

    def epsilon_for(self, x):
        return default_epsilon(x.dtype) if self.epsilon is None else self.epsilon


class Midpoint(StabilizedRule):
    """Midpoint rule for :class:`~zennit_clusters.layers.PairwiseMargin` (deep Taylor, root on the boundary).

    ``R_i = sum_pairs w_i (x_i - m_i) / h * R_pair`` with ``m = (mu_own + mu_rival) / 2``: exactly
    conservative, ``sum_i R_i = sum_pairs R_pair``.

    Parameters
    ----------
    epsilon : float, optional
        Sign-preserving stabiliser of the division by the margin. Default: machine epsilon of the input.
    """
    def backward(self, module, grad_input, grad_output):
        x = self.stored_tensors['input']
        relevance = grad_output[0]
        epsilon = self.epsilon_for(x)
        with torch.no_grad():
            x_centred, centres = module.centred(x)
            own, rival, valid = (t.flatten().to(x.device) for t in (module.own, module.rival, module.valid))
            margins = NF.pair_margins(NF.centroid_scores(x_centred, centres), own, rival)
            relevance = NF.margin_relevance(
                x_centred, centres, own, rival, valid, margins, relevance.flatten(1), epsilon
            )
        return (relevance,)


class SoftMin(InputRule):
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

    def backward(self, module, grad_input, grad_output):
        margins = self.stored_tensors['input']
        beta = module.beta if self.beta is None else self.beta
        with torch.no_grad():
            shares = NF.softmin_shares(margins, module.valid.to(margins.device), beta)
        return (shares * grad_output[0].unsqueeze(-1),)


__all__ += ['LogRatioSplit', 'mixture_relevance']


def mixture_relevance(module, x, pair_relevance, epsilon):
    """Relevance of the pairwise log-ratios of a :class:`~zennit_clusters.layers.GaussianLogRatio` on the features.

    Parameters
    ----------
    module : GaussianLogRatio
    x : torch.Tensor of shape (N, D)
        Inputs (not centred).
    pair_relevance : torch.Tensor of shape (N, K, K - 1)
    epsilon : float
        Stabiliser of the division by a log-ratio.

    Returns
    -------
    relevance : torch.Tensor of shape (N, D)
    constant : torch.Tensor of shape (N,)
        The relevance of the x-independent part of the log-ratios (and of pairs with ``h = 0``, which no
        feature can carry); ``relevance.sum(1) + constant`` equals ``pair_relevance`` summed.
    """
    x = module.centred(x)
    h = module.log_ratios(x)
    factors, remainder = NF.stabilized_factors(pair_relevance.flatten(1), h, epsilon)
    if module.linear:
        weight, root, kappa = (module._buffer(name, x) for name in ('weight', 'root', 'kappa'))
        return NF.root_point_relevance(x, weight, root, factors), factors @ kappa + remainder
    means, precisions, biases = (module._buffer(name, x) for name in ('means', 'precisions', 'biases'))
    if module.covariance_type == 'full':
        root, slope, kappa = (module._buffer(name, x) for name in ('root', 'slope', 'kappa'))
        n_rows, n_pairs = factors.shape
        own, rival = (index.flatten().to(x.device).expand(n_rows, n_pairs) for index in (module.own, module.rival))
        relevance = NF.segment_relevance(x, NF.precision_products(x, precisions), own, rival,
                                         root.expand(n_rows, *root.shape), slope.expand(n_rows, *slope.shape), factors)
        return relevance, factors @ kappa + remainder
    weights = NF.pair_weights(factors, module.own.flatten().to(x.device), module.rival.flatten().to(x.device),
                              module.n_components)
    return NF.quadratic_relevance(x, means, precisions, weights), NF.mixture_constant(weights, biases) + remainder


class LogRatioSplit(StabilizedRule):
    """Rule for :class:`~zennit_clusters.layers.GaussianLogRatio`: each log-ratio split over the features.

    ``R_i = sum_pairs (R_pair / h_pair) z_i`` where ``h_pair = sum_i z_i + const``:

    - tied covariance (h linear): ``z_i = w_i (x_i - x0_i)`` with the root point x0 of
      :func:`~zennit_clusters.functional.tied_root_points`; const = 0, exactly conservative on the features.
    - diagonal and spherical covariance (h a sum of one-feature terms): ``z_i = 1/2 (phi_rival,i -
      phi_own,i)``, with ``phi_m,i = p_mi (x_i - mu_mi)^2``
      (:func:`~zennit_clusters.functional.quadratic_terms`); ``const`` is the log-ratio of the weights and
      determinants.
    - full covariance (h quadratic with cross terms): ``z_i = (x - x0)_i [grad h((x + x0) / 2)]_i``, the
      exact integrated gradient from the root x0 on the line through the two means
      (:func:`~zennit_clusters.functional.segment_roots`, :func:`~zennit_clusters.functional.segment_relevance`);
      const = h(x0), zero unless that line has no root.

    The relevance of the constants is not passed to the input (like a bias): ``sum_i R_i = f_c - R_const``,
    with ``R_const`` from :func:`~zennit_clusters.explain.explain_with_constant`.

    Parameters
    ----------
    epsilon : float, optional
        Sign-preserving stabiliser of the division by the log-ratio; default machine epsilon of the input.
    """
    def backward(self, module, grad_input, grad_output):
        x = self.stored_tensors['input']
        epsilon = self.epsilon_for(x)
        with torch.no_grad():
            relevance, _ = mixture_relevance(module, x, grad_output[0], epsilon)
        return (relevance,)


# ---------------------------------------------------------------------------------------------------------
# Member-point networks (NEON.md section 3)
# ---------------------------------------------------------------------------------------------------------

__all__ += ['MemberMidpoint', 'LogMeanExpShares']


class MemberMidpoint(StabilizedRule):
    """Midpoint rule for :class:`~zennit_clusters.layers.MemberMargin`, root ``m_ij = (u_i + u_j) / 2``.

    ``R_d = sum_{i, j} w_ij,d (x_d - m_ij,d) / h_ij * R_ij``: exactly conservative, ``sum_d R_d = sum_ij R_ij``,
    except for ties (``|h_ij| < epsilon``), which the rule cannot split and which carry no relevance (pairs
    within one cluster carry none either).

    Parameters
    ----------
    epsilon : float, optional
        Tie threshold of the margins. Default :meth:`~zennit_clusters.layers.MemberMargin.default_epsilon`:
        sqrt(machine epsilon of the input) x the members' mean squared norm.
    """
    def backward(self, module, grad_input, grad_output):
        x = self.stored_tensors['input']
        epsilon = module.default_epsilon(x.dtype) if self.epsilon is None else self.epsilon
        with torch.no_grad():
            x_centred, members = module.centred(x)
            scores = NF.centroid_scores(x_centred, members)
            margins = scores.unsqueeze(2) - scores.unsqueeze(1)
            own = torch.arange(members.shape[0], device=x.device)
            valid = module.pair_valid().to(x.device)
            relevance = NF.block_pair_relevance(x_centred, members, own, valid, margins, grad_output[0], epsilon)
        return (relevance,)


class LogMeanExpShares(InputRule):
    """Soft redistribution for :class:`~zennit_clusters.layers.LogMeanExpPool`.

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
            pooled = NF.group_logmeanexp(values, module.groups.to(device), module.valid.to(device), kappa)
            shares = NF.group_shares(values, pooled, member_group, module.counts.to(device), kappa)
            relevance = shares * relevance.index_select(-1, member_group)
        return (relevance.movedim(-1, module.dim),)
