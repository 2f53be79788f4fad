"""The generic head (:mod:`genaug.faces.shape`) seen at a yaw: which head point a projected position shows (the
front-most one, from a table per yaw) and how squarely it faces the view. :func:`genaug.faces.pose.rotate_yaw` turns
a face by it and :func:`genaug.faces.pose.head_points` places the light's head on a photo.

Head-frame units (the inter-ocular distance ``d``); yaw in radians, positive when the nose points to the image's right.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from .shape import FRAME_LANDMARKS, HEAD_A, HEAD_B, HEAD_Y0, depth

SAMPLES = 160  # points across the head's width when solving for what a pixel sees
ROWS, COLS = 256, 512  # the inverse-projection table: head rows x projected positions
TABLE_Y = (HEAD_Y0 - HEAD_B - 0.05, HEAD_Y0 + HEAD_B + 0.05)
TABLE_U = (-2.4, 2.4)
NOSE_ROWS = (0.0, 1.4)  # a turn fits the generic nose to the photo's nose base between these head rows (eyes, below the mouth)
NOSE_FIT = (0.8, 1.3)  # ... stretching its rows by at most these factors


def _inverse_table(angle: Tensor, axis: float, turn: bool = False) -> Tensor:
    """``(N, ROWS, COLS)``: for head rows ``y`` in TABLE_Y and projections ``u`` in TABLE_U, the
    head-frame x of the front-most point with ``x cos + (depth(x, y) - axis) sin = u`` at yaw
    ``angle`` (>= 0). Each row's head width is sampled at SAMPLES points; a point whose projection
    falls behind an earlier one is hidden (running maximum); outside the head (depth 0) it is linear. ``turn``: the
    turn's head."""
    dev = angle.device
    c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    xs, ys, zs = _head_rows(dev, turn)
    us = torch.linspace(*TABLE_U, COLS, device=dev).expand(len(angle), ROWS, COLS)
    front = (xs * c + (zs - axis) * s).cummax(-1).values
    k = torch.searchsorted(front, us.contiguous()).clamp(1, SAMPLES - 1)
    lo, hi = front.gather(-1, k - 1), front.gather(-1, k)
    x = xs[k - 1] + ((us - lo) / (hi - lo).clamp(min=1e-6)).clamp(0, 1) * (xs[1] - xs[0])
    # beyond the head's silhouette: the background plane, but never inside the head's outline
    # (else a pixel just outside the silhouette would sample the face: a seam)
    edge = HEAD_A * (1 - ((ys - HEAD_Y0) / HEAD_B) ** 2).clamp(min=0).sqrt()  # (ROWS, 1)
    plane = (us + axis * s) / c
    plane = torch.where(us > front[..., -1:], torch.maximum(plane, edge), torch.minimum(plane, -edge))
    inside = (us >= front[..., :1]) & (us <= front[..., -1:])
    return torch.where(inside, x, plane)


@functools.lru_cache(maxsize=8)
def _head_rows(device: torch.device, turn: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """The points :func:`_inverse_table` turns: x (SAMPLES,) across the head, rows y (ROWS, 1) and their depth (ROWS, SAMPLES)."""
    xs = torch.linspace(-HEAD_A, HEAD_A, SAMPLES)
    ys = torch.linspace(*TABLE_Y, ROWS)[:, None]
    return xs.to(device), ys.to(device), depth(xs.expand(ROWS, -1), ys.expand(-1, SAMPLES), turn).to(device)


def solve_head_x(u: Tensor, y: Tensor, angle: Tensor, axis: float, smooth: Tensor | None = None,
                 turn: bool = False) -> Tensor:
    """Head-frame x of the point seen at ``u`` (face-frame units / scale) in head row ``y`` at yaw
    ``angle``, ``(N, H, W)``: looked up in :func:`_inverse_table` (negative angles by the face's
    left-right symmetry), the nearest entry or, for images where ``smooth`` (N,) holds, bilinearly;
    beyond the table, the plane ``depth = 0``; ``turn``: on the turn's head (:func:`~.shape.depth`)."""
    sign = torch.where(angle < 0, -1.0, 1.0)[:, None, None]
    u = u * sign
    table = _inverse_table(angle.abs(), axis, turn)
    gx = (u - TABLE_U[0]) / (TABLE_U[1] - TABLE_U[0]) * 2 - 1
    gy = (y - TABLE_Y[0]) / (TABLE_Y[1] - TABLE_Y[0]) * 2 - 1
    grid = torch.stack([gx, gy], -1)
    x = F.grid_sample(table[:, None], grid, mode="nearest", padding_mode="border", align_corners=True)[:, 0]
    if smooth is not None:
        read = F.grid_sample(table[:, None], grid, mode="bilinear", padding_mode="border", align_corners=True)[:, 0]
        x = torch.where(smooth[:, None, None], read, x)
    c, s = torch.cos(angle.abs())[:, None, None], torch.sin(angle.abs())[:, None, None]
    outside = (gx.abs() > 1) | (gy.abs() > 1)
    return torch.where(outside, (u + axis * s) / c, x) * sign


def visibility(gx: Tensor, gy: Tensor, angle: Tensor) -> Tensor:
    """Cosine between the surface normal with depth slopes ``gx``, ``gy`` and the view at yaw ``angle``."""
    c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    return (c + gx * s) / torch.sqrt(1 + gx * gx + gy * gy)


def generic_rows(y: Tensor, nose_y: Tensor) -> Tensor:
    """The generic head's rows a turn reads at a photo's head rows ``y`` (N, H, W): piecewise linear, the eyes (and all
    above) and the rows from NOSE_ROWS[1] down kept, the photo's nose base ``nose_y`` (N,) on the generic one's. The
    generic nose was longer than most photos' (nose base 0.60-0.74 below the eyes on utkface_128, 0.77 generic): its
    flank, squeezed up to 3 times by a turn, fell beside the photo's nose and dragged the nostril's shadow in a streak
    towards the mouth corner (issue #29)."""
    top, bottom = NOSE_ROWS
    base = float(FRAME_LANDMARKS[4, 1])
    nose = nose_y.clamp(base / NOSE_FIT[1], base / NOSE_FIT[0])[:, None, None]
    upper = top + (y - top) * (base - top) / (nose - top)
    lower = base + (y - nose) * (bottom - base) / (bottom - nose)
    return torch.where((y <= top) | (y >= bottom), y, torch.where(y <= nose, upper, lower))
