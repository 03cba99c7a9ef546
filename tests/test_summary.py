"""summarize(): per-cluster tables against a slow reference from explain(), and clusters told apart at K = 2."""
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

import zennit_clusters
from zennit_clusters import explain, explain_with_constant, neuralize, summarize
from zennit_clusters.explanation import has_direction
from zennit_clusters.summary import FEATURE_COLUMNS, RIVAL_COLUMNS, _columns

HAS_DIRECTION = hasattr(zennit_clusters, 'direction')
needs_direction = pytest.mark.skipif(not HAS_DIRECTION, reason='zennit_clusters.direction() not in this build')


def reference_summary(model, X, top):
    """The summary the slow way: one explain() of all rows, then a loop per cluster (no chunks, no matrix sums)."""
    relevance, constant, labels, logits = explain_with_constant(model, X, return_logits=True)
    direction = np.asarray(zennit_clusters.direction(model, X)) if HAS_DIRECTION and has_direction(model) else None
    out = {}
    for c in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == c)
        mean = relevance[members].mean(0)
        evidence = logits[members, c].mean()
        order = np.argsort(-mean, kind='stable')[:top]
        runner = {}
        for i in members:
            others = [k for k in range(logits.shape[1]) if k != c]
            k = others[int(np.argmax(logits[i, others]))]
            runner.setdefault(k, []).append(logits[i, c] - logits[i, k])
        score = None if direction is None else np.array(
            [np.mean([float(d) for d in direction[members, j]]) for j in range(X.shape[1])])
        out[int(c)] = dict(order=order, relevance=mean[order], share=mean[order] / evidence,
                           median=np.median(X[members], 0)[order],
                           median_rest=np.median(X[(labels >= 0) & (labels != c)], 0)[order],
                           runner={k: (len(v) / len(members), np.mean(v)) for k, v in runner.items()},
                           evidence=evidence, constant=constant[members].mean(), size=len(members),
                           score=None if score is None else score[order])
    return out


@pytest.fixture(scope='module')
def wine_scaled():
    return StandardScaler().fit_transform(load_wine().data), tuple(load_wine().feature_names)


@pytest.mark.parametrize('family', ['kmeans', 'gmm_diag'])
def test_matches_the_slow_reference_in_chunks(wine_scaled, family):
    X, names = wine_scaled
    estimator = KMeans(3, n_init=4, random_state=0).fit(X) if family == 'kmeans' else \
        GaussianMixture(3, covariance_type='diag', random_state=0).fit(X)
    model = neuralize(estimator, X=X)
    summary = summarize(model, X, feature_names=names, top=6, chunk_size=17)  # 11 chunks, the last short
    expected = reference_summary(model, X, top=6)
    assert [entry.cluster for entry in summary] == sorted(expected)
    assert summary.n_points == len(X) and summary.n_noise == 0 and summary.feature_names == names
    for entry in summary:
        ref = expected[entry.cluster]
        table = _columns(entry.features)
        assert list(table) == list(FEATURE_COLUMNS)
        assert table['feature'] == [names[i] for i in ref['order']]
        assert entry.size == ref['size']
        np.testing.assert_allclose(entry.mean_evidence, ref['evidence'], rtol=1e-12)
        np.testing.assert_allclose(entry.mean_constant, ref['constant'], rtol=1e-10, atol=1e-12)
        for column in ('relevance', 'share', 'median', 'median_rest'):
            np.testing.assert_allclose(table[column], ref[column], rtol=1e-10, atol=1e-12, err_msg=column)
        if ref['score'] is not None:
            np.testing.assert_allclose(table['direction_score'], ref['score'], rtol=1e-12, atol=1e-12)
            assert set(table['direction']) <= {'high', 'low', 'mixed'}
        else:
            assert table['direction'] == ['n/a'] * len(table['feature']) and family == 'gmm_diag'
        rivals = _columns(entry.confused_with)
        assert list(rivals) == list(RIVAL_COLUMNS)
        assert sorted(rivals['cluster']) == sorted(ref['runner'])
        for k, share, margin in zip(rivals['cluster'], rivals['runner_up_share'], rivals['mean_margin']):
            np.testing.assert_allclose([share, margin], ref['runner'][k], rtol=1e-10)
        assert list(rivals['runner_up_share']) == sorted(rivals['runner_up_share'], reverse=True)
        assert np.isclose(sum(rivals['runner_up_share']), 1.0)
    # all D shares and the constant's make up the evidence
    full = summarize(model, X, top=None)
    for entry in full:
        table = _columns(entry.features)
        assert len(table['feature']) == X.shape[1]
        np.testing.assert_allclose(sum(table['share']) + entry.mean_constant / entry.mean_evidence, 1.0,
                                   rtol=1e-10)


