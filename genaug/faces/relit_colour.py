"""The colour of relit skin (:func:`genaug.faces.light.relight`'s per-pixel colour rules): the photo's luminance and
face means, how its skin's saturation and hue follow its shading, the soft cap on brightening, and the colour a darkened
clipped highlight takes. Images in linear light, [0, 1]."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..images import LUMA
from .shape import power, smoothstep

SATURATION_RIDGE = 0.01  # shrinks the shading-to-saturation slope of faces whose shading barely varies (variance of log shading)
NEAR_GREY = (0.02, 0.05)  # pixels whose saturation is below these shares of the face's median are not skin (fading out)
OFF_HUE = (0.0, 0.25)  # ... nor those whose colour off grey is turned from the face's mean by more than acos of these (fading in)
HUED = (0.3, 0.5)  # ... where that mean's length passes these shares of the face's median saturation (fading in)
SATURATION_MAX = 0.3  # the saturation factor from a change of shading stays within exp(+-0.3)
KEEP_CHANNEL = 0.5  # ... and, raising it, leaves each channel at least this share of its value (at the pixel's luminance)
KNEE = 0.7  # brightening is compressed above this linear value (or the pixel's own, when higher)
CLIP_FROM = 0.85  # a pixel whose largest channel passes this (of 1) is taken as clipped, its hue lost
IMPLIED_TOP = (1.0, 1.25)  # ... or whose second channel, at the skin's hue, implies a top channel past these (linear)
THIRD_OFF = (0.2, 0.4)  # ... while its third channel is within these (log ratio to the second) of the skin's
UNCLIP_DARKEN = 0.25  # darkened by this share or more, a clipped pixel takes the face's skin colour
SKIN_SHARE = (0.1, 0.3)  # unclipped share of the inner face: its skin colour is the nearby skin's below the first, its own from the second
NEARBY = 0.25  # ... the nearby skin: within this share of the image's size around the inner face (its border, neck, hands)
SKIN_HUE = (0.0, 10.0, 45.0, 55.0)  # ... skin-hued: its red the top channel, its sRGB hue (degrees) rising / full / falling
SKIN_SATURATION = (0.08, 0.15, 0.6, 0.7)  # ... and its sRGB saturation (of the top channel)
SKIN_FOUND = (0.02, 0.05)  # ... its weight (of the inner face's): below the first, a warm skin tone (WARM_SKIN)
WARM_SKIN = (230, 190, 168)  # sRGB: a light warm skin (hue 21 degrees, saturation 0.27), the colour of a face clipped whole with no skin near it


def _luminance(images01: Tensor) -> Tensor:
    if images01.shape[1] == 1:
        return images01[:, 0]
    return sum(wt * images01[:, i] for i, wt in enumerate(LUMA))


def _face_mean(t: Tensor, weight: Tensor) -> Tensor:
    """(N,): the ``weight``-ed mean of each (H, W) map of ``t`` (the inner face, where the light is fitted)."""
    return _sum(t * weight, (1, 2)) / _sum(weight, (1, 2)).clamp(min=1)


def _sum(t: Tensor, dims: tuple[int, ...]) -> Tensor:
    """``t`` summed over ``dims``, accumulated in float64 (float32 on MPS, which has none): a float32 sum over a whole
    map (over 32768 values) is split among torch's threads, and its rounding changed with their count."""
    wide = torch.float32 if t.device.type == "mps" else torch.float64
    return t.sum(dims, dtype=wide).to(t.dtype)


