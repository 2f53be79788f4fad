"""The yaw of a face from its 5 landmarks, whatever its pitch and roll (:func:`fit_yaw`, used by
:func:`genaug.faces.pose.fit_pose`).

The generic face's 3D landmarks (:mod:`genaug.faces.shape`) are turned by (yaw, pitch) on a grid and placed on the
photo's by the best similarity (scale, roll, shift: a 2D Procrustes fit, in closed form); the yaw is the mean over
the posterior those fits give, mapped back so that the generic face at pitch 0 reads its own yaw. 5 landmarks barely
show pitch (the nose base's height, which differs from person to person), yet a fit without it misread turned heads
thrown back or bowed (issue #31).
"""
from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from .shape import landmarks_3d

PITCH_SPREAD = 8.0  # degrees: the prior spread of a head's pitch, which 5 landmarks barely show
LANDMARK_SPREAD = 0.04  # eye distances: how far a photo's landmarks stray from the generic face's (person, detector)
FIT_GRID = (84.0, 4.0, 40.0, 4.0)  # the grid: yaw within +-84 degrees, pitch within +-40, by 4 (the posterior is smooth: by 2 the yaw
# moved at most 2e-5 degrees on 600 real faces, 0.05 on the generic face's views to 80 degrees, 5 times slower)


def _posterior_yaw(points: Tensor) -> Tensor:
    """(N,) radians: the mean yaw over the posterior of the generic face's landmarks turned by (yaw, pitch) on
    FIT_GRID, placed on ``points`` (N, 5, 2) by the best similarity (a 2D Procrustes fit, in closed form: any
    roll), residuals of LANDMARK_SPREAD and a prior of PITCH_SPREAD on the pitch."""
    dev = _work_device(points.device)
    yaw, pitch, rows_x, rows_y, spread = _fit_grid(dev)
    p = points.detach().to(dev, torch.float64)
    p = p - p.mean(1, keepdim=True)
    p = torch.complex(p[..., 0], p[..., 1])  # (N, 5)
    moments = torch.einsum("ik,ni->nk", _centred_3d(dev).to(p.dtype), p)  # (N, 3): sum of X_i p_i
    out = []
    for part, m in zip(p.split(64), moments.split(64)):  # (grid, 64) at a time
        cross = torch.complex(rows_x, -rows_y) @ m.T  # sum of conj(q_i) p_i
        misfit = spread[:, None] - cross.abs() ** 2 / (part.abs() ** 2).sum(1)  # sum |q|^2 less the fitted share
        weight = torch.softmax(-0.5 * (misfit / LANDMARK_SPREAD**2 + (pitch[:, None] / math.radians(PITCH_SPREAD)) ** 2), 0)
        out.append((weight * yaw[:, None]).sum(0))
    return torch.cat(out).to(points.device, torch.float32) if out else points.new_zeros(0)


def _work_device(device: torch.device) -> torch.device:
    """Where the fit runs in float64: on the points' device (no host sync in a batch on an accelerator), on the host
    for MPS (no float64 there)."""
    return torch.device("cpu") if device.type == "mps" else device


@functools.lru_cache(maxsize=8)
def _centred_3d(device: torch.device = torch.device("cpu")) -> Tensor:
    p3 = landmarks_3d().double()
    return (p3 - p3.mean(0)).to(device)


@functools.lru_cache(maxsize=8)
def _fit_grid(device: torch.device = torch.device("cpu")) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """FIT_GRID's (yaw, pitch) radians (G,), the rows of each rotation that project a 3D point to image x and y
    (G, 3) each, and the generic landmarks' spread ``sum |q_i|^2`` in each view (G,), on ``device``."""
    ym, ys, pm, ps = FIT_GRID
    yaw, pitch = torch.meshgrid(torch.deg2rad(torch.arange(-ym, ym + ys / 2, ys, dtype=torch.float64)),
                                torch.deg2rad(torch.arange(-pm, pm + ps / 2, ps, dtype=torch.float64)), indexing="ij")
    yaw, pitch = yaw.flatten(), pitch.flatten()
    cy, sy, cp, sp = yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin()
    rows_x = torch.stack([cy, torch.zeros_like(cy), sy], 1)  # the head turned by yaw, then tilted by pitch
    rows_y = torch.stack([sp * sy, cp, -sp * cy], 1)
    c = _centred_3d()
    spread = ((rows_x @ c.T) ** 2).sum(1) + ((rows_y @ c.T) ** 2).sum(1)
    return tuple(t.to(device) for t in (yaw, pitch, rows_x, rows_y, spread))


@functools.lru_cache(maxsize=8)
def _calibration(device: torch.device = torch.device("cpu")) -> tuple[Tensor, Tensor]:
    """The posterior mean yaw of the generic face's own landmarks turned by each yaw of FIT_GRID's (pitch 0), and
    that yaw (radians, each (K,), increasing): :func:`fit_yaw` maps the mean back through it."""
    true = torch.deg2rad(torch.arange(-FIT_GRID[0], FIT_GRID[0] + 0.5, 1.0, dtype=torch.float64))
    c = _centred_3d()
    x = torch.cos(true)[:, None] * c[:, 0] + torch.sin(true)[:, None] * c[:, 2]
    read = _posterior_yaw(torch.stack([x, c[:, 1].expand_as(x)], -1)).double()
    return read.to(device), true.to(device)


def fit_yaw(points: Tensor) -> Tensor:
    """(N,) radians: each face's yaw from its 5 landmarks ``points`` (N, 5, 2; pixels or face frame). Pitch is a
    nuisance here: the eye line of a head turned and thrown back tilts, and in its frame the nose base moves sideways
    (by 0.77 eye distances per radian of tilt against 0.32 per radian of yaw), so a fit without pitch read the
    generic face at yaw -30, pitch +20 as -43 and at pitch -20 as -3 (and utkface_128 01533, thrown back, as -42).
    Its posterior mean over (yaw, pitch) (:func:`_posterior_yaw`), mapped back so that the generic face at pitch 0
    reads its own yaw, weighs every pitch the landmarks allow."""
    read, true = _calibration(_work_device(points.device))
    mean = _posterior_yaw(points).to(read).clamp(min=read[0], max=read[-1])
    k = torch.searchsorted(read, mean).clamp(1, len(read) - 1)
    t = (mean - read[k - 1]) / (read[k] - read[k - 1])
    return (true[k - 1] + t * (true[k] - true[k - 1])).to(points.device, torch.float32)
