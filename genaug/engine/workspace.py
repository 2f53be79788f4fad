"""Work buffers and constants of the batch path's hot operations, kept across calls: :func:`workspace` (a buffer per name
and device, viewed as each shape and dtype once), :func:`part` (views of such a view, made once) and :func:`constant`
(0-dim tensors made once). Used by the colour fit, the content keys and the batch transform's steps."""
from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import Tensor


@functools.lru_cache(maxsize=None)
def constant(value: float, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
    """``value`` as a 0-dim tensor of ``dtype`` on ``device``, made once: the batch path's hot operations take it
    instead of a Python scalar (made into a tensor at every call) or a host tensor (copied to an accelerator)."""
    return torch.full((), value, dtype=dtype, device=device)


def workspace(cache: dict, name: str, shape: tuple, dtype: torch.dtype, device: torch.device, like: Tensor | None = None) -> Tensor:
    """A work buffer viewed as ``shape`` and ``dtype``, kept in ``cache`` by name and device and reused across calls
    (no fresh pages to fault in; it grows to the largest size asked; views of one name in other dtypes alias it).
    Each view is made once and kept with the buffer (no view operations per call once a shape was seen), as the
    first ``shape[0]`` rows of one view per trailing shape and dtype (a new number of rows — they vary from call
    to call with the rows per kind of edit — costs one slice, no reshaping view). ``like``: a view of it the caller
    holds (checked). For intermediate results only, never for what a call returns."""
    raw = cache.get((name, device))
    view = None if raw is None else raw._genaug_views.get((shape, dtype))  # (a view made before fits the buffer held)
    if view is None:
        row = math.prod(shape[1:]) * dtype.itemsize
        if row == 0:
            return torch.empty(shape, dtype=dtype, device=device)
        if raw is None or raw.numel() < shape[0] * row:
            raw = cache[(name, device)] = torch.empty(max(shape[0], 1) * row, dtype=torch.uint8, device=device)
            raw._genaug_views = {}
        views = raw._genaug_views
        if len(views) >= 512:  # shapes that vary without end (photo sizes of multi-scale training): start again
            views.clear()
        full = views.get((tuple(shape[1:]), dtype, "all"))
        if full is None:
            rows = raw.numel() // row
            full = views[(tuple(shape[1:]), dtype, "all")] = raw[: rows * row].view(dtype).view(rows, *shape[1:])
        view = views[(shape, dtype)] = full[: shape[0]]
        view._genaug_parts = {}
    assert like is None or like.data_ptr() == view.data_ptr()
    return view


def part(t: Tensor, index: Any) -> Tensor:
    """``t[index]``, for a :func:`workspace` view ``t`` made once and kept with it: ``index`` a tuple with per dim
    None (all), an int (that entry) or (start, stop); or ``"T"``, the last two dims swapped."""
    parts = getattr(t, "_genaug_parts", None)  # (any other tensor: the view, made now)
    view = None if parts is None else parts.get(index)
    if view is None:
        view = t.transpose(-1, -2) if index == "T" else t[tuple(slice(None) if i is None else i if isinstance(i, int) else slice(*i) for i in index)]
        if parts is not None:
            parts[index] = view
    return view
