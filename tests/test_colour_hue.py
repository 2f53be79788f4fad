"""A colour edit keeps a colourful face's hue: ``tone`` near +1 ("pale, bright") turned dark brown skin ashy grey-blue
(the fitted transform desaturated it past grey); light faces are left as they were."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import UTKFACE, need
from genaug.engine.colour import apply_colour, edit_transform, fit_colour

torch.set_num_threads(1)
DARK = ["01567", "00693", "01092", "02316"]  # dark faces tone 0.8-1.0 turned grey-blue or lavender
LIGHT = ["04973", "04068", "00301", "00602"]  # light faces: the transform as fitted


def _skin(img: np.ndarray) -> np.ndarray:
    """The inner face's pixels that are not black, (K, 3) levels."""
    inner = img[32:96, 40:88].reshape(-1, 3).astype(np.float64)
    return inner[inner.mean(1) > 20]


def _tone(img: np.ndarray, value: float) -> np.ndarray:
    aug = A.Compose([genaug.GenerativeFaceAug(p=1, codes=["tone"], bounds={"tone": (value, value)})], seed=0)
    return aug(image=img)["image"]


@pytest.mark.parametrize("name", DARK)
def test_a_pale_edit_of_dark_skin_keeps_it_brown(name):
    img = np.asarray(Image.open(need(UTKFACE) / "images" / f"{name}.jpg").convert("RGB"))
    src, out = _skin(img), _skin(_tone(img, 1.0))
    blue = (out[:, 2] > out[:, 1]).mean() - (src[:, 2] > src[:, 1]).mean()  # skin turned blue above green
    assert blue < 0.35  # was 0.46-1.0: grey-blue (now 0-0.32)
    own, new = src.mean(0) - src.mean(), out.mean(0) - out.mean()
    assert own @ new / (own @ own) > 0.35  # its chroma kept (now 0.43-0.66)
    assert out.mean() > src.mean() + 10  # and still paler, brighter


def test_light_faces_take_the_fitted_transform_unchanged():
    for name in LIGHT:
        img = np.asarray(Image.open(need(UTKFACE) / "images" / f"{name}.jpg").convert("RGB"))
        x = torch.from_numpy(np.asarray(Image.fromarray(img).resize((64, 64)), np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        out = _tone(img, 1.0)
        dst = torch.from_numpy(np.asarray(Image.fromarray(out).resize((64, 64)), np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        assert torch.equal(edit_transform(x, dst), fit_colour(x, dst))


def test_grey_pixels_are_not_changed_by_the_hue_rule():
    g = torch.Generator().manual_seed(0)
    brown = torch.tensor([0.45, 0.05, -0.25])[None, :, None, None] + 0.05 * torch.randn(1, 3, 32, 32, generator=g)
    x = brown.clone()
    x[..., :4] = torch.linspace(-0.8, 0.8, 32)[None, None, :, None]  # a grey strip at the edge
    cast = torch.tensor([[[0.2, 0.8, 0.0], [0.3, 0.7, 0.05], [-0.6, 1.6, 0.05]]])  # blue's gain below 0: past grey
    t = edit_transform(x, apply_colour(x, cast))
    out = apply_colour(x, t)
    fitted = apply_colour(x, fit_colour(x, apply_colour(x, cast)))
    assert torch.allclose(out[..., :4], fitted[..., :4], atol=1e-5)  # greys as the fitted transform left them
    assert fitted[..., 8:24, 8:24].mean((2, 3))[0, 2] > fitted[..., 8:24, 8:24].mean((2, 3))[0, 1]  # that one: blue
    centre = out[..., 8:24, 8:24].mean((2, 3))[0]
    assert centre[0] > centre[1] > centre[2]  # brown, not blue


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_the_hue_rule_keeps_flat_photos_finite_in_half_precision(dtype):
    # keep_hue worked in the transform's dtype: in float16 its 1e-12 floors are 0, so a black, grey or white photo
    # (no chroma: 0 / 0) turned fit_colour's finite transform into NaN, every pixel NaN after apply_colour
    g = torch.Generator().manual_seed(0)
    grey = (torch.rand(1, 1, 32, 32, generator=g) * 2 - 1).expand(1, 3, 32, 32)
    brown = (torch.tensor([0.45, 0.05, -0.25])[None, :, None, None] + 0.05 * torch.randn(1, 3, 32, 32, generator=g)).clamp(-1, 1)
    for x in (-torch.ones(1, 3, 32, 32), torch.ones(1, 3, 32, 32), grey, brown):
        x = x.to(dtype)
        t = edit_transform(x, (x * 0.5 + 0.1).clamp(-1, 1))
        assert t.dtype == dtype and torch.isfinite(t).all(), t
        assert torch.allclose(t.float(), edit_transform(x.float(), (x.float() * 0.5 + 0.1).clamp(-1, 1)), atol=0.05)
