"""Explanation of a Spark DataFrame: new columns for the label, the evidence and the relevance, computed lazily
partition by partition.

:func:`explain_dataframe` is what :func:`zennit_clusters.explain` runs for a Spark DataFrame (the family's data
adapter). It neuralizes the model on the driver, ships it to the executors once (a broadcast variable; on Spark
Connect, inside the plan), and returns ``df.mapInArrow(...)``: each Arrow batch of a partition becomes one
(rows, D) array, read without a per-row Python loop, and goes through the same :func:`~zennit_clusters.explain`
(the compiled CPU kernel for k-means) or through an exported ONNX graph under onnxruntime. Nothing runs until
an action (``show``, ``write``, ``count`` ...) asks for rows.

Rows that cannot be explained are decided here, once:

- a features value of the wrong size is an error (eagerly when the column's ML metadata gives its size, else
  when the partition runs), as is a null features value unless ``nonfinite='null'``;
- a row holding NaN or infinity is an error by default (``nonfinite='raise'``), as in ``explain()``; with
  ``nonfinite='null'`` it gets label -1 (as ``explain()`` labels such rows in its logits) and null evidence
  and relevance, and the other rows are explained as usual.

Errors raised in a partition reach the driver as pyspark's ``PythonException`` whose message holds ours
(naming the column, the partition and the row within it).
"""
import functools
import hashlib
import os

import numpy as np

__all__ = ['explain_dataframe', 'NONFINITE']

#: what ``nonfinite=`` may say about rows with NaN, infinity or a null features value
NONFINITE = ('raise', 'null')

_SCRATCH = '__zennit_clusters_x'


