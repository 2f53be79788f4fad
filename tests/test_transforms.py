"""GenerativeFaceAug as an albumentations 2.0 transform."""
from __future__ import annotations

import pickle
import shutil

import albumentations as A
import numpy as np
import pytest

import genaug
from genaug.bundle import read_spec
from genaug.transforms import GenerativeFaceAug


def _image(seed=0, shape=(48, 48, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture()
def aug_kw(trained_bundle_path):
    return dict(bundle=str(trained_bundle_path), refine_steps=0, device="cpu", p=1.0)


def test_default_args_and_lazy_loading():
    t = genaug.GenerativeFaceAug()
    assert t.bundle == "default" and t.mode == "delta" and t.p == 0.5 and t._engine is None  # nothing loaded yet


@pytest.mark.parametrize(
    "image",
    [_image(), _image(1, (218, 178, 3)), np.random.default_rng(2).random((40, 40, 3), dtype=np.float32),
     _image(3, (40, 40)), _image(4, (40, 40, 1))],
    ids=["uint8", "celeba", "float32", "gray2d", "gray_hwc1"],
)
def test_apply_keeps_shape_and_dtype(aug_kw, image):
    out = A.Compose([GenerativeFaceAug(**aug_kw)], seed=0)(image=image)["image"]
    assert out.shape == image.shape and out.dtype == image.dtype and not np.array_equal(out, image)


def test_compose_seed_reproduces_and_params_replay(aug_kw):
    img = _image()
    make = lambda seed: A.Compose([A.HorizontalFlip(), GenerativeFaceAug(strength=(0.5, 1.0), **aug_kw)], seed=seed)  # noqa: E731
    a, b, c = make(5), make(5), make(6)
    outs_a = [a(image=img)["image"] for _ in range(3)]
    outs_b = [b(image=img)["image"] for _ in range(3)]
    outs_c = [c(image=img)["image"] for _ in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(outs_a, outs_b))
    assert not all(np.array_equal(x, y) for x, y in zip(outs_a, outs_c))
    t = a.transforms[1]
    params = t.get_applied_params()
    assert {"edits", "strengths", "gate_seed"} <= set(params) and 0.5 <= params["strengths"][0] <= 1.0
    np.testing.assert_array_equal(t.apply(img, **params), t.apply(img, **params))  # apply is pure


def test_replay_compose_replays_the_same_augmentation(aug_kw):
    img = _image(7, (60, 50, 3))
    pipe = A.ReplayCompose([A.HorizontalFlip(p=0.5), GenerativeFaceAug(**aug_kw)])
    pipe.set_random_seed(0)  # ReplayCompose takes no seed=; unseeded, a draw of the tiny bundle can round to no change
    first = pipe(image=img)
    again = A.ReplayCompose.replay(first["replay"], image=img)
    np.testing.assert_array_equal(again["image"], first["image"])
    assert not np.array_equal(first["image"], img)


def test_to_dict_from_dict_roundtrip(aug_kw):
    t = GenerativeFaceAug(codes=["smile", 0], strength=(0.2, 0.8), bounds={"smile": (-0.5, 0.5)},
                          mode="regenerate", framing="full", **aug_kw)
    d = A.to_dict(A.Compose([t]))
    spec = d["transform"]["transforms"][0]
    for name in t.get_transform_init_args_names():
        assert name in spec or getattr(t, name) is None, name
    back = A.from_dict(d).transforms[0]
    assert isinstance(back, GenerativeFaceAug)
    assert {n: getattr(back, n) for n in t.get_transform_init_args_names()} == {
        n: getattr(t, n) for n in t.get_transform_init_args_names()
    }
    img = _image()
    a = A.Compose([t], seed=1)(image=img)["image"]
    b = A.Compose([back], seed=1)(image=img)["image"]
    np.testing.assert_array_equal(a, b)


def test_codes_and_bounds_respected(aug_kw):
    t = GenerativeFaceAug(codes=["smile"], bounds={"smile": (0.2, 0.4)}, **aug_kw)
    comp = A.Compose([t], seed=0)
    for _ in range(5):
        comp(image=_image())
        (edit,) = t.get_applied_params()["edits"]
        assert edit.code == 2 and 0.2 <= edit.value <= 0.4


@pytest.mark.parametrize(
    "kw, match",
    [({"mode": "blend"}, "mode"), ({"strength": -1.0}, "strength"), ({"strength": (0.8, 0.2)}, "strength"),
     ({"refine_steps": -1}, "refine_steps"), ({"refine_loss": "l7"}, "l7"), ({"p": 2.0}, "p"),
     ({"strength": float("nan")}, "finite"), ({"strength": (0.2, float("inf"))}, "finite"), ({"codes": []}, "at least one"),
     ({"device": "gpu"}, "unknown device"), ({"gate_threshold": float("nan")}, "gate_threshold")],
)
def test_invalid_arguments_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        GenerativeFaceAug(**kw)


def test_bundle_codes_and_bounds_checked_at_construction(trained_bundle_path, tmp_path):
    """A wrong code, range or bundle is an error when the transform / dataset is built, not at the
    first image (maybe in a DataLoader worker); checked from the config, no weights loaded."""
    kw = dict(bundle=str(trained_bundle_path), device="cpu", p=1.0)
    with pytest.raises(ValueError, match="unknown code 'nope'"):
        GenerativeFaceAug(codes=["nope"], **kw)
    with pytest.raises(ValueError, match="out of range"):
        GenerativeFaceAug(codes=[99], **kw)
    with pytest.raises(ValueError, match="low <= high"):
        GenerativeFaceAug(codes=["smile"], bounds={"smile": (0.6, 0.2)}, **kw)
    with pytest.raises(ValueError, match="low <= high"):
        GenerativeFaceAug(bounds={"smile": (-3.0, 0.0)}, **kw)
    first = read_spec(trained_bundle_path).codes[0]  # a categorical code
    with pytest.raises(ValueError, match="categorical"):
        GenerativeFaceAug(bounds={first.name: (0.0, 1.0)}, **kw)
    with pytest.raises(FileNotFoundError, match="bundle not found"):
        GenerativeFaceAug(bundle=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="unknown code"):
        genaug.GenerativeAugDataset([(_image(), 0)], codes=["nope"], bundle=str(trained_bundle_path), lazy=True)
    t = GenerativeFaceAug(codes=["smile"], bounds={"smile": (0.2, 0.4)}, **kw)
    assert t._engine is None  # the check read the config only
    smile = read_spec(trained_bundle_path).code_index("smile")
    assert GenerativeFaceAug(codes=[smile], bounds={smile: (0.2, 0.4)}, **kw).bounds == {smile: (0.2, 0.4)}  # by index
    hollow = tmp_path / "hollow"
    shutil.copytree(trained_bundle_path, hollow)
    (hollow / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="weights missing"):
        GenerativeFaceAug(bundle=str(hollow))


def test_replay_survives_json(aug_kw):
    import json

    img = _image(3)
    first = A.ReplayCompose([GenerativeFaceAug(**aug_kw)])(image=img)
    replay = json.loads(json.dumps(first["replay"]))
    np.testing.assert_array_equal(A.ReplayCompose.replay(replay, image=img)["image"], first["image"])


def test_float_ringing_of_a_cubic_resize_upstream_is_clipped_not_refused(aug_kw):
    import cv2

    face = np.random.default_rng(5).random((48, 48, 3), dtype=np.float32)
    resize = A.Resize(80, 72, interpolation=cv2.INTER_CUBIC)  # overshoots [0, 1] a little (was a ValueError)
    assert resize(image=face)["image"].min() < 0 < 1 < resize(image=face)["image"].max()
    out = A.Compose([resize, GenerativeFaceAug(**aug_kw)], seed=0)(image=face)["image"]
    assert out.shape == (80, 72, 3) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match=r"float images must be in \[0, 1\].*Normalize after genaug"):
        A.Compose([A.Normalize(), GenerativeFaceAug(**aug_kw)], seed=0)(image=face)


def test_bad_image_raises_value_error(aug_kw):
    with pytest.raises(ValueError, match="too small"):
        A.Compose([GenerativeFaceAug(**aug_kw)])(image=_image(0, (8, 8, 3)))


def test_picklable_after_loading(aug_kw):
    t = GenerativeFaceAug(**aug_kw)
    A.Compose([t], seed=0)(image=_image())
    assert t._engine is not None
    clone = pickle.loads(pickle.dumps(t))
    assert clone._engine is None and clone.bundle == t.bundle


def test_latents_cached_by_content(aug_kw):
    t = GenerativeFaceAug(**aug_kw)
    comp = A.Compose([t], seed=0)
    img = _image()
    comp(image=img)
    comp(image=img)
    assert t.engine.cache.hits == 1 and len(t.engine.cache) == 1


def test_bundle_folder_as_path(tiny_bundle_path):
    """A bundle folder given as a ``pathlib.Path`` (as the Dataset and BatchFaceAug take it) is
    accepted and kept as a string, so ``to_dict`` / JSON / ``from_dict`` still round-trip."""
    import json

    t = GenerativeFaceAug(bundle=tiny_bundle_path, refine_steps=0, device="cpu", p=1.0)
    assert t.bundle == str(tiny_bundle_path)
    back = A.from_dict(json.loads(json.dumps(A.to_dict(t))))
    assert back.bundle == str(tiny_bundle_path)
    assert t(image=_image())["image"].shape == (48, 48, 3)


def test_bounds_by_code_index_survive_json(tiny_bundle_path, tmp_path):
    """``bounds={5: ...}`` (a code by index, as the docs allow) survives ``A.save`` / ``A.load``
    and ``to_dict`` through JSON, whose object keys are strings."""
    import json

    spec = read_spec(tiny_bundle_path)
    ci = next(i for i in range(len(spec.codes)) if not spec.is_categorical(i))  # a continuous code
    t = GenerativeFaceAug(bundle=str(tiny_bundle_path), codes=[ci], bounds={ci: (0.0, 0.5)}, refine_steps=0, device="cpu", p=1.0)
    back = A.from_dict(json.loads(json.dumps(A.to_dict(t))))
    assert back.bounds == {ci: (0.0, 0.5)} and back.codes == [ci]
    A.save(A.Compose([t]), str(tmp_path / "p.json"))
    assert A.load(str(tmp_path / "p.json")).transforms[0].bounds == {ci: (0.0, 0.5)}


def test_a_loaded_bundle_is_refused_with_what_to_pass(tiny_bundle_path):
    """``Engine`` takes a loaded ``Bundle``; the transform names a folder (it serialises). Given a
    ``Bundle`` it said only pydantic's 'Input should be a valid string ... is-instance[Path]'."""
    with pytest.raises(ValueError, match=f"got Bundle; .*save_pretrained.*loaded from '{tiny_bundle_path}'"):
        GenerativeFaceAug(bundle=genaug.load_bundle(tiny_bundle_path))