def _shading_saturation(lin: Tensor, fitted: Tensor, weight: Tensor, images: Tensor,
                        ridge: float = SATURATION_RIDGE) -> Tensor:
    """(N,): how each face's log colour saturation (distance of linear colour over luminance from grey) changes
    per unit of log shading over the inner face's unclipped pixels (of ``images``) - shadowed skin is more saturated -
    a weighted least-squares slope shrunk towards 0 (``ridge``) where the photo's shading barely varies. Clipped skin
    is pale because the camera cut its top channel, not because it is lit: counted, it made the slope of a face 70 %
    clipped -1.86 instead of -1.13 (utkface_128 01455), and its darkened highlights took a flat, grey-pink colour paler
    than any skin of their brightness in the photo. Nor are pixels near grey (:data:`NEAR_GREY` of the face's median
    saturation: black sunglasses, a microphone, teeth): their log saturation, far below any skin's, turned the slope
    of a face behind dark glasses from -0.67 to +2.45, and the lit cheek an orange-red patch. Nor pixels whose colour is
    turned from the face's mean colour (off grey) by more than about 80 degrees (:data:`OFF_HUE`; where that mean
    has a hue, :data:`HUED`): a pale lavender
    background inside the inner face's ellipse beside a narrow face's shadowed cheek (utkface_128 03059) read as
    unsaturated skin where the generic face is darkest, and the slope came out +0.61 - the shadowed cheek lit up
    turned a saturated orange patch, the lit one darkened went ashy grey."""
    weight = weight * (1 - _clipped(images))
    lum = _luminance(lin).clamp(min=1e-4)
    off = lin / lum[:, None] - 1
    sat = _norm(off)[:, 0].clamp(min=1e-3)
    typical = _weighted_median(sat.flatten(1), weight.flatten(1)).nan_to_num(1.0)[:, None, None]
    weight = weight * smoothstep((sat / typical - NEAR_GREY[0]) / (NEAR_GREY[1] - NEAR_GREY[0]))
    mean = _sum(off * weight[:, None], (2, 3)) / _sum(weight, (1, 2)).clamp(min=1e-6)[:, None]  # the face's colour off grey
    cos = (_unit(off) * _unit(mean)[:, :, None, None]).sum(1)
    # only where that colour has a hue: its length a share of the face's typical saturation (0.8-1 on faces; ~0.1 where
    # the colours scatter every way, noise, whose mean's hue is chance and the pixels left out a lottery)
    has_hue = smoothstep((_norm(mean)[:, :, None] / typical - HUED[0]) / (HUED[1] - HUED[0]))  # (N, 1, 1)
    weight = weight * (1 - has_hue * (1 - smoothstep((cos - OFF_HUE[0]) / (OFF_HUE[1] - OFF_HUE[0]))))
    sat, s = sat.log(), fitted.log()
    centred = s - _face_mean(s, weight)[:, None, None]
    return _face_mean(sat * centred, weight) / (_face_mean(centred * centred, weight) + ridge)


def _follow_colour(lin: Tensor, slope: Tensor, change: Tensor, skin: tuple[Tensor, ...]) -> Tensor:
    """``lin`` (linear RGB after the shading ``change``, a log ratio per pixel) with each pixel's saturation
    scaled as the photo's own changes with shading (``slope``, :func:`_shading_saturation`; by a factor within
    ``exp(+-SATURATION_MAX)``), its luminance kept: a brightened shadow loses its orange, it does not turn into an
    orange patch. A brightened pixel losing saturation turns towards the hue of the face's lit skin (``skin``,
    :func:`_skin_colour`) by the factor's share of its range, by at most the face's hue spread (lips and eyes turn
    no more than its skin); other pixels keep their hue. Dark skin's shadows are often magenta beside its brown lit
    skin: desaturated in their own hue, they turned grey-lavender. A raised saturation leaves each channel at least
    KEEP_CHANNEL of its value: the face's slope took the photo's own saturated shadows (beside the nose, at an eye's
    corner) out of the gamut, their blue clamped to 0 - brown-orange spots (utkface_128 02929, 01479 at light +-60)."""
    colour, _, spread, _ = skin
    lum = _luminance(lin)
    off = lin / lum.clamp(min=1e-6)[:, None] - 1  # colour off grey
    size = _norm(off)
    own, lit = off / size.clamp(min=1e-6), _unit(colour - 1)[:, :, None, None]
    factor = (slope[:, None, None] * change).clamp(-SATURATION_MAX, SATURATION_MAX).exp()[:, None]
    low = off.amin(1, keepdim=True)  # the lowest channel, off grey (-1: 0)
    factor = torch.minimum(factor, (1 - KEEP_CHANNEL * (1 + low)) / (-low).clamp(min=1e-6))
    cos = (own * lit).sum(1, keepdim=True).clamp(-1, 1)
    share = ((1 - factor) / (1 - math.exp(-SATURATION_MAX))).clamp(0, 1) * (change > 0)[:, None]
    # by at most the face's spread; colours more than 90 degrees off the skin's (blue eyes) do not turn
    turn = share * cos.clamp(min=0) * torch.minimum(torch.acos(cos), spread[:, None, None, None])
    hue = torch.cos(turn) * own + torch.sin(turn) * _unit(lit - cos * own)  # own turned towards lit in their plane
    return (lum[:, None] * (1 + factor * size * hue)).clamp(min=0)


