"""The model families, one folder each; importing this package registers them all (:mod:`zennit_clusters.core`).

Adding a family is one new folder here (its equations, layers, rules, explainer and converters) whose
``__init__`` calls :func:`~zennit_clusters.core.register_family`, plus its name in the import below.
"""
from . import centroids, mixture, members, pipeline, deep, dask, spark  # noqa: F401  (registration order = lookup order)
