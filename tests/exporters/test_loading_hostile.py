"""The hostile corpus of issue 14 through ``load_model`` and through the command line under a memory cap.

Every file must end in a one-line refusal (exit status 1 on the command line: no signal, no timeout), its
payload must never run, and the process must be as it was: later loads of good files, ``joblib.load`` and
protocol-0 pickling still work, and no admitted class or function was modified.
"""
import copyreg
import json
import os
import pickle
import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.cluster import KMeans

from exporters.loading import ModelFileError, UnsafePickleError, load_model

import hostile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CAP = 6 << 30
TIMEOUT = 60


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp('hostile')
    names, marker = hostile.write_corpus(folder)
    good = folder / 'good'
    good.mkdir()
    kmeans = KMeans(3, n_init=1, random_state=0).fit(np.random.default_rng(0).normal(size=(30, 4)))
    joblib.dump(kmeans, good / 'good.joblib')
    with open(good / 'good.pkl', 'wb') as handle:
        pickle.dump(kmeans, handle, protocol=0)
    return folder, names, marker, kmeans


@pytest.fixture(scope='module')
def cli_runs(corpus):
    """Start the command-line processes as soon as the corpus exists, so that they run beside the API test."""
    folder, names, _, _ = corpus
    environment = {**os.environ, 'PYTHONPATH': ROOT + os.pathsep + os.environ.get('PYTHONPATH', '')}
    files = [str(folder / name) for name in names if name != 'good']
    driver = subprocess.Popen([sys.executable, os.path.join(HERE, 'capped.py'), str(CAP), str(TIMEOUT), *files],
                              cwd=folder, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cap = f'import resource; resource.setrlimit(resource.RLIMIT_AS, ({CAP}, {CAP}))'
    direct = {name: subprocess.Popen(
        [sys.executable, '-c', f'{cap}; import runpy, sys; sys.argv = ["exporters.onnx", {name!r}]; '
         'runpy.run_module("exporters.onnx", run_name="__main__")'],
        cwd=folder, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ('lloyd.pkl', 'zero-stride.pt')}
    yield driver, direct
    for process in (driver, *direct.values()):
        if process.poll() is None:
            process.kill()
            process.wait()


def process_state():
    """What the tampering files would change: the attributes of the admitted classes and functions."""
    from joblib.numpy_pickle import NumpyArrayWrapper
    from sklearn.cluster._bisect_k_means import _BisectingTree
    return ({key: id(value) for key, value in vars(NumpyArrayWrapper).items()},
            {key: id(value) for key, value in vars(_BisectingTree).items()},
            dict(vars(copyreg._reconstructor)), copyreg._reconstructor.__defaults__,
            copyreg._reconstructor.__code__)


def good_files_still_load(folder, kmeans):
    x = np.random.default_rng(1).normal(size=(10, 4))
    for name in ('good.joblib', 'good.pkl'):
        np.testing.assert_array_equal(load_model(folder / 'good' / name).predict(x), kmeans.predict(x))
    np.testing.assert_array_equal(joblib.load(folder / 'good' / 'good.joblib').predict(x), kmeans.predict(x))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(kmeans, protocol=0)).predict(x), kmeans.predict(x))


def test_the_corpus_is_complete(corpus):
    _, names, _, _ = corpus
    for name in ('lloyd.pkl', 'dtype-record.pkl', 'dtype-object.pkl', 'build-wrapper.pkl', 'build-tree.pkl',
                 'build-reconstructor.pkl', 'bisecting-dag.pkl', 'shared-rows.pkl', 'shared-lists.pkl',
                 'zlib-bomb.joblib', 'bomb.skops', 'zero-stride.pt', 'system.pt', 'sparse.pt', 'meta.pt'):
        assert name in names
    assert os.path.getsize(corpus[0] / 'lloyd.pkl') <= 300 and os.path.getsize(corpus[0] / 'shared-lists.pkl') < 2048


