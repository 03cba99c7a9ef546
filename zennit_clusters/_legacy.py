"""Import paths of releases before 0.2, which organised the package by layer kind (``layers.py``, ``rules.py``...).

Pickles name the module a class was defined in (a pickled ``KernelKMeans`` says
``zennit_clusters.kernel_kmeans.KernelKMeans``), and user code imports from those modules. Each old module is
registered here as a small alias module whose names resolve, on first use, to where they live now (with a
``DeprecationWarning``), so such pickles load and such imports keep working. The aliases are put into
``sys.modules`` when the package is imported, before any of them could shadow a public name of the package (the
old ``zennit_clusters.explain`` module shares its name with the function).
"""
import importlib
import sys
import types
import warnings

__all__ = ['LEGACY_MODULES', 'RENAMED', 'resolve', 'legacy_names']

_PACKAGE = 'zennit_clusters'
_F = f'{_PACKAGE}.families'

#: old module -> the modules its names now live in, searched in order
LEGACY_MODULES = {
    'layers': (f'{_F}.centroids.layers', f'{_F}.mixture.layers', f'{_F}.members.layers', f'{_F}.pipeline.layers',
               f'{_PACKAGE}.core', f'{_PACKAGE}.validation'),
    'functional': (f'{_PACKAGE}.equations', f'{_F}.centroids.equations', f'{_F}.mixture.equations',
                   f'{_F}.members.equations'),
    'rules': (f'{_F}.centroids.rules', f'{_F}.mixture.rules', f'{_F}.members.rules', f'{_F}.rule_base',
              f'{_PACKAGE}.validation'),
    'explain': (f'{_PACKAGE}.api', f'{_F}.centroids.explainer', f'{_F}.mixture.explainer', f'{_F}.members.explainer',
                f'{_F}.pipeline.explainer', f'{_PACKAGE}.core'),
    'kernels': (f'{_PACKAGE}.compiled', f'{_F}.centroids.row_step'),
    'kernel_kmeans': (f'{_F}.members.kernel_kmeans',),
    'converters': (f'{_PACKAGE}.api',),
    'converters.kmeans': (f'{_F}.centroids.converters',),
    'converters.bisecting': (f'{_F}.centroids.bisecting',),
    'converters.pipeline': (f'{_F}.pipeline.converters',),
    'converters.mixture': (f'{_F}.mixture.converters',),
    'converters.kernel': (f'{_F}.members.converters', f'{_F}.members'),
    'converters.deep': (f'{_F}.deep.heads', f'{_F}.deep.model'),
}

#: names that changed with the move: old name -> new name
RENAMED = {
    'frame_centre': 'frame_origin',
    'default_epsilon': 'sign_epsilon',
    'member_epsilon': 'tie_threshold',
    'kernels_available': 'available',
    'flat_centroid_explain': 'flat_explain',
}


def resolve(old_module, name):
    """The object an old ``module.name`` stands for now; AttributeError if it has none."""
    new_name = RENAMED.get(name, name)
    for module_name in LEGACY_MODULES[old_module]:
        module = importlib.import_module(module_name)
        if hasattr(module, new_name):
            return getattr(module, new_name)
    raise AttributeError(f'module {_PACKAGE}.{old_module} (an import path of releases before 0.2) has no '
                         f'attribute {name!r}')


def legacy_names(admitted):
    """{old full name: new full name} of the given new full names (classes a pickle may name), for loaders that
    admit names by an allow-list."""
    aliases = {}
    for old_module, sources in LEGACY_MODULES.items():
        for full in admitted:
            module, _, name = full.rpartition('.')
            if module in sources:
                aliases[f'{_PACKAGE}.{old_module}.{name}'] = full
    return aliases


def _alias_module(old_module):
    module = types.ModuleType(f'{_PACKAGE}.{old_module}', f'Alias of an import path of releases before 0.2: '
                              f'{", ".join(LEGACY_MODULES[old_module])}.')

    def __getattr__(name):
        if name.startswith('__'):
            raise AttributeError(name)
        value = resolve(old_module, name)
        warnings.warn(f'{_PACKAGE}.{old_module}.{name} has moved to {value.__module__}'
                      if hasattr(value, '__module__') else f'{_PACKAGE}.{old_module}.{name} has moved',
                      DeprecationWarning, stacklevel=2)
        return value

    module.__getattr__ = __getattr__
    if '.' not in old_module and any(other.startswith(old_module + '.') for other in LEGACY_MODULES):
        module.__path__ = []  # a package, so that its old submodules import
    return module


for _old in LEGACY_MODULES:
    sys.modules.setdefault(f'{_PACKAGE}.{_old}', _alias_module(_old))
