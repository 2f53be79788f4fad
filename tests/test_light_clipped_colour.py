"""The colour a darkened clipped highlight takes under ``relight``: on a face the camera clipped almost whole, its few
unclipped pixels (lips, eyes, nostrils) are no skin colour - an overexposed face darkened turned saturated pink - nor is
its mean (grey, or the clip's white with its blue cut: grey-green; tests/test_light_clipped_face.py)."""
from __future__ import annotations

import numpy as np
import torch
from conftest import UTKFACE, need, needs_dlib, utk_photo

from genaug.faces.landmarks import face_landmarks
from genaug.faces.light import _surface, relight, to_linear
from genaug.faces.relit_colour import WARM_SKIN, _luminance, _norm, _skin_colour, _unclip

torch.set_num_threads(1)


def saturation(lin: torch.Tensor) -> torch.Tensor:
    """(N, H, W): how far each linear colour at unit luminance is from grey."""
    return _norm(lin / _luminance(lin).clamp(min=1e-6)[:, None] - 1)[:, 0]


def test_a_face_clipped_almost_whole_with_no_skin_around_takes_a_warm_skin_not_its_lips_pink():
    x = torch.ones(1, 3, 32, 32)  # clipped white
    x[:, :, 20:22, 12:20] = torch.tensor([0.5, -0.2, -0.1])[:, None, None]  # a pink mouth: 16 of 1024 pixels unclipped
    colour, *_ = _skin_colour(to_linear(x), x, torch.ones(1, 32, 32))
    warm = to_linear(torch.tensor(WARM_SKIN, dtype=torch.float32)[None, :, None, None] / 127.5 - 1)
    assert torch.allclose(colour, (warm / _luminance(warm)[:, None])[:, :, 0, 0], atol=1e-3)  # was 1.2 off: the pink


def test_a_face_mostly_unclipped_keeps_its_brightest_skins_colour_bit_for_bit():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.6 - 0.3
    x[:, :, :12] = 1.0  # 37 % clipped
    lin, weight = to_linear(x), torch.ones(1, 32, 32)
    colour, *_ = _skin_colour(lin, x, weight)
    peak = ((x + 1) / 2).amax(1)
    w = (peak < 0.85).float() * peak ** 4
    mean = (lin / _luminance(lin)[:, None] * w[:, None]).sum((2, 3)) / w.sum()
    assert torch.allclose(colour, mean, rtol=1e-5)



def test_a_darkened_highlight_brighter_than_the_skin_takes_its_colour_paler_as_the_skin_pales_with_light():
    x = torch.tensor([0.2, -0.3, -0.5])[None, :, None, None].repeat(1, 1, 16, 16)  # skin, unclipped
    x[:, :, 6:10, 6:10] = 1.0  # a clipped highlight, far brighter than the skin
    lin, ratio, weight = to_linear(x) * 0.5, torch.full((1, 16, 16), 0.5), torch.ones(1, 16, 16)  # darkened to half
    spot = (slice(None), slice(6, 10), slice(6, 10))
    skin_colour = saturation(_unclip(lin, ratio, x, weight))[spot]  # no slope given: the skin's own saturation
    paler = _unclip(lin, ratio, x, weight, slope=torch.tensor([-1.0]))  # skin pales as its light grows
    assert float(saturation(paler)[spot].max()) < 0.5 * float(skin_colour.min())
    assert torch.allclose(_luminance(paler)[spot], _luminance(lin)[spot], rtol=1e-4)

@needs_dlib
def test_an_overexposed_face_darkened_takes_a_skin_colour_not_pink_nor_grey():
    """utkface_128 00010 at 1.35 x^0.45 (99 % of its inner face clipped, no skin around it): the half-face the light
    darkened came out saturated pink (median saturation 0.38, the mouth's), then grey (sRGB saturation 0.02), now a
    light warm skin (WARM_SKIN: hue 21 degrees, saturation 0.26)."""
    a = utk_photo(need(UTKFACE), 10)
    a = np.clip(255 * 1.35 * (a / 255.0) ** 0.45, 0, 255).astype(np.float32)
    x = torch.from_numpy(a).permute(2, 0, 1)[None] / 127.5 - 1
    lm = face_landmarks(x)
    out = relight(x, -63.8, 15.0, 0.8, lm)
    lin, relit = to_linear(x), to_linear(out)
    darker = (_surface(x, lm, "auto").fit_weight > 0) & (_luminance(relit) < 0.8 * _luminance(lin))
    darker &= ((x + 1) / 2).amax(1) > 0.95  # clipped
    assert int(darker.sum()) > 1000
    rgb = (out[0] + 1) / 2
    top, low = rgb.amax(0), rgb.amin(0)
    hue = 60 * (rgb[1] - rgb[2]) / (rgb[0] - low).clamp(min=1e-6)  # sRGB hue, where red is the top channel
    assert bool((rgb[0] >= top)[darker[0]].all())
    assert 10 < float(hue[darker[0]].median()) < 35
    assert 0.15 < float(((top - low) / top)[darker[0]].median()) < 0.35


@needs_dlib
def test_darkened_highlights_are_as_pale_as_the_photos_skin_of_their_brightness():
    """utkface_128 00080 (bright, its cheeks and forehead clipped): lit from the other side, the darkened highlights
    took the skin colour at the saturation of the skin's shadows - orange patches (median 0.77 at luminance 0.55,
    where the photo's own unclipped skin has 0.52); now 0.53 at luminance 0.59, within the photo's unclipped skin
    of luminance 0.5-0.6 (0.66-0.49; 0.41 while the saturation slope counted the clipped pixels, which are pale by the
    clip, not by their light)."""
    x = torch.from_numpy(utk_photo(need(UTKFACE), 80).astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    lm = face_landmarks(x)
    out = relight(x, 60.0, 15.0, 0.8, lm)
    lin, relit = to_linear(x), to_linear(out)
    darker = (_surface(x, lm, "auto").fit_weight > 0) & (((x + 1) / 2).amax(1) > 0.95)
    darker &= _luminance(relit) < 0.8 * _luminance(lin)
    assert int(darker.sum()) > 300
    assert float(saturation(relit)[darker].median()) < 0.6  # was 0.83; now 0.53