def test_same_result_for_a_tensor_and_any_chunk_size(wine_scaled):
    import torch
    X, _ = wine_scaled
    model = neuralize(KMeans(3, n_init=2, random_state=0).fit(X), X=X)
    one = summarize(model, X, top=4)
    other = summarize(model, torch.as_tensor(X), top=4, chunk_size=1)
    pd = pytest.importorskip('pandas')
    pd.testing.assert_frame_equal(one.to_frame(), other.to_frame(), rtol=1e-12)  # sums in another order


def test_two_clusters_share_their_mean_relevance_but_not_their_summary():
    """K = 2 on wine and breast cancer: the mean relevance profiles are the same numbers for both clusters (the
    midpoint rule gives (mu_0 - mu_1)^2 per feature to both), so the summary must tell them apart otherwise."""
    for data in (load_wine().data, load_breast_cancer().data):
        X = StandardScaler().fit_transform(data)
        kmeans = KMeans(2, n_init=4, random_state=0).fit(X)
        relevance, labels = explain(kmeans, X), kmeans.predict(X)
        profiles = [relevance[labels == c].mean(0) for c in (0, 1)]
        gap = ((kmeans.cluster_centers_[0] - kmeans.cluster_centers_[1]) ** 2)
        np.testing.assert_allclose(profiles[0], profiles[1], rtol=1e-2, atol=1e-2 * gap.max())
        summary = summarize(kmeans, X, top=5)
        a, b = (_columns(summary[c].features) for c in (0, 1))
        assert a['feature'] == b['feature']  # the same defining features ...
        for i in range(5):  # ... on opposite sides: where one cluster's values are high, the other's are low
            assert np.sign(a['median'][i] - a['median_rest'][i]) == -np.sign(b['median'][i] - b['median_rest'][i])
            assert a['median'][i] != b['median'][i]
        if HAS_DIRECTION:
            assert all({x, y} == {'high', 'low'} for x, y in zip(a['direction'], b['direction']))


