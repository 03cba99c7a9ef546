"""Explanation: the same numbers as explain(), with labels, evidence, names and constant; frames; SHAP's plots."""
import inspect

import numpy as np
import pytest
from sklearn.cluster import DBSCAN, KMeans
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

import zennit_clusters
from zennit_clusters import Explanation, explain, explain_with_constant, neuralize

HAS_DIRECTION = hasattr(zennit_clusters, 'direction')
HAS_PER_COMPETITOR = 'per_competitor' in inspect.signature(explain).parameters
needs_direction = pytest.mark.skipif(not HAS_DIRECTION, reason='zennit_clusters.direction() not in this build')


@pytest.fixture(scope='module')
def wine_scaled(wine):
    return StandardScaler().fit_transform(wine)


@pytest.fixture(scope='module')
def wine_names():
    from sklearn.datasets import load_wine
    return tuple(load_wine().feature_names)


@pytest.fixture(scope='module')
def wine_kmeans(wine_scaled):
    return KMeans(3, n_init=4, random_state=0).fit(wine_scaled)


def test_same_numbers_as_explain_and_conservative(wine_kmeans, wine_scaled, wine_names):
    e = Explanation.of(wine_kmeans, wine_scaled, feature_names=wine_names)
    relevance, labels, logits = explain(wine_kmeans, wine_scaled, return_logits=True)
    np.testing.assert_array_equal(e.relevance, relevance)
    np.testing.assert_array_equal(e.labels, wine_kmeans.predict(wine_scaled))
    np.testing.assert_array_equal(e.logits, logits)
    np.testing.assert_array_equal(e.cluster, labels)
    np.testing.assert_array_equal(e.data, wine_scaled)
    assert e.feature_names == wine_names and len(e) == len(wine_scaled)
    assert e.beta == neuralize(wine_kmeans).beta
    np.testing.assert_array_equal(e.constant, 0.0)
    np.testing.assert_allclose(e.relevance.sum(1) + e.constant, e.evidence, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(e.evidence, logits.max(1))


def test_data_is_a_copy(wine_kmeans, wine_scaled):
    X = wine_scaled.copy()
    e = Explanation.of(wine_kmeans, X)
    X[:] = 0.0
    np.testing.assert_array_equal(e.data, wine_scaled)


def test_chosen_cluster_and_its_negative_evidence(wine_kmeans, wine_scaled):
    e = Explanation.of(wine_kmeans, wine_scaled, cluster=1)
    np.testing.assert_array_equal(e.cluster, 1)
    np.testing.assert_array_equal(e.relevance, explain(wine_kmeans, wine_scaled, cluster=1))
    np.testing.assert_allclose(e.relevance.sum(1), e.logits[:, 1], rtol=1e-12, atol=1e-12)
    others = np.flatnonzero(e.labels != 1)[0]
    assert e.evidence[others] < 0 and 'explaining cluster 1' in e.describe(others)


def test_mixture_constant_is_explain_with_constant(wine_scaled):
    gmm = GaussianMixture(3, covariance_type='diag', random_state=0).fit(wine_scaled)
    e = Explanation.of(gmm, wine_scaled)
    relevance, constant = explain_with_constant(gmm, wine_scaled)
    np.testing.assert_array_equal(e.relevance, relevance)
    np.testing.assert_array_equal(e.constant, constant)
    assert np.abs(e.constant).max() > 1e-3  # diagonal mixtures do have one
    np.testing.assert_allclose(e.relevance.sum(1) + e.constant, e.evidence, rtol=1e-10, atol=1e-10)
    assert 'constant' in e.describe(0)
    # mixtures have directions too (their log-ratios' roots), the library's
    np.testing.assert_array_equal(e.direction, np.asarray(zennit_clusters.direction(gmm, wine_scaled)))
    assert Explanation.of(gmm, wine_scaled, direction=False).direction is None


def test_feature_names_from_frame_estimator_and_default(wine_scaled, wine_names):
    pd = pytest.importorskip('pandas')
    frame = pd.DataFrame(wine_scaled, columns=list(wine_names))
    fitted_on_frame = KMeans(3, n_init=2, random_state=0).fit(frame)
    assert Explanation.of(fitted_on_frame, wine_scaled).feature_names == wine_names  # feature_names_in_
    assert Explanation.of(neuralize(fitted_on_frame), frame).feature_names == wine_names  # the columns
    # the neuralized model keeps the names it was fitted on, whatever container X comes in
    assert Explanation.of(neuralize(fitted_on_frame), wine_scaled).feature_names == wine_names
    unnamed = KMeans(3, n_init=2, random_state=0).fit(wine_scaled)
    assert Explanation.of(unnamed, wine_scaled).feature_names[:2] == ('x0', 'x1')
    with pytest.raises(ValueError, match='has 2 names, but the model has 13 features'):
        Explanation.of(fitted_on_frame, wine_scaled, feature_names=['a', 'b'])
    with pytest.raises(ValueError, match='repeats names'):
        Explanation.of(fitted_on_frame, wine_scaled, feature_names=['a'] * 13)
    with pytest.raises(TypeError, match='one string'):
        Explanation.of(fitted_on_frame, wine_scaled, feature_names='abc')


def test_noise_rows_are_labelled(iris_dbscan):
    estimator, X = iris_dbscan
    e = Explanation.of(estimator, X)
    noise = e.labels == -1
    assert noise.any() and (~noise).any()
    np.testing.assert_array_equal(e.cluster[noise], e.logits[noise].argmax(1))  # what explain() explains
    assert (e.evidence[noise] < 0).all()
    np.testing.assert_allclose(e.relevance.sum(1), e.evidence, rtol=1e-9, atol=1e-9)
    assert 'noise' in e.describe(int(np.flatnonzero(noise)[0]))


@pytest.fixture(scope='module')
def iris_dbscan():
    from sklearn.datasets import load_iris
    X = StandardScaler().fit_transform(load_iris().data)
    return neuralize(DBSCAN(eps=0.8, min_samples=5).fit(X), X=X), X


def test_to_frame_long_and_wide(wine_kmeans, wine_scaled, wine_names):
    pytest.importorskip('pandas')
    e = Explanation.of(wine_kmeans, wine_scaled, feature_names=wine_names)
    long = e.to_frame()
    assert len(long) == e.relevance.size
    assert list(long.columns[:6]) == ['point', 'label', 'cluster', 'feature', 'value', 'relevance']
    row = long[(long.point == 5) & (long.feature == 'proline')].iloc[0]
    j = wine_names.index('proline')
    assert row.relevance == e.relevance[5, j] and row.value == e.data[5, j] and row.label == e.labels[5]
    np.testing.assert_allclose(long.groupby('point').relevance.sum().to_numpy(), e.evidence, rtol=1e-12)
    wide = e.to_frame('wide')
    assert wide.shape == (len(e), 4 + len(wine_names))
    np.testing.assert_array_equal(wide[list(wine_names)].to_numpy(), e.relevance)
    np.testing.assert_array_equal(wide.evidence.to_numpy(), e.evidence)
    with pytest.raises(ValueError, match="'long' or 'wide'"):
        e.to_frame('tall')


def test_describe_lists_the_largest_features(wine_kmeans, wine_scaled, wine_names):
    e = Explanation.of(wine_kmeans, wine_scaled, feature_names=wine_names)
    text = e.describe(3, top=4)
    lines = text.splitlines()
    assert lines[0].startswith(f'point 3: cluster {e.labels[3]}') and len(lines) == 5
    largest = [wine_names[i] for i in np.argsort(-np.abs(e.relevance[3]))[:4]]
    assert [line.split()[0] for line in lines[1:]] == largest


@needs_direction
def test_direction_is_the_librarys(wine_kmeans, wine_scaled):
    e = Explanation.of(wine_kmeans, wine_scaled, direction=True)
    np.testing.assert_array_equal(e.direction, np.asarray(zennit_clusters.direction(wine_kmeans, wine_scaled)))
    assert e.direction.dtype == np.int8 and set(np.unique(e.direction)) <= {-1, 0, 1}
    assert 'direction' in e.to_frame().columns
    assert ('\u2191' in e.describe(0)) or ('\u2193' in e.describe(0))
    assert Explanation.of(wine_kmeans, wine_scaled, direction=False).direction is None


@pytest.mark.skipif(not HAS_PER_COMPETITOR, reason='explain(per_competitor=True) not in this build')
def test_per_competitor_parts_on_request(wine_kmeans, wine_scaled):
    assert Explanation.of(wine_kmeans, wine_scaled).per_competitor is None
    e = Explanation.of(wine_kmeans, wine_scaled, per_competitor=True)
    assert e.per_competitor.shape == (len(e), 3, wine_scaled.shape[1])
    np.testing.assert_allclose(e.per_competitor.sum(1), e.relevance, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(e.per_competitor[np.arange(len(e)), e.cluster], 0.0)
    gmm = GaussianMixture(3, covariance_type='diag', random_state=0).fit(wine_scaled)
    m = Explanation.of(gmm, wine_scaled, per_competitor=True)
    parts = m.per_competitor.sum(2) + m.per_competitor_constant  # the constant is split too
    np.testing.assert_allclose(parts.sum(1), m.evidence, rtol=1e-9, atol=1e-9)


@pytest.mark.skipif(not HAS_PER_COMPETITOR, reason='explain(contrast=) not in this build')
def test_contrast_explains_the_margin(wine_kmeans, wine_scaled, wine_names):
    X, centres = wine_scaled, wine_kmeans.cluster_centers_
    e = Explanation.of(wine_kmeans, X, contrast=1, feature_names=wine_names)
    np.testing.assert_array_equal(e.contrast, 1)
    np.testing.assert_array_equal(e.relevance, explain(wine_kmeans, X, contrast=1))
    # h_ck = |x - mu_k|^2 - |x - mu_c|^2, computed apart from the library
    margin = ((X - centres[1]) ** 2).sum(1) - ((X - centres[e.cluster]) ** 2).sum(1)
    np.testing.assert_allclose(e.target, margin, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(e.relevance[e.cluster == 1], 0.0)  # h_cc is zero
    row = int(np.flatnonzero(e.cluster == 2)[0])
    assert e.describe(row).startswith(f'point {row}: cluster 2 rather than 1 (margin {margin[row]:.3f}')
    shap_values = e.relevance.sum(1) + e.constant
    np.testing.assert_allclose(shap_values, margin, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(e.direction, np.asarray(zennit_clusters.direction(wine_kmeans, X, contrast=1)))
    with pytest.raises(ValueError, match='ask for one of the two'):
        Explanation.of(wine_kmeans, X, contrast=1, per_competitor=True)


@pytest.mark.skipif(not HAS_PER_COMPETITOR, reason='explain(reference=) not in this build')
def test_reference_is_passed_through(wine_kmeans, wine_scaled):
    e = Explanation.of(wine_kmeans, wine_scaled, reference='mean')
    np.testing.assert_array_equal(e.relevance, explain(wine_kmeans, wine_scaled, reference='mean'))
    np.testing.assert_allclose(e.relevance.sum(1), e.evidence, rtol=1e-10, atol=1e-10)
    assert e.reference == 'mean' and 'reference' in repr(e)


# --- SHAP -------------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def shap_explanation(wine_kmeans, wine_scaled, wine_names):
    shap = pytest.importorskip('shap', reason='shap not installed (pip install "zennit-clusters[test]")')
    e = Explanation.of(wine_kmeans, wine_scaled, feature_names=wine_names)
    return shap, e, e.to_shap()


@pytest.fixture()
def pyplot():
    matplotlib = pytest.importorskip('matplotlib')
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    plt.close('all')
    yield plt
    plt.close('all')


def test_to_shap_fields(shap_explanation):
    shap, e, s = shap_explanation
    assert isinstance(s, shap.Explanation)
    np.testing.assert_array_equal(s.values, e.relevance)
    np.testing.assert_array_equal(s.data, e.data)
    np.testing.assert_array_equal(s.base_values, e.constant)
    assert list(s.feature_names) == list(e.feature_names)
    # SHAP's additivity: values plus base value is the model output being explained, f_c(x)
    np.testing.assert_allclose(s.values.sum(1) + s.base_values, e.evidence, rtol=1e-12, atol=1e-12)


def test_shap_waterfall_draws_the_point(shap_explanation, pyplot):
    shap, e, s = shap_explanation
    shap.plots.waterfall(s[0], max_display=6, show=False)
    ax = pyplot.gcf().axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    top = [e.feature_names[i] for i in np.argsort(-np.abs(e.relevance[0]))[:5]]
    for name in top:  # the five largest, each with its value, and the rest folded into one bar
        assert any(label.endswith(f'= {name}') for label in labels), (name, labels)
    assert '8 other features' in labels
    texts = {t.get_text() for t in ax.texts}
    assert f'+{e.relevance[0].max():.2f}' in texts


def test_shap_bar_shows_mean_absolute_relevance(shap_explanation, pyplot):
    shap, e, s = shap_explanation
    shap.plots.bar(s, max_display=5, show=False)
    ax = pyplot.gcf().axes[0]
    mean_abs = np.abs(e.relevance).mean(0)
    order = np.argsort(-mean_abs)[:4]
    widths = sorted((p.get_width() for p in ax.patches), reverse=True)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    for i in order:
        assert e.feature_names[i] in labels
        assert np.isclose(widths, mean_abs[i]).any()


def test_shap_beeswarm_has_every_point(shap_explanation, pyplot):
    shap, e, s = shap_explanation
    shap.plots.beeswarm(s, max_display=5, show=False)
    ax = pyplot.gcf().axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert e.feature_names[int(np.argmax(np.abs(e.relevance).mean(0)))] in labels
    swarms = [c for c in ax.collections if c.get_offsets().shape[0] == len(e)]
    assert len(swarms) == 5  # four features and the sum of the others, one dot per point each
    xs = np.sort(swarms[-1].get_offsets()[:, 0])
    top = int(np.argmax(np.abs(e.relevance).mean(0)))
    np.testing.assert_allclose(xs, np.sort(e.relevance[:, top]))
