"""Photos as users hand them to the transform and the engine: float64, big-endian float and RGBA photos,
photos in the wild; the pixels no edit touches keep their exact values."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

import genaug
from conftest import demo_face, resized


def test_big_endian_float_images_are_edited_and_keep_their_dtype():
    # ">f4" (FITS, some HDF5 / raw files) was refused as "unsupported image dtype >f4: use ... float32"
    img = (np.random.default_rng(0).integers(40, 220, (64, 64, 3)) / 255).astype(">f4")
    t = genaug.GenerativeFaceAug(p=1, codes=["tone"], device="cpu", framing="full")
    out = A.Compose([t], seed=0)(image=img)["image"]
    assert out.dtype == np.dtype(">f4") and out.shape == img.shape
    ref = A.Compose([genaug.GenerativeFaceAug(p=1, codes=["tone"], device="cpu", framing="full")], seed=0)(
        image=img.astype(np.float32))["image"]
    np.testing.assert_allclose(out.astype(np.float32), ref, atol=1e-6)


def test_a_float64_photo_keeps_its_own_values_where_nothing_was_edited():
    """``img / 255.0`` makes float64 photos: every pixel came back through float32 (up to 3e-8 off), so a photo
    reported "unchanged (no face found)" was not the photo given, a request of 0 was not the input, and a light
    changed the background (float32 photos keep their values there)."""
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 1, (80, 100, 3))  # float64, no face
    t = genaug.GenerativeFaceAug(p=1.0, codes=["yaw"], device="cpu")
    out = A.Compose([t], seed=0)(image=noise)["image"]
    assert t.last_info.descriptions == ["unchanged (no face found)"]
    assert out.dtype == np.float64 and np.array_equal(out, noise)
    canvas = 0.3 + 0.2 * rng.uniform(0, 1, (200, 260, 3))  # the face on a textured scene
    canvas[36:164, 66:194] = demo_face() / 255.0
    engine = t.engine
    for photo in (canvas, torch.from_numpy(canvas.copy()).permute(2, 0, 1)):
        same = (lambda a, b: torch.equal(a, b)) if isinstance(photo, torch.Tensor) else np.array_equal
        out, info = engine.augment([photo, photo], edits=[("yaw", 0.0), ("light", 40.0)])
        assert same(out[0], photo) and info.descriptions[1] == "light=+40.0" and not same(out[1], photo)
        lit = out[1].permute(1, 2, 0).numpy() if isinstance(photo, torch.Tensor) else out[1]
        assert out[1].dtype == photo.dtype and np.array_equal(lit[:, :40], canvas[:, :40])  # beside the head


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


def test_a_turn_moves_a_cut_outs_alpha_with_its_pixels():
    """``yaw`` moved the colour channels with the head while the alpha channel stayed put: a cut-out's mask no longer
    covered its face. An alpha equal to the red channel must stay equal to it through a turn."""
    from PIL import Image

    from conftest import CELEBA_ID200, need

    photo = np.asarray(Image.open(sorted(sorted(need(CELEBA_ID200).glob("0*"))[0].glob("*.jpg"))[0]).convert("RGB"))
    rgba = np.concatenate([photo, photo[..., :1]], -1)
    aug = genaug.GenerativeFaceAug(codes=["yaw"], bounds={"yaw": (20, 30)}, p=1.0)
    out = aug(image=rgba)["image"]
    assert out.shape == rgba.shape and out.dtype == np.uint8
    assert np.abs(out[..., 0].astype(int) - photo[..., 0]).mean() > 1  # the head did turn
    assert np.abs(out[..., 3].astype(int) - out[..., 0]).max() <= 1  # and the alpha turned with it


def wild_photos(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Photo ``a`` in the framings and formats users hand over (``b`` beside it), and photos without a face."""
    return {
        "24px": resized(a, 24, 24), "200x120": resized(a, 200, 120), "120x300": resized(a, 120, 300),
        "grey": a.mean(-1).round().astype(np.uint8), "grey1": a[..., 1:2].copy(),
        "rgba": np.dstack([a, np.full(a.shape[:2], 200, np.uint8)]), "float": a.astype(np.float32) / 255,
        "two_faces": np.concatenate([a, b], 1), "rot90": np.ascontiguousarray(np.rot90(a)),
        "flat": np.full((128, 128, 3), 120, np.uint8), "noise": np.random.default_rng(0).integers(0, 256, (96, 160, 3), dtype=np.uint8),
    }


@pytest.mark.parametrize("codes", [None, ["yaw", "light", "drawn_glasses"]])
def test_photos_in_the_wild_through_two_pipelines_with_one_seed(codes, utk_photos):
    """Every framing keeps its shape and dtype, has no NaN, stays in range, and two ``A.Compose(seed=)`` pipelines
    built alike edit it alike; a photo with no face gets no rendered control (the rendered codes alone: unchanged,
    and ``last_info`` says why); an RGBA photo's alpha is kept where nothing turned."""
    photos = wild_photos(*utk_photos[:2])
    runs = []
    for _ in range(2):
        t = genaug.GenerativeFaceAug(p=1.0, codes=codes, device="cpu")
        pipe = A.Compose([t], seed=11)
        runs.append([(pipe(image=im)["image"], t.last_info) for im in photos.values()])
    for (name, im), (out, info), (again, _) in zip(photos.items(), runs[0], runs[1]):
        assert out.shape == im.shape and out.dtype == im.dtype, name
        assert np.array_equal(out, again), f"{name}: two pipelines with one seed differ"
        assert np.isfinite(out).all() and (out.dtype == np.uint8 or (0 <= out.min() and out.max() <= 1)), name
        if name in ("flat", "noise") and codes is not None:
            assert np.array_equal(out, im) and not bool(info.kept[0]), name
            assert info.descriptions == ["unchanged (no face found)"], (name, info.descriptions)
        if name in ("flat", "noise"):
            assert not info.descriptions[0].startswith(("yaw", "light", "drawn_glasses")), (name, info.descriptions)
        if name == "rgba" and not info.descriptions[0].startswith("yaw"):
            assert np.array_equal(out[..., 3], im[..., 3]), info.descriptions
