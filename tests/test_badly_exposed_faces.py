"""Faces in dark or overexposed photos (genaug.faces.align.exposed): a photo with no face found is searched again
brought to a mid-grey median, so its face is edited and its controls placed as in the photo rightly exposed."""
from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import UTKFACE, need, needs_dlib, utk_photo

torch.set_num_threads(1)
ASTRONAUT = Path(__file__).resolve().parents[1] / "genaug" / "assets" / "astronaut_face.jpg"


def astronaut() -> np.ndarray:
    return np.array(Image.open(ASTRONAUT).convert("RGB"))


def overexposed(rgb: np.ndarray, gain: float = 1.4, gamma: float = 0.6) -> np.ndarray:
    return np.clip(255 * gain * (rgb / 255.0) ** gamma, 0, 255).astype(np.uint8)


def darkened(rgb: np.ndarray, gamma: float = 4.0) -> np.ndarray:
    return (255 * (rgb / 255.0) ** gamma).astype(np.uint8)


def faces(rgb: np.ndarray) -> list:
    from genaug.faces.align import detect_faces
    from genaug.faces.identity import dlib_detector, dlib_predictor

    return detect_faces(dlib_detector(), dlib_predictor(), np.ascontiguousarray(rgb), 1)


def test_exposed_brings_a_dark_or_bright_photo_to_mid_grey_and_leaves_a_well_exposed_one():
    from genaug.faces.align import EXPOSURE, MID_GREY, exposed

    ramp = np.tile(np.arange(256, dtype=np.uint8), (32, 1))
    assert exposed(np.repeat(ramp[..., None], 3, 2)) is None  # median 0.5: as it is
    for level in (20, 240):
        photo = np.repeat(np.clip(ramp.astype(int) // 4 + level - 32, 0, 255).astype(np.uint8)[..., None], 3, 2)
        median = np.median(photo) / 255
        assert not EXPOSURE[0] <= median <= EXPOSURE[1]
        lit = exposed(photo)
        assert lit.shape == photo.shape and lit.dtype == np.uint8
        assert abs(np.median(lit) / 255 - MID_GREY) < 0.02


@needs_dlib
def test_an_overexposed_face_is_found_where_the_photo_shows_it():
    # a blown-out copy of the shipped face: dlib's detector found nothing in it or any view of it
    photo = astronaut()
    bright = overexposed(photo)
    whole = faces(photo)[0].landmarks
    found = faces(bright)
    assert len(found) == 1 and np.abs(found[0].landmarks - whole).max() <= 3.0


@needs_dlib
def test_a_light_is_rendered_on_an_overexposed_face_not_reported_faceless():
    bright = overexposed(astronaut())
    aug = A.Compose([genaug.GenerativeFaceAug(p=1.0, codes=["light"])], seed=0)
    out = aug(image=bright)["image"]
    info = aug.transforms[0].last_info
    assert bool(info.kept[0]) and info.descriptions[0].startswith("light=")
    assert out.shape == bright.shape and not np.array_equal(out, bright)


@needs_dlib
@pytest.mark.parametrize("number, spoil", [(0, darkened), (8, lambda p: overexposed(p, 1.5, 0.4))])
def test_real_faces_in_badly_exposed_photos_get_their_own_landmarks(number, spoil):
    photo = utk_photo(need(UTKFACE), number)
    whole = faces(photo)[0].landmarks
    found = faces(spoil(photo))
    assert len(found) == 1 and np.abs(found[0].landmarks - whole).max() <= 3.0
