"""Fixtures of the centroid family's tests."""
import pytest
from sklearn.cluster import BisectingKMeans, KMeans


@pytest.fixture(scope='session')
def wine_models(wine):
    X = (wine - wine.min(0)) / (wine.max(0) - wine.min(0))  # MinMax, as in docs/method.md's wine numbers
    return X, {
        'KMeans': KMeans(n_clusters=4, n_init=3, random_state=0).fit(X),
        'BisectingKMeans': BisectingKMeans(n_clusters=4, random_state=0).fit(X),
    }
