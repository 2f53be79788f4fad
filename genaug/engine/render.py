"""The model frame: user images (any format of :mod:`genaug.images`) -> model frame, and back.

``to_model_frame`` converts one image into a CHW float tensor in [-1, 1] at the model's size, cropping the face
box given by the framing. ``paste_back`` resizes the model output to that box and writes only the
*change* into a copy of the original, so the result has the input's type, shape and dtype, the
alpha channel is kept and pixels outside the box are byte-identical.

``regenerate`` / ``delta`` rendering on model-frame batches lives here too (pure functions).
"""
from __future__ import annotations

import functools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..faces.framing import face_box, is_known_frame
from ..images import FrameInfo, from_chw01, luma_weights, match_channels, to_chw01
from .colour import apply_colour, colour_only, keep_grey
from .exposure import expose, light_gain, restore, unlift
from .reframe import own_frame, reframe, warn_rule_frames
from .regions import region_mask

MODES = ("delta", "regenerate")


def _searches(h: int, w: int, bundle: Any, framing: str) -> bool:
    """True when this framing looks for the face with dlib: ``detect``, or ``auto`` on an image that
    is neither a known frame nor already model-sized, when the ``faces`` extra is installed."""
    from ..faces.identity import faces_extra_available

    if framing != "auto":
        return framing == "detect"
    known = is_known_frame(h, w, getattr(bundle, "framing", None)) or h == w == bundle.image_size
    return not known and faces_extra_available()


def _detect(colour: Tensor, bundle: Any, framing: str) -> Any:
    """Where :func:`_searches`: the largest face aligned by :mod:`genaug.faces.align` as
    ``(crop in [0, 1], Alignment)``, else None."""
    if not _searches(*colour.shape[-2:], bundle, framing):
        return None
    from ..faces.align import get_aligner

    found = get_aligner(bundle.image_size).align(colour)
    return found[0] if found else None


def to_model_frame(image: Any, bundle: Any, framing: str = "auto") -> tuple[Tensor, FrameInfo]:
    """One user image -> (CHW float32 tensor in [-1, 1] at the model's size/channels, FrameInfo)."""
    t, kind, dtype, layout, shape = to_chw01(image)
    has_alpha = t.shape[0] == 4
    colour = t[:3] if has_alpha else t
    h, w = colour.shape[-2:]
    detected = _detect(colour, bundle, framing) if framing in ("auto", "detect") else None
    if detected is not None:
        crop, al = detected
        x = match_channels(crop, bundle.channels) * 2 - 1
        box = tuple(int(v) for v in al.face.box)
        return x.contiguous(), FrameInfo(kind, shape, dtype, layout, colour.shape[0], has_alpha, box, x, alignment=al)
    box = face_box(h, w, getattr(bundle, "framing", None), framing)
    l, top, r, b = box
    crop = colour[:, top:b, l:r][None]
    size = bundle.image_size
    crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    x = match_channels(crop.clamp(0, 1), bundle.channels) * 2 - 1
    guessed = framing == "auto" and _searches(h, w, bundle, framing)  # looked for a face, found none
    info = FrameInfo(kind, shape, dtype, layout, colour.shape[0], has_alpha, box, x, no_face=framing == "detect", guessed=guessed)
    return x.contiguous(), info


def _feather(h: int, w: int, inner: tuple[bool, bool, bool, bool], frac: float = 0.12) -> Tensor:
    """(1, h, w) weights that ramp from ~0 to 1 over ``frac`` of the box at the sides of the box
    that lie inside the image (left, top, right, bottom), so pasted edits leave no visible seam."""
    ys, xs = torch.ones(h), torch.ones(w)
    for ramp_dim, n_px, first, last in ((ys, h, inner[1], inner[3]), (xs, w, inner[0], inner[2])):
        n = max(1, round(n_px * frac))
        r = torch.linspace(0, 1, n + 2)[1:-1]
        if first:
            ramp_dim[:n] = torch.minimum(ramp_dim[:n], r)
        if last:
            ramp_dim[-n:] = torch.minimum(ramp_dim[-n:], r.flip(0))
    return (ys[:, None] * xs[None, :])[None]


