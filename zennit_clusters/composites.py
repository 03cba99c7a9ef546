"""Composites that attach the NEON rules to neuralized clustering heads.

``ClusterComposite`` maps the layers of every neuralized family to their rules (each family registers its own,
:mod:`zennit_clusters.core`) and can take a ``layer_map`` for the network below the head. It also combines with
Zennit's own composites in two ways:

>>> from zennit.composites import EpsilonGammaBox, MixedComposite
>>> composite = MixedComposite([ClusterComposite(beta=0.5), EpsilonGammaBox(low=0., high=1.)])
>>> composite = EpsilonGammaBox(low=0., high=1., layer_map=cluster_layer_map(beta=0.5))
"""
from zennit.composites import LayerMapComposite, register_composite

from .core import layer_rules

__all__ = ['ClusterComposite', 'cluster_layer_map']


def cluster_layer_map(beta=None, epsilon=None):
    """The layer map of the NEON rules, to prepend to the ``layer_map`` of any Zennit composite.

    Parameters
    ----------
    beta : float or None
        Soft-min stiffness of the min-pool redistribution; None for each model's own value.
    epsilon : float or None
        Stabiliser of the midpoint rule (the tie threshold of member-point networks); None for each layer's
        default.

    Returns
    -------
    list of (types, Hook)
    """
    return layer_rules(beta, epsilon)


@register_composite('cluster')
class ClusterComposite(LayerMapComposite):
    """NEON for neuralized clustering heads, optionally with rules for the network below them.

    Parameters
    ----------
    beta : float or None, optional
        Soft-min stiffness, as in :func:`zennit_clusters.explain`: a float >= 0, ``math.inf`` for the
        nearest competitor only, None (default) for the value each model was neuralized with.
    epsilon : float or None, optional
        Stabiliser of the midpoint rule.
    layer_map : list of (types, Hook), optional
        Rules for other layers (e.g. the feature extractor), appended after the cluster rules.
    canonizers : list of zennit canonizers, optional

    Notes
    -----
    Seed the output relevance with the evidence of the explained cluster (``attr_output=lambda y: y *
    onehot``) so that the input relevance sums to ``f_c(x)``.
    """
    def __init__(self, beta=None, epsilon=None, layer_map=None, canonizers=None):
        self.beta = beta
        self.epsilon = epsilon
        layer_map = cluster_layer_map(beta=beta, epsilon=epsilon) + list(layer_map or [])
        super().__init__(layer_map=layer_map, canonizers=canonizers)
