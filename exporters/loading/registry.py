"""Which names a file may reference: the supported estimators and what their fitted state holds.

Every read of the package's converter registry is in :func:`_registered_estimators`, so that the registry
can move without touching the rest of the loader.
"""
#: Names every supported estimator pickle may reference, whatever the estimator: numpy array, dtype and
#: scalar reconstruction (numpy 2 spells ``numpy._core``, numpy 1 ``numpy.core``), the legacy
#: RandomState that sklearn keeps when ``random_state`` is a ``np.random.RandomState``, how protocols
#: 0-2 spell bytes and plain objects, and joblib's array container. None of them is called as named: each
#: stands for a constructor of the loader's own that checks its arguments (see ``constructors``).
BASE_NAMES = frozenset({
    'numpy.ndarray',
    'numpy.dtype',
    'numpy._core.multiarray._reconstruct',
    'numpy.core.multiarray._reconstruct',
    'numpy._core.multiarray.scalar',
    'numpy.core.multiarray.scalar',
    'numpy._core.numeric._frombuffer',
    'numpy.core.numeric._frombuffer',
    'numpy.random._pickle.__randomstate_ctor',
    'numpy.random._pickle.__bit_generator_ctor',
    'numpy.random._mt19937.MT19937',
    '_codecs.encode',
    'copyreg._reconstructor',
    'builtins.object',
    'joblib.numpy_pickle.NumpyArrayWrapper',
})

#: Extra names admitted with :func:`allow_types`, keyed by the estimator's full type name; the families declare
#: their own in the package's registry (``zennit_clusters.core.Family.pickle_names``). Functions among them are
#: never called from a file: the loader substitutes the real function where the estimator keeps it.
_ESTIMATOR_INTERNALS = {}


def full_name(type_):
    """``module.qualname`` of a class or function."""
    return f'{type_.__module__}.{type_.__qualname__}'


def _registered_estimators():
    """The estimator types the package's families convert, and what each may hold.

    The only function of the loader that reads the package's registry.

    Returns
    -------
    dict
        ``{estimator full name: set of extra admitted full names}``: what the family declares for the type
        (:func:`zennit_clusters.core.pickle_admissions`) and what :func:`allow_types` added. Torch types are left
        out (they come from torch files). The package's own classes are admitted under their import paths of
        0.1 too (a pickled ``KernelKMeans`` of 0.1 names ``zennit_clusters.kernel_kmeans.KernelKMeans``).
    """
    from zennit_clusters._legacy import legacy_names
    from zennit_clusters.core import pickle_admissions

    registered = {name: set(extra) | _ESTIMATOR_INTERNALS.get(name, set())
                  for name, extra in pickle_admissions().items()}
    for old, new in legacy_names(registered).items():
        registered[old] = registered[new]
    return registered


def supported_list():
    """The supported estimator names, for messages."""
    from zennit_clusters import supported_types
    return ', '.join(supported_types())


def allow_types(estimator_type, *names):
    """Admit ``names`` in files of ``estimator_type`` (once that type is registered with the converters).

    Parameters
    ----------
    estimator_type : type or str
        The estimator class, or its full name ``module.qualname``
        (e.g. ``'sklearn.cluster._bisect_k_means.BisectingKMeans'``).
    *names : str
        Full names (``module.qualname``) of the classes a fitted estimator of that type holds. A class is
        rebuilt without calling its constructor, and its state set as a plain ``__dict__`` update; a
        function is kept as an inert reference, never called (files that use one are refused).
    """
    key = estimator_type if isinstance(estimator_type, str) else full_name(estimator_type)
    _ESTIMATOR_INTERNALS.setdefault(key, set()).update(names)


def estimator_names():
    """Full names of the registered estimator types (the objects a file may hold at its top)."""
    return frozenset(_registered_estimators())


def allowed_names():
    """The full set of names a pickle may reference, as of now (the registry may grow at run time).

    ``BASE_NAMES``, every estimator type a family converts (torch objects excepted: they come from torch files)
    and what :func:`_registered_estimators` admits with it.
    """
    names = set(BASE_NAMES)
    for name, extra in _registered_estimators().items():
        names.add(name)
        names |= extra
    return frozenset(names)
