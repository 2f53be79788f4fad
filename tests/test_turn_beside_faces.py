"""A turn in a photo of several faces leaves the other faces where they were, even where the photo is no scene by its
size (:func:`genaug.faces.pose.in_scene`): two large faces close together (nineteenth audit: 320x200, faces of 128 and
110 px) moved together when one of them turned, the whole photo following the turned head's eyes."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from conftest import UTKFACE, need, needs_dlib, utk_photo
from PIL import Image

import genaug
from genaug.faces.pose import faces_beside, rotate_yaw

FACES = ((10, 40, 138, 168), (190, 30, 300, 140))  # (left, top, right, bottom) of the two faces in the photo


def two_faces(folder) -> np.ndarray:
    """utkface_128 photos 10 (128 px) and 1145 (110 px) side by side on a 320x200 backdrop of smooth noise."""
    rng = np.random.default_rng(5)
    photo = Image.fromarray((rng.random((6, 8, 3)) * 140 + 60).astype(np.uint8)).resize((320, 200), Image.BICUBIC)
    photo.paste(Image.fromarray(utk_photo(folder, 10)), FACES[0][:2])
    photo.paste(Image.fromarray(utk_photo(folder, 1145)).resize((110, 110), Image.BICUBIC), FACES[1][:2])
    return np.asarray(photo)


def changed(out: np.ndarray, photo: np.ndarray) -> np.ndarray:
    return np.abs(out.astype(int) - photo).max(2) > 0


@needs_dlib
@pytest.mark.parametrize("degrees", [20.0, -20.0])
def test_a_turn_leaves_another_large_face_close_by_untouched(degrees):
    photo = two_faces(need(UTKFACE))
    c = A.Compose([genaug.GenerativeFaceAug(p=1.0, codes=["yaw"], bounds={"yaw": (degrees, degrees)})], seed=1)
    diff = changed(c(image=photo)["image"], photo)
    (l, t, r, b), (l2, t2, r2, b2) = FACES
    assert diff[t:b, l:r].mean() > 0.3  # the larger face turned
    assert not diff[t2:b2, l2:r2].any() and not diff[:, 160:].any()  # the other one (and all beside it) kept its bytes


@needs_dlib
def test_each_face_of_a_photo_turns_in_place():
    """``augment_faces`` turns both faces, each in place: the strip between them and the photo's right edge keep their
    bytes (before, each turn moved the whole photo)."""
    from genaug.align import augment_faces
    from genaug.engine import Engine

    photo = two_faces(need(UTKFACE))
    out, n = augment_faces(Engine("default", codes=["yaw"]), photo, "each", generator=torch.Generator().manual_seed(0))
    diff = changed(out, photo)
    assert n == 2 and all(diff[t:b, l:r].mean() > 0.3 for l, t, r, b in FACES)
    assert not diff[:, 152:188].any() and not diff[:, 308:].any()


@needs_dlib
def test_rotate_yaw_keeps_a_face_crop_in_place_beside_other_faces():
    """A face crop moves with its eyes; told of another face in it (``others`` or :func:`faces_beside`), it stays in
    place: its right edge, beyond the head, keeps its values."""
    from genaug.faces.landmarks import face_landmarks

    x = torch.from_numpy(utk_photo(need(UTKFACE), 3000).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    lm = face_landmarks(x)
    other = lm * 0.25 + torch.tensor([2.0, 2.0])  # a small face in the top left corner
    assert (rotate_yaw(x, 25.0, landmarks=lm) - x)[..., 110:].abs().amax() > 0.05  # alone: the photo moves
    still = rotate_yaw(x, 25.0, landmarks=lm, others=other)
    with faces_beside(other):
        assert torch.equal(rotate_yaw(x, 25.0, landmarks=lm), still)
    assert torch.equal(still[..., 112:], x[..., 112:])
    with pytest.raises(ValueError, match=r"\(K, 5, 2\)"):
        rotate_yaw(x, 25.0, landmarks=lm, others=torch.zeros(3, 2))
