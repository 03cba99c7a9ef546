"""What makes each cluster: its defining features, whether they are high or low there, and its rivals.

>>> from zennit_clusters import summarize
>>> summary = summarize(kmeans, X, feature_names=names, top=5)
>>> print(summary)                       # one table per cluster, readable in a terminal
>>> summary[0].features                  # cluster 0's table (a pandas DataFrame when pandas is installed)
>>> summary.to_frame()                   # every cluster's table in one long frame

Mean relevance alone does not tell clusters apart: with K = 2 and k-means' midpoint rule, both clusters' mean
relevance profiles are ``(mu_0 - mu_1)**2`` per feature, the same numbers. What differs is the *direction*
(:func:`zennit_clusters.direction`: the feature speaks for the cluster because the value is high, or because
it is low, relative to the competitors) and the typical values (the cluster's median against the others'),
which the summary reports next to the relevance.
"""
import dataclasses

import numpy as np

from .api import CHUNK_ELEMENTS, explain_with_constant, neuralize
from .explanation import _numpy, direction_of, has_direction, network_input, user_values
from .validation import resolve_feature_names

__all__ = ['summarize', 'Summary', 'ClusterSummary', 'FEATURE_COLUMNS', 'RIVAL_COLUMNS']

#: the columns of :attr:`ClusterSummary.features`, in order
FEATURE_COLUMNS = ('feature', 'relevance', 'share', 'direction', 'direction_score', 'median', 'median_rest')
#: the columns of :attr:`ClusterSummary.confused_with`, in order
RIVAL_COLUMNS = ('cluster', 'runner_up_share', 'mean_margin')

#: a direction score beyond +-1/3 reads as high / low; in between, the members disagree ("mixed")
DIRECTION_THRESHOLD = 1.0 / 3.0


def _table(columns, names):
    """A pandas DataFrame when pandas is installed, else the plain dict of columns (name -> list) it is made of."""
    columns = {name: list(columns[name]) for name in names}
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        return columns
    return pd.DataFrame(columns, columns=list(names))


def _columns(table):
    """The columns of a table made by :func:`_table` as a dict of lists, whichever form it has."""
    if isinstance(table, dict):
        return table
    return {name: table[name].tolist() for name in table.columns}


def _direction_word(score):
    if score != score:  # NaN: the family has no direction
        return 'n/a'
    if score > DIRECTION_THRESHOLD:
        return 'high'
    if score < -DIRECTION_THRESHOLD:
        return 'low'
    return 'mixed'


@dataclasses.dataclass(frozen=True, eq=False)
class ClusterSummary:
    """One cluster of a :class:`Summary`.

    Attributes
    ----------
    cluster : int
    size : int
        Points assigned to it.
    mean_evidence : float
        Mean evidence ``f_c(x)`` of its points.
    mean_constant : float
        Mean constant term (zero for centroid and member models): ``mean relevance.sum() + mean_constant ==
        mean_evidence``.
    features : pandas.DataFrame, or dict of str to list without pandas
        Its ``top`` features of largest mean relevance, largest first, with the columns of
        :data:`FEATURE_COLUMNS`: ``feature`` (name); ``relevance`` (mean over the cluster's points); ``share``
        (``relevance / mean_evidence``: the fraction of the evidence the feature carries; all D shares and the
        constant's sum to 1); ``direction`` (``'high'``, ``'low'``, ``'mixed'``, or ``'n/a'`` for families
        without one) from ``direction_score`` = (points where the value speaks for the cluster by being high -
        those where by being low) / size, in [-1, 1], read as high above 1/3 and low below -1/3; ``median`` of
        the feature over the cluster's points and ``median_rest`` over every other assigned point.
    confused_with : pandas.DataFrame, or dict of str to list without pandas
        The runner-up clusters (second-largest evidence) of its points, most frequent first, columns
        :data:`RIVAL_COLUMNS`: ``cluster``, ``runner_up_share`` (fraction of its points), ``mean_margin``
        (mean ``f_c - f_k`` over those points: how far they are from switching).
    """
    cluster: int
    size: int
    mean_evidence: float
    mean_constant: float
    features: object
    confused_with: object

    def to_string(self, digits=3):
        """The cluster as aligned text: a head line, its rivals, and its feature table."""
        rivals = _columns(self.confused_with)
        rival_text = ', '.join(f'{k} ({share:.0%}, margin {margin:.{digits}g})' for k, share, margin in
                               zip(rivals['cluster'], rivals['runner_up_share'], rivals['mean_margin']))
        head = f'cluster {self.cluster}: {self.size} points, mean evidence {self.mean_evidence:.{digits}f}'
        if self.mean_constant != 0:
            head += f' (constant {self.mean_constant:+.{digits}g})'
        lines = [head, f'  runner-up: {rival_text or "none"}']
        columns = _columns(self.features)
        cells = [['feature', 'relevance', 'share', 'direction', 'median', 'rest median']]
        for i in range(len(columns['feature'])):
            score = columns['direction_score'][i]
            direction = columns['direction'][i] + ('' if score != score else f' ({score:+.2f})')
            cells.append([columns['feature'][i], f"{columns['relevance'][i]:#.{digits}g}",
                          f"{columns['share'][i]:.0%}", direction, f"{columns['median'][i]:#.{digits}g}",
                          f"{columns['median_rest'][i]:#.{digits}g}"])
        widths = [max(len(row[j]) for row in cells) for j in range(len(cells[0]))]
        for row in cells:
            lines.append('  ' + '  '.join(cell.ljust(w) if j in (0, 3) else cell.rjust(w)
                                          for j, (cell, w) in enumerate(zip(row, widths))).rstrip())
        return '\n'.join(lines)

    def __str__(self):
        return self.to_string()


