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
>>> html = plot.text_html(tokens, token_relevance)
"""
import html as _html
import math

import numpy as np

__all__ = [
    'zennit_colormap', 'heatmap', 'heatmap_image', 'heatmap_grid', 'relevance_bars', 'cluster_profiles',
    'text_html', 'text_figure', 'removal_curves_plot', 'token_colors',
]


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError('zennit_clusters.plot needs matplotlib: pip install "zennit-clusters[plot]"') from error
    return matplotlib, Figure


def _palette(cmap, level=1.0):
    """(256, 3) uint8 palette of a Zennit colour map (a name in zennit.image.CMAPS or a colour-map code)."""
    from zennit.cmap import ColorMap
    from zennit.image import CMAPS
    colormap = CMAPS[cmap] if cmap in CMAPS else ColorMap(cmap)
    return np.asarray(colormap.palette(level=level))


def zennit_colormap(cmap='bwr', level=1.0):
    """A matplotlib colormap made from a Zennit colour map.

    Parameters
    ----------
    cmap : str
        A name of ``zennit.image.CMAPS`` ('bwr', 'coldnhot', 'seismic', 'france', ...) or a Zennit
        colour-map code such as ``'00f,80:fff,f00'``.
    level : float
        Zennit's contrast level.

    Returns
    -------
    matplotlib.colors.ListedColormap
    """
    _matplotlib()
    from matplotlib.colors import ListedColormap
    return ListedColormap(_palette(cmap, level) / 255.0, name=f'zennit_{cmap}')


def _new_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    _, Figure = _matplotlib()
    fig = Figure(figsize=figsize, layout='constrained')
    return fig, fig.add_subplot()


def _bound(values):
    bound = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return bound if bound > 0 and math.isfinite(bound) else 1.0


def _as_image(relevance, shape):
    relevance = np.asarray(relevance, dtype=np.float64)
    if shape is None:
        if relevance.ndim != 2:
            side = math.isqrt(relevance.size)
            if side * side != relevance.size:
                raise ValueError(f'cannot guess an image shape for {relevance.size} values; pass shape=(H, W).')
            shape = (side, side)
        else:
            shape = relevance.shape
    return relevance.reshape(shape)


def heatmap(relevance, shape=None, ax=None, cmap='bwr', level=1.0, vmax=None, title=None, colorbar=False,
            image=None, figsize=(3, 3)):
    """Relevance of the pixels of one image as a heatmap, symmetric around zero.

    Parameters
    ----------
    relevance : array-like of shape (H*W,) or (H, W)
    shape : tuple, optional
        (H, W) to reshape flat relevance to; default the square root of its length.
    ax : matplotlib.axes.Axes, optional
    cmap : str
        Zennit colour map.
    level : float
        Zennit's contrast level.
    vmax : float, optional
        Colour scale bound (``[-vmax, vmax]``); default the largest ``|relevance|``.
    title : str, optional
    colorbar : bool
    image : array-like, optional
        The input image of the same shape, drawn in grey under a semi-transparent heatmap.
    figsize : tuple
        Size of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    grid = _as_image(relevance, shape)
    fig, ax = _new_axes(ax, figsize)
    bound = _bound(grid) if vmax is None else float(vmax)
    if image is not None:
        ax.imshow(np.asarray(image, dtype=np.float64).reshape(grid.shape), cmap='gray_r', interpolation='nearest')
    mappable = ax.imshow(grid, cmap=zennit_colormap(cmap, level), vmin=-bound, vmax=bound,
                         interpolation='nearest', alpha=0.75 if image is not None else 1.0)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)
    if colorbar:
        fig.colorbar(mappable, ax=ax, shrink=0.8)
    return fig


