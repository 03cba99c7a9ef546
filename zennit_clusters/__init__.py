"""zennit-clusters: explain cluster assignments with NEON, as a plugin for Zennit.

>>> from zennit_clusters import neuralize, explain, ClusterComposite
>>> model = neuralize(kmeans)        # torch module: (N, D) -> (N, K) cluster evidence
>>> R = explain(model, X)            # (N, D) relevance; R.sum(1) == evidence of the assigned cluster
"""
from .composites import ClusterComposite, cluster_layer_map
from .converters import neuralize, supported_types
from .explain import CentroidExplainer, explain, make_explainer
from .layers import MinPool, NeuralizedCentroids, NeuralizedModel, PairwiseMargin
from .rules import Midpoint, SoftMin
from .explain import MixtureExplainer, explain_with_constant  # noqa: E402
from .layers import GaussianLogRatio, NeuralizedMixture, SoftMinPool  # noqa: E402
from .rules import LogRatioSplit  # noqa: E402

__version__ = '0.1.0'

__all__ = [
    'neuralize', 'explain', 'make_explainer', 'ClusterComposite', 'cluster_layer_map', 'supported_types',
    'NeuralizedModel', 'NeuralizedCentroids', 'PairwiseMargin', 'MinPool', 'CentroidExplainer',
    'Midpoint', 'SoftMin', '__version__',
]
__all__ += ['explain_with_constant', 'NeuralizedMixture', 'GaussianLogRatio', 'SoftMinPool', 'MixtureExplainer',
            'LogRatioSplit']
# member-point networks (kernel k-means, labelled partitions) and deep clustering heads
from .kernel_kmeans import KernelKMeans  # noqa: E402
from .converters.kernel import neuralize_partition  # noqa: E402
from .converters.deep import CentroidHead, StudentTHead, NeuralizedDeep, neuralize_deep, explain_deep  # noqa: E402
from .explain import MemberExplainer  # noqa: E402
from .layers import MemberMargin, LogMeanExpPool, NeuralizedMembers  # noqa: E402
from .rules import MemberMidpoint, LogMeanExpShares  # noqa: E402
__all__ += ['KernelKMeans', 'neuralize_partition', 'CentroidHead', 'StudentTHead', 'NeuralizedDeep', 'neuralize_deep',
            'explain_deep', 'MemberExplainer', 'MemberMargin', 'LogMeanExpPool', 'NeuralizedMembers',
            'MemberMidpoint', 'LogMeanExpShares']
