"""ClusterComposite: registration, and deep clustering with Zennit's composites below the cluster head.

A small CNN is trained on digits inside the test (a few seconds), k-means runs on its features, and the
neuralized head sits on top. Relevance reaches the pixels through Zennit's own rules; with the network's
biases zeroed it sums to the evidence f_c. Runs on zennit 0.5.1 and, in `make test`, on zennit 1.0.0.
"""
import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from zennit.attribution import Gradient
from zennit.composites import COMPOSITES, EpsilonGammaBox, EpsilonPlusFlat, MixedComposite

from zennit_clusters import ClusterComposite, cluster_layer_map, explain, neuralize


def test_registered_in_zennit():
    assert COMPOSITES['cluster'] is ClusterComposite
    composite = COMPOSITES['cluster'](beta=0.5)
    assert composite.beta == 0.5


def make_network():
    # no biases anywhere: then every rule below is exactly conservative (up to its stabiliser)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1, bias=False), torch.nn.ReLU(),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(128, 12, bias=False),
    )


@pytest.fixture(scope='module')
def deep_clustering(digits):
    """A small CNN trained briefly as a digit classifier; k-means clusters its 12 features."""
    torch.manual_seed(0)
    images = torch.as_tensor(digits / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    targets = torch.as_tensor(load_digits().target)
    features = make_network()
    classifier = torch.nn.Sequential(features, torch.nn.ReLU(), torch.nn.Linear(12, 10))
    optimizer = torch.optim.Adam(classifier.parameters(), lr=2e-2)
    for _ in range(40):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(classifier(images), targets)
        loss.backward()
        optimizer.step()
    features, images = features.double(), images.double()
    with torch.no_grad():
        codes = features(images).numpy()
    kmeans = KMeans(n_clusters=10, n_init=3, random_state=0).fit(codes)
    head = neuralize(kmeans, X=codes)
    model = torch.nn.Sequential(features, head).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, head, kmeans, images, codes, float(loss.detach())


def seeded(logits):
    return logits * torch.nn.functional.one_hot(logits.argmax(1), logits.shape[1]).to(logits.dtype)


COMBINATIONS = {
    'mixed-epsilon-gamma-box': lambda: MixedComposite([
        ClusterComposite(epsilon=1e-12), EpsilonGammaBox(low=0.0, high=1.0, epsilon=1e-12, stabilizer=1e-12)]),
    'layer-map-epsilon-gamma-box': lambda: EpsilonGammaBox(
        low=0.0, high=1.0, epsilon=1e-12, stabilizer=1e-12, layer_map=cluster_layer_map(epsilon=1e-12)),
    'mixed-epsilon-plus-flat': lambda: MixedComposite([
        ClusterComposite(epsilon=1e-12), EpsilonPlusFlat(epsilon=1e-12, stabilizer=1e-12)]),
}


@pytest.mark.parametrize('combination', COMBINATIONS)
def test_deep_clustering_relevance_on_pixels_is_conservative(deep_clustering, combination):
    model, head, kmeans, images, codes, loss = deep_clustering
    assert loss < 1.0, 'the feature network did not train'
    x = images[:64]
    with Gradient(model, COMBINATIONS[combination]()) as attributor:
        logits, relevance = attributor(x, attr_output=seeded)
    logits = logits.detach()
    assert relevance.shape == x.shape
    # the head's labels are k-means' labels on the network's features
    np.testing.assert_array_equal(logits.argmax(1).numpy(), kmeans.predict(codes[:64]))
    evidence = logits.max(1).values
    assert (evidence > 0).all()
    np.testing.assert_allclose(relevance.sum((1, 2, 3)).numpy(), evidence.numpy(), rtol=1e-6)
    # relevance reached the pixels through the network's rules, not as plain gradient
    assert relevance.abs().sum() > 0 and not torch.isnan(relevance).any()


def test_head_relevance_is_neon_on_the_features(deep_clustering):
    """Below the head, the relevance of the feature vector is exactly explain() on the features."""
    model, head, _, images, codes, _ = deep_clustering
    features = torch.as_tensor(codes[:32]).requires_grad_()
    with Gradient(head, ClusterComposite()) as attributor:
        _, relevance = attributor(features, attr_output=seeded)
    np.testing.assert_allclose(relevance.numpy(), explain(head, codes[:32]), rtol=1e-6, atol=1e-9)


def test_layer_map_is_appended_for_the_network_below(deep_clustering):
    from zennit.rules import Epsilon, Gamma, Norm, Pass
    from zennit.types import Activation, Convolution
    model, _, _, images, _, _ = deep_clustering
    composite = ClusterComposite(layer_map=[
        (Activation, Pass()), (Convolution, Gamma(gamma=0.25, stabilizer=1e-12)),
        (torch.nn.Linear, Epsilon(epsilon=1e-12)), (torch.nn.AvgPool2d, Norm(stabilizer=1e-12)),
    ])
    with Gradient(model, composite) as attributor:
        logits, relevance = attributor(images[:16], attr_output=seeded)
    logits = logits.detach()
    np.testing.assert_allclose(relevance.sum((1, 2, 3)).numpy(), logits.max(1).values.numpy(), rtol=1e-6)


@pytest.mark.parametrize('order', ['zennit_clusters first', 'zennit first'])
def test_the_cluster_composite_is_registered_whatever_is_imported_first(order):
    """zennit (seconds of start-up: it imports torchvision) is imported only when used, and
    COMPOSITES['cluster'] appears all the same, whether zennit comes before or after this package."""
    import subprocess
    import sys
    first, second = ('zennit_clusters', 'zennit.composites') if order == 'zennit_clusters first' else (
        'zennit.composites', 'zennit_clusters')
    code = (f'import sys, importlib; importlib.import_module({first!r}); '
            "lazy = 'zennit' not in sys.modules; "
            f'importlib.import_module({second!r}); '
            'from zennit.composites import COMPOSITES; import zennit_clusters; '
            "print(lazy, COMPOSITES.get('cluster') is zennit_clusters.ClusterComposite)")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lazy, registered = result.stdout.split()
    assert registered == 'True'
    if order == 'zennit_clusters first':
        assert lazy == 'True'  # importing the package alone does not import zennit
