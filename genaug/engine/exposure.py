"""Exposure and light normalisation of the named latent edits (glasses, smile, mouth, bangs, male) in ``delta`` mode.

On a dim photo the generator's change ``G(edited) - G(latent)`` is drawn with a normally exposed face's contrast
(white teeth, and the edit pulls the dim reconstruction brighter), so added to the photo it paints bright blotches;
on an over-exposed one, grey smears; under a coloured light, blotches of the light's colour. Both render paths
(:func:`genaug.engine.render.render_recipes` and the batch path's :func:`genaug.engine.batch_pass.augment_rows`)
therefore blend such an edit into the photo brought to a normal exposure and light (:func:`light_gain`) - a gain
that lifts a dim face's highlights (:data:`DIM`) or lowers an over-exposed face's median (:data:`BRIGHT`) to the
range CelebA faces have, and a gain per channel that takes a face whose colour lies beyond every skin's out of its
light (:func:`balance`) - and map the result back through the inverse gains: the change lands in the photo's own
exposure and light. A face already within the ranges has gain 1 and renders as before; pixels the edit leaves alone
stay as they were. A gain cannot bring back clipped skin, so on an over-exposed face a faint darkening of a clipped
channel is hidden as the scene's unknown excess over white would hide it (:data:`CORING`), a dark one (a frame, an
open mouth) kept.

The latent a named edit moves is of that face too: :meth:`genaug.engine.Engine.invert` inverts a dim face lifted to
a normal exposure and a face in a coloured light taken out of it (:func:`lift`, :data:`INVERSION`). The latent of a
dim face drew a dim face whose smile, open mouth or glasses the generator hardly moved (300 celeba_id200 faces at
0.12x of their exposure: smile removal 7 %, mouths closed 18 %, ``male`` 2 %; now 67, 92, 98 %); a blue-lit face's, a
blue face the edits painted in saturated blue. An over-exposed face is inverted at its own exposure: lowered, its
clipped skin is a flat grey the latent then draws (x2.5: glasses on 83 -> 59 %, ``male`` 61 -> 35 %).
"""
from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import Tensor

from ..faces.glasses import DIM, SKIN_CHROMA  # (DIM: a face is dim when the 90th percentile of its luma lies below it)
from ..grey import is_grey
from ..images import luma_weights
from .regions import region_mask

FACE = (0.5, 0.58, 0.32, 0.38)  # the ellipse of the model frame the face's luma is read on (as a region)
BRIGHT = 0.854  # a face is over-exposed when its median lies above this (CelebA's 99th percentile of it)
# (2,000 celeba_train_64 faces; the 90th percentile, not the median, so a dark-skinned face well exposed - its eyes'
# whites and highlights bright - is not taken for a dim photo: at the median's 5th percentile, 0.365, smile and
# glasses edit success on 300 celeba_id200 faces fell 1-2 points)


def exposure_gain(x: Tensor, named: Any = None, low: float = 0.0) -> Tensor:
    """(N,) gains that bring each image's (N, C, H, W; black at ``low``, white at 1) face to a normal exposure: the
    90th percentile of a dim face's luma up to :data:`DIM`, the median of an over-exposed one's down to
    :data:`BRIGHT`; 1 for a face between them and for rows ``named`` (N, bool; default all) marks False."""
    if len(x) == 0:  # (quantile refuses an empty tensor)
        return torch.ones(0, dtype=x.dtype, device=x.device)
    v = (x - low) / (1 - low) if low else x
    w = luma_weights(v.dtype, v.device)  # (a weighted sum channel by channel: tensordot's varies with the thread count)
    y = v[:, 0] if v.shape[1] == 1 else v[:, 0] * w[0] + v[:, 1] * w[1] + v[:, 2] * w[2]
    face = y.flatten(1).index_select(1, _face_pixels(*x.shape[-2:], x.device)).sort(1).values
    median, top = (_quantile(face, q) for q in (0.5, 0.9))
    one = torch.ones_like(top)
    gain = torch.where(top < DIM, DIM / top.clamp_min(1e-3), torch.where(median > BRIGHT, BRIGHT / median, one))
    if named is not None:
        gain = torch.where(torch.as_tensor(named, device=x.device), gain, one)
    return gain


