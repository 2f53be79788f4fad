"""Light: estimate the main light on a face, and move it (ratio-image relighting with the generic
face's normals).

Images are NCHW float batches in [-1, 1] of any size, on any device. Directions are in degrees, in each face's own
frame (its x axis the eye line of the 5 landmarks, :func:`light_axes`): ``azimuth`` positive when the light comes from
the face's side that is on the image's right when the face is upright (0: from the camera), ``elevation`` positive
when it comes from above the face (from its brow's side). On a rolled face (a tilted head, a photo turned sideways or
rolled 45 degrees) the light turns with the face; one rolled less than ROLL_FROM degrees (upright crops) is lit in the
image's axes, bit for bit as before the light followed the roll.

The generic face (:mod:`genaug.faces.shape`) is placed by the 5 landmarks and the photo's own yaw
(:func:`genaug.faces.pose.fit_pose`), so each face pixel has a surface normal ``n``. The photo's
light is the first-order spherical-harmonics fit ``luminance ~ l0 + l . n`` over the inner face
(weighted least squares, one reweighting pass against eyes, brows and hair), in linear light
(gamma 2.2 undone). :func:`relight` keeps the photo's albedo and detail by multiplying each pixel's
linear colour (all channels alike, capped so none clips) by ``target / fitted`` shading, where the target mixes the fitted shading with a new
light, ``ambient + (1 - ambient) max(0, n . w)`` (attached shadows) times a cast-shadow term
marched through the depth map (the nose's shadow), scaled to the face's mean brightness (brightening stops at the
photo's own local brightness: no spotlight on a lit patch the fit misses); ``strength`` 0 returns the input, 1
replaces the photo's light by the new one. Each pixel keeps its new luminance, while its saturation follows the change
of shading as the photo's own skin does (skin in shadow is more saturated: a shadow lit up loses that, it does not
become an orange patch) and, so brightened, its hue turns towards the face's lit skin's (else it is kept).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .pose import PoseFit, fade_beyond_limit, fit_pose, head_crops, head_points, source_yaw
from .landmarks import face_landmarks
from .padding import padding_mask
from .relit_colour import (_face_mean, _follow_colour, _into_gamut, _luminance, _shading_saturation, _skin_colour, _soft_cap,
                           _unclip)
from .shape import blur_each, check_images, normals, per_image, power, smoothstep, surface
from .warp import CHUNK_PIXELS, WORK_PIXELS, span

SHADOW_STEPS = 16
LEAST_FADE = 0.25  # light_room: a face the near-profile fade leaves less of the light than this is not relit (no room)
GAMMA = 2.2  # images are taken as gamma-encoded; light is fitted and scaled in linear values
SOFTEN = 0.12  # the shading change is blurred by this many d (the eye distance): no seams where the solved shape jumps
COARSE_BLUR = 8.0  # a blur of twice this many pixels or more is done on a coarser grid (see _soften)
FRONT_FLOOR = 0.5  # estimate_light: a frontal normal's brightness is at least this share of the face's mean
LOCAL_FLOOR = 1.5  # brightening stops where the new light passes the photo's local brightness over this,
LOCAL_BLUR = 1.5  # blurred by this many SOFTEN d (finer, the large-photo path's sampled grid shows in it)
SHADOW_DEPTH = 0.5  # how much of the new light a cast shadow takes away (the rest: skin's scattering)
ROLL_FROM, ROLL_FULL = 5.0, 10.0  # degrees: the light turns with a face's roll from ROLL_FROM on, fully from ROLL_FULL


@dataclass
class LightEstimate:
    """Per face ``(N,)``: the apparent direction of the fitted light, ``azimuth`` ``atan2(l_x, l0 + l_z)``
    and ``elevation`` ``atan2(-l_y, l0 + l_z)`` (degrees; the ambient term is folded in, since ``l0`` and
    ``l_z`` are barely separable over a face that mostly faces the camera), and ``side``,
    the left-right shading gradient relative to the frontal brightness (``l_x / (l0 + l_z)``:
    0 evenly lit, about +-0.5 strongly side-lit, positive lit from the side a positive azimuth lights). All in the
    face's frame, as :func:`relight` takes them (:func:`light_axes`): a photo turned sideways reads as upright."""

    azimuth: Tensor
    elevation: Tensor
    side: Tensor
    coefficients: Tensor  # (N, 4): l0, lx, ly, lz in the face's light axes (x along its eye line, y down it, z to the camera)


