"""Constant padding of aligned crops: the border a face aligner fills where the photo did not cover the crop.

An aligner (insightface's ``norm_crop``, a rotation with black corners) warps a rectangular photo into the crop, so
what the photo covers is a convex region and the rest - the padding - is one constant colour (black, or the aligner's
``borderValue``) reaching the crop's edges. :func:`padding_mask` finds it: the pixels of a corner's colour (within
half a uint8 level) that run in from an edge, kept where what they leave is convex (every row, column and diagonal
crosses it in one stretch; up to STRAY of them may not, the photo's own black pixels at its edge, and are dropped),
covering at least a side's length of pixels and at most 1 - LEAST_PHOTO of the crop. A flat background of a real
photo (clipped white, a JPEG block of the corner's value) wraps around a head and shoulders, not a convex region: of
1,000 utkface_128 and 1,000 celeba_id200 photos, at their own size and 64 px (celeba also 128 px), none of utkface's
and 2-3 of celeba's had padding found, straight strips along the top (a magazine page's edge, clipped white rows).
Dark hair clipped to the padding's exact colour and touching it can be taken in with it (held still by a turn). :func:`keep_padding`
is how :func:`genaug.faces.pose.rotate_yaw` leaves it in place; :func:`genaug.faces.light.relight` leaves it unlit.

Images are NCHW float batches in [-1, 1], any device; masks are (N, H, W) bool.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

LEVEL = 1.0 / 255  # a colour within this of the corner's (half a uint8 level in [-1, 1]) is the corner's colour
LEAST_PHOTO = 0.25  # the photo covers at least this share of the crop (a flat image is no padding)
STRAY = 0.03  # share of a candidate's pixels that may break the convexity: a photo's own black pixels at its edge


def _runs(match: Tensor, dim: int) -> Tensor:
    """The True pixels of ``match`` (N, H, W) in unbroken runs from either end along ``dim``."""
    size = match.shape[dim]
    pos = torch.arange(size, device=match.device).view([-1, 1] if dim == 1 else [1, -1])
    miss = (~match).to(torch.uint8)
    broken = miss.amax(dim, keepdim=True).bool()  # (the first / last miss by argmax: cumprod took ~4x as long at 12 MP)
    first = torch.where(broken, miss.argmax(dim, keepdim=True), size)
    last = torch.where(broken, size - 1 - miss.flip(dim).argmax(dim, keepdim=True), -1)
    return (pos < first) | (pos > last)


def _diagonal_runs(mask: Tensor, sign: int) -> Tensor:
    """:func:`_runs` along the diagonals (``sign`` 1: down-left, -1: down-right), by shearing them into columns."""
    n, h, w = mask.shape
    rows = torch.arange(h, device=mask.device)[:, None]
    shift = rows if sign > 0 else h - 1 - rows  # row r of the mask lies ``shift`` columns along in the sheared one
    src = torch.arange(w + h, device=mask.device)[None] - shift
    inside = (src >= 0) & (src < w)
    sheared = torch.where(inside, torch.gather(mask, 2, src.clamp(0, w - 1).expand(n, h, w + h)), True)  # beyond: True
    back = (torch.arange(w, device=mask.device)[None] + shift).expand(n, h, w)
    return torch.gather(_runs(sheared, 1), 2, back)


def padding_mask(images: Tensor) -> Tensor:
    """(N, H, W) bool: each image's constant padding (see the module); all False for a photo without any."""
    n, _, h, w = images.shape
    x = images.float()
    out = torch.zeros(n, h, w, dtype=torch.bool, device=images.device)
    corners = torch.stack([x[..., 0, 0], x[..., 0, -1], x[..., -1, 0], x[..., -1, -1]], 1)  # (N, 4, C)
    for k in range(4):
        corner = corners[:, k]
        if k and bool(((corners[:, :k] - corner[:, None]).abs() <= LEVEL).all(2).any(1).all()):
            continue  # each image's corner of a colour already looked at (the usual case: four black corners)
        rim = torch.cat([x[..., 0, :], x[..., -1, :], x[..., 1:-1, 0], x[..., 1:-1, -1]], -1)  # (N, C, 2 (H + W) - 4)
        if not bool((((rim - corner[..., None]).abs() <= LEVEL).all(1).sum(1) ** 2 >= 2 * max(h, w)).any()):
            continue  # too little of the edge in its colour for padding of a side's length of pixels (a cheap look first)
        match = ((x - corner[:, :, None, None]).abs() <= LEVEL).all(1)
        runs = _runs(match, 2) | _runs(match, 1)
        area = runs.flatten(1).sum(1)
        sized = (area >= max(h, w)) & (area <= (1 - LEAST_PHOTO) * h * w)
        if not bool(sized.any()):
            continue
        inward = _runs(runs, 2) & _runs(runs, 1)
        sized &= (runs & ~inward).flatten(1).sum(1) <= STRAY * area  # (the diagonals only take more away)
        if not bool(sized.any()):
            continue
        inward &= _diagonal_runs(runs, 1) & _diagonal_runs(runs, -1)
        stray = (runs & ~inward).flatten(1).sum(1)
        out |= inward & (sized & (stray <= STRAY * area))[:, None, None]
    return out


def _nearest_along(images: Tensor, keep: Tensor, dim: int) -> Tensor:
    """``images`` with each pixel not in ``keep`` (N, H, W) replaced by the nearest kept one along ``dim`` (2:
    the row, 1: the column); a line with none kept is left as it is."""
    size = images.shape[dim + 1]
    pos = torch.arange(size, device=images.device).view([-1, 1] if dim == 1 else [1, -1])
    pos = pos.expand_as(keep)
    before = torch.where(keep, pos, -1).cummax(dim).values  # the last kept at or before each pixel
    after = torch.where(keep, pos, size).flip(dim).cummin(dim).values.flip(dim)  # the first kept at or after
    use_after = (before < 0) | ((after < size) & (after - pos < pos - before))
    source = torch.where(use_after, after, before)
    source = torch.where((source < 0) | (source >= size), pos, source)
    return torch.gather(images, dim + 1, source[:, None].expand_as(images))


def keep_padding(images: Tensor) -> tuple[Tensor, Tensor] | None:
    """None for a batch without padding; else (the images with their padding and the 1-pixel edge beside it - the
    aligner's blend of photo and padding - filled by the nearest photo pixels of the row, then of the column, for a
    warp to sample; (N, 1, H, W) bool: the padding and that edge, which the warp's result takes from the input)."""
    pad = padding_mask(images)
    if not bool(pad.any()):
        return None
    kept = F.max_pool2d(pad[:, None].float(), 3, stride=1, padding=1) > 0
    photo = ~kept[:, 0]
    filled = _nearest_along(images.float(), photo, 2)
    filled = _nearest_along(filled, photo.any(2, keepdim=True).expand_as(photo), 1)
    return filled, kept
