"""Image-side steps of the batch transform (:class:`genaug.BatchFaceAug`) on device batches: the model
frame, the blend on the colour fit's grid alone, the colour transform of whole rows (:func:`recolour`, by one batched
product: :func:`colour_rows`), the paste back, the
per-row plan's host columns sent to the device (:func:`columns`), and the rows drawn an image-space control
rendered on the batch at its own size (:func:`render_controls`).

Rows whose code is a colour code without local regeneration come out as the colour transform of the
photo alone (:mod:`genaug.engine.colour`): of their generator blend only the ~16 x 16 grid the fit reads
is needed (:func:`grid_blend`), so they skip the whole-image passes of :func:`genaug.engine.batch_edits.blend`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..faces.controls import GEOMETRIC_CONTROLS
from ..faces.framing import face_box
from ..faces.landmarks import box_landmarks
from ..faces.shape import images_checked
from .batch_edits import BatchParams
from .batch_landmarks import placed
from .codes import control_of
from .colour import _HALF, BLACK_RAMP, _on_host, grey_like
from .latent_table import host_array
from .render import _feather, resize_change
from .workspace import constant, part, workspace


def frame(x: Tensor, box: tuple[int, int, int, int], size: int) -> Tensor:
    """Rows (uint8 or float in [0, 1]) -> the model frame in [0, 1] (as :func:`genaug.engine.render.to_model_frame`,
    before its ``* 2 - 1``); a float32 batch that is already the model frame is returned as it is (not copied)."""
    if box == (0, 0, size, size) and x.shape[-2:] == (size, size):
        return x.float().div_(255) if x.dtype == torch.uint8 else x if x.dtype == torch.float32 else x.float()
    left, top, right, bottom = box
    crop = (x.float() / 255 if x.dtype == torch.uint8 else x.float())[:, :, top:bottom, left:right]
    crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return crop.clamp_(0, 1)


def grid_blend(x01: Tensor, base01: Tensor, edited: Tensor, out: Tensor) -> Tensor:
    """:func:`genaug.engine.batch_edits.blend` in delta mode without local regeneration (a mask weight
    of 0), on grids of pixels (the same operations, so the same values): ``clamp(x01 + (edited + 1) / 2
    - base01, 0, 1)`` written into ``out`` (``edited``, a strided grid of larger images, is copied there first:
    one strided read, then contiguous passes)."""
    return torch.add(_HALF, out.copy_(edited), alpha=0.5, out=out).sub_(base01).add_(x01).clamp_(0, 1)


def to_device(t: Tensor, device: torch.device) -> Tensor:
    """A host tensor on ``device`` without waiting for the device (pinned, non-blocking): a plain
    ``.to(device)`` of pageable memory waits for the device's queue (a host sync per call)."""
    if device.type == "cpu":
        return t
    return t.pin_memory().to(device, non_blocking=True)


def make_grey(t: Tensor, grey: np.ndarray, ref: Tensor | None = None) -> Tensor:
    """Rows ``grey`` (host positions) of ``t`` (in [0, 1]) replaced by their channel mean, in place - plus the
    own colour of the black-and-white photos ``ref`` (like ``t``) where given (:func:`genaug.engine.colour.grey_like`)."""
    if len(grey):
        at = to_device(torch.from_numpy(grey), t.device)
        rows = t.index_select(0, at)
        new = rows.mean(1, keepdim=True).expand(-1, t.shape[1], -1, -1) if ref is None else \
            grey_like(ref.index_select(0, at), rows).clamp_(0, 1)
        t.index_copy_(0, at, new)
    return t


