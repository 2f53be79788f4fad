"""Eyeglasses drawn on a photo: thin frames placed by the face's 5 landmarks (an image-space control).

The generator's glasses are a smear a detector spots on every photo (realism C2ST 1.00); frames are
simple shapes, so genaug draws them instead, at the photo's own resolution: two rounded lenses
(superellipses) centred on the eyes, a bridge and the temples' first stretch, anti-aliased, with a
soft shadow below the rims and a lens that dims what is behind it. Each face gets its own pair
(:class:`GlassesStyle`: lens shape, rim thickness, frame colour from black to gold, clear or sun
lenses, darker at the top), drawn from the photo and its landmarks, so a photo always gets the same glasses;
the frames are blurred to the photo's own sharpness around the face (:func:`photo_blur`). They sit in the face
frame of :mod:`genaug.faces.shape` (eye line horizontal, unit = the eye distance) and follow its
pose: a turned face foreshortens them horizontally (:func:`genaug.faces.pose.fit_pose`); near-profile
faces fade to unchanged, as the other rendered controls do.

Images are NCHW float batches in [-1, 1] of any size and device; ``strength`` (a number or one per
image, in [0, 1]) is the frames' opacity, 0 returns the input.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from ..grey import GREY_TOLERANCE, grey_spread, is_grey, keep_grey
from ..images import luma_weights
from .pose import PoseFit, beyond_limit, fit_pose, head_crops
from .landmarks import eight_bit_levels, face_landmarks
from .shape import blur_each, check_images, head_radius, per_image

LENS_X = 0.5  # lens centres: the eyes (eye distances from the eye midpoint; y down)
BRIDGE_Y = -0.02  # the bridge's height
TEMPLE = 0.15  # the temples' visible stretch beyond each lens (they turn back towards the ears)
SHADOW = 0.22  # darkening under a rim (soft, offset downwards)
# frame colours on the [0, 1] scale: black, dark brown, dark blue-grey, tortoiseshell, silver, gold
COLOURS = ((0.06, 0.06, 0.06), (0.20, 0.12, 0.08), (0.16, 0.18, 0.22), (0.32, 0.20, 0.12), (0.62, 0.62, 0.64), (0.66, 0.55, 0.32))
METAL = 4  # colours from this index on are thin metal frames


@dataclass
class GlassesStyle:
    """One pair per face, (N,) tensors: lens half-width / half-height / superellipse exponent /
    vertical offset, rim thickness (eye distances), frame colour (N, 3) in [0, 1], lens tint (0 clear,
    0.6 sunglasses)."""

    a: Tensor
    b: Tensor
    p: Tensor
    y: Tensor
    rim: Tensor
    colour: Tensor
    tint: Tensor

    @classmethod
    def draw(cls, n: int, generator: torch.Generator) -> "GlassesStyle":
        u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=generator)  # noqa: E731
        kind = torch.randint(0, len(COLOURS), (n,), generator=generator)
        metal = kind >= METAL
        rim = torch.where(metal, u(0.015, 0.025), u(0.025, 0.05))
        sun = torch.rand(n, generator=generator) < 0.45  # CelebA's "Eyeglasses" are half sunglasses
        tint = torch.where(sun, u(0.55, 0.85), u(0.0, 0.08))
        return cls(u(0.36, 0.44), u(0.21, 0.30), u(2.0, 4.0), u(0.03, 0.09), rim, torch.tensor(COLOURS)[kind], tint)

    def to(self, device) -> "GlassesStyle":
        return GlassesStyle(*(getattr(self, f.name).to(device) for f in fields(self)))

    def row(self, i: int) -> "GlassesStyle":
        """Face ``i``'s pair alone (a batch of one)."""
        return GlassesStyle(*(getattr(self, f.name)[i : i + 1] for f in fields(self)))


def style_for(images: Tensor, landmarks: Tensor) -> GlassesStyle:
    """A style per face drawn from the photo (an 8 x 8 thumbnail of its 8-bit picture) and its landmarks: a photo always
    gets the same pair, whatever its dtype (a uint8 photo, or it / 255 in float32 or float64), every photo its own."""
    images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images  # grey: as its RGB repeat (the batch path's)
    # (the mean of the float values themselves: a block averaging to a half rounded with the dtype's last bits)
    thumbs = F.adaptive_avg_pool2d(eight_bit_levels(images), 8).round().to(torch.uint8).cpu()
    styles = []
    for lm, thumb in zip(landmarks.detach().cpu().float(), thumbs):
        key = hashlib.blake2b(lm.round().numpy().tobytes() + thumb.numpy().tobytes(), digest_size=8).digest()
        styles.append(GlassesStyle.draw(1, torch.Generator().manual_seed(int.from_bytes(key, "little") >> 1)))
    return GlassesStyle(*(torch.cat([getattr(s, f.name) for s in styles]) for f in fields(GlassesStyle)))


