"""BatchFaceAug's table of named latents (``index=``) holds latents of the photos as framed: changing ``framing`` after
calls with ``index=`` starts a fresh table (the transform then edits as a new one with that framing), and a table the
caller gave is refused with how to reset."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import genaug
from conftest import batch_aug, demo_face, resized

torch.set_num_threads(1)


def celeba_shaped(n: int = 2) -> torch.Tensor:
    """(n, 3, 218, 178) uint8: the shipped face in CelebA's frame shape, where ``auto`` (the bundle's CelebA box) and
    ``full`` (the centred square) crop differently; mirrored on odd rows."""
    x = torch.from_numpy(resized(demo_face(), 178, 218).copy()).permute(2, 0, 1)
    return torch.stack([x if i % 2 == 0 else x.flip(-1) for i in range(n)])


@pytest.mark.parametrize("first, then", [("auto", "full"), ("full", "auto")])
def test_a_framing_changed_after_named_calls_edits_as_a_new_transform_would(first, then):
    # the table kept the latents inverted under the first framing: the next call edited with the latents of another
    # crop (132,581 of 4 x 218 x 178 x 3 values off, by up to 148 levels, on four celeba_id200 frames)
    x, idx = celeba_shaped(), torch.arange(2)
    aug = batch_aug(p=1.0, seed=0, codes=["smile"], framing=first, device="cpu")
    aug(x, index=idx)
    aug.framing = then
    params = aug.draw(2)
    fresh = batch_aug(p=1.0, seed=0, codes=["smile"], framing=then, device="cpu")
    assert torch.equal(aug(x, index=idx, params=params), fresh(x, index=idx, params=params))
    assert aug.table.settings == fresh.table.settings and len(aug.table) == 2


def test_a_framing_changed_back_and_forth_keeps_the_transform_usable_and_unchanged_settings_keep_the_table():
    x, idx = celeba_shaped(), torch.arange(2)
    aug = batch_aug(p=1.0, seed=0, codes=["smile"], device="cpu")
    aug(x, index=idx)
    table = aug.table
    aug.framing = "auto"  # the same framing: the latents stay
    aug(x, index=idx)
    assert aug.table is table
    aug.framing = "full"
    aug(x, index=idx)
    assert aug.table is not table and len(aug.table) == 2


def test_a_given_table_filled_under_another_framing_is_refused_with_how_to_reset():
    x, idx = celeba_shaped(), torch.arange(2)
    table = genaug.LatentTable(8)
    aug = batch_aug(p=1.0, seed=0, codes=["smile"], table=table, device="cpu")
    aug(x, index=idx)
    aug.framing = "full"
    with pytest.raises(ValueError, match=r"framing.*aug\.table = genaug\.LatentTable\(\)"):
        aug(x, index=idx)
    assert len(table) == 2  # the caller's table is left as it was
    aug.table = genaug.LatentTable(8)  # the reset the message names
    params = aug.draw(2)
    fresh = batch_aug(p=1.0, seed=0, codes=["smile"], framing="full", device="cpu")
    assert torch.equal(aug(x, index=idx, params=params), fresh(x, index=idx, params=params))
    with pytest.raises(ValueError, match="table must be a genaug.LatentTable"):
        aug.table = 8


def test_a_table_is_bound_to_the_bundles_face_box_too(default_bundle):
    # the bundle's identity names its weights and recipes, not its framing box: two bundles alike but for the box
    # frame CelebA-shaped photos differently
    import dataclasses

    x, idx = celeba_shaped(), torch.arange(2)
    table = genaug.LatentTable(8)
    genaug.BatchFaceAug(p=1.0, seed=0, codes=["smile"], bundle=default_bundle, table=table, device="cpu")(x, index=idx)
    moved = dataclasses.replace(default_bundle, framing={**default_bundle.framing, "box": [30, 50, 148, 168]})
    with pytest.raises(ValueError, match="framed under other settings"):
        genaug.BatchFaceAug(p=1.0, seed=0, codes=["smile"], bundle=moved, table=table, device="cpu")(x, index=idx)
    assert np.isfinite(table.latent[:2].numpy()).all()