MARGIN = 0.008  # the skins' band widened by this much chromaticity each way: a neutral grey (r = 0.333, the band's own
# edge) or a face just past the 800 faces' extremes is not a coloured light (a utkface_128 face at white light had a 1 %
# balance; random test images were balanced)


def balance(x: Tensor, low: float = 0.0) -> Tensor:
    """(N, C) gains that take each face out of a coloured light: where the mean colour of its :data:`FACE` lies
    beyond the chromaticity band of every skin (:data:`genaug.faces.glasses.SKIN_CHROMA`, 800 utkface_128 /
    celeba_id200 faces; widened by :data:`MARGIN`), the light's excess over the band taken back channel by channel,
    the face's mean luma kept; ones for faces within the band, black-and-white photos (:func:`genaug.grey.is_grey`)
    and one channel."""
    n, c = x.shape[:2]
    if c != 3 or n == 0:
        return torch.ones(n, c, dtype=x.dtype, device=x.device)
    v = (x - low) / (1 - low) if low else x
    mean = v.flatten(2).index_select(2, _face_pixels(*x.shape[-2:], x.device)).mean(2)  # (N, 3)
    chroma = mean / mean.sum(1, keepdim=True).clamp_min(1e-6)
    band = torch.tensor(SKIN_CHROMA, dtype=x.dtype, device=x.device).add_(torch.tensor([[-MARGIN], [MARGIN]], dtype=x.dtype,
                                                                                         device=x.device))
    gain = chroma.clamp(min=band[0], max=band[1]) / chroma.clamp_min(1e-6)  # (the light's excess, taken back)
    w = luma_weights(x.dtype, x.device)
    gain = gain * ((mean * w).sum(1, keepdim=True) / (gain * mean * w).sum(1, keepdim=True).clamp_min(1e-6))
    within = ((chroma >= band[0]) & (chroma <= band[1])).all(1) | is_grey(x, low=low) | (mean.sum(1) < 1e-3)
    return torch.where(within[:, None], torch.ones_like(gain), gain)


def light_gain(x: Tensor, named: Any = None, low: float = 0.0) -> Tensor:
    """(N, C) gains that bring each face to a normal exposure (:func:`exposure_gain`) out of a coloured light
    (:func:`balance`); ones for rows ``named`` (N, bool; default all) marks False."""
    gain = exposure_gain(x, named, low)[:, None] * balance(x, low)
    if named is not None:
        gain = torch.where(torch.as_tensor(named, device=x.device).reshape(-1, 1), gain, torch.ones_like(gain))
    return gain


@functools.lru_cache(maxsize=16)
def _face_pixels(h: int, w: int, device: torch.device) -> Tensor:
    """Flat indices of the pixels of an (h, w) frame inside :data:`FACE` (made on the host once: no device read)."""
    return (region_mask(FACE, h, w) > 0).flatten().nonzero().flatten().to(device)


def _quantile(ordered: Tensor, q: float) -> Tensor:
    """The ``q`` quantile of each row of ``ordered`` (N, K; sorted), as ``torch.quantile``'s linear interpolation, in
    the rows' dtype (``torch.quantile`` works in float64, which an MPS device lacks)."""
    rank = q * (ordered.shape[1] - 1)
    below = math.floor(rank)
    above = min(below + 1, ordered.shape[1] - 1)
    return torch.lerp(ordered[:, below], ordered[:, above], rank - below)


def _per_pixel(gain: Tensor, dtype: torch.dtype) -> Tensor:
    """Gains (N,) or (N, C) shaped to scale images (N, C, H, W)."""
    return gain.to(dtype).reshape(*gain.shape, *(1,) * (4 - gain.ndim))


def expose(x: Tensor, gain: Tensor, low: float = 0.0) -> Tensor:
    """Images (black at ``low``) at the exposure ``gain`` (N,), or the light (N, C), gives them (not clamped: a highlight
    may pass white)."""
    g = _per_pixel(gain, x.dtype)
    return x * g if not low else (x - low) * g + low


CLIP = 0.95  # a channel of an over-exposed face is clipped from this level up (fully at white; [0, 1] units)
CORING = 0.1  # and a darkening d of it keeps d^2 / (d^2 + CORING^2) of itself: the scene behind a clipped channel
# lies above white by an unknown amount, which hides a faint darkening (the grey smears a smile or glasses left on
# clipped skin) but not a dark feature (a frame, an open mouth). utkface_128 02000-02011 x2.5: of the face's white
# pixels, a smile darkened 12 % by 10 levels or more, now 4 %; 300 celeba_id200 faces x2.5, edit success of the
# switches on 1-10 points lower (the attribute judge reads part of the smear as the edit); 0.15 and a hard headroom
# (d + 0.1, at most 0) took more of the smears and 4-32 points.


