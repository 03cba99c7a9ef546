"""Torch modules of neuralized pipelines: per-feature scaling in front of a neuralized head."""
import torch

from ...core import NeuralizedModel, StackedModel
from ...validation import check_layer_input

__all__ = ['FeatureScaling', 'NeuralizedPipeline']


class FeatureScaling(torch.nn.Module):
    """Per-feature affine map ``z = (x - offset) * scale``: the scalers of a preprocessing pipeline.

    Relevance passes through it unchanged (feature i of z is feature i of x), by zennit's ``Pass`` rule.
    The subtraction comes first so that float32 stays exact on data far from the origin.
    """
    def __init__(self, offset, scale):
        super().__init__()
        self.register_buffer('offset', torch.as_tensor(offset, dtype=torch.float64))
        self.register_buffer('scale', torch.as_tensor(scale, dtype=torch.float64))

    def forward(self, x):
        check_layer_input(x, self.offset.shape[0], type(self).__name__)
        return (x - self.offset.to(x)) * self.scale.to(x)


class NeuralizedPipeline(StackedModel, torch.nn.Sequential, NeuralizedModel):
    """A neuralized clustering model behind per-feature scaling: ``model(x) = head(scaling(x))``."""
    def __init__(self, scaling, head, source):
        super().__init__()
        self.scaling = scaling
        self.head = head
        self.source = source

    @property
    def n_features_in_(self):
        return self.scaling.offset.shape[0]

    def evidence(self, x):
        """The head's evidence on the scaled input (its cheaper form, where it has one)."""
        return self.head.evidence(self.scaling(x))

    @property
    def evidence_row_elements(self):
        return self.n_features_in_ + self.head.evidence_row_elements

    @property
    def cluster_centers(self):
        """(K, D) cluster centres in input (unscaled) coordinates."""
        return self.head.cluster_centers / self.scaling.scale + self.scaling.offset
