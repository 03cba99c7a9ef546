"""Every supported model, in every format, still loads through the checks and neuralizes as before; and a
hypothesis fuzz of the restricted unpickler on generated opcode streams."""
import pickle

import joblib
import numpy as np
import pytest
import skops.io
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.cluster import (DBSCAN, HDBSCAN, AgglomerativeClustering, BisectingKMeans, KMeans, MiniBatchKMeans,
                             SpectralClustering)
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, RobustScaler, StandardScaler

from exporters.loading import ModelFileError, UnsafePickleError, load_model
from exporters.loading.budget import Budget
from exporters.loading.errors import Refusal
from exporters.loading.pickle_files import pickle_names
from exporters.loading.unpickler import loads
from zennit_clusters import neuralize

FORMATS = ['pickle0', 'pickle1', 'pickle2', 'pickle3', 'pickle4', 'pickle5', 'joblib', 'joblib-zlib', 'joblib-lzma',
           'skops']


def save(obj, folder, fmt):
    path = folder / f'{fmt}.{"skops" if fmt == "skops" else "joblib" if fmt.startswith("joblib") else "pkl"}'
    if fmt.startswith('pickle'):
        path.write_bytes(pickle.dumps(obj, protocol=int(fmt[-1])))
    elif fmt == 'skops':
        skops.io.dump(obj, path)
    else:
        joblib.dump(obj, path, compress=(fmt.split('-')[1], 3) if '-' in fmt else 0)
    return path


@pytest.fixture(scope='module')
def models(wine):
    x = StandardScaler().fit_transform(wine)
    from zennit_clusters import KernelKMeans
    found = {
        'KMeans': KMeans(3, n_init=1, random_state=0).fit(x),
        'MiniBatchKMeans': MiniBatchKMeans(3, n_init=1, random_state=0).fit(x),
        'BisectingKMeans-lloyd': BisectingKMeans(4, random_state=0).fit(x),
        'BisectingKMeans-elkan': BisectingKMeans(4, random_state=np.random.RandomState(0), algorithm='elkan').fit(x),
        'BayesianGaussianMixture': BayesianGaussianMixture(n_components=3, random_state=0).fit(x),
        'KernelKMeans': KernelKMeans(3, random_state=0).fit(x[::2]),
        'Pipeline': make_pipeline(RobustScaler(), MaxAbsScaler(), KMeans(3, n_init=1, random_state=0)).fit(wine),
    }
    for covariance in ('full', 'tied', 'diag', 'spherical'):
        found[f'GaussianMixture-{covariance}'] = GaussianMixture(n_components=3, covariance_type=covariance, random_state=0).fit(x)
    for partition in (DBSCAN(eps=2.5), HDBSCAN(copy=True), AgglomerativeClustering(3),
                      SpectralClustering(3, affinity='nearest_neighbors', random_state=0)):
        found[type(partition).__name__] = partition.fit(x)
    return x, found


def test_every_supported_model_loads_from_every_format(models, tmp_path):
    x, found = models
    for name, estimator in found.items():
        for fmt in FORMATS:
            loaded = load_model(save(estimator, tmp_path, fmt))
            assert type(loaded) is type(estimator), (name, fmt)
            if not hasattr(estimator, 'predict'):  # a labelled partition: neuralized from its labels_
                np.testing.assert_array_equal(loaded.labels_, estimator.labels_)
                continue
            data = x if name != 'Pipeline' else x * 3 + 10
            with torch.no_grad():
                expected = neuralize(estimator)(torch.as_tensor(data[:20]))
                got = neuralize(loaded)(torch.as_tensor(data[:20]))
            torch.testing.assert_close(got, expected, msg=f'{name} {fmt}')


def test_torch_centroids_and_state_dicts_load(tmp_path):
    centroids = torch.randn(4, 6, dtype=torch.float64)
    torch.save(centroids, tmp_path / 'c.pt')
    torch.save({'head.centroids': centroids, 'encoder.weight': torch.randn(6, 6)}, tmp_path / 's.pth')
    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / 'linear.pt')  # an OrderedDict with _metadata
    torch.save(centroids[:, ::2], tmp_path / 'view.pt')  # a strided view of a larger storage
    torch.testing.assert_close(load_model(tmp_path / 'c.pt'), centroids)
    torch.testing.assert_close(load_model(tmp_path / 's.pth'), centroids)  # a state dict gives its centroids
    with pytest.raises(ModelFileError, match=r'linear.pt is a state dict whose centroids cannot be told.*weight \(2, 3\), bias \(2,\)'):
        load_model(tmp_path / 'linear.pt')  # read through every check, refused for what it holds: a Linear layer
    torch.testing.assert_close(load_model(tmp_path / 'view.pt'), centroids[:, ::2])


