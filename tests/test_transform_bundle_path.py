"""A bundle folder given to ``GenerativeFaceAug``, ``BatchFaceAug`` or ``GenerativeAugDataset`` as a relative path: kept
absolute (``genaug.bundle.format.bundle_path``), so a saved pipeline loads from another working directory and the
lazily loaded engine finds it after a ``chdir``."""
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


def test_the_batch_transform_loaded_after_a_chdir_still_finds_a_relative_bundle(tiny_bundle_path, tmp_path, monkeypatch):
    # BatchFaceAug(bundle="tiny") kept "tiny" and loaded its engine on the first batch, against the working directory
    # of then: FileNotFoundError "bundle not found: tiny" (the albumentations transform resolves it when made)
    import torch

    from genaug import BatchFaceAug

    shutil.copytree(tiny_bundle_path, tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    aug = BatchFaceAug(bundle="tiny", p=1.0, seed=0)  # the engine loads on the first batch
    monkeypatch.chdir(tmp_path.parent)
    batch = torch.from_numpy(_image()).permute(2, 0, 1)[None].contiguous()
    assert aug(batch).shape == batch.shape


def test_a_lazy_dataset_still_finds_a_relative_bundle_after_a_chdir(tiny_bundle_path, tmp_path, monkeypatch):
    from genaug import GenerativeAugDataset

    shutil.copytree(tiny_bundle_path, tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    ds = GenerativeAugDataset([(_image(), 3)], bundle="tiny", lazy=True, variants=1, refine_steps=0, device="cpu",
                              progress=False)  # the engine loads on the first item
    monkeypatch.chdir(tmp_path.parent)
    assert ds[0][0].shape == (48, 48, 3) and ds[0][1] == 3
