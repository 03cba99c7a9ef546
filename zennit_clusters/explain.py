"""The closed-form NEON explainer: label, cluster evidence and relevance in one forward pass.

:class:`CentroidExplainer` is a torch module built from a neuralized centroid model. It is what
:func:`explain` runs (in chunks of rows, so memory stays bounded) and what the ONNX exporter writes out.
It computes the same quantities as the layered model with the Zennit rules, through the same functions
of :mod:`zennit_clusters.functional`, but only for the cluster being explained: O(N K D) work in two
(N, M) x (M, D) matrix products.
"""
import torch

from . import functional as NF
from .converters import neuralize
from .layers import NeuralizedCentroids, NeuralizedModel, check_beta
from .rules import default_epsilon
from .validation import as_feature_tensor, check_cluster, check_finite_rows

__all__ = ['explain', 'CentroidExplainer', 'make_explainer', 'register_explainer']

#: rows per chunk in :func:`explain`, scaled by the row width so a chunk stays near 16 MB of float32
CHUNK_ELEMENTS = 1 << 22

_EXPLAINERS = {}


def register_explainer(model_type):
    """Decorator registering ``factory(model, cluster, beta, epsilon) -> torch.nn.Module`` for a model type.

    The module's forward maps (N, D) inputs to ``(label, logits, relevance)``.
    """
    def decorator(factory):
        _EXPLAINERS[model_type] = factory
        return factory
    return decorator


def make_explainer(model, cluster=None, beta=None, epsilon=None):
    """The closed-form explainer module of a neuralized model (or a fitted estimator).

    Parameters
    ----------
    model : NeuralizedModel or fitted estimator
    cluster : int or None
        The cluster to explain for every point; None for each point's assigned cluster.
    beta : float or None
        Soft-min stiffness; None for the model's own value.
    epsilon : float or None
        Stabiliser of the midpoint rule; None for the machine epsilon of the explainer's dtype.

    Returns
    -------
    torch.nn.Module
        float64 on the CPU; move it with ``.to(device, dtype)``.
    """
    model = neuralize(model)
    cluster = check_cluster(cluster, model.n_clusters)
    beta = model.beta if check_beta(beta) is None else check_beta(beta)
    for type_ in type(model).__mro__:
        if type_ in _EXPLAINERS:
            return _EXPLAINERS[type_](model, cluster, beta, epsilon)
    raise TypeError(f'no closed-form explainer for {type(model).__name__}.')


@register_explainer(NeuralizedCentroids)
class CentroidExplainer(torch.nn.Module):
    """NEON for centroid models (k-means, bisecting k-means, centroid heads), in closed form.

    Parameters
    ----------
    model : NeuralizedCentroids
    cluster : int or None
        Explain this cluster for every row, or (None) each row's assigned cluster.
    beta : float
        Soft-min stiffness of the redistribution to competitors.
    epsilon : float or None
        Stabiliser of the division by a margin; None for the machine epsilon of the dtype at run time.

    Notes
    -----
    ``forward(x)`` returns ``label`` (int64, -1 for rows with NaN or infinity), ``logits`` (N, K) and
    ``relevance`` (N, D) with ``relevance.sum(1) == logits[c]`` for the explained cluster c.
    When c is not the assigned cluster, ``f_c < 0`` and the factors ``f_c / h`` are no longer bounded in
    [0, 1]: the explanation stays conservative but individual relevances can be large.
    """
    def __init__(self, model, cluster, beta, epsilon=None):
        super().__init__()
        margin = model.margin
        for name in ('centre', 'centres', 'own', 'rival', 'valid'):
            self.register_buffer(name, getattr(margin, name).clone())
        self.cluster = cluster
        self.beta = beta
        self.epsilon = epsilon
        self.flat = model.is_flat

    def logits(self, scores):
        """Cluster evidence ``f_c = min over c's pairs of s_own - s_rival`` for every cluster."""
        if self.flat:
            # k-means: f_c = s_c - max_{k != c} s_k, from the top two scores (identical to the min of margins)
            top = scores.topk(2, dim=1)
            is_best = torch.arange(scores.shape[1], device=scores.device) == top.indices[:, :1]
            return scores - torch.where(is_best, top.values[:, 1:2], top.values[:, :1])
        margins = NF.pair_margins(scores, self.own.flatten(), self.rival.flatten())
        return NF.masked_min(margins.reshape(scores.shape[0], *self.own.shape), self.valid)

    def forward(self, x):
        x = x - self.centre
        scores = NF.centroid_scores(x, self.centres)
        logits = self.logits(scores)
        finite = torch.isfinite(logits).all(1)
        label = torch.where(finite, logits.argmax(1), torch.full_like(finite, -1, dtype=torch.long))

        if self.cluster is None:
            explained = label.clamp(min=0)
        else:
            explained = torch.full_like(label, self.cluster)
        own, rival, valid = self.own[explained], self.rival[explained], self.valid[explained]
        margins = NF.pair_margins(scores, own, rival)
        evidence = logits.gather(1, explained.unsqueeze(1))
        pair_relevance = NF.softmin_shares(margins, valid, self.beta) * evidence
        epsilon = default_epsilon(x.dtype) if self.epsilon is None else self.epsilon
        relevance = NF.margin_relevance(x, self.centres, own, rival, valid, margins, pair_relevance, epsilon)
        return label, logits, relevance


def explain(model, X, cluster=None, beta=None, chunk_size=None, epsilon=None, return_logits=False):
    """NEON relevance of every feature for a point's cluster evidence.

    Parameters
    ----------
    model : NeuralizedModel or fitted estimator
        Anything :func:`~zennit_clusters.neuralize` accepts.
    X : array-like or torch.Tensor of shape (n_samples, n_features)
        Points to explain. numpy in gives numpy out; a tensor gives a tensor on its device. float32 and
        float64 are kept; integers are computed in float64.
    cluster : int, optional
        Explain the evidence for this cluster for every point; default each point's assigned cluster.
    beta : float, optional
        Soft-min stiffness (>= 0, ``math.inf`` for the nearest competitor only); default the model's own.
    chunk_size : int, optional
        Rows per forward pass; default about 16 MB of input per chunk.
    epsilon : float, optional
        Stabiliser of the division by a margin; default the machine epsilon of X's dtype.
    return_logits : bool
        Also return the labels and the (n_samples, n_clusters) evidence.

    Returns
    -------
    relevance : array of shape (n_samples, n_features)
        ``relevance.sum(1)`` equals the evidence ``f_c(x)`` of the explained cluster.
    labels, logits : arrays, only with ``return_logits``
    """
    model = neuralize(model)
    explainer = make_explainer(model, cluster=cluster, beta=beta, epsilon=epsilon)
    x, from_numpy = as_feature_tensor(X, model.n_features_in_)
    explainer = explainer.to(device=x.device, dtype=x.dtype)
    if chunk_size is None:
        chunk_size = max(1, CHUNK_ELEMENTS // max(x.shape[1], model.n_clusters))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f'chunk_size must be a positive int, got {chunk_size!r}.')

    relevance = torch.empty_like(x)
    logits = torch.empty(x.shape[0], model.n_clusters, dtype=x.dtype, device=x.device)
    labels = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    with torch.no_grad():
        for start in range(0, x.shape[0], chunk_size):
            rows = slice(start, start + chunk_size)
            labels[rows], logits[rows], relevance[rows] = explainer(x[rows])
            check_finite_rows(x[rows], logits[rows], offset=start)

    if from_numpy:
        relevance, labels, logits = relevance.numpy(), labels.numpy(), logits.numpy()
    if return_logits:
        return relevance, labels, logits
    return relevance
