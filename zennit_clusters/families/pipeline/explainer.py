"""The closed-form explainer of a pipeline: the head's explainer behind the one-to-one numeric layers."""
import copy

from ...api import make_explainer
from ...core import Explainer

__all__ = ['PipelineExplainer']


class PipelineExplainer(Explainer):
    """Closed-form explainer of a pipeline: the head's explainer on the output of the numeric layers.

    The layers are one-to-one per column (scaling, row normalisation), so the relevance of input column i is
    that of output column i; a projection is already folded into the head (lifted centres).
    """
    def __init__(self, model, cluster, beta, epsilon=None):
        super().__init__(model.n_features_in_)
        self.prefix = copy.deepcopy(model.prefix)
        self.head = make_explainer(model.head, cluster=cluster, beta=beta, epsilon=epsilon)
        # what explain() may use is what the head offers
        self.has_constant, self.writes_out, self.row_elements = (self.head.has_constant, self.head.writes_out,
                                                                 self.head.row_elements)

    @property
    def scaling(self):
        return self.prefix[0] if len(self.prefix) else None

    @property
    def origin(self):
        """The head's origin, in the prefix's output frame (the scaling subtracts its own offset first)."""
        return self.head.origin

    def forward(self, x, out=None):
        z = self.prefix(x)
        return self.head(z, out=out) if self.writes_out else self.head(z)

    def forward_with_constant(self, x):
        """``(label, logits, relevance, constant)``: the head's constant term (zero if it has none)."""
        return self.head.forward_with_constant(self.prefix(x))
