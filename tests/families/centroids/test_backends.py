"""The k-means row step's two backends, side by side: the compiled kernel (row_step.py) and its torch twin
(CentroidExplainer._forward_flat), against each other and against the general margin-graph path."""
import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, strategies as st
from sklearn.cluster import BisectingKMeans, KMeans

from zennit_clusters import compiled, explain, make_explainer, neuralize
from zennit_clusters.families.centroids import row_step
from compiled_problems import dtypes, random_problem, shapes


@pytest.fixture
def torch_only(monkeypatch):
    """Run the torch expressions instead of the kernels, for as long as the test needs."""
    monkeypatch.setenv('ZENNIT_CLUSTERS_NO_COMPILED', '1')
    assert not compiled.available()


def with_and_without_compiled(monkeypatch, function):
    """``function()`` once through the kernels and once through torch."""
    assert compiled.available()
    fused = function()
    monkeypatch.setenv('ZENNIT_CLUSTERS_NO_COMPILED', '1')
    plain = function()
    monkeypatch.delenv('ZENNIT_CLUSTERS_NO_COMPILED')
    return fused, plain


@pytest.mark.parametrize('beta', [0.0, 0.5, math.inf])
@pytest.mark.parametrize('cluster', [None, 0, 2])
@pytest.mark.parametrize('compiled', [True, False], ids=['fused-kernel', 'torch'])
def test_flat_kmeans_layout_matches_margin_graph(monkeypatch, wine_models, beta, cluster, compiled):
    """k-means' fast paths against the general margin-graph path (pair_margins, masked_min, margin_relevance),
    with exact ties of the top score among the rows: the fused CPU kernel, and the torch layout the ONNX graph
    is made of (top_two, flat_logits, flat_margin_relevance: one column per centroid, no gathers or scatters)."""
    if not compiled:
        monkeypatch.setenv('ZENNIT_CLUSTERS_NO_COMPILED', '1')
    X, estimators = wine_models
    tied_centres = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0], [1.0, -3.0]], dtype=torch.float64)
    tied_points = torch.tensor([[1.0, 0.0], [1.0, 1.5], [0.5, 0.25], [3.0, -1.0]], dtype=torch.float64)
    for source, points in ((estimators['KMeans'], torch.as_tensor(X)), (tied_centres, tied_points)):
        fast = make_explainer(neuralize(source), cluster=cluster, beta=beta)
        general = make_explainer(neuralize(source), cluster=cluster, beta=beta)
        assert fast.flat
        general.flat = False
        with torch.no_grad():
            label, logits, relevance = fast(points)
            label_ref, logits_ref, relevance_ref = general(points)
        assert torch.equal(label, label_ref)
        assert torch.equal(logits, logits_ref)
        torch.testing.assert_close(relevance, relevance_ref, rtol=1e-12, atol=1e-12 * float(relevance_ref.abs().max()))
        if source is tied_centres:
            assert label[0] == 0 and logits[0, 0] == logits[0, 1] == 0  # the tie: first index, evidence 0


