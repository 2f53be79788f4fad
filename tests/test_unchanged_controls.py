"""An image-space control that changed no pixel (a turn of a flat photo, frames drawn on a black one) is reported
unchanged, as a latent or colour edit that changed none is: ``last_info``, the Dataset's item meta (it said
``yaw=+22.4`` / ``drawn_glasses=+0.8``, ``kept`` True, for a photo that came back bit for bit)."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

import genaug
from genaug.engine.photos import NO_PIXEL

torch.set_num_threads(1)


@pytest.mark.parametrize("code, level", [("yaw", 128), ("drawn_glasses", 0)])
def test_a_control_that_changed_no_pixel_is_reported_unchanged(code, level):
    img = np.full((64, 64, 3), level, np.uint8)  # flat: a turn moves nothing; black: the frames are drawn black
    t = genaug.GenerativeFaceAug(p=1.0, codes=[code], framing="full", device="cpu", refine_steps=0)
    out = A.Compose([t], seed=0)(image=img)["image"]
    assert np.array_equal(out, img)
    assert t.last_info.descriptions == [NO_PIXEL] and not bool(t.last_info.kept[0])  # before: ['yaw=+22.4'], True
    ds = genaug.GenerativeAugDataset([img], variants=1, codes=[code], framing="full", return_meta=True, device="cpu",
                                     refine_steps=0, progress=False, seed=0)
    item, meta = ds[0]
    assert np.array_equal(item, img) and meta.edit is None and meta.description == NO_PIXEL


def test_a_control_that_changed_pixels_is_still_reported_applied():
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, ::4] = 255  # stripes: a turn moves them
    t = genaug.GenerativeFaceAug(p=1.0, codes=["yaw"], framing="full", device="cpu", refine_steps=0)
    out = A.Compose([t], seed=0)(image=img)["image"]
    assert not np.array_equal(out, img)
    assert t.last_info.descriptions[0].startswith("yaw=") and bool(t.last_info.kept[0])
