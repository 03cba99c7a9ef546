"""Figures of cluster explanations: image heatmaps, relevance bars, cluster profiles, highlighted text.

matplotlib is an optional extra (``pip install zennit-clusters[plot]``); it is imported when a function
needs it. Colours come from Zennit's colour maps (:mod:`zennit.cmap`; ``'bwr'`` by default: blue for
negative relevance, white for none, red for positive), so heatmaps look like Zennit's own.

Every function draws into ``ax`` when given and returns its figure; without ``ax`` it builds a new
:class:`matplotlib.figure.Figure` *without pyplot* (no GUI backend, nothing left open): save it with
``fig.savefig(path)``; in Jupyter it displays as the cell's value.

>>> from zennit_clusters import plot
>>> fig = plot.heatmap(R[0], shape=(8, 8))
>>> fig = plot.cluster_profiles(R, labels, feature_names=names)
>>> fig = plot.summary_plot(zennit_clusters.summarize(kmeans, X))   # defining features, high or low
>>> fig = plot.point_bars(zennit_clusters.Explanation.of(kmeans, X), row=0)
>>> html = plot.text_html(tokens, token_relevance)
"""
from .base import zennit_colormap
from .features import cluster_profiles, point_bars, relevance_bars, removal_curves_plot
from .heatmaps import heatmap, heatmap_grid, heatmap_image
from .summary import summary_plot
from .text import text_figure, text_html, token_colors

__all__ = [
    'zennit_colormap', 'heatmap', 'heatmap_image', 'heatmap_grid', 'relevance_bars', 'point_bars', 'cluster_profiles',
    'summary_plot',
    'text_html', 'text_figure', 'removal_curves_plot', 'token_colors',
]
