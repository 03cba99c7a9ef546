"""A member-point network fitted on projected data, rewritten exactly in the projection's input space.

After an orthonormal projection ``z = C (u - m)`` (PCA without whitening, TruncatedSVD), lift every member and
core sample to its minimum-norm pre-image ``a_j = m + C^T z_j`` (in the affine row space). Then

    |u - a_j|^2 = |z - z_j|^2 + |(I - C^T C)(u - m)|^2,

and the second term is the same for every member. So every pair margin ``|u - a_j|^2 - |u - a_i|^2`` of the
network's first layer equals the z-space one, the log-mean-exp pools (a soft-min over ``|z - z_j|^2 + r``
is the soft-min over ``|z - z_j|^2`` plus r) and the min-pool keep the same logits, and the midpoint rule
runs in u. DBSCAN's noise rule is the exception: its radius evidence ``eps^2 - |z - v*|^2`` is an absolute
distance, so it is kept in the metric ``M = C^T C`` (``|z - v*|^2 = (u - a*)^T M (u - a*)``; the nearest core
sample in u is the nearest in z), with per-feature terms ``d_i (M d)_i`` (:func:`.radius_terms`).

A whitened projection (``W = diag(1/sqrt(ev)) C``) has the metric ``W^T W``, which is no projector: the pair
margins are then linear in u with the weights ``2 W^T W (a_i - a_j)``, not those of a Euclidean member network;
refused (docs/pipelines.md).
"""
import numpy as np

from .layers import NeuralizedMembers

__all__ = ['project_members']


def project_members(head, components, mean, source=None):
    """The member network ``head`` (fitted on ``z = (u - mean) C^T``, orthonormal C) as the same network in u.

    Parameters
    ----------
    head : NeuralizedMembers
    components : ndarray of shape (d, D)
        ``C``, orthonormal rows.
    mean : ndarray of shape (D,)
    source : str, optional
        Default the head's.
    """
    if not isinstance(head, NeuralizedMembers):
        raise TypeError(f'project_members takes a member-point network, got {type(head).__name__}.')
    components = np.asarray(components, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    gram = components @ components.T
    if components.shape[0] != head.n_features_in_ or not np.allclose(gram, np.eye(len(gram)), atol=1e-8):
        raise ValueError(f'project_members needs orthonormal components of shape ({head.n_features_in_}, D); got '
                         f'shape {components.shape} with |C C^T - I| = {np.abs(gram - np.eye(len(gram))).max():.1e}.')
    members = head.members.numpy() @ components + mean
    model = NeuralizedMembers.from_members(members, head.member_labels, head.gamma, head.beta,
                                           source=head.source if source is None else source,
                                           classes=head.classes_, relevance_gamma=head.relevance_gamma)
    model.label_rule = head.label_rule
    if head.noise_radius is not None:
        core = (head.radius.core + head.radius.origin).numpy() @ components + mean
        model.set_noise_rule(core, head.noise_radius, rule=head.label_rule, metric=components.T @ components)
    return model
