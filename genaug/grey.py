"""Black-and-white photos: judged by the spread of their channels (:func:`is_grey`, :func:`grey_spread`) and kept
so under edits (:func:`keep_grey`: only the edit's luminance change, the photo's own faint tone kept). Below the faces
and the engine: the engine's colour edits and the drawn glasses both keep a grey photo grey."""
from __future__ import annotations

import torch
from torch import Tensor

from .images import sample_grid

GREY_TOLERANCE = 0.05  # largest channel spread of a black-and-white photo, relative to its brightest channel (is_grey)


def is_grey(x: Tensor, tolerance: float = GREY_TOLERANCE, low: float = -1.0) -> Tensor:
    """(N,) bool: rows that are black-and-white photos - the spread of their channels, summed over a grid of
    about 32 x 32 pixels, is at most ``tolerance`` times their brightest channel's sum there. Relative, not
    absolute: JPEG's colour noise and a faint tone stay under the default (186 of utkface_128's 5,999 photos, all
    black-and-white), the least colourful CelebA photos (0.056) and dark colour photos above it; prints toned more
    strongly (sepia: about 22 more utkface_128 photos, 0.05-0.20) count as colour, their tone moved by colour edits
    (no measure of one hue everywhere told them from pale colour faces, a tight crop being mostly skin). ``x`` in
    [``low``, 1] (the default: model units, [-1, 1]; 0 for [0, 1])."""
    if x.shape[1] == 1:
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    return grey_spread(sample_grid(x, 32), low) <= tolerance


def grey_spread(x: Tensor, low: float = -1.0, weight: Tensor | None = None) -> Tensor:
    """(N,): the spread of ``x``'s channels (N, C, H, W; in [``low``, 1]) summed over its pixels (weighted by
    ``weight`` (N, H, W) where given), over its brightest channel's sum: :func:`is_grey`'s measure."""
    hi = x.amax(1)
    spread, bright = hi - x.amin(1), hi - low
    if weight is not None:
        spread, bright = spread * weight, bright * weight
    return spread.flatten(1).sum(1) / bright.flatten(1).sum(1).clamp(min=1e-12)


def grey_like(ref: Tensor, out: Tensor) -> Tensor:
    """``out``'s luminance (channel mean) with ``ref``'s own colour added back (its channels' offsets from
    their mean; none where they are equal): what an edit of a black-and-white photo ``ref`` may change.
    ``ref``, ``out`` (N, C, H, W) in the same units; not clamped."""
    tone = ref - ref.mean(1, keepdim=True)
    tone = tone.masked_fill((ref.amax(1, keepdim=True) == ref.amin(1, keepdim=True)), 0)  # exactly grey stays exactly grey
    return out.mean(1, keepdim=True) + tone


def keep_grey(x: Tensor, out: Tensor, tolerance: float = GREY_TOLERANCE, grey: Tensor | None = None) -> Tensor:
    """``out`` with the rows whose input ``x`` is black-and-white (:func:`is_grey`; model units) given only their
    luminance change (:func:`grey_like`); ``grey`` (N,) bool: which rows are, when judged elsewhere (on the whole
    photo of a crop ``x``)."""
    if x.shape[1] == 1:
        return out
    grey = is_grey(x, tolerance) if grey is None else grey
    if not bool(grey.any()):
        return out
    return torch.where(grey[:, None, None, None], grey_like(x, out).clamp(-1, 1), out)
