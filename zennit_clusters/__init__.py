"""zennit-clusters: explain cluster assignments with NEON, as a plugin for Zennit.

>>> from zennit_clusters import neuralize, explain, ClusterComposite
>>> model = neuralize(kmeans)        # torch module: (N, D) -> (N, K) cluster evidence
>>> R = explain(model, X)            # (N, D) relevance; R.sum(1) == evidence of the assigned cluster

The package is organised by model family (``zennit_clusters/families/<name>/``, one registration each); this
module holds the public names only.
"""
from . import _legacy  # noqa: F401  (old import paths, for pickles and user code)
from . import _zennit
from .api import direction, explain, explain_with_constant, make_explainer, neuralize, supported_types
from .core import Explainer, NeuralizedModel
from .explanation import Explanation
from .families.centroids import CentroidExplainer, MinPool, NeuralizedCentroids, PairwiseMargin
from .families.deep import CentroidHead, NeuralizedDeep, StudentTHead, explain_deep, neuralize_deep
from .families.members import LogMeanExpPool, MemberExplainer, MemberMargin, NeuralizedMembers, neuralize_partition
from .families.mixture import GaussianLogRatio, MixtureExplainer, NeuralizedMixture, SoftMinPool
from .families.pipeline import FeatureScaling, NeuralizedPipeline, PipelineExplainer
from .families.pipeline.text import NeuralizedText
from .terms import top_terms
from .summary import ClusterSummary, Summary, summarize

__version__ = '0.2.0'

#: names whose modules import zennit or scikit-learn (seconds of start-up): loaded on first use
_LAZY_NAMES = {
    'KernelKMeans': 'families.members.kernel_kmeans',
    'ClusterComposite': 'composites', 'cluster_layer_map': 'composites',
    'Midpoint': 'families.centroids.rules', 'SoftMin': 'families.centroids.rules',
    'contrast_output': 'families.centroids.rules',
    'LogRatioSplit': 'families.mixture.rules',
    'MemberMidpoint': 'families.members.rules', 'LogMeanExpShares': 'families.members.rules',
}

_zennit.register_when_zennit_loads()


def __getattr__(name):
    if name in _LAZY_NAMES:
        import importlib
        value = getattr(importlib.import_module(f'.{_LAZY_NAMES[name]}', __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(set(globals()) | set(_LAZY_NAMES))

__all__ = [
    # the public contract
    'neuralize', 'explain', 'ClusterComposite',
    # readings of an explanation: direction of each feature
    'direction', 'contrast_output',
    # closed-form explainers and their variants
    'make_explainer', 'explain_with_constant', 'explain_deep', 'Explainer', 'CentroidExplainer', 'MixtureExplainer',
    'MemberExplainer', 'PipelineExplainer',
    # results a person reads
    'Explanation', 'summarize', 'Summary', 'ClusterSummary',
    # more ways in
    'neuralize_partition', 'neuralize_deep', 'supported_types', 'cluster_layer_map', 'KernelKMeans',
    'CentroidHead', 'StudentTHead', 'top_terms',
    # neuralized models and their layers
    'NeuralizedModel', 'NeuralizedCentroids', 'NeuralizedMixture', 'NeuralizedMembers', 'NeuralizedPipeline',
    'NeuralizedDeep', 'NeuralizedText', 'PairwiseMargin', 'MinPool', 'GaussianLogRatio', 'SoftMinPool', 'MemberMargin',
    'LogMeanExpPool', 'FeatureScaling',
    # zennit rules
    'Midpoint', 'SoftMin', 'LogRatioSplit', 'MemberMidpoint', 'LogMeanExpShares',
    '__version__',
]
