"""``keep_hue``'s per-face arithmetic (issue #32): on the host in numpy, a fixed handful of tensor operations per batch;
on a device the same text in torch. Both give the float64 rule's transforms to float32 rounding."""
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import genaug.engine.colour as colour
from genaug.engine.colour import keep_hue


def _case(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A grid of coloured faces (image scale), transforms near the identity that move their colour, white-balance rows."""
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n, 3, 16, 16, generator=g) * torch.rand(n, 3, 1, 1, generator=g)
    t = torch.zeros(n, 3, 3)
    t[..., 0] = 1 + 0.6 * (torch.rand(n, 3, generator=g) - 0.5)
    t[..., 1] = 0.3 * (torch.rand(n, 3, generator=g) - 0.5)
    t[..., 2] = 0.2 * (torch.rand(n, 3, generator=g) - 0.5)
    return s, t, (torch.rand(n, generator=g) < 0.3).float()


def _on_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(colour, "_on_host", lambda t: False)  # the accelerator's text, run on the CPU


@pytest.mark.parametrize("free", [False, True])
def test_host_and_device_texts_match_the_float64_rule(monkeypatch, free):
    s, t, rows = _case(64)
    rows = rows if free else None
    host = keep_hue(s, t.clone(), rows)
    _on_device(monkeypatch)
    device = keep_hue(s, t.clone(), rows)
    reference = keep_hue(s.double(), t.double(), None if rows is None else rows.double())
    assert (host.double() - t.double()).abs().max() > 0.1  # the rule acts on these faces
    for got in (host, device):
        assert got.dtype == torch.float32
        assert torch.allclose(got.double(), reference, rtol=0, atol=2e-6), (got.double() - reference).abs().max()


def test_float16_transforms_are_changed_in_place_within_their_rounding():
    s, t, rows = _case(16, seed=1)
    half = t.half()
    out = keep_hue(s.half(), half, rows)
    reference = keep_hue(s.double(), t.double(), rows.double())
    assert out is half and torch.allclose(out.double(), reference, rtol=0, atol=4e-3)


def test_host_rule_takes_a_few_tensor_operations_whatever_the_batch():
    """The per-face arithmetic runs in numpy on the host: the tensor operations (each ~5 us of dispatch on a CPU) are
    the grid's reductions alone, the same at batch 4 and 64 (126 before, one or more per arithmetic step)."""
    counts = {}
    for n in (4, 64):
        s, t, rows = _case(n)
        keep_hue(s, t.clone(), rows)  # (its 0-dim constants made once)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            keep_hue(s, t, rows)
        counts[n] = sum(e.name.startswith("aten::") for e in prof.events())
    assert counts[4] == counts[64] <= 24, counts


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_faces_get_the_float32_rule_to_one_rounding(dtype):
    # the face's means were summed in the photo's dtype: in bfloat16 a sum of 64 pixels keeps ~3 digits, and a face of
    # little chroma lost it - transforms up to 0.9 off the float32 rule's on the same (rounded) inputs (float16: 0.07)
    s, t, rows = _case(1024, seed=3)
    s, t, rows = s.to(dtype), t.to(dtype), rows.to(dtype)
    out = keep_hue(s, t.clone(), rows).double()
    want = keep_hue(s.float(), t.float(), rows.float()).to(dtype).double()  # float32 arithmetic, rounded once
    step = 2.0 ** -7 if dtype == torch.bfloat16 else 2.0 ** -10  # one rounding step at 1-2 (gains here reach 4: 4 steps)
    assert (out - want).abs().max() <= 4 * step, (out - want).abs().max()
