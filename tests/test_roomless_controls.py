"""A random control a face has no room for, with other controls named: utkface_128 03001 is turned 44 degrees, beyond
the turn's 40 but within the light's 47.5, so ``codes=["yaw", "light"]`` re-draws its yaw draws as light (they came back
unchanged, "no room", in the transform, the Dataset, ``genaug expand`` and BatchFaceAug), while 02863 (-54 degrees)
has room for neither and stays unchanged; a named turn stays as asked."""
import json
import shutil

import albumentations as A
import h5py
import numpy as np
import pytest
import torch

import genaug
from conftest import UTKFACE, need, needs_dlib, utk_photo
from genaug.engine.edits import Edit
from genaug.expand import expand_to_hdf5

HALF, PROFILE = 3001, 2863  # no room to turn, room for the light / room for neither
NO_ROOM = "unchanged (no room for the control on this face)"
CODES = ["yaw", "light"]
pytestmark = [pytest.mark.data, needs_dlib]


def test_the_transform_redraws_a_turn_as_the_light_where_only_the_light_has_room():
    photo = utk_photo(need(UTKFACE), HALF)
    aug = genaug.GenerativeFaceAug(p=1.0, codes=CODES)
    pipe, yaw = A.ReplayCompose([aug]), aug.engine.code_names.index("yaw")
    drawn = []
    for seed in range(6):
        pipe.set_random_seed(seed)
        res = pipe(image=photo)
        drawn += [int(e[0]) for e in res["replay"]["transforms"][0]["params"]["edits"]]
        assert bool(aug.last_info.kept[0]) and aug.last_info.descriptions[0].startswith("light="), aug.last_info.descriptions
        assert not np.array_equal(res["image"], photo)
        assert np.array_equal(A.ReplayCompose.replay(res["replay"], image=photo)["image"], res["image"])
    assert yaw in drawn, drawn  # (some draws were turns, re-drawn)
    assert aug.engine.stats["augmented"] == 6  # (each photo counted once)


def test_a_face_with_room_for_no_control_named_stays_unchanged():
    photo = utk_photo(need(UTKFACE), PROFILE)
    aug = genaug.GenerativeFaceAug(p=1.0, codes=CODES)
    pipe = A.Compose([aug], seed=0)
    for _ in range(3):
        assert np.array_equal(pipe(image=photo)["image"], photo)
        assert aug.last_info.descriptions == [NO_ROOM]


def test_a_named_turn_is_not_redrawn():
    e = genaug.Engine(codes=CODES)
    photo = utk_photo(need(UTKFACE), HALF)
    out, info = e.augment(photo, edits=[Edit(e.code_names.index("yaw"), 30.0)])
    assert np.array_equal(out, photo) and info.descriptions == [NO_ROOM]


def test_the_dataset_redraws_a_turn_as_the_light_where_only_the_light_has_room():
    photo = utk_photo(need(UTKFACE), HALF)
    ds = genaug.GenerativeAugDataset([(photo, 7)], variants=6, codes=CODES, seed=1, return_meta=True, progress=False)
    ds.prepare()
    assert sum(e.code == ds.engine.code_names.index("yaw") for e in ds._plan(0, False)) == 3  # (planned turns)
    for i in range(len(ds)):
        image, label, meta = ds[i]
        assert label == 7 and meta.description.startswith("light="), meta
        assert not np.array_equal(image, photo) and ds.meta(i) == meta


