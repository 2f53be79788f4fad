"""At strength 0 an edit changes no pixel: a colour edit (tone), a control (yaw, light: scaled to 0) and, in ``delta``
mode, a latent code's edit (glasses, smile) are reported unchanged by every front end alike (``last_info``, Dataset
items and ``ds.meta(i)``, HDF5 ``codes`` NaN with the run naming them, ``genaug augment``'s summary list,
``BatchFaceAug``'s ``params.target`` NaN), not as the edit's value (``tone=+0.6``, ``yaw=+0.0``, ``glasses=1``)."""
from __future__ import annotations

import dataclasses

import albumentations as A
import h5py
import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import demo_face
from genaug.cli.augment import augment_chunk
from genaug.engine import Engine
from genaug.engine.batch_edits import BatchParams
from genaug.engine.edits import Edit
from genaug.engine.photos import NO_PIXEL
from genaug.expand.pipeline import expand_to_hdf5

torch.set_num_threads(1)


@pytest.mark.filterwarnings("ignore:2 variants exceed")  # (glasses, smile: one distinct edit each)
@pytest.mark.parametrize("code", ["tone", "yaw", "light", "glasses", "smile"])  # (glasses, smile: were named)
def test_every_front_end_says_an_edit_at_strength_0_left_the_photo_unchanged(code, tmp_path, capsys):
    img = demo_face()
    t = genaug.GenerativeFaceAug(p=1.0, codes=[code], strength=0, device="cpu", refine_steps=0)
    out = A.Compose([t], seed=0)(image=img)["image"]
    assert np.array_equal(out, img) and t.last_info.descriptions == [NO_PIXEL]  # before (yaw): ['yaw=+0.0']
    assert not bool(t.last_info.kept[0])
    ds = genaug.GenerativeAugDataset([img], variants=2, codes=[code], strength=0, return_meta=True, device="cpu",
                                     refine_steps=0, progress=False, seed=0)
    for i in range(2):
        item, meta = ds[i]
        assert np.array_equal(np.asarray(item), img)
        assert meta.edit is None and meta.description == ds.meta(i).description == NO_PIXEL
    unchanged: list[int] = []
    augment_chunk(Engine(device="cpu", codes=[code], strength=0, refine_steps=0), [img], [0], 2, 0, [], unchanged)
    assert unchanged == [0]  # named in genaug augment's summary: variants written unchanged
    (tmp_path / "in").mkdir()
    Image.fromarray(img).save(tmp_path / "in" / "face.png")
    for size in ("model", "source"):
        h5 = tmp_path / f"{size}.h5"
        expand_to_hdf5(tmp_path / "in", h5, 2, codes=[code], strength=0, size=size, refine_steps=0, device="cpu",
                       progress=False)
        with h5py.File(h5) as f:
            assert np.isnan(f["codes"][:]).all(), f["codes"][:]  # before (tone): the value drawn, e.g. 0.60
            if size == "source":
                assert all(np.array_equal(im, img) for im in f["images"][:])
        assert "2 variant(s) kept the unedited source: their edit changed no pixel" in capsys.readouterr().err


