"""Dask: dask-ml's k-means, and explanations of dask arrays and DataFrames, lazily and block by block.

``explain(model, X)`` with a ``dask.array.Array`` or a ``dask.dataframe.DataFrame`` returns the same kind of lazy
collection, computed one block (partition) at a time by :func:`zennit_clusters.explain` on whichever scheduler
runs it (threads, processes, a ``distributed`` cluster); the neuralized model is one node of the task graph,
shipped once to each worker. Everything is registered by full type name: dask is imported only when a dask
object is met (``pip install zennit-clusters[dask]``).
"""
from ...core import Family, register_family
from .adapters import explain_array, explain_frame
from .converters import convert_dask_kmeans

__all__ = ['explain_array', 'explain_frame', 'convert_dask_kmeans', 'FAMILY']

FAMILY = register_family(Family(
    name='dask',
    converters={'dask_ml.cluster.k_means.KMeans': convert_dask_kmeans},
    data_adapters={'dask.array.core.Array': explain_array,
                   'dask.dataframe.dask_expr._collection.DataFrame': explain_frame},
))
