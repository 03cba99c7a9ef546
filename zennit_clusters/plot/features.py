"""Relevance per feature: bars for one point (with its direction, where known), profiles per cluster, and removal
curves."""
import numpy as np

from ..explanation import DIRECTION_ARROWS
from .base import load_matplotlib, new_axes, signed_colors, symmetric_bound, zennit_colormap

__all__ = ['relevance_bars', 'point_bars', 'cluster_profiles', 'removal_curves_plot']


def relevance_bars(relevance, feature_names=None, top=None, ax=None, title=None, values=None, cmap='bwr',
                   figsize=None, direction=None):
    """Horizontal bar chart of the relevance of each feature of one row (largest ``|R|`` on top).

    Parameters
    ----------
    relevance : array-like of shape (D,)
    feature_names : sequence of str, optional
    top : int, optional
        Show only the ``top`` features of largest ``|relevance|``.
    ax : matplotlib.axes.Axes, optional
    title : str, optional
    values : array-like of shape (D,), optional
        The feature values, written next to the names.
    cmap : str
        Zennit colour map whose ends colour negative (blue) and positive (red) bars.
    figsize : tuple, optional
    direction : array-like of shape (D,), optional
        Direction codes of :func:`zennit_clusters.direction` (+1: the value speaks for the cluster because it is
        high, -1: because it is low, 0: neither), drawn as an arrow after each name (``↑``, ``↓``, ``·``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    relevance = np.asarray(relevance, dtype=np.float64).ravel()
    if direction is not None:
        direction = np.asarray(direction).ravel()
        if direction.shape != relevance.shape or not np.isin(direction, (-1, 0, 1)).all():
            raise ValueError(f'direction must hold {relevance.size} codes in {{-1, 0, +1}}, got shape '
                             f'{direction.shape} with values {np.unique(direction)[:5].tolist()}.')
    names = [f'x{i}' for i in range(relevance.size)] if feature_names is None else list(feature_names)
    if len(names) != relevance.size:
        raise ValueError(f'{len(names)} feature names for {relevance.size} relevances.')
    order = np.argsort(-np.abs(relevance), kind='stable')
    if top is not None:
        order = order[:int(top)]
    order = order[::-1]
    labels = [names[i] if values is None else f'{names[i]} = {np.asarray(values).ravel()[i]:.3g}' for i in order]
    if direction is not None:
        labels = [f'{label} {DIRECTION_ARROWS[int(direction[i])]}' for label, i in zip(labels, order)]
    fig, ax = new_axes(ax, figsize or (4.5, 0.25 * len(order) + 1.0))
    ax.barh(np.arange(len(order)), relevance[order], color=signed_colors(relevance[order], cmap),
            edgecolor='0.3', linewidth=0.5)
    ax.set_yticks(np.arange(len(order)), labels, fontsize=8)
    ax.axvline(0.0, color='0.3', linewidth=0.8)
    ax.set_xlabel('relevance')
    if title is not None:
        ax.set_title(title, fontsize=9)
    return fig


def point_bars(explanation, row, top=10, ax=None, cmap='bwr', figsize=None):
    """One point of an :class:`~zennit_clusters.Explanation`: its relevance bars, each feature with its value and
    (where the family has one) an arrow for high or low, titled by the cluster and evidence.

    Parameters
    ----------
    explanation : zennit_clusters.Explanation
    row : int
    top : int or None
        The ``top`` features of largest ``|relevance|``.
    ax, cmap, figsize : as in :func:`relevance_bars`

    Returns
    -------
    matplotlib.figure.Figure
    """
    row = int(row)
    label = int(explanation.labels[row])
    title = (f'point {row}: ' + (f'cluster {label}' if label >= 0 else 'noise')
             + (f', explaining {int(explanation.cluster[row])}' if label != int(explanation.cluster[row]) else '')
             + f' (evidence {explanation.evidence[row]:.3g})')
    direction = None if explanation.direction is None else explanation.direction[row]
    return relevance_bars(explanation.relevance[row], explanation.feature_names, top=top, ax=ax, title=title,
                          values=explanation.data[row], cmap=cmap, figsize=figsize, direction=direction)


def cluster_profiles(relevance, labels, feature_names=None, top=None, kind='bars', cluster_names=None,
                     normalize=False, cmap='bwr', suptitle=None):
    """Mean relevance of each feature per cluster: what, on average, puts points into each cluster.

    Parameters
    ----------
    relevance : array-like of shape (N, D)
        Relevance of each point for its assigned cluster.
    labels : array-like of shape (N,)
        Each point's cluster.
    feature_names : sequence of str, optional
    top : int, optional
        With ``kind='bars'``, show only each cluster's ``top`` features of largest ``|mean relevance|``.
    kind : {'bars', 'matrix'}
        One bar chart per cluster, or one (K, D) colour matrix.
    cluster_names : sequence of str, optional
    normalize : bool
        Divide each cluster's profile by its mean evidence (the profile then sums to 1).
    cmap : str
        Zennit colour map.
    suptitle : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    _, Figure = load_matplotlib()
    relevance = np.asarray(relevance, dtype=np.float64)
    labels = np.asarray(labels)
    if relevance.ndim != 2 or labels.shape != (relevance.shape[0],):
        raise ValueError(f'relevance must be (N, D) and labels (N,), got {relevance.shape} and {labels.shape}.')
    clusters = np.unique(labels)
    profiles = np.stack([relevance[labels == c].mean(0) for c in clusters])
    if normalize:
        profiles = profiles / np.where(profiles.sum(1, keepdims=True) == 0, 1.0, profiles.sum(1, keepdims=True))
    names = [f'cluster {c} (n={int((labels == c).sum())})' for c in clusters] if cluster_names is None \
        else list(cluster_names)
    features = [f'x{i}' for i in range(relevance.shape[1])] if feature_names is None else list(feature_names)
    if kind == 'matrix':
        fig = Figure(figsize=(max(4.0, 0.28 * len(features) + 2.0), 0.45 * len(clusters) + 1.8),
                     layout='constrained')
        ax = fig.add_subplot()
        bound = symmetric_bound(profiles)
        mappable = ax.imshow(profiles, cmap=zennit_colormap(cmap), vmin=-bound, vmax=bound, aspect='auto',
                             interpolation='nearest')
        ax.set_xticks(np.arange(len(features)), features, rotation=90, fontsize=7)
        ax.set_yticks(np.arange(len(clusters)), names, fontsize=8)
        fig.colorbar(mappable, ax=ax, label='mean relevance')
    elif kind == 'bars':
        shown = len(features) if top is None else min(int(top), len(features))
        fig = Figure(figsize=(4.2 * len(clusters), 0.25 * shown + 1.4), layout='constrained')
        axes = fig.subplots(1, len(clusters), squeeze=False)[0]
        for ax, profile, name in zip(axes, profiles, names):
            relevance_bars(profile, features, top=top, ax=ax, title=name, cmap=cmap)
            ax.set_xlabel('mean relevance')
    else:
        raise ValueError(f"kind must be 'bars' or 'matrix', got {kind!r}.")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def removal_curves_plot(curves, ax=None, title=None, figsize=(5, 3.5)):
    """MoRF (solid) and LeRF (dashed) curves of several attributions, ABPC in the legend.

    Parameters
    ----------
    curves : dict of str to RemovalCurves
        From :func:`zennit_clusters.evaluate.removal_curves` (or ``compare_attributions(...)[removal]``).
    ax : matplotlib.axes.Axes, optional
    title : str, optional
    figsize : tuple

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = new_axes(ax, figsize)
    for i, (name, curve) in enumerate(curves.items()):
        color = f'C{i % 10}'
        ax.plot(curve.fractions, curve.morf, color=color, label=f'{name} (ABPC {curve.abpc:.2f})')
        ax.plot(curve.fractions, curve.lerf, color=color, linestyle='--')
    ax.axhline(0.0, color='0.5', linewidth=0.6)
    ax.set_xlabel('fraction of features removed')
    normalize = next(iter(curves.values())).normalize if curves else None
    ax.set_ylabel('evidence f_c' + (' (normalized)' if normalize else ''))
    ax.legend(fontsize=7, title='solid: MoRF, dashed: LeRF', title_fontsize=7)
    if title is not None:
        ax.set_title(title, fontsize=9)
    return fig
