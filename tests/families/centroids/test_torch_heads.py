"""Torch clustering modules are trusted only when what they compute is known (issue 13, item 1).

The reference modules below are written from the descriptions of the kinds people use: cdist layers, the first
author's ``PairwiseCentroidDistance(centroids, power=2)`` and canonized ``NeuralizedKMeans`` (weight (K, K-1, D),
bias (K, K-1)) with ``MinPool1d``, DEC layers. Each silent failure of the old converter (any module with one 2-d
tensor taken as centroids) has a test marked "was silent" that failed before the probe check existed.
"""
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch

from zennit_clusters import (CentroidHead, NeuralizedCentroids, NeuralizedDeep, StudentTHead, explain, explain_deep,
                             neuralize, neuralize_deep)


# -- reference modules, from their descriptions ----------------------------------------------------------------

class CdistHead(torch.nn.Module):
    """``torch.cdist(x, self.centroids)``, squared or not, as distances or negated as scores."""
    def __init__(self, centroids, squared=False, negate=False):
        super().__init__()
        self.centroids = torch.nn.Parameter(torch.as_tensor(centroids).clone())
        self.squared, self.negate = squared, negate

    def forward(self, x):
        distance = torch.cdist(x, self.centroids)
        distance = distance ** 2 if self.squared else distance
        return -distance if self.negate else distance


class BroadcastHead(torch.nn.Module):
    """Negative squared distances by broadcasting, centroids in an undeclared buffer."""
    def __init__(self, centroids):
        super().__init__()
        self.register_buffer('codebook', torch.as_tensor(centroids).clone())

    def forward(self, x):
        return -((x[:, None] - self.codebook) ** 2).sum(-1)


class PairwiseCentroidDistance(torch.nn.Module):
    """The distance layer of the first author's Zennit proposal."""
    def __init__(self, centroids, power=2):
        super().__init__()
        self.centroids = torch.nn.Parameter(centroids)
        self.power = power

    def forward(self, input):
        return torch.cdist(input, self.centroids) ** self.power


class NeuralizedKMeans(torch.nn.Module):
    """The canonized head of the first author's Zennit code: (N, D) -> (N, K, K-1) margins."""
    def __init__(self, weight, bias):
        super().__init__()
        self.weight = torch.nn.Parameter(weight)
        self.bias = torch.nn.Parameter(bias)

    def forward(self, x):
        return torch.einsum('nd,kjd->nkj', x, self.weight) + self.bias


class MinPool1d(torch.nn.MaxPool1d):
    def forward(self, input):
        return -super().forward(-input)


def canonized(centroids):
    """``NeuralizedKMeans`` of centroids, competitors of c ordered ``k = j if j < c else j + 1``."""
    n_clusters, n_features = centroids.shape
    weight = torch.empty(n_clusters, n_clusters - 1, n_features, dtype=centroids.dtype)
    bias = torch.empty(n_clusters, n_clusters - 1, dtype=centroids.dtype)
    for c in range(n_clusters):
        for j in range(n_clusters - 1):
            k = j if j < c else j + 1
            weight[c, j] = 2 * (centroids[c] - centroids[k])
            bias[c, j] = centroids[k].square().sum() - centroids[c].square().sum()
    return NeuralizedKMeans(weight, bias)


class ForeignDEC(torch.nn.Module):
    def __init__(self, centroids, alpha=1.0):
        super().__init__()
        self.alpha = alpha
        self.cluster_centers = torch.nn.Parameter(torch.as_tensor(centroids).clone())

    def forward(self, z):
        q = (1.0 + torch.cdist(z, self.cluster_centers) ** 2 / self.alpha) ** (-(self.alpha + 1) / 2)
        return q / q.sum(1, keepdim=True)


@pytest.fixture(scope='module')
def centroids():
    return torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 + 5


