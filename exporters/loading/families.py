"""What each supported estimator must hold after loading: the attributes its family reads, checked.

A file can hold an estimator of a supported type whose attributes are anything plain data can be: a list
instead of an array, a NaN centroid, a bisection tree whose nodes are shared. :func:`check_estimator`
checks the attributes the converters and ``predict`` read (types, dtypes, shapes, finite values) and
refuses what does not match; it also puts back the one function an estimator keeps (BisectingKMeans'
inner k-means routine), by name, in place of the file's inert reference.
"""
import numpy as np

from .constructors import FunctionRef, Marker
from .errors import Refusal

_KMEANS_ROUTINES = {'lloyd': 'sklearn.cluster._kmeans._kmeans_single_lloyd',
                    'elkan': 'sklearn.cluster._kmeans._kmeans_single_elkan'}
COVARIANCE_SHAPES = {'full': ('K', 'D', 'D'), 'tied': ('D', 'D'), 'diag': ('K', 'D'), 'spherical': ('K',)}


def _fail(estimator, attribute, found, expected):
    name = type(estimator).__name__
    raise Refusal(f'its {name}.{attribute} is {found}', f'but a fitted {name} holds {expected} there',
                  f'{name}.{attribute}')


def _describe(value):
    if isinstance(value, Marker):  # a name the file gave as a value: a function or class, never data
        return f'a reference to {value.name}'
    if isinstance(value, np.ndarray):
        return f'an array of shape {value.shape} and dtype {value.dtype}'
    return f'a {type(value).__name__}'


def array(estimator, attribute, shape, kind='f', finite=True, optional=False, sizes=None):
    """Check ``estimator.attribute`` is an ndarray of ``kind`` whose shape matches ``shape``.

    ``shape`` holds ints or letters; a letter is bound on first use in ``sizes`` and must agree after.
    """
    sizes = {} if sizes is None else sizes
    value = getattr(estimator, attribute, None)
    if value is None and optional:
        return None
    expected = f'a {"float" if kind == "f" else "integer"} array of shape ({", ".join(map(str, shape))})'
    if not isinstance(value, np.ndarray) or value.dtype.kind not in (kind if kind != 'i' else 'iu') \
            or value.ndim != len(shape):
        _fail(estimator, attribute, _describe(value), expected)
    for letter, size in zip(shape, value.shape):
        if sizes.setdefault(letter, size) != size if isinstance(letter, str) else letter != size:
            _fail(estimator, attribute, _describe(value), expected + f' with {letter} = {sizes.get(letter, letter)}')
    if finite and kind == 'f' and not np.isfinite(value).all():
        _fail(estimator, attribute, 'an array with non-finite values', 'finite values')
    return value


def integer(estimator, attribute, low=0, optional=False):
    value = getattr(estimator, attribute, None)
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        _fail(estimator, attribute, repr(value)[:40], f'an integer >= {low}')
    return int(value)


def choice(estimator, attribute, options):
    value = getattr(estimator, attribute, None)
    if not isinstance(value, str) or value not in options:
        _fail(estimator, attribute, repr(value)[:40], f'one of {", ".join(options)}')
    return value


def _centroids(estimator):
    sizes = {}
    centres = array(estimator, 'cluster_centers_', ('K', 'D'), sizes=sizes)
    if integer(estimator, 'n_features_in_', 1, optional=True) not in (None, sizes['D']):
        _fail(estimator, 'n_features_in_', estimator.n_features_in_, f'the centroids\' width {sizes["D"]}')
    array(estimator, 'labels_', ('N',), kind='i', optional=True)
    integer(estimator, '_n_threads', 1, optional=True)
    return centres, sizes


