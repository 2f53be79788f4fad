"""An eleventh user audit, the albumentations front end as an albumentations 2.0 user drives it (each test failed
before its fix)."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

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


@pytest.mark.parametrize("name", ["gate_threshold", "refine_steps", "cache_size"])
def test_a_bool_is_refused_where_a_number_is_expected(name):
    # gate_threshold=True was read as 1.0: a gate no edit passes, so every image came back unchanged (kept False)
    with pytest.raises(ValueError, match=name):
        genaug.GenerativeFaceAug(**{name: True})


@pytest.mark.parametrize("mask_key", ["mask3d", "masks3d"])
def test_a_turn_is_never_drawn_beside_a_3d_mask(mask_key):
    # A.Compose(...)(volume=frames, mask3d=masks) (a clip's frames and their masks, albumentations 2.0's 3D targets):
    # the random set drew yaw, which turned every frame while the masks came back unmoved (as `mask` is guarded)
    vol = np.random.default_rng(0).integers(0, 256, (2, 48, 48, 3), dtype=np.uint8)
    masks = np.zeros(vol.shape[:3], np.uint8)
    data = {"volume": vol, mask_key: masks if mask_key == "mask3d" else masks[None]}
    aug = genaug.GenerativeFaceAug(p=1.0, codes=["yaw", "tone"], device="cpu")
    aug.set_random_seed(0)
    names = aug.engine.code_names
    with pytest.raises(ValueError, match=mask_key):
        aug.get_params_dependent_on_data({}, data)
    aug = genaug.GenerativeFaceAug(p=1.0, device="cpu")  # the random set, with yaw
    aug.set_random_seed(0)
    drawn = {names[int(aug.get_params_dependent_on_data({}, data)["edits"][0].code)] for _ in range(40)}
    assert "yaw" not in drawn and len(drawn) > 2, drawn


def test_two_transforms_of_one_seeded_pipeline_do_not_fire_together():
    """A.Compose(seed=) seeds every transform with one number; two GenerativeFaceAugs with other settings
    (one turning heads, one relighting) must still draw their p decisions independently."""
    import albumentations as A

    turn = genaug.GenerativeFaceAug(p=0.5, codes=["yaw"])
    relight = genaug.GenerativeFaceAug(p=0.5, codes=["light"])
    A.Compose([turn, relight], seed=0)  # sets both seeds
    a = [turn.py_random.random() < 0.5 for _ in range(64)]
    b = [relight.py_random.random() < 0.5 for _ in range(64)]
    assert sum(x == y for x, y in zip(a, b)) < 56  # 64 of 64 equal when both streams are one
