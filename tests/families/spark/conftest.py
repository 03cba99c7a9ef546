"""One local Spark session for the whole test session (local[2], quiet, two shuffle partitions).

Tests using it skip, saying why, without pyspark (the [spark] extra), pyarrow or Java. The Python workers Spark starts run
this interpreter with the repository root on their path, so they import the same zennit_clusters as the tests.
"""
import os
import shutil
import sys
import types

import numpy as np
import pytest


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture(scope='session')
def spark():
    pytest.importorskip('pyspark', reason='pyspark is not installed (pip install zennit-clusters[spark])')
    pytest.importorskip('pyarrow', reason='pyarrow is not installed (pip install zennit-clusters[spark])')
    if shutil.which('java') is None and 'JAVA_HOME' not in os.environ:
        pytest.skip('no Java runtime (PySpark 4 needs Java 17 or later)')
    os.environ['PYSPARK_PYTHON'] = sys.executable
    os.environ['PYTHONPATH'] = os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')]))
    from pyspark.sql import SparkSession
    session = (SparkSession.builder.master('local[2]').appName('zennit-clusters-tests')
               .config('spark.sql.shuffle.partitions', '2').config('spark.default.parallelism', '2')
               .config('spark.ui.enabled', 'false').config('spark.ui.showConsoleProgress', 'false')
               .config('spark.driver.memory', '1g').getOrCreate())
    session.sparkContext.setLogLevel('ERROR')
    yield session
    session.stop()


def vector_frame(spark, X):
    """X as a DataFrame of (id, features: pyspark.ml.linalg vector), three partitions."""
    from pyspark.ml.linalg import Vectors
    rows = [(i, Vectors.dense(row)) for i, row in enumerate(np.asarray(X, dtype=np.float64))]
    return spark.createDataFrame(rows, ['id', 'features']).repartition(3)


def array_frame(spark, X, element='double'):
    """X as a DataFrame of (id, features: array<element>), three partitions."""
    from pyspark.sql import types as T
    element_type = {'double': T.DoubleType(), 'float': T.FloatType()}[element]
    schema = T.StructType([T.StructField('id', T.LongType()), T.StructField('features', T.ArrayType(element_type))])
    rows = [(i, [float(v) for v in row]) for i, row in enumerate(np.asarray(X))]
    return spark.createDataFrame(rows, schema).repartition(3)


def by_id(frame, *columns):
    """The columns of a collected frame, in id order, as numpy arrays."""
    rows = frame.orderBy('id').collect()
    return [_column([row[name] for row in rows]) for name in columns]


def _column(values):
    if any(value is None for value in values):  # null rows: an object array, None kept
        column = np.empty(len(values), dtype=object)
        column[:] = [value if value is None or np.isscalar(value) else np.asarray(value) for value in values]
        return column
    return np.array(values)


@pytest.fixture(scope='session')
def frames(spark):
    """The helpers above, bound to the session: ``frames.vectors(X)``, ``frames.arrays(X)``, ``frames.by_id``."""
    return types.SimpleNamespace(vectors=lambda X: vector_frame(spark, X),
                                 arrays=lambda X, element='double': array_frame(spark, X, element),
                                 by_id=by_id)
