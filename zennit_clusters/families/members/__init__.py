"""Member-point networks: Gaussian kernel k-means and any labelled partition (docs/method.md, section 3).

A cluster is represented by member points; x goes to the cluster with the largest mean Gaussian kernel to its
members. :class:`KernelKMeans` (scikit-learn has none) is reproduced exactly; a labelled partition (DBSCAN,
HDBSCAN, OPTICS, AgglomerativeClustering, SpectralClustering, or plain labels via :func:`neuralize_partition`)
has no rule for new points, so the network defines one from the labelled training points. The folder holds
the family's estimator, equations, layers, Zennit rules, closed-form explainer and converters; this module
registers them.
"""
from ...core import Family, register_family
from .converters import convert_kernel_kmeans, convert_partition, member_gamma, neuralize_partition
from .explainer import MemberExplainer
from .layers import LogMeanExpPool, MemberMargin, NeuralizedMembers

__all__ = ['LogMeanExpPool', 'MemberExplainer', 'MemberMargin', 'NeuralizedMembers', 'member_gamma',
           'neuralize_partition', 'FAMILY']

#: the clusterers with ``labels_`` but no ``predict`` whose partition the network is built from (full names: the
#: registry dispatches without importing scikit-learn)
PARTITION_TYPES = ('sklearn.cluster._dbscan.DBSCAN', 'sklearn.cluster._hdbscan.hdbscan.HDBSCAN',
                   'sklearn.cluster._optics.OPTICS', 'sklearn.cluster._agglomerative.AgglomerativeClustering',
                   'sklearn.cluster._spectral.SpectralClustering')


def _layer_rules(beta, epsilon):
    from .rules import layer_rules  # zennit is imported only when rules are asked for
    return layer_rules(beta, epsilon)


FAMILY = register_family(Family(
    name='members',
    converters={**{name: convert_partition for name in PARTITION_TYPES},
                'zennit_clusters.families.members.kernel_kmeans.KernelKMeans': convert_kernel_kmeans},
    explainers={NeuralizedMembers: MemberExplainer},
    layer_rules=_layer_rules,
    # SpectralClustering with a nearest-neighbours affinity keeps a sparse affinity_matrix_
    pickle_names={'sklearn.cluster._spectral.SpectralClustering': {'scipy.sparse._csr.csr_matrix'}},
))
