"""Member-point networks (partitions, DBSCAN with its noise rule, kernel k-means) after PCA / TruncatedSVD.

The members are lifted to their pre-images (docs/pipelines.md, "Other heads after a projection"): the pair
margins are the z-space ones, so labels and logits are the z-space network's; the relevance on the input
columns is the member reference of tests/references/members.py run in u on members lifted by the transformer's
own ``inverse_transform``; DBSCAN's radius evidence keeps the z-space distance to the nearest core sample.
"""
import functools

import numpy as np
import pytest
import torch
from references.members import member_network_reference
from sklearn.cluster import DBSCAN, AgglomerativeClustering
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from zennit.attribution import Gradient

from zennit_clusters import ClusterComposite, explain, neuralize
from zennit_clusters.families.members.kernel_kmeans import KernelKMeans

pytestmark = [pytest.mark.filterwarnings('error:X does not have valid feature names'),
              pytest.mark.filterwarnings('error:X has feature names')]

HEADS = {'dbscan': lambda: DBSCAN(eps=0.8, min_samples=5), 'agglomerative': lambda: AgglomerativeClustering(3),
         'kernel-kmeans': lambda: KernelKMeans(3, random_state=0)}
PROJECTIONS = {'pca': lambda: PCA(3), 'svd': lambda: TruncatedSVD(3, random_state=0)}
CASES = [(head, projection) for head in HEADS for projection in PROJECTIONS]


@functools.lru_cache(maxsize=None)
def frame():
    return load_wine(as_frame=True).data


@functools.lru_cache(maxsize=None)
def fitted(head, projection):
    return make_pipeline(StandardScaler(), PROJECTIONS[projection](), HEADS[head]()).fit(frame())


@pytest.mark.parametrize('head,projection', CASES, ids=['-'.join(case) for case in CASES])
def test_members_after_a_projection(head, projection):
    X = frame()
    pipeline = fitted(head, projection)
    Z = pipeline[:-1].transform(X)
    z_model = neuralize(pipeline[-1], X=Z)
    model = neuralize(pipeline, X=X)
    relevance, labels, logits = (np.asarray(v) for v in explain(model, X, return_logits=True))
    z_relevance, z_labels, z_logits = explain(z_model, Z, return_logits=True)
    np.testing.assert_array_equal(labels, z_labels)
    if head != 'dbscan':  # a partition's training labels are what the network reproduces on most rows
        assert (labels == pipeline[-1].labels_).mean() > 0.9
    scale = np.abs(z_logits).max()
    np.testing.assert_allclose(logits, z_logits, rtol=1e-9, atol=1e-10 * scale)
    np.testing.assert_allclose(relevance.sum(1), z_relevance.sum(1), rtol=1e-9, atol=1e-10 * scale)
    explained = logits.argmax(1)
    np.testing.assert_allclose(relevance.sum(1), logits[np.arange(len(X)), explained], rtol=1e-9,
                               atol=1e-9 * scale)
    # the Zennit path through the lifted network (every 4th row: it materialises all member pairs per row)
    rows = np.arange(0, len(X), 4)
    onehot = torch.nn.functional.one_hot(torch.tensor(explained[rows]), model.n_clusters).double()
    with Gradient(model, ClusterComposite()) as attributor:
        _, via_zennit = attributor(torch.tensor(X.to_numpy()[rows]).requires_grad_(),
                                   attr_output=lambda y: y * onehot)
    np.testing.assert_allclose(via_zennit.detach().numpy(), relevance[rows], rtol=1e-6,
                               atol=1e-8 * np.abs(relevance).max())
    U = pipeline[0].transform(X)
    lifted = pipeline[1].inverse_transform(z_model.members.numpy())  # the transformer's own pre-images
    if head == 'dbscan':
        # the radius evidence is the z-space one: eps^2 - |z - v*|^2 to the nearest core sample
        core = Z[pipeline[-1].core_sample_indices_]
        expected = 0.8 ** 2 - ((Z[:, None] - core[None]) ** 2).sum(-1).min(1)
        with torch.no_grad():
            radius = model.head.radius(torch.tensor(U)).numpy()
        np.testing.assert_allclose(radius, expected, rtol=1e-9, atol=1e-9)
        assert (labels == -1).any() and ((labels == -1) == (expected < 0)).all()
        return
    for n in range(0, len(X), 60):  # against the member reference in u (slow loops over member pairs)
        ref_logits, c, ref_relevance, deficit = member_network_reference(
            U[n], lifted, z_model.member_labels.numpy(), z_model.gamma, model.beta)
        assert c == labels[n] and deficit == 0.0
        np.testing.assert_allclose(ref_logits, logits[n], rtol=1e-8, atol=1e-8 * scale)
        np.testing.assert_allclose(relevance[n], ref_relevance, rtol=1e-6, atol=1e-8 * np.abs(ref_relevance).max())


def test_whitened_projection_is_refused_for_members():
    X = frame()
    pipeline = make_pipeline(StandardScaler(), PCA(3, whiten=True), AgglomerativeClustering(3)).fit(X)
    with pytest.raises(TypeError, match='W\\^T W is no projector'):
        neuralize(pipeline, X=X)


def test_onnx_graph_of_dbscan_after_pca(tmp_path):
    pytest.importorskip('onnxruntime')
    from exporters.onnx import export, make_session
    X = frame()
    pipeline = fitted('dbscan', 'pca')
    result = export(pipeline, tmp_path / 'model.onnx', explain=True, X=X, training_data=X)
    assert result.check.passed
    session = make_session(str(tmp_path / 'model.onnx'), 'cpu')
    names = [output.name for output in session.get_outputs()]
    dtype = np.float64 if session.get_inputs()[0].type == 'tensor(double)' else np.float32
    got = dict(zip(names, session.run(None, {'X': X.to_numpy(dtype=dtype)})))
    relevance, labels = (np.asarray(v) for v in explain(neuralize(pipeline, X=X), X, return_logits=True)[:2])
    np.testing.assert_array_equal(got['label'], labels)
    np.testing.assert_allclose(got['relevance'], relevance, rtol=1e-3, atol=1e-3 * np.abs(relevance).max())