@pytest.fixture(scope='module')
def points(centroids):
    return centroids.mean(0) + torch.randn(400, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3


def heads(C):
    return {
        'cdist': CdistHead(C), 'cdist squared': CdistHead(C, squared=True), 'negative cdist': CdistHead(C, negate=True),
        'broadcast': BroadcastHead(C), 'PairwiseCentroidDistance': PairwiseCentroidDistance(C.clone()),
        'PairwiseCentroidDistance power 1': PairwiseCentroidDistance(C.clone(), power=1),
        'softmax of -d': torch.nn.Sequential(CdistHead(C, squared=True, negate=True), torch.nn.Softmax(1)),
        'DEC': ForeignDEC(C), 'CentroidHead': CentroidHead(C), 'StudentTHead': StudentTHead(C).double(),
        'float32 cdist': CdistHead(C.float()),
        'author test layout': torch.nn.Sequential(OrderedDict(distance=PairwiseCentroidDistance(C.clone()))),
    }


@pytest.mark.parametrize('kind', list(heads(torch.zeros(2, 1))))
def test_accepted_heads_are_exact(kind, centroids, points):
    head = heads(centroids)[kind]
    model = neuralize(head)
    assert isinstance(model, NeuralizedCentroids)
    dtype = next(iter(list(head.parameters()) + list(head.buffers()))).dtype
    rounded = kind in ('CentroidHead', 'StudentTHead', 'float32 cdist')  # centroids kept in float32
    reference = neuralize(centroids.float().double() if rounded else centroids)
    with torch.no_grad():
        own = head(points.to(dtype))
    expected = torch.cdist(points, centroids).argmin(1)
    assert torch.equal(own.argmin(1), expected) or torch.equal(own.argmax(1), expected)
    torch.testing.assert_close(model(points), reference(points), rtol=1e-6, atol=1e-6)


# -- the author's canonized head -----------------------------------------------------------------------------------

@pytest.mark.parametrize('layout', ['alone', 'with MinPool1d and Flatten'])
def test_canonized_head_recovers_the_margin_network(layout, centroids, points):
    """was silent: the (K, K-1) bias was taken as the centroids (labels agreed on 14-33 %)."""
    head = canonized(centroids)
    if layout != 'alone':
        head = torch.nn.Sequential(head, MinPool1d(centroids.shape[0] - 1), torch.nn.Flatten())
    model = neuralize(head)
    assert model.n_features_in_ == 3
    torch.testing.assert_close(model.cluster_centers, centroids, rtol=1e-10, atol=1e-10)  # K - 1 >= D: unique
    torch.testing.assert_close(model(points), neuralize(centroids)(points), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(explain(model, points.numpy()), explain(centroids, points.numpy()), rtol=1e-7,
                               atol=1e-9)


def test_canonized_head_in_fewer_clusters_than_dimensions_warns(points):
    C = torch.randn(3, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x = torch.randn(200, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with pytest.warns(UserWarning, match='up to a shift'):
        model = neuralize(canonized(C))
    torch.testing.assert_close(model(x), neuralize(C)(x), rtol=1e-9, atol=1e-9)  # margins exact, labels exact


def test_changed_margin_network_is_refused(centroids):
    from zennit_clusters.families.centroids.torch_heads import centroids_from_margins
    head = canonized(centroids)
    with torch.no_grad():
        head.weight[1, 0, 2] += 0.5
    with pytest.raises(ValueError, match=r'weight \(4, 3, 3\) and bias \(4, 3\) are not the k-means margins'):
        centroids_from_margins(head.weight, head.bias)
    with pytest.raises(ValueError, match='not the k-means margins'):
        neuralize(head)


# -- silent failures of the old converter --------------------------------------------------------------------------

def test_linear_layer_is_not_three_centroids():
    """was silent: torch.nn.Linear(5, 3) became three centroids."""
    with pytest.raises(TypeError, match=r'(?s)Cannot neuralize torch module Linear.*weight \(3, 5\).*Accepted torch'):
        neuralize(torch.nn.Linear(5, 3))


def test_extractor_before_a_head_is_kept(centroids):
    """was silent: Sequential(phi, distance) dropped phi and returned a head over the features."""
    torch.manual_seed(0)
    phi = torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3)).double()
    module = torch.nn.Sequential(phi, PairwiseCentroidDistance(centroids.clone() - 5))
    x = torch.randn(300, 6, dtype=torch.float64) * 3
    model = neuralize(module)
    assert isinstance(model, NeuralizedDeep) and model.features is phi
    with torch.no_grad():
        assert torch.equal(model(x).argmax(1), module(x).argmin(1))
    with pytest.raises(TypeError, match='explain_deep'):
        explain(model, x)
    logits, relevance = explain_deep(model, x[:5])
    assert relevance.shape == (5, 6) and torch.isfinite(relevance).all()


def test_batchnorm_before_a_head_is_kept(centroids):
    """was silent: Sequential(BatchNorm1d, distance) ignored the BatchNorm (labels agreed on 53-91 %)."""
    norm = torch.nn.BatchNorm1d(3).double()
    with torch.no_grad():
        norm.running_mean.copy_(torch.tensor([4.0, -2.0, 1.0]))
        norm.running_var.copy_(torch.tensor([9.0, 0.25, 4.0]))
        norm.weight.copy_(torch.tensor([2.0, 1.0, 0.5]))
    module = torch.nn.Sequential(norm, CdistHead(centroids - 5, squared=True))
    module.train()  # neuralize must neither update the running statistics nor leave the module in eval mode
    before = norm.running_mean.clone()
    x = torch.randn(300, 3, dtype=torch.float64) * 4
    model = neuralize(module, X=x)
    assert isinstance(model, NeuralizedDeep) and model.features is norm
    assert torch.equal(norm.running_mean, before) and module.training and norm.training
    module.eval()
    with torch.no_grad():
        assert torch.equal(model(x).argmax(1), module(x).argmin(1))


def test_forward_that_is_not_nearest_centroid_is_refused(centroids):
    """was silent: a module with a centroids attribute was trusted whatever its forward computed."""
    class Projection(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.centroids = torch.nn.Parameter(centroids.clone())

        def forward(self, x):
            return x @ self.centroids.T

    with pytest.raises(ValueError, match=r'Projection \(centroids \(4, 3\)\).*output of shape \(\d+, 4\); agreement as '
                                         r'argmax: \d+\.\d% .*argmin: \d+\.\d%'):
        neuralize(Projection())

    class Shifted(CentroidHead):  # a library head whose forward was changed
        def forward(self, z):
            return super().forward(z + 3.0)

    with pytest.raises(ValueError, match='agreement'):
        neuralize(Shifted(centroids))


def test_roles_that_cannot_be_determined_are_refused(centroids):
    class NoForward(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.centroids = torch.nn.Parameter(centroids.clone())

    class Pair(NoForward):
        def forward(self, x):
            return x, torch.cdist(x, self.centroids)

    class Evidence(NoForward):  # the demo's NeuralizedKMeans(kmeans): one value per row
        def forward(self, x):
            return torch.cdist(x, self.centroids).min(1).values

    with pytest.raises(TypeError, match='running its forward on probe points of shape'):
        neuralize(NoForward())
    with pytest.raises(TypeError, match='returns tuple'):
        neuralize(Pair())
    with pytest.raises(TypeError, match=r'has shape \(768,\); expected \(768, 4\)'):
        neuralize(Evidence())
    with pytest.raises(TypeError, match='Cannot neuralize torch module Sequential'):
        neuralize(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)))
    with torch.device('meta'):
        meta = CdistHead(torch.zeros(4, 3))
    with pytest.raises(TypeError, match='meta device'):
        neuralize(meta)


# -- custom deep modules -------------------------------------------------------------------------------------------

class DeepDEC(torch.nn.Module):
    """A DEC model as its papers' code writes it: an encoder child and the centroids on the model itself."""
    def __init__(self, encoder, centroids):
        super().__init__()
        self.encoder = encoder
        self.cluster_centers = torch.nn.Parameter(torch.as_tensor(centroids).clone())

    def forward(self, x):
        q = 1.0 / (1.0 + torch.cdist(self.encoder(x), self.cluster_centers) ** 2)
        return q / q.sum(1, keepdim=True)


def test_custom_deep_module(centroids):
    torch.manual_seed(1)
    encoder = torch.nn.Sequential(torch.nn.Linear(8, 3), torch.nn.Tanh()).double()
    module = DeepDEC(encoder, torch.tanh(centroids - 5))
    x = torch.randn(200, 8, dtype=torch.float64)
    model = neuralize(module)
    assert isinstance(model, NeuralizedDeep) and model.features is encoder
    with torch.no_grad():
        assert torch.equal(model(x).argmax(1), module(x).argmax(1))

    conv = torch.nn.Sequential(torch.nn.Conv1d(1, 3, 8), torch.nn.Flatten()).double()
    images = torch.randn(50, 1, 8, dtype=torch.float64)
    with pytest.raises(TypeError, match='pass X='):
        neuralize(DeepDEC(conv, torch.tanh(centroids - 5)))
    model = neuralize(DeepDEC(conv, torch.tanh(centroids - 5)), X=images)
    assert isinstance(model, NeuralizedDeep)

    class Skips(DeepDEC):  # uses the encoder, then not what neuralize would stack
        def forward(self, x):
            return super().forward(x) + 0.5 * torch.softmax(-x[:, :4] * 50, 1)

    with pytest.raises(ValueError, match='agreement'):
        neuralize(Skips(encoder, torch.tanh(centroids - 5)))


def test_neuralize_deep_checks_its_head(centroids):
    """neuralize_deep(phi, head) runs the same check on the head over the features."""
    class Wrong(CdistHead):
        def forward(self, x):
            return torch.cdist(x, self.centroids.flip(0))

    with pytest.raises(ValueError, match='agreement'):
        neuralize_deep(torch.nn.Identity(), Wrong(centroids))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert isinstance(neuralize_deep(torch.nn.Identity(), CdistHead(centroids)), NeuralizedDeep)


# -- precision of the check itself ---------------------------------------------------------------------------------

class PlainAttribute(torch.nn.Module):
    """Centroids as a plain tensor attribute (not a parameter or buffer), in float32."""
    def __init__(self, centroids):
        super().__init__()
        self.centroids = torch.as_tensor(centroids, dtype=torch.float32)

    def forward(self, x):
        return torch.cdist(x, self.centroids)


class HardCodedFloat32(CdistHead):
    """A forward that casts to float32 itself: a float64 copy of it cannot run, the module itself can."""
    def forward(self, x):
        return torch.cdist(x.float(), self.centroids.float())


@pytest.mark.parametrize('head_type', [CdistHead, PlainAttribute, HardCodedFloat32])
def test_float32_heads_far_from_the_origin_are_checked_not_waved_through(head_type):
    """A float32 cdist at an offset of 1e4 cannot resolve centroids 1 apart; the check runs a float64 copy so that
    it still decides most probe rows (and would catch a wrong forward), and falls back to the module itself."""
    from zennit_clusters.families.centroids.torch_heads import probe_head
    C = torch.randn(5, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64) + 1e4
    head = head_type(C.float())
    model = neuralize(head)
    report = probe_head(head, model, like=C.float())
    if head_type is not HardCodedFloat32:
        assert report.decisive > report.total // 2 and report.agreement == 1.0
    assert head.centroids.dtype == torch.float32  # the user's module is not converted
