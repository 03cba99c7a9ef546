"""An explanation that carries its context: labels, evidence, relevance, names, direction; tables and SHAP.

:func:`~zennit_clusters.explain` returns a bare (N, D) array, which is what a pipeline wants.
:meth:`Explanation.of` returns the same relevance with everything a person needs to read it:

>>> from zennit_clusters import Explanation
>>> e = Explanation.of(kmeans, X, feature_names=names)
>>> e.relevance.sum(1) + e.constant == e.evidence          # conservation, for every family
>>> print(e.describe(0))                                  # one point, its top features, high or low
>>> e.to_frame()                                          # a tidy pandas frame, one row per (point, feature)
>>> shap.plots.waterfall(e.to_shap()[0])                  # SHAP's plots on NEON relevance
"""
import dataclasses

import numpy as np
import torch

from .api import direction, explain_with_constant, make_explainer, neuralize
from .validation import as_feature_tensor, check_cluster, check_contrast, resolve_feature_names

__all__ = ['Explanation', 'direction_of', 'has_direction', 'network_input', 'user_values']

#: how a direction code reads in tables and text (see :attr:`Explanation.direction`)
DIRECTION_WORDS = {1: 'high', -1: 'low', 0: 'none'}
DIRECTION_ARROWS = {1: '\u2191', -1: '\u2193', 0: '\u00b7'}


def _numpy(value):
    if value is None:
        return None
    if torch.is_tensor(value):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def network_input(model, X):
    """X as the (N, D) float tensor the network takes: through ``model.encode`` where the model has one (column
    checks and host-side encoders of pipelines fitted on DataFrames), then :func:`as_feature_tensor`."""
    encode = getattr(model, 'encode', None)
    return as_feature_tensor(encode(X) if callable(encode) else X, model.n_features_in_)[0]


def user_values(model, X, x):
    """The values a person reads beside each network column: the user's own, where one exists.

    A pipeline's host-side encoders (a ColumnTransformer's scalers and imputers) hand the network scaled or
    filled-in numbers; a column that comes one to one from a numeric column of the user's X is shown with the
    user's value instead (NaN where the user's value is missing), the others (one-hot categories, ordinal
    codes, vectorized terms) with the network's. Scaling is increasing for every supported scaler, so a value's
    direction (high or low) reads the same on both.

    Returns
    -------
    numpy.ndarray of shape (N, D), float64
    """
    values = _numpy(x).astype(np.float64)
    groups = model.feature_groups if hasattr(model, 'feature_groups') else None
    if groups is None or torch.is_tensor(X):
        return values
    from .columns import frame_values, is_dataframe
    index, names = (np.asarray(part) for part in groups)
    if is_dataframe(X):
        columns = {}
        for j, (_, dtype) in enumerate(X.dtypes.items()):
            if getattr(dtype, 'kind', 'O') in 'biuf':
                columns[j] = frame_values(X.iloc[:, [j]])[:, 0]
    else:
        raw = np.asarray(X)
        if raw.ndim != 2 or raw.shape[1] != len(names) or raw.dtype.kind not in 'biuf':
            return values
        columns = dict(enumerate(raw.astype(np.float64).T))
    single = np.bincount(index, minlength=len(names)) == 1
    for i, j in enumerate(index):
        if single[j] and j in columns:
            values[:, i] = columns[j]
    return values


def has_direction(model):
    """Whether a model's family offers :func:`zennit_clusters.direction` (pairwise margins with a root point:
    centroid models, mixtures, member networks and pipelines before them; not stacked deep models)."""
    try:
        # cluster and beta left at their defaults: the one thing that can be refused here is the output
        make_explainer(neuralize(model), output='direction')
    except ValueError:
        return False
    return True


