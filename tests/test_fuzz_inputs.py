"""Property-based fuzz of bad inputs at the API (issue 13, item 6).

Every input to ``neuralize(est, X=...)``, ``explain``, a closed-form explainer (``make_explainer(...)(x)``) and a
neuralized module's forward either gives the right answer (the labels of the float64 reference and of
scikit-learn's ``predict`` where there is one, conservative and matching relevance) or a ValueError/TypeError whose
message names what was expected; never another exception from deep inside torch or numpy.
"""
import math
import re
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import AgglomerativeClustering, BisectingKMeans, KMeans
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from zennit_clusters import explain, make_explainer, neuralize

N_FEATURES = 4
#: words by which an error names what was expected
EXPECTED = re.compile(r'must|expect|required|needs|fitted|overflows|first|supported|cannot|Accepted', re.I)
DTYPES = ['float16', 'bfloat16', 'float32', 'float64', 'complex64', 'int32', 'int64', 'uint8', 'bool', 'object']
SHAPES = ['ok', 'zero rows', '1-d', '3-d', 'wider', 'narrower']
VALUES = ['plain', 'nan', 'inf', 'huge', 'tiny']
LAYOUTS = ['contiguous', 'fortran', 'reversed rows', 'reversed columns', 'every other row', 'list', 'meta',
           'sparse coo', 'sparse csr', 'masked']


@pytest.fixture(scope='module')
def data(wine):
    return wine[:, :N_FEATURES].copy()


@pytest.fixture(scope='module')
def estimators(data):
    return {
        'kmeans': KMeans(3, n_init=2, random_state=0).fit(data),
        'bisecting': BisectingKMeans(3, random_state=0).fit(data),
        'gmm': GaussianMixture(3, covariance_type='diag', random_state=0).fit(data),
        'pipeline': make_pipeline(StandardScaler(), KMeans(3, n_init=2, random_state=0)).fit(data),
        'agglomerative': AgglomerativeClustering(3).fit(data),
    }


@pytest.fixture(scope='module')
def models(estimators, data):
    return {name: neuralize(est, X=data if name == 'agglomerative' else None) for name, est in estimators.items()}


def make_input(rows, dtype, shape, values, layout):
    """(the input, the float64 values it stands for or None, whether it is valid for explain())."""
    x = rows.copy()
    if values == 'nan':
        x[1, 2] = math.nan
    elif values == 'inf':
        x[0, 1] = -math.inf
    elif values == 'huge':
        x = x * 1e30
    elif values == 'tiny':
        x = x * 1e-30
    x = {'zero rows': x[:0], '1-d': x[0], '3-d': x[None], 'wider': np.hstack([x, x[:, :1]]),
         'narrower': x[:, :-1]}.get(shape, x)
    valid = shape == 'ok' and dtype not in ('complex64', 'object') and layout not in ('meta', 'sparse coo',
                                                                                    'sparse csr')
    torch_only = dtype == 'bfloat16' or layout in ('meta', 'sparse coo', 'sparse csr')
    if dtype == 'object':
        array = x.astype(object)
    elif dtype == 'bfloat16':
        array = x
    else:
        with np.errstate(over='ignore', invalid='ignore'):
            array = x.astype(dtype)
    if torch_only:
        tensor = torch.as_tensor(np.ascontiguousarray(x)).to(getattr(torch, dtype) if dtype != 'object'
                                                             else torch.float64)
        if layout == 'meta':
            tensor = tensor.to('meta')
        elif layout == 'sparse coo' and tensor.dim() >= 1:
            tensor = tensor.to_sparse()
        elif layout == 'sparse csr' and tensor.dim() == 2:
            tensor = tensor.to_sparse_csr()
        dense = layout not in ('meta', 'sparse coo', 'sparse csr') and not tensor.is_complex()
        as_float = tensor.to(torch.float64).numpy() if dense else None
        value = tensor
    else:
        if layout == 'fortran':
            array = np.asfortranarray(array)
        elif layout == 'reversed rows':
            array = array[::-1]
        elif layout == 'reversed columns' and array.ndim >= 2:
            array = array[..., ::-1]
        elif layout == 'every other row' and array.ndim >= 2:
            array = np.repeat(array, 2, axis=0)[::2]
        value = array.tolist() if layout == 'list' else array
        if layout == 'list' and dtype == 'object':  # a list of Python floats: numbers after all
            valid, array = shape == 'ok', x
        if layout == 'masked':
            value = np.ma.masked_array(array, mask=np.zeros(array.shape, bool))
        as_float = array.astype(np.float64) if array.dtype.kind in 'biuf' else None
    return value, as_float, valid


def assert_clear_error(error):
    assert isinstance(error, (ValueError, TypeError)), f'{type(error).__name__}: {error}'
    assert EXPECTED.search(str(error)), f'the message does not say what was expected: {error}'


