"""Audit 14, detection in the wild: the landmarks of framing="full", known frames and the batch path
(``detect_landmarks``) search a turned photo as the photo path does, and both find a face cut by the photo's edge
(the photo searched padded) and a face rolled 45 degrees (the photo searched rolled both ways)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from genaug.faces.identity import faces_extra_available

torch.set_num_threads(1)
pytestmark = pytest.mark.skipif(not faces_extra_available(), reason='needs the faces extra (pip install "genaug[faces]")')
ASTRONAUT = Path(__file__).resolve().parents[1] / "genaug" / "assets" / "astronaut_face.jpg"


def astronaut() -> np.ndarray:
    return np.array(Image.open(ASTRONAUT).convert("RGB"))  # 128 x 128, eye distance ~57 px


def photo_path(rgb: np.ndarray) -> list:
    from genaug.faces.align import FaceAligner

    aligner = FaceAligner(64)  # a fresh one: no faces remembered
    return aligner.detect(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255)


def batch_path(rgb: np.ndarray) -> torch.Tensor:
    from genaug.faces.landmarks import detect_landmarks

    return detect_landmarks(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 127.5 - 1)[0]


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_detect_landmarks_searches_a_turned_photo_as_the_photo_path_does(turns):
    # before: the upright search found no face, and the framing rule's box put the eyes on the cheek (errors ~60 px)
    photo = astronaut()
    upright = batch_path(photo).numpy()
    h, w = photo.shape[:2]
    x, y = upright[:, 0], upright[:, 1]
    for _ in range(turns):  # as np.rot90 moves the pixels
        x, y, h, w = y, w - 1 - x, w, h
    assert np.abs(batch_path(np.rot90(photo, turns)).numpy() - np.stack([x, y], 1)).max() < 3.0


def test_a_face_cut_by_the_photos_edge_is_found_and_its_landmarks_map_back():
    # the chin cut off (20 % of the height): the frontal detector finds no face; searched padded, it does
    photo = astronaut()
    cut = photo[: round(0.8 * photo.shape[0])]
    whole = photo_path(photo)[0].landmarks
    found = photo_path(cut)
    assert len(found) == 1 and np.abs(found[0].landmarks - whole).max() < 3.0
    assert np.abs(batch_path(cut).numpy() - batch_path(photo).numpy()).max() < 3.0


@pytest.mark.parametrize("degrees", [45, -45])
def test_a_face_rolled_45_degrees_is_found_and_its_landmarks_map_back(degrees):
    # halfway between upright and a quarter turn: neither search found it
    photo = astronaut()
    h, w = photo.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    rolled = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    whole = photo_path(photo)[0].landmarks @ m[:, :2].T + m[:, 2]
    found = photo_path(rolled)
    assert len(found) == 1 and np.abs(found[0].landmarks - whole).max() < 3.0
    assert np.abs(batch_path(rolled).numpy() - whole).max() < 3.0


def test_noise_holds_no_face_in_any_view():
    noise = np.random.default_rng(0).integers(0, 256, (128, 160, 3), dtype=np.uint8)
    assert photo_path(noise) == []
