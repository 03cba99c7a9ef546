"""Helpers shared by the ONNX exporter's tests: reference values, row-wise comparison, small model types."""
import numpy as np
import torch
from sklearn.cluster import KMeans

from zennit_clusters import explain


class CentroidModule(torch.nn.Module):
    """A plain torch clustering head: some module that holds its centroids."""
    def __init__(self, centroids):
        super().__init__()
        self.centroids = torch.nn.Parameter(torch.as_tensor(centroids, dtype=torch.float32))

    def forward(self, x):  # squared distances: neuralize() checks the module's own assignments against them
        return torch.cdist(x, self.centroids.to(x.dtype)) ** 2


class RelabelledKMeans(KMeans):
    """A KMeans whose predict numbers the clusters differently from its centroids: no graph of the
    centroids can reproduce it, so the export check must refuse it."""
    def predict(self, X):
        return (super().predict(X) + 1) % self.n_clusters


def reference(model, X, beta=None):
    """The closed-form explainer on the rows a float32 graph receives: float64 ``(labels, logits,
    relevance)``, and float32 ``(logits, relevance)`` (the library's own float32 rounding)."""
    X32 = np.asarray(X, dtype=np.float32)
    relevance, labels, logits = explain(model, X32.astype(np.float64), beta=beta, return_logits=True)
    relevance32, _, logits32 = explain(model, X32, beta=beta, return_logits=True)
    return (labels, logits, relevance), (logits32, relevance32)


def assert_rows_close(got, expected, low=None, factor=1e-5, rounding_ratio=1.0):
    """Equal to the graph's rounding: within ``factor`` of each row's largest reference value, plus 8 times
    the rounding error of the library's own float32 evaluation ``low`` on that row (times ``rounding_ratio``
    for other dtypes), which is large on the rare ill-conditioned rows."""
    scale = np.abs(expected).max(1, keepdims=True)
    allowed = factor * scale
    if low is not None:
        allowed = allowed + 8 * rounding_ratio * np.abs(low.astype(np.float64) - expected).max(1, keepdims=True)
    error = np.abs(got.astype(np.float64) - expected)
    worst = (error / allowed).max()
    assert worst <= 1, f'error up to {worst:.3g} times the allowed rounding'


def run(session, X):
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {'X': X})))