def paste_back(model_out: Tensor, original: Any, info: FrameInfo) -> Any:
    """Write a model-frame result (C, S, S) in [-1, 1] back into a copy of ``original``: only the
    change (``model_out - info.model_in``), resized to the face box, is added, so the original's
    detail stays and unchanged pixels stay as they were. Where the box lies inside the image its
    border is feathered, so the edit fades out instead of ending in a seam. A detected face
    (``info.alignment``) goes back through the inverse warp; ``info.no_face``: returned unchanged.
    """
    full = to_chw01(original)[0].clone()
    colour = full[: info.channels]
    if info.no_face:  # framing="detect" found no face: the image comes back unchanged
        return from_chw01(full, original, info)
    if info.alignment is not None:  # detected face: inverse warp through a feathered mask
        from ..faces.align import get_aligner

        change = match_channels((model_out.detach().float().cpu() - info.model_in.cpu()) / 2, info.channels)
        full[: info.channels] = get_aligner(info.alignment.size).paste(colour, change, info.alignment)
        return from_chw01(full, original, info)
    l, t, r, b = info.box
    change = (model_out.detach().float().cpu() - info.model_in.cpu()) / 2
    change = resize_change(change[None], (b - t, r - l))[0]
    change = match_channels(change, info.channels)
    m = _feather(b - t, r - l, (l > 0, t > 0, r < colour.shape[2], b < colour.shape[1]))
    colour[:, t:b, l:r] = (colour[:, t:b, l:r] + m * change).clamp(0, 1)
    return from_chw01(full, original, info)


def recolour(original: Any, transform: Tensor, info: FrameInfo) -> Any:
    """A colour edit (:mod:`genaug.engine.colour`): the whole photo through the colour ``transform``
    (C, 3) fitted on its model frame - the background shifts with the face, texture stays exact.
    A one-channel photo goes through it as a grey RGB photo (its luminance change)."""

    full = to_chw01(original)[0].clone()
    full[: info.channels] = recolour_channels(full[: info.channels], transform)
    return from_chw01(full, original, info)


def recolour_channels(colour: Tensor, transform: Tensor) -> Tensor:
    """:func:`recolour` of a photo's colour channels (C, H, W) in [0, 1]: the same channels through ``transform``
    (a one-channel photo as a grey RGB photo, its luminance change)."""
    photo = match_channels(colour, transform.shape[0])[None] * 2 - 1
    out = keep_grey(photo, apply_colour(photo, transform[None]))[0]
    return (match_channels(out, colour.shape[0]) + 1) / 2


