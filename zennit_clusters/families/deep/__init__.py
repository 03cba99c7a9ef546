"""Deep clustering heads: a centroid head on a feature extractor (deep k-means) and DEC's Student-t head.

What is exact:

- Deep k-means (:class:`CentroidHead`, or any torch module holding a (K, D') centroid tensor): the hard
  assignment is the nearest centroid of the features z = Phi(x), so the k-means network of
  docs/method.md, section 1 on the centroids reproduces it exactly, and its evidence
  ``f_c(z) = min_k |z - mu_k|^2 - |z - mu_c|^2`` is explained exactly by NEON on the features.
- DEC (:class:`StudentTHead`): ``q_ik ∝ (1 + |z - mu_k|^2 / alpha)^(-(alpha + 1) / 2)`` is strictly
  decreasing in the distance for every alpha > 0, so ``argmax_k q_ik`` is again the nearest centroid: the
  k-means network on DEC's centroids gives DEC's hard assignment exactly, with the same exact evidence.
- Not exact: DEC's soft assignment itself. Its log-odds ``log q_c / q_k = (alpha + 1) / 2 *
  [log(alpha + d_k) - log(alpha + d_c)]`` (d = squared distances) is not linear in z (nor a function of
  the linear margin ``d_k - d_c`` alone), so no midpoint (root-point) rule splits it exactly; it has the
  sign of the k-means margin, which is what the network explains.

Below the head, relevance continues through the feature extractor with ordinary Zennit rules
(docs/method.md, section 5): :func:`neuralize_deep` stacks the extractor and the neuralized head,
:func:`explain_deep` runs a Zennit composite over both, seeded with the evidence of the explained cluster.

The folder holds the heads and the stacked model; this module registers them.
"""
from ...core import Family, register_family
from .heads import CentroidHead, StudentTHead, convert_head
from .model import NeuralizedDeep, convert_deep, explain_deep, neuralize_deep

__all__ = ['CentroidHead', 'StudentTHead', 'NeuralizedDeep', 'neuralize_deep', 'explain_deep', 'FAMILY']

# no explainer or rules of their own: a head converts to the centroid family's network, and a stacked model is
# explained by Zennit through the extractor's rules and the head's
FAMILY = register_family(Family(
    name='deep',
    converters={CentroidHead: convert_head, StudentTHead: convert_head, NeuralizedDeep: convert_deep},
))