def _norm(v: Tensor) -> Tensor:
    """(N, 1, ...): the length of ``v`` (N, C, ...) along dim 1 (torch's ``norm(dim=1)`` is 70 times slower)."""
    return v.square().sum(1, keepdim=True).sqrt()


def _unit(v: Tensor) -> Tensor:
    """``v`` (N, C, ...) scaled to unit length along dim 1 (0 where it is 0)."""
    return v / _norm(v).clamp(min=1e-6)


def _soft_cap(ratio: Tensor, peak: Tensor) -> Tensor:
    """``ratio`` (N, H, W) limited so that no channel passes 1, softly: a brightening that would carry a pixel's largest
    channel ``peak`` past ``max(KNEE, peak)`` is compressed exponentially towards 1 (slope 1 at the knee). A hard cap
    at 1 flattened brightened cheeks into one white patch without texture."""
    peak = peak.clamp(min=1e-4)
    t = peak * ratio
    knee = peak.clamp(min=KNEE)
    soft = knee + (1 - knee) * (1 - torch.exp(-(t - knee) / (1 - knee).clamp(min=1e-6)))
    return torch.where(t > knee, soft, t) / peak


def _skin_colour(lin: Tensor, images: Tensor, weight: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The face's brightest unclipped skin colour at unit luminance (N, 3), a ``weight``-ed mean of ``lin`` (linear
    RGB of ``images``) over the inner face, the sum of its weights (N,), the face's hue spread around it (N,): the
    median angle (radians) between the inner face's colours off grey and the skin's, weighted by how far off grey they
    are (0 where no skin is found or it is grey), and that skin's mean log luminance (N,) (in ``lin``'s shading).
    On a face the camera clipped almost whole (under SKIN_SHARE of it unclipped) the colour fades to the nearby skin's
    (:func:`_nearby_skin`): its unclipped pixels are lips, eyes and nostrils, and an overexposed face darkened took their
    pink (1.4, 0.81, 0.92 on utkface_128 00010 at 1.35 x^0.45, 1 % unclipped); the inner face's mean, taken instead, is
    the clip's white with its blue cut - darkened, a flat grey-green patch (1.04, 1.01, 0.83 on celeba_id200 041913,
    6 % unclipped). Normal photos are 32 % unclipped or more (400 of utkface_128 and celeba_id200)."""
    peak = ((images.float() + 1) / 2).amax(1)
    clipped = _clipped(images)
    skin_w = weight * (1 - clipped) * peak ** 4  # the brightest unclipped skin: shadowed skin is more saturated
    lum = _luminance(lin).clamp(min=1e-6)
    chroma = lin / lum[:, None]  # unit luminance
    total = _sum(skin_w, (1, 2))
    colour = _sum(chroma * skin_w[:, None], (2, 3)) / total.clamp(min=1e-6)[:, None]
    share = _sum(weight * (1 - clipped), (1, 2)) / _sum(weight, (1, 2)).clamp(min=1e-6)
    trust = smoothstep((share - SKIN_SHARE[0]) / (SKIN_SHARE[1] - SKIN_SHARE[0]))[:, None]
    near = _nearby_skin(images, chroma, clipped, weight) if bool((trust < 1).any()) else colour
    colour = torch.where(trust < 1, near + (colour - near) * trust, colour)  # bit for bit where trusted
    off = chroma - 1
    angle = torch.acos((_unit(off) * _unit(colour - 1)[:, :, None, None]).sum(1).clamp(-1, 1))
    spread = _weighted_median(angle.flatten(1), (weight * _norm(off)[:, 0]).flatten(1)).nan_to_num(0.0)
    level = _sum(lum.log() * skin_w, (1, 2)) / total.clamp(min=1e-6)
    return colour, total, torch.where((total > 1e-3) & (_norm(colour - 1)[:, 0] > 1e-3), spread, 0.0), level


def _nearby_skin(images: Tensor, chroma: Tensor, clipped: Tensor, weight: Tensor) -> Tensor:
    """(N, 3): the colour (at unit luminance, ``chroma``) of the unclipped skin-hued pixels (SKIN_HUE, SKIN_SATURATION)
    of ``images`` within NEARBY of the inner face (``weight``) - the face's border, its neck, hands on its cheeks -
    the brightest counting most (lit skin, not brown hair); where it weighs under SKIN_FOUND of the inner face,
    towards WARM_SKIN. The colour of a face the camera clipped (almost) whole, found around it."""
    rgb = ((images.float() + 1) / 2).clamp(0, 1)
    r, g, b = rgb.unbind(1)
    top, low = rgb.amax(1), rgb.amin(1)
    hue = 60 * (g - b) / (r - low).clamp(min=1e-6)
    sat = (top - low) / top.clamp(min=1e-6)

    def band(v: Tensor, edges: tuple[float, float, float, float]) -> Tensor:
        return smoothstep((v - edges[0]) / (edges[1] - edges[0])) * smoothstep((edges[3] - v) / (edges[3] - edges[2]))

    k = 2 * round(NEARBY * min(images.shape[-2:])) + 1
    near = F.max_pool2d((weight > 0).float()[:, None], k, stride=1, padding=k // 2)[:, 0]
    w = near * (1 - clipped) * (r >= top).float() * band(hue, SKIN_HUE) * band(sat, SKIN_SATURATION) * top ** 4
    total = _sum(w, (1, 2))
    found = _sum(chroma * w[:, None], (2, 3)) / total.clamp(min=1e-6)[:, None]
    warm = (torch.tensor(WARM_SKIN, dtype=chroma.dtype, device=chroma.device) / 255) ** 2.2
    warm = warm / sum(wt * c for wt, c in zip(LUMA, warm))  # linear, unit luminance
    t = smoothstep((total / _sum(weight, (1, 2)).clamp(min=1e-6) - SKIN_FOUND[0]) / (SKIN_FOUND[1] - SKIN_FOUND[0]))
    return warm + (found - warm) * t[:, None]


def _clipped(images: Tensor, lin: Tensor | None = None, colour: Tensor | None = None) -> Tensor:
    """(N, H, W) in [0, 1]: how far each pixel of ``images`` is taken as clipped, its hue lost - its largest channel past
    CLIP_FROM or, given the photo's linear ``lin`` and its skin ``colour`` (N, 3) (:func:`_skin_colour`'s), the skin's
    colour with its top channel cut: its second channel implies, at the skin's hue, a top channel past IMPLIED_TOP,
    its third sits where the skin's does (THIRD_OFF). The camera clipped such a pixel's red, the resize and JPEG took
    it below CLIP_FROM: yellower than the skin (utkface_128 03747: 218, 207, 145, hue 51 degrees, beside skin of 25),
    it kept that hue when darkened and grew more saturated - yellow-green patches on the cheeks. White teeth and eyes
    are not skin-coloured in their third channel: not taken."""
    clipped = smoothstep((((images.float() + 1) / 2).amax(1) - CLIP_FROM) / (1 - CLIP_FROM))
    if colour is None:
        return clipped
    order = colour.argsort(1, descending=True)  # the skin's top, second and third channels
    c, p = colour.gather(1, order).clamp(min=1e-6), lin.gather(1, order[:, :, None, None].expand_as(lin)).clamp(min=1e-6)
    implied = p[:, 1] * (c[:, 0] / c[:, 1])[:, None, None]
    third = ((p[:, 2] / p[:, 1]).log() - (c[:, 2] / c[:, 1]).log()[:, None, None]).abs()
    cut = smoothstep((implied - IMPLIED_TOP[0]) / (IMPLIED_TOP[1] - IMPLIED_TOP[0]))
    return torch.maximum(clipped, cut * smoothstep((THIRD_OFF[1] - third) / (THIRD_OFF[1] - THIRD_OFF[0])))


def _weighted_median(values: Tensor, weights: Tensor) -> Tensor:
    """(N,): the ``weights``-ed median of each row of ``values`` (N, P); NaN where a row's weights are all 0."""
    values, order = values.sort(1)
    below = weights.gather(1, order).cumsum(1)
    at = (below < below[:, -1:] / 2).sum(1, keepdim=True).clamp(max=values.shape[1] - 1)
    return torch.where(below[:, -1] > 0, values.gather(1, at)[:, 0], torch.nan)


