"""Figures of summaries and of single points with their direction: what is drawn (bars, colours, labels), on Agg."""
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_wine
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

matplotlib = pytest.importorskip('matplotlib')
matplotlib.use('Agg')

from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from zennit_clusters import Explanation, plot, summarize  # noqa: E402
from zennit_clusters.plot.summary import DIRECTION_COLOURS  # noqa: E402
from zennit_clusters.summary import _columns  # noqa: E402


@pytest.fixture(scope='module')
def wine():
    data = load_wine()
    X = StandardScaler().fit_transform(data.data)
    return KMeans(3, n_init=4, random_state=0).fit(X), X, tuple(data.feature_names)


def bar_patches(ax):
    return [p for p in ax.patches if p.get_height() > 0]


def test_summary_plot_draws_each_clusters_table(wine, tmp_path):
    kmeans, X, names = wine
    summary = summarize(kmeans, X, feature_names=names, top=4)
    fig = plot.summary_plot(summary)
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.patches]
    assert len(panels) == 3
    for ax, entry in zip(panels, summary):
        table = _columns(entry.features)
        bars = sorted(bar_patches(ax), key=lambda p: -p.get_y())  # top bar first
        np.testing.assert_allclose([p.get_width() for p in bars], table['relevance'])
        for bar, word in zip(bars, table['direction']):
            assert bar.get_facecolor() == to_rgba(DIRECTION_COLOURS[word])
        ticks = sorted(zip([t.get_position()[1] for t in ax.get_yticklabels()],
                           [t.get_text() for t in ax.get_yticklabels()]), reverse=True)
        arrows = {'high': '\u2191', 'low': '\u2193', 'mixed': '\u2195'}
        assert [text for _, text in ticks] == [f'{n} {arrows[w]}' for n, w in zip(table['feature'],
                                                                                  table['direction'])]
        notes = [t.get_text() for t in ax.texts]
        assert notes == [f'{m:.3g} vs {r:.3g}' for m, r in zip(table['median'], table['median_rest'])]
        assert ax.get_title().startswith(f'cluster {entry.cluster} (n={entry.size}), runner-up')
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert 'high in the cluster' in legend and 'low in the cluster' in legend
    path = tmp_path / 'summary.png'
    fig.savefig(path)
    assert path.stat().st_size > 1000


def test_summary_plot_two_clusters_opposite_colours():
    X = StandardScaler().fit_transform(load_wine().data)
    summary = summarize(KMeans(2, n_init=4, random_state=0).fit(X), X, top=3)
    fig = plot.summary_plot(summary, values=False)
    colours = [[p.get_facecolor() for p in sorted(bar_patches(ax), key=lambda p: -p.get_y())]
               for ax in fig.axes if ax.patches]
    widths = [[p.get_width() for p in sorted(bar_patches(ax), key=lambda p: -p.get_y())]
              for ax in fig.axes if ax.patches]
    # equal bars (the midpoint rule's identical mean profiles), told apart by colour: high in one, low in the other
    np.testing.assert_allclose(widths[0], widths[1], rtol=0.05)
    high, low = to_rgba(DIRECTION_COLOURS['high']), to_rgba(DIRECTION_COLOURS['low'])
    for a, b in zip(*colours):
        assert {a, b} == {high, low}
    assert not any(ax.texts for ax in fig.axes)


def test_summary_plot_without_direction_and_a_subset(wine):
    _, X, _ = wine
    gmm = GaussianMixture(3, covariance_type='diag', random_state=0).fit(X)
    fig = plot.summary_plot(summarize(gmm, X, top=3, direction=False), clusters=[1], ncols=1)
    (ax,) = [ax for ax in fig.axes if ax.patches]
    assert ax.get_title().startswith('cluster 1')
    assert all(p.get_facecolor() == to_rgba(DIRECTION_COLOURS['n/a']) for p in bar_patches(ax))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ['no direction']
    with pytest.raises(KeyError):
        plot.summary_plot(summarize(gmm, X, top=3), clusters=[9])


def test_point_bars_show_value_relevance_and_direction(wine):
    kmeans, X, names = wine
    e = Explanation.of(kmeans, X, feature_names=names)
    fig = plot.point_bars(e, 7, top=5)
    ax = fig.axes[0]
    order = np.argsort(-np.abs(e.relevance[7]), kind='stable')[:5]
    bars = sorted(bar_patches(ax), key=lambda p: -p.get_y())
    np.testing.assert_allclose([p.get_width() for p in bars], e.relevance[7, order])
    arrows = {1: '\u2191', -1: '\u2193', 0: '\u00b7'}
    labels = [t.get_text() for t in ax.get_yticklabels()][::-1]
    assert labels == [f'{names[i]} = {e.data[7, i]:.3g} {arrows[int(e.direction[7, i])]}' for i in order]
    assert ax.get_title() == f'point 7: cluster {e.labels[7]} (evidence {e.evidence[7]:.3g})'


def test_relevance_bars_refuses_bad_direction():
    with pytest.raises(ValueError, match='direction must hold 3 codes'):
        plot.relevance_bars(np.ones(3), direction=[1, 2, 0])
    with pytest.raises(ValueError, match='direction must hold 3 codes'):
        plot.relevance_bars(np.ones(3), direction=[1, 0])
