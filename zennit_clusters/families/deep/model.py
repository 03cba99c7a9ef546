"""A feature extractor below a neuralized head, explained through both with Zennit (docs/method.md, section 5)."""
import torch

from ...api import neuralize
from ...core import NeuralizedModel, StackedModel

__all__ = ['NeuralizedDeep', 'convert_deep', 'neuralize_deep', 'explain_deep', 'feature_codes']


class NeuralizedDeep(StackedModel, torch.nn.Sequential):
    """A feature extractor followed by a neuralized head: ``model(x)`` gives the (N, K) evidence on Phi(x).

    Explain it with a Zennit composite that has rules for both parts (:func:`explain_deep`), e.g.
    ``MixedComposite([ClusterComposite(), EpsilonPlusFlat()])`` or
    ``EpsilonGammaBox(low, high, layer_map=cluster_layer_map())``. The extractor is the caller's module
    (not a copy); put it in eval mode before explaining.

    Attributes
    ----------
    features : torch.nn.Module
    head : NeuralizedModel
    """
    def __init__(self, features, head):
        super().__init__()
        if not isinstance(head, NeuralizedModel):
            raise TypeError(f'head must be a neuralized model, got {type(head).__name__}; use neuralize_deep().')
        self.features = features
        self.head = head


def convert_deep(model, X=None, beta=None):
    raise TypeError('explain()/neuralize() work on a head over its own input; a NeuralizedDeep model stacks a '
                    'feature extractor below it: explain it with explain_deep(model, x, composite) (Zennit), or '
                    'call explain(model.head, model.features(x)) for relevance on the features.')


def neuralize_deep(features, head, X=None, beta=None, batch_size=1024):
    """Stack a feature extractor and the neuralized version of a clustering head on its features.

    Parameters
    ----------
    features : torch.nn.Module
        Maps inputs to (N, D') features (an encoder, a CNN with global pooling, ...).
    head : object
        Anything :func:`~zennit_clusters.neuralize` accepts for the features: a :class:`CentroidHead`, a
        :class:`StudentTHead`, a (K, D') centroid tensor, a scikit-learn KMeans fitted on the features, a
        neuralized model.
    X : torch.Tensor, optional
        Training inputs; their features set the head's default soft-min stiffness (as ``neuralize(head,
        X=features(X))``). The extractor runs in eval mode under ``no_grad`` for this, in batches.
    beta : float, optional
        The head's default soft-min stiffness (overrides ``X``).
    batch_size : int
        Rows per batch when computing the features of X.

    Returns
    -------
    NeuralizedDeep
    """
    if not isinstance(features, torch.nn.Module):
        raise TypeError(f'features must be a torch.nn.Module, got {type(features).__name__}.')
    codes = None if X is None else feature_codes(features, X, batch_size)
    return NeuralizedDeep(features, neuralize(head, X=codes, beta=beta))


def feature_codes(features, X, batch_size=1024):
    """The (N, D') features of inputs X: the extractor in eval mode under ``no_grad``, in batches, on the CPU.

    Every submodule's training mode is restored afterwards.
    """
    X = torch.as_tensor(X)
    if X.shape[0] == 0:
        raise ValueError('X (training inputs) has 0 samples; at least 1 is required.')
    modes = [(module, module.training) for module in features.modules()]
    features.eval()
    try:
        with torch.no_grad():
            codes = torch.cat([features(batch) for batch in torch.split(X, batch_size)])
    finally:
        for module, training in modes:
            module.training = training
    return codes.reshape(codes.shape[0], -1).detach().cpu()


def explain_deep(model, x, composite=None, cluster=None):
    """Relevance of every input element for a cluster's evidence, through the extractor and the head (Zennit).

    Parameters
    ----------
    model : NeuralizedDeep or NeuralizedModel
    x : torch.Tensor
        Inputs, shaped as the extractor expects.
    composite : zennit.core.Composite, optional
        Default ``MixedComposite([ClusterComposite(), EpsilonPlusFlat()])``.
    cluster : int, optional
        Explain this cluster for every row; default each row's assigned cluster.

    Returns
    -------
    logits : torch.Tensor of shape (N, K)
    relevance : torch.Tensor of the shape of x
        Seeded with the evidence ``f_c``: ``relevance`` sums to ``f_c`` up to what the extractor's rules
        absorb (biases, epsilon stabilisers); exactly with bias-free layers and conservative rules.
    """
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonPlusFlat, MixedComposite

    from ...composites import ClusterComposite

    if composite is None:
        composite = MixedComposite([ClusterComposite(), EpsilonPlusFlat()])
    n_clusters = model.n_clusters
    if cluster is not None and not 0 <= int(cluster) < n_clusters:
        raise ValueError(f'cluster must be in [0, {n_clusters}), got {cluster}.')

    def seed(logits):
        chosen = logits.argmax(1) if cluster is None else torch.full((logits.shape[0],), int(cluster),
                                                                     device=logits.device)
        return logits * torch.nn.functional.one_hot(chosen, n_clusters).to(logits.dtype)

    with Gradient(model, composite) as attributor:
        logits, relevance = attributor(x, attr_output=seed)
    return logits.detach(), relevance