def direction_of(model, X, cluster=None, beta=None, required=False, contrast=None, reference=None):
    """Per-feature direction codes of :func:`zennit_clusters.direction`, or None where a family has none.

    Parameters
    ----------
    model, X, cluster, beta, contrast, reference
        As for :func:`zennit_clusters.direction`.
    required : bool
        Raise (the ``ValueError`` of :func:`zennit_clusters.direction`) instead of returning None where the
        model's family has no direction.

    Returns
    -------
    numpy.ndarray of shape (N, D), int8, or None
    """
    if not required and not has_direction(model):
        return None  # a family without pairwise margins has no high/low reading: none rather than a guess
    return _numpy(direction(model, X, cluster=cluster, beta=beta, contrast=contrast, reference=reference,
                            grouped=False)).astype(
        np.int8, copy=False)


@dataclasses.dataclass(frozen=True, eq=False)
class Explanation:
    """NEON relevance of N points with the context to read it (numpy arrays on the CPU).

    Build one with :meth:`Explanation.of`. Conservation holds row by row:
    ``relevance.sum(1) + constant == evidence`` (to rounding in the dtype of the computation).

    Attributes
    ----------
    relevance : numpy.ndarray of shape (N, D)
        Relevance of each feature for the evidence of the explained cluster (:func:`~zennit_clusters.explain`).
    labels : numpy.ndarray of shape (N,), int64
        Each point's assigned cluster (-1 for noise where the model has a noise rule).
    logits : numpy.ndarray of shape (N, K)
        The evidence ``f_k(x)`` of every cluster.
    cluster : numpy.ndarray of shape (N,), int64
        The cluster each row explains: its label, or the ``cluster`` asked for; a noise row explains its largest
        logit, as :func:`~zennit_clusters.explain` does (for DBSCAN's noise rule, the negative evidence
        ``eps^2 - |x - v*|^2`` of its nearest core sample v*).
    constant : numpy.ndarray of shape (N,)
        The part of the evidence no feature carries (:func:`~zennit_clusters.explain_with_constant`): zero for
        centroid and member models and tied mixtures; the mixing-weight and covariance terms of other mixtures.
    data : numpy.ndarray of shape (N, D)
        The feature values explained, in the user's units where a network column is one of the user's numeric
        columns (before a ColumnTransformer's scaling or imputation: NaN where the user's value is missing;
        :func:`user_values`), else the network's input (one-hot categories, codes, terms).
    feature_names : tuple of str
    direction : numpy.ndarray of shape (N, D), int8, or None
        :func:`zennit_clusters.direction`: +1 where the point's value lies above the root points on the
        boundaries to the competitors (weighted by each competitor's part of the relevance), -1 below, 0 where
        the feature does not separate; read with the relevance's sign (R > 0 and +1: speaks for the cluster
        because it is high; R < 0 and +1: against it because it is high). None for families without pairwise
        margins (mixtures, member networks).
    per_competitor : numpy.ndarray of shape (N, K, D) or None
        Only when asked for: the relevance split by competitor (``explain(..., per_competitor=True)``); the parts
        sum over K to ``relevance`` (zero at k = c). K x the memory of ``relevance``.
    per_competitor_constant : numpy.ndarray of shape (N, K) or None
        With ``per_competitor``: the constant term split the same way (zero but for mixtures); the parts
        ``per_competitor[:, k].sum(1) + per_competitor_constant[:, k]`` sum over k to ``evidence``.
    contrast : numpy.ndarray of shape (N,), int64, or None
        For a contrastive explanation ("why c rather than k?"): each row's competitor k. Then the relevance and
        the constant explain the margin ``h_ck(x)`` (:attr:`target`), not the evidence.
    beta : float
        The soft-min stiffness the relevance was computed with.
    """
    relevance: np.ndarray
    labels: np.ndarray
    logits: np.ndarray
    cluster: np.ndarray
    constant: np.ndarray
    data: np.ndarray
    feature_names: tuple
    direction: np.ndarray = None
    per_competitor: np.ndarray = None
    per_competitor_constant: np.ndarray = None
    contrast: np.ndarray = None
    beta: float = None
    reference: object = None

    @classmethod
    def of(cls, model, X, cluster=None, beta=None, feature_names=None, direction=None, per_competitor=False,
           contrast=None, reference=None, chunk_size=None, epsilon=None):
        """Explain ``X`` and keep the result with its context.

        Parameters
        ----------
        model : NeuralizedModel or fitted estimator
            Anything :func:`~zennit_clusters.neuralize` accepts.
        X : array-like, pandas.DataFrame or torch.Tensor of shape (n_samples, n_features)
        cluster, beta, contrast, reference, chunk_size, epsilon
            As for :func:`~zennit_clusters.explain`: ``contrast=k`` explains "why c rather than k" (the margin
            ``h_ck``), ``reference=`` takes the root points toward a reference (e.g. ``'mean'``).
        feature_names : sequence of str, optional
            Default: the columns of a DataFrame ``X``, else the model's own names (``get_feature_names_out()`` of
            a neuralized model, ``feature_names_in_`` of an estimator), else ``'x0'`` .. ``'x{D-1}'``.
        direction : bool or None
            Compute :attr:`direction`: None where the model's family has one, True to require it (an error
            otherwise), False to skip it.
        per_competitor : bool
            Also keep the (N, K, D) per-competitor parts (K times the memory of the relevance).

        Returns
        -------
        Explanation
        """
        model = neuralize(model)  # first: a pipeline's names are those of its encoded columns
        names = resolve_feature_names(model.n_features_in_, feature_names, X, model)
        cluster = check_cluster(cluster, model.n_clusters)
        x = network_input(model, X)
        # everything per network input column (one-hot categories apart), as x and the names are
        options = dict(cluster=cluster, beta=beta, chunk_size=chunk_size, epsilon=epsilon, reference=reference,
                       grouped=False)
        relevance, constant, labels, logits = explain_with_constant(model, x, contrast=contrast, return_logits=True,
                                                                    **options)
        labels = _numpy(labels).astype(np.int64, copy=False)
        logits = _numpy(logits)
        if cluster is None:  # a noise row (label -1, finite logits) explains its largest logit, as explain() does
            explained = np.where(labels >= 0, labels, logits.argmax(1))
        else:
            explained = np.full_like(labels, cluster)
        directions = None
        if direction is not False:
            directions = direction_of(model, x, cluster=cluster, beta=beta, required=direction is True,
                                      contrast=contrast, reference=reference)
        parts = part_constants = None
        if per_competitor:
            parts, part_constants = (_numpy(value) for value in explain_with_constant(
                model, x, per_competitor=True, contrast=contrast, **options))  # contrast with parts: its error
        if contrast is not None:
            contrast = _numpy(check_contrast(contrast, model.n_clusters, x)).astype(np.int64, copy=False)
        if isinstance(reference, (np.ndarray, torch.Tensor)):
            reference = _numpy(reference).copy()
        return cls(relevance=_numpy(relevance), labels=labels, logits=logits, cluster=explained,
                   constant=_numpy(constant), data=user_values(model, X, x), feature_names=names, direction=directions,
                   per_competitor=parts, per_competitor_constant=part_constants, contrast=contrast,
                   beta=float(model.beta if beta is None else beta), reference=reference)

    def __len__(self):
        return self.relevance.shape[0]

    def __repr__(self):
        n, d = self.relevance.shape
        extra = ''.join(f', {name}' for name in ('direction', 'per_competitor', 'contrast', 'reference')
                        if getattr(self, name) is not None)
        return (f'Explanation({n} points x {d} features, {self.logits.shape[1]} clusters, beta={self.beta:.4g}'
                f'{extra})')

    @property
    def evidence(self):
        """(N,) evidence ``f_c(x)`` of each row's explained cluster (``relevance.sum(1) + constant`` unless
        ``contrast``)."""
        return self.logits[np.arange(len(self)), self.cluster]

    @property
    def target(self):
        """(N,) what the relevance explains: the evidence, or with ``contrast`` the margin ``h_ck(x)``; equal to
        ``relevance.sum(1) + constant`` by conservation (which the tests check against h_ck computed apart)."""
        if self.contrast is None:
            return self.evidence
        return self.relevance.sum(1) + self.constant

    def describe(self, row, top=5):
        """One point in words: its cluster, evidence and the features of largest ``|relevance|``.

        Parameters
        ----------
        row : int
        top : int
            How many features to list.

        Returns
        -------
        str
            One line per feature: name, value, relevance, and (where known) whether the value is high or low
            relative to the competitors (an arrow ``↑``/``↓``; "speaks against" where the relevance is negative).
        """
        row = int(row)
        relevance = self.relevance[row]
        order = np.argsort(-np.abs(relevance), kind='stable')[:int(top)]
        label = int(self.labels[row])
        head = f'point {row}: cluster {label}' if label >= 0 else f'point {row}: noise'
        if label != int(self.cluster[row]):
            head += f', explaining cluster {int(self.cluster[row])}'
        if self.contrast is not None:
            head += f' rather than {int(self.contrast[row])} (margin {self.target[row]:.3f}, evidence ' \
                    f'{self.evidence[row]:.3f}'
        else:
            head += f' (evidence {self.evidence[row]:.3f}'
        head += f', constant {self.constant[row]:+.3f})' if self.constant[row] != 0 else ')'
        width = max(len(self.feature_names[i]) for i in order)
        lines = [head]
        for i in order:
            arrow = ''
            if self.direction is not None:
                code = int(self.direction[row, i])
                arrow = f'  {DIRECTION_ARROWS[code]} {DIRECTION_WORDS[code]}'
                arrow += ' (speaks against)' if relevance[i] < 0 and code else ''
            lines.append(f'  {self.feature_names[i]:<{width}}  = {self.data[row, i]:9.3g}'
                         f'  relevance {relevance[i]:+.3f}{arrow}')
        return '\n'.join(lines)

    def to_frame(self, kind='long'):
        """The explanation as a pandas DataFrame.

        Parameters
        ----------
        kind : {'long', 'wide'}
            ``'long'`` (tidy): one row per (point, feature), N x D rows, columns ``point``, ``label``,
            ``cluster`` (the explained one), ``feature``, ``value``, ``relevance`` and, where known,
            ``direction`` (+1/-1/0). ``'wide'``: one row per point (index: point), columns ``label``,
            ``cluster``, ``evidence``, ``constant``, then one column of relevance per feature, named by it.

        Returns
        -------
        pandas.DataFrame
        """
        import pandas as pd
        n, d = self.relevance.shape
        if kind == 'wide':
            frame = pd.DataFrame(self.relevance, columns=list(self.feature_names))
            frame.insert(0, 'constant', self.constant)
            frame.insert(0, 'evidence', self.evidence)
            frame.insert(0, 'cluster', self.cluster)
            frame.insert(0, 'label', self.labels)
            frame.index.name = 'point'
            return frame
        if kind != 'long':
            raise ValueError(f"kind must be 'long' or 'wide', got {kind!r}.")
        columns = {
            'point': np.repeat(np.arange(n), d),
            'label': np.repeat(self.labels, d),
            'cluster': np.repeat(self.cluster, d),
            'feature': pd.Categorical(np.tile(np.asarray(self.feature_names, dtype=object), n),
                                      categories=list(self.feature_names)),
            'value': self.data.reshape(-1),
            'relevance': self.relevance.reshape(-1),
        }
        if self.direction is not None:
            columns['direction'] = self.direction.reshape(-1)
        return pd.DataFrame(columns)

    def to_shap(self):
        """The explanation as a ``shap.Explanation``, for SHAP's plots (waterfall, bar, beeswarm, ...).

        ``values`` is the relevance, ``data`` the feature values, ``feature_names`` the names, and
        ``base_values`` the constant term, so that ``values.sum(1) + base_values == f_c(x)``, the evidence of the
        explained cluster (what SHAP's waterfall shows as ``f(x)``; the margin ``h_ck(x)`` with ``contrast``).
        Note that this is not SHAP's ``E[f(X)]``: NEON's reference is each pairwise decision boundary, where the evidence is zero, so the base value is
        zero for centroid and member models, and the part no feature carries for mixtures.

        Returns
        -------
        shap.Explanation
        """
        try:
            import shap
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError('to_shap() needs shap: pip install shap') from error
        return shap.Explanation(values=self.relevance, base_values=self.constant, data=self.data,
                                feature_names=list(self.feature_names))
