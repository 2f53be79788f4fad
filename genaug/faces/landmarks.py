"""dlib's 5 landmarks of a face in a photo: ``(N, 5, 2)`` pixel coordinates (x, y; pixel centres at integers) in
dlib's 5-point order: image-right eye outer and inner corner, image-left eye outer and inner corner, nose base.

:func:`face_landmarks` gives a batch's landmarks: the caller's (checked: :func:`given_landmarks`,
:func:`landmarks_inside`), else dlib's frontal detector + 5-point model when the ``faces`` extra is installed
(:func:`detect_landmarks`, :func:`refine_landmarks`; the 68-point model is never used), else the framing rule
(:func:`default_landmarks`). The image-space controls place the generic face (:mod:`genaug.faces.shape`) by them.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .points import landmarks_in_order

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
# detect_landmarks upsamples a photo so its short side is 256 px, but to this many pixels at most: a photo more than
# 64 times longer than wide (a 16 x 4000 strip: 256 x 64000, 16 MP, two full scans and a CLAHE, 5-10 s) is searched at
# 4 MP (8x: 129 x 32400). Faces 16-32 px tall in such strips (4 utkface_128 faces each, in 16 / 24 / 32 x 4000
# grey strips) were found 12 of 12, as before (0.6-0.8 s, not 1.3-2.8); a faceless strip gets the same fallback.
ZOOM_PIXELS = 2**22
_FOUND: ContextVar[tuple[Tensor, dict[str, Tensor]] | None] = ContextVar("genaug_found_landmarks", default=None)


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
    ``box``: on a photo taken whole (``box`` the whole image or its centred square: a model-sized crop, or framing
    ``"full"``, which need not be framed like the model's crops - an Olivetti or a 64 px UTKFace face is not, and the
    rule's box put the eyes on the mouth; on a landscape photo it painted a light or turned a ghost face on the
    background beside the face) the detector's face in the whole photo, the rule's box refined where it finds none;
    in a known frame's box (CelebA's aligned frames) the rule's landmarks refined in place. Needs dlib (the ``faces`` extra)."""
    rule = box_landmarks(box, len(images))
    return detect_landmarks(images, fallback=rule) if taken_whole(box, *images.shape[-2:]) else refine_landmarks(images, rule)


def taken_whole(box: tuple[int, int, int, int], h: int, w: int) -> bool:
    """Whether a framing ``box`` of an ``h`` x ``w`` photo takes it whole: the whole image, or its centred square
    (framing ``"full"`` on a photo that is not square), not a known frame's face box."""
    side = min(h, w)
    left, top = (w - side) // 2, (h - side) // 2
    return tuple(box) in ((0, 0, w, h), (left, top, left + side, top + side))


def detect_landmarks(images: Tensor, framing: str = "auto", fallback: Tensor | None = None) -> Tensor:
    """dlib's 5 landmarks ``(N, 5, 2)`` in pixels of the input: the frontal detector on the image
    (upsampled so its short side is >= 256 px, to :data:`ZOOM_PIXELS` at most; where it finds no upright face, the
    photo turned, padded and rolled:
    :func:`genaug.faces.align.detect_faces`), the largest face; where it finds none, the 5-point
    model refines the framing rule's face box (``fallback`` (N, 5, 2), pixels of the input: the box around
    these landmarks instead, refined at the input's size as :func:`refine_landmarks` does)."""
    from .align import detect_faces
    from .identity import dlib_detector, dlib_predictor, require_dlib

    dlib, detector, predictor = require_dlib(), dlib_detector(), dlib_predictor()
    h, w = images.shape[-2:]
    zoom = max(1.0, min(256 / min(h, w), (ZOOM_PIXELS / (h * w)) ** 0.5))
    size_h, size_w = round(h * zoom), round(w * zoom)
    # the photo's 8-bit picture first (the same landmarks from any dtype), upsampled in float64: in float32 torch's
    # vector and scalar loops round some pixels apart, and which pixels take which loop follows the thread count
    # (landmarks moved up to a pixel between 1 and 2 threads on 21 of 79 photos)
    x = eight_bit_levels(images).cpu().double()
    rgb = _levels_uint8(F.interpolate(x, size=(size_h, size_w), mode="bilinear", align_corners=False) if zoom > 1 else x)
    guess = default_landmarks(size_h, size_w, 1, framing)[0]
    out, missed = [], []
    for i, im in enumerate(rgb):
        found = detect_faces(detector, predictor, im, 0)
        if not found and fallback is not None:
            missed.append(i)
        out.append(found[0].landmarks if found else
                   np.array([(p.x, p.y) for p in predictor(im, _box_from_landmarks(dlib, guess)).parts()], np.float32))
    scale = torch.tensor([(w - 1) / max(size_w - 1, 1), (h - 1) / max(size_h - 1, 1)])
    lm = torch.from_numpy(np.array(out, np.float32)).reshape(-1, 5, 2) * scale
    if missed:
        lm[missed] = refine_landmarks(images[missed], check_landmarks(fallback, len(images))[missed]).cpu()
    return lm


