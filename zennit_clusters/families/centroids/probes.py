"""The probe check: a torch module's own assignments against its neuralized network, before it is trusted.

A torch module's tensors say nothing about what its forward computes. :func:`check_assignments` runs the forward
on probe points (near every centroid at several scales, around the centroids' mean at several scales, near the
midpoints of pairs, and the caller's data where given), reads an assignment from the output (the argmin of
distances or the argmax of scores, whichever is consistent) and compares it with the labels of the neuralized
network. Rows where either side is undecided (a tie in exact arithmetic, or in the module's own output) do not
count; every other row must agree.
"""
import copy

import numpy as np
import torch

__all__ = ['check_assignments', 'centroid_probes', 'rows_of', 'ProbeReport']

#: probes per group (near centroids, around the mean, near midpoints); the check runs the module on about 3x this
PROBES_PER_GROUP = 256


class ProbeReport:
    """What the probe check found: how to read the module's output and on how many rows it agreed.

    Attributes
    ----------
    orientation : str
        ``'argmin'`` (the output holds distances), ``'argmax'`` (scores) or ``'argmax of min'`` (pairwise margins
        of shape (N, K, K - 1), as a canonized k-means head gives).
    decisive : int
        Probe rows on which both the network and the module decide a unique cluster.
    agreement : float
        The fraction of decisive rows on which they agree (1.0 when the check passes).
    """
    def __init__(self, orientation, decisive, agreement, total):
        self.orientation, self.decisive, self.agreement, self.total = orientation, decisive, agreement, total

    def __repr__(self):
        return (f'ProbeReport(orientation={self.orientation!r}, decisive={self.decisive}/{self.total}, '
                f'agreement={self.agreement:.4f})')


def centroid_probes(centroids, n=PROBES_PER_GROUP, seed=0):
    """Probe points for a (K, D) float64 set of centroids: near each centroid, around their mean, near midpoints.

    Scales are relative to the smallest distance between distinct centroids (near points) and to the centroids'
    spread around their mean (the cloud, from 0.1x to 30x), so that the probes follow the data's scale and offset.
    """
    generator = torch.Generator().manual_seed(seed)
    centroids = centroids.to(torch.float64)
    n_clusters, n_features = centroids.shape
    mean = centroids.mean(0)
    spread = float((centroids - mean).square().sum(1).mean().sqrt())
    pairwise = torch.cdist(centroids, centroids)
    distinct = pairwise[pairwise > 0]
    nearest = float(distinct.min()) if distinct.numel() else 1.0
    spread = spread if spread > 0 else 1.0

    def noise(rows, scale):
        return torch.randn(rows, n_features, generator=generator, dtype=torch.float64) * scale / n_features ** 0.5

    which = torch.randint(n_clusters, (n,), generator=generator)
    near_scale = torch.tensor([1e-3, 3e-2, 0.2, 0.45], dtype=torch.float64)[torch.arange(n) % 4].unsqueeze(1)
    near = centroids[which] + noise(n, 1.0) * near_scale * nearest
    cloud_scale = torch.tensor([0.1, 0.5, 1.0, 3.0, 30.0], dtype=torch.float64)[torch.arange(n) % 5].unsqueeze(1)
    cloud = mean + noise(n, 1.0) * cloud_scale * spread
    first, second = torch.randint(n_clusters, (2, n), generator=generator)
    middle = (centroids[first] + centroids[second]) / 2 + noise(n, 0.05 * nearest)
    return torch.cat([near, cloud, middle])


