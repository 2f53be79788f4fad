"""The light's direction is in the face's frame: on a rolled face (a tilted head, a photo turned sideways or rolled
45 degrees) ``relight``'s azimuth and ``estimate_light``'s reading follow the face's eye line, not the image's axes;
a face rolled less than ROLL_FROM degrees (an upright crop) is lit as before, bit for bit."""
from __future__ import annotations

import math

import albumentations as A
import numpy as np
import pytest
import torch
from conftest import UTKFACE, need

import genaug
import genaug.faces.light as light
from genaug.faces.identity import faces_extra_available
from genaug.faces.light import estimate_light, light_axes, relight
from genaug.faces.pose import fit_pose
from genaug.faces.shape import landmarks_3d

torch.set_num_threads(1)
dlib_needed = pytest.mark.skipif(not faces_extra_available(), reason='needs the faces extra (pip install "genaug[faces]")')


def utk(folder, i: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(folder / "images" / f"{i:05d}.jpg").convert("RGB"))


def tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 127.5 - 1


def levels(x: torch.Tensor) -> np.ndarray:
    return ((x[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()


def turned(rgb: np.ndarray, degrees: int) -> np.ndarray:
    """``rgb`` turned counter-clockwise: quarter turns as np.rot90, else a PIL rotate with expand (grey corners)."""
    from PIL import Image

    if degrees % 90 == 0:
        return np.ascontiguousarray(np.rot90(rgb, degrees // 90))
    return np.asarray(Image.fromarray(rgb).rotate(degrees, resample=Image.BICUBIC, expand=True, fillcolor=(128, 128, 128)))


def rolled_landmarks(roll: float, centre=(64.0, 64.0), scale: float = 40.0) -> torch.Tensor:
    """The generic face's 5 landmarks, frontal, rolled by ``roll`` degrees (image y down), (1, 5, 2) pixels."""
    p, r = landmarks_3d(), math.radians(roll)
    x, y = p[:, 0] * math.cos(r) - p[:, 1] * math.sin(r), p[:, 0] * math.sin(r) + p[:, 1] * math.cos(r)
    return torch.stack([centre[0] + scale * x, centre[1] + scale * y], 1)[None]


def cheek_gain(rgb: np.ndarray, lit: np.ndarray, lm: np.ndarray) -> tuple[float, float]:
    """Mean luminance gain (levels) of ``lit`` over ``rgb`` on the upright face's cheek below each eye: (the cheek on
    the image's left, the one on its right); ``lm`` the upright photo's 5 landmarks."""
    gain = (lit.astype(float) - rgb.astype(float)) @ np.array([0.299, 0.587, 0.114])
    d = float(np.linalg.norm(lm[0:2].mean(0) - lm[2:4].mean(0)))
    out = []
    for eye in (lm[2:4].mean(0), lm[0:2].mean(0)):  # the eye on the image's left (dlib's 2-3), then on its right
        cx, cy, r = round(eye[0]), round(eye[1] + 0.7 * d), round(0.2 * d)
        out.append(float(gain[cy - r : cy + r + 1, cx - r : cx + r + 1].mean()))
    return out[0], out[1]


@dlib_needed
@pytest.mark.parametrize("turns", [1, 3])
@pytest.mark.parametrize("azimuth", [-60.0, 60.0])
def test_light_from_the_faces_side_lights_that_cheek_on_a_sideways_photo(turns, azimuth):
    """Before: the azimuth was in the image's axes, so a sideways face was lit from its brow or chin, both cheeks
    alike; now from its own side, as the upright photo is."""
    from genaug.faces.landmarks import face_landmarks

    photo = utk(need(UTKFACE), 3)
    lm = face_landmarks(tensor(photo))[0].numpy()
    upright = levels(relight(tensor(photo), azimuth, 15.0, 0.8, lm[None]))
    side = turned(photo, 90 * turns)
    back = np.rot90(levels(relight(tensor(side), azimuth, 15.0, 0.8)), -turns)  # landmarks found on the sideways photo
    lit_left, lit_right = cheek_gain(photo, back, lm)
    ref_left, ref_right = cheek_gain(photo, upright, lm)
    lit_side = (lit_right - lit_left) * np.sign(azimuth)  # positive: the cheek towards the light gains more
    assert (ref_right - ref_left) * np.sign(azimuth) > 5  # (the upright photo, as ever: 70 / 10 levels)
    assert lit_side > 5, (lit_left, lit_right, ref_left, ref_right)
    assert abs(lit_side - (ref_right - ref_left) * np.sign(azimuth)) < 5  # as much as upright (levels)


@dlib_needed
@pytest.mark.parametrize("degrees", [90, -90, 45])
@pytest.mark.parametrize("azimuth", [-60.0, 60.0])
def test_the_estimate_of_a_rolled_photo_matches_the_upright_one(degrees, azimuth):
    photo = utk(need(UTKFACE), 10)  # landmarks found alike upright and rolled 45 degrees (44-45 degrees of roll measured)
    lit = levels(relight(tensor(photo), azimuth, 15.0, 0.8))
    upright = float(estimate_light(tensor(lit)).side)
    rolled = float(estimate_light(tensor(turned(lit, degrees))).side)
    assert np.sign(upright) == np.sign(azimuth) and abs(upright) > 0.2
    assert np.sign(rolled) == np.sign(upright) and abs(rolled - upright) < 0.1, (upright, rolled)


def test_light_axes_keep_upright_faces_in_the_images_axes_and_turn_with_rolled_ones():
    for roll in (0.0, 3.0, -4.9):
        assert torch.equal(light_axes(fit_pose(rolled_landmarks(roll))), torch.tensor([[1.0, 0.0]]))
    for roll in (10.0, -30.0, 90.0, 180.0):
        want = torch.tensor([[math.cos(math.radians(roll)), math.sin(math.radians(roll))]])
        assert torch.allclose(light_axes(fit_pose(rolled_landmarks(roll))), want, atol=1e-4)
    half = float(torch.rad2deg(torch.atan2(*light_axes(fit_pose(rolled_landmarks(7.5))).flip(1)[0])))
    assert 3.0 < half < 4.5  # between ROLL_FROM and ROLL_FULL: part of the way (a smoothstep, no jump)


@pytest.mark.parametrize("roll", [0.0, 2.0, -4.0, 30.0])
def test_a_face_rolled_less_than_roll_from_is_relit_bit_for_bit_as_in_image_axes(monkeypatch, roll):
    """Upright faces are lit as before the light followed the roll (the azimuth in the image's axes)."""
    x = torch.nn.functional.interpolate(torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(0)) * 1.8 - 0.9,
                                        size=(128, 128), mode="bicubic", align_corners=False).clamp(-0.95, 0.95)
    lm = rolled_landmarks(roll).expand(2, 5, 2)
    now = relight(x, torch.tensor([60.0, -45.0]), 15.0, 0.8, lm)
    est = estimate_light(now, lm)
    monkeypatch.setattr(light, "light_axes", lambda pose: torch.tensor([[1.0, 0.0]]).expand(len(pose.yaw), 2))
    same = abs(roll) < light.ROLL_FROM
    assert torch.equal(relight(x, torch.tensor([60.0, -45.0]), 15.0, 0.8, lm), now) == same
    assert torch.equal(estimate_light(now, lm).coefficients, est.coefficients) == same


def test_the_light_follows_given_landmarks_of_a_rolled_face():
    """Lit from the face's right (azimuth +60) on a face rolled 90 degrees (its right side at the image's bottom): the
    bottom of the head brightens, its top darkens - as the image's right and left do upright."""
    x = torch.zeros(1, 3, 128, 128)
    for roll, (a, b) in ((0.0, (np.s_[40:90, 85:100], np.s_[40:90, 28:43])), (90.0, (np.s_[85:100, 40:90], np.s_[28:43, 40:90]))):
        out = relight(x, 60.0, 0.0, 1.0, rolled_landmarks(roll, centre=(64.0, 50.0) if roll == 0 else (78.0, 64.0)))
        assert float(out[0, :, a[0], a[1]].mean()) > float(out[0, :, b[0], b[1]].mean()) + 0.05, roll


@dlib_needed
def test_the_light_transform_round_trips_and_lights_a_sideways_photo_as_the_upright_one():
    photo = utk(need(UTKFACE), 3)
    aug = genaug.GenerativeFaceAug(p=1, codes=["light"], bounds={"light": (40, 60)}, framing="auto")
    back = A.from_dict(A.to_dict(A.Compose([aug])))
    assert back.transforms[0].codes == ["light"] and tuple(back.transforms[0].bounds["light"]) == (40, 60)
    changed = []
    for turns in (0, 1):
        rgb = np.ascontiguousarray(np.rot90(photo, turns))
        out = A.Compose([aug], seed=0)(image=rgb)["image"]
        assert np.array_equal(A.Compose(back.transforms, seed=0)(image=rgb)["image"], out)
        assert aug.last_info.kept[0]
        changed.append(np.rot90(np.abs(out.astype(int) - rgb).max(2) > 8, -turns))  # back upright
    a, b = changed
    assert a.sum() > 200 and (a & b).sum() / (a | b).sum() > 0.8  # the same pixels change (IoU; before: 0.36)
