"""Torch clustering modules: the forms :func:`~zennit_clusters.neuralize` accepts, and the check before trust.

A module is neuralized only when both are known: where its centroids are, and that its forward assigns the
nearest of them. The first comes from the module's form (:data:`ACCEPTED_FORMS`), the second from running its
forward on probe points (:func:`.probes.check_assignments`). A feature extractor before the head is kept: the
result is a :class:`~zennit_clusters.NeuralizedDeep`, explained through both parts with
:func:`~zennit_clusters.explain_deep`. Anything else is refused with the list of accepted forms.
"""
import warnings

import torch

from .converters import CENTROID_ATTRIBUTES, centroid_model
from .layers import flat_pairs
from .probes import centroid_probes, check_assignments, rows_of

__all__ = ['ACCEPTED_FORMS', 'convert_torch_module', 'identify', 'centroids_from_margins', 'probe_head']

ACCEPTED_FORMS = (
    'Accepted torch modules:\n'
    '  - the library\'s heads (CentroidHead, StudentTHead) and neuralized models;\n'
    f'  - a module holding a (K, D) centroid tensor, named one of {", ".join(CENTROID_ATTRIBUTES)} (or as its only '
    '2-d parameter or buffer), whose forward returns (N, K) distances to them (argmin: torch.cdist(x, C), squared '
    'or not, PairwiseCentroidDistance(C, power=2)) or scores (argmax: -((x[:, None] - C) ** 2).sum(-1), a DEC '
    'Student-t layer, a softmax of negative distances);\n'
    '  - a canonized k-means head (NeuralizedKMeans: weight (K, K-1, D) = 2(mu_c - mu_k), bias (K, K-1) = '
    '|mu_k|^2 - |mu_c|^2), alone or followed by MinPool1d and Flatten;\n'
    '  - a torch.nn.Sequential ending in one of these after a feature extractor, or a module with one extractor '
    'child and such a head (neuralized as NeuralizedDeep, the extractor kept; pass X= inputs when the extractor '
    'does not start with a Linear layer);\n'
    '  - or say it directly: neuralize(centroid_tensor), neuralize_deep(extractor, head).'
)


class Found:
    """What :func:`identify` found in a module.

    Attributes
    ----------
    head : torch.nn.Module or None
        The part that maps the head's input to distances or scores (None where the head cannot be run alone).
    centroids : torch.Tensor or None
        (K, D) centroids in the head's input space (None for a neuralized model).
    model : NeuralizedModel or None
        A neuralized model found as the head.
    features : list of torch.nn.Module
        The extractor, in order (empty for a head alone).
    description : str
        What was found, for error messages.
    """
    def __init__(self, head, centroids=None, model=None, features=(), description=''):
        self.head, self.centroids, self.model = head, centroids, model
        self.features, self.description = list(features), description


def convert_torch_module(module, X=None, beta=None):
    """Neuralize a torch clustering module after checking its assignments on probe points.

    Parameters
    ----------
    module : torch.nn.Module
        One of :data:`ACCEPTED_FORMS`.
    X : array-like or torch.Tensor, optional
        Training inputs of ``module`` (for a deep model, inputs of the extractor): they set the default stiffness
        and join the probe points.
    beta : float, optional

    Returns
    -------
    NeuralizedCentroids or NeuralizedDeep

    Raises
    ------
    TypeError
        When the module has none of the accepted forms, or its output cannot be read as an assignment.
    ValueError
        When its own assignments differ from the network built from its tensors.
    """
    found = identify(module)
    name = type(module).__name__
    if found is None:
        raise TypeError(f'Cannot neuralize torch module {name}: no centroids or clustering head found in it '
                        f'(tensors: {_tensor_summary(module)}).\n{ACCEPTED_FORMS}')
    features = [m for m in found.features if not isinstance(m, torch.nn.Identity)]
    if not features:
        head_model = _head_model(found, name, X, beta)
        if found.head is not found.model:  # a neuralized model is what it computes
            probe_head(found.head, head_model, X, what=f'{name} ({found.description})', like=found.centroids)
        return head_model

    from ..deep.model import NeuralizedDeep, feature_codes  # deep builds on this family: import when needed
    extractor = features[0] if len(features) == 1 else torch.nn.Sequential(*features)
    codes = None if X is None else feature_codes(extractor, X)
    head_model = _head_model(found, name, codes, beta)
    what = f'{name} ({found.description}, after a feature extractor)'
    if found.head is not None and found.head is not found.model:
        probe_head(found.head, head_model, codes, what=what, like=found.centroids)
    if not _is_plain_sequential(module):  # a custom forward: check that it is the head on the extractor
        inputs = _input_probes(extractor, X, what)
        check_assignments(module, head_model, inputs, features=extractor, what=what)
    return NeuralizedDeep(extractor, head_model)


