"""Exports killed at random moments: the target holds the old graph, a complete new one, or nothing, and no
temporary file is left behind. Real processes, killed with SIGKILL by this test."""
import os
import pickle
import random
import signal
import subprocess
import sys
import time

import numpy as np
import onnx
import pytest
from sklearn.cluster import KMeans

from exporters.onnx import make_session
from exporters.onnx.files import sweep, write_atomically

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: a process that imports the exporter once, then forks one worker per line on stdin; each worker exports
#: the model to the target and exits. The parent prints the worker's pid, and reaps it only when told, so the
#: test can kill it by pid without racing pid reuse. Nothing in torch runs before the fork.
ZYGOTE = r'''
import os, pickle, sys
sys.path.insert(0, sys.argv[1])
import numpy, onnx, onnxruntime, onnxscript, torch, torch.onnx, zennit_clusters
from exporters.onnx import export
for name in ('graph', 'verify', 'files'):  # import everything the export needs before forking
    __import__(f'exporters.onnx.{name}')
with open(sys.argv[2], 'rb') as handle:
    estimator = pickle.load(handle)
print('ready', flush=True)
for line in sys.stdin:
    if line.strip() != 'export':
        break
    pid = os.fork()
    if pid == 0:
        try:
            export(estimator, sys.argv[3], explain=True)
        finally:
            os._exit(0)
    print(pid, flush=True)
    sys.stdin.readline()  # 'reap'
    _, status = os.waitpid(pid, 0)
    print(status, flush=True)
'''


def _valid_graph(path, estimator, X):
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    labels = make_session(path).run(['label'], {'X': X.astype(np.float32)})[0]
    np.testing.assert_array_equal(labels, estimator.predict(X))


@pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs fork')
def test_sigkill_at_random_moments_never_leaves_partial_or_temporary_files(wine, tmp_path):
    estimator = KMeans(3, n_init=1, random_state=0).fit(wine)
    model = tmp_path / 'model.pkl'
    model.write_bytes(pickle.dumps(estimator))
    folder = tmp_path / 'out'
    folder.mkdir()
    target = folder / 'model.onnx'
    zygote = subprocess.Popen([sys.executable, '-c', ZYGOTE, ROOT, str(model), str(target)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert zygote.stdout.readline().strip() == 'ready'

        def trial(delay, watch=False):
            """One export, killed after ``delay`` seconds (None: not killed) or, with ``watch``, the moment
            anything appears in the (empty) folder, whichever comes first."""
            zygote.stdin.write('export\n')
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            start = time.monotonic()
            if delay is not None:
                while time.monotonic() - start < delay and not (watch and os.listdir(folder)):
                    time.sleep(0.002)
                os.kill(pid, signal.SIGKILL)  # not yet reaped: the pid is still the worker's
            zygote.stdin.write('reap\n')
            zygote.stdin.flush()
            status = int(zygote.stdout.readline())
            return status, time.monotonic() - start

        status, duration = trial(None)  # one whole export: how long one takes here
        assert status == 0 and os.listdir(folder) == ['model.onnx']
        _valid_graph(target, estimator, wine)

        # random moments, spread over the whole export, with an older graph in place; and exports into an empty
        # folder killed the moment anything appears in it (a named temporary file would, as before)
        rng = random.Random(0)
        plan = [rng.uniform(low, low + 0.15) for low in (0.1, 0.45, 0.75)]
        plan[1:1] = [None]
        plan.append(None)
        killed = 0
        for fraction in plan:
            watch = fraction is None
            if watch:
                target.unlink(missing_ok=True)
            had_file = target.exists()
            status, _ = trial(3 * duration if watch else fraction * duration, watch=watch)
            killed += os.WIFSIGNALED(status)
            remaining = os.listdir(folder)
            # no temporary file, ever; the target is the old graph or a complete new one, or absent if there was none
            assert remaining == ['model.onnx'] if had_file else remaining in ([], ['model.onnx']), remaining
            if remaining:
                _valid_graph(target, estimator, wine)
        assert killed >= 2  # most workers really died mid-export
    finally:
        zygote.stdin.close()
        zygote.kill()
        zygote.wait()


def test_sweep_removes_only_dead_writers_temporary_files(tmp_path):
    target = tmp_path / 'model.onnx'
    finished = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    dead = tmp_path / f'.model.onnx.{int(finished.stdout)}.0123abcd.tmp'
    alive = tmp_path / f'.model.onnx.{os.getppid()}.89abcdef.tmp'
    other = tmp_path / '.other.onnx.1.0123abcd.tmp'
    for path in (dead, alive, other):
        path.write_bytes(b'partial')
    assert sweep(target) == [str(dead)]
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, other.name])


def test_atomic_write_replaces_in_one_step(tmp_path):
    target = tmp_path / 'model.onnx'
    how = write_atomically(str(target), b'first')
    if sys.platform.startswith('linux'):
        assert how == 'O_TMPFILE'  # an unnamed file: nothing to leave behind
    assert write_atomically(str(target), b'second') == how
    assert target.read_bytes() == b'second' and os.listdir(tmp_path) == ['model.onnx']
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
