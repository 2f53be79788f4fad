"""A brightness-only edit (``smile``) changes the face's shape and shading, not its brightness: the generator drew a
smile on light faces greyer and on dark ones lighter (utkface 00633 -10, 03858 -9, 00317 -8 levels over the lower face;
01092 +19), which the edit's region cut into a grey or light patch on the cheeks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import UTKFACE, need
from genaug.engine.render import DRIFT_DROPPED, luma_only
from genaug.images import LUMA

torch.set_num_threads(1)


def test_part_of_a_tone_drift_of_the_whole_frame_is_dropped_and_a_local_change_kept():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g) * 1.6 - 0.8
    lum = (x * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    bump = torch.zeros(2, 1, 32, 32)
    bump[..., 20:26, 10:22] = 0.3  # teeth: local
    out = x + bump - 0.1 - 0.15 * lum  # and the face's brightness pulled towards the middle: light greyer, dark lighter
    change = (luma_only(x, out) - x)[:, :1]
    kept = (-0.1 - 0.15 * lum) * (1 - DRIFT_DROPPED)  # of the drift (0.1 + 0.15 lum: up to 0.22), what is kept
    assert ((change - kept)[..., 20:26, 10:22].mean() - 0.3).abs() < 0.03  # the local change kept
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[20:26, 10:22] = False
    assert (change - kept)[..., outside].abs().max() < 0.03 < DRIFT_DROPPED * 0.1  # the rest of the drift gone


def _lower_face_change(folder, name: str, value: float) -> tuple[float, float]:
    img = np.asarray(Image.open(folder / "images" / f"{name}.jpg").convert("RGB"))
    out = genaug.GenerativeFaceAug(p=1).apply_to_images(img[None], edits=[("smile", value)], strengths=[1.0], gate_seed=0)[0]
    d = out.astype(np.float64) - img
    return float(d[64:112, 24:104].mean()), float(np.abs(d[80:110, 40:88]).mean())  # lower face; |change| at the mouth


@pytest.mark.parametrize("name,was", [("00633", -10.1), ("03858", -8.8), ("00317", -7.8), ("01092", 18.7)])
def test_a_smile_keeps_the_face_its_brightness(name, was):
    mean, mouth = _lower_face_change(need(UTKFACE), name, 1.0)
    assert abs(mean) < 0.7 * abs(was)  # now -5.5 to +5.7 (half the drift dropped; all of it: -2.2 to +4.2)
    assert mouth > 5  # and still a smile (8-12 levels at the mouth)
