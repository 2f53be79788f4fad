"""A twelfth user audit, the albumentations front end as an albumentations 2.0 user drives it (each test failed
before its fix)."""
from __future__ import annotations

import json

import albumentations as A
import numpy as np
import pytest

import genaug


def test_a_named_turn_beside_a_mask_is_refused_on_every_call_not_only_when_p_fires():
    # codes=["yaw", "tone"], p=0.3 beside a mask raised its ValueError only on the calls p applied: a pipeline that
    # passed a few batches could fail at random later (in training); the refusal must not depend on the draw
    x = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    pipe = A.Compose([genaug.GenerativeFaceAug(codes=["yaw", "tone"], p=0.3, device="cpu")], seed=0)
    for _ in range(8):
        with pytest.raises(ValueError, match="yaw"):
            pipe(image=x, mask=np.zeros(x.shape[:2], np.uint8))
    assert pipe(image=x)["image"].shape == x.shape  # without the mask it runs
    off = A.Compose([genaug.GenerativeFaceAug(codes=["yaw"], p=0.0, device="cpu")], seed=0)  # never turns: no refusal
    assert off(image=x, mask=np.zeros(x.shape[:2], np.uint8))["image"].shape == x.shape


@pytest.mark.parametrize("loss", ["feature", "mse+0.5*feature"])
def test_a_feature_refine_loss_is_refused_when_built(loss):
    # refine_loss="feature" (listed among the choices of its own error message) was accepted, then failed at the first
    # image, perhaps in a DataLoader worker, with "needs a feature_net", which the transform has no way to take
    with pytest.raises(ValueError, match="feature"):
        genaug.GenerativeFaceAug(refine_loss=loss, refine_steps=5)


def test_a_strength_range_given_as_a_numpy_array_is_read_as_a_pair():
    # strength=np.array([0.5, 1.0]) was refused ("must be a number ... or a range (low, high)") where codes= and
    # bounds= take numpy arrays
    t = genaug.GenerativeFaceAug(strength=np.array([0.5, 1.0]))
    assert t.strength == (0.5, 1.0) and all(type(v) is float for v in t.strength)
    assert A.from_dict(json.loads(json.dumps(A.to_dict(t)))).strength == (0.5, 1.0)


def test_edit_recipes_take_numpy_numbers():
    # EditRecipe(gain=np.float32(0.5)) (a value measured with numpy) said "gain must be a positive number, got
    # np.float32(0.5)"; a numpy region, transfer share or np.True_ colour were refused the same way
    from genaug.bundle import EditRecipe
    from genaug.bundle.recipe import Transfer

    r = EditRecipe(gain=np.float32(0.5), shift=np.int64(1), region=np.array([0.5, 0.7, 0.3, 0.2], np.float32),
                   transfer=Transfer(content=np.float32(1.0)), luma=np.True_)
    assert r.gain == 0.5 and r.luma is True and r.region == pytest.approx((0.5, 0.7, 0.3, 0.2))
    assert EditRecipe.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    with pytest.raises(ValueError, match="gain"):
        EditRecipe(gain=np.float32("nan"))


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
