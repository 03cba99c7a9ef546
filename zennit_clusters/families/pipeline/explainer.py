"""The closed-form explainer of a scaled pipeline: the head's explainer on the scaled input."""
import copy

from ...api import make_explainer
from ...core import Explainer

__all__ = ['PipelineExplainer']


class PipelineExplainer(Explainer):
    """Closed-form explainer of a scaled pipeline: the head's explainer on the scaled input.

    The relevance of raw feature i is that of scaled feature i (the scaling is one-to-one per feature).
    """
    def __init__(self, model, cluster, beta, epsilon=None):
        super().__init__(model.n_features_in_)
        self.scaling = copy.deepcopy(model.scaling)
        self.head = make_explainer(model.head, cluster=cluster, beta=beta, epsilon=epsilon)
        # what explain() may use is what the head offers
        self.has_constant, self.writes_out, self.row_elements = (self.head.has_constant, self.head.writes_out,
                                                                 self.head.row_elements)

    @property
    def origin(self):
        """The head's origin, in the scaled frame (the scaling subtracts its own offset first)."""
        return self.head.origin

    def forward(self, x, out=None):
        z = self.scaling(x)
        return self.head(z, out=out) if self.writes_out else self.head(z)

    def forward_with_constant(self, x):
        """``(label, logits, relevance, constant)``: the head's constant term (zero if it has none)."""
        return self.head.forward_with_constant(self.scaling(x))