INVERSION = "dim-lifted-balanced"  # what the latents are of (part of every latent cache's key: older caches are not read)


def inversion_gain(x: Tensor, low: float = 0.0) -> Tensor:
    """(N, C) gains a face is inverted at: a dim face lifted to a normal exposure, a face in a coloured light taken out
    of it (:func:`light_gain`); an over-exposed face is not lowered (its clipped skin a flat grey in the latent)."""
    return exposure_gain(x, low=low).clamp(min=1)[:, None] * balance(x, low)


def lift(x: Tensor, low: float = 0.0) -> Tensor:
    """Images (N, C, H, W; black at ``low``) at :func:`inversion_gain` (clipped to [``low``, 1]): what a face is
    inverted at. Rows at gain 1 are ``x``'s own values, bit for bit."""
    gain = inversion_gain(x, low)
    rows = (gain != 1).any(1).nonzero().flatten()
    if not len(rows):
        return x
    out = x.clone()
    out[rows] = expose(x[rows], gain[rows], low).clamp_(low, 1)
    return out


def unlift(x: Tensor, out: Tensor, low: float = 0.0) -> Tensor:
    """``out`` (``regenerate`` mode: the generator's drawing of :func:`lift`'s latents of ``x``) at the exposure and
    light of each photo of ``x`` (the inverse gains, clamped to [``low``, 1]; :func:`past_white` where the lifted photo
    was past white); rows at gain 1 as they are, bit for bit. One selection on the device, no host read."""
    gain = inversion_gain(x, low)
    moved = (gain != 1).any(1).reshape(-1, 1, 1, 1)
    back = past_white(x, expose(x, gain, low), out, gain, expose(out, 1 / gain, low))  # (lifted, a window was white)
    return torch.where(moved, back.clamp_(low, 1), out)


def past_white(x: Tensor, exposed: Tensor, out: Tensor, gain: Tensor, back: Tensor) -> Tensor:
    """``back`` (``out`` at ``x``'s exposure by the inverse ``gain``, (N,) or (N, C)) but where ``exposed`` (``x``
    times the gain) lies past white - a bright window behind a dim face, white in what was rendered: there the render's
    darkening below white, mapped back, on ``x``'s own value (the inverse gain of white turned a lamp at 240 behind a
    face at x0.3 to 119)."""
    return torch.where(exposed > 1, x + (out.clamp(max=1) - 1) / _per_pixel(gain, x.dtype), back)


def restore(x: Tensor, exposed: Tensor, out: Tensor, gain: Tensor, low: float = 0.0) -> Tensor:
    """``out`` rendered on ``exposed`` = :func:`expose` of ``x``, mapped back to ``x``'s exposure: where the render
    changed nothing, ``x``'s own values (bit for bit); elsewhere the inverse gain, clamped to [``low``, 1]. On an
    over-exposed face (``gain`` < 1) a faint darkening of a clipped channel is hidden (:data:`CORING`); faces at gain 1
    or above, bit for bit as the inverse gain alone, but for a pixel the gain took past white (a bright window behind
    a dim face, which the render clamps there): its darkening below white, mapped back, on its own value."""
    g = _per_pixel(gain, x.dtype)
    back = out / g if not low else (out - low) / g + low
    clipped = x.mul(1 / ((1 - low) * (1 - CLIP))).add_(-(low / (1 - low) + CLIP) / (1 - CLIP)).clamp_(0, 1)
    h2 = ((g < 1).to(x.dtype) * (CORING * (1 - low))) ** 2  # (0 on the other rows: their change is kept whole)
    d = (back - x).clamp_(max=0)
    den = (d * d).add_(h2).clamp_(min=1e-12)  # (the share of d hidden: clipped * h2 / (d^2 + h2))
    back = back.sub_(d.mul_(clipped).mul_(h2).div_(den))
    back = past_white(x, exposed, out, gain, back)  # (the render clamped such a pixel at white; no host read)
    return torch.where(out == exposed, x, back.clamp_(low, 1))