def explain_dataframe(model, df, cluster=None, beta=None, chunk_size=None, epsilon=None, return_logits=False,
                      out=None, *, features_col='features', prediction_col='prediction', evidence_col='evidence',
                      relevance_col='relevance', logits_col='logits', relevance_columns=None, onnx=None,
                      nonfinite='raise'):
    """NEON explanation of every row of a Spark DataFrame, as new columns (lazy, like any transformation).

    Parameters
    ----------
    model : fitted estimator or NeuralizedModel
        Anything :func:`~zennit_clusters.neuralize` accepts (a pyspark.ml or scikit-learn model, a neuralized
        model ...); neuralized once on the driver. May be None with ``onnx``.
    df : pyspark.sql.DataFrame
        With a features column of ``pyspark.ml.linalg`` vectors (dense or sparse; computed in float64) or of
        arrays of numbers (``array<float>`` stays float32, ``array<double>`` float64, integers become float64).
    cluster, beta, chunk_size, epsilon
        As for :func:`~zennit_clusters.explain`, applied to each batch of each partition.
    return_logits : bool
        Also add the (K,) evidence of every cluster as an array column ``logits_col``.
    out : None
        Not for DataFrames (an error otherwise): the result is new columns.
    features_col : str
        The column to explain.
    prediction_col, evidence_col, relevance_col, logits_col : str
        Names of the new columns: the label (long), the evidence ``f_c(x)`` of the explained cluster c (the
        relevance sums to it), the relevance (an array of D values), the logits. None of them may exist in ``df``.
    relevance_columns : None, True or sequence of str
        None: one array column ``relevance_col``. True: one column per feature, ``{relevance_col}_{i}``.
        A sequence of D names: one column per feature, so named.
    onnx : str, os.PathLike or bytes, optional
        A graph exported with ``exporters.onnx.export(..., explain=True)``; each partition runs it under
        onnxruntime instead of torch. ``cluster``, ``beta`` and ``epsilon`` are fixed in the graph and must be None.
    nonfinite : {'raise', 'null'}
        What rows with NaN, infinity or a null features value give (see the module docstring).

    Returns
    -------
    pyspark.sql.DataFrame
        ``df``'s columns followed by the new ones, unevaluated.
    """
    from pyspark.sql import types as T

    if out is not None:
        raise TypeError('out= writes into a numpy array or tensor; a Spark DataFrame gets new columns instead.')
    if nonfinite not in NONFINITE:
        raise ValueError(f'nonfinite must be one of {NONFINITE}, got {nonfinite!r}.')
    if features_col not in df.columns:
        raise ValueError(f'the DataFrame has no column {features_col!r} (features_col); its columns are '
                         f'{", ".join(df.columns)}.')
    field = df.schema[features_col]
    dtype = _feature_dtype(field, T)

    if onnx is None:
        from ...api import make_explainer, neuralize
        model = neuralize(model)
        make_explainer(model, cluster=cluster, beta=beta, epsilon=epsilon)  # refuses bad options here, not per task
        n_features, n_clusters, graph = model.n_features_in_, model.n_clusters, None
    else:
        for name, value in (('cluster', cluster), ('beta', beta), ('epsilon', epsilon)):
            if value is not None:
                raise ValueError(f'{name} is fixed in an exported graph; pass {name}=None with onnx=.')
        graph = _read_graph(onnx)
        n_features, n_clusters, dtype = _graph_signature(graph)
        if model is not None:
            from ...api import neuralize
            if neuralize(model).n_features_in_ != n_features:
                raise ValueError(f'the ONNX graph takes {n_features} features, the model '
                                 f'{neuralize(model).n_features_in_}.')
    declared = field.metadata.get('ml_attr', {}).get('num_attrs') if field.metadata else None
    if declared is not None and int(declared) != n_features:
        raise ValueError(f'column {features_col!r} holds vectors of size {declared} (its ML metadata), but the model '
                         f'takes {n_features} features.')

    relevance_names = _relevance_names(relevance_col, relevance_columns, n_features)
    new = [prediction_col, evidence_col, *relevance_names] + ([logits_col] if return_logits else [])
    taken = [name for name in new if name in df.columns]
    if taken:
        raise ValueError(f'the DataFrame has column(s) {", ".join(taken)} already; pass other names '
                         '(prediction_col=, evidence_col=, relevance_col=, logits_col=).')
    if len(set(new)) != len(new):
        raise ValueError(f'the new column names must differ, got {new}.')

    value_type = T.FloatType() if dtype == 'float32' else T.DoubleType()
    fields = [T.StructField(prediction_col, T.LongType(), False), T.StructField(evidence_col, value_type, True)]
    if relevance_columns is None:
        fields.append(T.StructField(relevance_col, T.ArrayType(value_type, False), True))
    else:
        fields += [T.StructField(name, value_type, True) for name in relevance_names]
    if return_logits:
        fields.append(T.StructField(logits_col, T.ArrayType(value_type, False), True))

    prepared, read_col = _with_feature_array(df, features_col, field, T)
    spec = dict(new_names=[field.name for field in fields], features_col=features_col, read_col=read_col, drop=read_col == _SCRATCH, n_features=n_features,
                n_clusters=n_clusters, dtype=dtype, per_feature=relevance_columns is not None,
                return_logits=return_logits, nonfinite=nonfinite)
    payload = dict(model=model if graph is None else None, graph=graph, cluster=cluster, beta=beta,
                   epsilon=epsilon, chunk_size=chunk_size)
    run = functools.partial(_explain_batches, _ship(df, payload), spec)
    return prepared.mapInArrow(run, T.StructType(list(df.schema.fields) + fields))


def _feature_dtype(field, T):
    """'float64' or 'float32': what the features column is computed in; a TypeError for other columns."""
    from pyspark.ml.linalg import VectorUDT
    kind = field.dataType
    if isinstance(kind, VectorUDT):
        return 'float64'
    if isinstance(kind, T.ArrayType):
        element = kind.elementType
        if isinstance(element, T.FloatType):
            return 'float32'
        if isinstance(element, (T.DoubleType, T.IntegerType, T.LongType, T.ShortType, T.ByteType)):
            return 'float64'
    raise TypeError(f'column {field.name!r} must hold pyspark.ml.linalg vectors or arrays of numbers, got '
                    f'{kind.simpleString()}. Assemble scalar columns with pyspark.ml.feature.VectorAssembler.')


