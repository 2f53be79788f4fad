"""Image-space controls (yaw, light, drawn_glasses) usable like codes: engine, transform, dataset, expansion, info."""
from __future__ import annotations

import json

import albumentations as A
import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CELEBA_ID200, need
from genaug.dataset import GenerativeAugDataset
from genaug.engine.core import Engine
from genaug.engine.edits import Edit, all_code_names, check_edit_options, code_index, random_edits, variant_edits
from genaug.expand import expand_to_hdf5
from genaug.faces.controls import CONTROL_NAMES, IMAGE_CONTROLS
from genaug.transforms import GenerativeFaceAug
from test_hdf5 import FAST, synth_folder


def _face_batch(n=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


@pytest.mark.parametrize("name", CONTROL_NAMES)
def test_zero_returns_the_input_exactly(name):
    x = _face_batch()
    assert torch.equal(IMAGE_CONTROLS[name].apply(x, 0.0), x)
    out = IMAGE_CONTROLS[name].apply(x, [0.0, IMAGE_CONTROLS[name].high])
    assert torch.equal(out[0], x[0]) and not torch.equal(out[1], x[1])


@pytest.mark.parametrize("name,bad", [("yaw", 31.0), ("yaw", float("nan")), ("light", -76.0), ("light", float("inf")),
                                      ("light_up", -31.0), ("light_up", 61.0), ("drawn_glasses", -0.1), ("drawn_glasses", 1.5),
                                      ("yaw", "left"), ("yaw", [1.0, 2.0, 3.0])])
def test_bad_values_refused(name, bad):
    with pytest.raises(ValueError, match=name):
        IMAGE_CONTROLS[name].apply(_face_batch(), bad)


def test_codes_bounds_and_draws(tiny_bundle_path, tiny_spec):
    n = len(tiny_spec.codes)
    assert CONTROL_NAMES == ["yaw", "light", "light_up", "drawn_glasses"]
    assert [code_index(tiny_spec, c) for c in CONTROL_NAMES] == [n, n + 1, n + 2, n + 3]
    assert all_code_names(tiny_spec) == list(tiny_spec.code_names) + CONTROL_NAMES
    check_edit_options(str(tiny_bundle_path), ["yaw", "light", "smile"], {"yaw": (-20, 20)})
    for codes, bounds, match in [(["yawn"], None, "yawn"), (["yaw"], {"yaw": (-40, 20)}, "yaw"),
                                 (["yaw"], {"yaw": (-1, 1)}, "reach past it"), (["light"], {"light": (1, "x")}, "light")]:
        with pytest.raises(ValueError, match=match):
            check_edit_options(str(tiny_bundle_path), codes, bounds)
    g = torch.Generator().manual_seed(0)
    drawn = random_edits(tiny_spec, 200, g, codes=["yaw", "light"], bounds={"yaw": (-20, 20)})
    yaw = [e.value for e in drawn if e.code == n]
    light = [e.value for e in drawn if e.code == n + 1]
    assert yaw and light and all(2 <= abs(v) <= 20 for v in yaw) and all(2 <= abs(v) <= 75 for v in light)
    assert max(light) > 20 or min(light) < -20  # light keeps its own (wider) range
    per_source = variant_edits(tiny_spec, 3, 5, 4, ["yaw", "smile"])
    assert per_source == variant_edits(tiny_spec, 3, 5, 4, ["yaw", "smile"])
    assert all(abs(e.value) >= 2 for e in per_source if e.code == n)
    assert Edit(n, 23.04).describe(tiny_spec) == "yaw=+23.0" and Edit(n + 1, -5.0).describe(tiny_spec) == "light=-5.0"


def test_engine_applies_controls_on_the_full_photo(trained_bundle_path, tiny_spec):
    e = Engine(trained_bundle_path, device="cpu", refine_steps=0, codes=["yaw"])
    n = len(tiny_spec.codes)
    photo = np.random.default_rng(0).integers(0, 256, (218, 178, 3), dtype=np.uint8)
    outs, info = e.augment([photo, photo], edits=[Edit(n, 25.0), Edit(n, 0.0)])
    assert info.descriptions == ["yaw=+25.0", "unchanged (the edit changed no pixel of this photo)"]  # (yaw=0)
    assert np.array_equal(outs[1], photo)
    assert outs[0].shape == photo.shape and outs[0].dtype == np.uint8 and not np.array_equal(outs[0], photo)
    # the control acts at the photo's resolution: the same as applying it to the photo directly (no 32 px change)
    frame = e.frame([photo])[1][0]
    from genaug.engine.render import apply_control
    assert np.array_equal(outs[0], apply_control(IMAGE_CONTROLS["yaw"], 25.0, photo, frame)[0])
    half, _ = e.augment(photo, edits=[Edit(n, 25.0)], strength=0.5)  # strength scales the angle
    assert np.array_equal(half, apply_control(IMAGE_CONTROLS["yaw"], 12.5, photo, frame)[0])
    x = e.frame([photo])[0]
    out, info = e.augment_tensor(x, edits=[Edit(n, -20.0)])
    assert out.shape == x.shape and torch.equal(info.edited, info.latent) and not torch.equal(out.cpu(), x)
    # placed: the caller renders the control on the full photo, so the model frame skips it (no gate judges it)
    skipped, _ = e.augment_tensor(x, edits=[Edit(n, -20.0)], placed=True)
    assert torch.equal(skipped.cpu(), x)
    gated = Engine(trained_bundle_path, device="cpu", refine_steps=0, codes=["yaw"], quality="critic", quality_threshold=0.0)
    judged, _ = gated.augment_tensor(x, edits=[Edit(n, -20.0)], placed=True)  # a gate judges the rendered frame
    assert torch.allclose(judged, out, atol=1e-6)


def test_transform_round_trip_and_changes_the_image(trained_bundle_path):
    # noise stands in for a face crop: framing="full" (auto framing finds no face in it and leaves it alone)
    t = GenerativeFaceAug(bundle=str(trained_bundle_path), refine_steps=0, device="cpu", p=1.0, codes=["yaw"],
                          bounds={"yaw": (10, 30)}, framing="full")
    back = A.from_dict(A.to_dict(A.Compose([t])))
    t2 = back.transforms[0]
    assert t2.codes == ["yaw"] and tuple(t2.bounds["yaw"]) == (10, 30)
    image = np.random.default_rng(1).integers(0, 256, (80, 64, 3), dtype=np.uint8)
    out = A.Compose([t2], seed=0)(image=image)["image"]
    assert out.shape == image.shape and out.dtype == image.dtype and not np.array_equal(out, image)
    with pytest.raises(ValueError, match="yawn"):
        GenerativeFaceAug(bundle=str(trained_bundle_path), codes=["yawn"])


def test_dataset_with_controls(trained_bundle_path, tiny_spec):
    rng = np.random.default_rng(0)
    base = [rng.integers(0, 256, (48, 40, 3), dtype=np.uint8) for _ in range(3)]
    ds = GenerativeAugDataset(base, variants=2, codes=["yaw", "light"], return_meta=True, bundle=trained_bundle_path,
                              device="cpu", refine_steps=0, progress=False, framing="full")  # noise as face crops
    for i in range(len(ds)):
        img, meta = ds[i]
        assert img.shape == base[0].shape and img.dtype == np.uint8
        assert meta.description.split("=")[0] in CONTROL_NAMES and not np.array_equal(img, base[i // 2])


def test_real_faces_dataset(tmp_path):
    files = sorted(need(CELEBA_ID200).rglob("*.jpg"))[:2]
    assert len(files) == 2
    base = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    ds = GenerativeAugDataset(base, variants=2, codes=["yaw", "light"], return_meta=True, device="cpu", progress=False)
    for i in range(len(ds)):
        img, meta = ds[i]
        assert img.shape == base[i // 2].shape and meta.description.split("=")[0] in CONTROL_NAMES
        assert 0 < np.abs(img.astype(int) - base[i // 2]).mean() < 40


def test_expansion_records_control_values(tmp_path, tiny_bundle_path, tiny_spec):
    src = synth_folder(tmp_path / "src", per_class=2)
    out = tmp_path / "c.h5"
    # noise stands in for face crops: framing="full" (auto framing finds no face in it, so no control is applied)
    expand_to_hdf5(src, out, 2, bundle=tiny_bundle_path, seed=3, codes=["yaw", "light", "light_up"], framing="full", **FAST)
    n = len(tiny_spec.codes)
    with h5py.File(out, "r") as f:
        names = json.loads(f.attrs["code_names"])
        codes = f["codes"][()]
    assert names == list(tiny_spec.code_names) + CONTROL_NAMES and codes.shape == (8, n + len(CONTROL_NAMES))
    assert np.isnan(codes[:, :n]).all()  # only controls were drawn
    one = ~np.isnan(codes[:, n:])
    assert (one.sum(1) == 1).all()
    yaw, light, up = codes[one[:, 0], n], codes[one[:, 1], n + 1], codes[one[:, 2], n + 2]
    assert len(yaw) and len(light) and len(up)
    assert np.all((np.abs(yaw) >= 2) & (np.abs(yaw) <= 30)) and np.all((np.abs(light) >= 2) & (np.abs(light) <= 75))
    assert np.all((np.abs(up) >= 2) & (up >= -30) & (up <= 60))
    plain = tmp_path / "p.h5"  # without a control, the file keeps the latent codes only
    expand_to_hdf5(src, plain, 1, bundle=tiny_bundle_path, seed=3, **FAST)
    with h5py.File(plain, "r") as f:
        assert json.loads(f.attrs["code_names"]) == list(tiny_spec.code_names)


def test_info_lists_controls(capsys):
    from genaug.cli.info import main

    assert main([]) == 0
    out = capsys.readouterr().out
    assert "image-space controls" in out and all(name in out for name in CONTROL_NAMES)


def test_batch_transform_takes_controls_and_refuses_bad_ones(trained_bundle_path):
    """Named controls are rendered on the batch (tests/test_batch_aug.py); an unknown name or a bound
    outside a control's range is refused when the transform is built, naming it."""
    from genaug.batch import BatchFaceAug

    assert BatchFaceAug(codes=["smile", "yaw"], bundle=trained_bundle_path, device="cpu").codes == ["smile", "yaw"]
    with pytest.raises(ValueError, match="yawn.*image-space controls"):
        BatchFaceAug(codes=["smile", "yawn"], bundle=trained_bundle_path, device="cpu")
    with pytest.raises(ValueError, match=r"bounds\['yaw'\]"):
        BatchFaceAug(codes=["yaw"], bounds={"yaw": (-50, 50)}, bundle=trained_bundle_path, device="cpu")


@pytest.mark.parametrize("name", ["yaw", "light"])
def test_strength_above_one_saturates_a_control_at_its_range(tiny_bundle_path, name):
    """``strength`` has no upper limit (> 1 extrapolates a latent edit, saturating at a continuous
    code's range); a control drawn near its end and scaled past it saturates too, not an error
    in the middle of training."""
    e = Engine(tiny_bundle_path, device="cpu", refine_steps=0, codes=[name])
    control = IMAGE_CONTROLS[name]
    x = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    out, info = e.augment([x], edits=[Edit(code_index(e.spec, name), control.high * 0.9, False)], strength=torch.tensor([2.0]))
    assert out[0].shape == x.shape and info.edits[0].value == control.high
    t = A.Compose([GenerativeFaceAug(bundle=str(tiny_bundle_path), codes=[name], strength=(1.5, 2.0), refine_steps=0,
                                     device="cpu", p=1.0)], seed=0)
    for _ in range(4):
        assert t(image=x)["image"].shape == x.shape
