"""The user boundary: images in any common format -> model frame, and back.

``to_model_frame`` converts one image (HWC uint8/float numpy, (H, W) or (H, W, 1) grayscale,
RGBA, PIL, CHW tensor) into a CHW float tensor in [-1, 1] at the model's size, cropping the face
box given by the framing. ``paste_back`` resizes the model output to that box and writes only the
*change* into a copy of the original, so the result has the input's type, shape and dtype, the
alpha channel is kept and pixels outside the box are byte-identical.

``regenerate`` / ``delta`` rendering on model-frame batches lives here too (pure functions).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

MIN_SIDE = 16
FRAMINGS = ("auto", "full", "none", "detect")
MODES = ("delta", "regenerate")
_LUMA = (0.299, 0.587, 0.114)
_FLOATS = (np.float16, np.float32, np.float64)


@dataclass
class FrameInfo:
    """How an image was brought into the model frame (enough to paste the result back)."""

    kind: str  # "numpy", "pil" or "tensor"
    shape: tuple[int, ...]  # original shape
    dtype: Any  # original numpy/torch dtype (PIL: its mode)
    layout: str  # "HW", "HWC" or "CHW"
    channels: int  # colour channels without alpha (1 or 3)
    has_alpha: bool
    box: tuple[int, int, int, int]  # left, top, right, bottom in original pixels
    model_in: Tensor  # the model-frame input (C, S, S) in [-1, 1], to compute the change
    alignment: Any = None  # genaug.align.Alignment when the face was detected and aligned
    no_face: bool = False  # framing="detect" found no face: paste_back returns the image unchanged


# ------------------------------------------------------------------ validation
def _fail(msg: str) -> None:
    raise ValueError(msg)


def _check_float_range(t: Tensor, what: str) -> None:
    if not torch.isfinite(t).all():
        _fail(f"{what} contains NaN or inf values")
    lo, hi = float(t.min()), float(t.max())
    if lo < 0.0 or hi > 1.0:
        _fail(f"{what}: float images must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}] "
              "(divide uint8 data by 255, or pass uint8)")


def _to_chw01(image: Any) -> tuple[Tensor, str, Any, str, tuple[int, ...]]:
    """Any supported image -> (float32 CHW tensor in [0, 1] incl. alpha, kind, dtype, layout, shape)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        mode = image.mode
        if mode not in ("L", "RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in mode else "RGB")
        arr = np.array(image)
        t, _, _, layout, shape = _to_chw01(arr)
        return t, "pil", mode, layout, shape
    if isinstance(image, np.ndarray):
        kind, shape, dtype = "numpy", image.shape, image.dtype
        if image.dtype != np.uint8 and image.dtype not in _FLOATS:
            _fail(f"unsupported image dtype {image.dtype}: use uint8 (0..255) or float32 (0..1)")
        if image.ndim == 2:
            layout = "HW"
            t = torch.from_numpy(np.require(image, requirements=["C", "W"]))[None]
        elif image.ndim == 3:
            layout = "HWC"
            if image.shape[2] not in (1, 3, 4):
                _fail(f"HWC image must have 1, 3 or 4 channels, got shape {image.shape}")
            t = torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1)
        else:
            _fail(f"image must be (H, W) or (H, W, C), got an array of rank {image.ndim} with shape {image.shape}")
    elif isinstance(image, Tensor):
        kind, shape, dtype = "tensor", tuple(image.shape), image.dtype
        if image.dtype != torch.uint8 and not image.is_floating_point():
            _fail(f"unsupported tensor dtype {image.dtype}: use uint8 (0..255) or float (0..1)")
        if image.ndim == 2:
            layout, t = "HW", image[None]
        elif image.ndim == 3:
            layout, t = "CHW", image
            if image.shape[0] not in (1, 3, 4):
                _fail(f"CHW tensor must have 1, 3 or 4 channels first, got shape {tuple(image.shape)}")
        else:
            _fail(f"image tensor must be (C, H, W) or (H, W), got shape {tuple(image.shape)} "
                  "(for batches use Engine.augment_tensor)")
        t = t.detach().cpu()
    else:
        _fail(f"unsupported image type {type(image).__name__}: give a numpy array, PIL image or CHW tensor")
    if t.numel() == 0:
        _fail(f"image is empty (shape {tuple(shape)})")
    h, w = t.shape[-2:]
    if min(h, w) < MIN_SIDE:
        _fail(f"image {h}x{w} is too small to hold a face (min side {MIN_SIDE} px)")
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    else:
        t = t.float()
        _check_float_range(t, "image")
    return t, kind, dtype, layout, tuple(shape)