def check_tree(estimator, root, n_leaves, n_features):
    """A BisectingKMeans tree: each node once (no shared node, no cycle), leaves labelled 0..K-1 exactly
    once, depth below K, centres finite of width D."""
    from sklearn.cluster._bisect_k_means import _BisectingTree
    seen, labels, stack = set(), set(), [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if type(node) is not _BisectingTree:
            _fail(estimator, '_bisecting_tree', f'a tree with a node of type {type(node).__name__}', 'a tree')
        if id(node) in seen:
            _fail(estimator, '_bisecting_tree', 'a graph with a shared node or a cycle', 'a tree')
        seen.add(id(node))
        if len(seen) > 2 * n_leaves or depth >= max(n_leaves, 2):
            _fail(estimator, '_bisecting_tree', f'a tree with more than {2 * n_leaves - 1} nodes or depth '
                  f'{depth}', f'a tree of {n_leaves} leaves')
        center = getattr(node, 'center', None)
        if not isinstance(center, np.ndarray) or center.dtype.kind != 'f' or center.shape != (n_features,) \
                or not np.isfinite(center).all():
            _fail(estimator, '_bisecting_tree', f'a node whose centre is {_describe(center)}',
                  f'finite centres of width {n_features}')
        left, right = getattr(node, 'left', None), getattr(node, 'right', None)
        if (left is None) != (right is None):
            _fail(estimator, '_bisecting_tree', 'a node with one child', 'nodes with two children or none')
        if left is None:
            label = getattr(node, 'label', None)
            if type(label) is not int or not 0 <= label < n_leaves or label in labels:
                _fail(estimator, '_bisecting_tree', f'a leaf labelled {label!r:.20}', f'labels 0..{n_leaves - 1} '
                      'each once')
            labels.add(label)
        else:
            stack.extend([(left, depth + 1), (right, depth + 1)])
    if len(labels) != n_leaves:
        _fail(estimator, '_bisecting_tree', f'a tree with {len(labels)} leaves', f'{n_leaves} leaves')


def _bisecting(estimator):
    import sklearn.cluster._kmeans as kmeans
    centres, sizes = _centroids(estimator)
    array(estimator, '_X_mean', ('D',), sizes=sizes)
    algorithm = choice(estimator, 'algorithm', tuple(_KMEANS_ROUTINES))
    routine = getattr(estimator, '_kmeans_single', None)
    expected = getattr(kmeans, _KMEANS_ROUTINES[algorithm].rsplit('.', 1)[1])
    if routine is not None and routine is not expected:  # skops rebuilds the function itself
        if not isinstance(routine, FunctionRef) or routine.name != _KMEANS_ROUTINES[algorithm]:
            _fail(estimator, '_kmeans_single', repr(routine)[:60], f'a reference to {_KMEANS_ROUTINES[algorithm]}')
        estimator._kmeans_single = expected
    check_tree(estimator, getattr(estimator, '_bisecting_tree', None), sizes['K'], sizes['D'])


def _mixture(estimator):
    sizes = {}
    covariance = choice(estimator, 'covariance_type', tuple(COVARIANCE_SHAPES))
    array(estimator, 'means_', ('K', 'D'), sizes=sizes)
    array(estimator, 'weights_', ('K',), sizes=sizes)
    for attribute in ('precisions_cholesky_', 'covariances_', 'precisions_'):
        array(estimator, attribute, COVARIANCE_SHAPES[covariance], sizes=sizes,
              optional=attribute != 'precisions_cholesky_')
    if type(estimator).__name__ == 'BayesianGaussianMixture':
        prior = choice(estimator, 'weight_concentration_prior_type', ('dirichlet_process', 'dirichlet_distribution'))
        for attribute in ('mean_precision_', 'degrees_of_freedom_'):
            array(estimator, attribute, ('K',), sizes=sizes)
        concentration = getattr(estimator, 'weight_concentration_', None)
        parts = concentration if prior == 'dirichlet_process' else (concentration,)
        if not isinstance(parts, tuple) or not all(isinstance(part, np.ndarray) and part.shape == (sizes['K'],)
                                                   and part.dtype.kind == 'f' and np.isfinite(part).all()
                                                   for part in parts):
            _fail(estimator, 'weight_concentration_', _describe(concentration), f'finite arrays of shape '
                  f'({sizes["K"]},)')


def _kernel_kmeans(estimator):
    sizes = {}
    array(estimator, 'X_fit_', ('N', 'D'), sizes=sizes)
    labels = array(estimator, 'labels_', ('N',), kind='i', sizes=sizes)
    n_clusters = integer(estimator, 'n_clusters', 1)
    if labels.size and not (0 <= labels.min() and labels.max() < n_clusters):
        _fail(estimator, 'labels_', 'labels outside 0..n_clusters-1', 'cluster indices')
    gamma = getattr(estimator, 'gamma_', None)
    if not isinstance(gamma, (float, np.floating)) or not np.isfinite(gamma) or gamma <= 0:
        _fail(estimator, 'gamma_', repr(gamma)[:40], 'a finite float > 0')
    choice(estimator, 'assignment', ('mean_kernel', 'feature_space'))
    for attribute in ('_mean', 'self_similarity_'):
        value = getattr(estimator, attribute, None)
        if value is not None and (not isinstance(value, np.ndarray) or value.dtype.kind != 'f'
                                  or not np.isfinite(value).all()):
            _fail(estimator, attribute, _describe(value), 'a finite float array')


def _partition(estimator):
    array(estimator, 'labels_', ('N',), kind='i')


def _scaler(estimator):
    """A per-feature scaler: every fitted float array is one finite value per feature."""
    width = integer(estimator, 'n_features_in_', 1)
    for attribute, value in vars(estimator).items():
        if attribute.endswith('_') and isinstance(value, np.ndarray) and value.dtype.kind == 'f':
            array(estimator, attribute, (width,))


def _pipeline(estimator):
    """A list of (name, step) pairs whose steps fit each other: each fitted on as many columns as the one before
    makes (an imputer that drops a column, a projection, a vectorizer's vocabulary)."""
    from .transformers import output_width
    steps = getattr(estimator, 'steps', None)
    if not isinstance(steps, list) or not steps or not all(
            isinstance(step, tuple) and len(step) == 2 and isinstance(step[0], str) for step in steps):
        _fail(estimator, 'steps', _describe(steps), 'a list of (name, estimator) pairs')
    width, before = None, None
    for name, step in steps:
        if step is None or (isinstance(step, str) and step == 'passthrough'):
            continue
        if not hasattr(step, '__dict__') or isinstance(step, (str, type)):
            _fail(estimator, 'steps', f'a step {name!r:.40} of type {type(step).__name__}', 'estimators')
        fitted_on = getattr(step, 'n_features_in_', None)
        if width is not None and isinstance(fitted_on, int) and fitted_on != width:
            _fail(estimator, 'steps', f'a step {name!r:.40} fitted on {fitted_on} columns after {before!r:.40}, '
                  f'which makes {width}', 'steps that fit each other')
        width, before = output_width(step), name


def sub_estimators(estimator):
    """The estimators an estimator holds: a pipeline's steps, a ColumnTransformer's parts (fitted and as given),
    a vectorizer's TfidfTransformer, an imputer's MissingIndicator, column selectors; at most three levels of
    lists, tuples and dicts deep, each container visited once (shared references are not walked as a tree)."""
    from sklearn.base import BaseEstimator
    found, seen, stack = [], set(), [(value, 0) for value in vars(estimator).values()]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, BaseEstimator) or type(value).__name__ == 'make_column_selector':
            found.append(value)
        elif isinstance(value, (list, tuple, dict)) and depth < 3 and id(value) not in seen:
            seen.add(id(value))
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items if not isinstance(item, (str, int, float)))
    return found


