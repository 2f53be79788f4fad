"""The light on near-profile faces: it fades out from 40 to 50 degrees of yaw; a face it would barely change has no room
(a random draw there is re-drawn among the latent codes)."""
import albumentations as A
import h5py
import numpy as np
import pytest
import torch

import genaug
from conftest import UTKFACE, need, needs_dlib, utk_photo
from genaug.expand import expand_to_hdf5

# utkface_128 03472 (the 5-point fit without pitch: 49.6 degrees) was where the fade left 4 % of the light (at most 2
# levels changed) while last_info, the Dataset's meta and HDF5 `codes` reported "light=-60.0"; with pitch weighed it
# reads 42.8, so the profile is now 02863 (-54; -57 without pitch); 03001: 44 degrees either way, about half the
# light; 03000: 4-6 degrees, all of it
PROFILE, HALF, FRONTAL = 2863, 3001, 3000
NO_ROOM = "unchanged (no room for the control on this face)"
pytestmark = pytest.mark.data


def _batch(*numbers: int) -> torch.Tensor:
    folder = need(UTKFACE)
    return torch.stack([torch.from_numpy(utk_photo(folder, i).copy()).permute(2, 0, 1) for i in numbers]).float() / 127.5 - 1


@needs_dlib
@pytest.mark.parametrize("name", ["light", "light_up"])
def test_a_face_the_fade_leaves_almost_no_light_has_no_room(name):
    from genaug.faces.controls import IMAGE_CONTROLS

    control, x = IMAGE_CONTROLS[name], _batch(PROFILE, HALF, FRONTAL)
    v = -20.0 if name == "light_up" else -60.0
    assert control.fit(x, v).tolist() == [0.0, v, v]
    assert control.fit(x, v, drawn=(control.low, control.high)).tolist() == [0.0, v, v]  # a draw as drawn, or nothing
    out, applied = control.fit_apply(x, v)
    assert torch.equal(out[0], x[0]) and applied.tolist() == [0.0, v, v]


@needs_dlib
def test_the_light_on_a_near_profile_photo_is_reported_unchanged():
    photo = utk_photo(need(UTKFACE), PROFILE)
    aug = genaug.GenerativeFaceAug(p=1.0, codes=["light"])
    for seed in range(3):
        out = A.Compose([aug], seed=seed)(image=photo)["image"]
        assert np.array_equal(out, photo)
        assert aug.last_info.descriptions == [NO_ROOM] and not bool(aug.last_info.kept[0])
    ds = genaug.GenerativeAugDataset([(photo, 0)], variants=2, codes=["light"], seed=0, return_meta=True)
    metas = [ds[i][2] for i in range(2)]  # the samples' metas: as applied
    assert [m.description for m in metas] == [NO_ROOM] * 2 and all(m.code == -1 and np.isnan(m.value) for m in metas)


@needs_dlib
@pytest.mark.parametrize("size", ["model", "source"])
def test_the_light_on_a_near_profile_photo_is_recorded_nan(tmp_path, size):
    src = tmp_path / "profile"
    src.mkdir()
    (src / "02863.jpg").write_bytes((need(UTKFACE) / "images" / "02863.jpg").read_bytes())
    out = tmp_path / "o.h5"
    expand_to_hdf5(src, out, 2, codes=["light"], size=size, seed=0, device="cpu", progress=False)
    with h5py.File(out) as f:
        assert np.isnan(f["codes"][()]).all(), f["codes"][()]


@needs_dlib
def test_a_random_control_a_near_profile_face_has_no_room_for_is_redrawn_among_the_latent_codes():
    # GenerativeFaceAug(p=1) returned a near-profile photo unchanged ("no room") whenever it drew light or yaw, while a
    # photo whose face the detector missed got a latent edit instead; now both are re-drawn, and a replay agrees
    photo = utk_photo(need(UTKFACE), PROFILE)
    aug = genaug.GenerativeFaceAug(p=1.0, codes=["light", "tone"])
    pipe, light = A.ReplayCompose([aug]), aug.engine.code_names.index("light")
    drawn = []
    for seed in range(6):
        pipe.set_random_seed(seed)
        res = pipe(image=photo)
        drawn += [int(e[0]) for e in res["replay"]["transforms"][0]["params"]["edits"]]
        assert bool(aug.last_info.kept[0]) and aug.last_info.descriptions[0].startswith("tone="), aug.last_info.descriptions
        assert not np.array_equal(res["image"], photo)
        assert np.array_equal(A.ReplayCompose.replay(res["replay"], image=photo)["image"], res["image"])
    assert light in drawn, drawn  # (some of the draws were the light, re-drawn)


@needs_dlib
def test_a_redrawn_near_profile_photo_is_counted_once():
    # the re-draw ran the photo through the engine a second time: stats["augmented"] counted it twice
    photo = utk_photo(need(UTKFACE), PROFILE)
    aug = genaug.GenerativeFaceAug(p=1.0, codes=["light", "tone"])
    pipe = A.Compose([aug], seed=0)
    for _ in range(4):
        pipe(image=photo)
    assert aug.engine.stats["augmented"] == 4, aug.engine.stats
