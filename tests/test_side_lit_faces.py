"""Faces lit hard from one side, half in deep shadow, are found (genaug.faces.align.equalised): dlib missed about half of
such utkface_128 photos, and ``yaw`` / ``light`` / ``drawn_glasses`` came back "unchanged (no face found)"."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from conftest import UTKFACE, need, needs_dlib, utk_photo

PHOTOS = (3004, 3005, 3006, 3011)  # each missed side-lit before (and found in normal light)


def side_lit(photo: np.ndarray) -> np.ndarray:
    """The photo lit from its right: its left third at 0.15, rising across the face's middle third to 1.1."""
    t = np.clip((np.arange(photo.shape[1]) - 0.34 * photo.shape[1]) / (0.31 * photo.shape[1]), 0, 1)[None, :, None]
    return np.clip(photo * (0.15 + 0.95 * t) + 0.5, 0, 255).astype(np.uint8)


@needs_dlib
@pytest.mark.parametrize("i", PHOTOS)
def test_a_side_lit_face_is_found_where_it_is(i):
    from genaug.faces.align import detect_faces
    from genaug.faces.identity import dlib_detector, dlib_predictor

    photo = utk_photo(need(UTKFACE), i)
    det, lmk = dlib_detector(), dlib_predictor()
    (lit,), (upright, *_) = detect_faces(det, lmk, side_lit(photo), 1)[:1], detect_faces(det, lmk, photo, 1)
    eyes = np.linalg.norm(upright.landmarks[:2].mean(0) - upright.landmarks[2:4].mean(0))
    assert np.abs(lit.landmarks - upright.landmarks).max() < 0.35 * eyes  # the points where the lit photo's are


@needs_dlib
def test_the_controls_draw_on_a_side_lit_face():
    import genaug

    photo = side_lit(utk_photo(need(UTKFACE), PHOTOS[0]))
    aug = genaug.GenerativeFaceAug(codes=["drawn_glasses"], p=1.0)
    out = A.Compose([aug], seed=0)(image=photo)["image"]
    assert bool(aug.last_info.kept[0]), aug.last_info.descriptions  # was "unchanged (no face found)"
    assert (out != photo).any()