@dataclasses.dataclass(frozen=True, eq=False)
class Summary:
    """Per-cluster summaries of a model's explanations of some data (:func:`summarize`).

    Index it by cluster number (``summary[c]``), iterate over its :class:`ClusterSummary` objects, print it.

    Attributes
    ----------
    clusters : tuple of ClusterSummary
        One per cluster with at least one point, in cluster order.
    n_clusters : int
        Clusters of the model (clusters without points have no entry).
    n_points : int
    n_noise : int
        Points labelled noise (-1), left out of every cluster.
    feature_names : tuple of str
    beta : float
        The soft-min stiffness of the relevance.
    """
    clusters: tuple
    n_clusters: int
    n_points: int
    n_noise: int
    feature_names: tuple
    beta: float

    def __getitem__(self, cluster):
        for entry in self.clusters:
            if entry.cluster == cluster:
                return entry
        raise KeyError(f'no summary for cluster {cluster!r}: clusters with points are '
                       f'{[entry.cluster for entry in self.clusters]}.')

    def __iter__(self):
        return iter(self.clusters)

    def __len__(self):
        return len(self.clusters)

    def to_string(self, digits=3):
        """Every cluster's :meth:`ClusterSummary.to_string`, under one head line."""
        head = (f'{self.n_points} points, {self.n_clusters} clusters, beta = {self.beta:.4g}'
                + (f', {self.n_noise} noise points' if self.n_noise else ''))
        return '\n\n'.join([head] + [entry.to_string(digits) for entry in self.clusters])

    def __str__(self):
        return self.to_string()

    def __repr__(self):
        return f'Summary({self.n_points} points, clusters {[entry.cluster for entry in self.clusters]})'

    def to_frame(self):
        """Every cluster's feature table in one pandas DataFrame, with a leading ``cluster`` column.

        Returns
        -------
        pandas.DataFrame
            Columns ``cluster`` then :data:`FEATURE_COLUMNS`; rows grouped by cluster, each cluster's in its
            table's order.
        """
        import pandas as pd
        frames = []
        for entry in self.clusters:
            frame = pd.DataFrame(_columns(entry.features), columns=list(FEATURE_COLUMNS))
            frame.insert(0, 'cluster', entry.cluster)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def _nanmedian(values):
    """Column medians over the values present (a column with none present: NaN, without numpy's warning)."""
    present = ~np.isnan(values)
    out = np.full(values.shape[1], np.nan)
    full = present.all(0)
    out[full] = np.median(values[:, full], axis=0)
    for column in np.flatnonzero(~full & present.any(0)):
        out[column] = np.median(values[present[:, column], column])
    return out


