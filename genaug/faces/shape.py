"""A generic 3D face, written analytically (no scanned mesh: MIT like the rest of genaug), the frame it is placed
in on a photo by dlib's 5 landmarks (:mod:`genaug.faces.landmarks` finds and checks them), and the checks of the
image batches the controls render on.

Face frame: origin at the midpoint of the two eye centres, unit = the inter-ocular distance (eye
centre to eye centre) ``d``, x along the eye line towards the image's right eye, y perpendicular
to it (down the face), z towards the camera. The shape is a depth map ``z = depth(x, y)`` over that
frame: an ellipsoidal head (half-width 1.35, half-height 1.95, centred 0.25 below the eyes, 1.1
deep) plus a nose ridge rising to a tip 0.62 below the eyes and falling to the nose base, eye
sockets, a brow ridge, cheekbones, lips and a chin (Gaussian bumps). ``z = 0`` is the plane through
the head's centre; outside the head ellipse the depth is 0. A turn (:func:`genaug.faces.pose.rotate_yaw`) uses a head
whose cheeks fall off faster (``turn=True``).
"""
from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .landmarks import check_landmarks

# The head ellipsoid: half-width, half-height, centre below the eyes, half-depth (units of d).
HEAD_A, HEAD_B, HEAD_Y0, HEAD_C = 1.35, 1.95, 0.25, 1.1
# The turn's head (``turn=True``): across each head row the round head's profile sqrt(1 - t^2) (t: x over the row's
# half-width) falls as (1 - t^2) ** TURN_PROFILE instead, down to the rows TURN_ROWS (below the nose), where it eases
# back to the round one (the cheek beside the mouth, squeezed more by a steeper profile, drew a crease). On the round head
# frontal photos' jaw outline (1.07-1.12 d from the eye line to the nose, t 0.80-0.84, 67 photos of celeba_id200 and
# utkface_128) lay at depth 0.61-0.68 (the nose tip 1.36), front material that a turn moved almost as far as the nose:
# a +-30 degree render moved the nose against the outline half as far as a real turn. Here: 0.45-0.53.
TURN_PROFILE, TURN_ROWS = 0.75, (0.6, 1.0)
# (x, y) of the 5 landmarks in the face frame, from genaug.faces.align.CANONICAL_LANDMARKS (CelebA).
FRAME_LANDMARKS = np.array([[0.70, 0.0], [0.30, 0.0], [-0.70, 0.0], [-0.30, 0.0], [0.0, 0.77]], dtype=np.float32)


def _bump(x: Tensor, y: Tensor, cx: float, cy: float, sx: float, sy: float) -> Tensor:
    return torch.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def head_radius(x: Tensor, y: Tensor) -> Tensor:
    """Normalised ellipse radius of the head (1 on its outline)."""
    return torch.sqrt((x / HEAD_A) ** 2 + ((y - HEAD_Y0) / HEAD_B) ** 2)


def depth(x: Tensor, y: Tensor, turn: bool = False) -> Tensor:
    """Depth of the generic face at face-frame points (any shape; units of d, towards the camera); ``turn``: of the
    turn's head (TURN_PROFILE)."""
    r2 = (x / HEAD_A) ** 2 + ((y - HEAD_Y0) / HEAD_B) ** 2
    inside = (1 - r2).clamp(min=0)
    head = HEAD_C * torch.sqrt(inside)
    if turn:
        rows = (1 - ((y - HEAD_Y0) / HEAD_B) ** 2).clamp(min=1e-6)
        steeper = HEAD_C * rows.sqrt() * (inside / rows).clamp(max=1) ** TURN_PROFILE
        head = head + (1 - smoothstep((y - TURN_ROWS[0]) / (TURN_ROWS[1] - TURN_ROWS[0]))) * (steeper - head)
    # nose: a ridge rising from the nasion to the tip (y 0.62) and falling to the lip, smooth in y
    spread = torch.where(y < 0.62, torch.full_like(y, 0.32), torch.full_like(y, 0.12))
    height = 0.32 * torch.exp(-0.5 * ((y - 0.62) / spread) ** 2)
    width = 0.10 + 0.10 * ((y - 0.05) / 0.57).clamp(0, 1)
    nose = height * torch.exp(-0.5 * (x / width) ** 2)
    features = (nose
                - 0.13 * (_bump(x, y, 0.5, 0.0, 0.26, 0.18) + _bump(x, y, -0.5, 0.0, 0.26, 0.18))
                + 0.06 * _bump(x, y, 0.0, -0.38, 0.7, 0.12)
                + 0.04 * (_bump(x, y, 0.7, 0.45, 0.35, 0.45) + _bump(x, y, -0.7, 0.45, 0.35, 0.45))
                + 0.04 * _bump(x, y, 0.0, 1.2, 0.35, 0.2)
                + 0.06 * _bump(x, y, 0.0, 1.75, 0.35, 0.25))
    fade = (inside / 0.15).clamp(max=1)  # the features vanish towards the head's outline
    return head + features * fade