def probe_head(head, model, X=None, what=None, like=None):
    """:func:`.probes.check_assignments` of a head on probes around its centroids (and ``X``, its inputs)."""
    probes = centroid_probes(model.cluster_centers)
    if X is not None:
        probes = torch.cat([probes, rows_of(X).reshape(-1, probes.shape[1])])
    return check_assignments(head, model, probes, what=what, like=like)


def identify(module):
    """Where a module keeps its centroids, what maps features to its output, and what comes before (or None)."""
    from ...core import NeuralizedModel
    from ..deep.heads import CentroidHead, StudentTHead

    if isinstance(module, NeuralizedModel):
        return Found(module, model=module, description=f'neuralized {type(module).__name__}')
    if isinstance(module, (CentroidHead, StudentTHead)):
        return Found(module, module.centroids, description=f'centroids {tuple(module.centroids.shape)}')
    if _is_plain_sequential(module):
        return _identify_sequential(module)
    core = _core(module)
    if core is not None:
        return core
    return _identify_composed(module)


def _identify_sequential(module):
    children = list(module)
    for index in range(len(children) - 1, -1, -1):
        found = identify(children[index])
        if found is None:
            continue
        if found.head is None:  # a custom deep module inside: its composition cannot be probed from here
            return None
        tail = children[index + 1:]
        head = found.head if not tail else torch.nn.Sequential(found.head, *tail)
        return Found(head, found.centroids, found.model, children[:index] + found.features, found.description)
    return None


def _core(module):
    """A head over its own input: declared centroids, a canonized k-means head, or a custom module's one matrix."""
    if _is_torch_layer(module) or _children_with_tensors(module):
        return None  # a layer of torch's own, or a module with an extractor inside (see _identify_composed)
    tensors = _own_tensors(module)
    for name in CENTROID_ATTRIBUTES:
        value = getattr(module, name, None)
        if torch.is_tensor(value) and value.dim() == 2:
            return Found(module, value, description=f'{name} {tuple(value.shape)}')
    margins = _margin_pair(tensors)
    if margins is not None:
        (weight_name, weight), (bias_name, bias) = margins
        return Found(module, centroids_from_margins(weight, bias, type(module).__name__),
                     description=f'canonized k-means head, {weight_name} {tuple(weight.shape)} and {bias_name} '
                                 f'{tuple(bias.shape)}')
    matrices = [(name, t) for name, t in tensors if t.dim() == 2]
    if len(matrices) == 1:
        name, value = matrices[0]
        return Found(module, value, description=f'{name} {tuple(value.shape)}')
    return None


def _identify_composed(module):
    """A custom module with one extractor child and a head: a child head, or centroids held by the module."""
    if _is_torch_layer(module):
        return None
    children = _children_with_tensors(module)
    heads = [(child, identify(child)) for child in children]
    heads = [(child, found) for child, found in heads if found is not None and not found.features]
    matrices = [(name, t) for name, t in _own_tensors(module) if t.dim() == 2]
    declared = [(name, t) for name, t in matrices if name in CENTROID_ATTRIBUTES]
    if len(heads) == 1 and not matrices and len(children) == 2:
        head_child, found = heads[0]
        extractor = next(child for child in children if child is not head_child)
        return Found(found.head, found.centroids, found.model, [extractor], found.description)
    if not heads and len(children) == 1 and len(declared) == 1:
        name, value = declared[0]
        return Found(None, value, features=children, description=f'{name} {tuple(value.shape)}')
    return None


