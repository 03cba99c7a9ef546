"""Deep clustering heads: deep k-means' centroid head and DEC's Student-t head, both neuralized exactly as k-means
on their centroids (see the package docstring for what is exact)."""
import torch

from ..centroids.converters import centroid_model

__all__ = ['CentroidHead', 'StudentTHead', 'convert_head']


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


def convert_head(head, X=None, beta=None):
    """A deep k-means or DEC head: the exact k-means network on its centroids (the hard assignment).

    Its forward is checked on probe points first (a subclass may compute something else).
    """
    from ..centroids.torch_heads import probe_head

    model = centroid_model(head.centroids, type(head).__name__, X=X, beta=beta)
    probe_head(head, model, X, what=f'{type(head).__name__} (centroids {tuple(head.centroids.shape)})')
    return model
