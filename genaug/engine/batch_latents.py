"""Where the rows of the batch transform (:class:`genaug.BatchFaceAug`) get their latents: named rows
(dataset indices) from its :class:`~genaug.engine.latent_table.LatentTable` by index, unnamed rows by the
content key of their model-frame pixels (:func:`genaug.engine.cache.pixel_keys`) through
:class:`~genaug.engine.latent_table.ContentSlots`, inverting the rows not stored yet; and the views of the
tables' storage the batch path gathers from.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .cache import key_pixels, pixel_keys
from .batch_render import to_device
from .colour import is_grey
from .latent_table import ContentSlots, LatentTable, host_array
from .workspace import workspace

_ROUNDER = 1.5 * 2**23  # floats in [2^23, 2^24) are whole numbers: _ROUNDER + 255 x holds 255 x rounded in its low byte
_ROUND = torch.tensor(_ROUNDER, dtype=torch.float32, device="cpu")  # 0-dim: ``torch.add(_ROUND, x, alpha=255)`` in one
# pass (host float32 under any importer's defaults)


def stored(views: dict, table: LatentTable, what: str = "latent") -> Tensor:
    """A view of ``table``'s storage, made once per storage: its ``"latent"`` s, its renders (``"base"``) or their
    sample grids (``"grid"``, :attr:`LatentTable.grid`)."""
    key = (id(table), what)
    hit = views.get(key)
    if hit is None or hit[0] is not table.rows:
        hit = views[key] = (table.rows, getattr(table, what))
    return hit[1]


def named_slots(table: LatentTable, x01: Tensor, named: np.ndarray, slots: Tensor, eng: Any) -> tuple[Tensor, np.ndarray]:
    """Table slots of named rows (host indices ``named``, numpy, the same on the device as ``slots``),
    inverting those not stored yet, and which rows' photos are black-and-white (host bool)."""
    missing = table.missing_rows(named)  # host: no device read
    if missing.any():
        miss = torch.from_numpy(np.flatnonzero(missing))
        photos = x01.index_select(0, miss.to(x01.device))
        inv = eng.invert(photos.mul(2).sub(1))
        table.store(torch.from_numpy(named)[miss], inv.latent, inv.recon, is_grey(photos, low=0.0))
    return slots, table.is_grey(named)


def content_slots(slots_of: ContentSlots, content: LatentTable, x01: Tensor, pixels: Tensor | None, eng: Any, checked: bool,
                  work: dict, scratch: Tensor | None = None) -> tuple[Tensor, np.ndarray]:
    """Content-table slots (on the device) of unnamed rows, found by the content key of their model-frame
    pixels quantized to uint8 (``pixels``: those already, or None: ``255 x01`` rounded to nearest, in ``scratch``
    (a float32 buffer like it) or a kept one; ``checked``: ``x01`` lies in [0, 1]), inverting those not
    stored yet; and which rows' photos are black-and-white (host bool, kept with the latents)."""
    if pixels is None:
        dev = x01.device
        q = torch.add(_ROUND, x01, alpha=255, out=workspace(work, "q", x01.shape, torch.float32, dev) if scratch is None else scratch)
        q = q if checked else q.clamp_(_ROUNDER, _ROUNDER + 255)  # (Python bounds: the vectorized kernel)
        bits = workspace(work, "q", q.shape, torch.int32, dev) if scratch is None else q.view(torch.int32)
        pixels = key_pixels(work, q.shape, dev).copy_(bits)  # its low byte, where pixel_keys reads it
    slots, missing = slots_of.lookup(pixel_keys(pixels, eng._settings, work))
    if host_array(missing).any():
        miss = missing.nonzero().flatten()
        photos = x01.index_select(0, miss.to(x01.device))
        inv = eng.invert(photos.mul(2).sub(1))
        content.store(slots[miss], inv.latent, inv.recon, is_grey(photos, low=0.0))
    return to_device(slots, x01.device), content.is_grey(slots)
