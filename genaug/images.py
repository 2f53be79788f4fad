"""Images at the user boundary: any common format (HWC uint8/float numpy, (H, W) or (H, W, 1)
grayscale, RGBA, PIL, CHW tensor) -> a float CHW tensor in [0, 1], and back to the original's type,
layout and dtype. :class:`FrameInfo` records how an image was brought into the model frame."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

MIN_SIDE = 16
LUMA = (0.299, 0.587, 0.114)  # Rec. 601 luma weights (grey conversion, brightness-only edits, light)
_FLOATS = (np.float16, np.float32, np.float64)
FLOAT_OVERSHOOT = 0.25  # float input this far outside [0, 1] (interpolation ringing) is clipped, not refused


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
    alignment: Any = None  # genaug.faces.align.Alignment when the face was detected and aligned
    no_face: bool = False  # framing="detect" found no face: paste_back returns the image unchanged
    guessed: bool = False  # framing="auto" looked for a face and found none: the box is the centre-square guess


# a batch given where one image goes: the front ends that take batches
BATCHES = ("a batch? one image per call here; for a batch: images= in an A.Compose call (N, H, W, C), "
           "genaug.BatchFaceAug (N, C, H, W)")


def _fail(msg: str) -> None:
    raise ValueError(msg)


def needs_clipping(lo: float, hi: float, what: str) -> bool:
    """Judge float input by its range: values within ``FLOAT_OVERSHOOT`` of [0, 1] (the ringing of a
    cubic or Lanczos resize or rotation) are to be clipped (True), further out (or NaN) an error."""
    if not (-FLOAT_OVERSHOOT <= lo and hi <= 1.0 + FLOAT_OVERSHOOT):  # NaN fails both
        _fail(f"{what}: float images must be in [0, 1] (values in [0, 1] without NaN), got [{lo:.3g}, {hi:.3g}] "
              "(divide uint8 data by 255, or pass uint8; put Normalize after genaug)")
    return lo < 0.0 or hi > 1.0


def _check_float_range(t: Tensor, what: str) -> Tensor:
    """``t`` clamped to [0, 1] as :func:`needs_clipping` judges it."""
    if not torch.isfinite(t).all():
        _fail(f"{what} contains NaN or inf values")
    return t.clamp(0.0, 1.0) if needs_clipping(float(t.min()), float(t.max()), what) else t


def grey_white(im: Any) -> float:
    """The pixel value that reads as white in a PIL image with integer or float grey pixels ("I;16*", "I", "F"):
    65535 for "I;16*" and for "I" / "F" above 255; 1 for "F" within [0, 1]; else 255. :func:`to_chw01` reads such
    an image by it and :func:`from_chw01` writes the result back by the same value, so the scale is kept."""
    a = np.asarray(im, dtype=np.float64)
    top = float(np.nanmax(a)) if a.size and not np.isnan(a).all() else 0.0
    if im.mode == "F" and top <= 1.0:
        return 1.0
    return 65535.0 if im.mode.startswith("I;16") or top > 255 else 255.0


def _grey01(im: Any) -> np.ndarray:
    """A PIL "I;16*", "I" or "F" image as float32 (H, W) in [0, 1], scaled by :func:`grey_white` (NaN as black)."""
    a = np.asarray(im, dtype=np.float64) / grey_white(im)
    return np.clip(np.nan_to_num(a), 0.0, 1.0).astype(np.float32)


def eight_bit(im: Any) -> Any:
    """A PIL image with integer or float grey pixels as an 8-bit "L" image, scaled (PIL's own conversion
    clips them to white or black): "I;16*" (16-bit PNG / TIFF) and "I" above 255 by 1/257; "F" (32-bit float
    TIFF) as [0, 1] when its values lie there, else as 0..255 (above 255: by 1/257). Other images as they are."""
    if not im.mode.startswith(("I", "F")):
        return im
    from PIL import Image

    return Image.fromarray(np.rint(_grey01(im) * 255.0).astype(np.uint8))


def to_chw01(image: Any) -> tuple[Tensor, str, Any, str, tuple[int, ...]]:
    """Any supported image -> (float32 CHW tensor in [0, 1] incl. alpha, kind, dtype, layout, shape). A float32
    image's tensor can be a view of it: clone it before writing into it."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        mode = image.mode
        if mode.startswith(("I", "F")):  # 16-bit / 32-bit grey: read unrounded, written back in its mode and scale
            arr = _grey01(image)
        else:
            if mode not in ("L", "RGB", "RGBA"):
                image = image.convert("RGBA" if "A" in mode else "RGB")
            arr = np.array(image)
        t, _, _, layout, shape = to_chw01(arr)
        return t, "pil", mode, layout, shape
    if isinstance(image, np.ndarray):
        kind, shape, dtype = "numpy", image.shape, image.dtype
        if not image.dtype.isnative:  # big-endian floats (FITS, some HDF5 / raw files): the same values, native order
            image = image.astype(image.dtype.newbyteorder("="))
        if image.dtype != np.uint8 and image.dtype not in _FLOATS:
            _fail(f"unsupported image dtype {image.dtype}: use uint8 (0..255) or float32 (0..1)")
        if image.ndim == 2:
            layout = "HW"
            t = torch.from_numpy(np.require(image, requirements=["C", "W"]))[None]
        elif image.ndim == 3:
            layout = "HWC"
            if image.shape[2] not in (1, 3, 4):
                hint = (" (it looks like CHW: albumentations and genaug take HWC arrays, image.transpose(1, 2, 0))"
                        if image.shape[0] in (1, 3, 4) else "")
                _fail(f"HWC image must have 1, 3 or 4 channels, got shape {image.shape}{hint}")
            t = torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1)
        else:
            batch = f" ({BATCHES})" if image.ndim == 4 else ""
            _fail(f"image must be (H, W) or (H, W, C), got an array of rank {image.ndim} with shape {image.shape}{batch}")
    elif isinstance(image, Tensor):
        kind, shape, dtype = "tensor", tuple(image.shape), image.dtype
        if image.device.type == "meta":  # (torch.device("meta") around the dataset's construction) not "cannot copy out"
            _fail("image is on the 'meta' device (shapes only, no pixels): genaug edits real images")
        if image.dtype != torch.uint8 and not image.is_floating_point():
            _fail(f"unsupported tensor dtype {image.dtype}: use uint8 (0..255) or float (0..1)")
        if image.ndim == 2:
            layout, t = "HW", image[None]
        elif image.ndim == 3:
            layout, t = "CHW", image
            if image.shape[0] not in (1, 3, 4):
                hint = " (it looks like HWC: image.permute(2, 0, 1))" if image.shape[2] in (1, 3, 4) else ""
                _fail(f"CHW tensor must have 1, 3 or 4 channels first, got shape {tuple(image.shape)}{hint}")
        else:
            batch = f" ({BATCHES})" if image.ndim == 4 else ""
            _fail(f"image tensor must be (C, H, W) or (H, W), got shape {tuple(image.shape)}{batch}")
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
        t = _check_float_range(t.float(), "image")
    return t, kind, dtype, layout, tuple(shape)