def colour_rows(images: Tensor, transform: Tensor, out: Tensor, work: dict) -> Tensor:
    """:func:`genaug.engine.colour.apply_colour01` of a contiguous batch into ``out`` (contiguous, like it) by one
    batched product: each row's channel matrix (the gains on the diagonal, the pull over C in every column) with a row
    of ones below it (the channel sum, C lum) times its pixels, into a work buffer; the offset over C ``BLACK_RAMP``
    times the sum clamped to [0, C ``BLACK_RAMP``] added on the way to ``out``, then clamped: four passes over the batch
    where ``apply_colour01`` makes seven, the same values to float rounding (2.4e-7). ``work``: the batch path's work
    buffers. The few numbers per row are worked out in numpy for a host tensor (no tensor operations)."""
    n, c = images.shape[:2]
    t = transform if (transform.device, transform.dtype) == (images.device, images.dtype) else transform.to(images.device, images.dtype)
    dev = images.device
    m = workspace(work, "colour_m", (n, c + 1, c + 1), t.dtype, dev)  # [:, :, :c] the matrix, [:, :c, c] the offset
    if _on_host(t):
        mh, th = host_array(m), host_array(t)
        mh[:, :c, :c] = th[:, :, 1:2] * (1 / c)
        mh[:, np.arange(c), np.arange(c)] += th[:, :, 0]
        mh[:, c, :c] = 1.0
        mh[:, :c, c] = th[:, :, 2] * (1 / (c * BLACK_RAMP))
    else:
        part(m, (None, (0, c), (0, c))).copy_(part(t, (None, None, (1, 2))).expand(n, c, c)).div_(constant(float(c), t.dtype, dev))
        part(m, (None, (0, c), (0, c))).diagonal(dim1=1, dim2=2).add_(part(t, (None, None, 0)))
        part(m, (None, c, (0, c))).fill_(1.0)
        torch.div(part(t, (None, None, (2, 3))), constant(c * BLACK_RAMP, t.dtype, dev), out=part(m, (None, (0, c), (c, c + 1))))
    flat = images.view(n, c, -1)
    mixed = torch.bmm(part(m, (None, None, (0, c))), flat, out=workspace(work, "colour_mixed", (n, c + 1, flat.shape[2]), flat.dtype, dev))
    weight = part(mixed, (None, (c, c + 1))).clamp_(0.0, c * BLACK_RAMP)  # black_weight x C BLACK_RAMP
    torch.addcmul(part(mixed, (None, (0, c))), part(m, (None, (0, c), (c, c + 1))), weight, out=out.view(n, c, -1))
    return out.clamp_(0, 1)


def recolour(rows: Tensor, transform: Tensor, grey: np.ndarray, out: Tensor | None = None, work: dict | None = None) -> Tensor:
    """Whole input ``rows`` (uint8 or float in [0, 1]) through their colour ``transform``
    (:func:`genaug.engine.render.recolour`), in their dtype; ``grey``: host positions of
    black-and-white photos (kept grey); ``out``: where to write float32 results (not ``rows``);
    ``work``: work buffers kept across calls."""
    src = rows.float().div_(255) if rows.dtype == torch.uint8 else rows if rows.dtype == torch.float32 else rows.float()
    # one batched product on contiguous rows (any other layout through a contiguous copy: the same values in any layout)
    flat = src if src.is_contiguous() else src.contiguous()
    into = out if rows.dtype == torch.float32 else None  # (float32 results are written to ``out``)
    new = colour_rows(flat, transform, into if into is not None and into.is_contiguous() else torch.empty_like(flat),
                      {} if work is None else work)
    new = make_grey(new if into is None or new is into else into.copy_(new), grey, src)
    return new.mul_(255).round_().to(torch.uint8) if rows.dtype == torch.uint8 else new if new.dtype == rows.dtype else new.to(rows.dtype)