# --------------------------------------------------------------------- framing
def face_box(height: int, width: int, framing_cfg: dict | None, framing: str = "auto") -> tuple[int, int, int, int]:
    """Face box (left, top, right, bottom) for an image of this size.

    ``auto``: the bundle's reference box scaled to the image when the aspect ratio matches the
    bundle's reference frame (e.g. CelebA 178x218), else the centred square. ``full``/``none``/
    ``detect`` (its fallback): the centred square of the whole image.
    """
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {FRAMINGS}, got {framing!r}")
    if framing == "auto" and is_known_frame(height, width, framing_cfg):
        rw, rh = framing_cfg["reference_size"]
        l, t, r, b = framing_cfg["box"]
        sx, sy = width / rw, height / rh
        return round(l * sx), round(t * sy), round(r * sx), round(b * sy)
    side = min(height, width)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def is_known_frame(height: int, width: int, framing_cfg: dict | None) -> bool:
    """True when the image has the aspect ratio of the bundle's reference frame (e.g. CelebA 178x218)."""
    if not (framing_cfg and framing_cfg.get("reference_size") and framing_cfg.get("box")):
        return False
    rw, rh = framing_cfg["reference_size"]
    return abs(width / height - rw / rh) < 0.01 * rw / rh


def _detect(colour: Tensor, bundle: Any, framing: str) -> Any:
    """``detect`` (or ``auto`` on an image that is neither a known frame nor already model-sized,
    when dlib is installed): the largest face aligned by :mod:`genaug.align` as
    ``(crop in [0, 1], Alignment)``, else None."""
    from .identity import faces_extra_available

    h, w = colour.shape[-2:]
    known = is_known_frame(h, w, getattr(bundle, "framing", None)) or h == w == bundle.image_size
    if framing == "auto" and (known or not faces_extra_available()):
        return None
    from .align import get_aligner

    found = get_aligner(bundle.image_size).align(colour)
    return found[0] if found else None


def _colour(t: Tensor, channels: int) -> Tensor:
    """(C, H, W) or (N, C, H, W) with C in {1, 3} -> ``channels`` channels."""
    c = t.shape[-3]
    if c == channels:
        return t
    if channels == 3:
        return t.expand(*t.shape[:-3], 3, *t.shape[-2:])
    w = torch.tensor(_LUMA, dtype=t.dtype, device=t.device).reshape(3, 1, 1)
    return (t * w).sum(-3, keepdim=True)


def to_model_frame(image: Any, bundle: Any, framing: str = "auto") -> tuple[Tensor, FrameInfo]:
    """One user image -> (CHW float32 tensor in [-1, 1] at the model's size/channels, FrameInfo)."""
    t, kind, dtype, layout, shape = _to_chw01(image)
    has_alpha = t.shape[0] == 4
    colour = t[:3] if has_alpha else t
    h, w = colour.shape[-2:]
    detected = _detect(colour, bundle, framing) if framing in ("auto", "detect") else None
    if detected is not None:
        crop, al = detected
        x = _colour(crop, bundle.channels) * 2 - 1
        box = tuple(int(v) for v in al.face.box)
        return x.contiguous(), FrameInfo(kind, shape, dtype, layout, colour.shape[0], has_alpha, box, x, alignment=al)
    box = face_box(h, w, getattr(bundle, "framing", None), framing)
    l, top, r, b = box
    crop = colour[:, top:b, l:r][None]
    size = bundle.image_size
    crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    x = _colour(crop.clamp(0, 1), bundle.channels) * 2 - 1
    info = FrameInfo(kind, shape, dtype, layout, colour.shape[0], has_alpha, box, x, no_face=framing == "detect")
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
    full = _to_chw01(original)[0].clone()
    colour = full[: info.channels]
    if info.no_face:  # framing="detect" found no face: the image comes back unchanged
        return _from_chw01(full, original, info)
    if info.alignment is not None:  # detected face: inverse warp through a feathered mask
        from .align import get_aligner

        change = _colour((model_out.detach().float().cpu() - info.model_in.cpu()) / 2, info.channels)
        full[: info.channels] = get_aligner(info.alignment.size).paste(colour, change, info.alignment)
        return _from_chw01(full, original, info)
    l, t, r, b = info.box
    change = (model_out.detach().float().cpu() - info.model_in.cpu()) / 2
    change = F.interpolate(change[None], size=(b - t, r - l), mode="bilinear", align_corners=False)[0]
    change = _colour(change, info.channels)
    m = _feather(b - t, r - l, (l > 0, t > 0, r < colour.shape[2], b < colour.shape[1]))
    colour[:, t:b, l:r] = (colour[:, t:b, l:r] + m * change).clamp(0, 1)
    return _from_chw01(full, original, info)


