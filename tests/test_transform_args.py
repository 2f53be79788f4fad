"""GenerativeFaceAug's arguments: wrong types and ranges are refused by name (also when set after
construction), numpy and torch values are read as Python's."""
from __future__ import annotations

import json
import warnings

import albumentations as A
import numpy as np
import pytest
import torch

import genaug


def test_codes_given_as_a_set_are_refused_as_they_draw_differently_in_each_run():
    # codes={"tone", "shade", "warmth", "smile"} was kept in the set's order, which Python's string hashing changes from
    # process to process: A.Compose(seed=0) drew warmth in one run and tone in the next (PYTHONHASHSEED 1 / 2)
    with pytest.raises(ValueError, match="set"):
        genaug.GenerativeFaceAug(codes={"tone", "shade"})
    with pytest.raises(ValueError, match="set"):
        genaug.GenerativeFaceAug(codes=frozenset({"tone"}))


def test_codes_given_as_a_numpy_array_are_read_as_a_list():
    # np.array(["smile", "tone"]) failed with numpy's "The truth value of an array ... is ambiguous"
    t = genaug.GenerativeFaceAug(codes=np.array(["smile", "tone"]))
    assert t.codes == ["smile", "tone"] and all(type(c) is str for c in t.codes)
    assert A.from_dict(A.to_dict(t)).codes == ["smile", "tone"]


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


@pytest.mark.parametrize("name", ["gate_threshold", "refine_steps", "cache_size"])
def test_a_bool_is_refused_where_a_number_is_expected(name):
    # gate_threshold=True was read as 1.0: a gate no edit passes, so every image came back unchanged (kept False)
    with pytest.raises(ValueError, match=name):
        genaug.GenerativeFaceAug(**{name: True})


@pytest.mark.parametrize("name", ["gate_threshold", "cache_size", "refine_steps", "quality_threshold"])
@pytest.mark.parametrize("value", [np.True_, torch.tensor(True)], ids=["numpy", "torch"])
def test_numpy_and_torch_bools_are_refused_where_a_number_is_expected(name, value):
    # a Python bool was refused (gate_threshold=True reads as 1.0: every edit rejected), a numpy or torch one was not
    with pytest.raises(ValueError, match=name):
        genaug.GenerativeFaceAug(**{name: value})


@pytest.mark.parametrize("strength", [False, True, (False, True)])
def test_a_bool_strength_is_refused(strength):
    # strength=False read as 0.0: every call a silent no-op while last_info recorded an edit (Engine(strength=...) refuses
    # a bool)
    with pytest.raises(ValueError, match="strength must be a number"):
        genaug.GenerativeFaceAug(strength=strength)


@pytest.mark.parametrize("value", [-1.0, True, (0.9, 0.1), "x", float("nan")])
def test_a_strength_set_after_construction_is_validated_as_in_the_constructor(value):
    # aug.strength = True (refused by the constructor) was taken as 1.0; (0.9, 0.1) drew from a reversed range; "x"
    # failed at the first image (perhaps in a DataLoader worker) with a TypeError from random.uniform
    aug = genaug.GenerativeFaceAug(strength=0.5, p=1.0, device="cpu")
    with pytest.raises(ValueError, match="strength"):
        aug.strength = value
    assert aug.strength == 0.5


def test_a_strength_range_given_as_a_numpy_array_is_read_as_a_pair():
    # strength=np.array([0.5, 1.0]) was refused ("must be a number ... or a range (low, high)") where codes= and
    # bounds= take numpy arrays
    t = genaug.GenerativeFaceAug(strength=np.array([0.5, 1.0]))
    assert t.strength == (0.5, 1.0) and all(type(v) is float for v in t.strength)
    assert A.from_dict(json.loads(json.dumps(A.to_dict(t)))).strength == (0.5, 1.0)


def test_two_ranges_for_one_code_are_refused():
    # bounds={"tone": (0, 0.5), 5: (-1, -0.5)} name one code twice (as codes=["tone", 5] is refused): the last range
    # won and the other was dropped unseen
    from genaug.bundle import read_spec

    tone = read_spec("default").code_index("tone")
    with pytest.raises(ValueError, match="already given a range"):
        genaug.GenerativeFaceAug(codes=["tone"], bounds={"tone": (0.0, 0.5), tone: (-1.0, -0.5)})
    with pytest.raises(ValueError, match="already given a range"):
        genaug.GenerativeFaceAug(bounds={f"c{tone}": (0.0, 0.5), "tone": (0.0, 0.5)})


