"""Image-side steps of the batch transform (:class:`genaug.BatchFaceAug`) on device batches: the model
frame, the blend on the colour fit's grid alone, the colour transform of whole rows, the paste back.

Rows whose code is a colour code without local regeneration come out as the colour transform of the
photo alone (:mod:`genaug.engine.colour`): of their generator blend only the ~16 x 16 grid the fit reads
is needed (:func:`grid_blend`), so they skip the whole-image passes of :func:`genaug.engine.batch_edits.blend`.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .colour import _HALF, apply_colour01
from .render import _feather


def frame(x: Tensor, box: tuple[int, int, int, int], size: int) -> Tensor:
    """Rows (uint8 or float in [0, 1]) -> the model frame in [0, 1] (as :func:`genaug.engine.render.to_model_frame`,
    before its ``* 2 - 1``); a float32 batch that is already the model frame is returned as it is (not copied)."""
    if box == (0, 0, size, size) and x.shape[-2:] == (size, size):
        return x.float().div_(255) if x.dtype == torch.uint8 else x if x.dtype == torch.float32 else x.float()
    left, top, right, bottom = box
    crop = (x.float() / 255 if x.dtype == torch.uint8 else x.float())[:, :, top:bottom, left:right]
    crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return crop.clamp_(0, 1)


def workspace(cache: dict, name: str, shape: tuple, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A work buffer of ``shape`` kept in ``cache`` by name, dtype and device and reused across calls (no
    fresh pages to fault in; it grows to the largest size asked, one per name): for intermediate results
    only, never for what a call returns."""
    key, size = (name, dtype, device), math.prod(shape)
    if key not in cache or cache[key].numel() < size:
        cache[key] = torch.empty(size, dtype=dtype, device=device)
    return cache[key][:size].view(shape)


def grid_blend(x01: Tensor, base01: Tensor, edited: Tensor) -> Tensor:
    """:func:`genaug.engine.batch_edits.blend` in delta mode without local regeneration (a mask weight
    of 0), on grids of pixels (the same operations, so the same values): ``clamp(x01 + (edited + 1) / 2
    - base01, 0, 1)``, a new tensor (views of larger images welcome)."""
    return torch.add(_HALF, edited, alpha=0.5).sub_(base01).add_(x01).clamp_(0, 1)


def to_device(t: Tensor, device: torch.device) -> Tensor:
    """A host tensor on ``device`` without waiting for the device (pinned, non-blocking): a plain
    ``.to(device)`` of pageable memory waits for the device's queue (a host sync per call)."""
    if device.type == "cpu":
        return t
    return t.pin_memory().to(device, non_blocking=True)


def make_grey(t: Tensor, grey: np.ndarray) -> Tensor:
    """Rows ``grey`` (host positions) of ``t`` replaced by their channel mean, in place."""
    if len(grey):
        at = to_device(torch.from_numpy(grey), t.device)
        t.index_copy_(0, at, t.index_select(0, at).mean(1, keepdim=True).expand(-1, t.shape[1], -1, -1))
    return t


def recolour(rows: Tensor, transform: Tensor, grey: np.ndarray, out: Tensor | None = None) -> Tensor:
    """Whole input ``rows`` (uint8 or float in [0, 1]) through their colour ``transform``
    (:func:`genaug.engine.render.recolour`), in their dtype; ``grey``: host positions of
    black-and-white photos (kept grey); ``out``: where to write float32 results (not ``rows``)."""
    src = rows.float().div_(255) if rows.dtype == torch.uint8 else rows if rows.dtype == torch.float32 else rows.float()
    new = make_grey(apply_colour01(src, transform, out=out if rows.dtype == torch.float32 else None), grey)
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
        change = F.interpolate(change, size=(bottom - top, right - left), mode="bilinear", align_corners=False)
    inner = (left > 0, top > 0, right < x.shape[3], bottom < x.shape[2])
    if any(inner):
        key = (*box, *x.shape[2:])
        if key not in feathers:
            feathers[key] = _feather(bottom - top, right - left, inner).to(x.device)
        change = change.mul_(feathers[key])
    out = x.float() / 255 if x.dtype == torch.uint8 else x.float().clone()
    out[:, :, top:bottom, left:right] = (out[:, :, top:bottom, left:right] + change).clamp_(0, 1)
    return to_dtype(out)
