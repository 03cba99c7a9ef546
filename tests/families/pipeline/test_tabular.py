"""Pipelines on DataFrames: encoders, column transformers, imputation, projections, normalisation, exactly.

Real data (wine and breast cancer as DataFrames with an added categorical column). For every composition:
labels == ``pipeline.predict`` on every row, conservation on the user's columns in float64, the grouped relevance
== the per-encoded-column relevance summed, the Zennit path == the closed form, and a slow reference from the
equations where a projection is folded (lifted centroids).
"""
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from references.centroids import kmeans_pairs, neon_reference
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.impute import SimpleImputer
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (MaxAbsScaler, MinMaxScaler, Normalizer, OneHotEncoder, OrdinalEncoder,
                                   RobustScaler, StandardScaler)
from zennit.attribution import Gradient

from zennit_clusters import ClusterComposite, explain, explain_with_constant, neuralize

# scikit-learn's feature-name warnings are errors here: nothing may call a transform without the fitted names
pytestmark = [pytest.mark.filterwarnings('error:X does not have valid feature names'),
              pytest.mark.filterwarnings('error:X has feature names')]

NUMBERS = make_column_selector(dtype_include='number')


def _frame(loader, seed):
    frame = loader(as_frame=True).data
    rng = np.random.default_rng(seed)
    frame['colour'] = rng.choice(['red', 'white', 'rose'], len(frame))
    frame['region'] = rng.choice(['north', 'south'], len(frame), p=[0.7, 0.3])
    return frame


@pytest.fixture(scope='module')
def wine_frame():
    return _frame(load_wine, 0)


@pytest.fixture(scope='module')
def cancer_frame():
    return _frame(load_breast_cancer, 1)


@pytest.fixture(scope='module')
def wine_with_gaps(wine_frame):
    frame = wine_frame.copy()
    rng = np.random.default_rng(2)
    for column in ('alcohol', 'hue', 'proline'):
        frame.loc[rng.random(len(frame)) < 0.1, column] = np.nan
    return frame


def _km(k=3):
    return KMeans(k, n_init=3, random_state=0)


PIPELINES = {
    'scaler+onehot': lambda: make_pipeline(
        ColumnTransformer([('num', StandardScaler(), NUMBERS), ('cat', OneHotEncoder(), ['colour', 'region'])]), _km()),
    'imputer+sparse-onehot-drop': lambda: make_pipeline(
        ColumnTransformer([('num', make_pipeline(SimpleImputer(), RobustScaler()), NUMBERS),
                           ('cat', OneHotEncoder(drop='first', sparse_output=True), ['colour', 'region'])]), _km(4)),
    'ordinal+remainder-scaler+bisecting': lambda: make_pipeline(
        ColumnTransformer([('cat', OrdinalEncoder(), ['colour', 'region'])], remainder=MinMaxScaler()),
        BisectingKMeans(3, random_state=0)),
    'index+mask+drop+passthrough': lambda: make_pipeline(
        ColumnTransformer([('first', StandardScaler(), [0, 1, 2, 3]),
                           ('mask', MaxAbsScaler(), np.r_[np.zeros(4, bool), np.ones(4, bool), np.zeros(7, bool)]),
                           ('cat', OneHotEncoder(handle_unknown='ignore'), ['colour']),
                           ('gone', 'drop', ['region'])], remainder='passthrough'),
        StandardScaler(), _km()),
    'onehot+pca': lambda: make_pipeline(
        ColumnTransformer([('num', StandardScaler(), NUMBERS), ('cat', OneHotEncoder(), ['colour'])],
                          remainder='drop'), PCA(4), _km()),
    'onehot+mixture': lambda: make_pipeline(
        ColumnTransformer([('num', StandardScaler(), NUMBERS), ('cat', OneHotEncoder(drop='first'), ['colour'])]),
        GaussianMixture(3, covariance_type='diag', random_state=0)),
    'scaler+normalizer+minibatch': lambda: make_pipeline(
        ColumnTransformer([('num', StandardScaler(), NUMBERS)]), Normalizer(), MiniBatchKMeans(3, random_state=0,
                                                                                               n_init=3)),
}


def _fit(name, frame):
    return PIPELINES[name]().fit(frame)


