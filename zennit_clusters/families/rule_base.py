"""What the Zennit rules of every family share: the stored input and the sign-preserving stabiliser.

The rules are plain :class:`zennit.core.Hook` subclasses with the three-argument ``forward`` and the relevance
computed in ``backward``: that form behaves the same on zennit 0.5.1 and 1.0.0, whereas ``BasicHook`` parameter
swapping (needed for a per-pair reference point) does not.
"""
from zennit.core import Hook

from ..validation import sign_epsilon, sign_stabiliser

__all__ = ['InputRule', 'StabilizedRule']


class InputRule(Hook):
    """A rule that keeps its layer's input from the forward pass, for the relevance in ``backward``."""
    def forward(self, module, input, output):
        self.stored_tensors['input'] = input[0].detach()


class StabilizedRule(InputRule):
    """A rule that divides by its layer's outputs, with a sign-preserving stabiliser.

    Parameters
    ----------
    epsilon : float, optional
        The stabiliser; default (None) the machine epsilon of the input's dtype (:meth:`epsilon_for`), or the
        relative stabiliser of the margins (:meth:`stabiliser_for`).
    """
    def __init__(self, epsilon=None):
        super().__init__()
        self.epsilon = epsilon

    def copy(self):
        return self.__class__(epsilon=self.epsilon)

    def epsilon_for(self, x):
        """An absolute stabiliser: ``epsilon``, or the machine epsilon of ``x``'s dtype."""
        return sign_epsilon(x.dtype) if self.epsilon is None else self.epsilon

    def stabiliser_for(self, x):
        """``(absolute, relative)`` of :func:`zennit_clusters.validation.sign_stabiliser` for ``x``'s dtype."""
        return sign_stabiliser(x.dtype, self.epsilon)