@dataclass
class _Surface:
    normal: Tensor  # (N, 3, H, W) unit normals in image axes
    head: tuple[Tensor, Tensor]  # head-frame (x, y) per pixel
    fit_weight: Tensor  # (N, H, W) where the light is fitted (inner face)
    mask: Tensor  # (N, H, W) where relighting applies (feathered head)
    pose: object


def _surface(images: Tensor, landmarks: Tensor | None, framing: str, pose: PoseFit | None = None) -> _Surface:
    n, _, h, w = images.shape
    pose = pose if pose is not None else fit_pose(face_landmarks(images, landmarks, framing))
    x, y = head_points(pose, h, w)
    nh = normals(x, y)  # (N, H, W, 3) head frame
    yaw = source_yaw(pose)[:, None, None]
    c, s = torch.cos(yaw), torch.sin(yaw)
    nx, ny, nz = nh[..., 0] * c + nh[..., 2] * s, nh[..., 1], -nh[..., 0] * s + nh[..., 2] * c  # camera, face axes
    ex, ey = pose.frame.ex[:, :, None, None], pose.frame.ey[:, :, None, None]
    xy = nx[:, None] * ex + ny[:, None] * ey  # (N, 2, H, W) in image axes
    normal = torch.cat([xy, nz[:, None]], 1)
    inner = ((x / 0.9) ** 2 + ((y - 0.55) / 1.15) ** 2 < 1).float() * (nz > 0.2).float()
    face = torch.sqrt((x / 1.05) ** 2 + ((y - 0.45) / 1.55) ** 2)  # the face without hair and ears
    mask = smoothstep((1.05 - face) / 0.45) * (nz / 0.15).clamp(0, 1)
    return _Surface(normal, (x, y), inner, mask, pose)


def to_linear(images: Tensor) -> Tensor:
    """[-1, 1] sRGB-like values -> linear light in [0, 1] (gamma 2.2): shading multiplies light, not code values."""
    return power((images.float() + 1).div_(2).clamp_(0, 1), GAMMA)  # in place: a 12 MP photo's copies cost more than the sums


def _fit_sh(lum: Tensor, normal: Tensor, weight: Tensor) -> Tensor:
    """Weighted least squares ``lum ~ l0 + l . n`` per image, one reweighting pass; (N, 4)."""
    dt = torch.float32 if lum.device.type == "mps" else torch.float64  # float64: batch-size independent sums
    basis = torch.cat([torch.ones_like(normal[:, :1]), normal], 1).flatten(2).transpose(1, 2).to(dt)  # (N, P, 4)
    target, weight = lum.flatten(1)[..., None].to(dt), weight.flatten(1)[..., None].to(dt)
    wt = weight
    for _ in range(2):
        a = (basis * wt).transpose(1, 2) @ basis + 1e-4 * torch.eye(4, device=lum.device, dtype=dt)
        coef = torch.linalg.solve(a, (basis * wt).transpose(1, 2) @ target)
        resid = (target - basis @ coef).abs()
        scale = (resid * wt).sum(1, keepdim=True) / wt.sum(1, keepdim=True).clamp(min=1)
        wt = weight / (1 + (resid / (2 * scale + 1e-4)) ** 2)
    return coef[..., 0].float()