def _check_pipeline(pipeline, frame):
    model = neuralize(pipeline, X=frame)
    relevance, constant, labels, logits = explain_with_constant(model, frame, return_logits=True)
    np.testing.assert_array_equal(labels.to_numpy(), pipeline.predict(frame))
    # the chunked forms of model(x) read the model's cheap evidence(): behind every prefix layer too
    np.testing.assert_array_equal(model.predict(frame), pipeline.predict(frame))
    np.testing.assert_allclose(np.asarray(model.predict_evidence(frame)), logits.to_numpy(), rtol=1e-10, atol=1e-10)
    # on the user's own columns, index kept, conserved in float64
    assert list(relevance.columns) == list(frame.columns) and relevance.index.equals(frame.index)
    evidence = logits.to_numpy()[np.arange(len(frame)), labels.to_numpy()]
    np.testing.assert_allclose(relevance.to_numpy().sum(1) + constant.to_numpy(), evidence, rtol=1e-10, atol=1e-10)
    # per encoded column, summed back onto the user's columns, is the grouped result
    encoded = explain_with_constant(model, frame, grouped=False)[0]
    assert list(encoded.columns) == list(model.get_feature_names_out())
    sources, names = model.feature_groups or (np.arange(encoded.shape[1]), frame.columns)
    summed = np.zeros_like(relevance.to_numpy())
    np.add.at(summed.T, sources, encoded.to_numpy().T)
    np.testing.assert_allclose(summed, relevance.to_numpy(), rtol=1e-12, atol=1e-12)
    return model, relevance, labels


@pytest.mark.parametrize('name', PIPELINES)
def test_pipeline_on_wine_frame(wine_frame, wine_with_gaps, name):
    frame = wine_with_gaps if 'imputer' in name else wine_frame
    pipeline = _fit(name, frame)
    model, relevance, labels = _check_pipeline(pipeline, frame)
    # the encoded matrix is what the network takes; the zennit path on it agrees with the closed form
    encoded = torch.as_tensor(model.encode(frame))
    if model.feature_groups is not None and 'mixture' not in name:
        with Gradient(model, ClusterComposite()) as attributor:
            onehot = torch.nn.functional.one_hot(torch.as_tensor(np.array(labels)), model.n_clusters).double()
            _, zennit_relevance = attributor(encoded, attr_output=lambda y: y * onehot)
        closed = explain(model, frame, grouped=False).to_numpy()
        np.testing.assert_allclose(zennit_relevance.numpy(), closed, rtol=1e-6, atol=1e-8 * np.abs(closed).max())
    # the module's forward takes the DataFrame too
    np.testing.assert_array_equal(model(frame).argmax(1).numpy(), pipeline.predict(frame))


@pytest.mark.parametrize('name', ['scaler+onehot', 'onehot+pca', 'imputer+sparse-onehot-drop'])
def test_pipeline_on_breast_cancer_frame(cancer_frame, name):
    _check_pipeline(_fit(name, cancer_frame), cancer_frame)


@pytest.mark.parametrize('name', ['scaler+onehot', 'onehot+pca'])
def test_array_in_gives_the_same_as_the_frame(wine_frame, name):
    pipeline = _fit(name, wine_frame)
    from_frame = explain(pipeline, wine_frame)
    from_array = explain(pipeline, wine_frame.to_numpy(dtype=object))
    assert isinstance(from_array, np.ndarray)
    np.testing.assert_allclose(from_array, from_frame.to_numpy(), rtol=1e-12, atol=1e-12)


def test_set_output_pandas(wine_frame):
    numbers = wine_frame.drop(columns=['colour', 'region'])
    pipeline = make_pipeline(StandardScaler(), PCA(5), _km(4)).set_output(transform='pandas').fit(numbers)
    model, relevance, _ = _check_pipeline(pipeline, numbers)
    pipeline = make_pipeline(ColumnTransformer([('num', StandardScaler(), NUMBERS),
                                                ('cat', OneHotEncoder(sparse_output=False), ['colour'])]),
                             _km()).set_output(transform='pandas').fit(wine_frame)
    _check_pipeline(pipeline, wine_frame)


def test_projection_is_kmeans_on_lifted_centroids(wine_frame):
    """Scaler + PCA + k-means == k-means in the scaled space with centres mu C + mean, and the NEON reference."""
    numbers = wine_frame.drop(columns=['colour', 'region'])
    pipeline = make_pipeline(StandardScaler(), PCA(4), _km(4)).fit(numbers)
    model = neuralize(pipeline, X=numbers)
    scaled = pipeline[0].transform(numbers)
    pca, kmeans = pipeline[1], pipeline[2]
    lifted = kmeans.cluster_centers_ @ pca.components_ + pca.mean_
    relevance, labels, _ = explain(model, numbers, return_logits=True)
    for row in range(0, len(numbers), 17):
        evidence, expected = neon_reference(scaled[row], kmeans_pairs(lifted, labels.iloc[row]), model.beta)
        np.testing.assert_allclose(relevance.iloc[row].to_numpy(), expected, rtol=1e-7,
                                   atol=1e-9 * np.abs(expected).max())
        assert relevance.iloc[row].sum() == pytest.approx(evidence, rel=1e-9)
    # the evidence is k-means' own in the projected space: |z - mu_k|^2 differences
    z = pca.transform(scaled)
    distances = ((z[:, None] - kmeans.cluster_centers_[None]) ** 2).sum(-1)
    own = distances[np.arange(len(z)), labels.to_numpy()]
    distances[np.arange(len(z)), labels.to_numpy()] = np.inf
    np.testing.assert_allclose(relevance.to_numpy().sum(1), distances.min(1) - own, rtol=1e-9, atol=1e-9)


