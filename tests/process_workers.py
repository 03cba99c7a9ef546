"""Functions that worker processes run in tests/test_concurrency.py (importable by a spawned child: no pytest)."""
import os


def explain_rows(job):
    """``explain(model, rows)`` in a worker process; returns (pid, relevance)."""
    from zennit_clusters import explain
    model, rows = job
    return os.getpid(), explain(model, rows)


def fork_after_torch(rows):
    """Run torch in this process, then explain in a fork-started pool (the pattern that can hang)."""
    import multiprocessing

    import numpy as np
    import torch

    torch.set_num_threads(2)
    torch.ones(512, 512) @ torch.ones(512, 512)  # the intra-op thread pool now exists in this process
    from sklearn.cluster import KMeans
    model = KMeans(3, n_init=1, random_state=0).fit(np.asarray(rows))
    with multiprocessing.get_context('fork').Pool(2) as pool:
        return [r.shape for _, r in pool.map(explain_rows, [(model, rows)] * 2)]
