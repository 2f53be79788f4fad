"""A face the camera clipped almost whole (under SKIN_SHARE of its inner face unclipped) under ``relight``: its own
skin colour is lost, and the inner face's mean it took - the clip's white with its blue cut - darkened into a flat,
pale grey-green patch (celeba_id200 175/041913: a near-white face, hands on its cheeks, black background). It takes the
nearby skin's colour (the face's border, its neck, its hands), else a warm skin tone."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import CELEBA_ID200, need

from genaug.faces.light import to_linear
from genaug.faces.relit_colour import WARM_SKIN, _skin_colour

torch.set_num_threads(1)

CLIPPED, SKIN = (252, 250, 228), (200, 150, 120)  # sRGB: 041913's face (its blue cut), its hands


def _framed(border: tuple[int, int, int]) -> torch.Tensor:
    """64 x 64 of ``border`` around a 32 x 32 CLIPPED face, as [-1, 1]."""
    x = torch.tensor(border, dtype=torch.float32)[None, :, None, None].repeat(1, 1, 64, 64)
    x[:, :, 16:48, 16:48] = torch.tensor(CLIPPED, dtype=torch.float32)[:, None, None]
    return x / 127.5 - 1


def _chroma(srgb: tuple[int, int, int]) -> torch.Tensor:
    lin = (torch.tensor(srgb, dtype=torch.float32) / 255) ** 2.2
    return lin / (0.299 * lin[0] + 0.587 * lin[1] + 0.114 * lin[2])


@pytest.mark.parametrize("border, expected", [(SKIN, SKIN), ((0, 0, 0), WARM_SKIN), ((90, 110, 130), WARM_SKIN)])
def test_a_face_clipped_whole_takes_the_skin_around_it_else_a_warm_skin(border, expected):
    """Skin around the face: its colour (was the face's mean, 1.0, 1.01, 0.83); black or blue-grey around: WARM_SKIN."""
    x, weight = _framed(border), torch.zeros(1, 64, 64)
    weight[:, 20:44, 20:44] = 1
    colour = _skin_colour(to_linear(x), x, weight)[0][0]
    assert torch.allclose(colour, _chroma(expected), atol=0.01)


def _hsv(t: torch.Tensor) -> torch.Tensor:
    """(3, H, W): hue (degrees, -180 to 180), saturation, value of an sRGB (3, H, W) in [0, 1]."""
    top, low = t.amax(0), t.amin(0)
    r, g, b = t
    d = (top - low).clamp(min=1e-6)
    hue = torch.where(top == r, ((g - b) / d) % 6, torch.where(top == g, (b - r) / d + 2, (r - g) / d + 4)) * 60
    return torch.stack([(hue + 180) % 360 - 180, (top - low) / top.clamp(min=1e-6), top])


@pytest.mark.parametrize("value", [-60.0, 60.0])
def test_041913_darkened_clipped_face_takes_its_skins_colour(value):
    """The darkened clipped face's median hue and saturation against the photo's own least-clipped skin (its face's
    border, its hands: hue 35, saturation 0.27): before hue 51, saturation 0.09-0.10 (a pale grey-green)."""
    pytest.importorskip("dlib")
    from PIL import Image

    from genaug.faces.controls import IMAGE_CONTROLS
    from genaug.faces.landmarks import face_landmarks
    from genaug.faces.light import _surface

    a = np.asarray(Image.open(need(CELEBA_ID200) / "175" / "041913.jpg").convert("RGB"))
    x = torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    lm = face_landmarks(x)
    face = _surface(x, lm, "auto").mask[0] > 0.5
    src = (x[0] + 1) / 2
    out = ((IMAGE_CONTROLS["light"].apply(x, value, lm)[0] + 1) * 127.5).round().clamp(0, 255) / 255
    hs, ho = _hsv(src), _hsv(out)
    skin = face & (hs[2] > 0.35) & (hs[2] < 0.8) & (hs[1] > 0.08) & (hs[0] > -20) & (hs[0] < 50)
    luma = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    patch = face & (hs[2] > 0.85) & ((out * luma).sum(0) < 0.85 * (src * luma).sum(0))
    assert int(patch.sum()) > 40 and int(skin.sum()) > 20
    hue, sat = float(hs[0][skin].median()), float(hs[1][skin].median())
    assert abs(float(ho[0][patch].median()) - hue) < 10
    assert float(ho[1][patch].median()) > 0.75 * sat
