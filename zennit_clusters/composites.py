"""Composites that attach the NEON rules to neuralized clustering heads.

``ClusterComposite`` maps the layers of a neuralized head to their rules and can take a ``layer_map``
for the network below the head. It also combines with Zennit's own composites in two ways:

>>> from zennit.composites import EpsilonGammaBox, MixedComposite
>>> composite = MixedComposite([ClusterComposite(beta=0.5), EpsilonGammaBox(low=0., high=1.)])
>>> composite = EpsilonGammaBox(low=0., high=1., layer_map=cluster_layer_map(beta=0.5))
"""
from zennit.composites import LayerMapComposite, register_composite
from zennit.rules import Pass

from .layers import FeatureScaling, MinPool, PairwiseMargin
from .rules import Midpoint, SoftMin

__all__ = ['ClusterComposite', 'cluster_layer_map']

_EXTRA_LAYER_RULES = []


def register_layer_rule(layer_types, make_rule):
    """Register the rule of a further cluster layer (used by model families beyond centroids).

    Parameters
    ----------
    layer_types : type or tuple of types
        Module types the rule applies to.
    make_rule : callable
        ``make_rule(beta, epsilon) -> zennit.core.Hook``.
    """
    _EXTRA_LAYER_RULES.append((layer_types, make_rule))


def cluster_layer_map(beta=None, epsilon=None):
    """The layer map of the NEON rules, to prepend to the ``layer_map`` of any Zennit composite.

    Parameters
    ----------
    beta : float or None
        Soft-min stiffness of the min-pool redistribution; None for each model's own value.
    epsilon : float or None
        Stabiliser of the midpoint rule; None for the machine epsilon of the input.

    Returns
    -------
    list of (types, Hook)
    """
    layer_map = [
        (PairwiseMargin, Midpoint(epsilon=epsilon)),
        (MinPool, SoftMin(beta=beta)),
    ]
    layer_map += [(types, make_rule(beta, epsilon)) for types, make_rule in _EXTRA_LAYER_RULES]
    return layer_map


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


# member-point networks (kernel k-means, labelled partitions): NEON.md section 3
from .layers import LogMeanExpPool, MemberMargin  # noqa: E402
from .rules import LogMeanExpShares, MemberMidpoint  # noqa: E402

register_layer_rule(MemberMargin, lambda beta, epsilon: MemberMidpoint(epsilon=epsilon))
register_layer_rule(LogMeanExpPool, lambda beta, epsilon: LogMeanExpShares())


register_layer_rule(FeatureScaling, lambda beta, epsilon: Pass())
