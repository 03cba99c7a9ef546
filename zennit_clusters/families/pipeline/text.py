"""Text pipelines: a vectorizer (TF-IDF or counts), optionally LSA, then k-means, explained per vocabulary term.

``make_pipeline(TfidfVectorizer(), [Normalizer()], [TruncatedSVD(d), [Normalizer()]], KMeans(K))``.

- The vectorizer and any row-wise step after it (``TfidfTransformer``, ``Normalizer``) run on the host, exactly as
  the pipeline runs them: :meth:`NeuralizedText.encode` calls their own ``transform``. Relevance is reported per
  column of their output, the vocabulary term.
- ``TruncatedSVD`` is linear with orthonormal components P (d, V), so k-means on ``z = P x`` is exactly k-means in
  term space with the lifted centroids ``mu_k P``: ``|x P^T - mu|^2`` and ``|x - mu P|^2`` differ by a term the
  same for every cluster, and ``|mu P|^2 = |mu|^2``. The network is the centroid network on the lifted centres
  (the midpoint rule's root ``(mu_c + mu_k) P / 2`` lies on the decision boundary in term space).
- A ``Normalizer`` after the SVD divides z by its norm: a positive number per row. It is folded into the encoding
  (``x / |P x|``, same terms, same sparsity), after which z is linear again.

Anything else between the vectorizer and the clustering model is refused: it could not be reproduced exactly.
"""
import numpy as np

from ...core import full_name
from ...validation import check_fitted
from ..centroids.layers import NeuralizedCentroids

__all__ = ['VECTORIZERS', 'ROW_WISE', 'PROJECTIONS', 'NeuralizedText', 'is_text_pipeline', 'convert_text_pipeline']

#: vectorizers with a vocabulary (full names; TfidfVectorizer is a CountVectorizer). HashingVectorizer has no
#: vocabulary to name the features by and is refused.
VECTORIZERS = ('sklearn.feature_extraction.text.CountVectorizer',)
#: row-wise maps of a sparse term matrix that keep every column the same term
ROW_WISE = ('sklearn.feature_extraction.text.TfidfTransformer', 'sklearn.preprocessing._data.Normalizer')
#: linear projections with orthonormal components
PROJECTIONS = ('sklearn.decomposition._truncated_svd.TruncatedSVD',)
NORMALIZER = 'sklearn.preprocessing._data.Normalizer'
#: the largest deviation from orthonormality of the projection's components that the lifting accepts
ORTHONORMAL_TOLERANCE = 1e-8


def _is(step, names):
    return any(full_name(type_) in names for type_ in type(step).__mro__)


def _steps(pipeline):
    return [(name, step) for name, step in pipeline.steps if step not in (None, 'passthrough')]


def is_text_pipeline(pipeline):
    """Whether the first step of ``pipeline`` is a text vectorizer (of any kind: refused ones get their error
    from :func:`convert_text_pipeline`)."""
    steps = _steps(pipeline)
    return bool(steps) and any(full_name(type_).startswith('sklearn.feature_extraction.text.')
                               for type_ in type(steps[0][1]).__mro__)


def _row_norms(z, norm):
    """The norm of each row as ``Normalizer(norm)`` computes it, 1 for rows of norm 0 (which it leaves as they are)."""
    if norm == 'l2':
        norms = np.sqrt((z * z).sum(1))
    elif norm == 'l1':
        norms = np.abs(z).sum(1)
    elif norm == 'max':
        norms = np.abs(z).max(1)
    else:
        raise ValueError(f'Normalizer norm {norm!r} is not one of l1, l2, max.')
    return np.where(norms == 0, 1.0, norms)


class NeuralizedText(NeuralizedCentroids):
    """A text pipeline's k-means as a centroid network on the term matrix, with the host-side encoding in front.

    ``model(x)`` takes the (N, V) encoded term matrix as a dense float tensor (``encode(documents)``, densified)
    and returns the (N, K) evidence; :func:`~zennit_clusters.explain` takes the documents themselves (a list of
    strings), the encoded sparse matrix, or the dense one.

    Attributes
    ----------
    encoder : sklearn.pipeline.Pipeline
        The fitted vectorizer and its row-wise steps (the user's own objects).
    projection : numpy.ndarray of shape (d, V) or None
        The SVD components, kept where a Normalizer after the SVD needs the projected norm of each row.
    post_norm : str or None
        That Normalizer's norm.
    feature_names_ : numpy.ndarray of str
        The vocabulary, in column order.
    """
    #: explain() encodes the documents first, so that the sparse term matrix goes to the sparse path
    encodes_documents = True

    def __init__(self, margin, pool, source, leaves, encoder, feature_names, projection=None, post_norm=None):
        super().__init__(margin, pool, source=source, leaves=leaves)
        self.encoder = encoder
        self.feature_names_ = np.asarray(feature_names, dtype=object)
        self.projection = projection
        self.post_norm = post_norm

    def get_feature_names_out(self, input_features=None):
        """The vocabulary terms, one per input column of the network."""
        return self.feature_names_.copy()

    def encode(self, X):
        """Documents to the term matrix the network takes (scipy CSR, the vectorizer's dtype).

        A scipy sparse matrix, a numpy array or a tensor is taken to be encoded already and returned as it is
        (the network's input; for a pipeline with a Normalizer after the SVD that is the term matrix divided by
        the projected norm of each row, as this method computes it).
        """
        import scipy.sparse
        import torch
        if scipy.sparse.issparse(X) or isinstance(X, torch.Tensor) or \
                isinstance(X, np.ndarray) and X.dtype.kind in 'biuf':
            return X
        if isinstance(X, (str, bytes)):
            raise TypeError('a text model explains a list of documents; got one string. Pass [document].')
        documents = list(X)
        bad = next((type(doc).__name__ for doc in documents if not isinstance(doc, (str, bytes))), None)
        if bad is not None:
            raise TypeError(f'a text model explains a list of documents (str), got an element of type {bad}.')
        if not documents:
            raise ValueError('X has 0 documents; at least 1 is required.')
        terms = scipy.sparse.csr_matrix(self.encoder.transform(documents))
        if self.post_norm is not None:
            # the Normalizer after the SVD divides each projected row by its norm: fold that into the row
            norms = _row_norms(np.asarray(terms @ self.projection.T), self.post_norm)
            terms = scipy.sparse.csr_matrix(terms.multiply(1.0 / norms[:, None]))
        return terms


