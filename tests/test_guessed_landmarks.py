"""Where dlib finds no face, ``BatchFaceAug.find_landmarks`` gives the framing rule's landmarks refined by the 5-point
model (a guess, not NaN), as the per-image path places controls on a photo it takes whole: such a photo is taken to
be a face crop (dlib misses 22 of 200 celeba_train_64 crops); under ``framing="auto"`` a photo of another size without
a found face is left "unchanged (no face found)" (docs/guide.md, "Your own landmarks")."""
from __future__ import annotations

import albumentations as A
import numpy as np
import torch

import genaug
from conftest import needs_dlib
from genaug.engine.photos import NO_FACE
from genaug.faces.landmarks import box_landmarks, refine_landmarks

torch.set_num_threads(1)


@needs_dlib
def test_faceless_photos_get_the_refined_rule_where_taken_whole_and_no_face_elsewhere():
    rng = np.random.default_rng(0)
    rows = torch.stack([torch.zeros(3, 64, 64, dtype=torch.uint8),
                        torch.from_numpy(rng.integers(0, 256, (3, 64, 64), dtype=np.uint8))])
    lm = genaug.BatchFaceAug().find_landmarks(rows)
    rule = box_landmarks((0, 0, 64, 64), 2)
    torch.testing.assert_close(lm, refine_landmarks(rows.float() / 127.5 - 1, rule))  # finite: a guess, not NaN
    eyes = float((rule[0, 0:2].mean(0) - rule[0, 2:4].mean(0)).norm())
    assert float((lm - rule).norm(dim=2).max()) < 0.5 * eyes  # where the rule puts a face
    noise = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)  # neither model-sized nor a known frame
    aug = genaug.GenerativeFaceAug(p=1.0, codes=["yaw"], framing="auto")
    assert np.array_equal(A.Compose([aug], seed=0)(image=noise)["image"], noise)
    assert aug.last_info.descriptions == [NO_FACE]
