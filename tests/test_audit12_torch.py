"""Audit 12 (torch): the PyTorch front ends (BatchFaceAug, GenerativeAugDataset, HDF5FaceDataset) as an experienced
PyTorch / torchvision.transforms.v2 / kornia user runs them."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import genaug
from genaug.bundle.format import load_bundle

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def bundle():
    return load_bundle("default")


def _batch(n: int = 2, size: int = 64) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_to_device_moves_the_batch_transform_as_an_nn_module_moves(bundle):
    # aug.to("cuda") / .cuda() / .cpu() - and nn.Sequential(net, aug).to(device) - did nothing: the device stayed None
    # (or the first batch's) and a built engine's networks stayed where they were
    aug = genaug.BatchFaceAug(bundle=bundle, p=1.0, seed=0)
    assert aug.to("cpu") is aug and aug.device == torch.device("cpu")
    x = _batch()
    first = aug(x, params=aug.draw(2))
    params = aug._params
    aug.to(torch.device("meta"))  # the device is recorded; no engine is kept there
    assert aug.device == torch.device("meta") and aug._engine is None
    with pytest.raises(ValueError, match="'meta' device"):
        aug(x)
    aug.cpu()  # back: the engine is rebuilt and edits as before
    assert aug.device == torch.device("cpu") and torch.equal(aug(x, params=params), first)
    assert aug._engine.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in aug._engine.bundle.generator.parameters())
    aug.half().to(torch.float64)  # a dtype alone moves nothing
    assert aug.device == torch.device("cpu") and aug._engine is not None
    seq = nn.Sequential(genaug.BatchFaceAug(bundle=bundle, p=1.0, seed=0), nn.Identity())
    seq.to(torch.device("meta"))  # a parent module's .to() reaches it
    assert seq[0].device == torch.device("meta")


def test_the_hdf5_reader_is_a_context_manager_as_an_h5py_file_is(tmp_path):
    # `with HDF5FaceDataset(path) as ds:` was "TypeError: 'HDF5FaceDataset' object does not support the context manager
    # protocol"; an h5py user closes files that way
    import h5py
    import numpy as np

    from genaug.hdf5 import HDF5FaceDataset

    path = tmp_path / "faces.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 8, 8, 3), np.uint8)
        f["label"] = np.array([3, 4])
    with HDF5FaceDataset(path) as ds:
        assert ds[1][1] == 4
        handle = ds._file
        assert handle is not None and bool(handle)
    assert ds._file is None and not bool(handle)  # closed at the end of the block
    assert ds[0][1] == 3  # and opened again when read later
    ds.close()


def test_one_chw_image_is_a_batch_of_one_as_in_a_per_sample_torchvision_pipeline(bundle):
    # torchvision v2 transforms take one (C, H, W) image as a dataset's per-sample transform; BatchFaceAug refused it
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    aug = genaug.BatchFaceAug(bundle=bundle, p=1.0, seed=0, codes=["tone"], return_params=True)
    x = _batch(1)
    ref, params = aug(x)
    one, p1 = aug(x[0], params=params)
    assert one.shape == x[0].shape and torch.equal(one, ref[0]) and not torch.equal(one, x[0])
    img = tv_tensors.Image(x[0])
    pipe = v2.Compose([v2.ToDtype(torch.float32, scale=True), genaug.BatchFaceAug(bundle=bundle, p=1.0, seed=0, codes=["tone"])])
    out = pipe(img)
    assert type(out) is tv_tensors.Image and out.shape == img.shape
    sample, label = aug(x[0], torch.tensor(3), params=params)[0]  # (image, label): the plain CHW tensor is the image
    assert torch.equal(sample, ref[0]) and int(label) == 3
