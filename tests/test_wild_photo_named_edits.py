"""An edit that draws on the face (smile, glasses, ...) where ``framing="auto"`` finds no face in a large photo (short
side >= 4 model frames: a scene, not a face crop) leaves the photo unchanged and says so, as the rendered controls do,
instead of painting it in the centre square; a random draw there is re-drawn among the colour codes. A smaller photo
the detector misses (a blurred tight crop) keeps the centre square, which is its face."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

import genaug
from conftest import demo_face
from genaug.faces.identity import faces_extra_available

pytestmark = pytest.mark.skipif(not faces_extra_available(),
                                reason='needs the faces extra (dlib) for auto framing\'s face search: pip install "genaug[faces]"')
torch.set_num_threads(1)
NO_FACE = "unchanged (no face found)"


def scene(face: int = 24) -> np.ndarray:
    """A 640 x 480 sky-and-grass scene with the shipped face ``face`` px wide off centre (24: too small to detect)."""
    y = np.linspace(0, 1, 480)[:, None, None]
    sky = np.where(y < 0.55, np.array([110, 160, 230]) * (1 - 0.4 * y), np.array([60, 130, 50]) * (1.2 - 0.4 * y))
    img = (sky * np.ones((480, 640, 3))).astype(np.uint8)
    img[150:150 + face, 420:420 + face] = demo_face(face)
    return img


def blurred_crop() -> np.ndarray:
    """The shipped 128 px face crop, blurred until dlib misses it: a tight crop whose centre square is the face."""
    return np.asarray(Image.fromarray(demo_face()).filter(ImageFilter.GaussianBlur(6)))


@pytest.mark.parametrize("code", ["smile", "glasses"])
def test_a_named_edit_leaves_a_large_photo_without_a_found_face_unchanged_and_says_so(code):
    # before: painted on the sky in the centre square (smile: 40,000+ pixels changed), reported "smile=1"
    img = scene()
    t = genaug.GenerativeFaceAug(p=1.0, codes=[code], device="cpu")
    out = A.Compose([t], seed=0)(image=img)["image"]
    assert np.array_equal(out, img)
    assert t.last_info.kept.tolist() == [False] and t.last_info.descriptions == [NO_FACE]
    out, info = t.engine.augment([img], edits=[(code, 1)])  # named by the caller
    assert np.array_equal(out[0], img) and info.descriptions == [NO_FACE]


def test_a_random_draw_on_a_large_photo_without_a_face_is_redrawn_among_the_colour_codes():
    img = scene()
    t = genaug.GenerativeFaceAug(p=1.0, codes=["smile", "glasses", "tone"], device="cpu")
    pipe = A.Compose([t], seed=0)
    for _ in range(3):
        out = pipe(image=img)["image"]
        assert t.last_info.descriptions[0].startswith("tone=") and not np.array_equal(out, img)


def test_a_tight_crop_the_detector_misses_keeps_the_centre_square():
    img = blurred_crop()
    t = genaug.GenerativeFaceAug(p=1.0, codes=["smile"], device="cpu")
    out = A.Compose([t], seed=0)(image=img)["image"]
    assert t.engine.frame([img])[1][0].guessed  # (no face found: framed by the centre-square guess)
    assert t.last_info.descriptions[0].startswith("smile=") and not np.array_equal(out, img)


def test_a_large_photo_with_a_found_face_still_gets_the_named_edit():
    img = scene(160)
    t = genaug.GenerativeFaceAug(p=1.0, codes=["smile"], device="cpu")
    out = A.Compose([t], seed=0)(image=img)["image"]
    changed = np.abs(out.astype(int) - img).max(2) > 8
    assert t.last_info.descriptions[0].startswith("smile=") and changed[150:310, 420:580].mean() > 0.01
    assert not changed[:, :380].any()  # (only at the face)


def test_dataset_items_and_meta_say_why_a_large_photo_without_a_face_is_unchanged():
    img = scene()
    ds = genaug.GenerativeAugDataset([img, blurred_crop()], variants=1, codes=["smile"], return_meta=True, device="cpu",
                                     progress=False, seed=0)
    out, meta = ds[0]  # the scene: unchanged, saying so
    assert np.array_equal(np.asarray(out), img) and meta.description == ds.meta(0).description == NO_FACE
    assert meta.edit is None
    said = ds[1][1].description  # the blurred crop: smiled in its centre square, as before
    assert said.startswith("smile=") and said == ds.meta(1).description
    ds = genaug.GenerativeAugDataset([img], variants=3, codes=["smile", "tone"], return_meta=True, device="cpu",
                                     progress=False, seed=0)
    said = [ds[i][1].description for i in range(3)]
    assert all(d.startswith("tone=") for d in said) and said == [ds.meta(i).description for i in range(3)]


def test_dataset_meta_of_a_colour_edit_at_strength_0_says_unchanged_as_the_transform_does():
    img = demo_face()
    ds = genaug.GenerativeAugDataset([img], variants=2, codes=["tone"], strength=0, return_meta=True, device="cpu",
                                     progress=False, seed=0)
    t = genaug.GenerativeFaceAug(p=1.0, codes=["tone"], strength=0, device="cpu")
    A.Compose([t], seed=0)(image=img)
    said = t.last_info.descriptions[0]
    assert said == "unchanged (the edit changed no pixel of this photo)"  # before: ds.meta(0) 'tone=-0.9...'
    for i in range(2):
        out, meta = ds[i]
        assert np.array_equal(np.asarray(out), img) and meta.description == ds.meta(i).description == said


def test_augment_and_expand_agree(tmp_path):
    """``genaug augment`` and ``genaug expand`` share the engine's rule: the scene's named smiles written unchanged,
    named as faceless (augment) / codes NaN (expand); the blurred crop smiled."""
    import h5py

    from genaug.cli.augment import augment_chunk
    from genaug.engine import Engine
    from genaug.expand.pipeline import expand_to_hdf5

    img, crop = scene(), blurred_crop()
    no_face: list[int] = []
    got = augment_chunk(Engine(device="cpu", codes=["smile"], refine_steps=0), [img, crop], [0, 1], 1, 0, no_face)
    assert all(np.array_equal(o, img) for o in got[0]) and no_face == [0]
    assert not any(np.array_equal(o, crop) for o in got[1])
    (tmp_path / "in").mkdir()
    Image.fromarray(img).save(tmp_path / "in" / "scene.png")
    expand_to_hdf5(tmp_path / "in", tmp_path / "o.h5", 1, codes=["smile"], size="640x480", device="cpu", progress=False)
    with h5py.File(tmp_path / "o.h5") as f:
        assert np.isnan(f["codes"][:]).all() and np.array_equal(f["images"][0], img)  # before: smile=1, 60,761 px painted


def test_a_tight_crops_redraw_does_not_depend_on_a_large_photo_beside_it():
    """Re-draws of a batch (a list through ``engine.augment``, the transform's ``images=``) among the codes that apply
    to each photo: a yaw on a blurred crop beside a scene without a found face is still re-drawn as a smile (the codes
    were cut to the ones that apply on every photo of the batch: none, so the crop came back unchanged)."""
    from genaug.engine import Engine

    e = Engine(device="cpu", codes=["smile", "yaw"], refine_steps=0)
    yaw = (e.code_names.index("yaw"), 20.0)
    for photos in ([blurred_crop()], [blurred_crop(), scene()]):
        _, info = e.augment(photos, edits=[yaw] * len(photos), redraw_unplaced=True,
                            generator=torch.Generator().manual_seed(0))
        assert info.descriptions[0].startswith("smile="), info.descriptions
        assert info.descriptions[1:] in ([], [NO_FACE]), info.descriptions
