"""Start-up (issue 11, item 2): what `import zennit_clusters` loads, checked in a fresh process (the import graph,
not a timing): torch and the package, never zennit, onnx, torch._dynamo, scikit-learn, dask or the exporter."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: modules that cost seconds or hundreds of MB and are imported only where they are used
HEAVY = ('zennit', 'torchvision', 'onnx', 'onnxruntime', 'onnxscript', 'torch._dynamo', 'torch.onnx', 'sklearn',
         'scipy', 'dask', 'distributed', 'dask_ml', 'pandas', 'pyspark', 'exporters', 'matplotlib')


def _loaded(code):
    probe = f'{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))'
    result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, timeout=300, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                                p for p in (ROOT, os.environ.get('PYTHONPATH')) if p)))
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_loads_nothing_heavy():
    assert _loaded('import zennit_clusters') == []


def test_explaining_a_tensor_still_loads_nothing_heavy():
    code = ('import torch, zennit_clusters as zc\n'
            'zc.explain(zc.neuralize(torch.randn(3, 4, dtype=torch.float64)), torch.randn(5, 4, dtype=torch.float64))')
    assert _loaded(code) == []


def test_zennit_users_still_find_the_cluster_composite():
    pytest.importorskip('zennit')
    code = ('import zennit_clusters\nfrom zennit.composites import COMPOSITES\n'
            "assert 'cluster' in COMPOSITES, sorted(COMPOSITES)")
    assert 'zennit' in _loaded(code)
    # in the other order too: zennit first, then the package
    _loaded("import zennit.composites\nimport zennit_clusters\nfrom zennit.composites import COMPOSITES\n"
            "assert 'cluster' in COMPOSITES")
