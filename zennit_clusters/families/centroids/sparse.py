"""NEON on scipy sparse input for centroid models (k-means, mini-batch and bisecting k-means, text pipelines).

A sparse row (a TF-IDF document) is explained without densifying it. The closed-form explainer gives, per row,
weights ``g`` on the centres (:meth:`.CentroidExplainer.centre_weights`) such that the relevance of feature i is

    R_i = sum_m g_m (x_i - mu_mi)^2          (sum_m g_m = 0; docs/method.md, section 2)

In the centred frame (origin o, centred centres c_m = mu_m - o) this is ``R_i = -2 x_i (g.c)_i + (g.U)_i`` with
``U_mi = c_mi^2 + 2 o_i c_mi``. It is evaluated on the stored entries of each row only (a sampled product: work
O(nnz M)). A feature absent from the row (x_i = 0) still carries ``(g.U)_i``; the absent features together carry

    absent = g . (sum_i U_i) - sum over the stored entries of (g.U)_i

so that ``present.sum(1) + absent == f_c`` (the sum over all features of the dense rule). Nothing of size
(N, V) is ever formed: chunks of rows bounded by their number of stored entries, and (V, M) tables.

The return form: ``explain(model, X_sparse)`` gives the relevance of the stored entries as a sparse matrix of X's
pattern (after summing duplicates) and format; ``explain_with_constant(model, X_sparse)`` gives that and the
absent term as the per-row constant. That function's contract is already "relevance.sum(1) + constant == f_c",
so no new keyword and no new return shape: dense results are unchanged (their constant is 0 for these models).
"""
import numpy as np
import torch

from ...validation import check_sparse_input, sign_stabiliser
from .layers import NeuralizedCentroids

__all__ = ['SPARSE_TYPES', 'explain_sparse', 'sparse_logits', 'centroid_network', 'centroid_beta', 'is_sparse']

#: the base class of every scipy sparse matrix and array (csr, csc, coo, ... in both the matrix and array API),
#: by full name: the registry dispatches on it without importing scipy
SPARSE_TYPES = ('scipy.sparse._base._spbase',)

#: elements of the (entries, centres) gathers per chunk: 8 MB of float64 each (measured on 20,000 x 20,000: 4M
#: elements, 32 MB arrays that are page-faulted afresh in every chunk, took 1.5-2x as long; 64K elements, 3x)
CHUNK_ELEMENTS = 1 << 20


def is_sparse(X):
    """Whether X is a scipy sparse matrix or array (recognised without importing scipy)."""
    return hasattr(X, 'toarray') and hasattr(X, 'nnz') and hasattr(X, 'format')


def centroid_beta(model, X=None, beta=None):
    """:func:`~zennit_clusters.api.resolve_beta` for a centroid network, with sparse training data kept sparse.

    A k-means model fitted on a term matrix (100,000 documents x 50,000 terms: 40 GB dense) gets the same
    heuristic ``1 / mean f_c`` from its sparse rows (:func:`sparse_logits`, O(nnz K)).
    """
    from ...api import resolve_beta
    from ...evidence import beta_of_total
    if X is None or not is_sparse(X):
        return resolve_beta(model, X, beta)
    evidence = sparse_logits(model, X).max(1)  # checks X (width, dtype, finite) even where beta is given
    return resolve_beta(model, None, beta_of_total(float(evidence.sum()), len(evidence)) if beta is None else beta)


def sparse_route(model):
    """``(network, prepare)``: the centroid network a sparse X is explained through and the map that takes X to
    its input, keeping X's pattern (a text model, or a pipeline of per-feature scalings without offset and row
    normalisations before a centroid head); else a TypeError that says why."""
    if isinstance(model, NeuralizedCentroids):
        return model, None
    route = getattr(model, 'sparse_route', None)
    if callable(route):
        return route()
    return centroid_network(model), None


def centroid_network(model):
    """The centroid network a sparse row is explained through (a text model is one), or a TypeError."""
    if isinstance(model, NeuralizedCentroids):
        if model.has_metric:
            raise TypeError(f'explain on scipy sparse input supports Euclidean centroid models; {model.source} '
                            'measures distances in a metric of its own (k-means after a whitened PCA), whose '
                            'relevance on the absent terms has no per-term table here. Pass a dense array '
                            '(X.toarray()).')
        return model
    raise TypeError(
        f'explain on scipy sparse input supports centroid models (KMeans, MiniBatchKMeans, BisectingKMeans, centroid '
        f'tensors, and text pipelines ending in one of them), got a {type(model).__name__} '
        f'({getattr(model, "source", "?")}). Pass a dense array (X.toarray()) for this model.')