def apply_control(control: Any, value: float, original: Any, info: FrameInfo,
                  drawn: tuple[float, float] | None = None, bundle: Any = None) -> tuple[Any, float]:
    """An image-space control (:mod:`genaug.faces.controls`) applied to the FULL photo at its own
    resolution (not a model-frame change pasted back): the face is placed by the detected 5 landmarks
    (``info.alignment``) or by the framing rule's landmarks mapped into the face box (refined to the face's own by
    dlib's 5-point model where the ``faces`` extra is installed; without it, said once off ``bundle``'s own frame:
    :func:`genaug.engine.reframe.warn_rule_frames`). Returns the photo and the value applied: the value
    fitted to what the face allows (:meth:`ImageControl.fit`: clipped, or for a value drawn at random from ``drawn`` =
    (low, high), scaled into it; 0 when the render changed nothing). Where no face was placed (``info.no_face``, or ``info.guessed``: ``auto`` framing
    looked for one and found none) the photo comes back unchanged (the value as given; landmarks out of
    order or outside the photo: value 0): a rendered light or turn needs a face
    where it is drawn (on a texture or an undetected face the framing rule's guess paints a ghost face)."""
    from ..faces.controls import GEOMETRIC_CONTROLS
    from ..faces.identity import faces_extra_available
    from ..faces.landmarks import box_landmarks, landmarks_in_order, landmarks_inside, place_landmarks, taken_whole
    from ..faces.warp import span

    full = to_chw01(original)[0].clone()
    if info.no_face or info.guessed:  # (the engine reports such an edit as not applied: ``Engine.unplaced``)
        return from_chw01(full, original, info), float(value)
    colour = full[: info.channels]
    x = colour[None] * 2 - 1
    if info.alignment is not None:
        landmarks = torch.as_tensor(info.alignment.face.landmarks, dtype=torch.float32)[None]
    elif faces_extra_available():  # a known frame or a photo taken whole: placed by dlib where installed
        # a known frame's shape at another size (a 900x1102 photo is CelebA-shaped) whose face lies elsewhere than the
        # box: its detected face (the box's guess painted a light or glasses on the background); CelebA's own 178x218
        # crops are not searched (the box is right there, as the rule's warning assumes)
        moved = (None if bundle is None or taken_whole(info.box, *x.shape[-2:]) or own_frame(bundle, info)
                 else reframe(original, bundle, info))
        if moved is not None:
            landmarks = torch.as_tensor(moved[1].alignment.face.landmarks, dtype=torch.float32)[None]
        else:
            landmarks = place_landmarks(x, info.box)
    else:  # else by the framing rule, which misplaces a face framed unlike the bundle's frame
        warn_rule_frames(bundle, info, [control.name])
        landmarks = box_landmarks(info.box)
    if not bool(landmarks_in_order(landmarks)[0] & landmarks_inside(landmarks, *x.shape[-2:])[0]):
        return from_chw01(full, original, info), 0.0  # not a face's layout (none in 6,200 real detections), or not inside
    out, applied = control.fit_apply(x, value, landmarks=landmarks, drawn=drawn)
    out = out[0]
    same = out == x[0]
    moved = ~same.all(0)
    if not bool(moved.any()):  # faded out on this face (near profile): applied as nothing
        return from_chw01(full, original, info), 0.0
    # pixels the control left as they were keep the photo's own values (a float photo's, not their trip through [-1, 1]),
    # worked out in the box of the pixels it changed (a face in a 12 MP photo: not four full-size float copies)
    top, bottom, left, right = span(moved[None])
    box = (slice(None), slice(top, bottom), slice(left, right))
    colour[box] = torch.where(same[box], colour[box], ((out[box] + 1) / 2).clamp(0, 1))
    if info.has_alpha and control.name in GEOMETRIC_CONTROLS:  # a cut-out's alpha moves with the pixels it covers
        alpha = full[info.channels :][None].expand(-1, 3, -1, -1) * 2 - 1
        full[info.channels] = ((control.apply(alpha, applied, landmarks=landmarks)[0, 0] + 1) / 2).clamp(0, 1)
    return from_chw01(full, original, info), float(applied[0])


def to_model_batch(images: list[Any], bundle: Any, framing: str = "auto") -> tuple[Tensor, list[FrameInfo]]:
    """Several user images -> (N, C, S, S) batch and their FrameInfos."""
    if len(images) == 0:
        raise ValueError("no images given (empty batch)")
    frames = [to_model_frame(im, bundle, framing) for im in images]
    return torch.stack([f[0] for f in frames]), [f[1] for f in frames]