def _cover(dist: Tensor, half: Tensor, px: Tensor) -> Tensor:
    """Anti-aliased coverage of a band ``|dist| <= half`` (eye-distance units), ``px`` = one pixel."""
    return ((half - dist.abs()) / px + 0.5).clamp(0, 1)


def _segment(x: Tensor, y: Tensor, x0, x1, y0: float) -> Tensor:
    """Distance to the horizontal segment from (x0, y0) to (x1, y0) (x0 <= x1, numbers or (N, 1, 1))."""
    dx = x - torch.minimum(torch.maximum(x, torch.as_tensor(x0)), torch.as_tensor(x1))
    return torch.sqrt(dx * dx + (y - y0) ** 2)


def _lens_distance(x: Tensor, y: Tensor, cx: float, st: GlassesStyle) -> tuple[Tensor, Tensor]:
    """Approximate distance to a lens outline (eye-distance units) and whether a point is inside."""
    a, b, p, y0 = (t[:, None, None] for t in (st.a, st.b, st.p, st.y))
    r = ((x - cx).abs() / a) ** p + ((y - y0).abs() / b) ** p
    r = r.clamp(min=1e-12) ** (1 / p)
    return (r - 1) * torch.minimum(a, b), r < 1


def frames_coverage(x: Tensor, y: Tensor, px: Tensor, st: GlassesStyle) -> tuple[Tensor, Tensor, Tensor]:
    """(rims + bridge + temples, lens interior, shadow) coverage in [0, 1] on face-frame grids (N, H, W)."""
    half = torch.maximum(st.rim[:, None, None] / 2, 0.5 * px)  # never thinner than a pixel
    rim, inside, shadow = torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x)
    for cx in (-LENS_X, LENS_X):
        d, ins = _lens_distance(x, y, cx, st)
        rim = torch.maximum(rim, _cover(d, half, px))
        inside = torch.maximum(inside, ins.float())
        ds, _ = _lens_distance(x, y - 2.5 * st.rim[:, None, None], cx, st)  # the rim's shadow falls a little below it
        shadow = torch.maximum(shadow, _cover(ds, 2 * half, 3 * px))
    a = st.a[:, None, None]
    inner, outer = LENS_X - 0.97 * a, LENS_X + 0.97 * a
    rim = torch.maximum(rim, _cover(_segment(x, y, -inner, inner, BRIDGE_Y), 0.8 * half, px))
    for sign in (-1.0, 1.0):
        lo, hi = (outer, outer + TEMPLE) if sign > 0 else (-outer - TEMPLE, -outer)
        fade = (1 - ((x.abs() - outer) / TEMPLE).clamp(0, 1)) ** 0.5  # the temple turns away towards the ear
        rim = torch.maximum(rim, _cover(_segment(x, y, lo, hi, -0.02), 0.8 * half, px) * fade)
    y0, b = st.y[:, None, None], st.b[:, None, None]
    gradient = 1.15 - 0.3 * ((y - y0) / b).clamp(-1, 1)  # a lens is a little darker at the top
    return rim, inside * (1 - rim) * gradient, shadow * (1 - rim) * (1 - inside)


