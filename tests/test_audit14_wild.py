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


def _scene(folder) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A 900x600 group photo on smooth noise: a 300 px face (the largest, the one edited) and two smaller ones to
    its left (x < 480); returns the photo and the large face's box."""
    from PIL import Image

    rng = np.random.default_rng(0)
    scene = Image.fromarray((rng.random((25, 37, 3)) * 255).astype(np.uint8)).resize((900, 600), Image.BICUBIC)
    for i, size, at in ((3166, 300, (540, 150)), (5683, 160, (60, 220)), (3899, 200, (250, 60))):
        scene.paste(Image.fromarray(utk(folder, i)).resize((size, size), Image.BICUBIC), at)
    return np.asarray(scene), (540, 150, 840, 450)


def test_a_turn_in_a_group_photo_leaves_the_other_faces_where_they_were():
    """In a scene (a group photo, a face small in a large photo) the head turns in place: before, the whole photo moved
    with the edited face's eyes (20 px here), the other faces too, with a stretched band a face wide along an edge."""
    from genaug.engine import Engine

    photo, (l, t, r, b) = _scene(need(UTKFACE))
    out = Engine(device="cpu").augment([photo, photo], edits=[("yaw", -25.0), ("yaw", 25.0)])
    for o in out[0] if isinstance(out, tuple) else out:
        o = np.asarray(o).astype(int)
        changed = np.abs(o - photo).max(2) > 8
        assert changed[t:b, l:r].mean() > 0.1  # the large face turned
        assert not changed[:, :480].any()  # the others (and everything left of the edited head) untouched


def test_a_face_crop_still_moves_with_its_eyes():
    """The scene rule leaves face crops as they were: a loose 128 px crop turned moves as a whole (its eyes kept), so
    pixels far from the face change too."""
    from genaug.faces.pose import fit_pose, in_scene, rotate_yaw
    from genaug.faces.landmarks import face_landmarks

    x = torch.from_numpy(utk(need(UTKFACE), 3000).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    lm = face_landmarks(x)
    assert not bool(in_scene(fit_pose(lm), 128, 128)[0])
    assert bool(in_scene(fit_pose(lm / 4), 512, 512)[0])  # the same face at a quarter of the size in a 512 px photo
    out = rotate_yaw(x, 25.0, landmarks=lm)
    assert (out - x)[..., 0:6, :].abs().amax() > 0.05  # the top rows, above the head, moved with it


def test_drawn_glasses_leave_a_near_profile_face_as_it_is():
    """Beyond 40 degrees the frames used to fade (opacity 0.2-0.5 at 45-48 degrees): grey smudges over eye and cheek.
    Such a face is now left as it is, as a turn leaves it, and the control reports the value 0 it rendered."""
    from genaug.faces.controls import IMAGE_CONTROLS
    from genaug.faces.glasses import add_glasses
    from genaug.faces.pose import estimate_yaw

    folder = need(UTKFACE)
    x = torch.stack([torch.from_numpy(utk(folder, i).copy()).permute(2, 0, 1) for i in (1341, 1127, 3000)]).float() / 127.5 - 1
    yaw = estimate_yaw(x).abs()
    assert bool((yaw[:2] > 42).all()) and float(yaw[2]) < 30, yaw
    out = add_glasses(x, 1.0)
    assert torch.equal(out[:2], x[:2]) and (out[2] - x[2]).abs().amax() > 0.3
    control = IMAGE_CONTROLS["drawn_glasses"]
    assert control.fit(x, 1.0).tolist() == [0.0, 0.0, 1.0]
    assert torch.allclose(control.fit(x, 0.8, drawn=(0.6, 1.0)), torch.tensor([0.0, 0.0, 0.8]))