def _with_feature_array(df, features_col, field, T):
    """The frame the partitions read and the name of its (rows, D)-array column: a vector column becomes an
    ``array<double>`` scratch column (dropped again from the result), an array column is read as it is."""
    from pyspark.sql import functions as F
    if isinstance(field.dataType, T.ArrayType):
        if isinstance(field.dataType.elementType, (T.FloatType, T.DoubleType)):
            return df, features_col
        return df.withColumn(_SCRATCH, F.col(features_col).cast('array<double>')), _SCRATCH
    from pyspark.ml.functions import vector_to_array
    return df.withColumn(_SCRATCH, vector_to_array(F.col(features_col), 'float64')), _SCRATCH


def _relevance_names(relevance_col, relevance_columns, n_features):
    if relevance_columns is None or relevance_columns is False:
        return [relevance_col]
    if relevance_columns is True:
        return [f'{relevance_col}_{i}' for i in range(n_features)]
    names = [str(name) for name in relevance_columns]
    if len(names) != n_features:
        raise ValueError(f'relevance_columns names {len(names)} columns, but the model takes {n_features} features.')
    return names


def _read_graph(onnx):
    if isinstance(onnx, (bytes, bytearray)):
        return bytes(onnx)
    with open(os.fspath(onnx), 'rb') as file:
        return file.read()


def _graph_signature(graph):
    """(D, K, dtype) of an exported graph, read from its input and outputs."""
    session = _onnx_session(graph, 1)
    names = [output.name for output in session.get_outputs()]
    if 'relevance' not in names:
        raise ValueError('the ONNX graph has no relevance output: export it with explain=True.')
    source = session.get_inputs()[0]
    logits = session.get_outputs()[names.index('logits')]
    dtype = {'tensor(float)': 'float32', 'tensor(double)': 'float64'}.get(source.type)
    if dtype is None or not isinstance(source.shape[1], int):
        raise ValueError(f'the ONNX graph\'s input is {source.type} of shape {source.shape}; expected an exported '
                         'explanation graph (float32 or float64, (batch, D)).')
    return source.shape[1], logits.shape[1], dtype


_SESSIONS = {}


def _onnx_session(graph, threads):
    """One onnxruntime session per graph and worker process (Spark reuses its Python workers)."""
    key = (hashlib.sha256(graph).hexdigest(), threads)
    if key not in _SESSIONS:
        import onnxruntime
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        _SESSIONS[key] = onnxruntime.InferenceSession(graph, options, providers=['CPUExecutionProvider'])
    return _SESSIONS[key]


def _ship(df, payload):
    """The payload as the executors get it: a broadcast variable (classic Spark), else the object itself, which
    travels inside the plan (Spark Connect has no SparkContext)."""
    try:
        context = df.sparkSession.sparkContext
    except Exception:  # Spark Connect raises its own not-implemented error here
        return payload
    return context.broadcast(payload)


def _task_threads():
    """The cores Spark gave this task (``spark.task.cpus``): torch and onnxruntime use that many threads."""
    from pyspark import TaskContext
    context = TaskContext.get()
    return max(1, int(context.cpus())) if context is not None else 1


