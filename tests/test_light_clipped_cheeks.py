"""Overexposed cheeks under ``relight``: a highlight whose red the camera clipped (then brought below CLIP_FROM by the
resize and JPEG) is yellower than the skin, and darkened it kept that hue - yellow-green patches on utkface_128 03747's
cheeks at light +60; and the face's saturation slope, fitted over clipped pixels too, read the clip's whiteness as
"lit skin is pale" - 01455's darkened clipped cheek came out a flat grey-pink patch, paler than the photo's skin."""
from __future__ import annotations

import colorsys

import pytest
import torch
from conftest import UTKFACE, need, utk_photo

from genaug.faces.light import to_linear
from genaug.faces.relit_colour import _luminance, _shading_saturation, _unclip

torch.set_num_threads(1)

SKIN, YELLOWED, TEETH = (200, 140, 100), (218, 207, 145), (215, 212, 206)  # sRGB; YELLOWED: 03747's cheek, hue 51


def _image(patch: tuple[int, int, int]) -> torch.Tensor:
    """16 x 16 of SKIN with a 4 x 4 ``patch``, as [-1, 1]."""
    x = torch.tensor(SKIN, dtype=torch.float32)[None, :, None, None].repeat(1, 1, 16, 16)
    x[:, :, 6:10, 6:10] = torch.tensor(patch, dtype=torch.float32)[:, None, None]
    return x / 127.5 - 1


def _hue(lin: torch.Tensor) -> float:
    """Degrees, of the sRGB colour of linear pixel (0, :, 7, 7)."""
    return 360 * colorsys.rgb_to_hsv(*(lin[0, :, 7, 7].clamp(0, 1) ** (1 / 2.2)).tolist())[0]


def test_a_highlight_yellowed_by_its_clipped_red_takes_the_skins_hue_when_darkened():
    x = _image(YELLOWED)
    ratio, weight = torch.full((1, 16, 16), 0.68), torch.ones(1, 16, 16)  # 03747's cheek at +60
    lin = to_linear(x) * 0.68
    out = _unclip(lin, ratio, x, weight)
    assert abs(_hue(out) - _hue(lin[:, :, 0:1, 0:1].expand_as(lin))) < 5  # the skin's (was its own, 51 degrees)
    assert torch.allclose(_luminance(out), _luminance(lin), rtol=1e-4)


def test_white_teeth_darkened_keep_their_colour():
    """Bright (below CLIP_FROM), but not skin with its red cut: their blue is not the skin's."""
    x = _image(TEETH)
    lin = to_linear(x) * 0.68
    out = _unclip(lin, torch.full((1, 16, 16), 0.68), x, torch.ones(1, 16, 16))
    assert torch.equal(out[:, :, 6:10, 6:10], lin[:, :, 6:10, 6:10])


def skin_with_slope() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """16x16 skin whose saturation falls with its shading at a rate of 0.5: linear RGB, shading, the [-1, 1] image
    and the slope fitted on it alone."""
    g = torch.Generator().manual_seed(0)
    shading = torch.rand(1, 16, 16, generator=g) * 0.6 + 0.2
    chroma = 1 + 0.3 * shading[:, None] ** -0.5 * torch.tensor([1.0, -0.3, -0.7])[None, :, None, None]
    lin = shading[:, None] * chroma / _luminance(chroma)[:, None]
    x = lin ** (1 / 2.2) * 2 - 1
    return lin, shading, x, _shading_saturation(lin, shading, torch.ones(1, 16, 16), x)


def test_the_saturation_slope_is_fitted_on_unclipped_skin():
    """Skin whose saturation falls with its shading at a rate of 0.5, and clipped, pale highlights: the slope is the
    skin's, as without them (with them before: -5.0 against -0.46)."""
    lin, shading, x, skin_only = skin_with_slope()
    lin[:, :, :6], shading[:, :6], x[:, :, :6] = 0.95, 1.0, 1.0  # clipped white: the brightest shading, no colour
    with_clipped = _shading_saturation(lin, shading, torch.ones(1, 16, 16), x)
    assert float(skin_only) == pytest.approx(-0.5, abs=0.1)  # shrunk a little (SATURATION_RIDGE)
    assert float(with_clipped) == pytest.approx(float(skin_only), abs=0.02)


def _render(folder, photo: int, value: float):
    pytest.importorskip("dlib")
    from genaug.faces.controls import IMAGE_CONTROLS
    from genaug.faces.landmarks import face_landmarks
    from genaug.faces.light import _surface

    a = torch.from_numpy(utk_photo(folder, photo).copy()).permute(2, 0, 1)[None]
    x = a.float() / 127.5 - 1
    lm = face_landmarks(x)
    out = ((IMAGE_CONTROLS["light"].apply(x, value, lm) + 1) * 127.5).round().clamp(0, 255)
    return a.float() / 255, out / 255, _surface(x, lm, "auto").fit_weight[0] > 0


def _hsv(t: torch.Tensor) -> torch.Tensor:
    """(3, H, W): hue (degrees), saturation, value of an sRGB (1, 3, H, W) in [0, 1]."""
    top, low = t[0].amax(0), t[0].amin(0)
    r, g, b = t[0]
    d = (top - low).clamp(min=1e-6)
    hue = torch.where(top == r, ((g - b) / d) % 6, torch.where(top == g, (b - r) / d + 2, (r - g) / d + 4)) * 60
    return torch.stack([hue, (top - low) / top.clamp(min=1e-6), top])


@pytest.mark.parametrize("value", [30.0, 60.0])
def test_03747_darkened_cheeks_turn_no_yellow_green(value):
    """Inner-face pixels the render made yellow-green (hue 45-150 degrees, saturation 0.3 or more, yellower or more
    saturated than the photo's): before 25 / 23 at +30 / +60."""
    src, out, inner = _render(need(UTKFACE), 3747, value)
    hs, ho = _hsv(src), _hsv(out)
    turned = inner & (ho[0] >= 45) & (ho[0] < 150) & (ho[1] >= 0.3) & ((hs[0] < 45) | (ho[1] > hs[1] + 0.05))
    assert int(turned.sum()) == 0


def test_01455_darkened_clipped_cheek_is_no_paler_than_the_photos_skin():
    """The clipped cheek the light darkens at +60 (median luminance 0.78): median saturation 0.23 before, below the
    photo's own unclipped skin of that brightness (0.32, luminance 0.7-0.8)."""
    src, out, inner = _render(need(UTKFACE), 1455, 60.0)
    luma = torch.tensor([0.2126, 0.7152, 0.0722])[None, :, None, None]
    ls, lo = (src * luma).sum(1)[0], (out * luma).sum(1)[0]
    patch = inner & (src[0].amax(0) >= 0.92) & (lo < 0.95 * ls)
    assert int(patch.sum()) > 1000
    assert float(_hsv(out)[1][patch].median()) >= 0.29
