"""Loading model files safely, and the command line's exits on bad files and bad input.

A pickle names the callables that rebuild it, so a crafted file can run code when loaded. These tests
prove that the allow-list unpickler rebuilds every supported estimator from every pickle protocol,
joblib (plain and compressed) and skops, refuses anything else by name *before* calling it (the payloads
below are live: loaded with ``trust_pickle=True`` they do run), and that the command line turns every
bad file or bad input into one clear line on stderr and a non-zero exit, never a traceback.
"""
import fractions
import os
import pickle
import subprocess
import sys

import joblib
import numpy as np
import onnxruntime
import pytest
import skops.io
import torch
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.linear_model import LinearRegression
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import exporters.loading as loading
from exporters.loading import ModelFileError, UnsafePickleError, allow_types, allowed_names, load_model
from exporters.onnx import main
from zennit_clusters import neuralize
from zennit_clusters.core import families

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CUDA = 'CUDAExecutionProvider' in onnxruntime.get_available_providers()


class SystemCall:
    """A pickle payload: unpickling it runs a shell command."""
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class Exec:
    """A pickle payload: unpickling it runs Python code."""
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def touch(marker):
    return f"open({str(marker)!r}, 'w').close()"


@pytest.fixture(scope='module')
def estimators(wine):
    """Every scikit-learn family the converters register, fitted on wine."""
    from zennit_clusters import KernelKMeans

    scaled = StandardScaler().fit_transform(wine)
    return {
        'KMeans': KMeans(3, n_init=1, random_state=0).fit(wine),
        'MiniBatchKMeans': MiniBatchKMeans(3, n_init=1, random_state=0).fit(wine),
        # a RandomState instance and the elkan routine are what BisectingKMeans pickles hold beyond arrays
        'BisectingKMeans': BisectingKMeans(3, random_state=np.random.RandomState(0), algorithm='elkan').fit(wine),
        'GaussianMixture': GaussianMixture(3, covariance_type='full', random_state=0).fit(wine),
        'Pipeline': make_pipeline(StandardScaler(), MinMaxScaler(), KMeans(3, n_init=1, random_state=0)).fit(wine),
        'KernelKMeans': KernelKMeans(3, random_state=0).fit(scaled[::2]),
    }


def save(obj, path, fmt):
    """Write ``obj`` in one of the formats users save models in."""
    if fmt.startswith('pickle'):
        with open(path, 'wb') as handle:
            pickle.dump(obj, handle, protocol=int(fmt[-1]))
    elif fmt == 'joblib':
        joblib.dump(obj, path)
    elif fmt.startswith('joblib-'):
        joblib.dump(obj, path, compress=(fmt.split('-')[1], 3))
    elif fmt == 'skops':
        skops.io.dump(obj, path)
    return path


FORMATS = {'pickle0': '.pkl', 'pickle2': '.pkl', 'pickle4': '.pickle', 'pickle5': '.pkl', 'joblib': '.joblib',
           'joblib-zlib': '.joblib', 'joblib-xz': '.joblib', 'skops': '.skops'}


# ------------------------------------------------------------------------------------- what loads

@pytest.mark.parametrize('fmt', list(FORMATS))
@pytest.mark.parametrize('name', ['KMeans', 'MiniBatchKMeans', 'BisectingKMeans', 'GaussianMixture', 'Pipeline',
                                  'KernelKMeans'])
def test_supported_estimators_load_from_every_format(estimators, wine, tmp_path, name, fmt):
    estimator = estimators[name]
    loaded = load_model(save(estimator, tmp_path / f'model{FORMATS[fmt]}', fmt))
    assert type(loaded) is type(estimator)
    np.testing.assert_array_equal(loaded.predict(wine), estimator.predict(wine))


def test_object_arrays_load_through_the_allow_list(wine, tmp_path):
    """A model fitted on a DataFrame keeps its column names in an object array (joblib nests a pickle)."""
    pandas = pytest.importorskip('pandas')
    frame = pandas.DataFrame(wine, columns=[f'feature {i}' for i in range(wine.shape[1])])
    estimator = KMeans(3, n_init=1, random_state=0).fit(frame)
    for fmt in ('pickle2', 'pickle5', 'joblib', 'joblib-zlib'):
        loaded = load_model(save(estimator, tmp_path / f'frame{FORMATS[fmt]}', fmt))
        assert list(loaded.feature_names_in_) == list(frame.columns)
        np.testing.assert_array_equal(loaded.predict(frame), estimator.predict(frame))