def check_model_batch(x: Tensor, channels: int, size: int, device: torch.device) -> Tensor:
    """A model-frame batch (N, ``channels``, ``size``, ``size``) in [-1, 1], checked (a ``ValueError`` naming what is
    wrong), as float32 on ``device``."""
    if not isinstance(x, Tensor):
        raise ValueError(f"expected a tensor batch (N, C, S, S), got {type(x).__name__}")
    want = (channels, size, size)
    if x.ndim != 4 or tuple(x.shape[1:]) != want:
        raise ValueError(f"expected a batch of shape (N, {want[0]}, {want[1]}, {want[2]}) in [-1, 1], got {tuple(x.shape)} "
                         "(use Engine.augment for images of any size)")
    if x.shape[0] == 0:
        raise ValueError("empty batch (N = 0)")
    if not x.is_floating_point():
        raise ValueError(f"batch must be a float tensor in [-1, 1], got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError("batch contains NaN or inf values")
    if x.min() < -1.001 or x.max() > 1.001:
        raise ValueError(f"batch values must be in [-1, 1], got [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    return x.to(device, torch.float32)


# ---------------------------------------------------------------------- render
def render(x: Tensor, base: Tensor, edited: Tensor, mode: str = "delta", local: float | Tensor = 0.0) -> Tensor:
    """Combine a model-frame input ``x`` with ``base = G(latent)`` and ``edited = G(edited latent)``.

    ``regenerate``: ``edited``; ``delta``: ``clamp(x + edited - base, -1, 1)`` — keeps what the
    generator cannot draw. ``local`` (``delta`` only; a threshold, or one per row; 0 = off): where
    the edit changes the face by about that much or more (:func:`local_mask`), the photo's own
    residual ``x - base`` is dropped too, so there the result is ``edited`` — what the edit removes
    (glasses rims) does not survive from the photo. (Edit strength acts on the latent:
    :func:`genaug.engine.edits.apply_edits`.)
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    change = edited - base
    if mode == "regenerate":
        return (base + change).clamp(-1, 1)
    out = x + change
    # the thresholds come from the host (the bundle's table): checked and selected there, no device sync
    tau = torch.as_tensor(local, dtype=torch.float32, device="cpu").reshape(-1)
    if tau.numel() not in (1, len(x)) or not bool(torch.all(tau >= 0)):
        raise ValueError(f"local must be a non-negative number or one per row ({len(x)}), got {tau.numel()} values")
    tau = tau.expand(len(x))
    on = tau > 0
    if bool(on.any()):
        rows = on.nonzero().flatten().to(x.device)
        out[rows] += local_mask(change[rows], tau[on].to(x.device, x.dtype)) * (base[rows] - x[rows])
    return out.clamp(-1, 1)


DRIFT_DROPPED = 0.5  # the share of a brightness-only edit's frame-wide tone drift dropped (luma_only). All of it left
# the patches faintest but took smile removal's edit success from 82 to 79 % (add 89 -> 81 %; 300 celeba_id200 faces):
# the attribute judge reads part of that drift as the smile. Half: 86 / 81 %, the patches halved.


def resize_change(change: Tensor, size: tuple[int, int]) -> Tensor:
    """A rendered change (N, C, h, w) resized to ``size`` bilinearly, channel by channel: the 3-channel float32
    bilinear kernel's result depends on the torch thread count (up to 5e-7, a level of an 8-bit photo now and then);
    the one-channel kernel's does not. What every paste back resizes with (any layout: a channels_last change is copied)."""
    n, c = change.shape[:2]
    shape = (n * c, 1, *change.shape[2:])
    flat = change.view(shape) if change.is_contiguous() else change.reshape(shape)  # (a view: no reshape operation)
    return F.interpolate(flat, size=size, mode="bilinear", align_corners=False).view(n, c, *size)


def luma_only(x: Tensor, out: Tensor, weight: Tensor | None = None) -> Tensor:
    """A ``luma`` edit (:class:`genaug.bundle.EditRecipe`): the change ``out - x`` of images (N, 3, H, W),
    one scale for both) reduced to its luma, less the part of it a tone change of the whole frame explains (a line in
    the photo's luma, least squares over the frame), and added to every channel alike — the photo keeps its own
    colour and brightness, the generator's tints and colour blotches do not reach it, and only ``1 - DRIFT_DROPPED`` of
    its drift of the face's brightness (``smile`` drew light faces greyer, by up to 13 levels, and dark ones lighter: a
    patch where its region ends).
    ``weight`` (N,) in [0, 1]: per row, how much of the change's colour and drift is dropped (default: all). Not
    clamped. One channel: ``out``."""
    if x.shape[1] != 3:
        return out
    w = luma_weights(x.dtype, x.device)
    change = out - x
    y = torch.tensordot(change, w, dims=([1], [0])).unsqueeze(1)  # (N, 1, H, W)
    lum = torch.tensordot(x, w, dims=([1], [0])).unsqueeze(1)
    lum = lum - lum.mean((2, 3), keepdim=True)
    slope = (lum * y).sum((2, 3), keepdim=True) / (lum * lum).sum((2, 3), keepdim=True).clamp_min(1e-12)
    drift = torch.addcmul(y.mean((2, 3), keepdim=True), slope, lum).mul_(DRIFT_DROPPED)
    drop = change.sub_(y).add_(drift)  # the change's colour and (part of) its drift
    if weight is not None:
        drop.mul_(weight.to(drop.dtype).reshape(-1, 1, 1, 1))
    return out - drop


def within_region(x: Tensor, out: Tensor, masks: Tensor) -> Tensor:
    """The change ``out - x`` of images (N, C, H, W) kept inside each row's region: ``x + masks * (out - x)``
    with ``masks`` (N, 1, H, W) from :func:`region_mask` (in place on ``out``; one dtype for all three)."""
    return torch.lerp(x, out, masks, out=out)


def render_recipes(x: Tensor, base: Tensor, edited: Tensor, recipes: list, mode: str) -> Tensor:
    """:func:`render` of rows edited through ``recipes`` (one :class:`genaug.bundle.EditRecipe` per row), each as its
    recipe says in ``delta`` mode: local regeneration, a colour edit as the photo's own pixels through a colour
    transform (the skin's hue kept unless the edit is a white balance), a brightness-only edit keeping the photo's
    colour, a regional one kept where it belongs on the face; a grey photo stays grey. A named (not colour) edit of a
    dim, over-exposed or coloured-light face is blended at a normal exposure and light and mapped back
    (:mod:`genaug.engine.exposure`)."""
    if mode != "delta":  # the generator's face, drawn from a lifted latent (engine.exposure.lift): at the photo's light
        return unlift(x, _render_recipes(x, base, edited, recipes, mode), low=-1.0)
    named = [i for i, r in enumerate(recipes) if not r.colour]  # (the gain read on these rows alone: colour edits skip it)
    gain = torch.ones(len(recipes), x.shape[1], dtype=x.dtype, device=x.device)
    if named:
        gain[named] = light_gain(x[named], low=-1.0)
    rows = (gain != 1).any(1).nonzero().flatten().tolist()
    if not rows:
        return _render_recipes(x, base, edited, recipes, mode)
    xe = x.clone()
    xe[rows] = expose(x[rows], gain[rows], low=-1.0)
    out = _render_recipes(xe, base, edited, recipes, mode)
    out[rows] = restore(x[rows], xe[rows], out[rows], gain[rows], low=-1.0)
    return out


def _render_recipes(x: Tensor, base: Tensor, edited: Tensor, recipes: list, mode: str) -> Tensor:
    local = torch.tensor([r.regenerate for r in recipes], dtype=torch.float32)
    out = render(x, base, edited, mode, local)
    colour = [i for i, r in enumerate(recipes) if r.colour]
    if colour and mode == "delta":
        hue = [float(recipes[i].hue) for i in colour]  # white balances: the skin's hue turns with the photo's
        out[colour] = colour_only(x[colour], out[colour], torch.tensor(hue, device=x.device) if any(hue) else None)
    luma = [i for i, r in enumerate(recipes) if r.luma]
    if luma and mode == "delta":
        out[luma] = luma_only(x[luma], out[luma]).clamp_(-1, 1)
    regional = [i for i, r in enumerate(recipes) if r.region is not None]
    if regional and mode == "delta":
        h, w = x.shape[-2:]
        masks = torch.stack([region_mask(recipes[i].region, h, w, out.dtype, out.device) for i in regional])[:, None]
        out[regional] = within_region(x[regional], out[regional], masks)
    return keep_grey(x, out)


LOCAL_SIGMA = 1.5  # local-regeneration mask smoothing: Gaussian sigma in px per 64 px of width


def local_mask(change: Tensor, tau: Tensor, scratch: bool = False) -> Tensor:
    """(N, 1, H, W) weights in [0, 1]: the mean absolute ``change`` over channels divided by the
    per-row threshold ``tau`` (N,; 0 = no mask), clipped, then smoothed by about a Gaussian of 1.5 px
    per 64 px. ``scratch``: ``change`` is a temporary the function may overwrite (saves a copy).
    (:func:`local_mask_of` with :func:`mask_weights`.)"""
    magnitude = change.abs_() if scratch else change.abs()
    return local_mask_of(magnitude, mask_weights(tau, change.shape[1]).to(change.device, change.dtype))


def mask_weights(tau: Tensor, channels: int) -> Tensor:
    """(N, 1, channels) weights of :func:`local_mask_of` for per-row thresholds ``tau`` (N,): the
    mean over channels and 2x2 blocks divided by ``tau``; 0 where ``tau`` is 0 (no mask)."""
    tau = torch.as_tensor(tau)
    return torch.where(tau > 0, 1 / (4 * channels * tau), 0.0).reshape(-1, 1, 1).repeat(1, 1, channels)


def local_mask_of(magnitude: Tensor, weights: Tensor) -> Tensor:
    """:func:`local_mask` from the absolute change (N, C, H, W) and :func:`mask_weights` (N, 1, C)
    (the batch path keeps those per edit in a table), at half resolution: the weighted sum over
    channels and 2x2 blocks, clipped to [0, 1], is blurred there and brought back by bilinear
    upsampling, the blur and the upsampling as two small matrix products (:func:`_smoothing`; the 2x2
    mean and the upsampling count in the smoothing, so the whole is about a 1.5 px Gaussian at 64 px).
    Both render paths (the engine's :func:`render` and the batch path's
    :func:`genaug.engine.batch_edits.blend`) come here. ``magnitude`` is not changed."""
    n, c, h, w = magnitude.shape
    m = torch.bmm(weights, magnitude.reshape(n, c, h * w)).reshape(n, 1, h, w)  # weighted sum over channels
    if h % 2 or w % 2:  # odd sides: the last row / column is repeated to make whole 2x2 blocks
        m = F.pad(m, (0, w % 2, 0, h % 2), mode="replicate")
    m = torch.add(m[..., 0::2, :], m[..., 1::2, :])
    m = torch.add(m[..., 0::2], m[..., 1::2]).clamp_(0, 1)  # (N, 1, H/2, W/2): over 2x2 blocks
    sigma = LOCAL_SIGMA * w / 64
    rows = _smoothing(h, sigma, magnitude.dtype, magnitude.device)
    cols = rows if w == h else _smoothing(w, sigma, magnitude.dtype, magnitude.device)
    return torch.matmul(rows, torch.matmul(m, cols.T)).clamp_(0, 1)


@functools.lru_cache(maxsize=64)
def _smoothing(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(size, ceil(size / 2)) matrix: a Gaussian blur on the half-resolution grid (reflected
    borders, as torchvision's ``gaussian_blur``) followed by bilinear upsampling to ``size``
    (``F.interpolate(..., scale_factor=2, mode="bilinear", align_corners=False)``).
    The half-resolution sigma is what is left of ``sigma`` (full-resolution px) after the 2x2
    average (variance 1/4 px^2) and the bilinear upsampling (2/3 px^2)."""
    half_size = (size + 1) // 2
    sigma_half = math.sqrt(max(sigma**2 - 0.25 - 2 / 3, 0.0)) / 2
    blur = torch.eye(half_size, dtype=torch.float64)
    if sigma_half > 1e-3:
        reach = math.ceil(3 * sigma_half)
        taps = torch.exp(-0.5 * (torch.arange(-reach, reach + 1, dtype=torch.float64) / sigma_half) ** 2)
        taps /= taps.sum()
        blur = torch.zeros(half_size, half_size, dtype=torch.float64)
        period = max(2 * (half_size - 1), 1)
        for i in range(half_size):
            for k in range(-reach, reach + 1):
                j = (i + k) % period
                blur[i, min(j, period - j)] += taps[k + reach]
    up = torch.zeros(size, half_size, dtype=torch.float64)
    for y in range(size):
        src = min(max((y + 0.5) / 2 - 0.5, 0.0), half_size - 1.0)
        i0 = math.floor(src)
        i1 = min(i0 + 1, half_size - 1)
        up[y, i0] += 1 - (src - i0)
        up[y, i1] += src - i0
    return (up @ blur).to(device, dtype)
