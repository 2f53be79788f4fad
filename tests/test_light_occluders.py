"""``light`` on a face behind something dark and colourless (sunglasses, a microphone): the face's saturation slope was
fitted over those pixels too, whose log saturation lies far below any skin's, and flipped - the lit cheek of utkface_128
00200 behind drawn sunglasses turned an orange-red patch (red +31, blue +2 levels where the bare face brightens
evenly, +18 / +21). Likewise a background of another hue inside the inner face's ellipse (a narrow face's pale lavender
backdrop beside its shadowed cheek, utkface_128 03059): the slope came out positive, the cheek lit up turned orange."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import UTKFACE, need, utk_photo

from test_light_clipped_cheeks import skin_with_slope

from genaug.faces.relit_colour import _shading_saturation

torch.set_num_threads(1)


def test_the_saturation_slope_leaves_out_colourless_pixels():
    """Skin whose saturation falls with its shading at a rate of 0.5, and a black patch where the shading is low (dark
    glasses in the eye sockets): the slope is the skin's, as without it (with it before: positive)."""
    lin, shading, x, skin_only = skin_with_slope()
    lin[:, :, 4:8], shading[:, 4:8] = 0.003, 0.2  # a black band, fitted as the photo's darkest shading
    x = lin ** (1 / 2.2) * 2 - 1
    with_glasses = _shading_saturation(lin, shading, torch.ones(1, 16, 16), x)
    assert float(skin_only) == pytest.approx(-0.5, abs=0.1)
    assert float(with_glasses) == pytest.approx(float(skin_only), abs=0.05)


def test_the_saturation_slope_leaves_out_a_background_of_another_hue():
    """Skin whose saturation falls with its shading at a rate of 0.5, and a pale lavender band (a backdrop beside the
    face's edge) where the generic face is darkest: the slope is the skin's (before: +0.33, its sign flipped)."""
    lin, shading, x, skin_only = skin_with_slope()
    lin[:, :, 10:14] = 0.5 * torch.tensor([0.93, 0.92, 1.25])[None, :, None, None]  # pale, bluish: no skin's hue
    shading[:, 10:14] = 0.2
    x = lin ** (1 / 2.2) * 2 - 1
    with_backdrop = _shading_saturation(lin, shading, torch.ones(1, 16, 16), x)
    assert float(with_backdrop) == pytest.approx(float(skin_only), abs=0.05)


def test_a_narrow_face_beside_a_pale_backdrop_lights_up_its_shadow_without_an_orange_patch():
    """utkface_128 03059, lit from its left, its right cheek in deep shadow beside a lavender backdrop: at light +60 the
    shadowed cheek lit up kept about its saturation and the lit one darkened kept its colour (HSV saturation of the
    mean colour, shadowed cheek 0.353 -> 0.472 before, 0.394 now; lit cheek 0.419 -> 0.332 before, ashy grey; 0.407)."""
    pytest.importorskip("dlib")
    import colorsys

    from genaug.faces.controls import IMAGE_CONTROLS
    from genaug.faces.landmarks import face_landmarks

    a = utk_photo(need(UTKFACE), 3059)
    x = torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    out = ((IMAGE_CONTROLS["light"].apply(x, 60.0, face_landmarks(x)) + 1) * 127.5).round()[0].permute(1, 2, 0).numpy()

    def saturation(im: np.ndarray, rows: slice, cols: slice) -> float:
        return colorsys.rgb_to_hsv(*(im[rows, cols].reshape(-1, 3).mean(0) / 255))[1]

    shadow, lit = (slice(55, 90), slice(78, 98)), (slice(60, 90), slice(25, 50))
    assert np.mean(out[shadow] - a[shadow]) > 15  # the shadowed cheek is lit up
    assert saturation(out, *shadow) < saturation(a, *shadow) + 0.08
    assert saturation(out, *lit) > saturation(a, *lit) - 0.05


def test_a_face_behind_dark_glasses_is_lit_without_an_orange_cheek():
    pytest.importorskip("dlib")
    import cv2

    from genaug.faces.controls import IMAGE_CONTROLS
    from genaug.faces.landmarks import face_landmarks

    bare = utk_photo(need(UTKFACE), 200)
    glasses = bare.copy()
    for cx in (43, 85):  # two black lenses over the eyes, as a pair of sunglasses
        cv2.ellipse(glasses, (cx, 55), (15, 9), 0, 0, 360, (10, 10, 10), -1)
    change = []
    for a in (bare, glasses):
        x = torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        out = ((IMAGE_CONTROLS["light"].apply(x, -60.0, face_landmarks(x)) + 1) * 127.5).round()
        change.append((out[0, :, 66:96, 24:56] - x[0, :, 66:96, 24:56].add(1).mul(127.5)).mean((1, 2)).numpy())
    bare_change, glasses_change = change
    assert bare_change.min() > 10  # the lit cheek brightens in every channel
    # behind the glasses as on the bare face: red brightens about as much as blue. Red minus blue here: bare -3.5,
    # behind the glasses +2.4 (their dark patch moves the light fit too; black, noisy, JPEG-ed or tinted lenses -1.2 to +4.6),
    # before +35.4 (red +40, blue +5). A margin of 6 passed by 0.15 levels; noisy, JPEG-ed or warm lenses failed it.
    assert glasses_change[0] - glasses_change[2] < bare_change[0] - bare_change[2] + 12
    assert np.all(glasses_change > 8)