def _fit_light(lin: Tensor, surf: _Surface) -> tuple[Tensor, Tensor, Tensor]:
    """Each face's fitted light: the coefficients (N, 4), the fitted shading per pixel (N, H, W) and its mean
    over the inner face (N,)."""
    coef = _fit_sh(_luminance(lin), surf.normal, surf.fit_weight)
    fitted = coef[:, :1, None] + (coef[:, 1:, None, None] * surf.normal).sum(1)
    return coef, fitted, _face_mean(fitted, surf.fit_weight)


def estimate_light(images: Tensor, landmarks: Tensor | None = None, framing: str = "auto") -> LightEstimate:
    """The main light on each face (see :class:`LightEstimate`)."""
    images = check_images(images)
    if not len(images):  # an empty batch: empty estimates (as estimate_yaw and relight return)
        empty = images.new_zeros(0, dtype=torch.float32)
        return LightEstimate(empty, empty.clone(), empty.clone(), images.new_zeros(0, 4, dtype=torch.float32))
    surf = _surface(images, landmarks, framing)
    coef, _, mean_fit = _fit_light(to_linear(images), surf)
    l0, lx, ly, lz = coef.unbind(1)
    c, s = light_axes(surf.pose).unbind(1)
    lx, ly = lx * c + ly * s, ly * c - lx * s  # the light in the face's axes (read as relight places it)
    coef = torch.stack([l0, lx, ly, lz], 1)
    # a frontal normal's brightness; l0 and lz are barely separable, and where the fit splits them into large
    # opposite terms (l0 + lz near 0 on a lit face) at least half the face's mean fitted brightness, not 0
    front = torch.maximum(l0 + lz, FRONT_FLOOR * mean_fit).clamp(min=1e-3)
    return LightEstimate(torch.rad2deg(torch.atan2(lx, front)), torch.rad2deg(torch.atan2(-ly, front)), lx / front, coef)


