"""Deep clustering heads (deep k-means, DEC) neuralized, alone and on a feature extractor through Zennit.

Runs on zennit 0.5.1 and 1.0.0.
"""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat, MixedComposite

from zennit_clusters import (CentroidHead, ClusterComposite, NeuralizedDeep, StudentTHead, cluster_layer_map, explain,
                             explain_deep, neuralize, neuralize_deep)
from zennit_clusters import NeuralizedCentroids


def encoder(bias=True, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 32, bias=bias), torch.nn.ReLU(),
                               torch.nn.Linear(32, 6, bias=bias)).double().eval()


@pytest.fixture(scope='module')
def images(digits):
    return torch.as_tensor(digits[:300] / 16.0)


@pytest.fixture(scope='module')
def codes_and_kmeans(images):
    features = encoder(bias=False)
    with torch.no_grad():
        codes = features(images).numpy()
    return features, codes, KMeans(5, n_init=2, random_state=0).fit(codes)


# -- the heads alone ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('alpha', [0.5, 1.0, 10.0])
def test_student_t_hard_assignment_is_exact(codes_and_kmeans, alpha):
    _, codes, kmeans = codes_and_kmeans
    head = StudentTHead(kmeans.cluster_centers_, alpha=alpha).double()
    z = torch.as_tensor(np.concatenate([codes, codes * 3.0 + 1.0]))
    with torch.no_grad():
        q = head(z)
    torch.testing.assert_close(q.sum(1), torch.ones(len(z), dtype=q.dtype))
    model = neuralize(head)
    assert isinstance(model, NeuralizedCentroids) and model.source == 'StudentTHead'
    _, labels, logits = explain(model, z, return_logits=True)
    assert torch.equal(labels, q.argmax(1))
    assert (logits.gather(1, labels.unsqueeze(1)) > 0).all()
    # what is exact about the soft assignment: the sign of every log-odds log q_c / q_k is the sign of the
    # k-means margin |z - mu_k|^2 - |z - mu_c|^2 (both decreasing in the distance); the value is not linear
    distances = torch.cdist(z, torch.as_tensor(kmeans.cluster_centers_)) ** 2
    for c in range(5):
        log_odds = torch.log(q[:, c:c + 1] / q)
        margin = distances - distances[:, c:c + 1]
        clear = margin.abs() > 1e-9
        assert torch.equal(torch.sign(log_odds)[clear], torch.sign(margin)[clear])


def test_centroid_head_and_foreign_dec_modules(codes_and_kmeans):
    _, codes, kmeans = codes_and_kmeans
    centroids = kmeans.cluster_centers_
    z = torch.as_tensor(codes)
    head = CentroidHead(centroids).double()
    with torch.no_grad():
        assert torch.equal(head(z).argmax(1), torch.as_tensor(kmeans.predict(codes)))
    reference = neuralize(kmeans)
    for model in (neuralize(head), neuralize(CentroidHead(centroids, trainable=False))):
        torch.testing.assert_close(model(z), reference(z))

    class ForeignDEC(torch.nn.Module):
        """A DEC clustering layer as other code writes it: a parameter cluster_centers and an alpha."""
        def __init__(self):
            super().__init__()
            self.alpha = 1.0
            self.cluster_centers = torch.nn.Parameter(torch.as_tensor(centroids))

        def forward(self, z):
            q = (1.0 + torch.cdist(z, self.cluster_centers) ** 2 / self.alpha) ** (-(self.alpha + 1) / 2)
            return q / q.sum(1, keepdim=True)

    foreign = ForeignDEC()
    with torch.no_grad():
        assert torch.equal(neuralize(foreign)(z).argmax(1), foreign(z).argmax(1))


def test_heads_validate_their_arguments():
    with pytest.raises(ValueError, match='alpha'):
        StudentTHead(np.zeros((3, 2)), alpha=0.0)
    with pytest.raises(ValueError, match='2-d'):
        CentroidHead(np.zeros(3))
    with pytest.raises(ValueError, match='at least 2 clusters'):
        neuralize(StudentTHead(np.zeros((1, 2))))


def test_target_distribution_is_decs():
    q = torch.softmax(torch.randn(50, 4, dtype=torch.float64), 1)
    p = StudentTHead.target_distribution(q)
    frequency = q.sum(0)
    for i in range(0, 50, 7):
        expected = np.array([q[i, k] ** 2 / frequency[k] for k in range(4)])
        np.testing.assert_allclose(p[i].numpy(), expected / expected.sum(), rtol=1e-12)


# -- on a feature extractor ----------------------------------------------------------------------------------------

