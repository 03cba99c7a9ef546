"""The compiled CPU kernels against the torch expressions they replace, and explain(out=...)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, strategies as st
from sklearn.cluster import BisectingKMeans, KMeans

from zennit_clusters import explain, kernels, make_explainer, neuralize


@pytest.fixture
def torch_only(monkeypatch):
    """Run the torch expressions instead of the kernels, for as long as the test needs."""
    monkeypatch.setenv('ZENNIT_CLUSTERS_NO_KERNELS', '1')
    assert not kernels.kernels_available()


def with_and_without_kernels(monkeypatch, function):
    """``function()`` once through the kernels and once through torch."""
    assert kernels.kernels_available()
    fused = function()
    monkeypatch.setenv('ZENNIT_CLUSTERS_NO_KERNELS', '1')
    plain = function()
    monkeypatch.delenv('ZENNIT_CLUSTERS_NO_KERNELS')
    return fused, plain


def test_the_extension_is_built():
    """The kernels are optional for an install without a C compiler, but our builds must have them: without
    them every k-means explanation silently runs 2-3x slower."""
    assert kernels._kernels is not None, 'zennit_clusters._kernels did not build (pip install -e . needs a C compiler)'


def random_problem(rows, features, centres, dtype, seed, offset=0.0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, features, generator=generator, dtype=torch.float64) + offset
    mu = torch.randn(centres, features, generator=generator, dtype=torch.float64)
    centre = mu.mean(0) + offset
    weights = torch.randn(rows, centres, generator=generator, dtype=torch.float64)
    weights -= weights.mean(1, keepdim=True)
    return [t.to(dtype) for t in (x, mu, centre, weights)]


# shapes around the vector width (16 float32, 8 float64), the 4-vector step and the block of 8 centres
shapes = st.tuples(st.integers(1, 40), st.integers(1, 150), st.integers(1, 19))
dtypes = st.sampled_from([torch.float32, torch.float64])


@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2 ** 16))
@example(shape=(3, 64, 8), dtype=torch.float32, seed=0)
@example(shape=(5, 17, 9), dtype=torch.float64, seed=1)
def test_centred_linear_matches_torch(shape, dtype, seed):
    rows, features, centres = shape
    x, mu, centre, _ = random_problem(rows, features, centres, dtype, seed)
    weight, bias = 2 * mu, -(mu * mu).sum(1)
    fused = kernels.centred_linear(x, centre, weight, bias)
    expected = F.linear((x - centre).double(), weight.double(), bias.double())
    tolerance = 1e-4 if dtype == torch.float32 else 1e-12
    assert fused.dtype == dtype and fused.shape == (rows, centres)
    torch.testing.assert_close(fused.double(), expected, rtol=tolerance, atol=tolerance * features)


@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2 ** 16), centred=st.booleans(), into=st.booleans())
@example(shape=(2, 128, 10), dtype=torch.float32, seed=0, centred=True, into=True)
def test_centred_addcmul_matches_torch(shape, dtype, seed, centred, into):
    rows, features, centres = shape
    x, mu, centre, weights = random_problem(rows, features, centres, dtype, seed)
    centre = centre if centred else None
    out = torch.full((rows, features), math.nan, dtype=dtype) if into else None
    fused = kernels.centred_addcmul(weights, mu * mu, mu, x, centre, value=-2.0, out=out)
    x64 = x.double() - (0 if centre is None else centre.double())
    expected = weights.double() @ (mu * mu).double() - 2 * x64 * (weights.double() @ mu.double())
    tolerance = 1e-4 if dtype == torch.float32 else 1e-12
    assert fused.dtype == dtype and fused.shape == (rows, features)
    if into:
        assert fused is out
    torch.testing.assert_close(fused.double(), expected, rtol=tolerance, atol=tolerance * centres)


@pytest.mark.parametrize('instruction_set', ['avx512', 'avx2', 'generic'])
def test_every_instruction_set_matches_torch(monkeypatch, instruction_set):
    """The extension carries the kernels for AVX-512, AVX2 and plain C (vectors of 64, 32 and 16 bytes) and runs
    the widest the CPU has; each one, where this CPU runs it, against the torch expressions."""
    try:
        kernels._kernels.instruction_set(instruction_set)
    except ValueError as error:
        pytest.skip(str(error))
    try:
        for rows, features, clusters in [(7, 100, 10), (1, 3, 2), (64, 784, 9)]:
            x, mu, centre, weights = random_problem(rows, features, clusters, torch.float64, rows)
            for dtype, tolerance in ((torch.float32, 1e-4), (torch.float64, 1e-11)):
                x_, mu_, centre_, weights_ = (t.to(dtype) for t in (x, mu, centre, weights))
                linear = kernels.centred_linear(x_, centre_, 2 * mu_, -(mu_ * mu_).sum(1))
                torch.testing.assert_close(linear.double(), F.linear(x - centre, 2 * mu, -(mu * mu).sum(1)),
                                           rtol=tolerance, atol=tolerance * features)
                combined = kernels.centred_addcmul(weights_, mu_ * mu_, mu_, x_, centre_, value=-2.0)
                expected = weights @ (mu * mu) - 2 * (x - centre) * (weights @ mu)
                torch.testing.assert_close(combined.double(), expected, rtol=tolerance, atol=tolerance * clusters)
                explainer = make_explainer(mu, beta=0.5).to(dtype)
                with torch.no_grad():
                    fused = explainer(x_)
                plain = [t.detach() for t in explainer(x_.clone().requires_grad_())]
                torch.testing.assert_close(fused[0], plain[0])
                torch.testing.assert_close(fused[1], plain[1], rtol=tolerance, atol=tolerance * features)
                torch.testing.assert_close(fused[2], plain[2], rtol=1e2 * tolerance, atol=1e2 * tolerance)
    finally:
        kernels._kernels.instruction_set('best')
    with pytest.raises(ValueError, match='not available'):
        kernels._kernels.instruction_set('sse9')


def test_kernels_step_aside_for_autograd_tracing_and_other_dtypes():
    x = torch.randn(4, 20)
    centre = torch.zeros(20)
    assert kernels.usable(x, centre)
    assert not kernels.usable(x.requires_grad_(), centre)
    x = x.detach()
    assert not kernels.usable(x.t().contiguous().t(), centre)  # not contiguous
    assert not kernels.usable(x, centre.double())  # mixed dtypes
    assert not kernels.usable(x.half(), centre.half())
    assert not kernels.usable(torch.nn.Parameter(x), centre)
    with torch.no_grad():
        assert kernels.usable(torch.nn.Parameter(x), centre) is False  # only plain tensors
        assert kernels.usable(x.requires_grad_(), centre)  # nothing records a graph
    # under autograd the torch expression runs, and the gradient flows
    x = torch.randn(4, 20, requires_grad=True)
    scores = kernels.centred_linear(x, centre, torch.randn(3, 20), torch.zeros(3))
    scores.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('beta', [0.0, 'model', 0.3, math.inf])
@pytest.mark.parametrize('cluster', [None, 2])
def test_fused_kmeans_explainer_matches_torch_path(monkeypatch, digits, dtype, beta, cluster):
    X = digits + 1000.0  # far from the origin: the kernel centres on the fly, as the torch path does
    estimator = KMeans(n_clusters=10, n_init=2, random_state=0).fit(X)
    model = neuralize(estimator, X=X)
    beta = model.beta if beta == 'model' else beta
    Xd = X.astype(dtype)

    (fused, plain) = with_and_without_kernels(
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
        # in float32 both round differently; measured against float64, the kernel is no less accurate (for a
        # non-assigned cluster tiny margins amplify rounding in either path, see test_explain)
        exact = explain(model, X, cluster=cluster, beta=beta)
        error_fused = (np.abs(r_fused - exact) / row_scale).max()
        error_plain = (np.abs(r_plain - exact) / row_scale).max()
        assert error_fused <= 2 * error_plain + 1e-5


@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2 ** 16), beta=st.sampled_from([0.0, 0.5, math.inf]),
       fixed=st.booleans(), offset=st.sampled_from([0.0, 50.0]))
@example(shape=(1, 16, 2), dtype=torch.float32, seed=0, beta=0.5, fixed=False, offset=0.0)  # a single row
@example(shape=(3, 33, 19), dtype=torch.float64, seed=0, beta=math.inf, fixed=True, offset=50.0)
def test_fused_kernel_matches_the_torch_explainer_on_any_shape(shape, dtype, seed, beta, fixed, offset):
    rows, features, clusters = shape
    clusters = max(clusters, 2)
    x, mu, _, _ = random_problem(rows, features, clusters, torch.float64, seed)
    x, mu = x + offset, mu + offset  # offset: the kernel centres on the fly (explainer.centre is not None)
    explainer = make_explainer(mu, cluster=clusters - 1 if fixed else None, beta=beta).to(dtype)
    if offset:
        assert explainer.centre is not None
    x = x.to(dtype)
    with torch.no_grad():
        fused = explainer(x)
    assert kernels.usable(x, explainer.centres)
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


def test_kernels_refuse_what_does_not_fit(digits):
    """The kernels trust their shapes; the checks in front of them must hold (a wrong width once read past
    the end of the centres, a cluster index past K wrote past the scratch)."""
    estimator = KMeans(n_clusters=4, n_init=1, random_state=0).fit(digits)
    explainer = make_explainer(estimator)
    for x in (torch.zeros(3, 10, dtype=torch.float64), torch.zeros(2, 100, dtype=torch.float64),
              torch.zeros(64, dtype=torch.float64)):
        with pytest.raises(ValueError, match='64 features|2-d'):
            explainer(x)
    model = neuralize(estimator)
    from zennit_clusters.explain import CentroidExplainer
    for cluster in (4, -1, 10 ** 7):
        with pytest.raises(ValueError, match=r'cluster must be in \[0, 4\)'):
            CentroidExplainer(model, cluster, 1.0)
    x = torch.zeros(5, 8)
    with pytest.raises(ValueError, match=r'centre must have shape \(8,\)'):
        kernels.centred_linear(x, torch.zeros(1), torch.zeros(3, 8), torch.zeros(3))
    with pytest.raises(ValueError, match='x must be 2-d with 9 features'):
        kernels.centred_addcmul(torch.zeros(5, 3), torch.zeros(3, 9), torch.zeros(3, 9), x, torch.zeros(9))
    with pytest.raises(ValueError, match=r'cluster must be in \[0, 3\)'):
        kernels.flat_centroid_explain(x, None, torch.zeros(3, 8), 3, 1.0, 1e-7)


def test_a_centre_the_kernel_cannot_read_sends_the_work_to_torch(monkeypatch, digits):
    estimator = KMeans(n_clusters=4, n_init=1, random_state=0).fit(digits + 100.0)
    explainer = make_explainer(estimator)
    x = torch.from_numpy(digits[:50] + 100.0)
    with torch.no_grad():
        expected = explainer(x)
        centre = explainer.centre
        explainer.centre = torch.stack([centre, torch.zeros_like(centre)], 1)[:, 0]  # same values, stride 2
        assert not kernels.usable(explainer.centre)
        got = explainer(x)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(got[2], expected[2], rtol=1e-9, atol=1e-9)


def test_tensors_without_plain_memory_go_to_torch():
    x = torch.randn(6, 20)
    assert not kernels.usable(torch._neg_view(x))
    centre, weight, bias = torch.randn(20), torch.randn(3, 20), torch.randn(3)
    batched = torch.vmap(lambda row: kernels.centred_linear(row[None], centre, weight, bias)[0])(x)
    torch.testing.assert_close(batched, F.linear(x - centre, weight, bias))


def test_bisecting_kmeans_uses_the_two_kernels_and_matches_torch(monkeypatch, digits):
    estimator = BisectingKMeans(n_clusters=6, random_state=0).fit(digits)
    fused, plain = with_and_without_kernels(monkeypatch, lambda: explain(estimator, digits, return_logits=True))
    np.testing.assert_array_equal(fused[1], estimator.predict(digits))
    np.testing.assert_array_equal(fused[1], plain[1])
    np.testing.assert_allclose(fused[0], plain[0], rtol=1e-9, atol=1e-9 * np.abs(plain[0]).max())


# ------------------------------------------------------------------------------------------ explain(out=...)

@pytest.mark.parametrize('container', ['numpy', 'torch'])
@pytest.mark.parametrize('estimator_type', [KMeans, BisectingKMeans])
def test_explain_writes_into_out(digits, container, estimator_type):
    estimator = estimator_type(n_clusters=4, random_state=0).fit(digits)
    X = digits[:300].astype(np.float32)
    X = torch.from_numpy(X) if container == 'torch' else X
    expected = explain(estimator, X)
    out = np.full(X.shape, np.nan, np.float32) if container == 'numpy' else torch.full(X.shape, math.nan)
    result = explain(estimator, X, out=out, chunk_size=128)
    assert result is out
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))


def test_explain_out_with_a_pipeline_head(digits):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    pipeline = make_pipeline(StandardScaler(), KMeans(n_clusters=3, n_init=1, random_state=0)).fit(digits)
    out = np.empty_like(digits)
    assert explain(pipeline, digits, out=out) is out
    np.testing.assert_allclose(out, explain(pipeline, digits), rtol=0, atol=0)


@pytest.mark.parametrize('bad, message', [
    (lambda X: np.empty((X.shape[0], X.shape[1] + 1)), r'shape \(50, 64\).*got a ndarray of shape \(50, 65\)'),
    (lambda X: np.empty(X.shape, np.float32), r'dtype float64.*dtype float32'),
    (lambda X: np.empty(X.shape[::-1]).T, r'got a non-contiguous'),
    (lambda X: torch.empty(X.shape, dtype=torch.float64), r'numpy array.*got Tensor'),
    (lambda X: [[0.0] * 64] * 50, r'numpy array.*got list'),
])
def test_explain_rejects_an_out_that_cannot_hold_the_result(digits, bad, message):
    X = digits[:50]
    estimator = KMeans(n_clusters=3, n_init=1, random_state=0).fit(X)
    with pytest.raises((TypeError, ValueError), match=message):
        explain(estimator, X, out=bad(X))


def test_explain_out_may_be_x_itself_but_not_overlap_it(digits):
    estimator = KMeans(n_clusters=3, n_init=1, random_state=0).fit(digits)
    expected = explain(estimator, digits)
    X = digits.copy()
    assert explain(estimator, X, out=X) is X
    np.testing.assert_array_equal(X, expected)
    buffer = np.concatenate([digits, digits[:1]])
    with pytest.raises(ValueError, match='overlaps X'):
        explain(estimator, buffer[:-1], out=buffer[1:])


def test_explain_rejects_a_read_only_out_and_a_numpy_out_for_tensor_input(digits):
    X = digits[:50]
    estimator = KMeans(n_clusters=3, n_init=1, random_state=0).fit(X)
    read_only = np.empty_like(X)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match='writeable'):
        explain(estimator, X, out=read_only)
    with pytest.raises(TypeError, match='tensor X gives tensor relevance'):
        explain(estimator, torch.from_numpy(X), out=np.empty_like(X))