def paste(result: Tensor, x01: Tensor, x: Tensor, box: tuple[int, int, int, int], feathers: dict) -> Tensor:
    """Add the change ``result - x01`` (model frame, [0, 1]) back into the rows ``x`` (as
    :func:`genaug.engine.render.paste_back`), in their dtype; works in place on ``result``.
    ``feathers``: a cache of the paste's edge weights by box and row size."""
    to_dtype = (lambda t: t.mul_(255).round_().to(torch.uint8)) if x.dtype == torch.uint8 else (lambda t: t if t.dtype == x.dtype else t.to(x.dtype))
    if box == (0, 0, *result.shape[-2:][::-1]) and x.shape[-2:] == result.shape[-2:]:
        return to_dtype(result)  # the whole frame: x01 + (result - x01), already clamped to [0, 1]
    left, top, right, bottom = box
    change = result.sub_(x01)
    if change.shape[-2:] != (bottom - top, right - left):
        change = resize_change(change, (bottom - top, right - left))
    inner = (left > 0, top > 0, right < x.shape[3], bottom < x.shape[2])
    if any(inner):
        key = (*box, *x.shape[2:])
        if key not in feathers:
            if len(feathers) >= 16:  # photo sizes that vary from call to call (multi-scale training): not one per size
                feathers.clear()
            feathers[key] = _feather(bottom - top, right - left, inner).to(x.device)
        change = change.mul_(feathers[key])
    out = x.float() / 255 if x.dtype == torch.uint8 else x.clone() if x.dtype == torch.float64 else x.float().clone()
    # (a float64 row keeps its own pixels beside the box; half precision is summed in float32)
    out[:, :, top:bottom, left:right] = (out[:, :, top:bottom, left:right] + change.to(out.dtype)).clamp_(0, 1)
    return to_dtype(out)


_NUMPY_DTYPES = {torch.long: np.int64, torch.int32: np.int32, torch.bool: np.bool_, torch.float32: np.float32,
                 torch.float64: np.float64}


def columns(host_columns: dict[str, np.ndarray], dtypes: dict[str, torch.dtype], device: torch.device) -> dict[str, Tensor]:
    """Host columns (numpy, (N,) or (N, k)) as tensors of ``dtypes`` on ``device``, converted on the host
    (numpy): on the CPU each as it is, elsewhere the bytes of all packed into one buffer (widest items
    first, so each column starts aligned) and sent in one non-blocking copy; the columns are views of
    it (no conversion on the device)."""
    host = {k: np.ascontiguousarray(c, dtype=_NUMPY_DTYPES[dtypes[k]]) for k, c in host_columns.items()}
    if device.type == "cpu":
        return {k: torch.from_numpy(c) for k, c in host.items()}
    order = sorted(host, key=lambda k: -host[k].itemsize)  # (a stable sort)
    packed = to_device(torch.from_numpy(np.concatenate([host[k].reshape(-1).view(np.uint8) for k in order])), device)
    out, at = {}, 0
    for k in order:
        c = host[k]
        out[k] = packed[at : at + c.nbytes].view(dtypes[k])
        out[k] = out[k] if c.ndim == 1 else out[k].view(c.shape)
        at += c.nbytes
    return out


def control_marks(box: tuple[int, int, int, int], pick: Tensor, landmarks: Tensor | None) -> Tensor:
    """Where rows ``pick`` (on the batch's device) place a control: the caller's ``landmarks`` (on that device) where a
    row has them, else the framing rule's in the face ``box``."""
    marks = box_landmarks(box, len(pick)).to(pick.device)
    return placed(marks, landmarks.index_select(0, pick)) if landmarks is not None else marks


def roomless_rows(x: Tensor, strength: np.ndarray, eng: Any, framing: str,
                  landmarks: Tensor | None) -> Callable[[np.ndarray, int, Tensor], np.ndarray]:
    """``roomless(at, code, values)`` for :func:`genaug.engine.roomless.redraw_batch_roomless`: bool per row ``at`` of
    ``x``, True where control ``code`` drawn at ``values`` (times the rows' ``strength``, in its range, as
    :func:`render_controls` renders it) renders nothing on the face placed there (:meth:`ImageControl.fit` gives 0: a
    near-profile face). Read from the landmarks alone: no pixel is read."""
    box = face_box(x.shape[2], x.shape[3], getattr(eng.bundle, "framing", None), framing)
    if landmarks is not None and landmarks.device != x.device:
        landmarks = landmarks.to(x.device)

    def roomless(at: np.ndarray, code: int, values: Tensor) -> np.ndarray:
        c, pick = control_of(eng.spec, code), torch.from_numpy(at).to(x.device)
        value = torch.from_numpy(np.clip(values.numpy() * strength[at], c.low, c.high)).float()
        shape = torch.zeros((), device=x.device).expand(len(at), 3, *x.shape[-2:])  # (the rows' shape: room reads no pixel)
        with images_checked(shape):
            fitted = c.fit(shape, value, landmarks=control_marks(box, pick, landmarks), drawn=eng.drawn_range(code))
        return (fitted == 0).numpy()
    return roomless


