"""Where a turn moves the background (genaug.faces.pose.rotate_yaw): nothing beyond 1.1 head radii of the photo's
head (issue #31: a small face in a large frame, straight edges beside a head turned back bent up to 1.5 radii out)."""
from __future__ import annotations

import math

import pytest
import torch

from genaug.faces.pose import fit_pose, in_scene, rotate_yaw
from genaug.faces.shape import head_radius, landmarks_3d

torch.set_num_threads(1)
SIZE = 256


def turned_landmarks(yaw: float, scale: float = 40.0) -> torch.Tensor:
    """The generic face's landmarks at ``yaw`` degrees, ``scale`` px per eye distance, in a SIZE px frame (1, 5, 2)."""
    p, t = landmarks_3d(), math.radians(yaw)
    u = p[:, 0] * math.cos(t) + p[:, 2] * math.sin(t)
    return torch.stack([128 + scale * u, 110 + scale * p[:, 1]], 1)[None]


def moved(yaw: float, request: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(px moved, head radius of the photo's head) per pixel: a coordinate ramp turned (bicubic keeps a ramp)."""
    ys, xs = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    ramp = torch.stack([xs / 128 - 1, ys / 128 - 1, torch.zeros_like(xs)])[None]
    lm = turned_landmarks(yaw)
    pose = fit_pose(lm)
    assert bool(in_scene(pose, SIZE, SIZE)[0])  # a small face in a large frame: the photo itself stays in place
    out = rotate_yaw(ramp, request, lm)
    move = torch.hypot(out[0, 0] - ramp[0, 0], out[0, 1] - ramp[0, 1]) * 128
    u, v = pose.frame.pixel_grid(SIZE, SIZE)
    s = pose.scale[0]
    return move[2:-2, 2:-2], head_radius((u[0] - pose.tu[0]) / s, (v[0] - pose.tv[0]) / s)[2:-2, 2:-2]


@pytest.mark.parametrize("yaw, request_", [(20.0, -30.0), (-25.0, 30.0), (0.0, 30.0), (15.0, 15.0)])
def test_nothing_beyond_the_heads_fade_moves(yaw, request_):
    """Before: a head at 20 degrees turned back by 30 moved pixels 1.1-1.5 radii out by up to 5.5 px."""
    move, r = moved(yaw, request_)
    assert float(move[r >= 1.1].max()) < 0.05
    assert float(move[r < 0.85].max()) > 3.0  # the head itself still turns