def call(function):
    """The result, or the ValueError/TypeError raised; any other exception fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # float16 / bfloat16 to float32, CSR beta state, ...
            return function(), None
    except (ValueError, TypeError) as error:
        assert_clear_error(error)
        return None, error


def expected_precision(value):
    dtype = value.dtype if hasattr(value, 'dtype') else np.float64
    return 1e-9 if str(dtype).endswith('float64') or str(dtype) in ('int32', 'int64', 'uint8', 'bool') else 1e-3


inputs = st.tuples(st.sampled_from(DTYPES), st.sampled_from(SHAPES), st.sampled_from(VALUES),
                   st.sampled_from(LAYOUTS), st.integers(0, 170))


@settings(max_examples=150, deadline=None)
@given(case=inputs, name=st.sampled_from(['kmeans', 'bisecting', 'gmm', 'pipeline', 'agglomerative']))
def test_explain_gives_the_right_answer_or_a_clear_error(case, name, models, estimators, data):
    dtype, shape, values, layout, start = case
    model = models[name]
    value, as_float, valid = make_input(data[start:start + 6], dtype, shape, values, layout)
    result, error = call(lambda: explain(model, value, return_logits=True))
    finite = as_float is not None and np.isfinite(as_float).all()
    if not valid or (as_float is not None and not finite):
        assert error is not None, f'{dtype} {shape} {values} {layout} was accepted'
        return
    if error is not None:
        # in range of the input dtype but not of the model's arithmetic (a float16 row of 1e30 is infinity)
        assert values in ('huge', 'plain') and ('overflow' in str(error) or 'infinity' in str(error)), error
        return
    relevance, labels, logits = (np.asarray(r.detach().cpu()) if torch.is_tensor(r) else r for r in result)
    reference, ref_labels, ref_logits = explain(model, np.asarray(as_float, dtype=np.float64), return_logits=True)
    np.testing.assert_array_equal(labels, ref_labels)
    estimator = estimators[name]
    if hasattr(estimator, 'predict') and values == 'plain':
        np.testing.assert_array_equal(ref_labels, estimator.predict(as_float))
    if name == 'agglomerative' and values in ('huge', 'tiny'):
        return  # member-point relevance far from the members: issue 13, item 5 (test below)
    rtol = expected_precision(value)
    scale = np.abs(reference).max() + np.abs(ref_logits).max()
    np.testing.assert_allclose(relevance, reference, rtol=rtol, atol=rtol * scale)


def test_member_relevance_far_from_the_members_is_finite(models, data):
    relevance, labels, logits = explain(models['agglomerative'], data[:20] * 1e30, return_logits=True)
    assert np.isfinite(logits).all() and np.isfinite(relevance).all()


@settings(max_examples=120, deadline=None)
@given(case=inputs, name=st.sampled_from(['kmeans', 'gmm', 'pipeline', 'agglomerative']))
def test_explainer_and_forward_refuse_clearly(case, name, models, data):
    dtype, shape, values, layout, start = case
    model = models[name]
    value, as_float, _ = make_input(data[start:start + 6], dtype, shape, values, layout)
    explainer = make_explainer(model)
    result, error = call(lambda: explainer(value))
    dense_float = (torch.is_tensor(value) and value.layout == torch.strided and value.device.type != 'meta'
                   and value.dtype in (torch.float32, torch.float64))
    if error is None:
        assert dense_float and shape in ('ok', 'zero rows'), f'{dtype} {shape} {values} {layout} was accepted'
        labels = result[0]
        assert labels.shape == (value.shape[0],) and result[2].shape == value.shape
        finite_rows = torch.isfinite(value).all(1)
        assert torch.equal(labels < 0, ~finite_rows)  # non-finite rows are labelled -1, never given a cluster
    result, error = call(lambda: model(value))
    if error is None:
        assert torch.is_tensor(value) and value.is_floating_point() and value.dim() == 2
        assert result.shape == (value.shape[0], model.n_clusters)


@settings(max_examples=80, deadline=None)
@given(case=inputs, name=st.sampled_from(['kmeans', 'gmm', 'pipeline']))
def test_training_data_is_checked(case, name, estimators, data):
    dtype, shape, values, layout, start = case
    value, as_float, valid = make_input(data[start:start + 6], dtype, shape, values, layout)
    model, error = call(lambda: neuralize(estimators[name], X=value))
    if model is not None:
        assert valid and np.isfinite(as_float).all(), f'{dtype} {shape} {values} {layout} was accepted'
        assert math.isfinite(model.beta) and model.beta >= 0


def test_partition_training_data_on_the_meta_device(estimators):
    _, error = call(lambda: neuralize(estimators['agglomerative'], X=torch.zeros(178, N_FEATURES, device='meta')))
    assert error is not None


@given(thing=st.sampled_from([None, 3, 'kmeans', b'x', [1, 2], {'a': 1}, np.zeros((3, 2)), torch.nn.Linear(2, 2),
                              torch.nn.ReLU(), KMeans(3), GaussianMixture(2), object()]),
       beta=st.sampled_from([None, 0.0, 1.0, math.inf, -1.0, math.nan, '1', [1.0], True]),
       cluster=st.sampled_from([None, 0, 2, 3, -1, 1.0, True, np.int64(1)]),
       chunk_size=st.sampled_from([None, 1, 4, 0, -2, 1.5, True]))
def test_arguments_give_the_right_answer_or_a_clear_error(thing, beta, cluster, chunk_size, models, data):
    _, error = call(lambda: neuralize(thing))
    assert error is not None
    x = data[:7]
    result, error = call(lambda: explain(models['kmeans'], x, cluster=cluster, beta=beta, chunk_size=chunk_size,
                                         return_logits=True))
    if error is None:
        relevance, labels, logits = result
        explained = labels if cluster is None else np.full(len(x), int(cluster))
        np.testing.assert_allclose(relevance.sum(1), logits[np.arange(len(x)), explained], rtol=1e-9, atol=1e-9)
