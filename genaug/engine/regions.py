"""Edit regions (:class:`genaug.bundle.EditRecipe` ``region``): the weights of an ellipse of the model frame, used by
both render paths (:mod:`genaug.engine.render`, :mod:`genaug.engine.batch_edits`) and by :mod:`genaug.engine.exposure`."""
from __future__ import annotations

import functools

import torch
from torch import Tensor

REGION_FEATHER = 0.35  # a region's change fades from 1 at 0.65 of the ellipse's radius to 0 at its edge


@functools.lru_cache(maxsize=64)
def _region_mask(region: tuple[float, float, float, float], h: int, w: int) -> Tensor:
    cx, cy, ax, ay = region
    ys, xs = (torch.arange(h, dtype=torch.float64) + 0.5) / h, (torch.arange(w, dtype=torch.float64) + 0.5) / w
    d = (((xs[None] - cx) / ax) ** 2 + ((ys[:, None] - cy) / ay) ** 2).sqrt()
    return ((1 - d) / REGION_FEATHER).clamp(0, 1).float()


def region_mask(region: tuple[float, float, float, float] | None, h: int, w: int, dtype: torch.dtype = torch.float32,
                device: torch.device | str = "cpu") -> Tensor:
    """(H, W) weights in [0, 1] of an edit's ``region`` (:class:`genaug.bundle.EditRecipe`: an ellipse
    ``(centre x, centre y, half width, half height)`` in fractions of the model frame): 1 inside 0.65 of
    its radius, fading linearly to 0 at its edge; all ones without a region."""
    if region is None:
        return torch.ones(h, w, dtype=dtype, device=device)
    return _region_mask(tuple(float(v) for v in region), h, w).to(device, dtype)