def _soften(change: Tensor, sigma: Tensor) -> Tensor:
    """Each (H, W) map of ``change`` blurred by its own ``sigma`` pixels (at least 0.3; torchvision's
    Gaussian): the generic shape's normals jump where its solved point does (at the nose of a turned
    face), and a sharp jump in shading reads as a seam. A blur of ``k * COARSE_BLUR`` pixels or more (k >= 2) is done
    on a grid k times coarser (k-pixel means of the map reflected beyond its border, blurred there, bilinear back;
    within 0.003 of the full blur): a close-up shaded at the work size blurs by 34 px, a third of its shading time."""
    out = change.clone()
    h, w = change.shape[-2:]
    for i, sd in enumerate(sigma.tolist()):
        k = int(sd // COARSE_BLUR)
        pad = k * math.ceil(2.5 * sd / max(k, 1) + 1)  # whole cells beyond the blur's reach
        if k < 2 or pad >= min(h, w):
            out[i : i + 1] = blur_each(change[i : i + 1], [max(sd, 0.3)])
            continue
        coarse = F.avg_pool2d(F.pad(change[i : i + 1, None], (pad,) * 4, mode="reflect"), k, ceil_mode=True)
        coarse = blur_each(coarse, [math.sqrt(sd * sd - k * k / 4) / k])  # less what the means and the return add
        back = F.interpolate(coarse, scale_factor=k, mode="bilinear", align_corners=False)
        out[i : i + 1] = back[:, 0, pad : pad + h, pad : pad + w]
    return out


def light_axes(pose: PoseFit) -> Tensor:
    """(N, 2): the unit x axis (cos, sin of its angle to the image's x axis) in which each face's light is placed and
    read: the face's eye line (``pose.frame.ex``) where the face is rolled ROLL_FULL degrees or more, the image's x
    axis where it is rolled less than ROLL_FROM (a smoothstep of the roll between, so the light never lags the eye
    line by more than ROLL_FROM degrees, and never jumps). Upright crops are lit as before the light followed the roll,
    bit for bit: 195 of 200 utkface_128 and 190 of 200 celeba_id200 photos are rolled less than 5 degrees (median 1: a
    slight tilt, not landmark noise - a photo and its mirror image differ by a median 0.1-0.3 degrees), where following
    the roll changed the `light` control's pixels by 1 level (a photo's largest change, median; up to 19) for a light
    moved by under 5 degrees."""
    ex = pose.frame.ex.float()
    roll = torch.atan2(ex[:, 1], ex[:, 0])
    turn = roll * smoothstep((roll.abs() - math.radians(ROLL_FROM)) / math.radians(ROLL_FULL - ROLL_FROM))
    return torch.stack([torch.cos(turn), torch.sin(turn)], 1)


def light_direction(azimuth: Tensor, elevation: Tensor, axes: Tensor | None = None) -> Tensor:
    """Unit light directions ``(N, 3)`` from degrees: in image axes (x right, y down, z to the camera), the azimuth's
    x along ``axes`` (N, 2) (:func:`light_axes`; None: the image's x axis)."""
    a, e = torch.deg2rad(azimuth), torch.deg2rad(elevation)
    x, y, z = torch.sin(a) * torch.cos(e), -torch.sin(e), torch.cos(a) * torch.cos(e)
    if axes is not None:
        c, s = axes.to(x.device).unbind(1)
        x, y = x * c - y * s, x * s + y * c
    return torch.stack([x, y, z], 1)


def _cast_shadow(surf: _Surface, direction: Tensor) -> Tensor:
    """1 where the light reaches a point, towards 0 where the depth map blocks it (N, H, W)."""
    pose, (x, y) = surf.pose, surf.head
    ex, ey = pose.frame.ex, pose.frame.ey
    fx, fy = (direction[:, :2] * ex).sum(1), (direction[:, :2] * ey).sum(1)  # face axes, camera frame
    yaw = source_yaw(pose)
    c, s = torch.cos(yaw), torch.sin(yaw)
    hx, hz = fx * c - direction[:, 2] * s, fx * s + direction[:, 2] * c  # into the head frame
    hx, hy, hz = (t[:, None, None] for t in (hx, fy, hz))
    z0 = surface(x, y, slopes=False)[..., 0]
    blocked = torch.zeros_like(x)
    for t in torch.linspace(0.04, 1.2, SHADOW_STEPS).tolist():
        above = surface(x + t * hx, y + t * hy, slopes=False)[..., 0] - (z0 + t * hz)
        blocked = torch.maximum(blocked, (above / (0.05 + 0.15 * t)).clamp(0, 1))  # penumbra widens with distance
    return 1 - SHADOW_DEPTH * blocked


def relight(images: Tensor, azimuth=0.0, elevation=0.0, strength=0.5, landmarks: Tensor | None = None,
            framing: str = "auto", ambient: float = 0.35, shadows: bool = True) -> Tensor:
    """Move the main light on each face to (``azimuth``, ``elevation``) degrees, each within +-90,
    with ``strength`` in [0, 1] (numbers or one per image); ``ambient`` in [0, 1) is the new light's
    shadowless share. Faces turned beyond the renderer's yaw limit (near profile) fade to unchanged; an aligned crop's
    constant padding (:mod:`genaug.faces.padding`) is left as it is (black stays black anyway; another colour was lit)."""
    images = check_images(images)
    n = len(images)
    az = per_image(azimuth, n, "light azimuth", -90, 90, images.device)
    el = per_image(elevation, n, "light elevation", -90, 90, images.device)
    k = per_image(strength, n, "light strength", 0, 1, images.device)
    if not 0.0 <= ambient < 1.0:
        raise ValueError(f"ambient is a fraction in [0, 1), got {ambient!r}")
    if not bool((k > 0).any()):
        return images.clone()
    landmarks = face_landmarks(images, landmarks, framing)
    h, w = images.shape[-2:]
    pose = fit_pose(landmarks)
    boxes = head_crops(pose, h, w, 2.5 * SOFTEN * pose.scale * pose.frame.scale + 2)  # the head and the blur's reach
    if boxes is None:
        out = _relight(images, az, el, k, pose, landmarks, ambient, shadows)
    else:
        out = images.clone()  # a face in a large photo: relit on its head's box alone (the same values there)
        for i, (t, b, l, r) in enumerate(boxes):
            corner = torch.tensor([l, t], dtype=landmarks.dtype, device=landmarks.device)
            out[i : i + 1, :, t:b, l:r] = _relight(images[i : i + 1, :, t:b, l:r], az[i : i + 1], el[i : i + 1], k[i : i + 1],
                                                   pose.in_box(i, l, t), landmarks[i : i + 1] - corner, ambient, shadows)
    return torch.where(padding_mask(images)[:, None], images, out)  # an aligned crop's padding is not lit


def light_room(images: Tensor, landmarks: Tensor | None = None, framing: str = "auto") -> Tensor:
    """(N, 2) degrees the ``light`` / ``light_up`` controls reach each way: all (90, 90), or (0, 0) for a face the
    near-profile fade (:func:`genaug.faces.pose.fade_beyond_limit`) leaves less than ``LEAST_FADE`` of the light -
    turned beyond 47.5 degrees, where :func:`relight` changed at most 8 levels (mean under 1.6; utkface_128 03472 at
    49.6: 1.4) and the value was reported as applied. Such a face is left as it is and reported unchanged ("no room")."""
    pose = fit_pose(face_landmarks(check_images(images), landmarks, framing))
    reach = (fade_beyond_limit(pose) >= LEAST_FADE).float().cpu() * 90.0
    return torch.stack([reach, reach], 1)


def _relight(images: Tensor, az: Tensor, el: Tensor, k: Tensor, pose: PoseFit, landmarks: Tensor, ambient: float,
             shadows: bool) -> Tensor:
    """:func:`relight` of a checked batch (or one face's box of a photo) with its faces' poses and ``landmarks`` in its
    pixels, values one per image. A region larger than WORK_PIXELS is shaded at that many pixels and the shading change,
    smooth by construction, upsampled (the skin colour of clipped highlights, a mean, found there too), the per-pixel
    steps run on bands of rows: a close-up filling a 12 MP photo is relit in seconds, not a minute. The small image is
    a grid of the photo's own pixels (nearest), not their averages: the means found there (light fit, skin colour,
    saturation slope, hue spread) weigh each pixel by what it is - clipped, saturated - and an average of clipped and dark channels
    looks like unclipped skin no pixel of the photo has (saturated pixels then came out up to 255 levels off)."""
    h, w = images.shape[-2:]
    f = math.sqrt(WORK_PIXELS / (h * w))
    if f >= 1:
        return _apply_shading(images, *_shading(images, az, el, k, pose, ambient, shadows))
    size = (max(16, round(h * f)), max(16, round(w * f)))
    small = F.interpolate(images.float(), size=size, mode="nearest-exact")
    at = torch.tensor([size[1] / w, size[0] / h], device=landmarks.device)
    ratio, mask, weight, slope, k = _shading(small, az, el, k, fit_pose((landmarks.float() + 0.5) * at - 0.5), ambient, shadows)
    colour, total, spread, level = _skin_colour(to_linear(small), small, weight)  # means: found small (weights summed as at full size)
    ratio, mask = (F.interpolate(m[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0] for m in (ratio, mask))
    # outside the face's mask _apply_shading gives the input (its float32 copy where k is not 0): the per-pixel steps
    # run on the mask's box alone (a close-up's hair, neck and background are a third to half of a 12 MP photo)
    out = torch.where((k == 0)[:, None, None, None], images, images.float().to(images.dtype))
    box = span(mask > 0)
    if box is None:
        return out
    top, bottom, left, right = box
    rows = max(1, CHUNK_PIXELS // (right - left))
    for t in range(top, bottom, rows):  # the per-pixel steps a band of rows at a time: in cache, twice as fast
        band, cols = slice(t, min(t + rows, bottom)), slice(left, right)
        out[:, :, band, cols] = _apply_shading(images[:, :, band, cols], ratio[:, band, cols], mask[:, band, cols], None,
                                               slope, k, (colour, total * (h * w) / (size[0] * size[1]), spread, level))
    return out


def _shading(images: Tensor, az: Tensor, el: Tensor, k: Tensor, pose: PoseFit, ambient: float,
             shadows: bool) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor]:
    """The new light on a checked batch: the shading ratio ``1 + k mask change`` (N, H, W), the softened mask (N, H, W),
    the inner-face weight (N, H, W), each face's saturation slope (N,) (None for grey images) and the strengths,
    faded on near-profile photos (N,)."""
    surf = _surface(images, None, "auto", pose)
    k = k * fade_beyond_limit(surf.pose)  # the generic face is not placed on near-profile photos
    lin = to_linear(images)
    _, fitted, mean_fit = _fit_light(lin, surf)
    weight = surf.fit_weight
    fitted = torch.maximum(fitted, 0.2 * mean_fit[:, None, None]).clamp(min=1e-6)  # a black photo: no 0 / 0
    direction = light_direction(az, el, light_axes(surf.pose))
    lit = (surf.normal * direction[:, :, None, None]).sum(1).clamp(min=0)
    if shadows:
        lit = lit * _cast_shadow(surf, direction)
    new = ambient + (1 - ambient) * lit
    new = new * (mean_fit / _face_mean(new, weight).clamp(min=1e-3))[:, None, None]
    sigma = SOFTEN * surf.pose.scale * surf.pose.frame.scale
    # brightening stops at the photo's local brightness where that is far above the fit (a lit patch the first-order
    # light cannot place; l0 and lz cancelling on a dark face): a spotlight. Not darkening: a white collar is no light
    local = _soften(_luminance(lin), LOCAL_BLUR * sigma) / LOCAL_FLOOR
    change = torch.minimum(new / fitted - 1, (new / local.clamp(min=1e-6) - 1).clamp(min=0))
    mask = _soften(surf.mask, sigma)  # the mask dips where the generic nose is seen edge-on: unblurred, a line stays unlit
    ratio = 1 + k[:, None, None] * mask * _soften(change, sigma)
    slope = _shading_saturation(lin, fitted, weight, images) if lin.shape[1] == 3 else None
    return ratio, mask, weight, slope, k


def _apply_shading(images: Tensor, ratio: Tensor, mask: Tensor, weight: Tensor | None, slope: Tensor | None, k: Tensor,
                   skin: tuple[Tensor, Tensor, Tensor, Tensor] | None = None) -> Tensor:
    """``images`` re-shaded by ``ratio`` (see :func:`_shading`), pixel by pixel (``skin``: :func:`_skin_colour`'s, found
    here with ``weight`` where None)."""
    lin = to_linear(images)
    if slope is not None and skin is None:
        skin = _skin_colour(lin, images, weight)  # of the unshaded photo
    ratio = _soft_cap(ratio, lin.amax(1))  # no channel clips (the hue stays), bright skin keeps its texture
    lin = lin * ratio[:, None]
    if slope is not None:
        lin = _unclip(lin, ratio, images, weight, skin, slope)
        # skin is more saturated in shadow: its colour follows the new shading as the photo's does
        lin = _follow_colour(lin, slope, ratio.clamp(min=1e-6).log(), skin)
        lin = _into_gamut(lin)  # no channel clips: the hue and luminance stay
    out = power(lin.clamp(0, 1), 1 / GAMMA).mul_(2).sub_(1)
    out = torch.where(mask[:, None] > 0, out, images.float())  # outside the face: the input's own values
    return torch.where((k == 0)[:, None, None, None], images, out.to(images.dtype))
