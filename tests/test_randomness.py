"""Randomness that must differ where it should and repeat where it should: per-image parameters of
the ``images`` target, DataLoader workers across epochs and loader seeds, and expansion records as a
function of (seed, source index) only."""
from __future__ import annotations

from pathlib import Path

import albumentations as A
import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from genaug.expand import expand_to_hdf5
from genaug.transforms import GenerativeFaceAug


def _image(seed: int = 0, shape=(48, 48, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture()
def aug_kw(trained_bundle_path):
    return dict(bundle=str(trained_bundle_path), refine_steps=0, device="cpu", p=1.0)


# ------------------------------------------------------------------ the images target
def test_images_target_equals_single_image_calls_with_the_same_params(aug_kw):
    t = GenerativeFaceAug(codes=["smile"], strength=(0.3, 1.0), **aug_kw)  # continuous: edits all differ
    images = np.stack([_image(i) for i in range(4)])
    out = A.Compose([t], seed=2)(images=images)["images"]  # (seeds 0 and 1 draw a smile near 0 for one image: a no-op there)
    params = t.get_applied_params()
    edits, strengths = params["edits"], params["strengths"]
    assert out.shape == images.shape and out.dtype == np.uint8
    assert len(edits) == len(strengths) == 4 and len(set(edits)) == 4
    for i in range(4):  # each image, alone, with its own edit and strength
        single = t.apply(images[i], edits=[edits[i]], strengths=[strengths[i]], gate_seed=params["gate_seed"])
        diff = np.abs(out[i].astype(int) - single.astype(int))
        assert diff.max() <= 1, f"image {i}: differs from its single-image call by up to {diff.max()}"
        assert not np.array_equal(single, images[i])


# ------------------------------------------------------------------ DataLoader workers
class SameFace(Dataset):
    """The same face N times through a transform."""

    def __init__(self, transform, n: int = 6):
        self.transform, self.n, self.img = transform, n, _image(7)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.transform(image=self.img)["image"])


def epochs(aug_kw, loader_seed: int, n_epochs: int) -> list[list[np.ndarray]]:
    pipe = A.Compose([GenerativeFaceAug(codes=["smile"], **aug_kw)], seed=0)  # continuous: draws differ unless the RNG repeats
    loader = DataLoader(SameFace(pipe), batch_size=1, num_workers=2, generator=torch.Generator().manual_seed(loader_seed))
    return [[b[0].numpy() for b in loader] for _ in range(n_epochs)]


def distinct(images: list[np.ndarray]) -> int:
    return len({im.tobytes() for im in images})


def test_workers_epochs_and_loader_seeds_all_draw_differently(aug_kw):
    first, second = epochs(aug_kw, loader_seed=1, n_epochs=2)
    assert distinct(first[:2]) == 2, "worker 0 and worker 1 drew the same augmentation"
    assert distinct(first) >= 4 and distinct(second) >= 4
    assert distinct(first + second) >= 8, "the second epoch repeated the first epoch's augmentations"
    (other_seed,) = epochs(aug_kw, loader_seed=2, n_epochs=1)
    assert distinct(first + other_seed) >= 8, "two loader seeds drew the same augmentations"
    (again,) = epochs(aug_kw, loader_seed=1, n_epochs=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again)), "the same loader seed must reproduce"


# ------------------------------------------------------------------ expansion records
FAST = dict(refine_steps=2, batch_size=4, block_size=3, device="cpu", progress=False)


def flat_folder(root: Path, n: int, replace: dict[int, int] | None = None) -> Path:
    """``n`` random 'faces' 00.png...; ``replace`` swaps the content of index i for seed j."""
    root.mkdir(parents=True)
    for i in range(n):
        seed = (replace or {}).get(i, i)
        Image.fromarray(_image(seed, (40, 40, 3))).save(root / f"{i:02d}.png")
    return root


def expand(src: Path, out: Path, seed: int, bundle: Path, **overrides) -> dict[str, np.ndarray]:
    expand_to_hdf5(src, out, 2, bundle=bundle, seed=seed, **{**FAST, **overrides})
    with h5py.File(out, "r") as f:
        return {k: f[k][()] for k in ("images", "codes", "source_index", "variant")}


def test_expansion_records_depend_on_seed_and_source_index_only(tmp_path, tiny_bundle_path):
    src = flat_folder(tmp_path / "a", 6)
    a = expand(src, tmp_path / "a.h5", 5, tiny_bundle_path)
    again = expand(src, tmp_path / "again.h5", 5, tiny_bundle_path)
    for k in a:
        np.testing.assert_array_equal(a[k], again[k], err_msg=f"same seed, different {k}")
    other = expand(src, tmp_path / "other.h5", 6, tiny_bundle_path)
    assert (~np.isclose(a["codes"], other["codes"], equal_nan=True)).any(1).mean() > 0.5, "another seed, the same edits"
    assert not np.array_equal(a["images"], other["images"])
    # image 2 replaced by another face, image 6 appended, other blocks and batches: source i's edits
    # stay those of (seed, i); untouched sources keep their images (up to float noise of batching)
    changed = expand(flat_folder(tmp_path / "b", 7, replace={2: 99}), tmp_path / "b.h5", 5, tiny_bundle_path,
                     batch_size=3, block_size=4)
    assert len(changed["codes"]) == len(a["codes"]) + 2
    # the code each source edits is drawn from (seed, i) alone; where a categorical edit lands
    # (switched from the face's own category) also depends on the face, so compare the edited codes
    # for the replaced source and the exact values for the others
    keep = a["source_index"] != 2
    np.testing.assert_array_equal(changed["codes"][:12][keep], a["codes"][keep])
    np.testing.assert_array_equal(np.isnan(changed["codes"][:12]), np.isnan(a["codes"]))
    for i in range(6):
        rows = a["source_index"] == i
        diff = np.abs(changed["images"][:12][rows].astype(int) - a["images"][rows].astype(int))
        if i == 2:
            assert diff.mean() > 10, "a different source image must give different records"
        else:
            assert diff.max() <= 2, f"source {i} changed when another source did"