def test_budgets_are_options(tmp_path, wine):
    path = save(KMeans(3, n_init=1, random_state=0).fit(wine), tmp_path, 'pickle4')
    for option in ({'max_bytes': 100}, {'max_objects': 10}, {'max_depth': 1}, {'max_file_bytes': 10}):
        with pytest.raises(UnsafePickleError, match='budget'):
            load_model(path, **option)
    assert isinstance(load_model(path, max_bytes=1 << 20, max_objects=10_000), KMeans)


# ------------------------------------------------------------------------------------------ fuzzing

_SNIPPETS = [b'(', b't', b'l', b'd', b'}', b']', b')', b'N', b'\x88', b'\x89', b'K\x01', b'K\x00', b'J\xff\xff\xff\xff',
             b'M\x00\x01', b'\x8c\x01a', b'\x8c\x01b', b'X\x02\x00\x00\x00f8', b'C\x01b', b'C\x08AAAAAAAA',
             b'q\x00', b'q\x01', b'h\x00', b'h\x01', b'\x94', b'R', b'b', b'\x81', b'\x92', b'a', b'e', b's', b'u',
             b'0', b'1', b'2', b'\x85', b'\x86', b'\x87', b'\x8a\x01\x05', b'G\x7f\xf8\x00\x00\x00\x00\x00\x00',
             b'\x93', b'\x82\x01', b'Q', b'\x97', b'\x98', b'\x96\x08\x00\x00\x00\x00\x00\x00\x00']
_NAMES = ['numpy dtype', 'numpy._core.multiarray _reconstruct', 'numpy ndarray', 'copyreg _reconstructor',
          'builtins object', 'sklearn.cluster._kmeans KMeans', 'sklearn.cluster._bisect_k_means _BisectingTree',
          'joblib.numpy_pickle NumpyArrayWrapper', 'os system', '_codecs encode', 'numpy._core.multiarray scalar',
          'numpy._core.numeric _frombuffer', 'sklearn.cluster._kmeans _kmeans_single_lloyd', 'builtins getattr']
_OPCODES = st.one_of(st.sampled_from(_SNIPPETS), st.sampled_from([b'c' + n.replace(' ', '\n').encode() + b'\n'
                                                                  for n in _NAMES]), st.binary(max_size=6))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_OPCODES, max_size=40), st.sampled_from([b'', b'\x80\x02', b'\x80\x04', b'\x80\x05']))
def test_fuzzed_opcode_streams_never_escape(stream, proto):
    """Any opcode stream ends in a value or a refusal/unpickling error; never a crash, never another error
    type, and nothing admitted is modified."""
    import copyreg
    from joblib.numpy_pickle import NumpyArrayWrapper
    before = (dict(vars(NumpyArrayWrapper)), copyreg._reconstructor.__defaults__, dict(vars(copyreg._reconstructor)))
    data = proto + b''.join(stream) + b'.'
    try:
        loads(data, _fuzz_names(), Budget(max_bytes=1 << 20, max_objects=10_000, max_depth=50))
    except (Refusal, pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, AttributeError,
            struct_error(), UnicodeDecodeError, OverflowError):
        pass
    assert (dict(vars(NumpyArrayWrapper)), copyreg._reconstructor.__defaults__,
            dict(vars(copyreg._reconstructor))) == before


def struct_error():
    import struct
    return struct.error


_CACHE = {}


def _fuzz_names():
    if 'names' not in _CACHE:
        _CACHE['names'] = pickle_names()
    return _CACHE['names']


def test_fuzzed_files_through_load_model(tmp_path):
    """A few streams through the whole loader: each is a refusal or a corrupt-file error, in one line."""
    rng = np.random.default_rng(0)
    for index in range(200):
        parts = [(_SNIPPETS + [b'c' + n.replace(' ', '\n').encode() + b'\n' for n in _NAMES])[i]
                 for i in rng.integers(0, len(_SNIPPETS) + len(_NAMES), size=rng.integers(1, 30))]
        path = tmp_path / f'fuzz{index % 2}.pkl'
        path.write_bytes(b'\x80\x04' + b''.join(parts) + b'.')
        try:
            load_model(path)
        except (UnsafePickleError, ModelFileError) as error:
            assert '\n' not in str(error)
