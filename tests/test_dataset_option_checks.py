"""Bad options of the torch Datasets are refused when the Dataset is built, naming the option: with ``lazy=True`` the
engine's options (mode, framing, refine_steps, batch_size, device, gate, quality_threshold) were taken and failed at
the first item, inside a DataLoader worker; ``lazy="no"`` or ``include_original="yes"`` read as True; a non-callable
``transform`` of ``HDF5FaceDataset`` failed at the first item."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import genaug

BASE = [(np.zeros((64, 64, 3), np.uint8), 0)]


@pytest.mark.parametrize("option, value", [("mode", "x"), ("framing", "x"), ("refine_steps", -1), ("batch_size", 0), ("batch_size", None),
                                           ("device", "tpu"), ("gate", "x"), ("quality_threshold", "x"),
                                           ("quality_threshold", 2.0)])
@pytest.mark.parametrize("lazy", [True, False])
def test_a_bad_engine_option_fails_when_the_dataset_is_built(option, value, lazy):
    with pytest.raises(ValueError, match=option if option != "gate" else "identity judge"):
        genaug.GenerativeAugDataset(BASE, lazy=lazy, progress=False, **{option: value})


@pytest.mark.parametrize("lazy", [True, False])
def test_a_gate_that_is_neither_a_name_nor_a_callable_fails_when_the_dataset_is_built(lazy):
    # gate=5 was taken by GenerativeAugDataset(lazy=True) and failed at the first item, inside a DataLoader worker
    with pytest.raises(ValueError, match="gate must be a judge's name or a callable"):
        genaug.GenerativeAugDataset(BASE, lazy=lazy, progress=False, gate=5)


def test_framing_detect_without_the_faces_extra_fails_when_the_lazy_dataset_is_built(monkeypatch):
    # (as GenerativeAugDataset(lazy=False) and the Engine do): it failed at the first item, inside a DataLoader worker
    from genaug.faces import identity

    monkeypatch.setattr(identity, "faces_extra_available", lambda: False)
    with pytest.raises(identity.FacesExtraMissing, match="genaug\\[faces\\]"):
        genaug.GenerativeAugDataset(BASE, lazy=True, progress=False, framing="detect")


@pytest.mark.parametrize("option", ["lazy", "include_original", "return_meta", "progress"])
def test_a_yes_no_option_is_a_bool(option):
    with pytest.raises(ValueError, match=f"{option} must be True or False"):
        genaug.GenerativeAugDataset(BASE, **{"lazy": True, option: "no"})
    ds = genaug.GenerativeAugDataset(BASE, lazy=True, include_original=np.bool_(True))
    with pytest.raises(ValueError, match="include_original must be True or False"):
        ds.include_original = "false"
    for later in ("return_meta", "progress"):  # set later: was taken as given ("no" is true in Python)
        with pytest.raises(ValueError, match=f"{later} must be True or False"):
            setattr(ds, later, "no")
        setattr(ds, later, np.bool_(False))
        assert getattr(ds, later) is False
    with pytest.raises(ValueError, match="lazy must be True or False"):
        genaug.GenerativeAugDataset(BASE, lazy=np.array([True, False]))  # (not numpy's "truth value is ambiguous")


def test_good_options_still_build_lazily():
    ds = genaug.GenerativeAugDataset(BASE, lazy=1, mode="regenerate", framing="full", refine_steps=0, batch_size=8,
                                     device="cpu", gate="student", quality_threshold="auto", progress=False)
    assert ds._lazy.built is None and len(ds) == 8  # nothing loaded yet


def test_cache_path_must_be_a_path():
    with pytest.raises(TypeError, match="cache_path must be None or a file path"):
        genaug.GenerativeAugDataset(BASE, lazy=True, cache_path=5)


def test_hdf5_dataset_checks_its_transforms_and_flags(tmp_path):
    import h5py

    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(TypeError, match="transform must be None or callable"):
        genaug.HDF5FaceDataset(path, transform="x")
    with pytest.raises(TypeError, match="target_transform must be None or callable"):
        genaug.HDF5FaceDataset(path, target_transform=3)
    with pytest.raises(ValueError, match="return_meta must be True or False"):
        genaug.HDF5FaceDataset(path, return_meta="yes")
    assert len(genaug.HDF5FaceDataset(path, transform=lambda im: im)) == 2


@pytest.mark.parametrize("option, value", [("strength", 0.5), ("codes", ["smile"]), ("mode", "regenerate"),
                                           ("bounds", {"yaw": (-10, 10)})])
def test_an_engine_option_set_after_the_dataset_is_built_is_refused_not_ignored(option, value):
    # ds.strength = 0.5 (a strength schedule, as ds.seed = seed + epoch) was taken and every item rendered as before
    ds = genaug.GenerativeAugDataset(BASE, lazy=True, progress=False)
    with pytest.raises(AttributeError, match=rf"{option} of a GenerativeAugDataset is fixed when it is built.*"
                                             rf"GenerativeAugDataset\(base, {option}=\.\.\.\)"):
        setattr(ds, option, value)
    assert option not in vars(ds)
    ds.seed = 3  # the Dataset's own settings are still set later
    assert ds.seed == 3 and len(pickle.loads(pickle.dumps(ds))) == len(ds)  # (pickling sets no attribute)
