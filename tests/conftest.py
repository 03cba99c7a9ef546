import os
import sys

import numpy as np
import pytest
import torch
from hypothesis import settings
from sklearn.datasets import load_breast_cancer, load_digits, load_wine

sys.path.insert(0, os.path.dirname(__file__))

torch.set_num_threads(min(2, os.cpu_count() or 1))
settings.register_profile('ci', max_examples=40, deadline=None)
settings.load_profile('ci')


@pytest.fixture(scope='session')
def digits():
    return load_digits().data.astype(np.float64)


@pytest.fixture(scope='session')
def wine():
    return load_wine().data.astype(np.float64)


@pytest.fixture(scope='session')
def breast_cancer():
    return load_breast_cancer().data.astype(np.float64)


@pytest.fixture(scope='session')
def real_data(digits, wine, breast_cancer):
    """The three real data sets with the number of clusters to fit on each."""
    return {'digits': (digits, 10), 'wine': (wine, 3), 'breast_cancer': (breast_cancer, 2)}


def pytest_report_header(config):
    import sklearn
    import zennit
    version = getattr(zennit, '__version__', None)
    if version is None:
        from importlib.metadata import version as metadata_version
        version = metadata_version('zennit') if 'zennit1' not in zennit.__file__ else '1.0.0 (from .venv/zennit1)'
    return f'zennit {version} at {zennit.__file__}; torch {torch.__version__}; scikit-learn {sklearn.__version__}'