def test_bounds_for_a_code_random_edits_never_draw_warn():
    # bounds={"yaw": ...} beside codes=["light"] (a code random edits never draw) was ignored without a word
    with pytest.warns(UserWarning, match=r"bounds for \['yaw'\] have no effect"):
        genaug.GenerativeFaceAug(codes=["light"], bounds={"yaw": (-20.0, 20.0)})
    with pytest.warns(UserWarning, match=r"bounds for \['shade'\] have no effect"):
        genaug.GenerativeFaceAug(codes=["tone"], bounds={"shade": (0.0, 0.5)})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        genaug.GenerativeFaceAug(codes=["yaw", "light"], bounds={"yaw": (-20.0, 20.0)})  # the README's example
        genaug.GenerativeFaceAug(bounds={"yaw": (-15.0, 15.0)})  # yaw is in the default random set


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


@pytest.mark.parametrize("loss", ["feature", "mse+0.5*feature"])
def test_a_feature_refine_loss_is_refused_when_built(loss):
    # refine_loss="feature" (listed among the choices of its own error message) was accepted, then failed at the first
    # image, perhaps in a DataLoader worker, with "needs a feature_net", which the transform has no way to take
    with pytest.raises(ValueError, match="feature"):
        genaug.GenerativeFaceAug(refine_loss=loss, refine_steps=5)


@pytest.mark.parametrize("loss", ["-1*mse", "1e999*mse", "0*mse", "0*mse+0*msssim"])
def test_a_refine_loss_with_a_negative_infinite_or_all_zero_weight_is_refused(loss):
    # "-1*mse" was accepted: refinement would have maximised the reconstruction error
    with pytest.raises(ValueError, match="weight"):
        genaug.GenerativeFaceAug(refine_loss=loss)


def test_an_engine_argument_set_after_construction_takes_effect_and_is_validated():
    import pydantic

    aug = genaug.GenerativeFaceAug(p=1.0, device="cpu")
    face = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    aug(image=face)  # the engine is built with the default codes
    aug.codes = ["tone"]
    assert aug.engine.options["codes"] == ["tone"]  # not the engine built before the change
    aug(image=face)
    assert aug.last_info.descriptions[0].startswith("tone")
    assert A.from_dict(A.to_dict(aug)).codes == ["tone"]
    with pytest.raises((ValueError, pydantic.ValidationError)):
        aug.codes = ["no_such_code"]
    assert aug.codes == ["tone"]  # a refused value leaves the transform as it was


BAD_P = [2, -0.1, float("nan"), float("inf"), "x", None, True, "0.5"]


@pytest.mark.parametrize("value", BAD_P, ids=repr)
def test_a_bad_p_set_after_construction_is_refused_naming_p(value):
    """``aug.p = 2`` (or NaN, a string) was taken as it came, while the other later-set arguments are validated:
    p = 2 always applied, NaN never, "x" failed at the first image (perhaps in a DataLoader worker)."""
    import genaug

    aug = genaug.GenerativeFaceAug(codes=["tone"], p=0.5, device="cpu")
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        aug.p = value
    assert aug.p == 0.5
    batch = genaug.BatchFaceAug(p=0.5)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        batch.p = value
    assert batch.p == 0.5


def test_a_good_p_set_later_is_read_as_a_float_and_serialises():
    import albumentations as A
    import numpy as np

    import genaug

    aug = genaug.GenerativeFaceAug(codes=["tone"], p=0.5, device="cpu")
    aug.p = np.float32(0.25)
    assert type(aug.p) is float and aug.p == 0.25
    assert A.from_dict(A.to_dict(aug)).p == 0.25
    aug.p = 0.0  # skipped: the photo back unchanged, no model loaded
    image = np.full((64, 64, 3), 128, np.uint8)
    assert np.array_equal(A.Compose([aug], seed=0)(image=image)["image"], image) and aug._engine is None
    batch = genaug.BatchFaceAug(p=0.5)
    batch.p = np.float32(0.25)
    assert type(batch.p) is float and batch.p == 0.25 and "p=0.25" in repr(batch)


def test_batch_aug_repr_shows_its_settings_as_given():
    # print(model) showed strength=(0.5, 0.5) for strength=0.5 and left out framing and bounds
    import genaug

    aug = genaug.BatchFaceAug(strength=0.5, framing="full", codes=["tone"], bounds={"tone": (-0.5, 0.5)})
    assert repr(aug) == ("BatchFaceAug(p=0.5, strength=0.5, codes=['tone'], mode='delta', framing='full', "
                         "bounds={'tone': (-0.5, 0.5)}, device=None)")
    assert "strength=(0.5, 1.0)" in repr(genaug.BatchFaceAug(strength=(0.5, 1.0))) and "bounds" not in repr(genaug.BatchFaceAug())
