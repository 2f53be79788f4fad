"""A darkened pixel whose top channel alone the camera clipped keeps the hue its other two channels measured: it took
the face's skin colour whole, and on a pink-cast face (skin and lips magenta-pink) a salmon cheek whose red was
clipped darkened magenta - utkface_128 00136 at light -60: its cheek (244, 193, 188), hue 5 degrees, came out 346.
Its top channel raised to the skin's ratio to the middle one moves that hue too: on a face of saturated orange skin a
pale lit cheek whose red was clipped darkened pink at any light - utkface_128 00729: hue 18 degrees, came out 7 to 9."""
from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch
from conftest import UTKFACE, need, needs_dlib, utk_photo

from genaug.faces.light import to_linear
from genaug.faces.relit_colour import _luminance, _unclip

torch.set_num_threads(1)

MAGENTA_SKIN, SALMON_CUT, NEAR_WHITE = (200, 140, 165), (244, 193, 188), (242, 239, 245)  # sRGB
ORANGE_SKIN, PALE_CUT, YELLOWED_CUT = (240, 118, 60), (252, 200, 179), (250, 206, 171)  # sRGB: 00729's skin and cheek


def _hue(lin: torch.Tensor) -> float:
    """Degrees (-180, 180], of the sRGB colour of linear pixel (0, :, 7, 7)."""
    h = 360 * colorsys.rgb_to_hsv(*(lin[0, :, 7, 7].clamp(0, 1) ** (1 / 2.2)).tolist())[0]
    return (h + 180) % 360 - 180


def _darkened(patch: tuple[int, int, int], skin: tuple[int, int, int] = MAGENTA_SKIN) -> tuple[torch.Tensor, torch.Tensor]:
    """16 x 16 of ``skin`` with a 4 x 4 ``patch``, darkened to 0.68: (the linear input, ``_unclip``'s output)."""
    x = torch.tensor(skin, dtype=torch.float32)[None, :, None, None].repeat(1, 1, 16, 16)
    x[:, :, 6:10, 6:10] = torch.tensor(patch, dtype=torch.float32)[:, None, None]
    x = x / 127.5 - 1
    lin = to_linear(x) * 0.68
    return lin, _unclip(lin, torch.full((1, 16, 16), 0.68), x, torch.ones(1, 16, 16))


def test_a_pixel_with_its_red_alone_clipped_keeps_its_measured_hue_when_darkened():
    lin, out = _darkened(SALMON_CUT)
    assert abs(_hue(out) - _hue(lin)) < 5, (_hue(lin), _hue(out))  # was the skin's: -21 for +5
    assert torch.allclose(_luminance(out), _luminance(lin), rtol=1e-4)


def test_a_near_white_highlight_still_takes_the_skins_colour():
    lin, out = _darkened(NEAR_WHITE)  # its lower channels are clipped too: no hue of its own left
    skin = to_linear(torch.tensor(MAGENTA_SKIN, dtype=torch.float32)[None, :, None, None].repeat(1, 1, 16, 16) / 127.5 - 1)
    assert abs(_hue(out) - _hue(skin)) < 3, (_hue(out), _hue(skin))


def test_a_pale_clipped_cheek_on_saturated_skin_keeps_its_hue_when_darkened():
    lin, out = _darkened(PALE_CUT, ORANGE_SKIN)  # hue 17 degrees, the skin's 19
    assert abs(_hue(out) - _hue(lin)) < 3, (_hue(lin), _hue(out))  # was 6: pink
    assert torch.allclose(_luminance(out), _luminance(lin), rtol=1e-4)
    lin, out = _darkened(YELLOWED_CUT, ORANGE_SKIN)  # hue 27, yellower than the skin: its cut red was higher
    skin = _hue(lin[:, :, 0:1, 0:1].expand_as(lin))
    assert abs(_hue(out) - skin) < 3, (_hue(lin), _hue(out), skin)  # the skin's (was 9)


@needs_dlib
@pytest.mark.parametrize("value", [-60.0, -20.0])
def test_00729s_clipped_cheek_keeps_its_hue_under_light(value):
    import genaug

    a = utk_photo(need(UTKFACE), 729)
    out = genaug.GenerativeFaceAug(p=1.0, codes=["light"], bounds={"light": (value, value)})(image=a)["image"]
    cheek = np.zeros(a.shape[:2], bool)
    cheek[50:110, 80:120] = True
    cheek &= a.max(2) >= 235  # the lit cheek, its red near-clipped
    hue = lambda im: colorsys.rgb_to_hsv(*(im[cheek].mean(0) / 255))[0] * 360  # noqa: E731
    assert abs((hue(out) - hue(a) + 180) % 360 - 180) < 5, (hue(a), hue(out))  # 18 degrees; was 8 (a pink cheek)


@needs_dlib
def test_the_pink_cast_face_keeps_its_cheeks_hue_under_light():
    import genaug

    a = utk_photo(need(UTKFACE), 136)
    out = genaug.GenerativeFaceAug(p=1.0, codes=["light"], bounds={"light": (-60, -60)})(image=a)["image"]
    cheek = (slice(55, 80), slice(85, 110))  # the cheek the light darkens, its red clipped
    hue = lambda im: colorsys.rgb_to_hsv(*(im[cheek].reshape(-1, 3).mean(0) / 255))[0] * 360  # noqa: E731
    assert abs((hue(out) - hue(a) + 180) % 360 - 180) < 6, (hue(a), hue(out))  # was 16 degrees off (5 -> 349)