def test_both_backends_label_exact_ties_alike(monkeypatch):
    """On an exact tie of the top score both backends take the first tied cluster (the argmax of the scores)
    and give every tied cluster evidence 0."""
    centres = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0], [1.0, -3.0]], dtype=torch.float64)
    points = torch.tensor([[1.0, 0.0], [-1.0, 2.0], [3.0, 2.0], [3.0, -2.0]], dtype=torch.float64)  # 0-1, 0-2, 1-2, 1-3
    explainer = make_explainer(centres, beta=0.5)
    with torch.no_grad():
        assert compiled.usable(points) and row_step.available()
        fused = explainer(points)
        monkeypatch.setenv('ZENNIT_CLUSTERS_NO_COMPILED', '1')
        plain = explainer(points)
    assert fused[0].tolist() == plain[0].tolist() == [0, 0, 1, 1]
    assert torch.equal(fused[1], plain[1])
    assert fused[1][0, 0] == fused[1][0, 1] == 0 and fused[1][2, 1] == fused[1][2, 2] == 0
    torch.testing.assert_close(fused[2], plain[2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('beta', [0.0, 'model', 0.3, math.inf])
@pytest.mark.parametrize('cluster', [None, 2])
def test_fused_kmeans_explainer_matches_torch_path(monkeypatch, digits, dtype, beta, cluster):
    X = digits + 1000.0  # far from the origin: the kernel centres on the fly, as the torch path does
    estimator = KMeans(n_clusters=10, n_init=2, random_state=0).fit(X)
    model = neuralize(estimator, X=X)
    beta = model.beta if beta == 'model' else beta
    Xd = X.astype(dtype)

    (fused, plain) = with_and_without_compiled(
        monkeypatch, lambda: explain(model, Xd, cluster=cluster, beta=beta, return_logits=True))
    (r_fused, l_fused, f_fused), (r_plain, l_plain, f_plain) = fused, plain
    np.testing.assert_array_equal(l_fused, estimator.predict(X))
    np.testing.assert_array_equal(l_fused, l_plain)
    scale = np.abs(f_plain).max()
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(f_fused, f_plain, rtol=0, atol=tolerance * scale)
    row_scale = np.abs(r_plain).max(1, keepdims=True) + np.abs(f_plain).max(1, keepdims=True)
    if dtype == np.float64:
        assert (np.abs(r_fused - r_plain) / row_scale).max() < 1e-9
        explained = l_fused if cluster is None else np.full(len(X), cluster)
        evidence = f_fused[np.arange(len(X)), explained]
        np.testing.assert_allclose(r_fused.sum(1), evidence, rtol=1e-10, atol=1e-8)
    else:
        # in float32 both round differently; measured against float64, the kernel is about as accurate. For a
        # non-assigned cluster tiny margins amplify the rounding of the scores in either path (see
        # test_centroid_explain), and there the fused dot products (FMA) round the two scores of a margin less
        # alike than unfused ones: on AVX-512 the kernel's worst row is 1.4e-3 against torch's 5e-4 (AVX2 6e-4,
        # plain C 5e-4; on another machine torch's was 4e-3 against the kernel's 5e-4)
        exact = explain(model, X, cluster=cluster, beta=beta)
        error_fused = (np.abs(r_fused - exact) / row_scale).max()
        error_plain = (np.abs(r_plain - exact) / row_scale).max()
        assert error_fused <= (2 if cluster is None else 4) * error_plain + 1e-5


@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2 ** 16), beta=st.sampled_from([0.0, 0.5, math.inf]),
       fixed=st.booleans(), offset=st.sampled_from([0.0, 50.0]))
@example(shape=(1, 16, 2), dtype=torch.float32, seed=0, beta=0.5, fixed=False, offset=0.0)  # a single row
@example(shape=(3, 33, 19), dtype=torch.float64, seed=0, beta=math.inf, fixed=True, offset=50.0)
def test_fused_kernel_matches_the_torch_explainer_on_any_shape(shape, dtype, seed, beta, fixed, offset):
    rows, features, clusters = shape
    clusters = max(clusters, 2)
    x, mu, _, _ = random_problem(rows, features, clusters, torch.float64, seed)
    x, mu = x + offset, mu + offset  # offset: the kernel centres on the fly (explainer.origin is not None)
    explainer = make_explainer(mu, cluster=clusters - 1 if fixed else None, beta=beta).to(dtype)
    if offset:
        assert explainer.origin is not None
    x = x.to(dtype)
    with torch.no_grad():
        fused = explainer(x)
    assert compiled.usable(x, explainer.centres)
    plain = [t.detach() for t in explainer(x.clone().requires_grad_())]  # under autograd torch runs
    assert fused[0].dtype == torch.long and fused[1].dtype == fused[2].dtype == dtype
    torch.testing.assert_close(fused[0], plain[0])
    tolerance = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(fused[1], plain[1], rtol=tolerance, atol=tolerance * features)
    scale = plain[2].abs().amax(1, keepdim=True) + plain[1].abs().amax(1, keepdim=True)
    assert ((fused[2] - plain[2]).abs() / scale).max() < (1e-2 if dtype == torch.float32 else 1e-8)


