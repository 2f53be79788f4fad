"""A darker ``tone`` of a pale face is a darker skin of its hue: ``tone`` -0.8 drew a warm cast over pale faces, and their
skin (and the photo's whites) came out pink or orange - chroma over luminance 3.1-3.3 times its own on utkface 00633,
03858, 01145, where faces of other tones gain at most 1.5 times."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import UTKFACE, need
from genaug.engine.colour import GAINED_SATURATION, apply_colour, edit_transform

torch.set_num_threads(1)


def _colour(x: torch.Tensor) -> tuple[float, float]:
    """The hue (degrees) and chroma over luminance of a mean colour (3,)."""
    c = x - x.mean()
    hue = torch.rad2deg(torch.atan2(3**0.5 / 2 * (c[1] - c[2]), c[0] - (c[1] + c[2]) / 2))
    return float(hue), float(c.norm() / x.mean())


def _pale_face_with_a_grey_strip() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.tensor([0.72, 0.56, 0.52])[None, :, None, None] + 0.03 * torch.randn(1, 3, 32, 32, generator=g)
    x[..., :4] = 0.6  # a light grey wall at the edge
    return x


def test_a_warm_cast_on_a_pale_face_is_scaled_down_to_a_darker_skin_of_its_hue():
    x = _pale_face_with_a_grey_strip()
    cast = torch.tensor([[[0.98, 0.0, -0.03], [0.92, 0.0, -0.11], [0.86, 0.0, -0.12]]])  # darker, and orange
    fitted, out = apply_colour(x, cast), apply_colour(x, edit_transform(x, apply_colour(x, cast)))
    (hue, sat), (cast_hue, cast_sat), (new_hue, new_sat) = (_colour(y[0, :, 8:24, 8:24].mean((1, 2)) / 2 + 0.5) for y in (x, fitted, out))
    assert cast_sat / sat > 2.5  # the cast alone: pink-orange skin
    assert new_sat / sat < GAINED_SATURATION + 0.05  # was 3.3
    assert abs(new_hue - hue) < 5
    assert out[0, :, 8:24, 8:24].mean() < x[0, :, 8:24, 8:24].mean() - 0.1  # still darker
    wall = out[0, :, :, :4].mean((1, 2))
    assert wall[0] >= wall[2] - 1e-3 and wall[0] - wall[2] < (fitted[0, 0, :, :4] - fitted[0, 2, :, :4]).mean() / 3  # less of the cast, not its opposite


@pytest.mark.parametrize("name", ["00633", "03858", "01145"])
def test_a_darker_tone_keeps_a_pale_face_its_hue(name):
    img = np.asarray(Image.open(need(UTKFACE) / "images" / f"{name}.jpg").convert("RGB"))
    out = A.Compose([genaug.GenerativeFaceAug(p=1, codes=["tone"], bounds={"tone": (-0.8, -0.8)})], seed=0)(image=img)["image"]
    inner = img[32:96, 40:88].reshape(-1, 3).astype(np.float64)
    skin = inner.mean(1) > 20
    (hue, sat), (new_hue, new_sat) = (_colour(torch.from_numpy(y[32:96, 40:88].reshape(-1, 3)[skin].astype(np.float64).mean(0)))
                                      for y in (img, out))
    assert new_sat / sat < 1.6  # was 3.1-3.3: pink (00633), orange (03858, 01145); now 1.3-1.5
    assert abs((new_hue - hue + 180) % 360 - 180) < 6  # now 1-5 degrees
    assert out[32:96, 40:88].mean() < img[32:96, 40:88].mean() - 20  # darker