def summarize(model, X, feature_names=None, top=5, beta=None, chunk_size=None, direction=None):
    """Per cluster, the features that define it, how (high or low), and the clusters it is confused with.

    Parameters
    ----------
    model : NeuralizedModel or fitted estimator
        Anything :func:`~zennit_clusters.neuralize` accepts.
    X : array-like, pandas.DataFrame or torch.Tensor of shape (n_samples, n_features)
        The points to summarise (typically the training data); each counts for its assigned cluster.
    feature_names : sequence of str, optional
        As for :meth:`~zennit_clusters.Explanation.of`.
    top : int or None
        Features per cluster, largest mean relevance first; None for all.
    beta : float, optional
        Soft-min stiffness; default the model's own.
    chunk_size : int, optional
        Rows explained at a time; default 16 MB of float32 input per chunk. Memory holds O(chunk x D) besides
        X, never (N, K, D).
    direction : bool or None
        As for :meth:`~zennit_clusters.Explanation.of`: None where the family has one (else the ``direction``
        column reads ``'n/a'``), True to require it, False to skip it.

    Returns
    -------
    Summary
    """
    model = neuralize(model)
    names = resolve_feature_names(model.n_features_in_, feature_names, X, model)
    x = network_input(model, X)
    n, d = x.shape
    k_total = model.n_clusters
    if top is not None and (isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1):
        raise ValueError(f'top must be a positive int or None, got {top!r}.')
    shown = d if top is None else min(int(top), d)
    if chunk_size is None:
        chunk_size = max(1, CHUNK_ELEMENTS // max(d, k_total))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f'chunk_size must be a positive int, got {chunk_size!r}.')

    count = np.zeros(k_total)
    relevance_sum = np.zeros((k_total, d))
    evidence_sum = np.zeros(k_total)
    constant_sum = np.zeros(k_total)
    direction_sum = np.zeros((k_total, d))  # (number high - number low) per cluster and feature
    # direction=True asks for it where the family has none: direction() says why
    with_direction = direction is True or (direction is None and has_direction(model))
    rival_count = np.zeros((k_total, k_total))
    margin_sum = np.zeros((k_total, k_total))
    labels = np.empty(n, dtype=np.int64)
    eye = np.eye(k_total)
    for start in range(0, n, int(chunk_size)):
        chunk = x[start:start + int(chunk_size)]
        relevance, constant, label, logits = (_numpy(value) for value in explain_with_constant(
            model, chunk, beta=beta, return_logits=True, grouped=False))  # per network column, as x is
        labels[start:start + len(label)] = label
        assigned = label >= 0
        onehot = eye[label[assigned]]  # (rows, K): sums per cluster as one matrix product
        count += onehot.sum(0)
        relevance_sum += onehot.T @ relevance[assigned].astype(np.float64)
        evidence_sum += onehot.T @ logits[assigned, label[assigned]].astype(np.float64)
        constant_sum += onehot.T @ constant[assigned].astype(np.float64)
        if with_direction:
            codes = direction_of(model, chunk, beta=beta, required=True)
            direction_sum += onehot.T @ codes[assigned].astype(np.float64)
        if k_total > 1 and assigned.any():
            own = logits[assigned].astype(np.float64)
            rows = np.arange(len(own))
            evidence = own[rows, label[assigned]]
            own[rows, label[assigned]] = -np.inf
            runner_up = own.argmax(1)
            np.add.at(rival_count, (label[assigned], runner_up), 1.0)
            np.add.at(margin_sum, (label[assigned], runner_up), evidence - own[rows, runner_up])

    values = user_values(model, X, x)  # the user's units; NaN where their value is missing
    clusters = []
    for c in range(k_total):
        size = int(count[c])
        if size == 0:
            continue
        members = labels == c
        rest = (labels >= 0) & ~members
        mean_relevance = relevance_sum[c] / size
        mean_evidence = evidence_sum[c] / size
        score = direction_sum[c] / size if with_direction else np.full(d, np.nan)
        median = _nanmedian(values[members])
        median_rest = _nanmedian(values[rest]) if rest.any() else np.full(d, np.nan)
        order = np.argsort(-mean_relevance, kind='stable')[:shown]
        share = mean_relevance / mean_evidence if mean_evidence != 0 else np.full(d, np.nan)
        features = _table({
            'feature': [names[i] for i in order], 'relevance': mean_relevance[order], 'share': share[order],
            'direction': [_direction_word(s) for s in score[order]], 'direction_score': score[order],
            'median': median[order], 'median_rest': median_rest[order],
        }, FEATURE_COLUMNS)
        rivals = np.flatnonzero(rival_count[c])
        rivals = rivals[np.argsort(-rival_count[c, rivals], kind='stable')]
        confused = _table({
            'cluster': [int(k) for k in rivals], 'runner_up_share': rival_count[c, rivals] / size,
            'mean_margin': margin_sum[c, rivals] / rival_count[c, rivals],
        }, RIVAL_COLUMNS)
        clusters.append(ClusterSummary(cluster=c, size=size, mean_evidence=float(mean_evidence),
                                       mean_constant=float(constant_sum[c] / size), features=features,
                                       confused_with=confused))
    return Summary(clusters=tuple(clusters), n_clusters=k_total, n_points=n, n_noise=int((labels < 0).sum()),
                   feature_names=names, beta=float(model.beta if beta is None else beta))