def test_a_strength_per_row_names_the_rows_it_moved_and_no_other():
    # Engine.augment(strength=<one per row>): the row at 0 said "glasses=1" though it came back as the photo
    img = demo_face()
    e = Engine(device="cpu", codes=["glasses"], refine_steps=0)
    for mode in ("delta", "regenerate"):  # (regenerate at 0: the generator's face, a change, named)
        out, info = e.augment([img, img, img], edits=[Edit("glasses", 1.0)] * 3, strength=torch.tensor([0.0, 1.0, 0.0]),
                              mode=mode)
        assert [np.array_equal(o, img) for o in out] == [mode == "delta", False, mode == "delta"]
        assert info.descriptions == ([NO_PIXEL, "glasses=1", NO_PIXEL] if mode == "delta" else ["glasses=1"] * 3)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_batch_rows_at_strength_0_come_back_as_given_not_edited(dtype):
    # BatchFaceAug(strength=0): the input came back, yet params.target named the value of every row (glasses 1, tone -0.82)
    x = torch.from_numpy(np.stack([demo_face()] * 4)).permute(0, 3, 1, 2).contiguous()
    x = x if dtype == torch.uint8 else x.float() / 255
    aug = genaug.BatchFaceAug(p=1.0, codes=["glasses", "smile", "tone", "yaw"], strength=0, seed=0, return_params=True)
    names = genaug.Engine(device="cpu", refine_steps=0).code_names
    params = BatchParams(torch.ones(4, dtype=torch.bool), torch.tensor([names.index(c) for c in ("glasses", "smile", "tone", "yaw")]),
                         torch.tensor([1.0, 1.0, 0.6, 20.0], dtype=torch.float64), torch.tensor([True, True, False, False]),
                         torch.zeros(4))
    out, done = aug(x, params=params)
    assert torch.equal(out, x) and torch.isnan(done.target).all(), done.target
    out, drawn = aug(x)  # drawn at the transform's strength 0
    assert torch.equal(out, x) and torch.isnan(drawn.target).all(), drawn.target
    for strength in ([1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]):  # a strength per row
        out, done = aug(x, params=dataclasses.replace(params, strength=torch.tensor(strength)))
        assert torch.isnan(done.target).tolist() == [s == 0 for s in strength]
        assert [torch.equal(o, i) for o, i in zip(out, x)] == [s == 0 for s in strength]
    out, done = aug(x, params=dataclasses.replace(params, value=torch.tensor([1.0, 1.0, 0.6, 0.0], dtype=torch.float64),
                                                  strength=torch.ones(4)))  # a control at 0, at strength 1
    assert torch.isnan(done.target).tolist() == [False, False, False, True] and torch.equal(out[3], x[3])
    aug.mode = "regenerate"  # a latent code at 0: the generator's face, a change, named
    assert torch.isnan(aug(x, params=params)[1].target).tolist() == [False, False, False, True]


def test_a_control_at_strength_1_is_still_applied_and_named():
    img = demo_face()
    t = genaug.GenerativeFaceAug(p=1.0, codes=["yaw"], device="cpu", refine_steps=0)
    out = A.Compose([t], seed=0)(image=img)["image"]
    assert not np.array_equal(out, img) and t.last_info.descriptions[0].startswith("yaw=")


@pytest.mark.parametrize("kind", ["float32", "float64", "tensor", "F", "F255"])
def test_a_colour_edit_at_strength_0_on_a_float_photo_is_unchanged_as_on_its_uint8_one(kind):
    """A float photo recoloured at strength 0 comes back within float rounding of itself (1.5e-8 off): the same 8-bit
    levels, so it is reported unchanged as the uint8 photo is (was 'tone=-0.303', the transform and the Dataset; PIL's
    float grey "F" images, in [0, 1] or 0..255, alike)."""
    img = demo_face() / 255.0
    if kind in ("F", "F255"):
        img = Image.fromarray((img.mean(2) * (255 if kind == "F255" else 1)).astype(np.float32), "F")
    else:
        img = torch.from_numpy(img).permute(2, 0, 1).float() if kind == "tensor" else img.astype(kind)
    t = genaug.GenerativeFaceAug(p=1.0, codes=["tone"], strength=0, device="cpu", refine_steps=0)
    if kind not in ("float32", "float64"):  # (albumentations takes numpy arrays: the engine's own call)
        out, info = t.engine.augment(img, generator=torch.Generator().manual_seed(0), strength=0.0)
    else:
        out, info = A.Compose([t], seed=0)(image=img)["image"], t.last_info
    assert np.abs(np.asarray(out, dtype=np.float64) - np.asarray(img, dtype=np.float64)).max() < 1e-4
    assert info.descriptions == [NO_PIXEL]
    ds = genaug.GenerativeAugDataset([img], variants=1, codes=["tone"], strength=0, return_meta=True, device="cpu",
                                     refine_steps=0, progress=False, seed=0)
    assert ds[0][1].description == ds.meta(0).description == NO_PIXEL


def test_a_batch_control_the_face_has_no_room_for_is_not_edited(monkeypatch):
    # a turn fitted to 0 (a near-profile face: no room) left the row as it was, yet params.target said 0.0, an edit;
    # now NaN, as the other front ends report it unchanged ("no room")
    from genaug.faces import controls

    monkeypatch.setattr(controls.ImageControl, "fit", lambda self, x, values, *a, **k: torch.zeros(len(x)))
    x = torch.from_numpy(np.stack([demo_face(64)] * 2)).permute(0, 3, 1, 2).contiguous()
    out, params = genaug.BatchFaceAug(p=1.0, codes=["yaw"], seed=0, return_params=True)(x)
    assert torch.isnan(params.target).all(), params.target
    assert torch.equal(out, x)
