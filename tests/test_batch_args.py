"""BatchFaceAug's options and replayed params, refused up front by name: seeds, strength, batch and cache
sizes, generators, params of another bundle, a latent table of another framing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import genaug
from conftest import batch_aug, demo_faces

torch.set_num_threads(1)


def test_batch_aug_names_a_seed_beyond_64_bits():
    # was torch's "Overflow when unpacking long long"
    with pytest.raises(ValueError, match="seed must be a whole number that fits in 64 bits"):
        batch_aug(device="cpu", seed=10**23)
    assert batch_aug(device="cpu", seed=2**64 - 1).generator.initial_seed() == 2**64 - 1


def test_generator_and_seed_together_or_a_foreign_generator_are_refused(default_bundle):
    # BatchFaceAug(generator=g, seed=1) ignored the seed silently; generator=np.random.default_rng(0) (or an int) failed
    # with "AttributeError: ... has no attribute 'device'"
    with pytest.raises(ValueError, match="not both"):
        genaug.BatchFaceAug(bundle=default_bundle, generator=torch.Generator(), seed=1)
    for g in (np.random.default_rng(0), 3):
        with pytest.raises(ValueError, match="CPU torch.Generator"):
            genaug.BatchFaceAug(bundle=default_bundle, generator=g)
    a = genaug.BatchFaceAug(bundle=default_bundle, p=0.5, generator=torch.Generator().manual_seed(5))
    b = genaug.BatchFaceAug(bundle=default_bundle, p=0.5, seed=5)  # the same draws
    assert torch.equal(a.draw(16).apply, b.draw(16).apply)


@pytest.mark.parametrize("strength", [False, True, (False, 1.0)])
def test_a_bool_strength_is_refused_by_the_batch_transform_too(strength):
    with pytest.raises(ValueError, match="strength"):
        genaug.BatchFaceAug(strength=strength)


def test_options_a_user_could_mistype_are_refused_as_the_transform_refuses_them():
    # p=True read as 1.0 (a bool strength was refused), cache_size=2.5 truncated to 2, draw(-1) a torch RuntimeError
    with pytest.raises(ValueError, match="p must be"):
        genaug.BatchFaceAug(p=True)
    for bad in (2.5, True, 0):
        with pytest.raises(ValueError, match="cache_size"):
            genaug.BatchFaceAug(cache_size=bad)
    aug = genaug.BatchFaceAug(p=1.0, seed=0)
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match=r"draw\(n\)"):
            aug.draw(bad)
    assert len(aug.draw(0).apply) == 0


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_a_bad_batch_size_is_refused_when_the_batch_transform_is_built(bad):
    # batch_size=2.5 was truncated to 2 and batch_size=0 accepted, failing only at the first batch (inside the
    # training loop) with the engine's message, while cache_size was refused up front
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
        genaug.BatchFaceAug(batch_size=bad)


def test_replayed_params_naming_codes_the_bundle_lacks_are_a_value_error():
    # params of another bundle (or hand-built) with a code index beyond this bundle's codes failed deep inside with
    # AttributeError: 'NoneType' object has no attribute 'low' / a numpy IndexError
    aug = genaug.BatchFaceAug(p=1.0, seed=0)
    params = aug.draw(2)
    params.code[1] = 999
    with pytest.raises(ValueError, match="code indices"):
        aug(demo_faces(2), params=params)


def test_one_latent_table_is_not_shared_by_transforms_that_frame_photos_differently():
    # the table was bound to the bundle and inversion settings only: a transform with framing='full' read the latents
    # another stored for the same indices under framing='auto' (other frames of other-sized photos)
    table = genaug.LatentTable(8)
    x, idx = demo_faces(2, size=80), torch.arange(2)
    genaug.BatchFaceAug(p=1.0, seed=0, table=table, framing="auto")(x, index=idx)
    with pytest.raises(ValueError, match="LatentTable holds latents"):
        genaug.BatchFaceAug(p=1.0, seed=0, table=table, framing="full")(x, index=idx)


@pytest.mark.parametrize("name", ["return_params", "check_values"])
def test_a_yes_no_option_given_as_a_string_is_refused_when_built_or_set(default_bundle, name):
    # return_params="no" / check_values="no" are true in Python: the call returned (out, params), every batch was read
    with pytest.raises(ValueError, match=f"{name} must be True or False, got 'no'"):
        genaug.BatchFaceAug(bundle=default_bundle, **{name: "no"})
    aug = genaug.BatchFaceAug(bundle=default_bundle, **{name: np.bool_(True)})
    assert getattr(aug, name) is True
    with pytest.raises(ValueError, match=f"{name} must be True or False"):
        setattr(aug, name, "off")
    assert genaug.BatchFaceAug(bundle=default_bundle).check_values is None  # None: the first batch off the CPU only
