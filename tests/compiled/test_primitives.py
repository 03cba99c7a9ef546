"""The compiled CPU primitives against the torch expressions they replace, and when they may run."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, strategies as st

from zennit_clusters import compiled, make_explainer
from zennit_clusters.families.centroids import row_step
from compiled_problems import dtypes, random_problem, shapes


def test_the_extensions_are_built():
    """The compiled code is optional for an install without a C compiler, but our builds must have it: without
    it every k-means explanation silently runs 2-3x slower."""
    assert compiled._cpu is not None, 'zennit_clusters.compiled._cpu did not build (pip install -e . needs a C compiler)'
    assert row_step._row_step is not None, 'the k-means row step did not build (pip install -e . needs a C compiler)'
    assert compiled.available() and row_step.available()


def test_the_old_switch_still_turns_the_compiled_code_off(monkeypatch):
    """ZENNIT_CLUSTERS_NO_KERNELS, the name of releases before 0.2, keeps working beside the new name."""
    assert compiled.available()
    monkeypatch.setenv('ZENNIT_CLUSTERS_NO_KERNELS', '1')
    assert not compiled.available() and not row_step.available()


def test_torch_only_is_an_explicit_mode_for_tracing():
    """The exporter traces the explainers inside torch_only(): no call into compiled code may end up in a graph,
    whatever the tensors look like; the mode is per thread and ends with the block."""
    import threading
    x, origin = torch.randn(4, 20), torch.zeros(20)
    assert compiled.usable(x, origin)
    with compiled.torch_only():
        assert not compiled.usable(x, origin)
        seen = []
        thread = threading.Thread(target=lambda: seen.append(compiled.usable(x, origin)))
        thread.start()
        thread.join()
        assert seen == [True]
        with compiled.torch_only():
            pass
        assert not compiled.usable(x, origin)  # a nested block does not end the outer one
    assert compiled.usable(x, origin)


@given(shape=shapes, dtype=dtypes, seed=st.integers(0, 2 ** 16))
@example(shape=(3, 64, 8), dtype=torch.float32, seed=0)
@example(shape=(5, 17, 9), dtype=torch.float64, seed=1)
def test_centred_linear_matches_torch(shape, dtype, seed):
    rows, features, centres = shape
    x, mu, centre, _ = random_problem(rows, features, centres, dtype, seed)
    weight, bias = 2 * mu, -(mu * mu).sum(1)
    fused = compiled.centred_linear(x, centre, weight, bias)
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
    fused = compiled.centred_addcmul(weights, mu * mu, mu, x, centre, value=-2.0, out=out)
    x64 = x.double() - (0 if centre is None else centre.double())
    expected = weights.double() @ (mu * mu).double() - 2 * x64 * (weights.double() @ mu.double())
    tolerance = 1e-4 if dtype == torch.float32 else 1e-12
    assert fused.dtype == dtype and fused.shape == (rows, features)
    if into:
        assert fused is out
    torch.testing.assert_close(fused.double(), expected, rtol=tolerance, atol=tolerance * centres)


@pytest.mark.parametrize('instruction_set', ['avx512', 'avx2', 'generic'])
def test_every_instruction_set_matches_torch(monkeypatch, instruction_set):
    """Both extensions carry their code for AVX-512, AVX2 and plain C (vectors of 64, 32 and 16 bytes) and runs
    the widest the CPU has; each one, where this CPU runs it, against the torch expressions."""
    try:
        compiled.instruction_set(instruction_set)
        row_step.instruction_set(instruction_set)
    except ValueError as error:
        pytest.skip(str(error))
    try:
        for rows, features, clusters in [(7, 100, 10), (1, 3, 2), (64, 784, 9)]:
            x, mu, centre, weights = random_problem(rows, features, clusters, torch.float64, rows)
            for dtype, tolerance in ((torch.float32, 1e-4), (torch.float64, 1e-11)):
                x_, mu_, centre_, weights_ = (t.to(dtype) for t in (x, mu, centre, weights))
                linear = compiled.centred_linear(x_, centre_, 2 * mu_, -(mu_ * mu_).sum(1))
                torch.testing.assert_close(linear.double(), F.linear(x - centre, 2 * mu, -(mu * mu).sum(1)),
                                           rtol=tolerance, atol=tolerance * features)
                combined = compiled.centred_addcmul(weights_, mu_ * mu_, mu_, x_, centre_, value=-2.0)
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
        compiled.instruction_set('best')
        row_step.instruction_set('best')
    for switch in (compiled.instruction_set, row_step.instruction_set):
        with pytest.raises(ValueError, match='not available'):
            switch('sse9')


def test_compiled_code_steps_aside_for_autograd_and_other_dtypes():
    x = torch.randn(4, 20)
    centre = torch.zeros(20)
    assert compiled.usable(x, centre)
    assert not compiled.usable(x.requires_grad_(), centre)
    x = x.detach()
    assert not compiled.usable(x.t().contiguous().t(), centre)  # not contiguous
    assert not compiled.usable(x, centre.double())  # mixed dtypes
    assert not compiled.usable(x.half(), centre.half())
    assert not compiled.usable(torch.nn.Parameter(x), centre)
    with torch.no_grad():
        assert compiled.usable(torch.nn.Parameter(x), centre) is False  # only plain tensors
        assert compiled.usable(x.requires_grad_(), centre)  # nothing records a graph
    # under autograd the torch expression runs, and the gradient flows
    x = torch.randn(4, 20, requires_grad=True)
    scores = compiled.centred_linear(x, centre, torch.randn(3, 20), torch.zeros(3))
    scores.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_tensors_without_plain_memory_go_to_torch():
    x = torch.randn(6, 20)
    assert not compiled.usable(torch._neg_view(x))
    centre, weight, bias = torch.randn(20), torch.randn(3, 20), torch.randn(3)
    batched = torch.vmap(lambda row: compiled.centred_linear(row[None], centre, weight, bias)[0])(x)
    torch.testing.assert_close(batched, F.linear(x - centre, weight, bias))