@pytest.fixture(scope='module')
def line_clusters():
    """Hand-built: three clusters on feature 0 at 0, 5 and 20, feature 1 pure noise."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [20.0, 0.0]])
    X = np.concatenate([c + rng.normal(scale=[0.5, 1.0], size=(60, 2)) for c in centres])
    return KMeans(3, init=centres, n_init=1).fit(X), X


def test_hand_built_defining_feature_typical_values_and_rivals(line_clusters):
    kmeans, X = line_clusters
    summary = summarize(kmeans, X, feature_names=['position', 'noise'])
    for c, (median, rest, rival) in enumerate([(0, 12.5, 1), (5, 10, 0), (20, 2.5, 1)]):
        table = _columns(summary[c].features)
        assert table['feature'][0] == 'position' and table['share'][0] > 0.9
        assert abs(table['median'][0] - median) < 0.3 and abs(table['median_rest'][0] - rest) < 2.0
        rivals = _columns(summary[c].confused_with)
        assert rivals['cluster'][0] == rival and rivals['runner_up_share'][0] > 0.95
    assert summary[2].mean_evidence > 5 * summary[0].mean_evidence  # the far cluster is the sure one
    with pytest.raises(KeyError, match='no summary for cluster 7'):
        summary[7]


@needs_direction
def test_hand_built_directions(line_clusters):
    kmeans, X = line_clusters
    summary = summarize(kmeans, X, feature_names=['position', 'noise'])
    words = [_columns(summary[c].features)['direction'][0] for c in range(3)]
    # the lowest cluster is there because position is low, the highest because it is high; the middle one is
    # low against 20 and high against 0: what it is depends on which rival its points are closest to (0)
    assert words[0] == 'low' and words[2] == 'high'
    assert _columns(summary[2].features)['direction_score'][0] > 0.9


def test_printable(line_clusters):
    kmeans, X = line_clusters
    text = str(summarize(kmeans, X, feature_names=['position', 'noise']))
    lines = text.splitlines()
    assert lines[0] == f'{len(X)} points, 3 clusters, beta = {neuralize(kmeans).beta:.4g}'
    for c in range(3):
        assert f'cluster {c}: 60 points' in text
    header = [line for line in lines if line.strip().startswith('feature')]
    assert len(header) == 3 and all('rest median' in line and 'direction' in line for line in header)
    assert 'runner-up: 1 (100%' in text


def test_noise_points_are_counted_apart():
    from sklearn.cluster import DBSCAN
    from sklearn.datasets import load_iris
    X = StandardScaler().fit_transform(load_iris().data)
    model = neuralize(DBSCAN(eps=0.8, min_samples=5).fit(X), X=X)
    _, labels, _ = explain(model, X, return_logits=True)
    summary = summarize(model, X)
    assert summary.n_noise == int((labels < 0).sum()) > 0
    assert sum(entry.size for entry in summary) == len(X) - summary.n_noise
    assert 'noise points' in str(summary).splitlines()[0]


def test_bad_arguments(line_clusters):
    kmeans, X = line_clusters
    with pytest.raises(ValueError, match='top must be a positive int'):
        summarize(kmeans, X, top=0)
    with pytest.raises(ValueError, match='chunk_size must be a positive int'):
        summarize(kmeans, X, chunk_size=0)
    with pytest.raises(ValueError, match='has 3 names'):
        summarize(kmeans, X, feature_names=['a', 'b', 'c'])
    with pytest.raises(ValueError, match='features'):
        summarize(kmeans, X[:, :1])


# --- properties on random centroid models (a (K, D) tensor neuralizes directly: no fitting per example) ---------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(k=st.integers(2, 5), d=st.integers(1, 6), n=st.integers(1, 40), seed=st.integers(0, 2 ** 16),
       dtype=st.sampled_from([np.float32, np.float64]), chunk=st.integers(1, 50))
def test_summary_and_explanation_properties(k, d, n, seed, dtype, chunk):
    import torch
    from zennit_clusters import Explanation
    rng = np.random.default_rng(seed)
    centres = torch.as_tensor(rng.normal(scale=3.0, size=(k, d)))
    X = rng.normal(scale=3.0, size=(n, d)).astype(dtype)
    model = neuralize(centres)
    e = Explanation.of(model, X)
    assert e.relevance.dtype == dtype and e.direction.dtype == np.int8 and e.direction.shape == (n, d)
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    scale = 1.0 + np.abs(e.relevance).sum(1)
    assert np.all(np.abs(e.relevance.sum(1) + e.constant - e.evidence) <= tolerance * scale)
    summary = summarize(model, X, top=None, chunk_size=chunk)
    assert sum(entry.size for entry in summary) == n and summary.n_noise == 0
    assert sorted(entry.cluster for entry in summary) == sorted(set(e.labels.tolist()))
    for entry in summary:
        table = _columns(entry.features)
        assert sorted(table['feature']) == sorted(f'x{i}' for i in range(d))
        assert list(table['relevance']) == sorted(table['relevance'], reverse=True)
        assert all(-1.0 <= s <= 1.0 for s in table['direction_score'])
        members = e.labels == entry.cluster
        np.testing.assert_allclose(entry.mean_evidence, e.evidence[members].astype(np.float64).mean(),
                                   rtol=1e-6 if dtype == np.float32 else 1e-12)
        rivals = _columns(entry.confused_with)
        assert entry.cluster not in rivals['cluster'] and np.isclose(sum(rivals['runner_up_share']), 1.0)
        assert all(m >= 0 for m in rivals['mean_margin'])  # the runner-up never has more evidence
    assert str(summary).count('runner-up:') == len(summary)


def test_pipeline_summary_in_the_users_units():
    """A scaler before k-means: the summary reads raw wine measurements (medians in the data's own units), and
    directions come through the pipeline."""
    from sklearn.pipeline import make_pipeline
    data = load_wine()
    pipeline = make_pipeline(StandardScaler(), KMeans(3, n_init=4, random_state=0)).fit(data.data)
    summary = summarize(pipeline, data.data, feature_names=data.feature_names, top=3)
    labels = pipeline.predict(data.data)
    proline = list(data.feature_names).index('proline')
    seen = 0
    for entry in summary:
        table = _columns(entry.features)
        assert entry.size == int((labels == entry.cluster).sum())
        assert set(table['direction']) <= {'high', 'low', 'mixed'}
        if 'proline' in table['feature']:
            seen += 1
            i = table['feature'].index('proline')
            assert table['median'][i] == np.median(data.data[labels == entry.cluster, proline])
            word = table['direction'][i]
            if word != 'mixed':  # high proline in the cluster where its median is above the others'
                assert (word == 'high') == (table['median'][i] > table['median_rest'][i])
    assert seen >= 1  # proline defines at least one wine cluster (two, in fact, on this fit)


def test_column_transformer_summary_and_explanation_in_the_users_units():
    """A ColumnTransformer scales and imputes host-side, so the network sees scaled, filled-in numbers; medians and
    an explanation's data read the user's own values (NaN where a value is missing), one-hot columns their 0/1."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from zennit_clusters import Explanation
    frame = load_wine(as_frame=True).data
    frame['colour'] = np.random.default_rng(0).choice(['red', 'white', 'rose'], len(frame))
    frame.loc[::9, 'alcohol'] = np.nan
    numbers = make_column_selector(dtype_include='number')
    pipeline = make_pipeline(
        ColumnTransformer([('num', make_pipeline(SimpleImputer(), StandardScaler()), numbers),
                           ('cat', OneHotEncoder(), ['colour'])]),
        KMeans(3, n_init=4, random_state=0)).fit(frame)
    labels = pipeline.predict(frame)
    explanation = Explanation.of(pipeline, frame)  # the pipeline itself, not neuralized first
    names = list(explanation.feature_names)
    assert names == list(pipeline[:-1].get_feature_names_out())
    numeric = [column for column in frame.columns if column != 'colour']
    np.testing.assert_array_equal(explanation.data[:, :len(numeric)], frame[numeric].to_numpy())
    onehot = pipeline[0].named_transformers_['cat'].transform(frame[['colour']]).toarray()
    np.testing.assert_array_equal(explanation.data[:, len(numeric):], onehot)
    assert isinstance(pd.DataFrame(explanation.data), pd.DataFrame)
    summary = summarize(pipeline, frame, top=None)
    for entry in summary:
        table = _columns(entry.features)
        members = labels == entry.cluster
        i = table['feature'].index('num__alcohol')
        assert table['median'][i] == np.nanmedian(frame['alcohol'].to_numpy()[members])
        assert table['median_rest'][i] == np.nanmedian(frame['alcohol'].to_numpy()[~members])
        j = table['feature'].index('num__proline')
        assert table['median'][j] == np.median(frame['proline'].to_numpy()[members])
