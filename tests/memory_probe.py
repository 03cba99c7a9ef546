"""Peak memory of the library's entry points beyond their input and output, measured in this process.

Run as ``python tests/memory_probe.py CASE [CASE ...]`` (tests/test_memory.py does, in a fresh subprocess); prints
one JSON line ``{case: [[n_rows, input_bytes, extra_bytes], ...]}`` for two sizes of N.

How it measures: glibc is told to serve every block of 128 KiB or more by mmap (``MALLOC_MMAP_THRESHOLD_``, set
by the caller), so that freed arrays go back to the system at once and the next measurement does not reuse them
unseen. Before each call the kernel's resident high-water mark is reset (``/proc/self/clear_refs``, "5"); after it,
``VmHWM - VmRSS before - bytes of the result`` is the peak memory the call needed beyond its input and output.
The chunk sizes are made small (``CHUNK_ELEMENTS``), so that anything that grows with N stands out against
O(chunk).
"""
import json
import re
import sys
import time

import numpy as np
import torch

N_FEATURES = 50
SIZES = (50_000, 200_000)


def _status(field):
    with open('/proc/self/status') as status:
        return int(re.search(rf'{field}:\s+(\d+) kB', status.read()).group(1)) * 1024


def _nbytes(value, seen=None):
    """Bytes of every array or tensor in a result (tuples, lists, dicts, plain objects)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        root = value
        while isinstance(root.base, np.ndarray):
            root = root.base
        if root is not value and id(root) in seen:
            return 0
        seen.add(id(root))
        return root.nbytes
    if torch.is_tensor(value):
        return value.untyped_storage().nbytes()
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(item, seen) for item in value)
    if isinstance(value, dict):
        return sum(_nbytes(item, seen) for item in value.values())
    if hasattr(value, '__dict__') and not isinstance(value, (torch.nn.Module, type)):
        return sum(_nbytes(item, seen) for item in vars(value).values())
    return 0


def measure(call):
    """Peak resident bytes ``call()`` needed beyond what was resident before it and beyond its result."""
    before = _status('VmRSS')
    with open('/proc/self/clear_refs', 'w') as clear:
        clear.write('5')
    result = call()
    peak = _status('VmHWM')
    return peak - before - _nbytes(result)


def _data(n_rows, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(20, N_FEATURES))
    X = np.empty((n_rows, N_FEATURES), dtype=dtype)
    for start in range(0, n_rows, 50_000):  # built in blocks: no float64 temporary the size of X
        block = slice(start, min(start + 50_000, n_rows))
        rows = block.stop - block.start
        X[block] = centres[rng.integers(20, size=rows)] + rng.normal(size=(rows, N_FEATURES))
    return X, centres


def cases():
    """{name: setup(n_rows) -> (input arrays, call)}; setup work is not measured."""
    from sklearn.cluster import BisectingKMeans, KMeans
    from sklearn.mixture import GaussianMixture

    import zennit_clusters as zc
    from zennit_clusters.evaluate import fraction_leaving, removal_curves

    small, _ = _data(4000, seed=1)
    kmeans = KMeans(20, n_init=1, random_state=0).fit(small)
    bisecting = BisectingKMeans(8, random_state=0).fit(small)
    mixture = GaussianMixture(4, covariance_type='full', random_state=0).fit(small[:, :10])
    labelled = zc.neuralize_partition(small[:600], kmeans.predict(small[:600]) % 3, max_members=8)
    kmeans_model = zc.neuralize(kmeans)

    def run(factory, n_features=N_FEATURES):
        def setup(n_rows):
            X, _ = _data(n_rows)
            if n_features != N_FEATURES:
                X = np.ascontiguousarray(X[:, :n_features])
            return X, factory(X)
        return setup

    return {
        'neuralize_kmeans_X': run(lambda X: lambda: zc.neuralize(kmeans, X=X)),
        'neuralize_bisecting_X': run(lambda X: lambda: zc.neuralize(bisecting, X=X)),
        'neuralize_mixture_X': run(lambda X: lambda: zc.neuralize(mixture, X=X), 10),
        'neuralize_partition': run(lambda X: (lambda labels: lambda: zc.neuralize_partition(X, labels, max_members=20))(
            (X[:, 0] > 0).astype(np.int64))),
        'explain_kmeans': run(lambda X: lambda: zc.explain(kmeans_model, X)),
        'explain_kmeans_logits': run(lambda X: lambda: zc.explain(kmeans_model, X, return_logits=True)),
        'explain_mixture_full': run(lambda X: lambda: zc.explain(mixture, X), 10),
        'explain_members': run(lambda X: lambda: zc.explain(labelled, X)),
        'predict_evidence': run(lambda X: lambda: kmeans_model.predict_evidence(X)),
        'predict': run(lambda X: lambda: kmeans_model.predict(X)),
        'removal_curves': run(lambda X: lambda: removal_curves(kmeans_model, X, X, steps=2, batch_size=2048)),
        'fraction_leaving': run(lambda X: lambda: fraction_leaving(kmeans_model, X, X, k=[1, 5], batch_size=2048)),
    }


def main(names):
    import zennit_clusters.api as api
    import zennit_clusters.validation as validation
    # small chunks: O(chunk) is small next to anything that grows with N
    api.CHUNK_ELEMENTS = validation._FINITE_BLOCK = 1 << 16
    torch.set_num_threads(1)
    available = cases()
    results, seconds = {}, {}
    for name in names:
        began = time.perf_counter()
        setup = available[name]
        X, call = setup(2000)
        call()  # warm up: lazy imports, compiled code, torch's first allocations
        del X, call
        results[name] = []
        for n_rows in SIZES:
            X, call = setup(n_rows)
            results[name].append([n_rows, int(X.nbytes), int(measure(call))])
            del X, call
        seconds[name] = round(time.perf_counter() - began, 2)
    print(json.dumps(results))
    print(json.dumps(seconds), file=sys.stderr)


if __name__ == '__main__':
    main(sys.argv[1:] or list(cases()))