def test_fused_explainer_marks_non_finite_rows(digits):
    estimator = KMeans(n_clusters=5, n_init=1, random_state=0).fit(digits)
    explainer = make_explainer(estimator)
    x = torch.from_numpy(digits[:4].copy())
    x[1, 3] = math.nan
    x[2, 0] = math.inf
    with torch.no_grad():
        label, logits, relevance = explainer(x)
    assert label.tolist()[1:3] == [-1, -1]
    assert label.tolist()[0] == estimator.predict(digits[:1])[0]
    with pytest.raises(ValueError, match='NaN'):
        explain(estimator, x)


def test_fused_result_does_not_depend_on_threads(digits):
    estimator = KMeans(n_clusters=6, n_init=1, random_state=0).fit(digits)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        reference = explain(estimator, digits.astype(np.float32))
        for threads in (2, 3):  # each row is computed whole by one thread, whatever the split
            torch.set_num_threads(threads)
            np.testing.assert_array_equal(explain(estimator, digits.astype(np.float32)), reference)
    finally:
        torch.set_num_threads(before)


def test_compiled_code_refuses_what_does_not_fit(digits):
    """The kernels trust their shapes; the checks in front of them must hold (a wrong width once read past
    the end of the centres, a cluster index past K wrote past the scratch)."""
    estimator = KMeans(n_clusters=4, n_init=1, random_state=0).fit(digits)
    explainer = make_explainer(estimator)
    for x in (torch.zeros(3, 10, dtype=torch.float64), torch.zeros(2, 100, dtype=torch.float64),
              torch.zeros(64, dtype=torch.float64)):
        with pytest.raises(ValueError, match='64 features|2-d'):
            explainer(x)
    model = neuralize(estimator)
    from zennit_clusters import CentroidExplainer
    for cluster in (4, -1, 10 ** 7):
        with pytest.raises(ValueError, match=r'cluster must be in \[0, 4\)'):
            CentroidExplainer(model, cluster, 1.0)
    x = torch.zeros(5, 8)
    with pytest.raises(ValueError, match=r'origin must have shape \(8,\)'):
        compiled.centred_linear(x, torch.zeros(1), torch.zeros(3, 8), torch.zeros(3))
    with pytest.raises(ValueError, match='x must be 2-d with 9 features'):
        compiled.centred_addcmul(torch.zeros(5, 3), torch.zeros(3, 9), torch.zeros(3, 9), x, torch.zeros(9))
    with pytest.raises(ValueError, match=r'cluster must be in \[0, 3\)'):
        row_step.flat_explain(x, None, torch.zeros(3, 8), 3, 1.0, 1e-7)


def test_an_origin_the_compiled_code_cannot_read_sends_the_work_to_torch(monkeypatch, digits):
    estimator = KMeans(n_clusters=4, n_init=1, random_state=0).fit(digits + 100.0)
    explainer = make_explainer(estimator)
    x = torch.from_numpy(digits[:50] + 100.0)
    with torch.no_grad():
        expected = explainer(x)
        origin = explainer.origin
        explainer.origin = torch.stack([origin, torch.zeros_like(origin)], 1)[:, 0]  # same values, stride 2
        assert not compiled.usable(explainer.origin)
        got = explainer(x)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(got[2], expected[2], rtol=1e-9, atol=1e-9)


def test_bisecting_kmeans_uses_the_two_primitives_and_matches_torch(monkeypatch, digits):
    estimator = BisectingKMeans(n_clusters=6, random_state=0).fit(digits)
    fused, plain = with_and_without_compiled(monkeypatch, lambda: explain(estimator, digits, return_logits=True))
    np.testing.assert_array_equal(fused[1], estimator.predict(digits))
    np.testing.assert_array_equal(fused[1], plain[1])
    np.testing.assert_allclose(fused[0], plain[0], rtol=1e-9, atol=1e-9 * np.abs(plain[0]).max())
