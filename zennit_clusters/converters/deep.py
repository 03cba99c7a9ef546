"""Deep clustering heads: a centroid head on a feature extractor (deep k-means) and DEC's Student-t head.

What is exact:

- Deep k-means (:class:`CentroidHead`, or any torch module holding a (K, D') centroid tensor): the hard
  assignment is the nearest centroid of the features z = Phi(x), so the k-means network of NEON.md section 1
  on the centroids reproduces it exactly, and its evidence ``f_c(z) = min_k |z - mu_k|^2 - |z - mu_c|^2``
  is explained exactly by NEON on the features.
- DEC (:class:`StudentTHead`): ``q_ik ∝ (1 + |z - mu_k|^2 / alpha)^(-(alpha + 1) / 2)`` is strictly
  decreasing in the distance for every alpha > 0, so ``argmax_k q_ik`` is again the nearest centroid: the
  k-means network on DEC's centroids gives DEC's hard assignment exactly, with the same exact evidence.
- Not exact: DEC's soft assignment itself. Its log-odds ``log q_c / q_k = (alpha + 1) / 2 *
  [log(alpha + d_k) - log(alpha + d_c)]`` (d = squared distances) is not linear in z (nor a function of
  the linear margin ``d_k - d_c`` alone), so no midpoint (root-point) rule splits it exactly; it has the
  sign of the k-means margin, which is what the network explains.

Below the head, relevance continues through the feature extractor with ordinary Zennit rules (NEON.md
section 5): :func:`neuralize_deep` stacks the extractor and the neuralized head, :func:`explain_deep` runs a
Zennit composite over both, seeded with the evidence of the explained cluster.
"""
import torch

from ..layers import NeuralizedModel
from . import neuralize, register
from .kmeans import centroid_model

__all__ = ['CentroidHead', 'StudentTHead', 'NeuralizedDeep', 'neuralize_deep', 'explain_deep']


def _centroid_parameter(centroids, trainable):
    centroids = torch.as_tensor(centroids, dtype=torch.get_default_dtype()).detach().clone()
    if centroids.dim() != 2:
        raise ValueError(f'centroids must be 2-d (n_clusters, n_features), got shape {tuple(centroids.shape)}.')
    if trainable:
        return torch.nn.Parameter(centroids)
    return centroids


class CentroidHead(torch.nn.Module):
    """Deep k-means head: ``forward(z)`` gives the negative squared distances ``-|z - mu_k|^2``, (N, K).

    A softmax of ``alpha`` times the output is the soft assignment of deep k-means (DKM); the argmax is the
    nearest centroid. :func:`~zennit_clusters.neuralize` turns it into the exact k-means network.

    Parameters
    ----------
    centroids : array-like of shape (K, D')
    trainable : bool, default True
        Keep the centroids as a parameter (for training) or as a buffer.
    """
    def __init__(self, centroids, trainable=True):
        super().__init__()
        centroids = _centroid_parameter(centroids, trainable)
        if trainable:
            self.centroids = centroids
        else:
            self.register_buffer('centroids', centroids)

    def forward(self, z):
        return -((z.unsqueeze(1) - self.centroids.to(z.dtype)) ** 2).sum(-1)


class StudentTHead(torch.nn.Module):
    """DEC's soft assignment (Xie et al., 2016): ``q_ik ∝ (1 + |z - mu_k|^2 / alpha)^(-(alpha + 1) / 2)``.

    Parameters
    ----------
    centroids : array-like of shape (K, D')
    alpha : float, default 1.0
        Degrees of freedom of the Student-t kernel, > 0.
    trainable : bool, default True

    Notes
    -----
    :func:`~zennit_clusters.neuralize` gives the k-means network on the centroids: exact for the hard
    assignment ``argmax_k q_ik`` (see the module docstring), not a neuralization of q itself.
    """
    def __init__(self, centroids, alpha=1.0, trainable=True):
        super().__init__()
        alpha = float(alpha)
        if not alpha > 0 or alpha == float('inf'):
            raise ValueError(f'alpha must be a finite float > 0, got {alpha}.')
        self.alpha = alpha
        centroids = _centroid_parameter(centroids, trainable)
        if trainable:
            self.centroids = centroids
        else:
            self.register_buffer('centroids', centroids)

    def forward(self, z):
        distance = ((z.unsqueeze(1) - self.centroids.to(z.dtype)) ** 2).sum(-1)
        logits = -(self.alpha + 1.0) / 2.0 * torch.log1p(distance / self.alpha)
        return torch.softmax(logits, dim=1)

    @staticmethod
    def target_distribution(q):
        """DEC's auxiliary target ``p_ik ∝ q_ik^2 / sum_i q_ik`` (sharpened, frequency-normalised)."""
        weight = q ** 2 / q.sum(0)
        return weight / weight.sum(1, keepdim=True)


@register(CentroidHead, StudentTHead)
def convert_head(head, X=None, beta=None):
    """A deep k-means or DEC head: the exact k-means network on its centroids (the hard assignment)."""
    return centroid_model(head.centroids, type(head).__name__, X=X, beta=beta)


class NeuralizedDeep(torch.nn.Sequential):
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

    @property
    def n_clusters(self):
        return self.head.n_clusters

    @property
    def beta(self):
        return self.head.beta

    @beta.setter
    def beta(self, value):
        self.head.beta = value


@register(NeuralizedDeep)
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
    codes = None
    if X is not None:
        X = torch.as_tensor(X)
        training = features.training
        features.eval()
        try:
            with torch.no_grad():
                codes = torch.cat([features(batch) for batch in torch.split(X, batch_size)])
        finally:
            features.train(training)
        codes = codes.reshape(codes.shape[0], -1).detach().cpu()
    return NeuralizedDeep(features, neuralize(head, X=codes, beta=beta))


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

    from ..composites import ClusterComposite

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
