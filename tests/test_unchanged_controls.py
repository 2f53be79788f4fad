"""An image-space control that changed no pixel (a turn of a flat photo, frames drawn on a black one) is reported
unchanged, as a latent or colour edit that changed none is: ``last_info``, the Dataset's item meta (it said
``yaw=+22.4`` / ``drawn_glasses=+0.8``, ``kept`` True, for a photo that came back bit for bit)."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

import genaug
from genaug.engine.photos import NO_PIXEL

torch.set_num_threads(1)


@pytest.mark.parametrize("code, level", [("yaw", 128), ("drawn_glasses", 0)])
def test_a_control_that_changed_no_pixel_is_reported_unchanged(code, level):
    img = np.full((64, 64, 3), level, np.uint8)  # flat: a turn moves nothing; black: the frames are drawn black
    t = genaug.GenerativeFaceAug(p=1.0, codes=[code], framing="full", device="cpu", refine_steps=0)
    out = A.Compose([t], seed=0)(image=img)["image"]
    assert np.array_equal(out, img)
    assert t.last_info.descriptions == [NO_PIXEL] and not bool(t.last_info.kept[0])  # before: ['yaw=+22.4'], True
    ds = genaug.GenerativeAugDataset([img], variants=1, codes=[code], framing="full", return_meta=True, device="cpu",
                                     refine_steps=0, progress=False, seed=0)
    item, meta = ds[0]
    assert np.array_equal(item, img) and meta.edit is None and meta.description == NO_PIXEL


def test_a_control_that_changed_pixels_is_still_reported_applied():
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, ::4] = 255  # stripes: a turn moves them
    t = genaug.GenerativeFaceAug(p=1.0, codes=["yaw"], framing="full", device="cpu", refine_steps=0)
    out = A.Compose([t], seed=0)(image=img)["image"]
    assert not np.array_equal(out, img)
    assert t.last_info.descriptions[0].startswith("yaw=") and bool(t.last_info.kept[0])


def test_the_unchanged_check_converts_only_the_bands_that_differ(monkeypatch):
    # every edit's result is now compared with its photo: a float photo's 8-bit levels were made whole, twice (seconds
    # for 12 MP); bands equal value for value are skipped and the first band whose levels differ ends the look
    from genaug import images as photos  # (the check's home)

    converted = []
    real = photos._levels
    monkeypatch.setattr(photos, "_levels", lambda a: converted.append(a.shape[0]) or real(a))
    a = np.random.default_rng(0).random((1024, 48, 3), dtype=np.float32)
    b = a.copy()
    b[700, 5, 1] = 0.0 if a[700, 5, 1] > 0.5 else 1.0  # one pixel's level changed, in the third band
    assert not photos.same_levels(a, b) and sum(converted) <= 2 * 256
    c = a.copy()
    c[300, 7, 0] = np.nextafter(c[300, 7, 0], np.float32(2))  # a change within one level (float rounding)
    converted.clear()
    assert photos.same_levels(a, c) == np.array_equal(real(a), real(c)) and sum(converted) <= 2 * 256
    t = torch.from_numpy(a).permute(2, 0, 1)
    assert photos.same_levels(t.movedim(-2, 0), t.clone().movedim(-2, 0))
    assert not photos.same_levels(t.movedim(-2, 0), torch.from_numpy(b).permute(2, 0, 1).movedim(-2, 0))


def test_photos_of_other_shapes_are_not_the_same():
    # compared band by band, a photo of 256 (or 512, ...) rows was "the same" as a longer one whose first rows it matched
    from genaug.images import same_levels

    assert not same_levels(np.zeros((256, 8, 3), np.uint8), np.zeros((300, 8, 3), np.uint8))
    assert not same_levels(torch.zeros(512, 3, 8), torch.zeros(513, 3, 8))
    assert not same_levels(np.zeros((0, 8), np.float32), np.zeros((2, 8), np.float32))
    assert same_levels(np.zeros((256, 8, 3), np.uint8), np.zeros((256, 8, 3), np.uint8))


def test_expand_records_a_control_that_changed_no_pixel_as_nan_and_says_why(tmp_path, capsys):
    # HDF5 render revision 8: a turn of a flat photo kept its drawn value in ``codes``; its summary line named only
    # "a control at 0" and the like, none of which the run had asked for
    import h5py
    from PIL import Image

    from genaug.expand.pipeline import expand_to_hdf5

    (tmp_path / "in").mkdir()
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::4] = 255
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "in" / "flat.png")
    Image.fromarray(stripes).save(tmp_path / "in" / "stripes.png")
    expand_to_hdf5(tmp_path / "in", tmp_path / "x.h5", 2, codes=["yaw"], framing="full", size="source", refine_steps=0,
                   device="cpu", progress=False)
    with h5py.File(tmp_path / "x.h5") as f:
        paths, codes = [p.decode() for p in f["source_path"][:]], f["codes"][:]
        assert np.isnan(codes[[p == "flat.png" for p in paths]]).all()
        assert not np.isnan(codes[[p == "stripes.png" for p in paths]]).all(axis=1).any()  # (a turn moved them)
    said = capsys.readouterr().err
    assert "2 variant(s) kept the unedited source: their edit changed no pixel" in said and "on a flat or black photo" in said, said