def _from_chw01(t: Tensor, original: Any, info: FrameInfo) -> Any:
    """Inverse of :func:`_to_chw01`: back to the original's type, layout and dtype."""
    if info.kind == "tensor":
        res = t if info.layout == "CHW" else t[0]
        if info.dtype == torch.uint8:
            res = (res * 255).round().to(torch.uint8)
        return res.to(dtype=info.dtype, device=original.device)
    arr = t.permute(1, 2, 0) if info.layout == "HWC" else t[0]
    if info.kind == "pil" or info.dtype == np.uint8:
        arr_np = (arr * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        if info.kind == "numpy":
            return arr_np
        from PIL import Image

        return Image.fromarray(arr_np)
    return arr.numpy().astype(info.dtype, copy=False)


def to_model_batch(images: list[Any], bundle: Any, framing: str = "auto") -> tuple[Tensor, list[FrameInfo]]:
    """Several user images -> (N, C, S, S) batch and their FrameInfos."""
    if len(images) == 0:
        raise ValueError("no images given (empty batch)")
    frames = [to_model_frame(im, bundle, framing) for im in images]
    return torch.stack([f[0] for f in frames]), [f[1] for f in frames]


# ---------------------------------------------------------------------- render
def render(x: Tensor, base: Tensor, edited: Tensor, mode: str = "delta", local: float | Tensor = 0.0) -> Tensor:
    """Combine a model-frame input ``x`` with ``base = G(latent)`` and ``edited = G(edited latent)``.

    ``regenerate``: ``edited``; ``delta``: ``clamp(x + edited - base, -1, 1)`` — keeps what the
    generator cannot draw. ``local`` (``delta`` only; a threshold, or one per row; 0 = off): where
    the edit changes the face by about that much or more (:func:`local_mask`), the photo's own
    residual ``x - base`` is dropped too, so there the result is ``edited`` — what the edit removes
    (glasses rims) does not survive from the photo. (Edit strength acts on the latent:
    :func:`genaug.sweep.apply_edits`.)
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


def local_mask(change: Tensor, tau: Tensor) -> Tensor:
    """(N, 1, H, W) weights in [0, 1]: the mean absolute ``change`` over channels divided by the
    per-row threshold ``tau`` (N,), clipped, then smoothed by a Gaussian of 1.5 px per 64 px."""
    m = change.abs().sum(1, keepdim=True)
    m = m.mul_((1 / (change.shape[1] * tau)).reshape(-1, 1, 1, 1)).clamp_(0, 1)
    return gaussian_blur(m, 1.5 * change.shape[-1] / 64).clamp_(0, 1)


def gaussian_blur(m: Tensor, sigma: float) -> Tensor:
    """A Gaussian blur of (N, C, H, W) with reflected borders, kernel size 2 * ceil(2 sigma) + 1
    (torchvision's ``gaussian_blur``, separable: a few in-place shifted sums instead of a 2-d convolution)."""
    half = math.ceil(2 * sigma)
    taps = torch.exp(-0.5 * (torch.linspace(-half, half, 2 * half + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).tolist()
    h, w = m.shape[-2:]
    padded = F.pad(m, (half, half, half, half), mode="reflect")
    rows = padded[..., :, :w] * taps[0]
    for i in range(1, len(taps)):
        rows.add_(padded[..., :, i : i + w], alpha=taps[i])
    out = rows[..., :h, :] * taps[0]
    for i in range(1, len(taps)):
        out.add_(rows[..., i : i + h, :], alpha=taps[i])
    return out
