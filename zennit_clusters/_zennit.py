"""Zennit is imported only when it is used, and ``COMPOSITES['cluster']`` still appears for Zennit's users.

Importing zennit costs seconds (it imports torchvision), and most uses of this package (``neuralize``,
``explain``, the exporter) never need it. The Zennit rules and :class:`~zennit_clusters.ClusterComposite` are
therefore loaded on first use (the package's ``__getattr__``), and the composite is registered in zennit's
``COMPOSITES`` as soon as ``zennit.composites`` exists: at once if zennit is imported already, otherwise right
after zennit imports it, by a finder on ``sys.meta_path`` that wraps that one module's loader.
"""
import importlib
import importlib.abc
import importlib.machinery
import sys

__all__ = ['register_when_zennit_loads']

_TARGET = 'zennit.composites'


class _RegisteringLoader(importlib.abc.Loader):
    """zennit.composites' own loader, followed by the import of our composites (which registers 'cluster')."""
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        # the module is complete and in sys.modules here, so our composites can import from it
        importlib.import_module('zennit_clusters.composites')


class _ZennitFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself; hands zennit.composites' spec on with the registering loader."""
    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _RegisteringLoader(spec.loader)
        return spec


def register_when_zennit_loads():
    """Register the cluster composite now if zennit.composites is loaded, else as soon as it is."""
    if _TARGET in sys.modules:
        importlib.import_module('zennit_clusters.composites')
    elif not any(isinstance(finder, _ZennitFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ZennitFinder())
