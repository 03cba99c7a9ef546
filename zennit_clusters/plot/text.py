"""Highlighted text: relevance of each token, as HTML or as a figure."""
import html as _html

import numpy as np

from .base import colour_palette, new_axes, symmetric_bound

__all__ = ['token_colors', 'text_html', 'text_figure']


def token_colors(relevance, cmap='bwr', vmax=None):
    """RGB colours (values in [0, 1]) of token relevances, symmetric around zero."""
    relevance = np.asarray(relevance, dtype=np.float64).ravel()
    bound = symmetric_bound(relevance) if vmax is None else float(vmax)
    index = np.clip(np.round((relevance / bound + 1.0) / 2.0 * 255), 0, 255).astype(int)
    return colour_palette(cmap)[index] / 255.0


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
    fig, ax = new_axes(ax, size)
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
