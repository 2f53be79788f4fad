"""Bad arguments named clearly, when the object is built where possible: a code index past the controls, a
Dataset ``transform`` that is no callable, ``BatchFaceAug`` bounds of a code it never draws, an ``index`` with a
string in it."""
from __future__ import annotations

import warnings

import pytest
import torch

import genaug
from conftest import batch_aug, demo_face, noise_batch

torch.set_num_threads(1)


def test_a_code_index_out_of_range_states_the_valid_range_controls_included():
    # was "code index 12 out of range: this latent has 8 codes [...]" although 8-11 (the controls) are valid
    for bad in (12, "c12"):
        with pytest.raises(ValueError, match=r"valid indices are 0-11 or 'c0'-'c11' \(0-7: the latent codes .*; "
                                             r"8-11: the image-space controls \['yaw'"):
            genaug.GenerativeFaceAug(codes=[bad])
    from genaug.bundle.format import read_spec

    with pytest.raises(KeyError, match="indices 0 to 7; -8 to -1 count from the end"):
        read_spec("default").code_index(9)


@pytest.mark.parametrize("name", ["transform", "target_transform"])
def test_dataset_transform_that_is_not_callable_is_refused_when_built(name):
    # was a TypeError "'str' object is not callable" at the first item
    with pytest.raises(TypeError, match=f"{name} must be None or callable.*got str 'x'"):
        genaug.GenerativeAugDataset([demo_face()], lazy=True, progress=False, **{name: "x"})


def test_batch_bounds_of_a_code_never_drawn_warn_as_the_transform_does():
    with pytest.warns(UserWarning, match=r"bounds for \['yaw'\] have no effect: random edits draw only \['smile'\]"):
        batch_aug(p=1.0, device="cpu", codes=["smile"], bounds={"yaw": (-10, 10)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch_aug(p=1.0, device="cpu", codes=["smile", "yaw"], bounds={"yaw": (-10, 10)})


def test_batch_index_with_a_string_is_a_clear_error():
    # was torch's "TypeError: new(): invalid data type 'str'"
    aug = batch_aug(p=1.0, device="cpu")
    with pytest.raises(ValueError, match=r"index must be a 1-d integer tensor .*got \[0, 1, 'a'\]"):
        aug(noise_batch(3), index=[0, 1, "a"])


def test_the_bounds_warning_names_the_line_that_built_the_augmentation():
    # GenerativeFaceAug's named albumentations' validation.py (the wrapper it puts around __init__), not this file:
    # under Python's default filter one warning for every transform built in the process, and no line to fix
    made = [lambda: genaug.GenerativeFaceAug(codes=["smile"], bounds={"yaw": (-10, 10)}, device="cpu"),
            lambda: genaug.GenerativeAugDataset([demo_face()], codes=["smile"], bounds={"yaw": (-10, 10)}, lazy=True,
                                                progress=False),
            lambda: genaug.BatchFaceAug(p=1.0, device="cpu", codes=["smile"], bounds={"yaw": (-10, 10)})]
    for make in made:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make()
        said = [w for w in caught if "have no effect" in str(w.message)]
        assert [w.filename for w in said] == [__file__], [(w.filename, w.lineno) for w in said]
