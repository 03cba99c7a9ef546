"""Fixtures of the ONNX exporter's tests: models fitted on digits, and their graphs, exported once per session."""
import numpy as np
import pytest
import torch
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans

from exporters.onnx import export, make_session


@pytest.fixture(scope='session')
def models(digits):
    """The model families of the issue, fitted on digits (1797 x 64, raw 0..16)."""
    kmeans = KMeans(10, n_init=2, random_state=0).fit(digits)
    return {
        'KMeans': kmeans,
        'MiniBatchKMeans': MiniBatchKMeans(10, n_init=2, random_state=0).fit(digits),
        'BisectingKMeans': BisectingKMeans(8, random_state=0).fit(digits),
        'tensor': torch.from_numpy(digits[::180][:6].copy()),  # six digits as centroids of a deep head
    }


@pytest.fixture(scope='session')
def exported(models, tmp_path_factory):
    """Every model of ``models`` exported with explanations (float32, default beta), with its session."""
    folder = tmp_path_factory.mktemp('graphs')
    graphs = {}
    for name, model in models.items():
        path = folder / f'{name}.onnx'
        result = export(model, path, explain=True)
        graphs[name] = (path, result, make_session(path))
    return graphs


@pytest.fixture(scope='session')
def many_rows(digits):
    """Thousands of rows: digits, and two jittered copies of it."""
    rng = np.random.default_rng(0)
    jittered = [digits + rng.normal(0, 0.5, digits.shape), digits[::-1] + rng.normal(0, 1.0, digits.shape)]
    return np.concatenate([digits, *jittered])