_FAMILIES = {
    'KMeans': _centroids, 'MiniBatchKMeans': _centroids, 'BisectingKMeans': _bisecting,
    'GaussianMixture': _mixture, 'BayesianGaussianMixture': _mixture, 'KernelKMeans': _kernel_kmeans,
    'DBSCAN': _partition, 'HDBSCAN': _partition, 'OPTICS': _partition, 'AgglomerativeClustering': _partition,
    'SpectralClustering': _partition, 'StandardScaler': _scaler, 'MinMaxScaler': _scaler,
    'MaxAbsScaler': _scaler, 'RobustScaler': _scaler,
}


def check_estimator(estimator):
    """Check one loaded estimator against what its family reads (a pipeline's transformers against
    ``transformers.CHECKS``); raise a Refusal. An admitted scikit-learn type without a check is refused, unless it
    was admitted with :func:`~.registry.allow_types`."""
    from .registry import _ESTIMATOR_INTERNALS, estimator_names
    from .transformers import CHECKS, full_type
    name, full = type(estimator).__name__, full_type(estimator)
    fitted = any(key.endswith('_') and not key.startswith('__') for key in vars(estimator))
    known = name in _FAMILIES and type(estimator).__module__.startswith(('sklearn.', 'zennit_clusters.'))
    if full in CHECKS:
        CHECKS[full](estimator)  # parameters whether fitted or not: a function is refused either way
    elif name == 'Pipeline' and full == 'sklearn.pipeline.Pipeline':
        _pipeline(estimator)
    elif not known and full not in estimator_names() and not any(full in names
                                                                  for names in _ESTIMATOR_INTERNALS.values()):
        raise Refusal(f'it holds a {full}', 'which the loader admits but has no check of its fitted state for',
                      full)
    elif not fitted:
        pass  # only constructor parameters: neuralize reports it as never fitted
    elif known:
        _FAMILIES[name](estimator)
    for attribute, value in vars(estimator).items():
        if isinstance(value, FunctionRef):
            raise Refusal(f'its {name}.{attribute} is a reference to {value.name}',
                          'which no supported model keeps there', value.name)
    sparse = getattr(estimator, 'affinity_matrix_', None)
    if sparse is not None and hasattr(sparse, 'check_format'):
        try:
            sparse.check_format(full_check=True)
        except Exception as error:  # noqa: BLE001 -- scipy reports bad sparse structure in several ways
            raise Refusal(f'its affinity_matrix_ is not a valid sparse matrix ({error})',
                          'which would index outside its arrays', 'sparse matrix') from None