def test_neuralize_deep_forward(images, codes_and_kmeans):
    features, codes, kmeans = codes_and_kmeans
    model = neuralize_deep(features, kmeans, X=images)
    assert isinstance(model, NeuralizedDeep) and model.n_clusters == 5
    assert model.beta == pytest.approx(neuralize(kmeans, X=codes).beta)
    with torch.no_grad():
        logits = model(images)
    torch.testing.assert_close(logits, neuralize(kmeans)(torch.as_tensor(codes)))
    assert (logits.argmax(1).numpy() == kmeans.predict(codes)).all()
    features.train()
    neuralize_deep(features, kmeans, X=images)
    assert features.training  # the extractor's mode is restored
    features.eval()


@pytest.mark.parametrize('composite', ['mixed', 'layer_map'])
@pytest.mark.parametrize('cluster', [None, 3])
def test_explain_deep_conserves_with_bias_free_extractor(images, codes_and_kmeans, composite, cluster):
    """With bias-free layers, Flat / ZBox / epsilon rules (tiny epsilon) and NEON on the head, the pixel
    relevance sums to the evidence f_c (docs/method.md, section 5)."""
    features, codes, kmeans = codes_and_kmeans
    model = neuralize_deep(features, kmeans, X=images)
    if composite == 'mixed':
        composite = MixedComposite([ClusterComposite(), EpsilonPlusFlat(epsilon=1e-12)])
    else:
        composite = EpsilonGammaBox(low=0.0, high=1.0, epsilon=1e-12, layer_map=cluster_layer_map())
    x = images[:40]
    logits, relevance = explain_deep(model, x, composite=composite, cluster=cluster)
    assert relevance.shape == x.shape
    chosen = logits.argmax(1) if cluster is None else torch.full((len(x),), cluster)
    evidence = logits.gather(1, chosen.unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(relevance.sum(1), evidence, rtol=1e-6, atol=1e-8)
    if cluster is None:
        assert (evidence > 0).all()


def test_explain_deep_head_part_is_the_closed_form(codes_and_kmeans):
    """Through an identity extractor, the Zennit path gives the closed-form NEON relevance of the head."""
    _, codes, kmeans = codes_and_kmeans
    model = neuralize_deep(torch.nn.Identity(), StudentTHead(kmeans.cluster_centers_).double(), beta=0.7)
    z = torch.as_tensor(codes[:50])
    _, relevance = explain_deep(model, z, composite=ClusterComposite())
    torch.testing.assert_close(relevance, explain(model.head, z), rtol=1e-6, atol=1e-9)


def test_deep_errors(codes_and_kmeans):
    features, codes, kmeans = codes_and_kmeans
    model = neuralize_deep(features, kmeans)
    with pytest.raises(TypeError, match='explain_deep'):
        neuralize(model)
    with pytest.raises(TypeError, match='torch.nn.Module'):
        neuralize_deep(lambda x: x, kmeans)
    with pytest.raises(TypeError, match='neuralized'):
        NeuralizedDeep(features, kmeans)
    with pytest.raises(ValueError, match='cluster'):
        explain_deep(model, torch.zeros(2, 64, dtype=torch.float64), cluster=5)


# -- properties ----------------------------------------------------------------------------------------------------

@given(st.integers(2, 5), st.integers(1, 4), st.integers(0, 2**16), st.sampled_from([0.25, 1.0, 4.0]),
       st.booleans())
def test_heads_agree_with_their_networks(n_clusters, n_features, seed, alpha, duplicate):
    """K = 2..5, D' = 1..4, duplicated centroids (exact ties): where the nearest centroid is unique, every
    head's argmax is the network's, and the evidence is conserved by the relevance."""
    rng = np.random.default_rng(seed)
    centroids = rng.integers(-3, 4, size=(n_clusters, n_features)).astype(float)
    if duplicate:
        centroids[-1] = centroids[0]
    z = torch.as_tensor(rng.integers(-4, 5, size=(30, n_features)).astype(float))
    distances = torch.cdist(z, torch.as_tensor(centroids)) ** 2
    top2 = distances.topk(2, dim=1, largest=False).values
    clear = (top2[:, 1] - top2[:, 0]) > 1e-9
    for head in (StudentTHead(centroids, alpha=alpha), CentroidHead(centroids)):
        head = head.double()
        model = neuralize(head, beta=1.0)
        relevance, labels, logits = explain(model, z, return_logits=True)
        with torch.no_grad():
            expected = head(z).argmax(1)
        assert torch.equal(labels[clear], expected[clear])
        evidence = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
        torch.testing.assert_close(relevance.sum(1), evidence, rtol=1e-9, atol=1e-9)
