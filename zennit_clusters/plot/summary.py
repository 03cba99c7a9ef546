"""A figure of a :func:`zennit_clusters.summarize` result: each cluster's defining features, high or low."""
import numpy as np

from ..explanation import DIRECTION_ARROWS
from ..summary import _columns
from .base import load_matplotlib

__all__ = ['summary_plot', 'DIRECTION_COLOURS']

#: bar colours by direction (PuOr's ends, distinct from the blue/red of relevance signs and safe for colour
#: blindness): orange where the cluster's values are high, purple where low, grey where its points disagree
DIRECTION_COLOURS = {'high': '#e66101', 'low': '#5e3c99', 'mixed': '#999999', 'n/a': '#cccccc'}
_ARROWS = {'high': DIRECTION_ARROWS[1], 'low': DIRECTION_ARROWS[-1], 'mixed': '\u2195', 'n/a': ''}


def summary_plot(summary, clusters=None, ncols=None, values=True, suptitle=None, cell_size=(4.0, 0.32)):
    """One panel per cluster: its defining features' mean relevance, coloured (and arrowed) by direction.

    Parameters
    ----------
    summary : zennit_clusters.Summary
    clusters : sequence of int, optional
        Which clusters to draw; default every cluster of the summary.
    ncols : int, optional
        Panels per row; default ``min(len(clusters), 3)``.
    values : bool
        Write the typical values next to each bar: the cluster's median and the others' (``0.91 vs -0.59``).
    suptitle : str, optional
    cell_size : (float, float)
        Inches per panel width and per feature row.

    Returns
    -------
    matplotlib.figure.Figure
        Bars run largest relevance on top; the tick labels read ``name ↑`` (high), ``name ↓`` (low) or
        ``name ↕`` (mixed); the legend names the colours; each panel's title gives the cluster, its size and
        its most frequent runner-up.
    """
    _, Figure = load_matplotlib()
    from matplotlib.patches import Patch
    entries = list(summary) if clusters is None else [summary[c] for c in clusters]
    if not entries:
        raise ValueError('summary_plot needs at least one cluster.')
    ncols = min(len(entries), 3) if ncols is None else int(ncols)
    nrows = -(-len(entries) // ncols)
    rows = max(len(_columns(entry.features)['feature']) for entry in entries)
    fig = Figure(figsize=(cell_size[0] * ncols, (cell_size[1] * rows + 1.2) * nrows + 0.5), layout='constrained')
    axes = np.asarray(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, entry in zip(axes, entries):
        table = _columns(entry.features)
        positions = np.arange(len(table['feature']))[::-1]  # largest on top
        colours = [DIRECTION_COLOURS[word] for word in table['direction']]
        bars = ax.barh(positions, table['relevance'], color=colours, edgecolor='0.3', linewidth=0.5)
        ax.set_yticks(positions, [f'{name} {_ARROWS[word]}'.rstrip() for name, word in
                                  zip(table['feature'], table['direction'])], fontsize=8)
        ax.axvline(0.0, color='0.3', linewidth=0.8)
        ax.set_xlabel('mean relevance')
        if values:
            for bar, median, rest in zip(bars, table['median'], table['median_rest']):
                ax.annotate(f'{median:.3g} vs {rest:.3g}', (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                            xytext=(3, 0), textcoords='offset points', va='center', fontsize=6.5, color='0.25')
            ax.set_xlim(right=ax.get_xlim()[1] * 1.5)  # room for the values
        rivals = _columns(entry.confused_with)
        rival = f', runner-up {rivals["cluster"][0]} ({rivals["runner_up_share"][0]:.0%})' if rivals['cluster'] \
            else ''
        ax.set_title(f'cluster {entry.cluster} (n={entry.size}){rival}', fontsize=9)
    for ax in axes[len(entries):]:
        ax.set_axis_off()
    shown = sorted({word for entry in entries for word in _columns(entry.features)['direction']},
                   key=list(DIRECTION_COLOURS).index)
    labels = {'high': 'high in the cluster', 'low': 'low in the cluster', 'mixed': 'mixed', 'n/a': 'no direction'}
    fig.legend(handles=[Patch(facecolor=DIRECTION_COLOURS[word], edgecolor='0.3', label=labels[word])
                        for word in shown], loc='outside lower center', ncols=len(shown), fontsize=8,
               title=('beside each bar: median in the cluster vs the others' if values else None), title_fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig
