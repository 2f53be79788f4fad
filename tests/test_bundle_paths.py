"""Bundle weights must come from inside the bundle folder and match a recorded sha256."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from genaug.bundle import BundleError, load_bundle
from genaug.io import sha256_file as _sha256


@pytest.fixture()
def saved(tiny_bundle_path, tmp_path) -> Path:
    """A private copy of the tiny bundle, with a valid weights file one folder above it."""
    folder = tmp_path / "bundles" / "b"
    shutil.copytree(tiny_bundle_path, folder)
    shutil.copy(folder / "model.safetensors", tmp_path / "bundles" / "outside.safetensors")
    return folder


def set_weights(folder: Path, **fields) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    cfg["weights"].update(fields)
    cfg["weights"] = {k: v for k, v in cfg["weights"].items() if v is not None}
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("name", ["../outside.safetensors", "sub/../../outside.safetensors", "ABSOLUTE"])
def test_weights_path_outside_the_folder_is_refused(saved, name):
    outside = saved.parent / "outside.safetensors"
    name = str(outside.resolve()) if name == "ABSOLUTE" else name
    set_weights(saved, file=name)  # the file exists and its checksum matches: only the path is wrong
    with pytest.raises(BundleError, match="must be a path inside the bundle folder"):
        load_bundle(saved)


def test_symlink_leading_out_is_refused(saved):
    os.symlink(saved.parent / "outside.safetensors", saved / "linked.safetensors")
    set_weights(saved, file="linked.safetensors")
    with pytest.raises(BundleError, match="inside the bundle folder"):
        load_bundle(saved)


def test_paths_that_stay_inside_are_allowed(saved):
    os.symlink(saved / "model.safetensors", saved / "alias.safetensors")
    set_weights(saved, file="alias.safetensors")
    assert load_bundle(saved).generator is not None
    (saved / "weights").mkdir()
    shutil.move(saved / "model.safetensors", saved / "weights" / "model.safetensors")
    set_weights(saved, file="weights/../weights/model.safetensors")
    assert load_bundle(saved).generator is not None


def test_non_string_weights_file_is_refused(saved):
    set_weights(saved, file=["model.safetensors"])
    with pytest.raises(BundleError, match="inside the bundle folder"):
        load_bundle(saved)


def test_missing_checksum_is_an_error_that_gives_the_digest(saved):
    digest = _sha256(saved / "model.safetensors")
    set_weights(saved, sha256=None)
    with pytest.raises(BundleError, match=f"no weights sha256 recorded.*{digest}"):
        load_bundle(saved)
    set_weights(saved, sha256="")
    with pytest.raises(BundleError, match="no weights sha256 recorded"):
        load_bundle(saved)
    set_weights(saved, sha256=digest)  # following the message's advice loads the bundle
    assert load_bundle(saved).identity == digest[:16]


def test_every_saved_bundle_records_its_checksum(tiny_bundle_path):
    cfg = json.loads((tiny_bundle_path / "config.json").read_text())
    assert cfg["weights"]["sha256"] == _sha256(tiny_bundle_path / "model.safetensors")
    shipped = json.loads((Path(load_bundle("default").path) / "config.json").read_text())
    assert len(shipped["weights"]["sha256"]) == 64


def test_a_bundle_is_not_saved_under_the_shipped_name(tiny_bundle_path, tmp_path, monkeypatch):
    # save_pretrained("default") wrote ./default, which load_bundle("default") never reads: the shipped one loads
    monkeypatch.chdir(tmp_path)
    b = load_bundle(tiny_bundle_path)
    with pytest.raises(ValueError, match="cannot save a bundle as 'default'.*shipped"):
        b.save_pretrained("default")
    assert not (tmp_path / "default").exists()


@pytest.mark.parametrize("bad", [5, None, 1.5])
def test_a_bundle_that_is_not_a_name_or_folder_is_named(bad):
    # load_bundle(5), Engine / BatchFaceAug / GenerativeAugDataset(bundle=None) said "expected str, bytes or
    # os.PathLike object, not int" without naming the argument
    import numpy as np

    import genaug

    for build in (lambda: genaug.load_bundle(bad), lambda: genaug.Engine(bundle=bad), lambda: genaug.BatchFaceAug(bundle=bad),
                  lambda: genaug.GenerativeAugDataset([(np.zeros((64, 64, 3), np.uint8), 0)], bundle=bad, lazy=True)):
        with pytest.raises(TypeError, match="bundle must be 'default', a bundle folder"):
            build()


def test_save_bundle_names_what_is_not_a_bundle_or_a_folder(tiny_bundle_path, tmp_path):
    # save_bundle(None, p) was "'NoneType' object has no attribute 'check_runtime'", save_bundle(b, 5) Python's
    # "expected str, bytes or os.PathLike object", and a path that is a file mkdir's "[Errno 17] File exists"
    import genaug

    b = load_bundle(tiny_bundle_path)
    with pytest.raises(TypeError, match="bundle must be a genaug.Bundle"):
        genaug.save_bundle(None, tmp_path / "b")
    with pytest.raises(TypeError, match="path must be a folder to write the bundle into"):
        genaug.save_bundle(b, 5)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileExistsError, match="it is a file; a bundle is a folder"):
        genaug.save_bundle(b, tmp_path / "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "x"
    assert load_bundle(genaug.save_bundle(b, tmp_path / "b")).config() == b.config()
