"""Torch modules of neuralized pipelines: one-to-one numeric layers in front of a neuralized head."""
import torch

from ...core import NeuralizedModel, StackedModel
from ...validation import as_feature_tensor, check_layer_input, is_dataframe

__all__ = ['FeatureScaling', 'RowNormalization', 'ProjectedNormalization', 'NeuralizedPipeline']


class FeatureScaling(torch.nn.Module):
    """Per-feature affine map ``z = (x - offset) * scale``: the scalers of a preprocessing pipeline.

    Relevance passes through it unchanged (feature i of z is feature i of x), by zennit's ``Pass`` rule.
    The subtraction comes first so that float32 stays exact on data far from the origin.
    """
    def __init__(self, offset, scale):
        super().__init__()
        self.register_buffer('offset', torch.as_tensor(offset, dtype=torch.float64))
        self.register_buffer('scale', torch.as_tensor(scale, dtype=torch.float64))

    @property
    def n_features(self):
        return self.offset.shape[0]

    def transform_sparse(self, csr):
        """The layer on a canonical float64 CSR matrix, X's pattern kept: only without an offset (a centring
        would turn every absent entry into ``-offset * scale``)."""
        if bool((self.offset != 0).any()):
            raise TypeError('a scaler that centres the data (StandardScaler with with_mean=True, MinMaxScaler, '
                            'RobustScaler with centering) makes every absent entry of a sparse X non-zero; fit it with '
                            'with_mean=False / MaxAbsScaler for sparse input, or pass X.toarray().')
        scale = self.scale.numpy()
        return type(csr)((csr.data * scale[csr.indices], csr.indices, csr.indptr), shape=csr.shape)

    def forward(self, x):
        check_layer_input(x, self.offset.shape[0], type(self).__name__)
        # one (N, D) temporary, scaled in place (the subtraction's backward does not need its output)
        return torch.sub(x, self.offset.to(x)).mul_(self.scale.to(x))


class RowNormalization(torch.nn.Module):
    """scikit-learn's ``Normalizer``: each row divided by its l1, l2 or max norm (rows of norm 0 kept as they are).

    Column i of the output is column i of the input times a per-row factor, so relevance passes through it
    unchanged (zennit's ``Pass``): the relevance of an input column is that of its normalised value, and the
    head's conservation carries over.
    """
    def __init__(self, norm, n_features):
        super().__init__()
        if norm not in ('l1', 'l2', 'max'):
            raise ValueError(f"norm must be 'l1', 'l2' or 'max', got {norm!r}.")
        self.norm = norm
        self.n_features = int(n_features)

    def forward(self, x):
        check_layer_input(x, self.n_features, type(self).__name__)
        return x / _row_norms(x, self.norm)

    def transform_sparse(self, csr):
        """The layer on a canonical float64 CSR matrix, X's pattern kept."""
        import numpy as np
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
        values = np.abs(csr.data)
        if self.norm == 'l2':
            norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=csr.shape[0]))
        elif self.norm == 'l1':
            norms = np.bincount(rows, weights=values, minlength=csr.shape[0])
        else:
            norms = np.zeros(csr.shape[0])
            np.maximum.at(norms, rows, values)
        norms[norms == 0] = 1.0
        return type(csr)((csr.data / norms[rows], csr.indices, csr.indptr), shape=csr.shape)

    def extra_repr(self):
        return f'norm={self.norm!r}, features={self.n_features}'


def _empty_csr(n_features):
    import scipy.sparse
    return scipy.sparse.csr_matrix((1, n_features))


def _row_norms(x, norm):
    if norm == 'l2':
        norms = x.square().sum(1, keepdim=True).sqrt()
    elif norm == 'l1':
        norms = x.abs().sum(1, keepdim=True)
    else:
        norms = x.abs().amax(1, keepdim=True)
    return torch.where(norms == 0, torch.ones_like(norms), norms)


class ProjectedNormalization(torch.nn.Module):
    """A ``Normalizer`` after a projection ``z = (u - mean) C^T``, in the projection's input space (C orthonormal,
    or a whitened PCA's ``diag(1 / sqrt(explained_variance_)) components_``).

    ``u -> mean + (u - mean) / |z|``: its projection is ``z / |z|``, the normalised z the head was fitted on, so
    the head with lifted centres (:func:`~.converters.lift_centroids`) sees exactly its own margins (LSA:
    ``TruncatedSVD -> Normalizer -> KMeans``). Column i of the output is column i of the input, shifted and
    scaled per row, so relevance passes through it unchanged (zennit's ``Pass``).
    """
    def __init__(self, norm, components, mean):
        super().__init__()
        if norm not in ('l1', 'l2', 'max'):
            raise ValueError(f"norm must be 'l1', 'l2' or 'max', got {norm!r}.")
        self.norm = norm
        self.register_buffer('components', torch.as_tensor(components, dtype=torch.float64))
        self.register_buffer('mean', torch.as_tensor(mean, dtype=torch.float64))

    @property
    def n_features(self):
        return self.components.shape[1]

    def forward(self, x):
        check_layer_input(x, self.n_features, type(self).__name__)
        centred = x - self.mean.to(x)
        return self.mean.to(x) + centred / _row_norms(centred @ self.components.to(x).T, self.norm)

    def extra_repr(self):
        return f'norm={self.norm!r}, features={self.n_features}, components={self.components.shape[0]}'


