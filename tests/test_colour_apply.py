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


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_apply_colour01_in_cache_sized_blocks_is_the_same_bytes(monkeypatch, layout):
    """A batch larger than one cache-sized block (``CPU_BLOCK_BYTES``, made small here) is recoloured block by block,
    with the same result, bit for bit, as in one sweep - into ``out`` or a new tensor, any batch size."""
    import genaug.engine.colour as colour

    g = torch.Generator().manual_seed(1)
    x = torch.rand(11, 3, 8, 6, generator=g).contiguous(memory_format=layout)
    t = torch.randn(11, 3, 3, generator=g) * 0.3 + torch.tensor([1.0, 0.0, 0.0])
    whole = apply_colour01(x, t)
    assert torch.allclose(whole.double(), _reference(x, t), atol=1e-6, rtol=0)
    monkeypatch.setattr(colour, "CPU_BLOCK_BYTES", 4 * 3 * 8 * 6 * 4)  # 4 rows a block: 3 blocks, the last of 3 rows
    calls = []
    inner = colour.apply_colour01
    monkeypatch.setattr(colour, "apply_colour01", lambda *a, **k: calls.append(len(a[0])) or inner(*a, **k))
    assert torch.equal(colour.apply_colour01(x, t), whole)
    assert calls == [11, 4, 4, 3]
    out, work = torch.empty_like(x), {}
    assert colour.apply_colour01(x, t, out=out, work=work) is out and torch.equal(out, whole)
    assert torch.equal(colour.apply_colour01(x[:3], t[:3], work=work), whole[:3])  # under one block: one sweep