def photo_blur(images: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Each photo's blur around the face, as a Gaussian sigma in pixels (N,): the share of the luma
    gradient's energy that survives a further 1 px blur is ``s / sqrt(s^2 + 1)`` for an edge blurred
    by ``s``, so ``s = R / sqrt(1 - R^2)``. ``x``, ``y``: face-frame grids (N, H, W)."""
    luma = images.mean(1, keepdim=True) if images.shape[1] == 1 else (images * luma_weights(images.dtype, images.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    region = ((x.abs() < 0.9) & (y > -0.6) & (y < 1.0)).unsqueeze(1).to(images.dtype)
    def energy(t: Tensor) -> Tensor:
        gx, gy = t[..., :, 1:] - t[..., :, :-1], t[..., 1:, :] - t[..., :-1, :]
        return (gx[..., :-1, :] ** 2 + gy[..., :, :-1] ** 2).mul(region[..., :-1, :-1]).sum((1, 2, 3))
    ratio = (energy(blur_each(luma, [1.0] * len(images))) / energy(luma).clamp(min=1e-12)).clamp(0, 0.99)
    return ratio / (1 - ratio**2).sqrt()


DRAWN_SIGMA = 0.6  # the drawn edges' own softness, pixels

# The light on the face, read off its skin (an ellipse of the face frame from the brows to the chin: centre, half sides
# in eye distances), lights the frames as it lights the face. A face is dim when the 90th percentile of its luma lies
# below DIM (CelebA's 2nd percentile of it; also the floor of the named edits' exposure rule, genaug.engine.exposure,
# which reads it here - that module imports this one); its light is coloured when its
# skin's mean chromaticity (r, g, b summing to 1) leaves the band of SKIN_CHROMA - the 0.5th to 99.5th percentiles of
# 400 utkface_128 and 400 celeba_id200 faces (every skin tone). Within both, the frames keep
# their own colour (bit for bit as before); beyond them, the excess dims or tints them: on a photo at 0.3x exposure
# silver frames drew at 0.62 on skin at 0.15-0.25, glowing; under a red light they stayed grey.
SKIN = (0.0, 0.45, 0.95, 1.1)
DIM = 0.47  # a face is dim when the 90th percentile of its luma lies below this
SKIN_CHROMA = ((0.333, 0.263, 0.147), (0.541, 0.344, 0.337))  # (low, high) of r, g, b


def scene_light(images: Tensor, x: Tensor, y: Tensor, grey: Tensor) -> Tensor:
    """(N, C) factors on each face's frame colour from the light its skin shows (:data:`SKIN`): the exposure below
    :data:`DIM` and, on a colour face, the tint beyond :data:`SKIN_CHROMA`, its luma 1; ones within both. ``images``
    NCHW in [-1, 1]; ``x``, ``y``: face-frame grids (N, H, W); ``grey`` (N,) bool: black-and-white faces."""
    cx, cy, ax, ay = SKIN
    k = max(1, x[0].numel() // 2**16)  # every k-th pixel: a large face's quantile read on at most 2^16 of them
    skin = (((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 < 1).flatten(1)[:, ::k]  # (N, H*W / k)
    v = ((images.float() + 1) / 2).flatten(2)[..., ::k]  # (N, C, H*W / k)
    w = luma_weights(torch.float32, images.device)
    luma = v[:, 0] if v.shape[1] == 1 else (v * w[None, :, None]).sum(1)
    top = torch.nanquantile(torch.where(skin, luma, torch.full_like(luma, float("nan"))), 0.9, dim=1)
    exposure = torch.where(top < DIM, top.clamp(min=1e-3) / DIM, torch.ones_like(top)).nan_to_num(1.0)  # no skin: 1
    if v.shape[1] == 1:
        return exposure[:, None]
    mean = (v * skin[:, None]).sum(2) / skin.sum(1, keepdim=True).clamp(min=1)
    chroma = mean / mean.sum(1, keepdim=True).clamp(min=1e-6)
    low, high = torch.tensor(SKIN_CHROMA, device=images.device)
    tint = chroma / chroma.clamp(min=low, max=high)  # the excess beyond the skins' band
    within = ((chroma >= low) & (chroma <= high)).all(1) | grey | (skin.sum(1) == 0) | (mean.sum(1) < 1e-6)
    tint = torch.where(within[:, None], torch.ones_like(tint), tint / (tint * w).sum(1, keepdim=True))
    return exposure[:, None] * tint


def add_glasses(images: Tensor, strength=1.0, landmarks: Tensor | None = None, framing: str = "auto") -> Tensor:
    """Draw eyeglass frames on each face (``strength`` in [0, 1]: their opacity; 0 = the input).
    ``landmarks`` (N, 5, 2) pixels as :func:`genaug.faces.landmarks.face_landmarks` gives them. A face in a photo much
    larger than its head is drawn on its head's box alone (:func:`genaug.faces.pose.head_crops`), as ``yaw`` and
    ``light`` are: the same frames, without working on every pixel of a 12 MP photo. A face turned beyond
    ``SOURCE_YAW_LIMIT`` (near profile) is left as it is, as :func:`genaug.faces.pose.rotate_yaw` leaves it: frames
    faded there read as grey smudges over the eye and cheek (:func:`glasses_room`)."""
    images = check_images(images)
    n, c, h, w = images.shape
    k = per_image(strength, n, "glasses strength", 0, 1, images.device)
    if not bool((k > 0).any()):
        return images.clone()
    lm = face_landmarks(images, landmarks, framing).float()
    pose = fit_pose(lm)
    st = style_for(images, lm).to(images.device)  # from the whole photo: the same pair whatever is worked on
    k = torch.where(beyond_limit(pose).to(k.device), torch.zeros_like(k), k)  # near profile: left as it is
    boxes = head_crops(pose, h, w, pose.frame.scale + 8)  # the head, an eye distance and the blurs' reach more
    if boxes is None:
        return _draw(images, k, pose, st)
    out = images.clone()
    for i, (t, b, l, r) in enumerate(boxes):
        out[i : i + 1, :, t:b, l:r] = _draw(images[i : i + 1, :, t:b, l:r], k[i : i + 1], pose.in_box(i, l, t), st.row(i))
    return out


def glasses_room(images: Tensor, landmarks: Tensor | None = None, framing: str = "auto") -> Tensor:
    """(N, 2) opacities each face can take below and above 0: (0, 1), or (0, 0) for a face :func:`add_glasses`
    leaves as it is (near profile)."""
    pose = fit_pose(face_landmarks(check_images(images), landmarks, framing))
    return torch.stack([torch.zeros(len(pose.yaw)), (~beyond_limit(pose)).float().cpu()], 1)


def face_is_grey(images: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """(N,) bool: each face's head (face-frame grids ``u``, ``v`` (N, H, W)) is black-and-white, as
    :func:`genaug.grey.is_grey` judges a photo. Judged on the head, not the whole photo: a colour face on a grey backdrop, or small in a
    large grey scene, is a colour face (judged on the photo, its head's box came back grey); a head wholly outside
    the pixels: the whole photo."""
    if images.shape[1] == 1:
        return torch.ones(len(images), dtype=torch.bool, device=images.device)
    head = (head_radius(u, v) < 1).to(images.dtype)
    return torch.where(head.sum((1, 2)) > 0, grey_spread(images, weight=head) <= GREY_TOLERANCE, is_grey(images))


def _draw(images: Tensor, k: Tensor, pose: PoseFit, st: GlassesStyle) -> Tensor:
    """:func:`add_glasses` of a checked batch (or one face's box of a photo) with its faces' poses in its pixels, the
    opacities ``k`` (N,) and the pairs ``st``."""
    c, h, w = images.shape[1:]
    u, v = pose.frame.pixel_grid(h, w)
    grey = face_is_grey(images, u, v)  # a black-and-white photo gets grey frames (the head's box holds the head)
    s = pose.scale.clamp(min=0.5)[:, None, None]  # true eye distance / projected one: vertical lengths
    x, y = u, v / s
    px = (1.25 / pose.frame.scale.clamp(min=1e-3))[:, None, None]  # an edge's soft width (a pixel and a bit), eye distances
    rim, lens, shadow = frames_coverage(x, y, px, st)
    # as sharp as the photo: a blurred face gets blurred frames
    extra = (photo_blur(images, x, y) ** 2 - DRAWN_SIGMA**2).clamp(min=0).sqrt()
    rim, lens, shadow = blur_each(torch.stack([rim, lens, shadow], 1), [e if e > 0.3 else 0.0 for e in extra.tolist()]).unbind(1)
    k = k[:, None, None].to(images.device)
    rim, lens, shadow = (t.to(images.device, images.dtype) * k for t in (rim, lens, shadow))
    base = (images + 1) / 2
    base = base * (1 - SHADOW * shadow - st.tint[:, None, None].to(images.dtype) * lens).clamp(min=0)[:, None]
    colour = st.colour.to(images.dtype) if c == 3 else st.colour.to(images.dtype).mean(1, keepdim=True)
    light = scene_light(images, x, y, grey)  # lit as the face is (ones on a face in normal light: the colour as it is)
    colour = torch.where(light == 1, colour, (colour.float() * light).clamp(0, 1).to(images.dtype))
    out = base * (1 - rim[:, None]) + colour[:, :, None, None] * rim[:, None]
    out = keep_grey(images, (out * 2 - 1).clamp(-1, 1), grey=grey)  # a black-and-white photo gets grey frames
    return torch.where((k == 0)[:, None], images, out.to(images.dtype))  # strength 0: the input, exactly
