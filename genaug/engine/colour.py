"""Colour edits of the whole photo, and grey photos kept grey.

A photometric code (tone, shade, warmth: a recipe with ``colour=True``) changes how the photo was lit and developed,
not the face: drawn through the generator it also redraws texture and, pasted into a larger photo, tints the face
alone. So its rendered change is reduced to the colour transform that best explains it - per photo and channel a
gain, a pull towards the luminance (saturation) and an offset that fades out towards black (black stays black, as
under a camera's gains), least squares over the model frame with a ridge towards the identity, the face's hue and
saturation kept (:func:`keep_hue`) - applied to every pixel of the photo: exact texture, the background shifts with
the face. A white balance (recipe ``hue``: ``warmth``) is a gain per channel alone. A black-and-white photo stays
black-and-white (only the luminance change; its own faint tone and JPEG colour noise kept). A random colour edit
moves its code at least :data:`COLOUR_MARGIN` off the face's own value (:func:`margin_edits`; on the device
:func:`genaug.engine.batch_edits.colour_margin`).
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..grey import GREY_TOLERANCE, grey_like, grey_spread, is_grey, keep_grey  # noqa: F401  (the engine imports them here)
from ..images import sample_grid
from .latent_table import host_array
from .workspace import constant, part, workspace

_HALF = torch.tensor(0.5, dtype=torch.float32, device="cpu")  # a 0-dim constant (host float32 under any importer's
# defaults): ``torch.add(_HALF, t, alpha=0.5)`` is ``(t + 1) / 2`` in one pass

RIDGE = 2.5e-5  # pulls the fitted transform towards the identity (flat or single-colour faces; image-scale units)
EXACT_RIDGE = 1e-9  # the same in photo_transform's read of a transform that is exact on its pixels
PULL_RIDGE = 3e-2  # pulls the fitted luminance pulls towards 0 (the refit's: towards keep_hue's). A face's channels and
# its luminance are nearly collinear: under RIDGE alone a fit traded them off (tone +0.8: red gain 1.96, pull -0.87, blue
# 0.17, 0.88 - shadows olive-green, highlights magenta; utkface 00311, 01092, 01567).


def fit_colour(src: Tensor, dst: Tensor, refit: bool = False, work: dict | None = None, prior: Tensor | None = None) -> Tensor:
    """Per row and channel, on the image scale [0, 1] (``src``, ``dst`` in model units [-1, 1]),
    ``dst_c ~ a_c src_c + k_c lum(src) + b_c w(lum(src))`` in least squares on a grid of about 16 x 16
    pixels (a gain, a saturation-like pull to the luminance and an offset that fades out towards black,
    :func:`black_weight`: what exposure, white balance and colour grading do - black stays black; no
    channel leaks into another hue), ridge towards the identity, or towards ``prior`` (N, C, 3): (N, C, 3). ``refit``:
    the fit of ``src`` through that transform, its hue kept, as :func:`colour_only` renders it (clamped), ridge towards
    the transform with its hue kept (the photo's transform, :func:`photo_transform`), the system solved once for both.
    ``work``: a dict of work buffers kept across calls (:func:`workspace`; the result is then one of them)."""
    s, d = sample_grid(src), sample_grid(dst)  # a global fit: ~256 samples are plenty
    work, c = {} if work is None else work, s.shape[1]
    f = workspace(work, "fit", (s.shape[0], 2 * c + 2, *s.shape[2:]), s.dtype, s.device)
    torch.add(_HALF, s, alpha=0.5, out=part(f, (None, (0, c))))
    torch.add(_HALF, d, alpha=0.5, out=part(f, (None, (c + 2, 2 * c + 2))))
    return fit_regressors(f, refit, work, prior=prior)


def fit_regressors(f: Tensor, refit: bool, work: dict, free: Tensor | None = None, prior: Tensor | None = None) -> Tensor:
    """:func:`fit_colour` from a work buffer ``f`` (N, 2 C + 2, H, W) holding the photo ``s`` in ``[:, :C]`` and
    the target ``d`` in ``[:, C + 2:]`` on the image scale: fills in the luminance and the offset weight, then
    solves. The normal equations of all channels come from one Gram product per row (channels, luminance,
    offset weight, targets), in float64; the 3 x 3 systems by their adjugate (:func:`_adjugate`). On a device without
    float64 (MPS, :func:`fit_dtype`) all in float32, the Gram product of the samples less their row means (the means'
    product added back: a product of small numbers, about as exact). ``free``: the white-balance rows :func:`keep_hue`
    makes gains per channel (before the refit)."""
    n, k, dev = f.shape[0], f.shape[1], f.device
    c, p, one = (k - 2) // 2, f.shape[2] * f.shape[3], fit_dtype(dev)
    lum, wgt = part(f, (None, (c, c + 1))), part(f, (None, (c + 1, c + 2)))
    if f.dtype in (torch.float32, torch.float64):  # the mean and black_weight, with no scalar made per call
        torch.sum(part(f, (None, (0, c))), 1, keepdim=True, out=lum).div_(constant(float(c), f.dtype, dev))
        torch.mul(lum, constant(1 / BLACK_RAMP, f.dtype, dev), out=wgt).clamp_(0, 1)
    else:
        torch.mean(part(f, (None, (0, c))), 1, keepdim=True, out=lum)
        wgt.copy_(black_weight(lum))
    if f.dtype == one:
        samples = workspace(work, "fit", (n, k, p), one, dev, f)
    else:
        samples = workspace(work, "fit64", (n, k, p), one, dev)
        workspace(work, "fit64", f.shape, one, dev).copy_(f)
    pick_a, pick_b, reg_a, reg_b, reg_d = _normal_picks(c, p, dev, one)
    # the regressors' rows of the Gram matrix (their products with each other and with the targets): all the fit reads
    regressors, means = part(samples, (None, (0, c + 2))), None
    if one == torch.float64:
        gram = torch.bmm(regressors, part(samples, "T"), out=workspace(work, "gram", (n, c + 2, k), one, dev))
    else:  # float32: of the samples less their means (the rounding of products of small numbers), plus the means' product
        mean = torch.mean(samples, 2, keepdim=True, out=workspace(work, "fit_mean", (n, k, 1), one, dev))
        centred = torch.sub(samples, mean, out=workspace(work, "fit_centred", (n, k, p), one, dev))
        regressors, means = part(centred, (None, (0, c + 2))), part(mean, (None, (0, c + 2)))
        gram = torch.bmm(regressors, part(centred, "T"), out=workspace(work, "gram", (n, c + 2, k), one, dev))
        gram.baddbmm_(means, part(mean, "T"), alpha=p)
    flat = workspace(work, "gram", (n, (c + 2) * k), one, dev, gram)
    a = torch.index_select(flat, 1, pick_a, out=workspace(work, "a", (n, c * 9), one, dev)).add_(reg_a)
    inverse, det = _adjugate(a, c, work)

    def solve(xtd: Tensor, name: str, prior: Tensor | None = None) -> Tensor:  # X^T d (+ the ridge's pull to the
        # identity or to prior) -> the transform, in f's dtype
        xtd.add_(reg_b) if prior is None else xtd.addcmul_(reg_d, prior.view(n, c * 3) if prior.dtype == one else prior.reshape(n, c * 3).to(one))
        torch.bmm(inverse, workspace(work, name, (n * c, 3, 1), one, dev, xtd), out=workspace(work, name + "r", (n * c, 3, 1), one, dev))
        workspace(work, name + "r", (n * c, 3), one, dev).div_(det)  # (the adjugate's product over the determinant)
        return workspace(work, name + "t", (n, c, 3), f.dtype, dev).copy_(workspace(work, name + "r", (n, c, 3), one, dev))

    t = solve(torch.index_select(flat, 1, pick_b, out=workspace(work, "b", (n, c * 3), one, dev)), "b", prior)
    if refit:  # src through t, its hue kept, as colour_only renders it (clamped), on the grid, in the fit's dtype: a s + k lum + b w
        moments = None if free is None else torch.index_select(flat, 1, _moment_picks(c, dev),  # (keep_hue's, read off it)
                                                               out=workspace(work, "moments", (n, c * 3), one, dev))
        face = centre_means(part(samples, (None, (0, c + 2))), f.shape[2], f.shape[3], work)  # (the samples uncentred)
        kept = keep_hue(part(f, (None, (0, c))), t, free, moments, face)
        mix = workspace(work, "refit_m", (n, c, c + 2), one, dev)  # per row [diag(gains) | pulls | offsets]
        if _on_host(mix) and _on_host(kept):  # (a few numbers per row: numpy's)
            mh, kh = host_array(mix), host_array(kept)
            mh[:, :, :c] = 0.0
            mh[:, np.arange(c), np.arange(c)] = kh[:, :, 0]
            mh[:, :, c:] = kh[:, :, 1:]
        else:
            part(mix, (None, None, (0, c))).zero_().diagonal(dim1=1, dim2=2).copy_(part(kept, (None, None, 0)))
            part(mix, (None, None, (c, c + 2))).copy_(part(kept, (None, None, (1, 3))))
        # the grid through it: a s + k lum + b w in one product of the rows' samples, clamped
        d2 = torch.bmm(mix, part(samples, (None, (0, c + 2))), out=workspace(work, "d2", (n, c, p), one, dev)).clamp_(0, 1)
        g2 = torch.bmm(regressors, part(d2, "T"), out=workspace(work, "gram2", (n, c + 2, c), one, dev))
        if means is not None:  # (centred regressors: their sums are 0) the means times the targets' sums
            g2.baddbmm_(means, part(torch.sum(d2, 2, keepdim=True, out=workspace(work, "d2_sum", (n, c, 1), one, dev)), "T"))
        t = solve(torch.index_select(workspace(work, "gram2", (n, (c + 2) * c), one, dev, g2), 1, _refit_picks(c, dev),
                                     out=workspace(work, "b2", (n, c * 3), one, dev)), "b2", kept)  # (held to it, not to 0)
    return t


def centre_means(rows: Tensor, h: int, w: int, work: dict) -> Tensor:
    """(N, K) each row's mean over the centre of its h x w grid (:func:`keep_hue`'s face: the middle half each way) of
    ``rows`` (N, K, h * w) - the colour fit's channels, luminance and offset weight - by one batched product with the
    centre's weights (made once per grid size, dtype and device)."""
    n, k, dev = rows.shape[0], rows.shape[1], rows.device
    key = ("centre", h, w, rows.dtype, dev)
    if key not in _PICKS:
        inside = np.zeros((h, w))
        inside[h // 4 : h - h // 4, w // 4 : w - w // 4] = 1
        weights = (inside / inside.sum()).reshape(1, h * w, 1).astype(np.float64 if rows.dtype == torch.float64 else np.float32)
        _PICKS[key] = torch.from_numpy(weights).to(dev, rows.dtype)  # (no float64 tensor where the fit is float32: MPS)
    out = torch.bmm(rows, _PICKS[key].expand(n, -1, -1), out=workspace(work, "centre", (n, k, 1), rows.dtype, dev))
    return workspace(work, "centre", (n, k), rows.dtype, dev, out)


def fit_dtype(device: torch.device) -> torch.dtype:
    """The colour fit's dtype on ``device``: float64, float32 where the device has no float64 (MPS)."""
    return torch.float32 if device.type == "mps" else torch.float64


HUE_TURN = 10.0  # degrees: the most a colour transform may turn the hue of a face's mean colour (keep_hue)
KEPT_SATURATION = 0.8  # the least share of that colour's chroma over luminance it keeps (brighter skin keeps its colour)
GAINED_SATURATION = 1.5  # the most it may reach (a darker tone of a pale face: a darker skin of its hue, not a pink or orange one)
COLOURFUL = (0.02, 0.05)  # a face's chroma over its luminance from which keep_hue starts to act, and fully acts (grey: never)


def edit_transform(src: Tensor, dst: Tensor, free: Tensor | None = None) -> Tensor:
    """The colour transform of a colour edit that rendered the model frame ``src`` as ``dst`` (both (N, C, H, W) in model
    units): :func:`fit_colour`, then :func:`keep_hue`. The photo takes the transform fitted to the render it gives
    (:func:`colour_only`); the batch path solves both at once (:func:`fit_regressors`' ``refit``)."""
    return keep_hue(torch.add(_HALF, sample_grid(src), alpha=0.5), fit_colour(src, dst), free)


def keep_hue(s: Tensor, t: Tensor, free: Tensor | None = None, moments: Tensor | None = None,
             means: Tensor | None = None) -> Tensor:
    """The transforms ``t`` (N, C, 3) of the photos ``s`` (N, C, H, W; image scale, a grid of the model frame) changed
    where they take a face out of its colour, so that the face's colour (the mean of the model frame's centre) keeps at
    least ``KEPT_SATURATION`` and at most ``GAINED_SATURATION`` of its chroma over luminance (as a photo in brighter
    light keeps it) and turns at most ``HUE_TURN``. Under ``KEPT_SATURATION`` the transform's cast (all it does apart
    from its grey part, the channels' mean gain, pull and offset) is cut first, down to that part at most, then one gain
    on every pixel's chroma (``p - lum``; greys unchanged) puts back what still lacks; past ``GAINED_SATURATION`` the
    cast is scaled down; the turn is taken back by the offset. (A "pale" render of dark skin is grey with a blue cast:
    the gain alone left blue-grey beards and shadows; ``tone`` -0.8 turned pale faces pink; docs/guide.md.) A grey face
    (chroma under ``COLOURFUL[0]`` of its luminance) takes ``t`` as it is. A row of ``free`` (N,; 1 = a white balance,
    recipe ``hue``, whose turn of the skin is the edit) is made a gain per channel instead, as a camera's: ``t``'s
    least-squares projection onto one over the grid. ``moments``: (N, C * 3) each channel's products with itself, the
    luminance and the offset weight over the grid (the colour fit's Gram entries), else from ``s``; ``means``: (N, C + 2)
    the face's mean channels, luminance and offset weight (:func:`centre_means`), else from ``s``. In place; returns ``t``."""
    c, h, w = t.shape[1], s.shape[2], s.shape[3]
    if c == 1:
        return t
    work, dev = torch.promote_types(t.dtype, torch.float32), t.device  # (float16's floors below are 0: a grey 0 / 0)
    if means is None:
        centre = part(s, (None, None, (h // 4, h - h // 4), (w // 4, w - w // 4)))
        centre = centre.to(torch.promote_types(centre.dtype, work))  # (summed in float16 / bfloat16, a face's means lost
        # its chroma: transforms of faces of little chroma up to 0.9 off the float32 rule's on the same inputs)
        per_pixel = constant(1 / (centre.shape[2] * centre.shape[3]), work, dev)
        black = torch.mul(centre.sum(1), constant(1 / (c * BLACK_RAMP), centre.dtype, dev)).clamp_(0, 1).sum((1, 2))[:, None]
        both = torch.cat((centre.sum((2, 3)), black), 1)  # the face's mean channels and offset weight (the grid's passes)
        both = torch.mul(both if both.dtype == work else both.to(work), per_pixel)
    elif _on_host(t) and _on_host(means):  # (the luminance column left out; numpy converts)
        both = np.delete(host_array(means), c, 1).astype(np.float64 if work == torch.float64 else np.float32)
    else:
        both = torch.cat((part(means, (None, (0, c))), part(means, (None, (c + 1, c + 2)))), 1).to(work)
    free = free if free is None or free.dtype == work else free.to(work)
    grid = None if free is None or moments is not None else s if s.dtype == work else s.to(work)  # (a white balance's gains)
    if _on_host(t):  # the rest is arithmetic on a few numbers per face: numpy's (a third of torch's time an operation)
        both = host_array(both) if isinstance(both, Tensor) else both
        _hue_rule(np, both[:, :c], both[:, c:], host_array(t), None if free is None else host_array(free), work != t.dtype,
                  None if grid is None else host_array(grid), None if moments is None else host_array(moments))
    else:
        _hue_rule(torch, both[:, :c], both[:, c:], t, free, work != t.dtype, grid, moments)
    return t


def _on_host(t: Tensor) -> bool:
    """:func:`keep_hue`'s per-face arithmetic runs in numpy on ``t``'s memory (a host tensor of a dtype numpy has)."""
    return t.device.type == "cpu" and t.dtype in (torch.float16, torch.float32, torch.float64)


def _hue_rule(xp: Any, m: Any, black: Any, t: Any, free: Any, copied: bool, grid: Any = None, moments: Any = None) -> None:
    """:func:`keep_hue`'s rule from the face's mean channels ``m`` (N, C) and offset weight ``black`` (N, 1), applied to
    the transforms ``t`` (N, C, 3) in place; ``xp``: numpy (host arrays sharing the tensors' memory) or torch (the same
    operations on the device). ``copied``: ``t`` is read in a wider dtype as a copy (as before it was changed), else as
    changed. Operators, ``maximum`` and ``sqrt`` alone (and the bounds below), so one text serves both."""
    c, work = m.shape[1], m.dtype
    if xp is np:
        floor, ceil = np.maximum, np.minimum  # (ufuncs: np.clip is several times slower on a few numbers)
    else:
        floor, ceil = (lambda v, b: torch.clamp(v, min=b)), (lambda v, b: torch.clamp(v, max=b))
    tw = t.astype(work) if copied and xp is np else t.to(work) if copied else t  # the face's chroma, and through t
    mean = m.sum(1)[:, None] * (1 / c)
    own = m - mean
    size, lum = floor((own * own).sum(1)[:, None], 1e-12), floor(mean, 1e-6)
    root = xp.sqrt(size)
    gate = ceil(floor((root / lum - COLOURFUL[0]) * (1 / (COLOURFUL[1] - COLOURFUL[0])), 0.0), 1.0)
    if free is not None:
        gate = gate * (1 - free[:, None])

    def through(tw: Any) -> tuple[Any, Any, Any, Any]:  # the face's colour through tw: luminance, chroma, share kept
        new = tw[..., 0] * m + tw[..., 1] * mean + tw[..., 2] * black
        new_lum = new.sum(1)[:, None] * (1 / c)
        new = new - new_lum  # (centred: its chroma after)
        dot = (own * new).sum(1)[:, None]
        return new_lum, new, dot, dot / size

    new_lum, new, dot, along = through(tw)
    # under KEPT_SATURATION, tw's cast (all but its grey part) cut first, down to its grey part at most: through the
    # grey part the face keeps its chroma at the mean gain, and in between the share kept and the luminance are linear
    grey, spread = tw.sum(1) * (1 / c), (tw[..., 0] * own).sum(1)[:, None]  # C (new_lum - grey's)
    slope = grey[:, :1] - along + spread / lum * (KEPT_SATURATION / c)
    cut = ceil(floor((new_lum / lum * KEPT_SATURATION - along) / floor(slope, 1e-12), 0.0), 1.0) * gate
    move = cut[..., None] * (grey[:, None] - tw)
    tw = tw + move if copied else tw  # (not copied: tw is t)
    t += move
    new_lum, new, dot, along = through(tw)  # the share kept; across it (|across|^2 = new.new - dot along): the turn
    across = xp.sqrt(floor((new * new).sum(1)[:, None] - dot * along, 1e-24))
    kept = xp.maximum(along, new_lum / lum * KEPT_SATURATION)
    turn = ceil(kept * root * math.tan(math.radians(HUE_TURN)) / across, 1.0)
    # the turn by the offset: a face with little chroma of its own is turned by the cast alone, which gains cannot undo
    gain = (kept - along) * gate
    shift = (new - own * along) * ((turn - 1) * gate / floor(black, 0.1))
    gains, pulls, offsets = t[..., 0], t[..., 1], t[..., 2]  # (views: changed in place)
    gains += gain
    pulls -= gain
    offsets += shift
    # past GAINED_SATURATION, t's cast (all it does apart from its grey part, its channels' mean gain, pull and offset)
    # scaled down to it: through the grey part the face keeps its chroma at the mean gain, and in between the share of
    # chroma kept and the luminance are linear (such a face took no gain above, and the turn's offset sums to 0: the
    # grey part and the share kept are as before it)
    over = along - new_lum / lum * GAINED_SATURATION
    grey, spread = tw.sum(1) * (1 / c), (tw[..., 0] * own).sum(1)[:, None]  # C (new_lum - grey's)
    slope = along - grey[:, :1] - spread / lum * (GAINED_SATURATION / c)
    cut = ceil(floor(over / floor(slope, 1e-12), 0.0), 1.0) * gate  # the share of the cast cut
    t += cut[..., None] * (grey[:, None] - t)
    if free is not None:  # a white balance is a gain per channel (a camera's): on the rows of free (left as they were
        # above) t's least-squares projection onto one over the photo's grid, a s_c + k lum + b w -> (a + k <s_c lum> /
        # <s_c s_c> + b <s_c w> / <s_c s_c>) s_c
        if moments is None:
            lum_g = grid.sum(1)[:, None] * (1 / c)
            ss, sl, sw = ((grid * r).sum(-1).sum(-1) for r in (grid, lum_g, ceil(floor(lum_g * (1 / BLACK_RAMP), 0.0), 1.0)))
        else:
            ss, sl, sw = (moments[:, i::3] for i in range(3))
        gain = tw[..., 0] + (tw[..., 1] * sl + tw[..., 2] * sw) / floor(ss, 1e-12)
        t[..., 0] += free[:, None] * (gain - tw[..., 0])
        t[..., 1:] *= 1 - free[:, None, None]


BLACK_RAMP = 0.15  # luminance (image scale) below which a colour transform's offset fades out linearly to 0 at black


def black_weight(lum: Tensor) -> Tensor:
    """How much of the colour transform's offset reaches a pixel of luminance ``lum`` (image scale):
    0 at black, rising linearly to 1 at ``BLACK_RAMP``. Black borders, dark hair and night photos keep
    their black instead of taking the offset's tint (a camera's gains scale light; they add none)."""
    if lum.dtype == torch.float32:  # by a float32 0-dim constant: the same product, no scalar conversion per call
        return torch.mul(lum, constant(1 / BLACK_RAMP)).clamp_(0, 1)
    return lum.mul(1 / BLACK_RAMP).clamp_(0, 1)


_PICKS: dict = {}


def _normal_picks(c: int, p: int, device: torch.device, dtype: torch.dtype = torch.float64) -> tuple[Tensor, ...]:
    """Flat positions in the Gram matrix's first C + 2 rows (the regressors', C + 2 x 2 C + 2) of the normal matrices
    (C x 3 x 3) and right-hand sides (C x 3) of the channels' fits, and the ridge added to each (``p`` times ``RIDGE`` on
    the gain's and the offset's diagonal - the gain's towards 1 - and ``p`` times ``PULL_RIDGE`` on the pull's), and those
    diagonals (C * 3,), which a ridge towards another transform multiplies."""
    key = ("normal", c, p, device, dtype)
    if key not in _PICKS:
        k, reg = 2 * c + 2, RIDGE * p
        regressors = [[i, c, c + 1] for i in range(c)]
        a = [r * k + q for rows in regressors for r in rows for q in rows]
        b = [r * k + c + 2 + i for i, rows in enumerate(regressors) for r in rows]
        _PICKS[key] = (torch.tensor(a, device=device), torch.tensor(b, device=device),
                       torch.diag(torch.tensor([reg, PULL_RIDGE * p, reg], dtype=dtype)).repeat(c, 1).flatten().to(device),
                       torch.tensor([reg, 0.0, 0.0] * c, dtype=dtype, device=device),
                       torch.tensor([reg, PULL_RIDGE * p, reg] * c, dtype=dtype, device=device))
    return _PICKS[key]


def _refit_picks(c: int, device: torch.device) -> Tensor:
    """Flat positions of channel ``i``'s right-hand side in ``X^T d`` of shape (C + 2, C)."""
    key = ("refit", c, device)
    if key not in _PICKS:
        _PICKS[key] = torch.tensor([r * c + i for i in range(c) for r in (i, c, c + 1)], device=device)
    return _PICKS[key]


def _moment_picks(c: int, device: torch.device) -> Tensor:
    """Flat positions in the Gram matrix's first C + 2 rows (C + 2 x 2 C + 2) of each channel's products with itself, the
    luminance and the offset weight (:func:`keep_hue`'s ``moments``)."""
    key = ("moments", c, device)
    if key not in _PICKS:
        _PICKS[key] = torch.tensor([i * (2 * c + 2) + j for i in range(c) for j in (i, c, c + 1)], device=device)
    return _PICKS[key]


def _adjugate(a: Tensor, c: int, work: dict) -> tuple[Tensor, Tensor]:
    """(det(m) m^-1 (N C, 3, 3), det(m) (N C, 1)) of the 3 x 3 matrices ``m`` flattened in ``a`` (N, C * 9): column j
    of the adjugate is the cross product of rows j + 1 and j + 2 (mod 3), all in one ``linalg.cross`` of the rows
    gathered once each way; the determinant is row 0 times column 0. No pivoting and no host read (``torch.linalg``'s
    solvers read back); fine for the well-conditioned ridge systems here."""
    n, dev = a.shape[0], a.device
    key = ("adjugate", c, dev)
    if key not in _PICKS:  # u[.., i, j] = m[.., (j + 1) % 3, i], v: (j + 2) % 3; row 0
        at = lambda shift: [b * 9 + (j + shift) % 3 * 3 + i for b in range(c) for i in range(3) for j in range(3)]  # noqa: E731
        _PICKS[key] = tuple(torch.tensor(p, device=dev) for p in (at(1), at(2), [b * 9 + q for b in range(c) for q in range(3)]))
    pick_u, pick_v, pick_row = _PICKS[key]
    u = torch.index_select(a, 1, pick_u, out=workspace(work, "adj_u", (n, c * 9), a.dtype, dev))
    v = torch.index_select(a, 1, pick_v, out=workspace(work, "adj_v", (n, c * 9), a.dtype, dev))
    cols = workspace(work, "adj", (n * c, 3, 3), a.dtype, dev)
    torch.linalg.cross(workspace(work, "adj_u", (n * c, 3, 3), a.dtype, dev, u),
                       workspace(work, "adj_v", (n * c, 3, 3), a.dtype, dev, v), dim=-2, out=cols)
    row = torch.index_select(a, 1, pick_row, out=workspace(work, "adj_r", (n, c * 3), a.dtype, dev))
    det = torch.mul(workspace(work, "adj_r", (n * c, 3), a.dtype, dev, row), part(cols, (None, None, 0)),
                    out=workspace(work, "adj_d", (n * c, 3), a.dtype, dev))
    return cols, torch.sum(det, -1, keepdim=True, out=workspace(work, "det", (n * c, 1), a.dtype, dev))


def _inverse3(a: Tensor) -> tuple[Tensor, Tensor]:
    """(det(a) a^-1, det(a)[..., None, None]) for (..., 3, 3) matrices ``a`` (:func:`_adjugate`; new tensors)."""
    cols, det = _adjugate(a.reshape(-1, 9), 1, {})
    return cols.view(a.shape), det.view(*a.shape[:-2], 1, 1)


def apply_colour(images: Tensor, transform: Tensor) -> Tensor:
    """``images`` (N, C, H, W) in [-1, 1] through the per-row ``transform`` of :func:`fit_colour`, clamped."""
    return apply_colour01(torch.add(_HALF, images, alpha=0.5), transform).mul_(2).sub_(1)


def apply_colour01(images: Tensor, transform: Tensor, out: Tensor | None = None, work: dict | None = None) -> Tensor:
    """:func:`apply_colour` for ``images`` on the image scale [0, 1] (result in [0, 1]): per pixel
    ``a_c s_c + k_c lum + b_c w(lum)``, the channel matrix (the gains and the luminance pull) being diagonal plus the
    pull to the channel sum - elementwise passes (the batch path's :func:`genaug.engine.batch_render.colour_rows`
    makes the same values by one batched product with a channel-sum row: four passes over a batch to these seven) -
    and the offset weighted by :func:`black_weight` of each pixel's luminance; ``out``: where to write it; ``work``:
    work buffers kept across calls (:func:`workspace`)."""
    n, c = images.shape[:2]
    t = transform if (transform.device, transform.dtype) == (images.device, images.dtype) else transform.to(images.device, images.dtype)
    dev, work = images.device, {} if work is None else work
    flat = images.view(n, c, -1) if images.is_contiguous() else images.reshape(n, c, -1)
    gain = part(t, (None, None, (0, 1)))
    total = workspace(work, "lum", (n, 1, flat.shape[2]), flat.dtype, dev)  # the channel sum, c lum
    torch.add(part(flat, (None, (0, 1))), part(flat, (None, (1, 2))), out=total) if c > 1 else total.copy_(flat)
    for i in range(2, c):
        total.add_(part(flat, (None, (i, i + 1))))
    # black_weight(lum) x b = clamp(c lum, 0, c BLACK_RAMP) x b / (c BLACK_RAMP): one pass over the luminance
    weight = torch.clamp(total, 0.0, c * BLACK_RAMP, out=workspace(work, "weight", total.shape, flat.dtype, dev))
    # the pull over c and the offset over c BLACK_RAMP, in one division
    scaled = torch.div(part(t, (None, None, (1, 3))), _divisors(c, t.dtype, dev), out=workspace(work, "pull", (n, c, 2), t.dtype, dev))
    pull, offset = part(scaled, (None, None, (0, 1))), part(scaled, (None, None, (1, 2)))
    new = torch.mul(flat, gain, out=None if out is None else out.view(n, c, -1))
    new.addcmul_(pull, total).addcmul_(offset, weight).clamp_(0, 1)
    return out if out is not None and out.shape == images.shape else new.view(images.shape)


@functools.lru_cache(maxsize=None)
def _divisors(c: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(c, c BLACK_RAMP) of :func:`apply_colour01`, made once per channel count, dtype and device."""
    return torch.tensor([float(c), c * BLACK_RAMP], dtype=dtype, device=device)


def photo_transform(src: Tensor, dst: Tensor) -> Tensor:
    """The photo's colour transform (N, C, 3) for :func:`colour_only`'s render ``dst`` of the model frame ``src`` (model
    units): the transform :func:`keep_hue` made, read back exactly (float64 least squares on the grid's pixels ``dst``
    leaves unclipped), then :func:`fit_colour` of the render (clamped) held towards it - as the batch path's ``refit``
    (held towards the identity, a fit took back the saturation keep_hue had put in: ``tone`` +1 left dark photos ashy)."""
    s, d = (torch.add(_HALF, sample_grid(v).double(), alpha=0.5).flatten(2) for v in (src, dst))
    lum = s.mean(1, keepdim=True)
    keep = ((d > 0) & (d < 1)).all(1, keepdim=True)
    keep |= keep.sum(2, keepdim=True) < 4 * s.shape[1]  # (too few: all)
    x = torch.stack((s, lum.expand_as(s), black_weight(lum).expand_as(s)), -1) * keep[..., None]  # (N, C, P, 3)
    ridge = EXACT_RIDGE * s.shape[2]  # (towards the identity where the read is degenerate: a flat photo)
    b = x.transpose(-1, -2) @ (d * keep)[..., None]
    b[..., 0, 0] += ridge
    kept = torch.linalg.solve(x.transpose(-1, -2) @ x + ridge * torch.eye(3, dtype=x.dtype, device=x.device), b)[..., 0]
    return fit_colour(src, dst, prior=kept)


def colour_only(x: Tensor, out: Tensor, free: Tensor | None = None) -> Tensor:
    """``out`` replaced by the colour transform of ``x`` that best explains it, its face's hue kept (same shape; not on
    the rows of ``free``, :func:`keep_hue`)."""
    return apply_colour(x, edit_transform(x, out, free))

