"""Exposure normalisation of the named latent edits (glasses, smile, mouth, bangs, male) in ``delta`` mode.

On a dim photo the generator's change ``G(edited) - G(latent)`` is drawn with a normally exposed face's contrast
(white teeth, and the edit pulls the dim reconstruction brighter), so added to the photo it paints bright blotches;
on an over-exposed one, grey smears. Both render paths (:func:`genaug.engine.render.render_recipes` and the batch
path's :func:`genaug.engine.batch_pass.augment_rows`) therefore blend such an edit into the photo brought to a
normal exposure - a gain that puts the face's median luma into the range CelebA faces have (:data:`NORMAL`) - and
map the result back through the inverse gain: the change lands in the photo's own exposure, in proportion to it.
A face already within the range has gain 1 and renders as before; pixels the edit leaves alone stay as they were.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..images import luma_weights

FACE = (0.5, 0.58, 0.32, 0.38)  # the ellipse of the model frame the face's median luma is read on (as a region)
NORMAL = (0.365, 0.781)  # the 5th and 95th percentiles of that median on 2,000 celeba_train_64 faces


def exposure_gain(x: Tensor, named: Any = None, low: float = 0.0) -> Tensor:
    """(N,) gains that bring each image's (N, C, H, W; black at ``low``, white at 1) face median luma into
    :data:`NORMAL`: 1 for a face within it and for rows ``named`` (N, bool; default all) marks False."""
    from .render import region_mask  # (render imports this module)

    v = (x - low) / (1 - low) if low else x
    y = v[:, 0] if v.shape[1] == 1 else torch.tensordot(v, luma_weights(v.dtype, v.device), dims=([1], [0]))
    on = region_mask(FACE, *x.shape[-2:], device=x.device) > 0
    m = y[:, on].median(dim=1).values.clamp_min(1e-3)
    gain = m.clamp(*NORMAL) / m
    if named is not None:
        gain = torch.where(torch.as_tensor(named, device=x.device), gain, torch.ones_like(gain))
    return gain


def expose(x: Tensor, gain: Tensor, low: float = 0.0) -> Tensor:
    """Images (black at ``low``) at the exposure ``gain`` (N,) gives them (not clamped: a highlight may pass white)."""
    g = gain.to(x.dtype).reshape(-1, 1, 1, 1)
    return x * g if not low else (x - low) * g + low


def restore(x: Tensor, exposed: Tensor, out: Tensor, gain: Tensor, low: float = 0.0) -> Tensor:
    """``out`` rendered on ``exposed`` = :func:`expose` of ``x``, mapped back to ``x``'s exposure: where the render
    changed nothing, ``x``'s own values (bit for bit); elsewhere the inverse gain, clamped to [``low``, 1]."""
    g = gain.to(x.dtype).reshape(-1, 1, 1, 1)
    back = (out / g if not low else (out - low) / g + low).clamp_(low, 1)
    return torch.where(out == exposed, x, back)