def _row_chunks(indptr, n_centres, chunk_size):
    """Row ranges whose stored entries times the number of centres stay near CHUNK_ELEMENTS (at least one row)."""
    n_rows = len(indptr) - 1
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f'chunk_size must be a positive int, got {chunk_size!r}.')
        return [(start, min(start + chunk_size, n_rows)) for start in range(0, n_rows, chunk_size)]
    budget = max(1, CHUNK_ELEMENTS // n_centres)
    row_cap = max(1, CHUNK_ELEMENTS // n_centres)  # the (rows, M) scores and weights
    chunks, start = [], 0
    while start < n_rows:
        stop = int(np.searchsorted(indptr, indptr[start] + budget, side='right')) - 1
        stop = min(max(stop, start + 1), start + row_cap, n_rows)
        chunks.append((start, stop))
        start = stop
    return chunks


class _SparseFrame:
    """The (V, M) tables of one explainer: centred centres, the absent-value table U, and the score map."""

    def __init__(self, explainer):
        centres = explainer.centres.detach().to('cpu', torch.float64).numpy()           # (M, V), centred
        origin = (np.zeros(centres.shape[1]) if explainer.origin is None
                  else explainer.origin.detach().to('cpu', torch.float64).numpy())
        self.centres_t = np.ascontiguousarray(centres.T)                                 # (V, M)
        self.absent_t = self.centres_t * (self.centres_t + 2.0 * origin[:, None])        # U^T: c^2 + 2 o c
        self.absent_total = self.absent_t.sum(0)                                         # (M,)
        # s_m = 2 c_m . (x - o) - |c_m|^2, with x sparse: 2 c_m . x plus a constant per centre
        self.score_bias = -(centres * centres).sum(1) - 2.0 * centres @ origin
        self.score_weight_t = 2.0 * self.centres_t

    def scores(self, rows):
        return np.asarray(rows @ self.score_weight_t) + self.score_bias


def sparse_logits(model, X, chunk_size=None):
    """The (N, K) evidence of a centroid model on sparse rows (numpy float64), without densifying them."""
    from ...api import make_explainer
    network, prepare = sparse_route(model)
    csr = check_sparse_input(X, network.n_features_in_)
    csr = csr if prepare is None else prepare(csr)
    explainer = make_explainer(network)
    frame = _SparseFrame(explainer)
    logits = np.empty((csr.shape[0], network.n_clusters))
    with torch.no_grad():
        for start, stop in _row_chunks(csr.indptr, explainer.centres.shape[0], chunk_size):
            logits[start:stop] = explainer.logits(torch.from_numpy(frame.scores(csr[start:stop]))).numpy()
    return logits


def explain_sparse(model, X, cluster=None, beta=None, chunk_size=None, epsilon=None, return_logits=False, out=None,
                   with_constant=False):
    """NEON relevance of the stored entries of a scipy sparse X (the data adapter behind :func:`explain`).

    Parameters
    ----------
    model : NeuralizedModel or fitted estimator
        A centroid model (see :func:`centroid_network`).
    X : scipy sparse matrix or array of shape (n_samples, n_features)
        Any format; duplicates are summed first. float32 relevance for float32 X, float64 otherwise (integer
        and boolean X included). The arithmetic is float64 throughout: it costs O(nnz K), not O(N V).
    cluster, beta, chunk_size, epsilon, return_logits
        As for :func:`~zennit_clusters.explain`; ``chunk_size`` is rows per chunk (default: chunks of about
        ``CHUNK_ELEMENTS / n_centres`` stored entries).
    out : None
        Not supported for sparse X (the result is a new sparse matrix); refused if given.
    with_constant : bool
        Also return the absent term (what :func:`~zennit_clusters.explain_with_constant` asks for).

    Returns
    -------
    relevance : sparse matrix or array of X's format and API, X's pattern
        The relevance of each stored entry of X.
    absent : numpy.ndarray of shape (n_samples,), only with ``with_constant``
        The relevance of all features absent from the row, together: ``relevance.sum(1) + absent == f_c``.
    labels, logits : numpy arrays, only with ``return_logits``
    """
    import scipy.sparse

    from ...api import make_explainer, neuralize
    if out is not None:
        raise TypeError('out= takes a dense buffer; explain on sparse X returns a new sparse matrix of X\'s pattern. '
                        'Call without out=.')
    model = neuralize(model)
    network, prepare = sparse_route(model)
    # the pipeline's beta where it holds a head (they are the same unless set apart)
    explainer = make_explainer(network, cluster=cluster, beta=model.beta if beta is None else beta, epsilon=epsilon)
    csr = check_sparse_input(X, network.n_features_in_)
    if prepare is not None:  # X's pattern, values as the head takes them
        csr = prepare(csr)
    frame = _SparseFrame(explainer)
    stabiliser = sign_stabiliser(torch.float64, epsilon)
    n_rows = csr.shape[0]
    data = np.empty(csr.nnz)
    absent = np.empty(n_rows)
    labels = np.empty(n_rows, dtype=np.int64)
    logits = np.empty((n_rows, network.n_clusters))
    with torch.no_grad():
        for start, stop in _row_chunks(csr.indptr, explainer.centres.shape[0], chunk_size):
            rows = csr[start:stop]
            label, logit, weights = explainer.centre_weights(torch.from_numpy(frame.scores(rows)), stabiliser)
            if bool((label < 0).any()):
                row = start + int((label < 0).nonzero()[0, 0])
                raise ValueError(f'X row {row} overflows the model\'s arithmetic (values too large).')
            labels[start:stop], logits[start:stop] = label.numpy(), logit.numpy()
            weights = weights.numpy()
            local = np.repeat(np.arange(stop - start), np.diff(rows.indptr))
            entry_weights = weights[local]                                              # (nnz, M)
            gc = np.einsum('ij,ij->i', entry_weights, frame.centres_t[rows.indices])
            gu = np.einsum('ij,ij->i', entry_weights, frame.absent_t[rows.indices])
            data[csr.indptr[start]:csr.indptr[stop]] = gu - 2.0 * rows.data * gc
            absent[start:stop] = weights @ frame.absent_total - np.bincount(local, weights=gu,
                                                                            minlength=stop - start)
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    # its own index arrays: csr may share X's
    relevance = scipy.sparse.csr_matrix((data.astype(dtype, copy=False), csr.indices.copy(), csr.indptr.copy()),
                                        shape=csr.shape)
    if isinstance(X, scipy.sparse.sparray):
        relevance = scipy.sparse.csr_array(relevance)
    if relevance.format != X.format:
        relevance = relevance.asformat(X.format)
    result = (relevance, absent.astype(dtype, copy=False)) if with_constant else (relevance,)
    if return_logits:
        result += (labels, logits.astype(dtype, copy=False))
    return result if len(result) > 1 else result[0]
