"""A tenth user audit: photos with real pose and lighting variation and unusual framings (faces turned, upside
down, cut by the border, tiny, absent; grey, RGBA, odd sizes) through every front end. Each test failed before its fix."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import genaug
from genaug.faces.identity import faces_extra_available


def _texture(h: int = 120, w: int = 160) -> np.ndarray:
    """A colour gradient with noise: no face anywhere, not a known frame."""
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.stack([xx / w * 255, yy / h * 255, np.full_like(xx, 128.0)], -1)
    return np.clip(g + np.random.default_rng(0).normal(0, 20, g.shape), 0, 255).astype(np.uint8)


@pytest.mark.skipif(not faces_extra_available(), reason="needs the faces extra (dlib) for auto framing's face search")
def test_augment_redraws_a_planned_turn_or_light_on_a_photo_without_a_face_and_says_so(tmp_path, capsys):
    # `genaug augment` planned yaw / light variants for a photo in which no face was found, rendered nothing and wrote
    # them as unchanged copies among the "augmented images" without a word (the transform, the Dataset and expand
    # re-draw such a control among the latent codes, or report the photo as having no face)
    from PIL import Image

    from genaug.cli.augment import main

    torch.set_num_threads(1)
    src = tmp_path / "in"
    src.mkdir()
    img = _texture()
    Image.fromarray(img).save(src / "texture.png")
    # with latent codes beside them, a turn or light planned there becomes a latent edit: every variant differs
    assert main([str(src), "--out", str(tmp_path / "a"), "--codes", "yaw,light,tone", "--variants", "6",
                 "--device", "cpu"]) == 0
    for v in range(6):
        out = np.asarray(Image.open(tmp_path / "a" / f"texture_aug{v:02d}.png"))
        assert not np.array_equal(out, img), f"variant {v} is the unchanged photo"
    capsys.readouterr()
    # with controls only, nothing can be drawn instead: the photo is reported, not counted as augmented silently
    assert main([str(src), "--out", str(tmp_path / "b"), "--codes", "yaw,light", "--variants", "2",
                 "--device", "cpu"]) == 0
    err = capsys.readouterr()
    assert "no face found in" in err.err and "texture.png" in err.err
    assert "no face found in 1 image(s)" in err.out


def test_batch_yaw_moves_an_rgba_batchs_alpha_with_its_pixels():
    # BatchFaceAug(codes=["yaw"]) turned the colour of an RGBA batch and moved the photo by a few pixels while its alpha
    # stayed put (the per-image path moves it, tests/test_audit8.py): a cut-out's mask no longer covered its face.
    # An alpha equal to the red channel must stay equal to it through a turn.
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:109, 0:89]
    base = np.stack([(np.sin(xx / 5.0 + k) * np.cos(yy / 7.0) + 1) * 100 + 20 for k in range(3)], 0)
    rgb = torch.from_numpy(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8))[None].repeat(2, 1, 1, 1)
    x = torch.cat([rgb, rgb[:, :1]], 1)  # (2, 4, 109, 89): a CelebA-shaped frame, alpha = red
    aug = genaug.BatchFaceAug(p=1.0, codes=["yaw"], bounds={"yaw": (20, 30)}, seed=0, device="cpu")
    out = aug(x)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert (out[:, 0].int() - x[:, 0].int()).abs().float().mean() > 1  # the head did turn
    assert (out[:, 3].int() - out[:, 0].int()).abs().max() <= 1  # and the alpha turned with it


def test_drawn_glasses_on_a_large_photo_are_drawn_on_the_heads_box(monkeypatch):
    # drawn_glasses computed its frames, the photo's sharpness and two blurs over every pixel of the photo: a face in a
    # 12 MP photo took ~18 s a call on one thread (yaw 3 s, light a few), where yaw and light work on the head's box.
    # The frames must be drawn on the head's box, with the same result as over the whole photo.
    from genaug.faces import glasses

    torch.set_num_threads(1)
    h, w = 600, 800
    rng = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 3, h, w, generator=rng) * 0.6 - 0.3)
    lm = torch.tensor([[[434.0, 300.0], [410.0, 301.0], [366.0, 300.0], [390.0, 301.0], [400.0, 331.0]]])  # d = 44 px
    seen = []
    real = glasses.frames_coverage
    monkeypatch.setattr(glasses, "frames_coverage", lambda x_, *a: seen.append(x_.shape[-2:].numel()) or real(x_, *a))
    out = glasses.add_glasses(x, 1.0, landmarks=lm)
    assert seen and max(seen) * 4 < h * w, f"frames drawn over {max(seen)} pixels of a {h * w}-pixel photo"
    monkeypatch.setattr(glasses, "head_crops", lambda *a, **k: None, raising=False)  # the whole photo, as before
    whole = glasses.add_glasses(x, 1.0, landmarks=lm)
    assert (out - whole).abs().max() < 1e-4
    assert (out - x).abs().amax(1)[0, 280:320, 330:470].max() > 0.2  # the frames are there


def test_relight_keeps_the_luminance_and_hue_of_a_darkened_overexposed_highlight():
    # on an overexposed face (utkface_128 photos brightened 1.6x, light=+75) the darkened clipped highlight came out a
    # flat, saturated orange patch (HSV saturation 0.80 where the photo's bright skin has 0.65): the skin colour it
    # takes and the saturation the new shading gives it carried the red channel past 1, and clamping it channel by
    # channel changed its hue and lowered its luminance, against the module's "each pixel keeps its hue and its new
    # luminance, no channel clips". Such a pixel is brought into range towards its luminance's grey instead.
    from genaug.faces.light import _apply_shading, _luminance

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


@pytest.mark.parametrize("code", ["yaw", "light", "drawn_glasses"])
def test_a_control_leaves_a_float_photos_untouched_pixels_exact(code):
    # a float32 photo went through [-1, 1] and back for a rendered control: a request of 0 ("returns the input") and
    # every pixel the control does not touch (outside the head for light and glasses) came back 1 ulp off on a third
    # of the pixels (np.array_equal failed); uint8 photos hid it in the rounding
    from PIL import Image

    from genaug.demo import DEMO_FACES
    from genaug.engine.edits import Edit

    torch.set_num_threads(1)
    face = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB")).astype(np.float32) / 255
    canvas = np.full((200, 260, 3), 0.37, np.float32)  # beside the face: pixels no control touches but yaw's move
    canvas += np.random.default_rng(0).uniform(0, 0.2, canvas.shape).astype(np.float32)
    canvas[36:164, 66:194] = face
    eng = genaug.GenerativeFaceAug(codes=[code], p=1.0, device="cpu").engine
    c = eng.code_names.index(code)
    out, info = eng.augment(canvas, edits=[Edit(c, 0.0)])
    assert out.dtype == np.float32 and np.array_equal(out, canvas)
    out, info = eng.augment(canvas, edits=[Edit(c, 20.0 if code != "drawn_glasses" else 1.0)])
    assert not np.array_equal(out, canvas)
    if code != "yaw":  # (a turn moves the photo by whole pixels)
        same = (out == canvas).all(2)
        assert same[:, :40].all() and same[:, 220:].all()


def test_the_batch_transform_leaves_a_float_batchs_untouched_pixels_exact():
    # as in the per-image path, the rendered controls sent a float batch through [-1, 1] and back: pixels the light
    # never reached came back 1 ulp off (a float batch of 8-bit levels, as ToTensor gives)
    torch.set_num_threads(1)
    x = torch.randint(0, 256, (2, 3, 218, 178), generator=torch.Generator().manual_seed(0)).float() / 255  # 8-bit levels
    aug = genaug.BatchFaceAug(p=1.0, codes=["light"], seed=0, device="cpu")
    out = aug(x)
    assert float((out - x).abs().max()) > 0.05  # lit
    assert torch.equal(out[:, :, :40], x[:, :, :40]) and torch.equal(out[:, :, :, :20], x[:, :, :, :20])  # above, beside
