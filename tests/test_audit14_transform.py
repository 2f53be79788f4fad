"""A fourteenth user audit, the albumentations front end as an experienced albumentations 2.0.x user drives it:
arguments of other types than the ones written down, arguments set after construction (each test failed before its
fix), and the pipeline contracts a user leans on (seeded ``Compose`` nesting, serialisation, replay, copies)."""
from __future__ import annotations

import copy
import pickle
import warnings

import albumentations as A
import numpy as np
import pytest
import torch

import genaug


def _face(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize("codes", [5, np.int64(2), 3.0, (c for c in ["tone"])], ids=["int", "numpy-int", "float", "generator"])
def test_codes_that_are_not_a_list_are_refused_not_turned_into_every_default(codes):
    # albumentations turns an exception from a schema validator that is not a ValueError into a warning and builds the
    # transform from the defaults of *every* argument: codes=5 (len(5) raised a TypeError) gave a transform with
    # codes=None, strength=1.0 and p=0.5 instead of the strength=0.3, p=1.0 asked for, with a warning only
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="codes must be a list"):
            genaug.GenerativeFaceAug(codes=codes, strength=0.3, p=1.0, device="cpu")


def test_a_bad_codes_value_set_later_leaves_the_other_arguments_as_they_were():
    aug = genaug.GenerativeFaceAug(codes=["tone"], framing="full", strength=0.5, p=1.0, device="cpu")
    with pytest.raises(ValueError, match="codes must be a list"):
        aug.codes = np.int64(2)  # was: a warning, then bundle, framing and codes silently back to their defaults
    assert (aug.codes, aug.framing, aug.strength) == (["tone"], "full", 0.5)


@pytest.mark.parametrize("value", [-1.0, True, (0.9, 0.1), "x", float("nan")])
def test_a_strength_set_after_construction_is_validated_as_in_the_constructor(value):
    # aug.strength = True (refused by the constructor) was taken as 1.0; (0.9, 0.1) drew from a reversed range; "x"
    # failed at the first image (perhaps in a DataLoader worker) with a TypeError from random.uniform
    aug = genaug.GenerativeFaceAug(strength=0.5, p=1.0, device="cpu")
    with pytest.raises(ValueError, match="strength"):
        aug.strength = value
    assert aug.strength == 0.5


def test_a_valid_strength_set_later_takes_effect_without_reloading_the_model():
    aug = genaug.GenerativeFaceAug(codes=["tone"], strength=1.0, p=1.0, device="cpu")
    aug(image=_face())
    engine = aug.engine
    aug.strength = [0.2, 0.4]  # a list, as JSON gives it, is read as the pair the constructor makes of it
    assert aug.strength == (0.2, 0.4) and aug.engine is engine
    pipe = A.Compose([aug], seed=0)
    pipe(image=_face())
    assert 0.2 <= aug.get_applied_params()["strengths"][0] <= 0.4
    assert A.from_dict(A.to_dict(aug)).strength == (0.2, 0.4)


@pytest.mark.parametrize("value", [np.float32(2.0), np.float32("nan"), np.int64(3), torch.tensor(2.0), np.array(2.0), "2"],
                         ids=["numpy-float32", "numpy-nan", "numpy-int", "tensor", "0-d-array", "string"])
def test_a_quality_threshold_out_of_range_is_refused_whatever_its_type(value):
    # only Python floats and ints were range-checked: np.float32(2.0) (what np.quantile of float32 scores returns) was
    # accepted, and a quality threshold above 1 rejects every edit, so every image came back unchanged
    with pytest.raises(ValueError, match="quality_threshold"):
        genaug.GenerativeFaceAug(quality_threshold=value)


def test_quality_thresholds_in_range_are_read_as_numbers():
    assert genaug.GenerativeFaceAug(quality_threshold=np.float32(0.25)).quality_threshold == 0.25
    assert genaug.GenerativeFaceAug(quality_threshold="auto").quality_threshold == "auto"


@pytest.mark.parametrize("name", ["gate_threshold", "cache_size", "refine_steps", "quality_threshold"])
@pytest.mark.parametrize("value", [np.True_, torch.tensor(True)], ids=["numpy", "torch"])
def test_numpy_and_torch_bools_are_refused_where_a_number_is_expected(name, value):
    # a Python bool was refused (gate_threshold=True reads as 1.0: every edit rejected), a numpy or torch one was not
    with pytest.raises(ValueError, match=name):
        genaug.GenerativeFaceAug(**{name: value})


@pytest.mark.parametrize("loss", ["-1*mse", "1e999*mse", "0*mse", "0*mse+0*msssim"])
def test_a_refine_loss_with_a_negative_infinite_or_all_zero_weight_is_refused(loss):
    # "-1*mse" was accepted: refinement would have maximised the reconstruction error
    with pytest.raises(ValueError, match="weight"):
        genaug.GenerativeFaceAug(refine_loss=loss)


# ---------------------------------------------------------------- contracts that held (guarded, not re-fixed)
def test_every_nesting_of_a_seeded_compose_repeats_with_its_seed_and_replays_exactly():
    face = _face(1)
    blocks = {
        "OneOf": lambda: A.OneOf([genaug.GenerativeFaceAug(codes=["tone"], p=1), genaug.GenerativeFaceAug(codes=["shade"], p=1)]),
        "SomeOf": lambda: A.SomeOf([genaug.GenerativeFaceAug(codes=["tone"], p=1), A.HorizontalFlip(p=1),
                                    genaug.GenerativeFaceAug(codes=["warmth"], p=1)], n=2, p=1),
        "RandomOrder": lambda: A.RandomOrder([genaug.GenerativeFaceAug(codes=["warmth"], p=1), A.HorizontalFlip(p=1)], n=2, p=1),
    }
    for name, block in blocks.items():
        runs = [[pipe(image=face)["image"] for pipe in [A.Compose([block()], seed=3)] for _ in range(2)] for _ in range(2)]
        assert all(np.array_equal(a, b) for a, b in zip(*runs)), name
    replay = A.ReplayCompose([blocks["SomeOf"](), A.RandomBrightnessContrast()])
    replay.set_random_seed(4)  # (ReplayCompose takes no seed=)
    for _ in range(2):
        first = replay(image=face)
        np.testing.assert_array_equal(A.ReplayCompose.replay(first["replay"], image=face)["image"], first["image"])


def test_copies_and_pickles_of_a_seeded_pipeline_go_on_drawing_as_the_original():
    pipe = A.Compose([A.HorizontalFlip(), genaug.GenerativeFaceAug(p=0.7, strength=(0.2, 1.0), device="cpu")], seed=5)
    pipe(image=_face())  # the model loaded: copies carry the random state, not the engine
    copies = [copy.deepcopy(pipe), pickle.loads(pickle.dumps(pipe))]
    want = [pipe(image=_face(i))["image"] for i in range(3)]
    for c in copies:
        assert all(np.array_equal(c(image=_face(i))["image"], w) for i, w in enumerate(want))


def test_the_frames_of_a_volume_share_one_edit_as_the_docstring_says():
    clip = np.stack([_face(i) for i in range(3)])
    aug = genaug.GenerativeFaceAug(codes=["tone", "warmth"], strength=(0.5, 1.0), p=1.0, device="cpu")
    out = A.Compose([aug], seed=1)(volume=clip)["volume"]
    params = aug.get_applied_params()
    assert out.shape == clip.shape and len(set(map(tuple, aug.last_info.edits))) == 1
    for frame, edited in zip(clip, out):
        np.testing.assert_allclose(edited, aug.apply(frame, **params), atol=1)
