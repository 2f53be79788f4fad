"""Audit 14, photos in the wild: a face rolled past what dlib's frontal detector finds (a phone photo held sideways,
or a photo loaded without applying its EXIF orientation; upside down) is searched in the photo turned by quarter
turns, so the transform's rendered controls land on it instead of leaving the photo unchanged ("no face found")."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from conftest import UTKFACE, need

import genaug
from genaug.faces.identity import faces_extra_available

torch.set_num_threads(1)
pytestmark = pytest.mark.skipif(not faces_extra_available(), reason="needs the faces extra (dlib)")


def utk(folder, i: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(folder / "images" / f"{i:05d}.jpg").convert("RGB"))


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_turned_photo_is_searched_by_quarter_turns_and_its_landmarks_map_back(turns):
    from genaug.faces.align import get_aligner

    photo = utk(need(UTKFACE), 3)
    aligner = get_aligner(64)

    def landmarks(rgb):
        found = aligner.detect(torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255)
        assert len(found) == 1
        return found[0].landmarks

    upright = landmarks(photo)
    turned = landmarks(np.rot90(photo, turns))
    # the upright landmarks, moved as np.rot90 moves the photo's pixels
    h, w = photo.shape[:2]
    x, y = upright[:, 0], upright[:, 1]
    for _ in range(turns):
        x, y, h, w = y, w - 1 - x, w, h
    assert np.abs(turned - np.stack([x, y], 1)).max() < 3.0  # pixels, on a 128 px photo (eye distance ~50)


@pytest.mark.parametrize("code", ["drawn_glasses", "yaw", "light"])
def test_a_sideways_photo_is_edited_where_the_upright_one_is(code):
    photo = utk(need(UTKFACE), 3)
    aug = genaug.GenerativeFaceAug(p=1, codes=[code], framing="auto")
    changed = {}
    for turns in (0, 1):
        rgb = np.ascontiguousarray(np.rot90(photo, turns))
        out = A.Compose([aug], seed=0)(image=rgb)["image"]
        assert aug.last_info.kept[0], aug.last_info.descriptions  # before: "unchanged (no face found)" when sideways
        diff = np.abs(out.astype(int) - rgb).max(2) > 8
        changed[turns] = np.rot90(diff, -turns)  # back upright
    a, b = changed[0], changed[1]
    assert a.sum() > 200 and b.sum() > 200
    if code != "light":  # (light's direction is in image axes: a sideways photo is lit from the face's top or chin)
        assert (a & b).sum() / (a | b).sum() > 0.5  # the same pixels of the face change (IoU)
