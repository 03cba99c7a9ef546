"""One ``distributed.LocalCluster`` for the whole test session (the Dask tests skip, saying why, without dask)."""
import pytest


@pytest.fixture(scope='session')
def dask_client():
    pytest.importorskip('dask', reason='dask is not installed (pip install zennit-clusters[dask])')
    distributed = pytest.importorskip('distributed', reason='distributed is not installed '
                                      '(pip install zennit-clusters[dask])')
    # two single-threaded workers in this process: real scheduling and data movement, no process start-up
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()
