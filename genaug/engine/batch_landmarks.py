"""Landmarks a :class:`genaug.BatchFaceAug` caller gives for its batch (``aug(x, landmarks=lm)``, as kornia takes
keypoints beside an image batch): where the image-space controls (``yaw``, ``light``, ``drawn_glasses``, ...) are
placed instead of the framing rule's guess in the face box.

``lm``: an (N, 5, 2) float tensor, dlib's 5-point order (:mod:`genaug.faces.landmarks`: image-right eye outer and inner
corner, image-left eye outer and inner corner, nose base), (x, y) in pixels of the batch with pixel centres at
integers; a row all NaN is placed by the framing rule. :func:`check_landmarks` reads only the tensor's metadata;
:func:`check_landmark_values` reads its values (free for a CPU tensor; one device-to-host read of the (N, 5, 2)
tensor otherwise, which the transform does only in calls that render a control). :func:`find_landmarks` computes
them once per dataset on the host with dlib, as the per-photo path places its controls.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..faces.landmarks import landmarks_in_order
from .latent_table import host_array

# dlib's order, for messages
ORDER = "image-right eye outer and inner corner, image-left eye outer and inner corner, nose base"


def check_landmarks(landmarks: Any, n: int) -> Tensor:
    """``landmarks`` for a batch of ``n`` rows, checked without reading values (shape, dtype): float32 on its own device
    (another float dtype converted there)."""
    if not isinstance(landmarks, Tensor):
        raise ValueError(f"landmarks must be an (N, 5, 2) float tensor of dlib's 5-point landmarks in pixels of the batch "
                         f"(or None), got {type(landmarks).__name__} (torch.as_tensor makes one)")
    if landmarks.ndim != 3 or tuple(landmarks.shape[1:]) != (5, 2) or landmarks.shape[0] != n:
        raise ValueError(f"landmarks must be (N, 5, 2) with N = {n} (the batch's rows): 5 points (x, y) in dlib's order "
                         f"({ORDER}), got shape {tuple(landmarks.shape)}")
    if not landmarks.is_floating_point():
        raise ValueError(f"landmarks must be a float tensor (pixels, NaN rows: placed by the framing rule), got {landmarks.dtype}")
    if landmarks.device.type == "meta":
        raise ValueError("landmarks are on the 'meta' device (shapes only, no values)")
    landmarks = landmarks.detach() if landmarks.requires_grad else landmarks
    return landmarks if landmarks.dtype == torch.float32 else landmarks.float()


def check_replay_size(size: Any, height: int, width: int, marks: Tensor | None = None) -> None:
    """Refuse (``ValueError``) replaying recorded landmarks ``marks`` (``BatchParams.size``: the (height, width) they are
    pixels of) on a batch of another size, where they would place the controls elsewhere on the face; None (parameters
    saved before the size was recorded) is taken as it is, and so are host landmarks all NaN (every row placed by the
    framing rule, whatever the size; read on the host only: device ones are not read here)."""
    if size is None or (marks is not None and marks.device.type == "cpu" and bool(torch.isnan(marks).all())):
        return
    h, w = (int(v) for v in size)
    if (h, w) != (height, width):
        raise ValueError(f"params hold landmarks in pixels of {h}x{w} images, the batch is {height}x{width}: pass landmarks "
                         "for this size (aug.find_landmarks(x), or the recorded ones scaled) with the params")


def check_landmark_values(landmarks: Tensor, height: int, width: int) -> None:
    """Refuse (``ValueError``) landmarks whose values cannot place a face in a ``height`` x ``width`` batch: a row that mixes
    NaN and numbers, inf, points outside the image (pixel centres at integers: x in [-0.5, width - 0.5]), both eyes on one
    point, or not a face's order (:func:`genaug.faces.landmarks.landmarks_in_order`: MTCNN / RetinaFace order or swapped eyes).
    Rows all NaN are left to the framing rule. Works in numpy on the host (a CPU tensor: no tensor operation)."""
    lm = host_array(landmarks) if landmarks.device.type == "cpu" else landmarks.cpu().numpy()
    lm = lm.astype(np.float64)
    nan = np.isnan(lm).reshape(len(lm), 10)  # ((N, 5, 2), checked; -1 cannot size an empty batch's rows)
    mixed = np.flatnonzero(nan.any(1) & ~nan.all(1))
    if len(mixed):
        raise ValueError(f"landmarks of row(s) {mixed[:8].tolist()} mix NaN and numbers: give a row's 5 points, or NaN in all "
                         "10 (that row placed by the framing rule)")
    given = ~nan.all(1)
    g = lm[given]
    if not np.isfinite(g).all():
        raise ValueError("landmarks contain inf (NaN is for whole rows: placed by the framing rule)")
    rows = np.flatnonzero(given)
    out = (g[..., 0] < -0.5) | (g[..., 0] > width - 0.5) | (g[..., 1] < -0.5) | (g[..., 1] > height - 0.5)
    if out.any():
        bad = rows[out.any(1)]
        raise ValueError(f"landmarks of row(s) {bad[:8].tolist()} lie outside the {height}x{width} images (x in [-0.5, "
                         f"{width - 0.5}], y in [-0.5, {height - 0.5}], pixels of the batch): landmarks of the photos "
                         "before a resize or crop?")
    axis = g[:, 0:2].mean(1) - g[:, 2:4].mean(1)
    d2 = (axis * axis).sum(1)
    if (d2 < 1e-6).any():
        raise ValueError(f"landmarks of row(s) {rows[d2 < 1e-6][:8].tolist()} put both eyes on one point")
    ok = landmarks_in_order(g)  # (in numpy: no tensor operation)
    if not ok.all():
        raise ValueError(f"landmarks of row(s) {rows[~ok][:8].tolist()} are not in dlib's 5-point order ({ORDER}; (x, y) "
                         "pixels): the nose must lie below the eye line and each inner corner nearer the other eye "
                         "(MTCNN / RetinaFace order differs: reorder; NaN rows are placed by the framing rule)")


def placed(rule: Tensor, given: Tensor | None) -> Tensor:
    """The landmarks the controls use (on ``rule``'s device, no host read): ``given``'s rows, the framing ``rule``'s where
    a row of ``given`` is NaN."""
    if given is None:
        return rule
    given = given if given.device == rule.device else given.to(rule.device, non_blocking=True)
    return torch.where(torch.isnan(given[:, :1, :1]), rule, given)


def find_landmarks(x: Tensor, box: tuple[int, int, int, int], own_frame: bool = True) -> Tensor:
    """dlib's 5 landmarks of each face in a batch ``x`` (N, C, H, W; uint8, or float in [0, 1]; grey and RGBA too), in
    pixels of the batch, as (N, 5, 2) float32 on the host, placed as the per-photo path places its controls
    (:func:`genaug.engine.render.apply_control`): where ``box`` (the framing rule's face box) is the whole image or its
    centred square (a model-sized photo, or ``framing="full"``), the detector's largest face in the whole image, the rule's landmarks refined by the
    5-point model where it finds none (a guess, not NaN: such a photo is taken to be a face crop - dlib misses 22 of 200
    celeba_train_64 crops - so on a photo with no face at all it places a face where the rule puts one); in a known frame's box (CelebA's 178x218), the rule's landmarks refined in
    place - unless ``own_frame`` is False (the known frame's shape at another size: a 900x1102 photo is CelebA-shaped)
    and the detector's face lies elsewhere than the box (:data:`genaug.engine.reframe.MISFRAMED` / ``MISSCALED``), as
    the per-photo path then places them on that face. A row dlib puts out of a face's order (none in 6,200 real
    detections) or a point outside the image is NaN (placed by the framing rule; the per-photo path leaves a face out
    of order unedited). Needs the ``faces`` extra (dlib)."""
    from ..faces.landmarks import box_landmarks, detect_landmarks, landmarks_inside, place_landmarks, taken_whole
    from .reframe import MISFRAMED, MISSCALED

    if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] not in (1, 3, 4):
        raise ValueError(f"expected an NCHW batch with 1, 3 or 4 channels, got {getattr(x, 'shape', type(x).__name__)}")
    x = x.detach().cpu()
    x = x[:, :3] if x.shape[1] == 4 else x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    x = (x.float() / 255 if x.dtype == torch.uint8 else x.float()).clamp(0, 1) * 2 - 1
    n, (h, w) = x.shape[0], x.shape[-2:]
    if n == 0:
        return torch.empty(0, 5, 2)
    lm = place_landmarks(x, box).float().cpu()
    if not own_frame and not taken_whole(box, h, w):  # a known frame's shape: its face where the detector puts it
        found, rule = detect_landmarks(x, fallback=lm).float().cpu(), box_landmarks(box)[0]
        side, spread = box[2] - box[0], lambda p: (p[..., 0:2, :].mean(-2) - p[..., 2:4, :].mean(-2)).norm(dim=-1)
        off = (found.mean(1) - rule.mean(0)).norm(dim=-1) > MISFRAMED * side
        off |= (spread(found) / spread(rule) - 1).abs() > MISSCALED
        lm[off] = found[off]
    lm[~(landmarks_in_order(lm) & landmarks_inside(lm, h, w))] = float("nan")
    return lm
