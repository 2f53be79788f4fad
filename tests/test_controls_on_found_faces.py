"""The rendered controls (light, yaw, drawn glasses) are placed on the face the detector finds, not by the framing
rule's guess, where the rule's box is not the face: ``framing="full"`` on a photo that is not square (the guess in its
centred square), and a photo merely shaped like CelebA's 178x218 frame at another size with its face elsewhere (the
guess in CelebA's box). Both painted the light or the glasses on the background and turned a ghost face there."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from conftest import needs_dlib
from PIL import Image

import genaug
from genaug.demo import DEMO_FACES

torch.set_num_threads(1)


def _scene(w: int, h: int, x: int, y: int) -> np.ndarray:
    """A smooth noise background (seeded) with the shipped demo face (128 px) at (x, y)."""
    rng = np.random.default_rng(0)
    bg = np.asarray(Image.fromarray(rng.integers(90, 160, (h // 32 + 1, w // 32 + 1, 3), dtype=np.uint8))
                    .resize((w, h), Image.BICUBIC)).copy()
    bg[y:y + 128, x:x + 128] = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB"))
    return bg


@needs_dlib
@pytest.mark.parametrize("code", ["light", "yaw", "drawn_glasses"])
@pytest.mark.parametrize("w, h, x, y", [(640, 360, 480, 40), (300, 560, 10, 400)])
def test_a_control_with_full_framing_lands_on_the_face_of_a_photo_that_is_not_square(code, w, h, x, y):
    photo = _scene(w, h, x, y)
    aug = genaug.GenerativeFaceAug(codes=[code], framing="full", p=1.0)
    out = A.Compose([aug], seed=0)(image=photo)["image"]
    assert out.shape == photo.shape and out.dtype == photo.dtype and aug.last_info.kept[0]
    change = np.abs(out.astype(np.int32) - photo).sum(-1)
    on_face = change[max(y - 32, 0):y + 160, max(x - 32, 0):x + 160].sum() / change.sum()
    assert on_face > 0.9, on_face  # before: light 0.00, yaw 0.24-0.28 (the background turned about a guessed face)


@needs_dlib
def test_the_batch_paths_landmarks_of_a_landscape_batch_are_the_faces():
    photo = _scene(640, 360, 480, 40)
    aug = genaug.BatchFaceAug(codes=["light"], framing="full")
    lm = aug.find_landmarks(torch.from_numpy(photo).permute(2, 0, 1)[None])[0]
    assert bool((lm[:, 0] > 480).all() and (lm[:, 0] < 608).all() and (lm[:, 1] > 40).all() and (lm[:, 1] < 168).all())


@needs_dlib
@pytest.mark.parametrize("code", ["light", "yaw", "drawn_glasses"])
def test_a_control_on_a_celeba_shaped_photo_whose_face_is_elsewhere_lands_on_the_face(code):
    photo = _scene(356, 436, 20, 20)  # CelebA's 178:218 shape at twice its size, the face top left (not in its box)
    aug = genaug.GenerativeFaceAug(codes=[code], p=1.0)
    out = A.Compose([aug], seed=0)(image=photo)["image"]
    assert out.shape == photo.shape and aug.last_info.kept[0]
    change = np.abs(out.astype(np.int32) - photo).sum(-1)
    on_face = change[:180, :180].sum() / change.sum()
    assert on_face > 0.9, on_face  # before: 0.0 (light, glasses on the background), 0.2 (yaw)


@needs_dlib
def test_the_batch_paths_landmarks_of_a_celeba_shaped_batch_are_its_faces_where_it_lies_elsewhere():
    photo = _scene(356, 436, 20, 20)  # as GenerativeFaceAug now places them (was CelebA's box refined in place)
    lm = genaug.BatchFaceAug(codes=["light"]).find_landmarks(torch.from_numpy(photo).permute(2, 0, 1)[None])[0]
    assert bool((lm >= 20).all() and (lm <= 148).all()), lm