def test_torch_files_with_centroids(tmp_path):
    from zennit_clusters import CentroidHead

    centroids = torch.randn(4, 6, dtype=torch.float64)
    torch.save(centroids, tmp_path / 'centroids.pt')
    torch.save({'encoder.weight': torch.randn(6, 6), 'head.centroids': centroids, 'head.alpha': torch.ones(())},
               tmp_path / 'state.pth')
    torch.save(CentroidHead(centroids).state_dict(), tmp_path / 'head.pt')
    for name in ('centroids.pt', 'state.pth', 'head.pt'):
        model = neuralize(load_model(tmp_path / name))
        torch.testing.assert_close(model.cluster_centers, centroids)

    torch.save({'a': torch.randn(3, 2), 'b': torch.randn(3, 2)}, tmp_path / 'ambiguous.pt')
    with pytest.raises(ModelFileError, match='ambiguous.pt is a state dict whose centroids cannot be told.*a .3, 2., b .3, 2.'):
        load_model(tmp_path / 'ambiguous.pt')


def test_allow_list_covers_the_registry_and_nothing_dangerous():
    names = allowed_names()
    for family in families():
        for name in family.converters:
            if name not in family.torch_types:
                assert name in names
    assert loading.BASE_NAMES <= names
    for dangerous in ('builtins.eval', 'builtins.exec', 'builtins.getattr', 'builtins.__import__', 'os.system',
                      'posix.system', 'subprocess.Popen', 'builtins.open', 'io.open', 'functools.partial',
                      'joblib.numpy_pickle.NDArrayWrapper', 'torch.load', 'numpy.load'):
        assert dangerous not in names


def test_allow_types_extends_the_list(tmp_path, monkeypatch):
    import collections

    monkeypatch.setattr(loading.registry, '_ESTIMATOR_INTERNALS', {k: set(v) for k, v in loading._ESTIMATOR_INTERNALS.items()})
    estimator = KMeans(2, n_init=1).fit(np.eye(4))
    estimator.extra_ = collections.OrderedDict(a=1)  # an attribute of a type no supported model holds
    path = save(estimator, tmp_path / 'extra.pkl', 'pickle4')
    with pytest.raises(UnsafePickleError) as refused:
        load_model(path)
    assert refused.value.refused == 'collections.OrderedDict'
    allow_types(KMeans, 'collections.OrderedDict')
    assert load_model(path).extra_ == {'a': 1}


# ------------------------------------------------------------------------------------- what is refused

def payloads(marker):
    """Live payloads, each in the container it would hide in."""
    kmeans = KMeans(2, n_init=1).fit(np.eye(4))
    kmeans.hidden_ = Exec(touch(marker))
    inside_array = KMeans(2, n_init=1).fit(np.eye(4))
    inside_array.names_ = np.array([Exec(touch(marker))], dtype=object)
    return {
        'os.system': (SystemCall(f'touch {marker}'), 'posix.system' if os.name == 'posix' else 'nt.system'),
        'exec': (Exec(touch(marker)), 'builtins.exec'),
        'inside an estimator': (kmeans, 'builtins.exec'),
        'inside an object array': (inside_array, 'builtins.exec'),
    }


@pytest.mark.parametrize('fmt', ['pickle0', 'pickle2', 'pickle5', 'joblib', 'joblib-zlib'])
@pytest.mark.parametrize('payload', ['os.system', 'exec', 'inside an estimator', 'inside an object array'])
def test_malicious_pickles_do_not_execute(tmp_path, payload, fmt):
    marker = tmp_path / 'executed'
    obj, name = payloads(marker)[payload]
    path = save(obj, tmp_path / f'evil{FORMATS[fmt]}', fmt)
    with pytest.raises(UnsafePickleError) as refused:
        load_model(path)
    assert not marker.exists()
    assert refused.value.refused == name
    assert name in str(refused.value) and '--trust-pickle' in str(refused.value)


def test_the_payloads_are_live(tmp_path):
    """The same files do run their code when trusted: the allow-list is what stops them."""
    marker = tmp_path / 'executed'
    path = save(payloads(marker)['inside an object array'][0], tmp_path / 'evil.joblib', 'joblib')
    load_model(path, trust_pickle=True)
    assert marker.exists()


def test_malicious_torch_and_skops_files_are_refused(tmp_path):
    marker = tmp_path / 'executed'
    torch.save(Exec(touch(marker)), tmp_path / 'evil.pt')
    with pytest.raises(UnsafePickleError, match='--trust-pickle'):
        load_model(tmp_path / 'evil.pt')
    torch.save(torch.nn.Linear(2, 2), tmp_path / 'module.pt')
    with pytest.raises(UnsafePickleError, match='torch.nn.modules.linear.Linear'):
        load_model(tmp_path / 'module.pt')
    assert isinstance(load_model(tmp_path / 'module.pt', trust_pickle=True), torch.nn.Linear)

    estimator = KMeans(2, n_init=1).fit(np.eye(4))
    estimator.extra_ = fractions.Fraction(1, 3)  # harmless, but no supported model holds one
    skops.io.dump(estimator, tmp_path / 'odd.skops')
    with pytest.raises(UnsafePickleError, match='fractions.Fraction'):
        load_model(tmp_path / 'odd.skops')
    assert load_model(tmp_path / 'odd.skops', trust_pickle=True).extra_ == fractions.Fraction(1, 3)
    assert not marker.exists()


