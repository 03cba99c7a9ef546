"""Cosine k-means: nearest centroid by angle, which is k-means on the unit sphere.

Spark's ``distanceMeasure='cosine'`` assigns x to ``argmin_k 1 - <x, mu_k> / (|x| |mu_k|)``. With
``z = x / |x|`` and ``nu_k = mu_k / |mu_k|`` that is ``argmin_k |z - nu_k|^2`` (both on the unit sphere,
``|z - nu_k|^2 = 2 - 2 cos(x, mu_k)``): the k-means network of the centroid family (docs/method.md,
section 1) on the normalised input, exactly. The normalisation acts on each feature by the row's own
factor ``1 / |x|``, so the relevance of feature i of x is that of feature i of z (zennit's ``Pass`` rule),
and it still sums to the evidence ``f_c(z) = min_k |z - nu_k|^2 - |z - nu_c|^2 = 2 min_k (cos_c - cos_k)``.
A zero row has no direction: its evidence is not finite and :func:`~zennit_clusters.explain` refuses it.
"""
import copy

import torch

from ...api import make_explainer
from ...core import Explainer, NeuralizedModel, StackedModel
from ...validation import check_layer_input

__all__ = ['RowNormalization', 'NeuralizedCosine', 'CosineExplainer']


class RowNormalization(torch.nn.Module):
    """``z = x / |x|`` row by row (the Euclidean norm); relevance passes through it unchanged."""
    def __init__(self, n_features):
        super().__init__()
        self.n_features = int(n_features)

    def forward(self, x):
        check_layer_input(x, self.n_features, type(self).__name__)
        # a zero row gives 0 / 0 = NaN: no direction, refused downstream as not finite
        return x / torch.linalg.vector_norm(x, dim=1, keepdim=True)


class NeuralizedCosine(StackedModel, torch.nn.Sequential, NeuralizedModel):
    """A neuralized centroid model on the unit sphere behind row normalisation: ``model(x) = head(x / |x|)``."""
    def __init__(self, normalization, head, source):
        super().__init__()
        self.normalization = normalization
        self.head = head
        self.source = source

    @property
    def n_features_in_(self):
        return self.normalization.n_features

    @property
    def cluster_centers(self):
        """(K, D) unit-norm centroids (the normalisation leaves them where they are)."""
        return self.head.cluster_centers


class CosineExplainer(Explainer):
    """Closed-form explainer of cosine k-means: the head's explainer on the normalised input."""
    def __init__(self, model, cluster, beta, epsilon=None):
        super().__init__(model.n_features_in_)
        self.normalization = copy.deepcopy(model.normalization)
        self.head = make_explainer(model.head, cluster=cluster, beta=beta, epsilon=epsilon)
        self.has_constant, self.writes_out, self.row_elements = (self.head.has_constant, self.head.writes_out,
                                                                 self.head.row_elements)

    @property
    def origin(self):
        """The head's origin, on the unit sphere's frame."""
        return self.head.origin

    def forward(self, x, out=None):
        z = self.normalization(x)
        return self.head(z, out=out) if self.writes_out else self.head(z)

    def forward_with_constant(self, x):
        return self.head.forward_with_constant(self.normalization(x))
