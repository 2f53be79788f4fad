"""The rendered controls' functions called directly (genaug.faces): landmarks outside the photo are refused by
every one, relight keeps a clipped highlight's hue, estimate_light takes an empty batch."""
from __future__ import annotations

import pytest
import torch

from conftest import demo_face, needs_dlib

from genaug.faces.light import estimate_light


def test_given_landmarks_outside_the_photo_are_refused_by_name():
    """rotate_yaw with landmarks of a face the photo does not show turned nothing but moved the whole photo by the
    eyes' move. As the batch path refuses them (``BatchFaceAug(landmarks=)``), every rendered control now does."""
    from genaug.faces.glasses import add_glasses
    from genaug.faces.light import relight
    from genaug.faces.pose import rotate_yaw, turn_room
    from genaug.faces.landmarks import default_landmarks

    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    lm = default_landmarks(64, 64, 2)
    away = lm.clone()
    away[1] += torch.tensor([200.0, 0.0])  # image 1's face lies right of the photo
    for render in (lambda m: rotate_yaw(x, 20.0, m), lambda m: turn_room(x, m), lambda m: relight(x, 60.0, 10.0, 0.8, m),
                   lambda m: add_glasses(x, 1.0, m)):
        with pytest.raises(ValueError, match=r"landmarks of image\(s\) \[1\] lie outside the 64x64 images"):
            render(away)
    edge = lm.clone()
    edge[:, :, 0] += 63.5 - float(lm[0, :, 0].max())  # the right eye's outer corner on the last pixel's edge: inside
    assert rotate_yaw(x, 20.0, edge).shape == x.shape


def test_relight_keeps_the_luminance_and_hue_of_a_darkened_overexposed_highlight():
    # on an overexposed face (utkface_128 photos brightened 1.6x, light=+75) the darkened clipped highlight came out a
    # flat, saturated orange patch (HSV saturation 0.80 where the photo's bright skin has 0.65): the skin colour it
    # takes and the saturation the new shading gives it carried the red channel past 1, and clamping it channel by
    # channel changed its hue and lowered its luminance, against the module's "each pixel keeps its hue and its new
    # luminance, no channel clips". Such a pixel is brought into range towards its luminance's grey instead.
    from genaug.faces.light import _apply_shading
    from genaug.faces.relit_colour import _luminance

    x = torch.empty(1, 3, 32, 32)
    x[:, 0], x[:, 1], x[:, 2] = 0.8, 0.2, -0.1  # skin (sRGB 0.9, 0.6, 0.45 in [-1, 1])
    x[:, :, 8:24, 8:24] = 1.0  # a highlight the camera clipped white
    ones = torch.ones(1, 32, 32)
    out = _apply_shading(x, 0.6 * ones, ones, ones, torch.tensor([-1.6]), torch.tensor([1.0]))  # darkened to 0.6
    lin = ((out + 1) / 2) ** 2.2
    spot = lin[:, :, 10:22, 10:22]
    assert float(spot.max()) <= 1.0
    assert torch.allclose(_luminance(spot), torch.full_like(_luminance(spot), 0.6), atol=0.01)  # was 0.53: red clamped
    skin = ((x[0, :, 0, 0] + 1) / 2) ** 2.2
    chroma = spot[0, :, 6, 6] / _luminance(spot)[0, 6, 6] - 1
    own = skin / _luminance(skin[None, :, None, None]).flatten() - 1
    assert float(torch.nn.functional.cosine_similarity(chroma, own, dim=0)) > 0.99  # the skin's hue


def test_estimate_light_of_an_empty_batch():
    # a RuntimeError ("cannot reshape tensor of 0 elements") where estimate_yaw and relight return empty results
    est = estimate_light(torch.zeros(0, 3, 64, 64))
    assert est.azimuth.shape == est.elevation.shape == est.side.shape == (0,) and est.coefficients.shape == (0, 4)


@needs_dlib
@pytest.mark.parametrize("name, value, drawn", [("yaw", 20.0, None), ("yaw", 25.0, (-30.0, 30.0)), ("drawn_glasses", 0.8, None)])
def test_fit_apply_finds_a_photos_landmarks_once(monkeypatch, name, value, drawn):
    """``fit_apply(x, v)`` without landmarks ran dlib's detector twice on the photo: once for the face's room (fit),
    again to render (apply). The same values and pixels as fit, then apply."""
    from genaug.faces import landmarks
    from genaug.faces.controls import IMAGE_CONTROLS

    control = IMAGE_CONTROLS[name]
    x = torch.from_numpy(demo_face(128).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    fitted = control.fit(x, value, drawn=drawn)
    alone = control.apply(x, fitted)
    calls, detect = [], landmarks.detect_landmarks
    monkeypatch.setattr(landmarks, "detect_landmarks", lambda *a, **k: calls.append(1) or detect(*a, **k))
    out, values = control.fit_apply(x, value, drawn=drawn)
    assert len(calls) == 1 and torch.equal(values, fitted) and torch.equal(out, alone)
    assert control.fit_apply(x, value, drawn=drawn)[0] is not out and len(calls) == 2  # found again on the next call


def test_apply_control_writes_only_what_the_control_changed():
    # apply_control works out the result in the box of the pixels the control changed (a face in a 12 MP photo: not
    # four full-size float copies): pixels it left keep the photo's own float values, changed ones the render's
    import numpy as np
    from types import SimpleNamespace

    from genaug.engine.render import apply_control
    from genaug.faces.align import CANONICAL_LANDMARKS
    from genaug.images import FrameInfo

    photo = np.random.default_rng(0).random((90, 120, 3)).astype(np.float32)  # not on 8-bit levels
    lm = CANONICAL_LANDMARKS * 40 + np.float32([30, 20])

    def render(x, value, landmarks, drawn):
        out = x.clone()
        out[:, 1, 25:60, 40:50] = 0.5  # the green channel of a patch
        out[:, :, 70, 100] = -1.0  # and one pixel elsewhere
        return out, torch.tensor([value])

    control = SimpleNamespace(name="light", fit_apply=render)
    info = FrameInfo("numpy", photo.shape, photo.dtype, "HWC", 3, False, (30, 20, 70, 60), torch.empty(0),
                     alignment=SimpleNamespace(face=SimpleNamespace(landmarks=lm)))
    out, value = apply_control(control, 12.0, photo, info)
    want = photo.copy()
    want[25:60, 40:50, 1] = 0.75
    want[70, 100] = 0.0
    assert value == 12.0 and out.dtype == np.float32 and np.array_equal(out, want)