def convert_text_pipeline(pipeline, X=None, beta=None):
    """A ``Pipeline`` of a vectorizer, row-wise steps, an optional ``TruncatedSVD`` (and ``Normalizer``), and a
    k-means family model; see the module docstring. ``X``, if given, is the training documents (for the default
    stiffness ``1 / mean f_c``)."""
    from ...api import neuralize
    from ..centroids.sparse import centroid_beta
    steps = _steps(pipeline)
    (vectorizer_name, vectorizer), *rest = steps
    if not _is(vectorizer, VECTORIZERS):
        raise TypeError(f'Pipeline step {vectorizer_name!r} is a {type(vectorizer).__name__}; a text pipeline must '
                        'start with a TfidfVectorizer or CountVectorizer (features named by their vocabulary).')
    check_fitted(vectorizer, 'vocabulary_')
    if _is(vectorizer, ('sklearn.feature_extraction.text.TfidfVectorizer',)):
        check_fitted(vectorizer, 'idf_')
    (head_name, estimator) = rest.pop() if rest else (None, None)
    if estimator is None:
        raise TypeError('the text pipeline has no clustering model after its vectorizer.')
    n_encoding = 1
    while rest and _is(rest[0][1], ROW_WISE):
        check_fitted(rest.pop(0)[1])
        n_encoding += 1
    projection = post_norm = None
    if rest and _is(rest[0][1], PROJECTIONS):
        name, svd = rest.pop(0)
        check_fitted(svd, 'components_')
        projection = np.asarray(svd.components_, dtype=np.float64)
        gram = projection @ projection.T
        deviation = float(np.abs(gram - np.eye(len(gram))).max())
        if deviation > ORTHONORMAL_TOLERANCE:
            raise ValueError(f'step {name!r}: the components are not orthonormal (|P P^T - I| = {deviation:.1e}), '
                             'so k-means after it is not exactly k-means over the terms.')
        if rest and _is(rest[0][1], (NORMALIZER,)):
            post_norm = rest.pop(0)[1].norm
    if rest:
        name, step = rest[0]
        raise TypeError(
            f'Pipeline step {name!r} is a {type(step).__name__}; a text pipeline takes, between its vectorizer and the '
            'clustering model, only TfidfTransformer or Normalizer, then optionally TruncatedSVD and a Normalizer.')
    head = neuralize(estimator, beta=1.0)  # its own stiffness is set below, in term space
    if not isinstance(head, NeuralizedCentroids):
        raise TypeError(f'step {head_name!r}: a text pipeline ends in KMeans, MiniBatchKMeans or BisectingKMeans; '
                        f'got a {type(estimator).__name__}.')
    margin = head.margin
    centres = (margin.centres + margin.origin).numpy()
    if projection is not None:
        centres = centres @ projection  # the lifted centroids mu P (exact: P has orthonormal rows)
    n_terms = len(vectorizer.vocabulary_)
    if centres.shape[1] != n_terms:
        raise ValueError(f'the clustering model has {centres.shape[1]} features, the vocabulary {n_terms} terms.')
    names = '+'.join(type(step).__name__ for _, step in steps[:-1])
    network = NeuralizedCentroids.from_pairs(centres, margin.own, margin.rival, margin.valid, beta=1.0,
                                             source='', leaves=head.leaves)
    model = NeuralizedText(network.margin, network.pool, f'Pipeline({names}, {head.source})', network.leaves,
                           encoder=pipeline[:n_encoding], feature_names=vectorizer.get_feature_names_out(),
                           projection=projection if post_norm is not None else None, post_norm=post_norm)
    # on the encoded training documents, kept sparse
    model.beta = centroid_beta(model, None if X is None else model.encode(X), beta)
    return model
