"""Audit 11 (torch): the PyTorch front ends (BatchFaceAug, GenerativeAugDataset, HDF5FaceDataset) as a demanding
PyTorch / torchvision user runs them."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import genaug
from genaug.demo import DEMO_FACES

torch.set_num_threads(1)


def _faces(n: int = 2, size: int = 64) -> torch.Tensor:
    """(n, 3, size, size) uint8: the shipped public-domain face, mirrored on odd rows."""
    im = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((size, size), Image.BICUBIC))
    x = torch.from_numpy(im.copy()).permute(2, 0, 1)
    return torch.stack([x if i % 2 == 0 else x.flip(-1) for i in range(n)])


class _Draws:
    """A collate_fn that returns the rows a seeded BatchFaceAug would edit (no model needed)."""

    def __init__(self, aug):
        self.aug = aug

    def __call__(self, batch):
        return self.aug.draw(len(batch)).apply


def test_a_seeded_batch_transform_goes_to_spawned_dataloader_workers():
    # DataLoader(..., collate_fn=<holding BatchFaceAug(seed=0)>, multiprocessing_context="spawn") - the default start
    # method on macOS and Windows - killed every worker ("unable to resize file <filename not specified>": torch cannot
    # send a torch.Generator to a spawned process) and the loop died with "DataLoader worker exited unexpectedly"
    aug = genaug.BatchFaceAug(p=0.5, seed=0)
    drawn = list(DataLoader(list(range(8)), batch_size=4, num_workers=1, multiprocessing_context="spawn",
                            collate_fn=_Draws(aug), generator=torch.Generator().manual_seed(1)))
    assert len(drawn) == 2 and all(d.shape == (4,) for d in drawn)
    twin = pickle.loads(pickle.dumps(aug))  # a pickled copy draws as the original
    assert torch.equal(twin.draw(16).apply, aug.draw(16).apply)


def test_a_dataset_over_a_given_engine_or_bundle_object_goes_to_spawned_dataloader_workers(tiny_bundle_path):
    # GenerativeAugDataset(engine=Engine(...)) or (bundle=<a loaded Bundle>) pickled the built engine, whose
    # torch.Generator killed every spawned worker ("unable to resize file <filename not specified>")
    from genaug.bundle import load_bundle

    faces = [f.permute(1, 2, 0).numpy() for f in _faces(2, size=32)]
    engine = genaug.Engine(tiny_bundle_path, device="cpu", refine_steps=0)
    for kw in (dict(engine=engine), dict(bundle=load_bundle(tiny_bundle_path), refine_steps=0, device="cpu")):
        ds = genaug.GenerativeAugDataset([(f, i) for i, f in enumerate(faces)], variants=1, progress=False, **kw)
        images, labels = next(iter(DataLoader(ds, batch_size=2, num_workers=1, multiprocessing_context="spawn")))
        assert images.shape == (2, 32, 32, 3) and labels.tolist() == [0, 1]
        assert np.array_equal(images[1].numpy(), ds[1][0])  # the worker's engine, rebuilt, edits as the given one


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_a_bad_batch_size_is_refused_when_the_batch_transform_is_built(bad):
    # batch_size=2.5 was truncated to 2 and batch_size=0 accepted, failing only at the first batch (inside the
    # training loop) with the engine's message, while cache_size was refused up front
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
        genaug.BatchFaceAug(batch_size=bad)


def test_return_meta_does_not_overwrite_a_dict_samples_own_meta_entry(tiny_bundle_path):
    # {"image": ..., "label": ..., "meta": {...}} with return_meta=True came back with the sample's own "meta" replaced
    # by genaug's SampleMeta, silently; now it is refused by name (without return_meta it passes through)
    face = _faces(1, size=32)[0].permute(1, 2, 0).numpy()
    base = [{"image": face, "label": 3, "meta": {"id": "a"}}]
    kw = dict(variants=1, progress=False, bundle=tiny_bundle_path, device="cpu", refine_steps=0)
    assert genaug.GenerativeAugDataset(base, **kw)[0]["meta"] == {"id": "a"}
    with pytest.raises(ValueError, match="'meta' entry of its own"):
        genaug.GenerativeAugDataset(base, return_meta=True, **kw)[0]


def test_eval_mode_does_not_switch_the_batch_transform_off_as_the_readme_says():
    # (documents behaviour the README now states; not a regression test) as torchvision v2 transforms, eval() leaves
    # the edits on, and there is no state in state_dict() (a model holding the transform loads its checkpoints as before)
    aug = genaug.BatchFaceAug(p=1.0, seed=0, return_params=True)
    x = _faces(2)
    out, params = aug(x)
    assert not torch.equal(out, x) and aug.state_dict() == {}
    aug.eval()
    assert torch.equal(aug(x, params=params)[0], out)


def test_the_hdf5_reader_takes_variants_as_a_set(tmp_path):
    # HDF5FaceDataset(path, variants={0}) raised "TypeError: unhashable type: 'set'" (numpy made the set one object)
    import h5py

    path = tmp_path / "faces.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((6, 16, 16, 3), np.uint8)
        f["label"] = np.arange(6)
        f["variant"] = np.array([0, 1, 2, 0, 1, 2], np.int16)
    assert len(genaug.HDF5FaceDataset(path, variants={0})) == 2
    assert len(genaug.HDF5FaceDataset(path, variants=range(1, 3))) == 4
    assert [genaug.HDF5FaceDataset(path, variants=frozenset({1}))[i][1] for i in range(2)] == [1, 4]


def test_the_paste_edge_weights_kept_do_not_grow_with_every_new_photo_size():
    # a training loop whose batches change size (multi-scale training, random crops) kept one edge-weight tensor per
    # size seen, on the device, for ever (~0.6 MB each at 384 px)
    aug = genaug.BatchFaceAug(p=1.0, seed=0, codes=["smile"])  # a code blended whole, pasted back with those weights
    for side in range(40, 80):
        aug(torch.rand(1, 3, side, side + 7, generator=torch.Generator().manual_seed(side)))
    assert 0 < len(aug._feathers) <= 16
