"""What the benchmarks share: the median of repeated timed calls, and writing a results table."""
import os
import time

import numpy as np

__all__ = ['median_seconds', 'write_results']


def median_seconds(function, repeats):
    """Median wall time of ``repeats`` calls of ``function`` after one untimed warm-up call (page faults, thread
    pools, kernel selection)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def write_results(text, path):
    """Write a results table (markdown) to ``path``, creating its folder, and print it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(text)
    print(text)