def refine_landmarks(images: Tensor, guess: Tensor) -> Tensor:
    """dlib's 5-point model run in the face box around ``guess`` (N, 5, 2) (e.g. the framing rule's
    landmarks of a known frame): the face's own landmarks without running the detector (2-3 ms a
    178x218 face against ~10 ms with it); in pixels of ``images`` (N, C, H, W) in [-1, 1]."""
    from .identity import dlib_predictor, require_dlib

    dlib, predictor = require_dlib(), dlib_predictor()
    out = [[(p.x, p.y) for p in predictor(im, _box_from_landmarks(dlib, g)).parts()]
           for im, g in zip(_uint8(images.detach().float().cpu().clamp(-1, 1)), check_landmarks(guess, len(images)).cpu())]
    return torch.tensor(out, dtype=torch.float32).reshape(-1, 5, 2).to(images.device)


def eight_bit_levels(images: Tensor) -> Tensor:
    """The 8-bit levels (0..255, float32) of ``images`` in [-1, 1], rounded in their own dtype: the same integers from
    a uint8 photo and from it / 255 in float32 or float64 (what detection and the drawn glasses' style read)."""
    return images.detach().add(1).mul(127.5).round().clamp(0, 255).float()


def _levels_uint8(levels: Tensor) -> np.ndarray:
    """(N, C, H, W) 8-bit levels as dlib's (N, H, W, 3) uint8 RGB."""
    levels = levels.expand(-1, 3, -1, -1) if levels.shape[1] == 1 else levels
    return levels.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _uint8(x: Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] as dlib's (N, H, W, 3) uint8 RGB."""
    return _levels_uint8((x + 1) * 127.5)


def _box_from_landmarks(dlib, lm: Tensor):
    """dlib's detector box around landmarks (its median relation on UTKFace: 2.17 d wide, from
    0.6 d above the eyes to 1.57 d below; d the eye centres' distance)."""
    right, left = lm[0:2].mean(0), lm[2:4].mean(0)
    (cx, cy), d = ((right + left) / 2).tolist(), float((right - left).norm())
    return dlib.rectangle(round(cx - 1.08 * d), round(cy - 0.6 * d), round(cx + 1.08 * d), round(cy + 1.57 * d))


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
    else:
        found = _FOUND.get()
        memo = found[1] if found is not None and found[0] is images else {}
        if framing not in memo:
            memo[framing] = detect_landmarks(images, framing) if faces_extra_available() else default_landmarks(h, w, n, framing)
        lm = memo[framing].clone()
    return lm.to(images.device)


@contextlib.contextmanager
def landmarks_found_once(images: Tensor) -> Iterator[Tensor]:
    """Inside, :func:`face_landmarks` finds the landmarks of this same ``images`` tensor (none given) once per framing:
    a control's fit, then its render, run the detector once."""
    token = _FOUND.set((images, {}))
    try:
        yield images
    finally:
        _FOUND.reset(token)