def test_truncated_svd_and_normalizer(cancer_frame):
    numbers = cancer_frame.drop(columns=['colour', 'region'])
    for pipeline in (make_pipeline(StandardScaler(), TruncatedSVD(5, random_state=0), _km(3)),
                     make_pipeline(MinMaxScaler(), Normalizer(), PCA(3), BisectingKMeans(3, random_state=0)),
                     make_pipeline(Normalizer('l1'), StandardScaler(), _km(3)),
                     # LSA: the normaliser of the components, folded in input space
                     make_pipeline(MinMaxScaler(), TruncatedSVD(4, random_state=0), Normalizer(), _km(3)),
                     make_pipeline(StandardScaler(), PCA(3), Normalizer('max'), BisectingKMeans(3, random_state=0))):
        pipeline.fit(numbers)
        _check_pipeline(pipeline, numbers)
        model = neuralize(pipeline, X=numbers)
        labels = np.array(explain(model, numbers, return_logits=True)[1])
        with Gradient(model, ClusterComposite()) as attributor:
            onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), model.n_clusters).double()
            _, zennit_relevance = attributor(torch.as_tensor(np.array(numbers)), attr_output=lambda y: y * onehot)
        closed = explain(model, numbers.to_numpy())
        np.testing.assert_allclose(zennit_relevance.numpy(), closed, rtol=1e-6, atol=1e-8 * np.abs(closed).max())


def test_missing_values_are_explained_as_imputed(wine_with_gaps):
    pipeline = _fit('imputer+sparse-onehot-drop', wine_with_gaps)
    relevance = explain(pipeline, wine_with_gaps)
    gaps = wine_with_gaps['alcohol'].isna().to_numpy()
    assert gaps.any() and np.isfinite(relevance.to_numpy()).all()
    # an imputed cell carries the relevance of the value the imputer put there
    filled = wine_with_gaps.copy()
    filled['alcohol'] = filled['alcohol'].fillna(pipeline[0].named_transformers_['num'][0].statistics_[0])
    np.testing.assert_allclose(explain(pipeline, filled).to_numpy(), relevance.to_numpy(), rtol=1e-12, atol=1e-12)


def test_plain_kmeans_on_a_frame_checks_names(wine_frame):
    numbers = wine_frame.drop(columns=['colour', 'region'])
    kmeans = _km().fit(numbers)
    model = neuralize(kmeans, X=numbers)
    assert list(model.get_feature_names_out()) == list(numbers.columns)
    relevance = explain(model, numbers)
    assert list(relevance.columns) == list(numbers.columns)
    np.testing.assert_array_equal(model(numbers).argmax(1).numpy(), kmeans.predict(numbers))
    with pytest.raises(ValueError, match='another order'):
        model(numbers[numbers.columns[::-1]])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['hue'\]"):
        explain(model, numbers.drop(columns='hue'))


def test_column_errors(wine_frame):
    pipeline = _fit('scaler+onehot', wine_frame)
    model = neuralize(pipeline)
    with pytest.raises(ValueError, match="another order than at fit: 'alcohol' at position 1"):
        explain(model, wine_frame[['malic_acid', 'alcohol'] + list(wine_frame.columns[2:])])
    renamed = wine_frame.rename(columns={'hue': 'Hue'})
    with pytest.raises(ValueError, match=r"missing column\(s\) \['hue'\]; unexpected column\(s\) \['Hue'\]"):
        explain(model, renamed)
    with pytest.raises(ValueError, match=r"unexpected column\(s\) \['extra'\]"):
        explain(model, wine_frame.assign(extra=1.0))
    with pytest.raises(ValueError, match="another order"):
        model(wine_frame[wine_frame.columns[::-1]])
    with pytest.raises(ValueError, match="'onehotencoder'|'columntransformer'.*unknown categor"):
        explain(model, wine_frame.assign(colour='blue'))
    with pytest.raises(ValueError, match="columntransformer.*could not convert|columntransformer"):
        explain(model, wine_frame.assign(alcohol='strong'))
    with pytest.raises(ValueError, match='a torch tensor is taken as the encoded matrix'):
        explain(model, torch.zeros(3, wine_frame.shape[1]))
    encoded = torch.as_tensor(model.encode(wine_frame))  # the encoded matrix as a tensor: explained as the network
    np.testing.assert_allclose(explain(model, encoded, grouped=False).numpy(),
                               explain(model, wine_frame, grouped=False).to_numpy(), rtol=1e-12, atol=1e-12)
    numbers = wine_frame.drop(columns=['colour', 'region'])
    scaled = make_pipeline(StandardScaler(), _km()).fit(numbers)
    with pytest.raises(TypeError, match=r"column\(s\) 'alcohol' \(\w+\) do not hold numbers"):
        explain(scaled, numbers.assign(alcohol='strong'))
    with pytest.raises(ValueError, match="another order"):
        neuralize(scaled, X=numbers[numbers.columns[::-1]])