def heatmap_image(relevance, shape=None, cmap='bwr', level=1.0, vmax=None):
    """Relevance as a PIL image coloured by Zennit (:func:`zennit.image.imgify`), symmetric around zero.

    Parameters
    ----------
    relevance : array-like of shape (H*W,), (H, W) or (N, H, W) (a batch becomes a grid)
    shape : tuple, optional
        (H, W) of one image when ``relevance`` is flat (1-d, or (N, H*W) for a batch).
    cmap, level : as in :func:`heatmap`
    vmax : float, optional
        Colour scale bound; default the largest ``|relevance|`` (over the whole batch).

    Returns
    -------
    PIL.Image.Image
    """
    from zennit.image import imgify
    relevance = np.asarray(relevance, dtype=np.float64)
    batch = relevance.ndim == 3 or (relevance.ndim == 2 and shape is not None and relevance.shape != tuple(shape))
    if batch:
        n_images = relevance.shape[0]
        relevance = relevance.reshape((n_images,) + tuple(shape) if shape is not None else relevance.shape)
    else:
        relevance = _as_image(relevance, shape)
    bound = _bound(relevance) if vmax is None else float(vmax)
    return imgify(relevance, vmin=-bound, vmax=bound, cmap=cmap, level=level, grid=batch)


def heatmap_grid(relevances, shape=None, titles=None, ncols=None, images=None, cmap='bwr', level=1.0,
                 shared_scale=False, suptitle=None, cell_size=1.6):
    """Several heatmaps in a grid, optionally each under its input image.

    Parameters
    ----------
    relevances : array-like of shape (N, H*W) or (N, H, W)
    shape : tuple, optional
        (H, W) of one image.
    titles : sequence of str, optional
    ncols : int, optional
        Columns; default ``min(N, 10)``.
    images : array-like of shape (N, H*W) or (N, H, W), optional
        Input images, drawn in grey in a row above each row of heatmaps.
    cmap, level : as in :func:`heatmap`
    shared_scale : bool
        One colour scale for all heatmaps (default: each its own ``max |R|``).
    suptitle : str, optional
    cell_size : float
        Inches per cell.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _, Figure = _matplotlib()
    relevances = [np.asarray(r, dtype=np.float64) for r in relevances]
    n_maps = len(relevances)
    if n_maps == 0:
        raise ValueError('heatmap_grid needs at least one heatmap.')
    ncols = min(n_maps, 10) if ncols is None else int(ncols)
    nrows = math.ceil(n_maps / ncols)
    per_row = 2 if images is not None else 1
    fig = Figure(figsize=(cell_size * ncols, cell_size * nrows * per_row + (0.4 if suptitle else 0)),
                 layout='constrained')
    axes = np.asarray(fig.subplots(nrows * per_row, ncols, squeeze=False))
    vmax = max(_bound(r) for r in relevances) if shared_scale else None
    for i, relevance in enumerate(relevances):
        row, col = divmod(i, ncols)
        title = titles[i] if titles is not None else None
        if images is not None:
            image = _as_image(images[i], shape if shape is not None else _as_image(relevance, None).shape)
            axes[row * 2, col].imshow(image, cmap='gray_r', interpolation='nearest')
            axes[row * 2, col].set_title(title, fontsize=8)
            title = None
        heatmap(relevance, shape, ax=axes[row * per_row + per_row - 1, col], cmap=cmap, level=level, vmax=vmax,
                title=title)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        if not ax.images:
            ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def _signed_colors(values, cmap='bwr'):
    """Colours of the two ends of a Zennit colour map for negative and positive values."""
    palette = _palette(cmap) / 255.0
    return [palette[32] if v < 0 else palette[223] for v in values]


def relevance_bars(relevance, feature_names=None, top=None, ax=None, title=None, values=None, cmap='bwr',
                   figsize=None):
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

    Returns
    -------
    matplotlib.figure.Figure
    """
    relevance = np.asarray(relevance, dtype=np.float64).ravel()
    names = [f'x{i}' for i in range(relevance.size)] if feature_names is None else list(feature_names)
    if len(names) != relevance.size:
        raise ValueError(f'{len(names)} feature names for {relevance.size} relevances.')
    order = np.argsort(-np.abs(relevance), kind='stable')
    if top is not None:
        order = order[:int(top)]
    order = order[::-1]
    labels = [names[i] if values is None else f'{names[i]} = {np.asarray(values).ravel()[i]:.3g}' for i in order]
    fig, ax = _new_axes(ax, figsize or (4.5, 0.25 * len(order) + 1.0))
    ax.barh(np.arange(len(order)), relevance[order], color=_signed_colors(relevance[order], cmap),
            edgecolor='0.3', linewidth=0.5)
    ax.set_yticks(np.arange(len(order)), labels, fontsize=8)
    ax.axvline(0.0, color='0.3', linewidth=0.8)
    ax.set_xlabel('relevance')
    if title is not None:
        ax.set_title(title, fontsize=9)
    return fig


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
    _, Figure = _matplotlib()
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
        bound = _bound(profiles)
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