def centroids_from_margins(weight, bias, what='NeuralizedKMeans'):
    """The centroids whose k-means margins are ``weight`` (K, K-1, D) and ``bias`` (K, K-1), or a ValueError.

    The canonized layout (the first author's Zennit code) orders the competitors of c as ``k = j if j < c else
    j + 1`` with ``weight[c, j] = 2 (mu_c - mu_k)`` and ``bias[c, j] = |mu_k|^2 - |mu_c|^2``. The weights give the
    centroids' differences; the biases then fix their position along the span of the differences (least squares,
    then checked to rounding). A shift orthogonal to every difference changes no margin, so when the differences do
    not span the feature space (K - 1 < D) the centroids are the ones in that span: labels and evidence are exact,
    but per-feature relevance (whose midpoints move with the shift) can differ from the original centroids'; a
    warning says so.
    """
    W = weight.detach().to('cpu', torch.float64)
    b = bias.detach().to('cpu', torch.float64)
    n_clusters, n_features = W.shape[0], W.shape[2]
    own, rival = flat_pairs(n_clusters)
    delta = torch.zeros(n_clusters, n_features, dtype=torch.float64)
    delta[1:] = -W[0] / 2  # mu_k - mu_0, from cluster 0's margins
    system = 2 * (delta[rival] - delta[own]).reshape(-1, n_features)
    target = (b - (delta[rival].square().sum(-1) - delta[own].square().sum(-1))).reshape(-1, 1)
    origin = (torch.linalg.pinv(system) @ target).squeeze(1)
    centroids = origin + delta
    rebuilt_w = 2 * (centroids[own] - centroids[rival])
    rebuilt_b = centroids[rival].square().sum(-1) - centroids[own].square().sum(-1)
    eps = torch.finfo(weight.dtype).eps if weight.is_floating_point() else torch.finfo(torch.float64).eps
    w_error = float((rebuilt_w - W).abs().max() / W.abs().max().clamp(min=1e-300))
    b_error = float((rebuilt_b - b).abs().max() / (b.abs().max() + centroids.square().sum(1).max()).clamp(min=1e-300))
    if not (w_error <= 1e3 * eps and b_error <= 1e3 * eps):
        raise ValueError(
            f'{what}: weight {tuple(weight.shape)} and bias {tuple(bias.shape)} are not the k-means margins of any '
            f'set of centroids (weight[c, j] = 2(mu_c - mu_k), bias[c, j] = |mu_k|^2 - |mu_c|^2, k = j if j < c '
            f'else j + 1): they deviate by {w_error:.2g} and {b_error:.2g} (relative) from the nearest such margins. '
            'A margin network changed after canonization is not a k-means model; neuralize the centroids instead.')
    rank = int(torch.linalg.matrix_rank(delta[1:])) if n_clusters > 1 else 0
    if rank < n_features:
        warnings.warn(
            f'{what}: the margins of {n_clusters} centroids in {n_features} dimensions fix them only up to a shift '
            f'orthogonal to their {rank}-dimensional span; the recovered centroids lie in that span. Labels and '
            'evidence are exact; per-feature relevance uses the recovered midpoints. Neuralize the original '
            'centroids (e.g. the PairwiseCentroidDistance before canonization) to explain with them.',
            UserWarning, stacklevel=4)
    return centroids


def _head_model(found, name, X, beta):
    if found.model is not None:
        from ...api import neuralize
        return neuralize(found.model, X=X, beta=beta)
    centroids = found.centroids
    if centroids.device.type == 'meta':
        raise TypeError(f'{name}: its centroids {tuple(centroids.shape)} are on the meta device (no values). Load its '
                        'weights first.')
    return centroid_model(centroids, name, X=X, beta=beta)


def _input_probes(extractor, X, what):
    """Inputs of a custom deep module for the probe check: X's rows, else random rows of the first Linear's width."""
    if X is not None:
        return rows_of(X)
    first = extractor
    while isinstance(first, torch.nn.Sequential) and len(first):
        first = first[0]
    if not isinstance(first, torch.nn.Linear):
        raise TypeError(f'{what}: its forward is its own, and its extractor does not start with a Linear layer, so '
                        'the input shape of probe points is unknown: pass X= (some inputs) to neuralize(), or use '
                        'neuralize_deep(extractor, head).')
    generator = torch.Generator().manual_seed(1)
    scales = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64).repeat_interleave(256).unsqueeze(1)
    return torch.randn(len(scales), first.in_features, generator=generator, dtype=torch.float64) * scales


def _is_plain_sequential(module):
    return isinstance(module, torch.nn.Sequential) and type(module).forward is torch.nn.Sequential.forward


def _is_torch_layer(module):
    """Layers that torch itself defines (Linear, Conv, BatchNorm, ...): their matrices are never centroids."""
    return type(module).__module__.split('.')[0] == 'torch'


def _own_tensors(module):
    """(name, tensor) of a module's own parameters, buffers and plain tensor attributes (not its children's)."""
    found = dict(module.named_parameters(recurse=False))
    found.update(dict(module.named_buffers(recurse=False)))
    for name, value in vars(module).items():
        if torch.is_tensor(value) and not name.startswith('_'):
            found.setdefault(name, value)
    return list(found.items())


def _children_with_tensors(module):
    return [child for child in module.children() if any(True for _ in child.parameters())
            or any(True for _ in child.buffers()) or _own_tensors(child)]


def _margin_pair(tensors):
    """The canonized head's (weight (K, K-1, D), bias (K, K-1)) among a module's tensors, or None."""
    for weight_name, weight in tensors:
        if weight.dim() != 3 or weight.shape[1] != weight.shape[0] - 1 or weight.shape[0] < 2:
            continue
        for bias_name, bias in tensors:
            if bias.dim() == 2 and tuple(bias.shape) == tuple(weight.shape[:2]):
                return (weight_name, weight), (bias_name, bias)
    return None


def _tensor_summary(module):
    tensors = [(name, t) for name, t in list(module.named_parameters()) + list(module.named_buffers())]
    return ', '.join(f'{name} {tuple(t.shape)}' for name, t in tensors[:8]) + (', ...' if len(tensors) > 8 else '') \
        or 'none'
