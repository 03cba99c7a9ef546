"""The most relevant terms (features) of a document and of a cluster, read off a relevance matrix.

>>> R = explain(model, documents)                  # sparse (N, V) for a text pipeline
>>> top_terms(model, R, n=5)                       # per document
>>> top_terms(model, R, n=5, labels=labels)        # per cluster: mean relevance over its documents
"""
import numpy as np

__all__ = ['top_terms']


def _feature_names(source, n_features):
    if hasattr(source, 'get_feature_names_out'):
        names = source.get_feature_names_out()
    elif source is None:
        names = [f'x{i}' for i in range(n_features)]
    else:
        names = source
    names = np.asarray(names, dtype=object)
    if names.ndim != 1 or len(names) != n_features:
        raise ValueError(f'{len(names)} feature names for a relevance of {n_features} features.')
    return names


def _largest(values, n):
    """Indices of the (at most) n largest positive entries of a 1-d array, largest first."""
    positive = np.flatnonzero(values > 0)
    if len(positive) > n:
        positive = positive[np.argpartition(-values[positive], n - 1)[:n]]
    return positive[np.argsort(-values[positive], kind='stable')]


def top_terms(model, relevance, n=10, labels=None, rows=None, as_frame=None):
    """The n terms with the largest positive relevance, per document or (with ``labels``) per cluster.

    Parameters
    ----------
    model : object with ``get_feature_names_out()``, sequence of str, or None
        Where the term names come from: a neuralized text model (its vocabulary), a fitted vectorizer or
        pipeline, or the names themselves; None names columns ``x0, x1, ...``.
    relevance : array-like or scipy sparse matrix of shape (n_samples, n_features)
        From :func:`~zennit_clusters.explain` (a sparse result is read without densifying it).
    n : int
        Terms per document or cluster. Fewer are returned where fewer terms have positive relevance: terms that
        speak against the cluster are not among its top terms (pass ``-relevance`` for those).
    labels : array-like of shape (n_samples,), optional
        Each document's cluster: rank terms by their mean relevance over the cluster's documents (labels < 0,
        noise, are left out). Without labels, rank each document's own terms.
    rows : array-like of int, optional
        The documents to report (without labels); default all.
    as_frame : bool, optional
        Return a pandas DataFrame (columns ``document`` or ``cluster``, ``rank``, ``term``, ``relevance``); default
        True when pandas is installed. Otherwise a dict ``{document or cluster: [(term, relevance), ...]}``.

    Returns
    -------
    pandas.DataFrame or dict
    """
    import scipy.sparse
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f'n must be a positive int, got {n!r}.')
    sparse = scipy.sparse.issparse(relevance)
    if sparse:
        relevance = scipy.sparse.csr_matrix(relevance)
    else:
        relevance = np.asarray(relevance.detach().cpu() if hasattr(relevance, 'detach') else relevance)
    if relevance.ndim != 2:
        raise ValueError(f'relevance must be 2-d of shape (n_samples, n_features), got shape {relevance.shape}.')
    names = _feature_names(model, relevance.shape[1])
    result = {}
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (relevance.shape[0],):
            raise ValueError(f'labels must have shape ({relevance.shape[0]},), got {labels.shape}.')
        key = 'cluster'
        clusters = np.unique(labels[labels >= 0])
        # (clusters, n_samples) mean indicator times relevance: (clusters, V), never (n_samples, V) dense
        index = np.searchsorted(clusters, labels[labels >= 0])
        members = np.flatnonzero(labels >= 0)
        indicator = scipy.sparse.csr_matrix((np.ones(len(members)), (index, members)),
                                            shape=(len(clusters), relevance.shape[0]))
        counts = np.asarray(indicator.sum(1)).ravel()
        sums = indicator @ relevance
        means = (sums.toarray() if scipy.sparse.issparse(sums) else np.asarray(sums)) / counts[:, None]
        for cluster, values in zip(clusters, means):
            top = _largest(values, n)
            result[cluster.item()] = [(names[i], float(values[i])) for i in top]
    else:
        key = 'document'
        rows = np.arange(relevance.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64).ravel()
        for row in rows:
            if sparse:
                start, stop = relevance.indptr[row], relevance.indptr[row + 1]
                values, columns = relevance.data[start:stop], relevance.indices[start:stop]
                top = _largest(values, n)
                result[int(row)] = [(names[columns[i]], float(values[i])) for i in top]
            else:
                values = relevance[row]
                top = _largest(values, n)
                result[int(row)] = [(names[i], float(values[i])) for i in top]
    if as_frame is None:
        try:
            import pandas  # noqa: F401
            as_frame = True
        except ImportError:
            as_frame = False
    if not as_frame:
        return result
    import pandas as pd
    records = [(which, rank, term, value) for which, terms in result.items()
               for rank, (term, value) in enumerate(terms, start=1)]
    return pd.DataFrame(records, columns=[key, 'rank', 'term', 'relevance'])