def token_colors(relevance, cmap='bwr', vmax=None):
    """RGB colours (values in [0, 1]) of token relevances, symmetric around zero."""
    relevance = np.asarray(relevance, dtype=np.float64).ravel()
    bound = _bound(relevance) if vmax is None else float(vmax)
    index = np.clip(np.round((relevance / bound + 1.0) / 2.0 * 255), 0, 255).astype(int)
    return _palette(cmap)[index] / 255.0


def text_html(tokens, relevance, cmap='bwr', vmax=None, title=None):
    """Tokens with their relevance as background colour, as an HTML fragment.

    Parameters
    ----------
    tokens : sequence of str
        Words (or any strings); they are HTML-escaped and joined with spaces (a token ``'\\n'`` breaks
        the line).
    relevance : array-like of shape (len(tokens),)
    cmap : str
        Zennit colour map.
    vmax : float, optional
        Colour scale bound; default the largest ``|relevance|``.
    title : str, optional
        A heading above the text.

    Returns
    -------
    str
    """
    tokens = list(tokens)
    relevance = np.asarray(relevance, dtype=np.float64).ravel()
    if len(tokens) != relevance.size:
        raise ValueError(f'{len(tokens)} tokens for {relevance.size} relevances.')
    colors = token_colors(relevance, cmap, vmax)
    parts = [] if title is None else [f'<h4>{_html.escape(title)}</h4>']
    parts.append('<p style="line-height: 1.9; font-family: sans-serif;">')
    for token, color, value in zip(tokens, colors, relevance):
        if token == '\n':
            parts.append('<br>')
            continue
        rgb = ', '.join(str(int(round(255 * c))) for c in color)
        parts.append(f'<span style="background-color: rgb({rgb}); padding: 1px 2px;" '
                     f'title="{value:.4g}">{_html.escape(token)}</span> ')
    parts.append('</p>')
    return ''.join(parts)


def text_figure(tokens, relevance, ax=None, cmap='bwr', vmax=None, width=72, title=None, fontsize=9):
    """Tokens with their relevance as background colour, laid out as wrapped text in a figure.

    Parameters
    ----------
    tokens : sequence of str
        Words; a token ``'\\n'`` breaks the line.
    relevance : array-like of shape (len(tokens),)
    ax : matplotlib.axes.Axes, optional
    cmap : str
    vmax : float, optional
    width : int
        Characters per line (the text is set in a monospace font).
    title : str, optional
    fontsize : float

    Returns
    -------
    matplotlib.figure.Figure
    """
    tokens = list(tokens)
    relevance = np.asarray(relevance, dtype=np.float64).ravel()
    if len(tokens) != relevance.size:
        raise ValueError(f'{len(tokens)} tokens for {relevance.size} relevances.')
    colors = token_colors(relevance, cmap, vmax)
    # lay out by character count (monospace), wrapping at `width`
    lines, line, used = [], [], 0
    for token, color in zip(tokens, colors):
        if token == '\n':
            lines.append(line)
            line, used = [], 0
            continue
        if used and used + 1 + len(token) > width:
            lines.append(line)
            line, used = [], 0
        line.append((used + (1 if used else 0), token, color))
        used += len(token) + (1 if used else 0)
    lines.append(line)
    line_height = fontsize / 72 * 1.9
    size = (0.62 * fontsize / 72 * width + 0.4, line_height * len(lines) + 0.6 + (0.3 if title else 0))
    fig, ax = _new_axes(ax, size)
    ax.set_axis_off()
    ax.set_xlim(0, width)
    ax.set_ylim(len(lines), 0)
    for row, items in enumerate(lines):
        for column, token, color in items:
            ax.text(column, row + 0.5, token, family='monospace', fontsize=fontsize, va='center', ha='left',
                    bbox={'facecolor': color, 'edgecolor': 'none', 'pad': 1.0})
    if title is not None:
        ax.set_title(title, fontsize=fontsize + 1, loc='left')
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
    fig, ax = _new_axes(ax, figsize)
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
