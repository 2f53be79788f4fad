"""A white balance's gains (:func:`genaug.engine.colour.keep_hue`, rows of ``free``) read each channel's products with
itself, the luminance and the offset weight over the grid: the batch path's fit (:func:`genaug.engine.colour.fit_regressors`)
takes them off its Gram matrix (issue #32: numpy's reductions over the grid were ~10 us per face), the per-image path
computes them from the grid. Both give the same transforms to float32 rounding, on the host (numpy) and a device's text."""
import pytest
import torch

import genaug.engine.colour as colour
from genaug.engine.colour import fit_regressors, keep_hue
from genaug.engine.workspace import workspace


def _fit_buffer(n: int, seed: int = 0) -> torch.Tensor:
    """The fit's work buffer (N, 2 C + 2, 16, 16): coloured grids and a colour edit of them, on the image scale."""
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n, 3, 16, 16, generator=g) * (0.3 + torch.rand(n, 3, 1, 1, generator=g))
    d = (s * (0.8 + 0.4 * torch.rand(n, 3, 1, 1, generator=g)) + 0.05 * torch.rand(n, 3, 1, 1, generator=g)).clamp(0, 1)
    f = torch.zeros(n, 8, 16, 16)
    f[:, :3], f[:, 5:] = s, d
    return f


@pytest.mark.parametrize("host", [True, False])
def test_gains_from_the_gram_match_the_grid(monkeypatch, host):
    if not host:
        monkeypatch.setattr(colour, "_on_host", lambda t: False)  # the accelerator's text, run on the CPU
    f = _fit_buffer(32)
    free = (torch.arange(32) % 3 == 0).float()
    got = fit_regressors(f.clone(), True, {}, free).clone()
    grid_hue = keep_hue
    # (the face means the fit hands it too: also read off the grid; r32's fifth argument made this lambda a TypeError)
    monkeypatch.setattr(colour, "keep_hue", lambda s, t, free=None, moments=None, means=None: grid_hue(s, t, free))
    want = fit_regressors(f.clone(), True, {}, free)
    assert (got - want).abs().max() < 2e-6, (got - want).abs().max()


def test_moments_are_the_grid_products():
    f = _fit_buffer(8, seed=1)
    work = {}
    fit_regressors(f, True, work, torch.ones(8))
    moments = workspace(work, "moments", (8, 9), torch.float64, f.device).view(8, 3, 3)
    s = f[:, :3].double()
    lum = s.mean(1, keepdim=True)
    w = (lum / colour.BLACK_RAMP).clamp(0, 1)
    want = torch.stack([(s * r).sum((2, 3)) for r in (s, lum, w)], -1)
    assert torch.allclose(moments, want, rtol=1e-6, atol=0), (moments - want).abs().max()
