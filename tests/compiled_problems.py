"""Random problems and hypothesis strategies shared by the tests of compiled code against torch."""
import torch
from hypothesis import strategies as st

# shapes around the vector width (16 float32, 8 float64), the 4-vector step and the block of 8 centres
shapes = st.tuples(st.integers(1, 40), st.integers(1, 150), st.integers(1, 19))

dtypes = st.sampled_from([torch.float32, torch.float64])


def random_problem(rows, features, centres, dtype, seed, offset=0.0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, features, generator=generator, dtype=torch.float64) + offset
    mu = torch.randn(centres, features, generator=generator, dtype=torch.float64)
    centre = mu.mean(0) + offset
    weights = torch.randn(rows, centres, generator=generator, dtype=torch.float64)
    weights -= weights.mean(1, keepdim=True)
    return [t.to(dtype) for t in (x, mu, centre, weights)]
