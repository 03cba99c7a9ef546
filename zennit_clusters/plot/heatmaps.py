"""Image heatmaps of relevance in Zennit's colour maps."""
import math

import numpy as np

from .base import load_matplotlib, new_axes, symmetric_bound, zennit_colormap

__all__ = ['heatmap', 'heatmap_image', 'heatmap_grid']


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
    fig, ax = new_axes(ax, figsize)
    bound = symmetric_bound(grid) if vmax is None else float(vmax)
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
    bound = symmetric_bound(relevance) if vmax is None else float(vmax)
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
    _, Figure = load_matplotlib()
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
    vmax = max(symmetric_bound(r) for r in relevances) if shared_scale else None
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
