"""The Zennit rule of the mixtures' log-ratio layer; the soft-min pool takes the centroid family's ``SoftMin``."""
import torch

from ..centroids.rules import SoftMin
from ..rule_base import StabilizedRule
from .equations import stabilized_factors
from .layers import GaussianLogRatio, SoftMinPool

__all__ = ['LogRatioSplit', 'mixture_relevance', 'layer_rules']


def mixture_relevance(module, x, pair_relevance, epsilon):
    """Relevance of the pairwise log-ratios of a :class:`.GaussianLogRatio` on the features.

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
    h, products = module.split.log_ratios(module, x)
    factors, remainder = stabilized_factors(pair_relevance.flatten(1), h, epsilon)
    relevance, constant = module.split.relevance(module, x, factors, products=products)
    return relevance, constant + remainder


class LogRatioSplit(StabilizedRule):
    """Rule for :class:`.GaussianLogRatio`: each log-ratio split over the features.

    ``R_i = sum_pairs (R_pair / h_pair) z_i`` where ``h_pair = sum_i z_i + const``:

    - tied covariance (h linear): ``z_i = w_i (x_i - x0_i)`` with the root point x0 of
      :func:`.tied_root_points`; const = 0, exactly conservative on the features.
    - diagonal and spherical covariance (h a sum of one-feature terms): ``z_i = 1/2 (phi_rival,i -
      phi_own,i)``, with ``phi_m,i = p_mi (x_i - mu_mi)^2``
      (:func:`.quadratic_terms`); ``const`` is the log-ratio of the weights and
      determinants.
    - full covariance (h quadratic with cross terms): ``z_i = (x - x0)_i [grad h((x + x0) / 2)]_i``, the
      exact integrated gradient from the root x0 on the line through the two means
      (:func:`.segment_roots`, :func:`.segment_relevance`);
      const = h(x0), zero unless that line has no root.

    The relevance of the constants is not passed to the input (like a bias): ``sum_i R_i = f_c - R_const``,
    with ``R_const`` from :func:`~zennit_clusters.explain_with_constant`.

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


def layer_rules(beta, epsilon):
    """The rules of the mixture layers, for :func:`zennit_clusters.cluster_layer_map`."""
    return [(GaussianLogRatio, LogRatioSplit(epsilon=epsilon)), (SoftMinPool, SoftMin(beta=beta))]