def _unclip(lin: Tensor, ratio: Tensor, images: Tensor, weight: Tensor | None,
            skin: tuple[Tensor, Tensor, Tensor, Tensor] | None = None, slope: Tensor | None = None) -> Tensor:
    """``lin`` (linear RGB, shading changed by ``ratio``) with the colour of pixels the photo clipped (a channel near
    its maximum: the highlight's hue is lost, darkening it shows a yellow-green or grey patch) moved towards the
    face's brightest unclipped skin colour as far as the new light darkens them; luminance kept. That colour is the
    skin's at its own luminance: a highlight brighter than it takes it less saturated, as the photo's skin is
    (``slope``, :func:`_shading_saturation`, per log luminance; the new shading's own change follows in
    :func:`_follow_colour`) - at the skin's saturation, darkened highlights were orange patches brighter and more
    saturated than any skin of their brightness (utkface_128 00080). ``skin``: :func:`_skin_colour`'s, of the
    unshaded photo, where found elsewhere (a large photo's, at the work size); else found here with ``weight``."""
    photo = lin / ratio.clamp(min=1e-6)[:, None]
    if skin is None:
        skin = _skin_colour(photo, images, weight)  # of the unshaded photo
    colour, total, _, level = skin
    clipped = _clipped(images, photo, colour)  # the photo's clipping
    lum = _luminance(lin).clamp(min=1e-6)
    off = _measured_hue(photo, images, colour) - 1
    if slope is not None:  # the photo's luminance: lum / ratio
        paler = slope[:, None, None] * ((lum / ratio.clamp(min=1e-6)).log() - level[:, None, None])
        off = off * paler.clamp(max=0).exp()[:, None]
    w = clipped * ((1 - ratio) / UNCLIP_DARKEN).clamp(0, 1) * (total > 1e-3).float()[:, None, None]
    return lin + w[:, None] * (lum[:, None] * (1 + off) - lin)


