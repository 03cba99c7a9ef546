"""The graph's contract: its input and output names, dtypes and opset, what each output means, and the errors.

This module imports nothing heavy (no numpy, torch or onnx), so that the command line can answer ``--help``
and usage errors at once.
"""
__all__ = ['INPUT_NAME', 'OUTPUT_NAMES', 'PARTS_NAME', 'CONTRASTS_NAME', 'CONTRAST_CONSTANTS_NAME', 'MIN_OPSET', 'DTYPES', 'PRODUCER', 'ExportError', 'ExportCheckError',
           'ProviderUnavailableError', 'PrecisionWarning', 'check_dtype', 'check_opset', 'describe_outputs']

#: the graph's one input
INPUT_NAME = 'X'
#: the graph's outputs, in order (``relevance`` only in graphs exported with ``explain=True``)
OUTPUT_NAMES = ('label', 'logits', 'relevance')
#: the optional output of per-competitor parts (``per_competitor=True``), after ``relevance``
PARTS_NAME = 'parts'
#: the optional output of contrastive relevance against every competitor (``contrasts=True``), after those
CONTRASTS_NAME = 'contrasts'
#: its constant term, (batch, K), in graphs of families with one (Gaussian mixtures), after ``contrasts``
CONTRAST_CONSTANTS_NAME = 'contrast_constants'
#: ONNX opset 17 lacks the reduction forms (axes as an input) the graph uses
MIN_OPSET = 18
#: the float types a graph can be exported in
DTYPES = ('float32', 'float64')
PRODUCER = 'zennit-clusters'


class ExportError(RuntimeError):
    """The model could not be exported to a working ONNX graph."""


class ExportCheckError(ExportError):
    """The graph misses the check's contract under onnxruntime; no file was written (or replaced).

    Attributes
    ----------
    check : CheckResult or None
        What the check compared and found (``check.failures`` lists every miss).
    """

    def __init__(self, message, check=None):
        super().__init__(message)
        self.check = check


class ProviderUnavailableError(ExportError):
    """The requested onnxruntime execution provider is not available here."""


class PrecisionWarning(UserWarning):
    """Kept for compatibility: the check no longer warns; an imprecise graph fails (see :func:`verify`)."""


def check_dtype(dtype):
    """``'float32'``/``'float64'`` (or the numpy/torch dtype) -> the name.

    Raises
    ------
    ValueError
        For any other dtype.
    """
    name = getattr(dtype, '__name__', None) or str(dtype).replace('torch.', '')
    name = {'float': 'float32', 'double': 'float64'}.get(name, name)
    if name not in DTYPES:
        raise ValueError(f'dtype must be one of {", ".join(DTYPES)}, got {dtype!r}.')
    return name


def check_opset(opset):
    """The opset as an int, if it is an int >= :data:`MIN_OPSET`.

    Raises
    ------
    TypeError, ValueError
        For a non-integer or too old opset.
    """
    if isinstance(opset, bool) or not hasattr(opset, '__index__'):
        raise TypeError(f'opset must be an int >= {MIN_OPSET}, got {type(opset).__name__} {opset!r}.')
    if opset < MIN_OPSET:
        raise ValueError(f'opset must be >= {MIN_OPSET} (the graph needs opset-18 reductions), got {opset}.')
    return int(opset)


def describe_outputs(n_clusters, n_features, dtype, beta, with_relevance, label_rule="the estimator's predict",
                     noise=False, with_parts=False, with_contrasts=False, with_contrast_constants=False):
    """What each output of a graph means, as recorded in its ``doc_string`` and ``metadata_props``.

    ``label_rule`` is the model's own account of its labels (``NeuralizedModel.label_rule``); ``noise`` whether
    a label of -1 can mean noise (a model with a noise rule) besides NaN or infinity in the row.
    ``with_contrasts`` and ``with_contrast_constants`` describe the ``contrasts`` output and its constants.

    Returns
    -------
    dict
        Output name -> one sentence (dtype, shape, meaning).
    """
    docs = {
        'label': (f'int64 (batch,): the assigned cluster: {label_rule}; -1 '
                  + ('for noise (every logit finite and < 0) or ' if noise else '') + 'for rows with NaN or infinity '
                  '(logits not finite).'),
        'logits': f'{dtype} (batch, {n_clusters}): cluster evidence f_k(x) of NEON; argmax is label'
                  + (' except on noise rows' if noise else '') + ', and f_k > 0 exactly for the assigned cluster of a '
                  'centroid model.',
    }
    if with_relevance:
        docs['relevance'] = (
            f'{dtype} (batch, {n_features}): NEON relevance of each input feature for the evidence of the '
            f'row\'s assigned cluster (soft-min stiffness beta={beta!r}); sums over features to '
            'logits[row, label], less any input-independent term a model family reports separately '
            '(zennit_clusters.explain_with_constant).')
    if with_parts:
        docs[PARTS_NAME] = (
            f'{dtype} (batch, {n_clusters}, {n_features}): the part of the relevance that comes from each competing '
            'cluster k ([row, k]; zero at k = label); sums over axis 1 to relevance '
            '(zennit_clusters.explain(..., per_competitor=True)).')
    if with_contrasts:
        total = ' plus contrast_constants[row, k]' if with_contrast_constants else ''
        docs[CONTRASTS_NAME] = (
            f'{dtype} (batch, {n_clusters}, {n_features}): contrastive relevance, "why the row\'s cluster c rather '
            f'than k": [row, k] the relevance of the margin h_ck by the midpoint rule against each competitor k '
            f'(zennit_clusters.explain(..., contrast=k)); zero at k = label; sums over features{total} to h_ck; '
            'beta plays no part.')
    if with_contrast_constants:
        docs[CONTRAST_CONSTANTS_NAME] = (
            f'{dtype} (batch, {n_clusters}): the input-independent term of each margin h_ck that no feature carries '
            '(log ratios of mixing weights and covariance determinants; zennit_clusters.explain_with_constant(..., '
            'contrast=k)); contrasts.sum(-1) + contrast_constants == h_ck; zero at k = label.')
    return docs