def test_extension_opcodes_are_refused(tmp_path):
    path = tmp_path / 'extension.pkl'
    path.write_bytes(b'\x80\x02\x82\xf0.')  # PROTO 2, EXT1 240, STOP: a name from copyreg's registry
    with pytest.raises(UnsafePickleError, match='extension'):
        load_model(path)


def test_unsupported_estimators_are_refused_by_name(wine, tmp_path):
    path = save(LinearRegression().fit(wine, wine[:, 0]), tmp_path / 'regression.pkl', 'pickle4')
    with pytest.raises(UnsafePickleError, match='LinearRegression, which is not a supported estimator'):
        load_model(path)
    # trusted, it loads, and neuralize says what it supports
    with pytest.raises(TypeError, match='Cannot neuralize .*LinearRegression.*Supported: .*KMeans'):
        neuralize(load_model(path, trust_pickle=True))


@pytest.mark.filterwarnings('ignore:Detected pickle protocol')  # torch, on the damaged .pt
@pytest.mark.filterwarnings('ignore:Detected pickle protocol')  # torch, about the damaged .pt
@pytest.mark.parametrize('suffix', ['.pkl', '.joblib', '.skops', '.pt'])
def test_corrupt_and_truncated_files(estimators, tmp_path, suffix):
    path = tmp_path / f'corrupt{suffix}'
    path.write_bytes(b'\x80\x04this is not a model file' + bytes(range(256)))
    with pytest.raises(ModelFileError, match='corrupt'):
        load_model(path)
    real = tmp_path / f'real{suffix}'
    fmt = {'.pkl': 'pickle4', '.joblib': 'joblib', '.skops': 'skops'}.get(suffix)
    if fmt is None:
        torch.save(torch.randn(3, 2), real)
    else:
        save(estimators['KMeans'], real, fmt)
    path.write_bytes(real.read_bytes()[:len(real.read_bytes()) // 2])
    with pytest.raises(ModelFileError, match='corrupt'):
        load_model(path)


@pytest.mark.parametrize('obj', [{'n_clusters': 3}, [1, 2, 3], np.zeros((3, 4))], ids=['dict', 'list', 'ndarray'])
def test_plain_data_is_not_a_model(tmp_path, obj):
    with pytest.raises(ModelFileError, match=f'holds a .*{type(obj).__name__}, not a fitted clustering model'):
        load_model(save(obj, tmp_path / 'data.pkl', 'pickle4'))


def test_missing_files_folders_and_unknown_suffixes(tmp_path):
    with pytest.raises(FileNotFoundError, match='not found'):
        load_model(tmp_path / 'nothing.pkl')
    with pytest.raises(ModelFileError, match='directory'):
        load_model(tmp_path)
    (tmp_path / 'model.txt').write_text('KMeans')
    with pytest.raises(ModelFileError, match=r'\.pkl, \.pickle, \.joblib, \.skops, \.pt, \.pth'):
        load_model(tmp_path / 'model.txt')


# ---------------------------------------------------------------------------------- the command line

#: command-line cases run as real processes: (arguments, expected exit status, text stderr must contain).
#: Each process imports torch (seconds), so the remaining bad inputs run in-process through ``main`` below.
CLI_CASES = {
    'unknown option': (['model.pkl', '--frobnicate'], 2, 'unrecognized arguments: --frobnicate'),
    'negative beta': (['model.pkl', '--beta', '-1'], 2, 'must be >= 0'),
    'old opset': (['model.pkl', '--opset', '17'], 2, 'must be >= 18'),
    'missing file': (['nothing.pkl'], 1, 'model file not found: nothing.pkl'),
    'corrupt file': (['corrupt.pkl'], 1, 'corrupt or truncated'),
    'malicious pickle': (['evil.pkl'], 1, 'refused to load evil.pkl'),
    'export': (['served.joblib', '--explain', '--beta', 'inf'], 0, ''),
}


@pytest.fixture(scope='module', autouse=True)
def cli_processes(request, tmp_path_factory, wine):
    """Write the files and start every case of ``CLI_CASES`` (each a fresh Python process) before this module's
    other tests run, so that they run side by side; only when a command-line test is selected."""
    if not any(item.module is request.module and 'cli' in item.fixturenames for item in request.session.items):
        yield None
        return
    folder = tmp_path_factory.mktemp('cli')
    estimator = KMeans(3, n_init=1, random_state=0).fit(wine)
    save(estimator, folder / 'model.pkl', 'pickle4')
    save(estimator, folder / 'served.joblib', 'joblib')
    (folder / 'corrupt.pkl').write_bytes(b'\x80\x04 garbage')
    save({'n_clusters': 3}, folder / 'data.pkl', 'pickle4')
    save(KMeans(3), folder / 'unfitted.pkl', 'pickle4')
    save(LinearRegression().fit(wine, wine[:, 0]), folder / 'regression.pkl', 'pickle4')
    save(SystemCall('touch executed'), folder / 'evil.pkl', 'pickle4')
    environment = {**os.environ, 'PYTHONPATH': ROOT + os.pathsep + os.environ.get('PYTHONPATH', '')}
    processes = {name: subprocess.Popen([sys.executable, '-m', 'exporters.onnx', *arguments], cwd=folder,
                                        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name, (arguments, _, _) in CLI_CASES.items()}
    yield folder, processes
    for process in processes.values():  # only if a test failed before collecting it
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope='module')
def cli(cli_processes):
    """The command-line cases' ``(exit status, stdout, stderr)``, once their processes have finished."""
    folder, processes = cli_processes
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = (process.returncode, stdout, stderr)
    return folder, results


@pytest.mark.parametrize('case', [name for name in CLI_CASES if name != 'export'])
def test_command_line_errors_exit_cleanly(cli, case):
    folder, results = cli
    status, _, stderr = results[case]
    _, expected_status, message = CLI_CASES[case]
    assert status == expected_status, stderr
    assert 'Traceback' not in stderr
    assert message in stderr
    if status == 1:  # a failure is one line that says what went wrong
        assert stderr.startswith('error: ') and stderr.strip().count('\n') == 0
    assert not (folder / 'executed').exists()
    # only the export case writes a graph (the cases run side by side in one folder)
    assert [name for name in os.listdir(folder) if name.endswith(('.onnx', '.tmp'))] in ([], ['served.onnx'])


def test_command_line_export(cli, wine):
    folder, results = cli
    status, stdout, stderr = results['export']
    assert status == 0, stderr
    assert 'Traceback' not in stderr
    assert stdout.startswith('wrote served.onnx') and 'labels identical to KMeans.predict' in stdout
    session = onnxruntime.InferenceSession(str(folder / 'served.onnx'))  # next to the model, named after it
    assert [output.name for output in session.get_outputs()] == ['label', 'logits', 'relevance']
    estimator = load_model(folder / 'served.joblib')
    np.testing.assert_array_equal(session.run(['label'], {'X': wine.astype(np.float32)})[0], estimator.predict(wine))
    assert not [name for name in os.listdir(folder) if name.endswith('.tmp')]


def test_command_line_in_process(cli, capsys, monkeypatch):
    """More bad input, through ``main``: the exit status, and one line on stderr without a traceback."""
    folder, _ = cli
    monkeypatch.chdir(folder)

    def fails(arguments, message):
        assert main(arguments) == 1
        stderr = capsys.readouterr().err
        assert message in stderr and stderr.startswith('error: ') and stderr.strip().count('\n') == 0
        assert 'Traceback' not in stderr

    fails(['unfitted.pkl'], 'holds a model that was never fitted')
    fails(['data.pkl'], 'holds a builtins.dict, not a fitted clustering model')
    fails(['regression.pkl'], 'LinearRegression, which is not a supported estimator')
    fails(['regression.pkl', '--trust-pickle', '-o', 'regression.onnx'], 'Cannot neuralize')
    fails(['model.pkl', '--probe-data', 'nothing.npy'], 'probe data file not found')
    np.save(folder / 'narrow.npy', np.zeros((5, 2)))
    fails(['model.pkl', '--probe-data', 'narrow.npy', '-o', 'narrow.onnx'], 'probe data X has 2 features')
    fails(['model.pkl', '-o', 'model.pkl'], 'would overwrite the model file')
    if not CUDA:
        fails(['model.pkl', '--provider', 'cuda', '-o', 'gpu.onnx'], 'onnxruntime-gpu')
    with pytest.raises(SystemExit) as usage:
        main(['model.pkl', '--dtype', 'float16'])
    assert usage.value.code == 2 and "invalid choice: 'float16'" in capsys.readouterr().err
    assert not {'gpu.onnx', 'regression.onnx', 'narrow.onnx'} & set(os.listdir(folder))


def test_help_explains_the_contract():
    result = subprocess.run([sys.executable, '-m', 'exporters.onnx', '--help'], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    for text in ('"X"', 'label', 'logits', 'relevance', '--explain', '--trust-pickle', '.joblib', '.skops', '.pt',
                 'exit status', 'next to it'):
        assert text in result.stdout