class NeuralizedPipeline(StackedModel, torch.nn.Sequential, NeuralizedModel):
    """A neuralized clustering model behind a pipeline's numeric layers: ``model(x) = head(prefix(x))``.

    ``prefix`` holds the one-to-one layers (:class:`FeatureScaling`, :class:`RowNormalization`); a projection
    (PCA, TruncatedSVD) is folded into the head, whose centres are then in the prefix's output coordinates.
    ``encoding`` (an :class:`~.encoding.Encoding` or None) is the host-side part: ``encode(X)`` runs it, and
    ``forward`` does too for a DataFrame.
    """
    def __init__(self, prefix, head, source, encoding=None):
        super().__init__()
        self.prefix = prefix if isinstance(prefix, torch.nn.Sequential) else torch.nn.Sequential(*prefix)
        self.head = head
        self.source = source
        self.encoding = encoding

    def forward(self, x):
        if is_dataframe(x) or (not torch.is_tensor(x) and self.encoding is not None):
            x = as_feature_tensor(self.encode(x), self.n_features_in_)[0]
        return self.head(self.prefix(x))

    def sparse_route(self):
        """``(head, prepare)`` for scipy sparse X (:func:`~..centroids.sparse.explain_sparse`): every prefix layer
        applied to the sparse matrix with X's pattern kept, so that the head's relevance of each stored entry is
        that of the user's entry (the layers pass relevance through unchanged); a TypeError where a layer cannot."""
        from ..centroids.sparse import centroid_network
        if self.encoding is not None:
            raise TypeError('this pipeline encodes its input host-side first '
                            f'({self.encoding._step_names()}); pass the frame or array it was fitted on, not a '
                            'sparse matrix.')
        unsupported = [type(layer).__name__ for layer in self.prefix if not hasattr(layer, 'transform_sparse')]
        if unsupported:
            raise TypeError(f'sparse input cannot pass {", ".join(unsupported)} with its pattern kept; pass '
                            'X.toarray().')
        head = centroid_network(self.head)

        def prepare(csr):
            for layer in self.prefix:
                csr = layer.transform_sparse(csr)
            return csr
        for layer in self.prefix:  # refused now, not when the first chunk is computed
            if isinstance(layer, FeatureScaling):
                layer.transform_sparse(_empty_csr(layer.n_features))
        return head, prepare

    @property
    def n_features_in_(self):
        if len(self.prefix):
            return self.prefix[0].n_features
        return self.head.n_features_in_

    @property
    def n_columns_in_(self):
        return self.n_features_in_ if self.encoding is None else self.encoding.n_columns_in_

    @property
    def feature_names_in_(self):
        return None if self.encoding is None else self.encoding.feature_names_in_

    def record_feature_names(self, names):
        pass  # the encoding holds the pipeline's names

    def encode(self, X):
        if self.encoding is None:
            return super().encode(X)
        return self.encoding.transform(X)

    def get_feature_names_out(self, input_features=None):
        if self.encoding is None:
            return super().get_feature_names_out()
        return self.encoding.names_out

    def numeric_estimator(self, pipeline):
        """The part of the fitted ``pipeline`` (the one this model was made from) that takes the network's input:
        its steps after the host-side encoders, as a scikit-learn Pipeline (its ``predict`` is the network's labels
        on ``encode(X)``); the pipeline itself where nothing runs host-side."""
        if self.encoding is None or not self.encoding.steps:
            return pipeline
        from sklearn.pipeline import Pipeline
        host = {id(step) for _, step in self.encoding.steps}
        return Pipeline([(name, step) for name, step in pipeline.steps if id(step) not in host])

    @property
    def feature_groups(self):
        return None if self.encoding is None else self.encoding.groups

    def evidence(self, x):
        """The head's evidence (its cheaper form, where it has one) behind every prefix layer: the scaling and
        the row normalisation alike."""
        return self.head.evidence(self.prefix(x))

    @property
    def evidence_row_elements(self):
        return self.n_features_in_ + self.head.evidence_row_elements

    @property
    def cluster_centers(self):
        """(K, D) cluster centres in the network's input coordinates (through the scaling; a normalisation is
        not inverted: behind one, the head's centres are taken as they are)."""
        centres = self.head.cluster_centers
        for layer in reversed(self.prefix):
            if isinstance(layer, FeatureScaling):
                centres = centres / layer.scale + layer.offset
        return centres
