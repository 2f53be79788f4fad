"""A strength sweep at one seed (``A.Compose([GenerativeFaceAug(strength=s)], seed=...)`` for s in 0.25 ... 1) shows the
same drawn edit, weaker or stronger: a fixed strength scales the draw and is not part of the seed's salt (it drew
another edit at each strength, so the change did not grow with the strength: yaw 4.1 / 10.9 / 4.0 levels at
0.25 / 0.5 / 1 on utkface_128 00001)."""
import albumentations as A
import numpy as np
import pytest
from PIL import Image

import genaug
from genaug.demo import DEMO_FACES


@pytest.mark.parametrize("seed", [0, 4])
def test_a_strength_sweep_at_one_seed_scales_one_edit(seed):
    face = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((128, 128)))
    names, change = [], []
    for strength in (0.25, 0.5, 1.0):
        aug = genaug.GenerativeFaceAug(p=1.0, strength=strength, codes=["tone", "shade", "warmth"])
        out = A.Compose([aug], seed=seed)(image=face)["image"]
        names.append(aug.last_info.descriptions[0])
        change.append(float(np.abs(out.astype(int) - face).mean()))
    assert len(set(names)) == 1, names  # the same code and value: the strength scales it
    assert change[0] < change[1] < change[2], change


def test_a_strength_range_still_salts():
    face = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((128, 128)))
    drawn = []
    for strength in ((0.5, 1.0), (0.2, 0.3), 1.0):
        aug = genaug.GenerativeFaceAug(p=1.0, strength=strength, codes=["tone", "shade", "warmth"])
        A.Compose([aug], seed=3)(image=face)
        drawn.append(aug.last_info.descriptions[0])
    assert len(set(drawn)) == 3, drawn