def _measured_hue(photo: Tensor, images: Tensor, colour: Tensor) -> Tensor:
    """(N, 3, H, W) at unit luminance: the colour a clipped pixel of ``photo`` (linear RGB of ``images``) is taken to
    have - the skin's (``colour``, (N, 3)) where its two lower channels are clipped too (a near-white highlight), else
    its own lower channels' ratio, which the camera measured, with its top channel at the skin's ratio to the middle
    one (or its own, when higher: a cut channel was higher, not lower), its middle channel then raised as far as keeps
    its sRGB hue from passing both its own and the skin's (:func:`_hue_middle`). The skin's colour taken whole turned a
    salmon cheek whose red alone was clipped (244, 193, 188: hue 5 degrees) the magenta of a pink-cast face's skin
    and lips (hue 341) when darkened (utkface_128 00136 at light -60: hue 346)."""
    order = photo.argsort(1, descending=True)  # each pixel's top, middle and low channels
    own, skin = photo.gather(1, order), colour[:, :, None, None].expand_as(photo).gather(1, order)
    top = torch.maximum(own[:, 1] * skin[:, 0] / skin[:, 1].clamp(min=1e-6), own[:, 0])
    mid = torch.where(top > own[:, 0], _hue_middle(top, own, skin), own[:, 1])
    kept = torch.empty_like(photo).scatter_(1, order, torch.stack([top, mid, own[:, 2]], 1))
    kept = kept / _luminance(kept).clamp(min=1e-6)[:, None]
    middle = ((images.float() + 1) / 2).gather(1, order[:, 1:2])[:, 0]  # the middle channel's code value
    cut = smoothstep((middle - CLIP_FROM) / (1 - CLIP_FROM))[:, None]
    return kept + cut * (colour[:, :, None, None] - kept)