def depth_slope(x: Tensor, y: Tensor, h: float = 1e-3, turn: bool = False) -> tuple[Tensor, Tensor]:
    """(dz/dx, dz/dy) by central differences."""
    return ((depth(x + h, y, turn) - depth(x - h, y, turn)) / (2 * h), (depth(x, y + h, turn) - depth(x, y - h, turn)) / (2 * h))


SURFACE_GRID = (-1.6, 1.6, -1.9, 2.4, 320, 432)  # x0, x1, y0, y1, columns, rows: ~0.01 d per cell, the whole head


@functools.lru_cache(maxsize=8)
def _surface_table(device: torch.device, turn: bool = False) -> Tensor:
    """:func:`depth` and :func:`depth_slope` sampled on SURFACE_GRID, (1, 3, rows, cols)."""
    x0, x1, y0, y1, nx, ny = SURFACE_GRID
    ys, xs = torch.meshgrid(torch.linspace(y0, y1, ny), torch.linspace(x0, x1, nx), indexing="ij")
    return torch.stack([depth(xs, ys, turn), *depth_slope(xs, ys, turn=turn)])[None].to(device)


def surface(x: Tensor, y: Tensor, slopes: bool = True, turn: bool = False) -> Tensor:
    """The generic face at face-frame points ``x``, ``y`` (any shape), looked up (bilinear) in a table of
    :func:`depth` and :func:`depth_slope` instead of evaluated per point: ``(..., 3)`` depth, dz/dx, dz/dy
    (``slopes`` False: ``(..., 1)``, depth); 0 beyond the table (outside the head); ``turn``: the turn's head."""
    x0, x1, y0, y1, _, _ = SURFACE_GRID
    table = _surface_table(x.device, turn)[:, : 3 if slopes else 1]
    grid = torch.stack([(x - x0) * (2 / (x1 - x0)) - 1, (y - y0) * (2 / (y1 - y0)) - 1], -1).reshape(1, 1, -1, 2)
    out = F.grid_sample(table, grid.to(table.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[0, :, 0].T.reshape(*x.shape, -1)


def normals(x: Tensor, y: Tensor) -> Tensor:
    """Unit surface normals ``(..., 3)`` of the generic face at face-frame points (z towards the camera)."""
    _, gx, gy = surface(x, y).unbind(-1)
    return F.normalize(torch.stack([-gx, -gy, torch.ones_like(gx)], -1), dim=-1)


def landmarks_3d() -> Tensor:
    """The 5 landmarks of the generic face ``(5, 3)`` (x, y, z) in the face frame."""
    xy = torch.from_numpy(FRAME_LANDMARKS)
    return torch.cat([xy, depth(xy[:, 0], xy[:, 1])[:, None]], 1)


@dataclass
class FaceFrame:
    """Where the face frame sits in each image: eye midpoint ``centre`` (N, 2) pixels, unit
    ``scale`` (N,) pixels per d, axes ``ex`` and ``ey`` (N, 2) (unit vectors in image axes)."""

    centre: Tensor
    scale: Tensor
    ex: Tensor
    ey: Tensor

    @classmethod
    def from_landmarks(cls, landmarks: Tensor) -> "FaceFrame":
        lm = check_landmarks(landmarks)
        right, left = lm[:, 0:2].mean(1), lm[:, 2:4].mean(1)
        axis = right - left
        scale = axis.norm(dim=1).clamp(min=1e-6)
        ex = axis / scale[:, None]
        ey = torch.stack([-ex[:, 1], ex[:, 0]], 1)
        return cls((right + left) / 2, scale, ex, ey)

    def to_face(self, px: Tensor, py: Tensor) -> tuple[Tensor, Tensor]:
        """Image pixel grids ``(N, H, W)`` (or broadcastable) -> face-frame (x, y)."""
        dx = px - self.centre[:, 0, None, None]
        dy = py - self.centre[:, 1, None, None]
        s = self.scale[:, None, None]
        return ((dx * self.ex[:, 0, None, None] + dy * self.ex[:, 1, None, None]) / s,
                (dx * self.ey[:, 0, None, None] + dy * self.ey[:, 1, None, None]) / s)

    def to_image(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Face-frame (x, y) grids ``(N, H, W)`` -> image pixels (px, py)."""
        s = self.scale[:, None, None]
        return (self.centre[:, 0, None, None] + s * (x * self.ex[:, 0, None, None] + y * self.ey[:, 0, None, None]),
                self.centre[:, 1, None, None] + s * (x * self.ex[:, 1, None, None] + y * self.ey[:, 1, None, None]))

    def pixel_grid(self, height: int, width: int, offset: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Face-frame coordinates of every pixel ``(N, H, W)`` each; ``offset`` (N, 2), or per pixel
        (N, 2, H, W): the pixel (x, y) each output pixel is taken from is moved by this many pixels."""
        dev = self.centre.device
        py, px = torch.meshgrid(torch.arange(height, device=dev, dtype=torch.float32),
                                torch.arange(width, device=dev, dtype=torch.float32), indexing="ij")
        if offset is None:
            return self.to_face(px[None], py[None])
        if offset.ndim == 2:
            offset = offset[:, :, None, None]
        return self.to_face(px[None] + offset[:, 0], py[None] + offset[:, 1])


def blur_each(maps: Tensor, sigma: list[float]) -> Tensor:
    """Each image of ``maps`` (N, H, W) or (N, C, H, W) blurred by its own Gaussian ``sigma`` in pixels
    (torchvision's kernel and reflected borders, reach 2.5 sigma, as two 1-D passes: a face filling a
    12 MP photo blurs in seconds, not minutes); a sigma of 0 or less, or a kernel as wide as the image: unchanged."""
    out = maps.clone()
    for i, sd in enumerate(sigma):
        size = 2 * int(math.ceil(2.5 * sd)) + 1
        if sd > 0 and size < min(maps.shape[-2:]):
            out[i : i + 1] = _gaussian_blur(maps[i : i + 1], size, sd)
    return out


def _gaussian_blur(maps: Tensor, size: int, sigma: float) -> Tensor:
    """torchvision's ``gaussian_blur`` (kernel ``size``, reflected borders) as a row pass then a column pass."""
    shape = maps.shape
    x = maps.reshape(-1, 1, *shape[-2:])
    t = torch.linspace(-(size - 1) / 2, (size - 1) / 2, size, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    pad = size // 2
    x = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode="reflect"), k.reshape(1, 1, 1, size))
    x = F.conv2d(F.pad(x, (0, 0, pad, pad), mode="reflect"), k.reshape(1, 1, size, 1))
    return x.reshape(shape)


_CHECKED: ContextVar[Tensor | None] = ContextVar("genaug_checked_images", default=None)


def check_images(images: Tensor) -> Tensor:
    """Validate an NCHW float batch in [-1, 1] (1 or 3 channels); returned unchanged (at once for the batch of an
    enclosing :func:`images_checked`)."""
    if images is _CHECKED.get():
        return images
    if not isinstance(images, Tensor) or images.ndim != 4:
        raise ValueError(f"expected an NCHW image batch, got {getattr(images, 'shape', type(images).__name__)}")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {images.shape[1]} (shape {tuple(images.shape)})")
    if not images.is_floating_point():
        raise ValueError(f"expected a float batch in [-1, 1], got dtype {images.dtype}")
    if min(images.shape[-2:]) < 16:
        raise ValueError(f"images of {tuple(images.shape[-2:])} are too small to hold a face (min side 16)")
    if images.numel():
        lo, hi = (float(v) for v in torch.aminmax(images))  # one pass (a 12 MP photo); NaN reads as NaN, inf as inf
        if not (-1.001 <= lo and hi <= 1.001):
            raise ValueError("images must hold finite values in [-1, 1]")
    return images


@contextlib.contextmanager
def images_checked(images: Tensor) -> Iterator[Tensor]:
    """``images`` validated by :func:`check_images` once for the block: the renders called on this same tensor inside
    it (a control's fit, then its render) do not read a 12 MP photo's range again."""
    token = _CHECKED.set(check_images(images))
    try:
        yield images
    finally:
        _CHECKED.reset(token)


def per_image(value, n: int, name: str, low: float, high: float, device) -> Tensor:
    """A number or (N,) tensor/sequence -> float (N,) on ``device``, each in [low, high]."""
    try:
        t = torch.as_tensor(value, dtype=torch.float32).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name}: expected a number or one number per image, got {value!r}") from None
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"{name} needs one value or one per image ({n}), got {t.numel()}")
    if not torch.isfinite(t).all() or (t < low).any() or (t > high).any():
        raise ValueError(f"{name} must be finite and within [{low:g}, {high:g}], got {t.tolist()}")
    return t.to(device)


def power(t: Tensor, p: float) -> Tensor:
    """``t ** p`` for ``t`` >= 0, in place, as ``exp(p log t)``: float32 ``pow`` rounds the elements its scalar loop
    takes (each thread's last few) apart from its vector loop's, so a render changed with torch's thread count; exp and
    log do not (within 6e-8 of ``pow`` on [0, 1]). The gamma of the light's renders (:mod:`genaug.faces.light`,
    :mod:`genaug.faces.relit_colour`)."""
    return t.log_().mul_(p).exp_()


def smoothstep(t: Tensor) -> Tensor:
    """0 below 0, 1 above 1, ``3t^2 - 2t^3`` between: the soft edge of every fade of the face's controls."""
    t = t.clamp(0, 1)
    return t * t * (3 - 2 * t)


def face_mask(x: Tensor, y: Tensor, inner: float = 0.85, outer: float = 1.1) -> Tensor:
    """1 inside ``inner`` head radii, smoothly 0 beyond ``outer``."""
    return 1 - smoothstep((head_radius(x, y) - inner) / (outer - inner))
