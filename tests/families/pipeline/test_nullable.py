"""pandas' nullable dtypes (``Int64``, ``Float64``, ``boolean``) and ``pd.NA``: read as numbers, missing as NaN.

Their ``to_numpy()`` is an object array, which a plain ``np.asarray`` refuses or, worse, keeps as objects;
every path (neuralize, explain, the model's forward, predict) must take them as the float64 values they hold,
and a missing value must get what a NaN gets: the pipeline's imputer, or a refusal naming the row.
"""
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_wine
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from zennit_clusters import explain, explain_with_constant, neuralize

pytestmark = [pytest.mark.filterwarnings('error:X does not have valid feature names'),
              pytest.mark.filterwarnings('error:X has feature names')]


@pytest.fixture(scope='module')
def wine():
    return load_wine(as_frame=True).data


def _with_gaps(frame, seed=0):
    """The frame as Float64 with pd.NA in 10 % of three columns, and the same frame as float64 with NaN."""
    nullable = frame.astype('Float64')
    rng = np.random.default_rng(seed)
    for column in ('alcohol', 'hue', 'proline'):
        nullable.loc[rng.random(len(frame)) < 0.1, column] = pd.NA
    return nullable, nullable.astype('float64')


def test_imputed_pipeline_explains_pd_na_as_it_explains_nan(wine):
    nullable, with_nan = _with_gaps(wine)
    assert nullable.isna().to_numpy().sum() > 20
    pipeline = make_pipeline(SimpleImputer(), StandardScaler(), KMeans(3, n_init=3, random_state=0)).fit(nullable)
    model = neuralize(pipeline, X=nullable)
    relevance, constant, labels, logits = explain_with_constant(model, nullable, return_logits=True)
    assert isinstance(relevance, pd.DataFrame) and list(relevance.columns) == list(wine.columns)
    np.testing.assert_array_equal(labels.to_numpy(), pipeline.predict(nullable))
    reference = explain(model, with_nan)
    np.testing.assert_array_equal(relevance.to_numpy(), reference.to_numpy())
    # conservation on the user's columns, float64
    evidence = logits.to_numpy()[np.arange(len(wine)), labels.to_numpy()]
    np.testing.assert_allclose(relevance.to_numpy().sum(1) + constant.to_numpy(), evidence, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(model.predict(nullable), pipeline.predict(nullable))


@pytest.mark.parametrize('dtype', ['Int64', 'Float64', 'boolean-column'])
def test_nullable_columns_without_gaps_are_their_float_values(wine, dtype):
    frame = wine.round().astype('Int64') if dtype == 'Int64' else wine.astype('Float64')
    if dtype == 'boolean-column':
        frame['strong'] = (wine['alcohol'] > 13).astype('boolean')
    plain = frame.astype('float64')
    kmeans = KMeans(3, n_init=3, random_state=0).fit(plain)
    model = neuralize(kmeans, X=frame)
    relevance, labels = explain(model, frame, return_logits=True)[:2]
    np.testing.assert_array_equal(labels.to_numpy(), kmeans.predict(plain))
    np.testing.assert_array_equal(relevance.to_numpy(), explain(model, plain).to_numpy())
    # the module's own forward takes the frame too (a forward pre-hook on models fitted on names)
    forward = model(frame)
    assert forward.dtype == torch.float64
    np.testing.assert_array_equal(forward.argmax(1).numpy(), kmeans.predict(plain))


def test_pd_na_without_an_imputer_is_refused_by_row(wine):
    nullable, _ = _with_gaps(wine, seed=3)
    kmeans = KMeans(3, n_init=3, random_state=0).fit(wine)
    first = int(np.flatnonzero(nullable.isna().any(axis=1).to_numpy())[0])
    model = neuralize(kmeans)
    with pytest.raises(ValueError, match=rf'NaN \(first in row {first}\).*pd\.NA.*SimpleImputer'):
        explain(model, nullable)
    with pytest.raises(ValueError, match='pd.NA'):
        neuralize(make_pipeline(StandardScaler(), KMeans(3, n_init=3, random_state=0)).fit(wine), X=nullable)