def test_expand_redraws_a_turn_as_the_light_where_only_the_light_has_room(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(need(UTKFACE) / "images" / f"{HALF:05d}.jpg", src / "a.jpg")
    expand_to_hdf5(src, tmp_path / "o.h5", 6, codes=CODES, size="source", seed=1, device="cpu", progress=False)
    assert "no room" not in capsys.readouterr().err
    with h5py.File(tmp_path / "o.h5") as f:
        names, codes = json.loads(f.attrs["code_names"]), f["codes"][()]
    edited = ~np.isnan(codes)
    assert edited[:, names.index("light")].all() and edited.sum() == 6, codes


def test_batch_aug_redraws_a_turn_as_the_light_where_only_the_light_has_room():
    photo = torch.from_numpy(utk_photo(need(UTKFACE), HALF).copy()).permute(2, 0, 1)
    x = photo[None].repeat(8, 1, 1, 1).contiguous()
    aug = genaug.BatchFaceAug(p=1.0, codes=CODES, seed=0, return_params=True)
    lm = aug.find_landmarks(x)
    yaw, light = (aug._engine_on(x.device).code_names.index(c) for c in CODES)
    first = aug.draw(8)  # the draws of a fresh call from the same seed: some are turns
    aug = genaug.BatchFaceAug(p=1.0, codes=CODES, seed=0, return_params=True)
    out, params = aug(x, landmarks=lm)
    assert (first.code == yaw).any() and (params.code == light).all(), (first.code, params.code)
    assert torch.isfinite(params.target).all() and not any(torch.equal(o, x[0]) for o in out)
    assert torch.equal(aug(x, params=params, landmarks=lm)[0], out)  # the re-draw is in the parameters: a replay agrees
    kept, replayed = aug(x, params=first, landmarks=lm)  # given parameters are rendered as given: no room, NaN
    assert torch.isnan(replayed.target[first.code == yaw]).all()
    assert torch.equal(kept[first.code == yaw], x[first.code == yaw])


def test_genaug_augment_redraws_a_turn_as_the_light_where_only_the_light_has_room():
    from genaug.cli.augment import augment_chunk

    photo = utk_photo(need(UTKFACE), HALF)
    engine, unchanged = genaug.Engine(codes=CODES, seed=0), []
    yaw = engine.code_names.index("yaw")
    plan = genaug.engine.edits.variant_edits(engine.spec, 1, 5, 6, engine.codes, engine.bounds)
    assert any(e.code == yaw for e in plan)  # (planned turns)
    got = augment_chunk(engine, [photo], [5], 6, 1, unchanged=unchanged)[0]
    assert unchanged == [] and not any(np.array_equal(g, photo) for g in got)
    assert engine.stats["augmented"] == 6


def test_each_face_of_a_photo_redraws_a_turn_it_has_no_room_for():
    """``genaug.align.augment_faces`` left a near-profile face unchanged whenever its
    drawn turn had no room (4 of 6 seeds here); it now gets the light, as the one-face path re-draws it."""
    from PIL import Image

    from genaug.align import augment_faces

    def photo(i):
        return np.asarray(Image.fromarray(utk_photo(need(UTKFACE), i)).resize((256, 256)))

    scene = np.concatenate([photo(HALF), np.full((256, 64, 3), 120, np.uint8), photo(0)], 1)
    engine = genaug.Engine(device="cpu", codes=CODES, seed=0)
    for seed in range(6):
        out, n = augment_faces(engine, scene, "each", torch.Generator().manual_seed(seed))
        changed = np.abs(out.astype(int) - scene).max(2) > 3
        assert n == 2 and changed[:, :256].mean() > 0.1 and changed[:, 320:].mean() > 0.1, (seed, n)


def _scene() -> np.ndarray:
    from PIL import Image

    def photo(i):
        return np.asarray(Image.fromarray(utk_photo(need(UTKFACE), i)).resize((256, 256)))

    return np.concatenate([photo(HALF), np.full((256, 64, 3), 120, np.uint8), photo(0)], 1)


def test_each_faces_redraw_is_at_the_engines_strength(monkeypatch):
    """``augment_faces``'s re-draw of a control with no room was rendered at full strength: at ``strength=0`` a photo
    came back lit on both faces (every control scaled to 0 read as "no room" and re-drawn), at 0.3 the re-drawn light
    was the full-strength one; each face was also counted twice in ``engine.stats`` when re-drawn as a latent edit."""
    import genaug.engine.photos as photos
    from genaug.align import augment_faces

    scene, values, apply = _scene(), [], photos.apply_control

    def spy(control, value, *args, **kw):
        values.append(float(value))
        return apply(control, value, *args, **kw)

    monkeypatch.setattr(photos, "apply_control", spy)
    engine = genaug.Engine(device="cpu", codes=CODES, seed=0, strength=0.0)
    out, n = augment_faces(engine, scene, "each", torch.Generator().manual_seed(0))
    assert n == 0 and np.array_equal(out, scene) and not any(values), values
    seen = {}
    for strength in (1.0, 0.3):
        engine = genaug.Engine(device="cpu", codes=CODES, seed=0, strength=strength)
        values.clear()
        for seed in (0, 3):  # (a turn re-drawn as the light on the turned face each)
            augment_faces(engine, scene, "each", torch.Generator().manual_seed(seed))
        seen[strength] = list(values)
    assert len(seen[1.0]) == 6 and np.allclose(seen[0.3], 0.3 * np.array(seen[1.0]), atol=0.05), seen
    engine = genaug.Engine(device="cpu", codes=["yaw", "smile"], seed=0)
    faces = sum(augment_faces(engine, scene, "each", torch.Generator().manual_seed(s))[1] for s in (0, 2))
    assert faces == 4 and engine.stats["augmented"] == 4, engine.stats  # (a turn re-drawn as a smile: counted once)
