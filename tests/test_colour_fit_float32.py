"""Colour edits on a device without float64 (MPS): the colour fit (:func:`genaug.engine.colour.fit_regressors`) runs in
float32 there (:func:`genaug.engine.colour.fit_dtype`) - the Gram product of the samples less their means - and its
transforms stay close to the float64 fit's. Checked on the CPU with the fit's dtype set as on MPS and every float64
operation on the device's side forbidden (the edits are drawn on the host, as on any device)."""
import collections

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import genaug.engine.colour as colour
from conftest import batch_aug


class _Float64Ops(TorchDispatchMode):
    """Counts the operations that take or make a float64 tensor."""

    def __init__(self):
        super().__init__()
        self.seen = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(isinstance(t, torch.Tensor) and t.dtype == torch.float64 for t in tree_flatten((args, kwargs, out))[0]):
            self.seen[str(func)] += 1
        return out


def _as_on_mps(monkeypatch):
    monkeypatch.setattr(colour, "fit_dtype", lambda device: torch.float32)


def _photos(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth photos in model units and a colour edit of them (a gain, a cast), with a near-flat row (ill-conditioned)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=(64, 64), mode="bilinear")
    base[0] = 0.55 + 0.002 * torch.rand(3, 64, 64, generator=g)  # one colour, little texture
    edited = (base * torch.tensor([1.1, 0.95, 0.9]).view(1, 3, 1, 1) + 0.03 * torch.rand(n, 3, 1, 1, generator=g)).clamp(0, 1)
    return base * 2 - 1, edited * 2 - 1


def test_fit_dtype_is_float64_where_the_device_has_it():
    assert colour.fit_dtype(torch.device("cpu")) == torch.float64
    assert colour.fit_dtype(torch.device("mps")) == torch.float32


@pytest.mark.parametrize("refit", [False, True])
def test_the_float32_fit_is_close_to_the_float64_fit(monkeypatch, refit):
    src, dst = _photos(12)
    want = colour.fit_colour(src, dst, refit=refit)
    _as_on_mps(monkeypatch)
    watch = _Float64Ops()
    with watch:
        got = colour.fit_colour(src, dst, refit=refit)
    assert not watch.seen, watch.seen
    assert got.dtype == torch.float32
    assert (got[1:].double() - want[1:].double()).abs().max() < 2e-5
    # what a photo shows, in 8-bit levels: a textured photo within 1/20 of a level; a photo of about one colour (the fit
    # nearly ill-posed: its gain, pull and offset trade off, solved in float32 by the adjugate) within 2 levels
    levels = (colour.apply_colour(src, got) - colour.apply_colour(src, want)).abs().amax((1, 2, 3)) * 127.5
    assert levels[1:].max() < 0.05 and levels[0] < 2, levels


def test_batch_colour_edits_run_without_float64_on_the_device(monkeypatch):
    x = _photos(17, seed=1)[0][1:].add(1).div(2)  # textured photos
    outs = {}
    for fit in ("float64", "float32"):
        if fit == "float32":
            _as_on_mps(monkeypatch)
        aug = batch_aug(p=1.0, seed=0, codes=["tone", "shade", "warmth"], check_values=False)
        aug(x), aug(x, index=torch.arange(16))  # inverted: the latents stored
        params = aug.draw(16)  # (drawn on the host from the CPU generator, in float64, as on any device)
        watch = _Float64Ops()
        with watch:
            outs[fit] = [aug(x, params=params), aug(x, index=torch.arange(16), params=params),
                         aug((x * 255).round().to(torch.uint8), params=params)]
        if fit == "float32":
            assert not watch.seen, watch.seen
        else:  # the float64 fit: the check sees it
            assert watch.seen
    for a, b in zip(outs["float64"], outs["float32"]):
        assert (a.double() - b.double()).abs().max() <= (1.0 if a.dtype == torch.uint8 else 0.1 / 255)
