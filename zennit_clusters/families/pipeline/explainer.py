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
    def __init__(self, model, cluster, beta, epsilon=None, output='relevance'):
        super().__init__(model.n_features_in_)
        self.prefix = copy.deepcopy(model.prefix)
        self.head = make_explainer(model.head, cluster=cluster, beta=beta, epsilon=epsilon, output=output)
        # what explain() may use is what the head offers
        self.has_constant, self.writes_out, self.row_elements = (self.head.has_constant, self.head.writes_out,
                                                                 self.head.row_elements)
        self.row_options = self.head.row_options
        self.output = output

    #: as the head's (make_explainer checks the head's own list when it is built)
    outputs = ('relevance', 'parts', 'direction', 'contrasts')

    def row_elements_for(self, options):
        return self.head.row_elements_for(options)

    @property
    def scaling(self):
        return self.prefix[0] if len(self.prefix) else None

    @property
    def origin(self):
        """The head's origin, in the prefix's output frame (the scaling subtracts its own offset first)."""
        return self.head.origin

    def forward(self, x, out=None, contrast=None, reference=None):
        z = self.prefix(x)
        options = self._head_options(contrast, reference)
        if options or self.output != 'relevance':
            return self.head(z, **options)
        return self.head(z, out=out) if self.writes_out else self.head(z)

    def forward_with_constant(self, x, contrast=None, reference=None):
        """``(label, logits, relevance, constant)``: the head's constant term (zero if it has none)."""
        return self.head.forward_with_constant(self.prefix(x), **self._head_options(contrast, reference))

    def _head_options(self, contrast, reference):
        options = {}
        if contrast is not None:
            options['contrast'] = contrast
        if reference is not None:  # a reference point in the user's coordinates, mapped as x is
            options['reference'] = self.prefix(reference)
        return options