def _hue_middle(top: Tensor, own: Tensor, skin: Tensor) -> Tensor:
    """(N, H, W): the middle channel (linear) of a pixel whose top channel :func:`_measured_hue` raised to ``top``:
    its own (``own``, (N, 3, H, W) linear, in its top, middle, low order), or where that takes the pixel's sRGB hue
    towards its top channel past both its own measured hue and the skin's (``skin``, its colour in that order), the
    value that gives it the one of those two nearer its top channel (code values ``low + h (top - low)``, ``h`` a
    colour's ``(middle - low) / (top - low)``; none where the skin is not ordered as the pixel). A raised top channel alone
    moves the hue: on a face of saturated orange skin (utkface_128 00729: 2.34, 0.49, 0.11 at unit luminance) a pale
    lit cheek whose red the camera clipped (252, 200, 179: hue 18 degrees) got a red five times its green over its own
    blue - darkened by any light, a pink cheek (hue 7 to 9). Its saturation stays the raised one: as pale as measured,
    it darkened to a grey patch on the orange face."""
    c, s = (power(t.clamp(min=1e-6), 1 / 2.2) for t in (own, skin))  # code values (the skin's: a ratio, scale-free)
    h = (s[:, 1] - s[:, 2]) / (s[:, 0] - s[:, 2]).clamp(min=1e-6)
    h_own = (c[:, 1] - c[:, 2]) / (c[:, 0] - c[:, 2]).clamp(min=1e-6)
    low = c[:, 2]
    mid = low + torch.minimum(h, h_own).clamp(0, 1) * (power(top.clamp(min=1e-6), 1 / 2.2) - low)
    return torch.where(h > 0, torch.maximum(power(mid.clamp(min=1e-6), 2.2), own[:, 1]), own[:, 1])


def _into_gamut(lin: Tensor) -> Tensor:
    """``lin`` (linear RGB, (N, 3, H, W)) with each pixel whose largest channel passes 1 moved towards the grey of its
    luminance until none does: its hue and luminance kept, its saturation lowered (a pixel brighter than white: white).
    Clamping such a pixel channel by channel (the skin colour a darkened clipped highlight takes, or one whose
    saturation the new shading raised) kept its other channels: on an overexposed face a flat, saturated orange patch."""
    lum = _luminance(lin)[:, None]
    top = lin.amax(1, keepdim=True)
    over = top > 1
    scale = ((1 - lum) / (top - lum).clamp(min=1e-6)).clamp(0, 1)
    return torch.where(over, lum.clamp(max=1) + scale * (lin - lum), lin)
