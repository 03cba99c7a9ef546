"""Figures: every plot function produces a figure (Agg, no display) that saves to a non-empty PNG."""
import builtins
import importlib

import numpy as np
import pytest

matplotlib = pytest.importorskip('matplotlib')
matplotlib.use('Agg')

from matplotlib.figure import Figure  # noqa: E402

from zennit_clusters import plot  # noqa: E402
from zennit_clusters.evaluate import removal_curves  # noqa: E402


@pytest.fixture(scope='module')
def relevance():
    return np.random.default_rng(0).normal(size=(6, 64))


def saved(fig, tmp_path, name='figure.png'):
    assert isinstance(fig, Figure)
    path = tmp_path / name
    fig.savefig(path)
    assert path.stat().st_size > 1000
    return path


def test_zennit_colormap_is_zennits_palette():
    from zennit.image import palette
    colormap = plot.zennit_colormap('bwr')
    np.testing.assert_allclose(colormap.colors, np.asarray(palette('bwr')) / 255.0)
    # blue for negative, white at zero, red for positive
    np.testing.assert_allclose(colormap(0.0)[:3], (0, 0, 1))
    np.testing.assert_allclose(colormap(1.0)[:3], (1, 0, 0))
    assert np.all(np.asarray(colormap(0.5)[:3]) > 0.95)


def test_heatmap_is_symmetric_around_zero(relevance, tmp_path):
    fig = plot.heatmap(relevance[0], colorbar=True, image=np.abs(relevance[1]), title='x')
    saved(fig, tmp_path)
    shown = fig.axes[0].images[-1]
    low, high = shown.get_clim()
    assert low == -high == -np.abs(relevance[0]).max()


def test_heatmap_into_given_axes_and_shape_errors(relevance):
    fig = Figure()
    ax = fig.add_subplot()
    assert plot.heatmap(relevance[0].reshape(8, 8), ax=ax) is fig
    with pytest.raises(ValueError, match='image shape'):
        plot.heatmap(np.zeros(10))


def test_heatmap_image_uses_zennit(relevance):
    image = plot.heatmap_image(relevance[0], cmap='coldnhot')
    assert image.size == (8, 8)
    grid = plot.heatmap_image(relevance, shape=(8, 8))
    assert grid.size[0] > 8 and grid.size[1] >= 8


def test_heatmap_grid(relevance, tmp_path):
    fig = plot.heatmap_grid(relevance, (8, 8), titles=list('abcdef'), images=np.abs(relevance), ncols=4,
                            suptitle='grid', shared_scale=True)
    saved(fig, tmp_path)
    assert sum(len(ax.images) > 0 for ax in fig.axes) == 12


def test_relevance_bars_orders_by_magnitude(tmp_path):
    relevance = np.array([0.1, -3.0, 2.0, 0.0])
    fig = plot.relevance_bars(relevance, ['a', 'b', 'c', 'd'], top=3, values=[1, 2, 3, 4], title='row')
    saved(fig, tmp_path)
    labels = [tick.get_text() for tick in fig.axes[0].get_yticklabels()]
    assert labels == ['a = 1', 'c = 3', 'b = 2']      # largest |R| on top (last tick)
    widths = [patch.get_width() for patch in fig.axes[0].patches]
    assert widths == [0.1, 2.0, -3.0]
    with pytest.raises(ValueError, match='feature names'):
        plot.relevance_bars(relevance, ['a'])


@pytest.mark.parametrize('kind', ['bars', 'matrix'])
def test_cluster_profiles(relevance, tmp_path, kind):
    labels = np.array([0, 0, 1, 1, 2, 2])
    fig = plot.cluster_profiles(relevance, labels, top=5, kind=kind, normalize=True, suptitle='profiles')
    saved(fig, tmp_path)
    if kind == 'matrix':
        shown = fig.axes[0].images[0].get_array()
        assert shown.shape == (3, 64)
        profile = relevance[:2].mean(0)
        np.testing.assert_allclose(shown[0], profile / profile.sum())
    else:
        assert len([ax for ax in fig.axes if ax.patches]) == 3


def test_cluster_profiles_errors(relevance):
    with pytest.raises(ValueError, match="kind must be"):
        plot.cluster_profiles(relevance, np.zeros(6, dtype=int), kind='pie')
    with pytest.raises(ValueError, match='labels'):
        plot.cluster_profiles(relevance, np.zeros(5, dtype=int))


def test_text_html_escapes_and_colours():
    html = plot.text_html(['<b>', 'space', '\n', 'god'], [0.0, 1.0, 0.0, -1.0], title='a & b')
    assert '&lt;b&gt;' in html and '<b>' not in html.replace('<br>', '')
    assert 'a &amp; b' in html
    assert 'rgb(255, 0, 0)' in html and 'rgb(0, 0, 255)' in html and '<br>' in html
    with pytest.raises(ValueError, match='tokens'):
        plot.text_html(['a'], [1.0, 2.0])


def test_text_figure_wraps(tmp_path):
    tokens = ('the quick brown fox jumps over the lazy dog ' * 5).split() + ['\n', 'end']
    fig = plot.text_figure(tokens, np.linspace(-1, 1, len(tokens)), width=30, title='post')
    saved(fig, tmp_path)
    texts = fig.axes[0].texts
    assert len(texts) == len(tokens) - 1                     # the line break is not drawn
    rows = {text.get_position()[1] for text in texts}
    assert len(rows) > 5


def test_removal_curves_plot(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 5))
    w = rng.normal(size=5)

    def fn(Z):
        return np.stack([Z @ w, -(Z @ w)], 1)

    clusters = np.zeros(20, dtype=int)
    curves = {name: removal_curves(fn, X, A, clusters=clusters)
              for name, A in (('truth', w * (X - X.mean(0))), ('random', rng.normal(size=X.shape)))}
    fig = plot.removal_curves_plot(curves, title='curves')
    saved(fig, tmp_path)
    assert len(fig.axes[0].lines) == 5                       # 2 curves per method and the zero line


def test_missing_matplotlib_says_what_to_install(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == 'matplotlib' or name.startswith('matplotlib.'):
            raise ImportError('no matplotlib')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', fake_import)
    module = importlib.reload(plot)                         # the module itself imports without matplotlib
    with pytest.raises(ImportError, match=r'zennit-clusters\[plot\]'):
        module.relevance_bars([1.0, 2.0])
    monkeypatch.undo()
    importlib.reload(plot)
