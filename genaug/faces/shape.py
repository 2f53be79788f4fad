"""A generic 3D face, written analytically (no scanned mesh: MIT like the rest of genaug), and how
it is placed on a photo by dlib's 5 landmarks.

Face frame: origin at the midpoint of the two eye centres, unit = the inter-ocular distance (eye
centre to eye centre) ``d``, x along the eye line towards the image's right eye, y perpendicular
to it (down the face), z towards the camera. The shape is a depth map ``z = depth(x, y)`` over that
frame: an ellipsoidal head (half-width 1.35, half-height 1.95, centred 0.25 below the eyes, 1.1
deep) plus a nose ridge rising to a tip 0.62 below the eyes and falling to the nose base, eye
sockets, a brow ridge, cheekbones, lips and a chin (Gaussian bumps). ``z = 0`` is the plane through
the head's centre; outside the head ellipse the depth is 0.

Landmarks: ``(N, 5, 2)`` pixel coordinates (x, y; pixel centres at integers) in dlib's
5-point order: image-right eye outer and inner corner, image-left eye outer and inner corner,
nose base. :func:`face_landmarks` finds them with dlib's frontal detector + 5-point model when the
``faces`` extra is installed (the 68-point model is never used), else places them by the framing
rule (:func:`default_landmarks`).
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

# The head ellipsoid: half-width, half-height, centre below the eyes, half-depth (units of d).
HEAD_A, HEAD_B, HEAD_Y0, HEAD_C = 1.35, 1.95, 0.25, 1.1
# (x, y) of the 5 landmarks in the face frame, from genaug.faces.align.CANONICAL_LANDMARKS (CelebA).
FRAME_LANDMARKS = np.array([[0.70, 0.0], [0.30, 0.0], [-0.70, 0.0], [-0.30, 0.0], [0.0, 0.77]], dtype=np.float32)
# dlib's landmarks as fractions of (width, height), median over 60 photos each (python
# benchmarks/pose_shift.py --measure-landmarks prints them): CelebA 178x218 aligned frames, the
# model frame (CelebA box 35,55,143,163 cropped square) and UTKFace's tighter square crops.
FRAMING_LANDMARKS = {
    "celeba_frame": [[0.6461, 0.5183], [0.5618, 0.5229], [0.3483, 0.5138], [0.4326, 0.5183], [0.4944, 0.6514]],
    "model_frame": [[0.7500, 0.5312], [0.6055, 0.5449], [0.2461, 0.5352], [0.3945, 0.5430], [0.4941, 0.8125]],
    "tight_crop": [[0.7656, 0.2969], [0.6094, 0.3047], [0.2266, 0.2969], [0.3750, 0.3047], [0.4844, 0.5859]],
}
FRAMINGS = ("auto", *FRAMING_LANDMARKS)
CELEBA_ASPECT = 178 / 218


def _bump(x: Tensor, y: Tensor, cx: float, cy: float, sx: float, sy: float) -> Tensor:
    return torch.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def head_radius(x: Tensor, y: Tensor) -> Tensor:
    """Normalised ellipse radius of the head (1 on its outline)."""
    return torch.sqrt((x / HEAD_A) ** 2 + ((y - HEAD_Y0) / HEAD_B) ** 2)


def depth(x: Tensor, y: Tensor) -> Tensor:
    """Depth of the generic face at face-frame points (any shape; units of d, towards the camera)."""
    r2 = (x / HEAD_A) ** 2 + ((y - HEAD_Y0) / HEAD_B) ** 2
    inside = (1 - r2).clamp(min=0)
    head = HEAD_C * torch.sqrt(inside)
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


def depth_slope(x: Tensor, y: Tensor, h: float = 1e-3) -> tuple[Tensor, Tensor]:
    """(dz/dx, dz/dy) by central differences."""
    return ((depth(x + h, y) - depth(x - h, y)) / (2 * h), (depth(x, y + h) - depth(x, y - h)) / (2 * h))


SURFACE_GRID = (-1.6, 1.6, -1.9, 2.4, 320, 432)  # x0, x1, y0, y1, columns, rows: ~0.01 d per cell, the whole head


@functools.lru_cache(maxsize=8)
def _surface_table(device: torch.device) -> Tensor:
    """:func:`depth` and :func:`depth_slope` sampled on SURFACE_GRID, (1, 3, rows, cols)."""
    x0, x1, y0, y1, nx, ny = SURFACE_GRID
    ys, xs = torch.meshgrid(torch.linspace(y0, y1, ny), torch.linspace(x0, x1, nx), indexing="ij")
    return torch.stack([depth(xs, ys), *depth_slope(xs, ys)])[None].to(device)


def surface(x: Tensor, y: Tensor, slopes: bool = True) -> Tensor:
    """The generic face at face-frame points ``x``, ``y`` (any shape), looked up (bilinear) in a table of
    :func:`depth` and :func:`depth_slope` instead of evaluated per point: ``(..., 3)`` depth, dz/dx, dz/dy
    (``slopes`` False: ``(..., 1)``, depth); 0 beyond the table (outside the head)."""
    x0, x1, y0, y1, _, _ = SURFACE_GRID
    table = _surface_table(x.device)[:, : 3 if slopes else 1]
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


def check_landmarks(landmarks: Tensor, n: int | None = None) -> Tensor:
    lm = torch.as_tensor(landmarks, dtype=torch.float32)
    if lm.ndim != 3 or lm.shape[1:] != (5, 2) or (n is not None and lm.shape[0] != n):
        raise ValueError(f"landmarks must be (N, 5, 2) pixel coordinates in dlib's 5-point order"
                         f"{f' with N = {n}' if n is not None else ''}, got {tuple(lm.shape)}")
    if not torch.isfinite(lm).all():
        raise ValueError("landmarks contain NaN or inf")
    eyes = (lm[:, 0:2].mean(1) - lm[:, 2:4].mean(1)).norm(dim=1)
    if (eyes < 1e-3).any():
        raise ValueError("landmarks put both eyes on one point")
    return lm


def landmarks_in_order(lm: Tensor) -> Tensor:
    """(N,) bool: in the eyes' frame the nose (point 4) lies below the eye line and each eye's inner corner
    (points 1, 3) nearer the eyes' midpoint than its outer one (points 0, 2) - dlib's 5-point order. ``lm`` (N, 5, 2):
    a tensor, or a numpy array (then a numpy result: checks on the host without tensor operations)."""
    right, left = lm[:, 0:2].mean(1), lm[:, 2:4].mean(1)
    centre, axis = (right + left) / 2, right - left
    d2 = (axis * axis).sum(1)
    u = ((lm - centre[:, None]) * axis[:, None]).sum(-1) / d2[:, None]  # in eye distances
    nose = lm[:, 4] - centre
    v = (nose[:, 1] * axis[:, 0] - nose[:, 0] * axis[:, 1]) / d2  # along the eye line's normal (image down)
    return (v >= 0.15) & (abs(u[:, 1]) < abs(u[:, 0])) & (abs(u[:, 3]) < abs(u[:, 2]))


def check_landmark_order(lm: Tensor) -> Tensor:
    """Refuse given landmarks that are not in dlib's 5-point order (image-right eye outer, inner corner,
    image-left eye outer, inner corner, nose base): in the eyes' frame the nose lies below the eye line and each
    eye's inner corner nearer the eyes' midpoint than its outer one. (MTCNN / RetinaFace order - eye centres,
    nose tip, mouth corners - or swapped eyes fail this.)"""
    bad = ~landmarks_in_order(lm)
    if bool(bad.any()):
        rows = bad.nonzero()[:, 0].tolist()
        raise ValueError(f"landmarks of image(s) {rows[:8]} are not in dlib's 5-point order (image-right eye outer and "
                         "inner corner, image-left eye outer and inner corner, nose base, in pixels (x, y)): the nose must "
                         "lie below the eye line and each inner corner nearer the other eye (MTCNN / RetinaFace order "
                         "differs: reorder, or leave landmarks=None to find them)")
    return lm


def landmarks_inside(lm: Tensor, height: int, width: int) -> Tensor:
    """(N,) bool: each row's 5 points lie inside a ``height`` x ``width`` image (pixel centres at integers: x in
    [-0.5, width - 0.5], y in [-0.5, height - 0.5])."""
    limit = torch.tensor([width - 0.5, height - 0.5], dtype=lm.dtype, device=lm.device)
    return ((lm >= -0.5) & (lm <= limit)).flatten(1).all(1)


def given_landmarks(landmarks: Tensor, n: int | None = None) -> Tensor:
    """Landmarks a caller passed: :func:`check_landmarks` and :func:`check_landmark_order`."""
    return check_landmark_order(check_landmarks(landmarks, n))


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


def default_landmarks(height: int, width: int, n: int = 1, framing: str = "auto") -> Tensor:
    """The framing rule's landmarks ``(n, 5, 2)``: ``"auto"`` is ``"celeba_frame"`` for CelebA's
    178x218 aspect, else ``"model_frame"`` (genaug's CelebA-box crops); ``"tight_crop"`` fits
    UTKFace-like crops (eyes at 30 % of the height)."""
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {FRAMINGS}, got {framing!r}")
    if framing == "auto":
        framing = "celeba_frame" if abs(width / height - CELEBA_ASPECT) < 0.01 else "model_frame"
    frac = torch.tensor(FRAMING_LANDMARKS[framing])
    return (frac * torch.tensor([width - 1, height - 1])).expand(n, 5, 2).clone()


def box_landmarks(box: tuple[int, int, int, int], n: int = 1) -> Tensor:
    """The framing rule's 5 landmarks (n, 5, 2) in the face box ``box`` = (left, top, right, bottom), pixels."""
    l, t, r, b = box
    return default_landmarks(b - t, r - l, n, "model_frame") + torch.tensor([float(l), float(t)])


def place_landmarks(images: Tensor, box: tuple[int, int, int, int]) -> Tensor:
    """Where image-space controls are placed on ``images`` (N, C, H, W) in [-1, 1] whose framing puts the face in
    ``box``: on a photo taken whole (``box`` the whole image: a model-sized crop, or framing ``"full"``, which need not
    be framed like the model's crops - an Olivetti or a 64 px UTKFace face is not, and the rule's box put the eyes on
    the mouth) the detector's face, the rule's box refined where it finds none; in a known frame's box (CelebA's
    aligned frames) the rule's landmarks refined in place. Needs dlib (the ``faces`` extra)."""
    rule = box_landmarks(box, len(images))
    whole = tuple(box) == (0, 0, images.shape[-1], images.shape[-2])
    return detect_landmarks(images, fallback=rule) if whole else refine_landmarks(images, rule)


def detect_landmarks(images: Tensor, framing: str = "auto", fallback: Tensor | None = None) -> Tensor:
    """dlib's 5 landmarks ``(N, 5, 2)`` in pixels of the input: the frontal detector on the image
    (upsampled so its short side is >= 256 px), the largest face; where it finds none, the 5-point
    model refines the framing rule's face box (``fallback`` (N, 5, 2), pixels of the input: the box around
    these landmarks instead, refined at the input's size as :func:`refine_landmarks` does)."""
    from .align import find_faces
    from .identity import require_dlib

    dlib = require_dlib()
    detector, predictor = _cached("detector", dlib.get_frontal_face_detector), _predictor(dlib)
    h, w = images.shape[-2:]
    zoom = max(1.0, 256 / min(h, w))
    size_h, size_w = round(h * zoom), round(w * zoom)
    x = _levels(images) / 255.0 * 2 - 1  # the photo's 8-bit picture first: the same landmarks from any dtype
    rgb = _uint8(F.interpolate(x, size=(size_h, size_w), mode="bilinear", align_corners=False) if zoom > 1 else x)
    guess = default_landmarks(size_h, size_w, 1, framing)[0]
    out, missed = [], []
    for i, im in enumerate(rgb):
        found = find_faces(detector, im, 0)
        if not found and fallback is not None:
            missed.append(i)
        box = max(found, key=lambda r: r.area()) if found else _box_from_landmarks(dlib, guess)
        out.append([(p.x, p.y) for p in predictor(im, box).parts()])
    scale = torch.tensor([(w - 1) / max(size_w - 1, 1), (h - 1) / max(size_h - 1, 1)])
    lm = torch.tensor(out, dtype=torch.float32).reshape(-1, 5, 2) * scale
    if missed:
        lm[missed] = refine_landmarks(images[missed], check_landmarks(fallback, len(images))[missed]).cpu()
    return lm


def refine_landmarks(images: Tensor, guess: Tensor) -> Tensor:
    """dlib's 5-point model run in the face box around ``guess`` (N, 5, 2) (e.g. the framing rule's
    landmarks of a known frame): the face's own landmarks without running the detector (2-3 ms a
    178x218 face against ~10 ms with it); in pixels of ``images`` (N, C, H, W) in [-1, 1]."""
    from .identity import require_dlib

    dlib = require_dlib()
    predictor = _predictor(dlib)
    out = [[(p.x, p.y) for p in predictor(im, _box_from_landmarks(dlib, g)).parts()]
           for im, g in zip(_uint8(images.detach().float().cpu().clamp(-1, 1)), check_landmarks(guess, len(images)).cpu())]
    return torch.tensor(out, dtype=torch.float32).reshape(-1, 5, 2).to(images.device)


def _predictor(dlib):
    """dlib's 5-point shape predictor, loaded once."""
    from .identity import dlib_model

    return _cached("predictor", lambda: dlib.shape_predictor(str(dlib_model("shape_predictor_5_face_landmarks.dat"))))


def _levels(images: Tensor) -> Tensor:
    """The 8-bit levels (0..255, float32, on the CPU) of ``images`` in [-1, 1], rounded in their own dtype: the same
    integers from a uint8 photo and from it / 255 in float32 or float64."""
    return images.detach().cpu().add(1).mul(127.5).round().clamp(0, 255).float()


def _uint8(x: Tensor) -> np.ndarray:
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _box_from_landmarks(dlib, lm: Tensor):
    """dlib's detector box around landmarks (its median relation on UTKFace: 2.17 d wide, from
    0.6 d above the eyes to 1.57 d below)."""
    frame = FaceFrame.from_landmarks(lm[None])
    cx, cy, d = float(frame.centre[0, 0]), float(frame.centre[0, 1]), float(frame.scale[0])
    return dlib.rectangle(round(cx - 1.08 * d), round(cy - 0.6 * d), round(cx + 1.08 * d), round(cy + 1.57 * d))


_CACHE: dict = {}


def _cached(key: str, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def face_landmarks(images: Tensor, landmarks: Tensor | None = None, framing: str = "auto") -> Tensor:
    """Landmarks for a batch: the given ones (checked: a face's order, inside the images - as the batch path checks
    them), else dlib's when the ``faces`` extra is installed, else the framing rule's; on the images' device."""
    from .identity import faces_extra_available

    n, (h, w) = images.shape[0], images.shape[-2:]
    if landmarks is not None:
        lm = given_landmarks(landmarks, n)
        outside = (~landmarks_inside(lm, h, w)).nonzero()[:, 0].tolist()
        if outside:  # a face the images do not show: a turn moved the photo alone
            raise ValueError(f"landmarks of image(s) {outside[:8]} lie outside the {h}x{w} images (x in [-0.5, {w - 0.5}], "
                             f"y in [-0.5, {h - 0.5}], pixels of the images): landmarks of the photos before a resize or crop?")
    elif faces_extra_available():
        lm = detect_landmarks(images, framing)
    else:
        lm = default_landmarks(h, w, n, framing)
    return lm.to(images.device)


def face_mask(x: Tensor, y: Tensor, inner: float = 0.85, outer: float = 1.1) -> Tensor:
    """1 inside ``inner`` head radii, smoothly 0 beyond ``outer``."""
    t = ((head_radius(x, y) - inner) / (outer - inner)).clamp(0, 1)
    return 1 - t * t * (3 - 2 * t)