@functools.lru_cache(maxsize=16)
def luma_weights(dtype: torch.dtype, device: torch.device) -> Tensor:
    """:data:`LUMA` as a (3,) tensor, made once per dtype and device (no host-to-device copy per call)."""
    return torch.tensor(LUMA, dtype=dtype, device=device)


def match_channels(t: Tensor, channels: int) -> Tensor:
    """(C, H, W) or (N, C, H, W) with C in {1, 3} -> ``channels`` channels."""
    c = t.shape[-3]
    if c == channels:
        return t
    if channels == 3:
        return t.expand(*t.shape[:-3], 3, *t.shape[-2:])
    w = luma_weights(t.dtype, t.device).reshape(3, 1, 1)
    return (t * w).sum(-3, keepdim=True)


def sample_grid(x: Tensor, samples: int = 16) -> Tensor:
    """Every k-th pixel each way, about ``samples`` per side (the whole image below 2 * samples px;
    a grid of the grid is the grid itself, so a fit on ``sample_grid(x)`` equals the fit on ``x``)."""
    k = max(1, min(x.shape[-2:]) // samples)
    if k == 1:
        return x
    *lead, h, w = x.shape  # x[..., ::k, ::k] in one view operation
    return x.as_strided((*lead, -(-h // k), -(-w // k)), (*x.stride()[:-2], x.stride(-2) * k, x.stride(-1) * k), x.storage_offset())


def from_chw01(t: Tensor, original: Any, info: FrameInfo) -> Any:
    """Inverse of :func:`to_chw01`: back to the original's type, layout and dtype."""
    if info.kind == "tensor":
        res = t if info.layout == "CHW" else t[0]
        if info.dtype == torch.uint8:
            res = res.mul(255).round_().to(torch.uint8)
        elif info.dtype == torch.float64:  # what the float32 work left as it was keeps the photo's own value
            own = original.detach().cpu()
            res = torch.where(res == own.float(), own, res.double())
        res = res.to(dtype=info.dtype, device=original.device)
        return res if type(original) is Tensor else res.as_subclass(type(original))  # a tv_tensors.Image stays one
    arr = t.permute(1, 2, 0) if info.layout == "HWC" else t[0]
    if info.kind == "pil" and info.dtype.startswith(("I", "F")):  # 16-bit / 32-bit grey, as to_chw01 read it
        from PIL import Image

        a = arr.double().numpy() * grey_white(original)
        if info.dtype == "F":
            return Image.fromarray(a.astype(np.float32))
        if info.dtype == "I":
            return Image.fromarray(np.rint(a).astype(np.int32))
        raw = {"I;16": "<u2", "I;16L": "<u2", "I;16B": ">u2", "I;16N": "=u2"}.get(info.dtype)
        if raw is None:  # a rarer integer mode (I;16S, I;32...): as 32-bit "I", the values kept
            return Image.fromarray(np.rint(a).astype(np.int32))
        return Image.frombytes(info.dtype, (a.shape[1], a.shape[0]), np.rint(a).astype(raw).tobytes())
    if info.kind == "pil" or info.dtype == np.uint8:
        arr_np = arr.mul(255).round_().clamp_(0, 255).to(torch.uint8).numpy()  # (one float copy: a 12 MP photo's)
        if info.kind == "numpy":
            return arr_np
        from PIL import Image

        return pil_mode(Image.fromarray(arr_np), original, info.dtype)
    res = arr.numpy()
    if np.dtype(info.dtype).itemsize > 4:  # float64: what the float32 work left as it was keeps the photo's own value
        own = np.asarray(original)
        res = np.where(res == own.astype(np.float32), own, res)
    return res.astype(info.dtype, copy=False)


def pil_mode(out: Any, original: Any, mode: str) -> Any:
    """A PIL result ``out`` (read as "L", "RGB" or "RGBA" by :func:`to_chw01`) in its ``original``'s ``mode``: a palette
    image ("P", e.g. a GIF) on its own palette (the nearest colours, undithered), any other ("LA", "CMYK", "1", ...)
    converted, so a pipeline that read the original reads the result alike."""
    if out.mode == mode:
        return out
    if mode == "P":
        from PIL import Image

        return out.convert("RGB").quantize(palette=original, dither=Image.Dither.NONE)
    return out.convert(mode)


def is_albumentations(transform: Any) -> bool:
    """True for an albumentations transform or ``Compose`` (called as ``transform(image=...)``)."""
    from albumentations.core.composition import BaseCompose
    from albumentations.core.transforms_interface import BasicTransform

    return isinstance(transform, (BaseCompose, BasicTransform))


def albumentations_image(image: Any) -> Any:
    """``image`` as albumentations takes it, an HWC (or HW) numpy array: a PIL image (an ``ImageFolder``'s) as the
    array of its pixels, read in the mode :func:`to_chw01` reads it ("L", "RGB" or "RGBA"; 16-bit grey as 8-bit); a
    CHW (or HW) tensor moved to the host as HWC (uint8 kept, other floats as float32). Arrays as they are."""
    from PIL import Image

    if isinstance(image, Image.Image):
        image = eight_bit(image)
        if image.mode not in ("L", "RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.mode else "RGB")
        return np.array(image)
    if isinstance(image, Tensor):
        t = image.detach().cpu()
        t = t if t.dtype == torch.uint8 else t.float()
        return (t.permute(1, 2, 0) if t.ndim == 3 else t).numpy()
    return image


def apply_transform(transform: Any, image: Any) -> Any:
    """``transform`` of one image as its library calls it: an albumentations transform or ``Compose`` as
    ``transform(image=image)["image"]`` (on :func:`albumentations_image` of it: albumentations takes numpy arrays
    only), any other callable (a torchvision transform, a function) as ``transform(image)``."""
    return transform(image=albumentations_image(image))["image"] if is_albumentations(transform) else transform(image)


def check_transform(transform: Any, name: str = "transform") -> Any:
    """``transform`` (a Dataset's ``transform`` / ``target_transform``) as given when None or callable; else a TypeError
    naming ``name``, when the Dataset is built rather than at its first item (inside a DataLoader worker)."""
    if transform is not None and not callable(transform):
        raise TypeError(f"{name} must be None or callable (an albumentations transform, a torchvision one or a "
                        f"function), got {type(transform).__name__} {transform!r}")
    return transform


def _levels(a: Any) -> Any:
    """A float photo in [0, 1] (numpy or torch) as its 8-bit levels (clipped as the output is)."""
    return (a.clip(0, 1) * 255).round()


def same_levels(a: Any, b: Any, rows: int = 256) -> bool:
    """Whether photos ``a``, ``b`` (numpy or torch, rows first) hold the same values (float: 8-bit :func:`_levels`), by
    bands of ``rows``: equal bands are not converted, the first that differs ends it (a 12 MP float photo: 0.1 s, not 3)."""
    if tuple(a.shape) != tuple(b.shape):  # (bands alone would miss rows ``b`` has past the last of ``a``)
        return False
    tensor = isinstance(a, Tensor)
    same = torch.equal if tensor else np.array_equal
    for i in range(0, a.shape[0], rows):
        x, y = a[i : i + rows], b[i : i + rows]
        if same(x, y):
            continue
        if not (x.is_floating_point() if tensor else x.dtype.kind == "f"):
            return False
        if not same(*((_levels(t.float()) if tensor else _levels(t)) for t in (x, y))):
            return False
    return True
