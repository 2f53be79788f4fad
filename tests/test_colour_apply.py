"""The colour transform applied by elementwise passes (:func:`genaug.engine.colour.apply_colour01`) is the per-row
channel matrix (gains on the diagonal, the pull to the luminance in every column) times the pixels plus the offset
weighted by :func:`black_weight` of each pixel's luminance, clamped."""
import pytest
import torch

from genaug.engine.colour import apply_colour01, black_weight


def _reference(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    n, c = x.shape[:2]
    flat = x.double().reshape(n, c, -1)
    t = t.double()
    m = torch.diag_embed(t[..., 0]) + t[..., 1:2] / c  # a_i [i = j] + k_i / C
    lum = flat.mean(1, keepdim=True)
    return (m @ flat + t[..., 2:3] * black_weight(lum)).clamp(0, 1).reshape(x.shape)


@pytest.mark.parametrize("c", [3, 1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_apply_colour01_is_the_channel_matrix_and_the_weighted_offset(c, dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, c, 20, 24, generator=g, dtype=dtype)
    x[:, :, :4] *= 0.1  # dark pixels: the offset fades out towards black
    t = torch.randn(5, c, 3, generator=g, dtype=dtype) * 0.3 + torch.tensor([1.0, 0.0, 0.0], dtype=dtype)
    want = _reference(x, t)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert torch.allclose(apply_colour01(x, t).double(), want, atol=tol, rtol=0)
    out, work = torch.empty_like(x), {}
    for _ in range(2):  # into a given buffer, with work buffers kept across calls
        assert apply_colour01(x, t, out=out, work=work) is out
        assert torch.allclose(out.double(), want, atol=tol, rtol=0)
