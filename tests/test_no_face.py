"""Photos in which no face is found (textures, noise) through every front end: the rendered controls leave
them alone and say so, and a control drawn at random there becomes a latent-code edit."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

import genaug
from genaug.faces.identity import faces_extra_available

needs_face_search = pytest.mark.skipif(not faces_extra_available(),
                                       reason="needs the faces extra (dlib) for auto framing's face search")


def _texture(h: int = 240, w: int = 320) -> np.ndarray:
    """A colour gradient with noise: no face anywhere, not a known frame."""
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.stack([xx / w * 255, yy / h * 255, np.full_like(xx, 128.0)], -1)
    return np.clip(g + np.random.default_rng(0).normal(0, 20, g.shape), 0, 255).astype(np.uint8)


@needs_face_search
@pytest.mark.parametrize("code", ["light", "yaw"])
def test_rendered_controls_leave_an_image_without_a_face_alone(code):
    # auto framing looks for a face, finds none and falls back to the centre square; a rendered light
    # or turn placed there by the framing rule's landmarks painted a ghost face on the texture
    img = _texture()
    aug = genaug.GenerativeFaceAug(codes=[code], p=1.0)
    for seed in (0, 1):
        assert np.array_equal(A.Compose([aug], seed=seed)(image=img)["image"], img)


@needs_face_search
def test_engine_augment_reports_an_unplaced_control_as_not_applied():
    from genaug.engine.edits import Edit

    aug = genaug.GenerativeFaceAug(codes=["light"], p=1.0)
    e, img = aug.engine, _texture()
    light = e.code_names.index("light")
    out, info = e.augment([img], edits=[Edit(light, 40.0)])
    assert np.array_equal(out[0], img)
    assert not bool(info.kept[0]) and info.descriptions[0] == "unchanged (no face found)"


@needs_face_search
def test_rendered_light_still_lights_a_found_face():
    from genaug.demo import DEMO_FACES
    from PIL import Image

    face = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB"))
    canvas = np.full((240, 320, 3), 110, np.uint8)  # not a known frame nor model-sized: auto framing detects
    canvas[40:168, 100:228] = face
    out = A.Compose([genaug.GenerativeFaceAug(codes=["light"], p=1.0)], seed=0)(image=canvas)["image"]
    changed = np.abs(out.astype(int) - canvas.astype(int)).max(2) > 2
    assert changed[40:168, 100:228].mean() > 0.1 and not changed[:, :90].any() and not changed[:, 240:].any()


def test_no_face_found_is_reported_for_latent_edits_too():
    from genaug.faces.identity import faces_extra_available

    if not faces_extra_available():
        pytest.skip('framing="detect" needs dlib (pip install "genaug[faces]")')
    noise = (np.random.default_rng(0).random((120, 120, 3)) * 255).astype(np.uint8)
    t = genaug.GenerativeFaceAug(p=1, framing="detect", codes=["smile"], device="cpu")
    out = A.Compose([t], seed=0)(image=noise)["image"]
    assert np.array_equal(out, noise)
    assert t.last_info.kept.tolist() == [False] and t.last_info.descriptions == ["unchanged (no face found)"]


@needs_face_search
def test_a_drawn_control_without_a_face_is_redrawn_among_the_latent_codes():
    """Where no face is found, a randomly drawn yaw / light cannot be placed: the transform draws a latent code
    instead (p=1 still edits), the same on a replay; the engine keeps an edit it was given."""
    from genaug.engine.edits import Edit

    img = _texture()
    aug = genaug.GenerativeFaceAug(codes=["yaw", "light", "tone"], p=1.0)
    t = A.Compose([aug], seed=0, save_applied_params=True)
    drawn = []
    for _ in range(12):
        res = t(image=img)
        edit = Edit(*res["applied_transforms"][0][1]["edits"][0])
        drawn.append(edit.code)
        assert not np.array_equal(res["image"], img)  # every draw edits, also the yaw / light ones
        assert np.array_equal(aug.apply(img, **res["applied_transforms"][0][1]), res["image"])  # the params replay it
    names = aug.engine.code_names
    assert {names[c] for c in drawn} >= {"tone"} and {names[c] for c in drawn} & {"yaw", "light"}  # controls were drawn
    e = aug.engine
    out, info = e.augment([img], edits=[Edit(names.index("yaw"), 20.0)])  # named by the caller: kept, not replaced
    assert np.array_equal(out[0], img) and info.descriptions[0] == "unchanged (no face found)"


@needs_face_search
def test_dataset_and_expand_record_no_light_where_no_face_was_found(tmp_path, trained_bundle_path):
    import h5py
    from PIL import Image

    from genaug.expand import expand_to_hdf5

    img = _texture()
    ds = genaug.GenerativeAugDataset([img], variants=2, codes=["light"], return_meta=True, bundle=trained_bundle_path,
                                     device="cpu", refine_steps=0, progress=False)
    for i in range(len(ds)):
        out, meta = ds[i]
        assert np.array_equal(out, img) and meta.code == -1 and meta.description == "unchanged (no face found)"
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(img).save(src / "texture.png")
    for size in ("source", "model"):
        out_h5 = tmp_path / f"{size}.h5"
        expand_to_hdf5(src, out_h5, 2, bundle=trained_bundle_path, codes=["light"], size=size, refine_steps=0,
                       device="cpu", progress=False, seed=0)
        with h5py.File(out_h5) as f:
            images, codes = f["images"][()], f["codes"][()]
        assert np.isnan(codes).all()  # no light recorded
        assert (images == images[:1]).all()  # both variants the unedited source (or its unedited model crop)
        if size == "source":
            assert np.array_equal(images[0], img)


@needs_face_search
def test_dataset_and_expand_redraw_a_planned_control_without_a_face(tmp_path):
    """A planned yaw / light variant of a photo without a found face becomes a latent-code edit (drawn from the
    variant's own seed: the same every epoch and on a resumed expansion) instead of a copy of the source."""
    import h5py
    from PIL import Image

    from genaug.expand import expand_to_hdf5

    img, codes = _texture(), ["yaw", "light", "tone"]
    ds = genaug.GenerativeAugDataset([img], variants=6, codes=codes, return_meta=True, device="cpu", progress=False)
    planned = {ds.engine.code_names[e.code] for e in ds._plan(0)}  # (ds.meta(i) reports a control as applied)
    assert planned & {"yaw", "light"}  # controls were planned
    for i in range(len(ds)):
        out, meta = ds[i]
        assert meta.description.startswith("tone=") and not np.array_equal(out, img)
        assert np.array_equal(ds[i][0], out)  # the same on every read
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(img).save(src / "texture.png")
    expand_to_hdf5(src, tmp_path / "x.h5", 6, codes=codes, size="source", device="cpu", progress=False, seed=0)
    with h5py.File(tmp_path / "x.h5") as f:
        names, values, images = f.attrs["code_names"], f["codes"][()], f["images"][()]
    tone = list(__import__("json").loads(names)).index("tone")
    assert np.isfinite(values[:, tone]).all() and np.isnan(np.delete(values, tone, 1)).all()
    assert not any(np.array_equal(im, img) for im in images)


@needs_face_search
def test_controls_redrawn_for_a_photo_without_a_face_keep_its_variants_distinct(tmp_path):
    # seed 0 plans glasses=switch and light for the source; with no face found the light was re-drawn among the latent
    # codes as glasses=switch again: two identical "distinct" variants (dataset items and HDF5 records alike)
    import h5py
    from PIL import Image

    from genaug.expand import expand_to_hdf5

    img, codes = _texture(), ["smile", "glasses", "yaw", "light"]
    ds = genaug.GenerativeAugDataset([img], variants=2, codes=codes, return_meta=True, device="cpu", progress=False, seed=0)
    assert [ds.engine.code_names[e.code] for e in ds._plan(0)] == ["glasses", "light"]  # the plan this test needs
    items = [ds[i] for i in range(2)]
    assert {m.description for _, m in items} == {"glasses=1", "smile=1"}
    assert not np.array_equal(items[0][0], items[1][0])
    assert np.array_equal(ds[1][0], items[1][0])  # the same on every read
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(img).save(src / "texture.png")
    expand_to_hdf5(src, tmp_path / "x.h5", 2, codes=codes, size="source", device="cpu", progress=False, seed=0)
    with h5py.File(tmp_path / "x.h5") as f:
        values, images = f["codes"][()], f["images"][()]
    assert [tuple(np.flatnonzero(np.isfinite(v))) for v in values] in ([(1,), (0,)], [(0,), (1,)])  # glasses and smile
    assert not np.array_equal(images[0], images[1])


@needs_face_search
def test_augment_redraws_a_planned_turn_or_light_on_a_photo_without_a_face_and_says_so(tmp_path, capsys):
    # `genaug augment` planned yaw / light variants for a photo in which no face was found, rendered nothing and wrote
    # them as unchanged copies among the "augmented images" without a word (the transform, the Dataset and expand
    # re-draw such a control among the latent codes, or report the photo as having no face)
    from PIL import Image

    from genaug.cli.augment import main

    torch.set_num_threads(1)
    src = tmp_path / "in"
    src.mkdir()
    img = _texture(120, 160)
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