def render_controls(x: Tensor, out: Tensor, target: Tensor, params: BatchParams, rows: np.ndarray,
                    eng: Any, framing: str, alpha: Tensor | None = None,
                    landmarks: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
    """The rows drawn an image-space control (yaw, light, ...), rendered on the batch at its own size, placed by
    the caller's ``landmarks`` (N, 5, 2) (checked: :mod:`genaug.engine.batch_landmarks`) where given, else (None, or
    a NaN row) by the framing rule's landmarks in the face box (no detection, no refinement on this path), one batched
    call per control; the value applied is the drawn one times the row's strength, within the control's range (its
``target``; NaN where the face had no room for it, so nothing was rendered, as a row not edited).
    ``alpha`` (N, 1, H, W), an RGBA batch's: a control that moves pixels (yaw) moves it with them, as the per-image
    path does (:func:`genaug.engine.render.apply_control`); returned as (out, target, alpha)."""
    box = face_box(x.shape[2], x.shape[3], getattr(eng.bundle, "framing", None), framing)
    out = out.clone() if out is x else out
    target = target.clone()
    alpha = alpha.clone() if alpha is not None else None
    codes = host_array(params.code)
    if landmarks is not None and landmarks.device != x.device:  # (a host tensor: one non-blocking copy)
        landmarks = to_device(landmarks, x.device) if landmarks.device.type == "cpu" else landmarks.to(x.device)
    for ci in np.unique(codes[rows]):
        at = np.flatnonzero(rows & (codes == ci))
        pick = torch.from_numpy(at).to(x.device)
        c = control_of(eng.spec, int(ci))
        value = torch.from_numpy(np.clip(host_array(params.value)[at] * host_array(params.strength)[at], c.low, c.high)).float()
        xr = x.index_select(0, pick)
        xf = (xr.float() / 255 if xr.dtype == torch.uint8 else xr.float()) * 2 - 1
        marks = control_marks(box, pick, landmarks)
        done, value = c.fit_apply(xf, value, landmarks=marks, drawn=eng.drawn_range(int(ci)))  # yaw: into the face's room
        res = ((done + 1) / 2).clamp(0, 1)
        res = (res * 255).round().to(torch.uint8) if x.dtype == torch.uint8 else res.to(x.dtype)
        if x.dtype != torch.uint8:  # pixels the control left as they were: the batch's own values, not their trip via [-1, 1]
            res = torch.where(done == xf, xr, res)
        out.index_copy_(0, pick, res)
        value = value.to(target.device, target.dtype)
        target.index_copy_(0, pick, torch.where(value == 0, float("nan"), value))  # 0: no room, nothing rendered
        if alpha is not None and c.name in GEOMETRIC_CONTROLS:  # a cut-out's alpha moves with the pixels it covers
            ar = alpha.index_select(0, pick)
            af = ((ar.float() / 255 if ar.dtype == torch.uint8 else ar.float()) * 2 - 1).expand(-1, 3, -1, -1)
            moved = ((c.apply(af, value, landmarks=marks)[:, :1] + 1) / 2).clamp(0, 1)
            alpha.index_copy_(0, pick, (moved * 255).round().to(torch.uint8) if ar.dtype == torch.uint8 else moved.to(ar.dtype))
    return out, target, alpha
