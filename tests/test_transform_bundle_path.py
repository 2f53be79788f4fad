"""A bundle folder given to ``GenerativeFaceAug`` as a relative path: kept absolute, so a saved pipeline loads from
another working directory and the lazily loaded engine finds it after a ``chdir``."""
import shutil

import albumentations as A
import numpy as np

from genaug import GenerativeFaceAug


def _image():
    return np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)


def test_a_pipeline_saved_with_a_relative_bundle_loads_from_another_working_directory(tiny_bundle_path, tmp_path, monkeypatch):
    # A.save of GenerativeFaceAug(bundle="models/tiny") wrote "models/tiny", which A.load then resolved against the
    # loading process's working directory: FileNotFoundError "bundle not found: models/tiny"
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    shutil.copytree(tiny_bundle_path, work / "models" / "tiny")
    elsewhere.mkdir()
    monkeypatch.chdir(work)
    pipe = A.Compose([GenerativeFaceAug(bundle="models/tiny", refine_steps=0, device="cpu", p=1.0)], seed=0)
    A.save(pipe, str(work / "pipe.json"))
    expected = pipe(image=_image())["image"]
    monkeypatch.chdir(elsewhere)
    back = A.load(str(work / "pipe.json"))
    assert back.transforms[0].bundle == str(work / "models" / "tiny")
    assert np.array_equal(back(image=_image())["image"], expected)


def test_the_engine_loaded_after_a_chdir_still_finds_a_relative_bundle(tiny_bundle_path, tmp_path, monkeypatch):
    shutil.copytree(tiny_bundle_path, tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    aug = GenerativeFaceAug(bundle="tiny", refine_steps=0, device="cpu", p=1.0)  # the engine loads on first use
    monkeypatch.chdir(tmp_path.parent)
    assert aug(image=_image())["image"].shape == (48, 48, 3)


def test_the_shipped_bundle_keeps_its_name():
    assert GenerativeFaceAug().bundle == "default" and A.to_dict(GenerativeFaceAug())["transform"]["bundle"] == "default"