def check_assignments(module, model, probes, features=None, what=None, like=None):
    """Run ``module`` on ``probes`` and require its assignments to be the neuralized network's labels.

    Parameters
    ----------
    module : torch.nn.Module
        The user's module; run in eval mode under ``no_grad`` (every submodule's mode is restored after).
    model : NeuralizedModel
        The network built from the module's tensors, on the head's input space.
    probes : torch.Tensor of shape (N, D)
        float64 inputs of ``module``; cast to the dtype and device of the module's parameters.
    features : torch.nn.Module, optional
        Maps the probes to the network's input space (the feature extractor of a deep model); None when
        ``module`` takes the network's input directly.
    what : str, optional
        How to name the module in errors (default its type and what was found in it).
    like : torch.Tensor, optional
        A tensor whose dtype and device the probes take when the module registers none (plain tensor attributes).

    Returns
    -------
    ProbeReport

    Raises
    ------
    TypeError
        When the forward fails on the probes or its output has no shape an assignment can be read from.
    ValueError
        When the assignments differ from the network's labels, or too few probe rows decide a cluster.
    """
    what = what or type(module).__name__
    n_clusters = model.n_clusters
    output, codes = _run(module, probes, features, what, like)
    scores = _as_assignment_scores(output, n_clusters, len(probes), what)
    from ...api import explain  # the closed form: O(N K) memory where the layered forward holds (N, K, K - 1)
    z = codes.to(torch.float64)
    _, labels, logits = explain(model, z, return_logits=True)
    # decided in exact arithmetic: the evidence (the gap between the two nearest centroids' squared distances)
    # clearly above what the module's own dtype can resolve on numbers of this size
    magnitude = z.square().sum(1) + model.cluster_centers.square().sum(1).max()
    eps = torch.finfo(output.dtype).eps if output.is_floating_point() else torch.finfo(torch.float64).eps
    clear = logits.max(1).values > min(1e3 * eps, 1e-2) * magnitude

    candidates = {}
    for orientation, values in scores.items():
        top = values.topk(2, dim=1).values.cpu()
        decided = torch.isfinite(top).all(1) & (top[:, 0] > top[:, 1]) & clear
        assigned = values.argmax(1).cpu()
        count = int(decided.sum())
        agreement = float((assigned[decided] == labels[decided]).double().mean()) if count else 0.0
        candidates[orientation] = ProbeReport(orientation, count, agreement, len(probes))
    n_clear = int(clear.sum())
    shape = tuple(output.shape)
    centres = model.cluster_centers
    if n_clear == 0 and bool((centres == centres[0]).all()):  # all centroids equal: every probe is a tie
        return ProbeReport('argmax', 0, 1.0, len(probes))
    passing = [report for report in candidates.values() if report.agreement == 1.0 and report.decisive > 0]
    if not passing and any(report.decisive for report in candidates.values()):
        found = '; '.join(f'{r.orientation}: {r.agreement:.1%} of {r.decisive} decisive rows'
                          for r in candidates.values())
        raise ValueError(
            f'{what}: its own assignments differ from the nearest-centroid network built from its tensors on probe '
            f'points (output of shape {shape}; agreement as {found}). Its forward does not compute the nearest '
            'centroid of those tensors, so neuralize() will not stand in for it.')
    best = max(passing or candidates.values(), key=lambda report: report.decisive)
    # the module must decide most rows that exact arithmetic decides (an output of ties would agree on none)
    if best.decisive < min(n_clear, max(8, n_clear // 2)):
        raise ValueError(
            f'{what}: only {best.decisive} of {len(probes)} probe rows give a unique cluster in its output of shape '
            f'{shape} ({n_clear} do in exact arithmetic; the rest are ties or not finite), too few to confirm that it '
            'computes the nearest centroid.')
    return best


def _run(module, probes, features, what, like=None):
    """The module's output on the probes and the network's inputs, in eval mode, without gradients.

    A module in a lower precision runs as a float64 copy first (the check is about what it computes, not about its
    rounding: a float32 cdist far from the origin cannot resolve close centroids); if the copy fails (a forward
    with tensors of its own dtype hard-coded), the module itself runs in its own dtype.
    """
    tensors = [t for t in list(module.parameters()) + list(module.buffers()) if t.is_floating_point()]
    tensor = tensors[0] if tensors else like
    dtype = tensor.dtype if tensor is not None else torch.float64
    device = tensor.device if tensor is not None else torch.device('cpu')
    if device.type == 'meta':
        raise TypeError(f'{what} is on the meta device: it has no values to neuralize. Load its weights first '
                        '(module.to_empty(device=...) and load_state_dict).')
    if dtype != torch.float64:
        try:
            copied, copied_features = copy.deepcopy((module, features))
            return _forward(_as_float64(copied), probes.to(device), copied_features, what)
        except Exception:  # noqa: BLE001 (a module that does not survive a copy or a cast runs as it is)
            pass
    return _forward(module, probes.to(device=device, dtype=dtype), features, what)


def _as_float64(module):
    """A module (a copy) in float64: its parameters and buffers, and its plain floating-point tensor attributes."""
    module.to(torch.float64)
    for submodule in module.modules():
        for name, value in list(vars(submodule).items()):
            if torch.is_tensor(value) and value.is_floating_point() and not name.startswith('_'):
                setattr(submodule, name, value.to(torch.float64))
    return module


def _forward(module, x, features, what):
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with torch.no_grad():
            try:
                output = module(x)
                codes = x if features is None else features(x)
            except Exception as error:  # the user's forward: any failure means its role is not what we assumed
                raise TypeError(f'{what}: running its forward on probe points of shape {tuple(x.shape)} '
                                f'({x.dtype}) failed with {type(error).__name__}: {error}') from error
    finally:
        for submodule, training in modes:
            submodule.training = training
    if not torch.is_tensor(output):
        raise TypeError(f'{what}: its forward returns {type(output).__name__}, not a tensor of (N, K) distances '
                        'or scores.')
    return output.detach(), codes.detach().reshape(len(x), -1).cpu()


def _as_assignment_scores(output, n_clusters, n_rows, what):
    """{orientation: (N, K) values whose argmax is the module's assignment} for each reading its shape allows."""
    shape = tuple(output.shape)
    if output.is_complex() or output.dtype == torch.bool:
        raise TypeError(f'{what}: its output has dtype {output.dtype}; expected real distances or scores.')
    output = output.to(torch.float64)
    if output.dim() == 3 and shape[:2] == (n_rows, n_clusters) and shape[2] == n_clusters - 1 and n_clusters > 2:
        return {'argmax of min': output.min(2).values}
    while output.dim() > 2 and output.shape[-1] == 1:
        output = output.squeeze(-1)
    if output.dim() != 2 or output.shape != (n_rows, n_clusters):
        expected = f'({n_rows}, {n_clusters})'
        raise TypeError(f'{what}: its output on {n_rows} probe rows has shape {shape}; expected {expected} '
                        f'distances or scores (one per cluster), or ({n_rows}, {n_clusters}, {n_clusters - 1}) '
                        'pairwise margins, to read an assignment from.')
    return {'argmax': output, 'argmin': -output}


def rows_of(X, limit=PROBES_PER_GROUP, seed=0):
    """Up to ``limit`` rows of the caller's data (any row shape), as float64 probes (a fixed random subset)."""
    x = torch.as_tensor(np.asarray(X) if not torch.is_tensor(X) else X.detach().cpu()).to(torch.float64)
    if x.shape[0] > limit:
        index = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:limit]
        x = x[index]
    return x
