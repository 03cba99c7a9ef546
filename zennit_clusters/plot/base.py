"""What every figure shares: matplotlib imported on demand, Zennit's colour maps, new axes without pyplot."""
import math

import numpy as np

__all__ = ['load_matplotlib', 'colour_palette', 'zennit_colormap', 'new_axes', 'symmetric_bound', 'signed_colors']


def load_matplotlib():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError('zennit_clusters.plot needs matplotlib: pip install "zennit-clusters[plot]"') from error
    return matplotlib, Figure


def colour_palette(cmap, level=1.0):
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
    load_matplotlib()
    from matplotlib.colors import ListedColormap
    return ListedColormap(colour_palette(cmap, level) / 255.0, name=f'zennit_{cmap}')


def new_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    _, Figure = load_matplotlib()
    fig = Figure(figsize=figsize, layout='constrained')
    return fig, fig.add_subplot()


def symmetric_bound(values):
    bound = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return bound if bound > 0 and math.isfinite(bound) else 1.0


def signed_colors(values, cmap='bwr'):
    """Colours of the two ends of a Zennit colour map for negative and positive values."""
    palette = colour_palette(cmap) / 255.0
    return [palette[32] if v < 0 else palette[223] for v in values]
