"""The turn's head (issue #31): its cheeks fall off faster than the round head's, so the face's outline is turned near
the silhouette, not as front material that moves almost as far as the nose (a +-30 degree render looked like 15)."""
from __future__ import annotations

import math

import pytest
import torch

from genaug.faces.pose import AXIS_DEPTH, fit_pose, rotate_yaw
from genaug.faces.shape import depth, landmarks_3d, surface
from test_pose_light import project

torch.set_num_threads(1)


def test_the_turns_head_lowers_the_outline_and_keeps_the_landmarks_and_the_lights_head():
    # frontal photos' jaw outline lies ~1.1 eye distances out from the eye line to the nose: depth 0.61-0.68 round
    x, y = torch.tensor([1.115, 1.1, 1.06]), torch.tensor([0.0, 0.29, 0.58])
    assert depth(x, y).min() > 0.6 and depth(x, y, turn=True).max() < 0.55
    lm = landmarks_3d()  # the yaw fit's model (the round head): the nose base kept, the outer eye corners 0.07 shallower
    assert depth(lm[:, 0], lm[:, 1], turn=True).tolist() == pytest.approx(lm[:, 2].tolist(), abs=0.08)
    xs, ys = torch.meshgrid(torch.linspace(-1.5, 1.5, 61), torch.linspace(1.0, 2.3, 27), indexing="ij")
    assert torch.allclose(depth(xs, ys, turn=True), depth(xs, ys), atol=1e-5)  # below the mouth: the round head
    assert torch.equal(surface(xs, ys), surface(xs, ys, turn=False))  # the light's head (the default) is the round one


@pytest.mark.parametrize("yaw", [30.0, -30.0])
def test_a_turn_moves_the_nose_against_the_outline_further(yaw):
    # where the nose ridge lands between the two outline points (the photo's +-1.1 eye distances) of its row, -1..1
    # (0 frontal), carried by a ramp: 0.266 / 0.316 at rows 0.29 / 0.58 below the eyes on the round head, now 0.293 / 0.349
    d, n, eyes = 40.0, 192, 70.0
    ramp = torch.linspace(-1, 1, n).expand(1, 3, n, n).clone()
    out = rotate_yaw(ramp, yaw, project(0.0, scale=d, centre=(n / 2, eyes)), keep_eyes=False, symmetry=0.0)
    for y, least in ((0.29, 0.28), (0.58, 0.33)):
        row = out[0, 0, round(eyes + y * d)]
        left, right, nose = (float((row - (-1 + 2 * (n / 2 + x * d) / (n - 1))).abs().argmin()) for x in (-1.1, 1.1, 0.0))
        assert (2 * (nose - left) / (right - left) - 1) * (1 if yaw > 0 else -1) > least


@pytest.mark.parametrize("src, yaw", [(0.0, 30.0), (20.0, -30.0)])
def test_the_photo_moves_with_the_turned_heads_eyes(src, yaw):
    # keep_eyes moves the photo by the whole pixels the eyes move: the turn's head's eyes (the outer corners 0.07
    # shallower than the round head's), else a 100 px face turned 30 degrees was moved 2 px too far
    d, n = 100.0, 560  # (not a scene: in_scene)
    lm = project(src, scale=d, centre=(n / 2, 150.0))
    ramp = torch.linspace(0, 1, n, dtype=torch.float64).expand(1, 3, n, n).clone().float()
    cols = slice(40, 80) if yaw > 0 else slice(n - 80, n - 40)  # background, away from the edge the move eases at
    moved, still = (rotate_yaw(ramp, yaw, lm, keep_eyes=k, symmetry=0.0)[0, 0, 150, cols] for k in (True, False))
    shift = float(((moved - still) * (n - 1)).median())  # the photo's whole-pixel move
    fit = fit_pose(lm)
    a, b = float(fit.yaw[0]), float(fit.yaw[0]) + math.radians(yaw)
    eyes = landmarks_3d()[:4]
    z = float(depth(eyes[:, 0], eyes[:, 1], turn=True).mean())
    px = float(fit.scale * fit.frame.scale)  # pixels per eye distance
    assert shift == pytest.approx(round(px * (z - AXIS_DEPTH) * (math.sin(b) - math.sin(a))), abs=0.01)  # 19, -19