EXPECTED = {
    'lloyd.pkl': 'it calls sklearn.cluster._kmeans._kmeans_single_lloyd',
    'dtype-record.pkl': 'record dtype has a field',
    'dtype-object.pkl': 'object array',
    'build-wrapper.pkl': 'sets state on joblib.numpy_pickle.NumpyArrayWrapper',
    'build-tree.pkl': 'sets state on sklearn.cluster._bisect_k_means._BisectingTree',
    'build-reconstructor.pkl': 'sets state on copyreg._reconstructor',
    'item-on-array.pkl': 'adds items to a ndarray',
    'bisecting-dag.pkl': '_bisecting_tree',
    'shared-rows.pkl': 'cluster_centers_ is a list',
    'shared-rows-extra.pkl': 'shared references expand',
    'shared-lists.pkl': 'shared references expand',
    'zlib-bomb.joblib': 'memory budget',
    'bomb.skops': 'memory budget',
    'zero-stride.pt': 'zero stride',
    'system.pt': 'posix.system' if os.name == 'posix' else 'nt.system',
    'sparse.pt': 'sparse tensor',
    'meta.pt': 'meta tensor',
    'eval.pth': 'builtins.eval',
    # pipelines (issue 10): behaviour in a transformer's parameters, inconsistent fitted state, bombs
    'text-tokenizer-system.pkl': 'posix.system' if os.name == 'posix' else 'nt.system',
    'text-tokenizer-function.pkl': 'it references hostile.tokenize',
    'text-tokenizer-admitted.pkl': 'tokenizer is a reference to sklearn.cluster._kmeans._kmeans_single_lloyd',
    'text-analyzer-callable.pkl': 'TfidfVectorizer.analyzer is a make_column_selector',
    'text-vocabulary-duplicate.pkl': 'a bijection of',
    'text-vocabulary-huge.pkl': "the entry 'cat': 1000000000",
    'text-idf-length.pkl': 'TfidfTransformer.idf_ is an array of shape',
    'text-idf-negative.pkl': 'positive inverse document frequencies',
    'text-pattern-giant.pkl': 'a pattern of 1000000 characters',
    'text-pattern-backtracking.pkl': 'an unbounded repeat inside a repeat',
    'text-reads-files.pkl': "TfidfVectorizer.input is 'filename'",
    'text-unknown-attribute.pkl': "has the attribute 'hook'",
    'table-object-class.pkl': 'object arrays may hold only',
    'table-categories-unsorted.pkl': 'not sorted and unique',
    'table-column-far.pkl': 'selecting column 1000000',
    'table-function.pkl': 'FunctionTransformer.func is a reference to',
    'table-components.pkl': 'PCA.components_',
    'table-steps-misfit.pkl': 'fitted on 8 columns',
    'table-depth-bomb.pkl': 'depth budget',
}


def test_every_hostile_file_is_refused_through_the_api(corpus, cli_runs):
    folder, names, marker, kmeans = corpus
    before = process_state()
    for name in names:
        if name == 'good':
            continue
        with pytest.raises((UnsafePickleError, ModelFileError)) as refused:
            load_model(folder / name)
        message = str(refused.value)
        assert '\n' not in message and str(folder / name) in message, message
        assert EXPECTED.get(name, 'refused to load') in message, message
        if name.endswith('.skops'):
            assert 'pickle files' not in message.lower()
        assert not marker.exists(), name
        assert process_state() == before, name
        good_files_still_load(folder, kmeans)


@pytest.mark.slow
def test_every_hostile_file_is_refused_by_the_command_line_under_a_memory_cap(corpus, cli_runs):
    """``capped.py``: one forked child per file running the command line, RLIMIT_AS 6 GiB, a timeout."""
    folder, _, marker, _ = corpus
    driver, _ = cli_runs
    stdout, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 0, stderr[-2000:]
    for outcome in json.loads(stdout):
        assert not outcome['timed_out'] and outcome['exit'] == 1, outcome
        message = outcome['stderr']
        assert message.startswith('error: ') and message.strip().count('\n') == 0, outcome
        assert 'Traceback' not in message and outcome['file'] in message, outcome
        assert EXPECTED.get(outcome['file'], 'refused to load') in message, outcome
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize('name', ['lloyd.pkl', 'zero-stride.pt'])
def test_python_dash_m_under_a_memory_cap(corpus, cli_runs, name):
    """The real entry point, a fresh interpreter per file, for two of the files."""
    _, _, marker, _ = corpus
    process = cli_runs[1][name]
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 1, stderr
    assert stderr.startswith('error: refused to load') and stderr.strip().count('\n') == 0
    assert not marker.exists()
