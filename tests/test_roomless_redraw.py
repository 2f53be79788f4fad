"""A random yaw / light a near-profile face has no room for, in the Dataset and ``genaug expand``: re-drawn among the
latent codes from the item's own seed, as the albumentations transform does (``Engine._redraw_roomless``), and
reported (meta, HDF5 ``codes``) as applied."""
import json
import shutil

import h5py
import numpy as np
import pytest
from PIL import Image

import genaug
from conftest import UTKFACE, need, needs_dlib, utk_photo
from genaug.expand import expand_to_hdf5

PROFILE = 2863  # utkface_128: -54 degrees by the 5-point fit (-57 without pitch); no room for a turn outwards nor for the light
pytestmark = [pytest.mark.data, needs_dlib]


def test_the_dataset_redraws_a_control_a_near_profile_face_has_no_room_for():
    # GenerativeAugDataset(codes=["light", "yaw", "tone"]) returned this photo unchanged for 3 of its 4 variants
    # ("unchanged (no room for the control on this face)") and ds.meta(i) named "yaw=+11.7" / "light=+66.9" for them,
    # while the transform re-draws such a draw among the latent codes
    photo = utk_photo(need(UTKFACE), PROFILE)
    kw = dict(variants=4, codes=["light", "yaw", "tone"], seed=0, return_meta=True, progress=False)
    ds = genaug.GenerativeAugDataset([(photo, 7)], **kw)
    items = [ds[i] for i in range(len(ds))]
    for i, (image, label, meta) in enumerate(items):
        assert label == 7 and meta.description.startswith("tone="), meta
        assert not np.array_equal(image, photo)
        assert ds.meta(i) == meta  # the meta as the item applies it, not the planned light / yaw
    again = genaug.GenerativeAugDataset([(photo, 7)], **kw)  # a pure function of (seed, index)
    for i, (image, _, meta) in enumerate(items):
        image2, _, meta2 = again[i]
        assert meta2 == meta and np.array_equal(image2, image)
    assert len({m.value for _, _, m in items}) == 4  # still distinct variants


@pytest.mark.parametrize("size", ["model", "source"])
def test_expand_redraws_a_control_a_near_profile_face_has_no_room_for(tmp_path, size, capsys):
    # the records kept the source unedited (codes NaN: "3 variant(s) kept the unedited source: their control had no
    # room on the face") where a latent code in --codes could have edited them
    src = tmp_path / "profile"
    src.mkdir()
    shutil.copy(need(UTKFACE) / "images" / f"{PROFILE:05d}.jpg", src / "a.jpg")
    for name in ("o1.h5", "o2.h5"):
        expand_to_hdf5(src, tmp_path / name, 3, codes=["light", "yaw", "tone"], size=size, seed=0, device="cpu",
                       progress=False)
    assert "no room" not in capsys.readouterr().err
    with h5py.File(tmp_path / "o1.h5") as f, h5py.File(tmp_path / "o2.h5") as g:
        names, codes = json.loads(f.attrs["code_names"]), f["codes"][()]
        assert np.array_equal(codes, g["codes"][()], equal_nan=True) and np.array_equal(f["images"][()], g["images"][()])
        edited = ~np.isnan(codes)
        assert edited.sum(1).tolist() == [1, 1, 1] and edited[:, names.index("tone")].all(), codes
        if size == "source":
            photo = np.asarray(Image.open(src / "a.jpg").convert("RGB"))
            assert not any(np.array_equal(im, photo) for im in f["images"][()])
