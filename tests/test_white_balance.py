"""``warmth`` is a white balance (recipe ``hue``): per channel, the photo's levels times a gain, as a camera's white
balance scales them. Fitted like the other colour codes (a gain, a pull to the luminance and an offset per channel), its
+1 was a haze: gains down to 0.04 and offsets up to 0.7 of white, the face's contrast gone (a flat peach oval, utkface
00725), and on a very dark photo a red gain of -1.5 (blue-grey blotches, 02278)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import UTKFACE, need
from genaug.engine.colour import BLACK_RAMP, keep_hue

torch.set_num_threads(1)
FACES = ["00725", "02278", "01566", "04088", "00058"]  # hazy / blotched under warmth +0.97 before


@pytest.mark.parametrize("value", [0.97, -0.9])
@pytest.mark.parametrize("name", FACES)
def test_warmth_is_gains_per_channel(name, value):
    img = np.asarray(Image.open(need(UTKFACE) / "images" / f"{name}.jpg").convert("RGB"))
    out = genaug.GenerativeFaceAug(p=1.0, codes=["warmth"], bounds={"warmth": (value, value)})(image=img)["image"]
    x, y = img.reshape(-1, 3).astype(np.float64), out.reshape(-1, 3).astype(np.float64)
    for ch in range(3):
        keep = (y[:, ch] < 250) & (x[:, ch] > 4) & (y[:, ch] > 4)  # not clipped by the gain, not black
        (gain, offset), *_ = np.linalg.lstsq(np.stack([x[keep, ch], np.ones(keep.sum())], 1), y[keep, ch], rcond=None)
        assert 0.6 < gain < 3.0, (name, ch, gain)  # no channel flattened or inverted
        assert abs(offset) < 15, (name, ch, gain, offset)  # levels: no haze (was up to +78) nor crushed shadows (-71)


def test_a_white_balance_row_becomes_the_gains_that_best_explain_its_transform():
    g = torch.Generator().manual_seed(0)
    s = (torch.rand(6, 3, 16, 16, generator=g) * torch.rand(6, 3, 1, 1, generator=g)).double()
    t = torch.stack((1 + 0.6 * (torch.rand(6, 3, generator=g) - 0.5), 0.3 * (torch.rand(6, 3, generator=g) - 0.5),
                     0.4 * (torch.rand(6, 3, generator=g) - 0.5)), -1).double()
    free = torch.tensor([1.0, 0, 1, 0, 1, 1], dtype=torch.float64)
    out = keep_hue(s, t.clone(), free)
    lum = s.mean(1, keepdim=True)
    through = t[..., :1, None] * s + t[..., 1:2, None] * lum + t[..., 2:, None] * (lum / BLACK_RAMP).clamp(0, 1)
    for i in torch.nonzero(free).flatten():
        assert torch.all(out[i, :, 1:] == 0)
        for ch in range(3):  # least squares of what the transform renders, on the channel alone
            x, y = s[i, ch].flatten(), through[i, ch].flatten()
            assert abs(out[i, ch, 0] - (x @ y) / (x @ x)) < 1e-12
    assert not torch.equal(out[1], t[1]) or not torch.equal(out[3], t[3])  # other rows: the hue rule's (it acts here)
