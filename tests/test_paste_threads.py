"""A rendered change is pasted back the same under any torch thread count: float32 bilinear resizing of a 3-channel
change differed by up to 5e-7 between 1 and 2 threads (one level of one pixel in 650 ``BatchFaceAug`` outputs)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from conftest import with_threads
from genaug.engine.render import resize_change


def test_resized_change_is_the_same_under_any_thread_count():
    change = torch.rand(50, 3, 64, 64, generator=torch.Generator().manual_seed(0)) - 0.5
    one, two, four = (with_threads(n, lambda: resize_change(change, (150, 131))) for n in (1, 2, 4))
    assert torch.equal(one, two) and torch.equal(one, four)
    assert one.shape == (50, 3, 150, 131)
    reference = F.interpolate(change.double(), size=(150, 131), mode="bilinear", align_corners=False)
    assert (one.double() - reference).abs().max() < 1e-5  # float32 rounding (a level is 4e-3)


def test_a_channels_last_change_is_resized_as_a_contiguous_one():
    # a channels_last batch whose photos are larger than the model frame (BatchFaceAug's paste back of a 128 px batch)
    # raised "view size is not compatible with input tensor's size and stride" from resize_change's view
    change = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) - 0.5
    cl = change.contiguous(memory_format=torch.channels_last)
    assert torch.equal(resize_change(cl, (96, 80)), resize_change(change, (96, 80)))
