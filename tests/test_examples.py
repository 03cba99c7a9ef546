"""The showcases keep working: each runs in its --quick mode, in a fresh process, and writes its figures.

Our examples run one after the other in a single child process (one import of torch instead of
four: the imports dominate a quick run), each into its own folder, each with its outcome recorded
separately; a colleague's example runs in its own process.
"""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip('matplotlib')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, 'examples')

# example -> files it must write
CASES = {
    'tabular_wine.py': ['wine_profiles.png', 'wine_profiles_matrix.png', 'wine_points.png'],
    'tabular_mixed.py': ['mixed_profiles.png'],
    'images_digits.py': ['digits_clusters.png', 'digits_examples.png', 'digits_heatmaps.png'],
    'text_newsgroups.py': ['text_top_words.png', 'text_absent_words.png', 'text_posts.html'],
    'cluster_quality.py': ['quality_overview.png', 'quality_merged.png', 'quality_scores.png'],
    'demo.py': ['demo_wine_summary.png', 'demo_wine_kmeans.onnx'],
}
# a colleague's example, included when it exists and has a quick mode
OPTIONAL = {'autoencoder_digits.py': []}

# runs in the child: every example's main(['--quick', '--out', folder]), outcomes to a JSON file
DRIVER = r"""
import contextlib, io, json, os, runpy, sys, time, traceback
examples, root, status_path = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, examples)
outcome = {}
for script in sys.argv[4:]:
    out = os.path.join(root, script[:-3])
    stdout = io.StringIO()
    start = time.perf_counter()
    try:
        module = runpy.run_path(os.path.join(examples, script), run_name='example_' + script[:-3])
        if script == 'text_newsgroups.py' and module['find_data']() is None:
            outcome[script] = {'status': 'skipped', 'out': out}
            continue
        with contextlib.redirect_stdout(stdout):
            module['main'](['--quick', '--out', out])
        outcome[script] = {'status': 'ok', 'out': out, 'stdout': stdout.getvalue()}
    except BaseException:
        outcome[script] = {'status': 'failed', 'out': out, 'stdout': stdout.getvalue(),
                           'error': traceback.format_exc()}
    outcome[script]['seconds'] = time.perf_counter() - start
with open(status_path, 'w') as f:
    json.dump(outcome, f)
"""


def child_env():
    return dict(os.environ, MPLBACKEND='Agg', OMP_NUM_THREADS='2', PYTHONHASHSEED='0')


@pytest.fixture(scope='module')
def quick_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('examples')
    status = root / 'status.json'
    result = subprocess.run([sys.executable, '-c', DRIVER, EXAMPLES, str(root), str(status), *sorted(CASES)],
                            cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and status.exists(), f'the example driver failed:\n{result.stderr}'
    return json.loads(status.read_text())


@pytest.mark.parametrize('script', sorted(CASES))
def test_example_runs_quickly_and_writes_figures(script, quick_runs):
    outcome = quick_runs[script]
    if outcome['status'] == 'skipped':
        pytest.skip("gensim's newsgroup test data is not installed (pip install gensim)")
    assert outcome['status'] == 'ok', f'{script} failed:\n{outcome["stdout"]}\n{outcome["error"]}'
    for name in CASES[script]:
        path = os.path.join(outcome['out'], name)
        assert os.path.exists(path) and os.path.getsize(path) > 500, f'{script} did not write {name}'
    assert 'figures written to' in outcome['stdout']


@pytest.mark.parametrize('script', sorted(OPTIONAL))
def test_optional_example(script, tmp_path):
    path = os.path.join(EXAMPLES, script)
    if not os.path.exists(path):
        pytest.skip(f'{script} does not exist (yet)')
    with open(path, encoding='utf-8') as f:
        source = f.read()
    if '--quick' not in source or '--out' not in source:
        pytest.skip(f'{script} has no --quick mode or no --out option')
    result = subprocess.run([sys.executable, path, '--quick', '--out', str(tmp_path)], cwd=ROOT, env=child_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f'{script} failed:\n{result.stdout}\n{result.stderr}'
    written = os.listdir(tmp_path)
    assert written, f'{script} wrote nothing to --out'


def test_demo_checks_pass_and_it_summarizes(quick_runs):
    """make demo's own checks: the network's labels, the Zennit path and the ONNX graph agree; summarize() ran."""
    outcome = quick_runs['demo.py']
    assert outcome['status'] == 'ok', outcome.get('error')
    stdout = outcome['stdout']
    assert 'KMeans.predict on 100% of the wines' in stdout
    assert 'onnxruntime labels == KMeans.predict: True' in stdout
    assert 'What makes each cluster:' in stdout and stdout.count('  runner-up: ') == 3
    zennit_gap = float(stdout.split('Zennit path (Gradient + ClusterComposite) vs closed form: max difference ')[1]
                       .split()[0])
    assert zennit_gap < 1e-10