def _explain_batches(shipped, spec, batches):
    """mapInArrow's function: explain each Arrow batch of one partition (runs on the executors)."""
    import pyarrow as pa
    from pyspark import TaskContext

    payload = shipped if isinstance(shipped, dict) else shipped.value
    threads = _task_threads()
    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    if payload['graph'] is None:
        import torch
        torch.set_num_threads(threads)
        run = functools.partial(_run_torch, payload)
    else:
        run = functools.partial(_run_onnx, _onnx_session(payload['graph'], threads))
    start = 0
    for batch in batches:
        x, valid = _batch_matrix(batch, spec, partition, start)
        rows = batch.num_rows
        labels = np.full(rows, -1, dtype=np.int64)
        evidence = np.full(rows, np.nan, dtype=spec['dtype'])
        relevance = np.full((rows, spec['n_features']), np.nan, dtype=spec['dtype'])
        logits = np.full((rows, spec['n_clusters']), np.nan, dtype=spec['dtype'])
        if valid.all():
            labels, evidence, relevance, logits = run(x)
        elif valid.any():
            labels[valid], evidence[valid], relevance[valid], logits[valid] = run(np.ascontiguousarray(x[valid]))
        mask = None if valid.all() else ~valid  # numpy for pa.array, arrow for the list columns
        if spec['drop']:
            batch = batch.drop_columns([spec['read_col']])
        columns = [pa.array(labels), pa.array(evidence, mask=mask)]
        if spec['per_feature']:
            columns += [pa.array(relevance[:, i], mask=mask) for i in range(spec['n_features'])]
        else:
            columns.append(_list_array(relevance, mask))
        if spec['return_logits']:
            columns.append(_list_array(logits, mask))
        yield pa.RecordBatch.from_arrays(batch.columns + columns, names=batch.schema.names + spec['new_names'])
        start += rows


def _list_array(values, mask):
    """A (rows, width) array as an Arrow list column, without copying the values."""
    import pyarrow as pa
    rows, width = values.shape
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1)), mask=None if mask is None else pa.array(mask))


def _batch_matrix(batch, spec, partition, start):
    """The (rows, D) float array of a batch's features and the rows that may be explained; the errors of the
    module docstring for the others."""
    import pyarrow.compute
    column = batch.column(spec['read_col'])
    rows, n_features, name = batch.num_rows, spec['n_features'], spec['features_col']
    where = f'partition {partition}, row {{}} (of the partition)'
    nulls = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else np.zeros(rows, dtype=bool)
    lengths = pyarrow.compute.list_value_length(column).to_numpy(zero_copy_only=False)
    wrong = ~nulls & (lengths != n_features)
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise ValueError(f'column {name!r} has a value of size {int(lengths[row])} in {where.format(start + row)}; '
                         f'the model takes {n_features} features.')
    if nulls.any() and spec['nonfinite'] == 'raise':
        row = int(np.flatnonzero(nulls)[0])
        raise ValueError(f"column {name!r} is null in {where.format(start + row)}; drop such rows, or pass "
                         "nonfinite='null' to get label -1 and null evidence and relevance for them.")
    values = column.flatten().to_numpy(zero_copy_only=False).astype(spec['dtype'], copy=False)
    if nulls.any():
        x = np.full((rows, n_features), np.nan, dtype=spec['dtype'])
        x[~nulls] = values.reshape(-1, n_features)
    else:
        x = values.reshape(rows, n_features)
    valid = np.isfinite(x).all(1)
    if not valid.all() and spec['nonfinite'] == 'raise':
        row = int(np.flatnonzero(~valid)[0])
        what = 'NaN' if np.isnan(x[row]).any() else 'infinity'
        raise ValueError(f"column {name!r} holds {what} in {where.format(start + row)}; NEON needs finite input. "
                         "Drop or fill such rows, or pass nonfinite='null' to get label -1 and null evidence and "
                         "relevance for them.")
    return x, valid


def _explained(labels, logits, cluster):
    """The evidence of the cluster each row's relevance explains (its label, or the fixed cluster)."""
    explained = np.maximum(labels, 0) if cluster is None else np.full_like(labels, cluster)
    return logits[np.arange(logits.shape[0]), explained]


def _run_torch(payload, x):
    from ...api import explain
    relevance, labels, logits = explain(payload['model'], x, cluster=payload['cluster'], beta=payload['beta'],
                                        chunk_size=payload['chunk_size'], epsilon=payload['epsilon'],
                                        return_logits=True)
    return labels, _explained(labels, logits, payload['cluster']), relevance, logits


def _run_onnx(session, x):
    labels, logits, relevance = session.run(['label', 'logits', 'relevance'], {session.get_inputs()[0].name: x})
    return labels, _explained(labels, logits, None), relevance, logits
