"""The photo's own saturated shadows under ``relight``: darkened, skin grows more saturated as the face's own skin does,
but a pixel already near the gamut's edge (a shadow beside the nose, an eye's corner) kept growing until its blue
clamped to 0 - a brown-orange spot beside skin of its own colour (utkface_128 02929, 01479 at light +-60)."""
from __future__ import annotations

import pytest
import torch
from conftest import UTKFACE, need, utk_photo

from genaug.faces.relit_colour import KEEP_CHANNEL, _follow_colour, _luminance

torch.set_num_threads(1)


def _skin(n: int = 1) -> tuple:
    """A light brown skin colour (at unit luminance) for _follow_colour's hue turn, with its spread and level."""
    colour = torch.tensor([[1.7, 0.75, 0.35]]).expand(n, 3)
    return colour, torch.ones(n), torch.full((n,), 0.3), torch.zeros(n)


def test_a_darkened_saturated_shadow_keeps_its_blue():
    """The photo's shadow beside the nose of 02929 (sRGB 219, 150, 91: blue 0.27 of its luminance) darkened by 0.74 on a
    face whose saturation grows with shadow (slope -0.97): its saturation rose by 1.34 and its blue went to 0."""
    lin = (torch.tensor([219.0, 150.0, 91.0]) / 255) ** 2.2 * 0.74
    lin = lin[None, :, None, None]
    out = _follow_colour(lin, torch.tensor([-0.97]), torch.tensor(0.74).log().reshape(1, 1, 1), _skin())
    share = lambda t: t[:, 2] / _luminance(t)  # noqa: E731
    assert float(share(out)) >= KEEP_CHANNEL * float(share(lin)) - 1e-6  # was 0
    assert float(share(out)) < float(share(lin))  # still more saturated than before: a shadow
    assert torch.allclose(_luminance(out), _luminance(lin), rtol=1e-5)


def test_a_mildly_saturated_shadow_grows_as_before():
    """Skin far from the gamut's edge: its saturation follows the shading by the face's slope, as before."""
    lin = torch.tensor([0.30, 0.20, 0.15])[None, :, None, None]
    change = torch.tensor(0.7).log().reshape(1, 1, 1)
    out = _follow_colour(lin, torch.tensor([-0.5]), change, _skin())
    lum = _luminance(lin)[:, None]
    expect = lum * (1 + (0.7 ** -0.5) * (lin / lum - 1))
    assert torch.allclose(out, expect, rtol=1e-5)


@pytest.mark.parametrize("photo, azimuth", [(2929, 60.0), (2929, -60.0), (1479, 60.0), (1479, -60.0)])
def test_no_channel_of_the_skin_is_pushed_to_black_by_the_light(photo, azimuth):
    """On the real photos: inner-face pixels whose channel the render took to 0-2 levels from 24 or more (before: 62 / 265
    on 02929 at -60 / +60, 102 / 313 on 01479: brown-orange spots beside the nose and at an eye's corner)."""
    pytest.importorskip("dlib")
    from genaug.faces.controls import IMAGE_CONTROLS
    from genaug.faces.landmarks import face_landmarks
    from genaug.faces.light import _surface

    a = torch.from_numpy(utk_photo(need(UTKFACE), photo).copy()).permute(2, 0, 1)[None]
    x = a.float() / 127.5 - 1
    lm = face_landmarks(x)
    out = ((IMAGE_CONTROLS["light"].apply(x, azimuth, lm) + 1) * 127.5).round()
    inner = _surface(x, lm, "auto").fit_weight > 0
    crushed = inner & ((out <= 2) & (a >= 24)).any(1)
    assert int(crushed.sum()) == 0