def test_unknown_category_ignored_is_conserved(wine_frame):
    pipeline = _fit('index+mask+drop+passthrough', wine_frame)
    frame = wine_frame.assign(colour='blue')  # handle_unknown='ignore': all zeros in the colour block
    relevance, labels, logits = explain(pipeline, frame, return_logits=True)
    np.testing.assert_array_equal(labels.to_numpy(), pipeline.predict(frame))
    np.testing.assert_allclose(relevance.to_numpy().sum(1), logits.to_numpy()[np.arange(len(frame)), labels],
                               rtol=1e-10, atol=1e-10)


def test_projection_before_an_encoder_and_members_after_a_whitened_projection_are_refused(wine_frame):
    from sklearn.cluster import AgglomerativeClustering
    numbers = wine_frame.drop(columns=['colour', 'region'])
    # mixtures and member networks after a projection are folded (tests/families/mixture/test_mixture_projection.py,
    # tests/families/members/test_member_projection.py); a member network after a whitened one is not
    with pytest.raises(TypeError, match="whiten=True.*no projector"):
        neuralize(make_pipeline(StandardScaler(), PCA(3, whiten=True), AgglomerativeClustering(3)).fit(numbers),
                  X=numbers)
    with pytest.raises(TypeError, match="mixes columns, and the encoder step 'simpleimputer'"):
        neuralize(make_pipeline(PCA(3), SimpleImputer(), _km()).fit(numbers))
    with pytest.raises(TypeError, match="comes after the projection 'pca'"):
        neuralize(make_pipeline(PCA(3), StandardScaler(), _km()).fit(numbers))
    with pytest.raises(TypeError, match="'p' \\(PCA\\) mixes columns"):
        neuralize(make_pipeline(ColumnTransformer([('p', PCA(2), [0, 1, 2])]), _km()).fit(numbers))


NUMERIC_STAGES = {
    'standard': StandardScaler, 'minmax': MinMaxScaler, 'robust': RobustScaler, 'maxabs': MaxAbsScaler,
    'normalizer': Normalizer,
}


@settings(max_examples=15, deadline=None)
@given(stages=st.lists(st.sampled_from(sorted(NUMERIC_STAGES)), max_size=3),
       projection=st.sampled_from([None, 'pca', 'svd']), head=st.sampled_from(['kmeans', 'bisecting']),
       n_clusters=st.integers(2, 5), encode=st.booleans(), normalize_after=st.booleans())
def test_random_compositions(wine_frame, stages, projection, head, n_clusters, encode, normalize_after):
    """Any order of scalers and normalisers, an optional projection, ahead of a centroid model: exact."""
    steps = [NUMERIC_STAGES[name]() for name in stages]
    if projection:
        steps.append(PCA(3) if projection == 'pca' else TruncatedSVD(3, random_state=0))
        if normalize_after:
            steps.append(Normalizer())
    steps.append(KMeans(n_clusters, n_init=2, random_state=0) if head == 'kmeans'
                 else BisectingKMeans(n_clusters, random_state=0))
    frame = wine_frame.drop(columns=['region'] if encode else ['region', 'colour'])
    if encode:
        steps.insert(0, ColumnTransformer([('num', StandardScaler(), NUMBERS), ('cat', OneHotEncoder(), ['colour'])]))
    pipeline = make_pipeline(*steps).fit(frame)
    model = neuralize(pipeline, X=frame)
    relevance, labels, logits = explain(model, frame, return_logits=True)
    np.testing.assert_array_equal(labels.to_numpy(), pipeline.predict(frame))
    evidence = logits.to_numpy()[np.arange(len(frame)), labels.to_numpy()]
    np.testing.assert_allclose(relevance.to_numpy().sum(1), evidence, rtol=1e-9, atol=1e-9 * np.abs(evidence).max())
    assert (evidence >= 0).all()
