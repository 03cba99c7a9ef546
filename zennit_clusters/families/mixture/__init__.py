"""Gaussian mixtures: the posterior log-odds are exactly a soft-min of pairwise log-ratios (docs/method.md, section 4).

``GaussianMixture`` and ``BayesianGaussianMixture`` with every covariance type. The folder holds the family's
equations, layers, Zennit rule, closed-form explainer, converters and the pull-back of a mixture fitted after a
projection (:mod:`.projection`); this module registers them.
"""
from ...core import Family, register_family
from .converters import convert_gaussian_mixture, mixture_model, mixture_parameters
from .explainer import MixtureExplainer
from .layers import COVARIANCE_TYPES, GaussianLogRatio, NeuralizedMixture, SoftMinPool
from .projection import project_mixture, projected_parameters

__all__ = ['COVARIANCE_TYPES', 'GaussianLogRatio', 'MixtureExplainer', 'NeuralizedMixture', 'SoftMinPool',
           'mixture_model', 'mixture_parameters', 'project_mixture', 'projected_parameters', 'FAMILY']


def _layer_rules(beta, epsilon):
    from .rules import layer_rules  # zennit is imported only when rules are asked for
    return layer_rules(beta, epsilon)


FAMILY = register_family(Family(
    name='mixture',
    converters={'sklearn.mixture._gaussian_mixture.GaussianMixture': convert_gaussian_mixture,
                'sklearn.mixture._bayesian_mixture.BayesianGaussianMixture': convert_gaussian_mixture},
    explainers={NeuralizedMixture: MixtureExplainer},
    layer_rules=_layer_rules,
))
