"""Where :class:`genaug.BatchFaceAug` finds its image batch among the inputs, as ``torchvision.transforms.v2``
does: in any structure (tuples, lists, dicts) the first ``tv_tensors.Image``, else the first plain 4-dim tensor
(else 3-dim: one image); a tv_tensor of another kind (``Mask``, ``BoundingBoxes``, ``Video``) is never the batch.
The rest pass through (:func:`route`); one (C, H, W) image is a batch of one (:func:`one_image`); what is not an image
batch is refused (:func:`check_batch`)."""
from __future__ import annotations

import sys
from typing import Any

import torch
from torch import Tensor

from ..faces.controls import GEOMETRIC_CONTROLS, geometric_targets
from ..images import MIN_SIDE, needs_clipping
from .batch_edits import BatchParams
from .codes import check_codes, control_of
from .latent_table import host_array


def tv_image_type() -> type | None:
    """``torchvision.tv_tensors.Image``, or None without torchvision."""
    try:
        from torchvision import tv_tensors
    except ImportError:  # pragma: no cover - torchvision is optional here
        return None
    return tv_tensors.Image


def other_tv_tensor(o: Any) -> bool:
    """``o`` is a torchvision tv_tensor that is not an ``Image`` (a ``Mask``, ``BoundingBoxes``, ``Video``, ...): as in
    ``torchvision.transforms.v2``, never the image, whatever its shape (a tv_tensor means torchvision is imported)."""
    tv = sys.modules.get("torchvision.tv_tensors")
    return tv is not None and isinstance(o, tv.TVTensor) and not isinstance(o, tv.Image)


def batch_position(flat: list[Any], inputs: tuple) -> int:
    """The position of the image batch in ``flat`` (the flattened ``inputs``); a ValueError when there is none."""
    image_type = tv_image_type()
    at = next((i for i, o in enumerate(flat) if image_type is not None and isinstance(o, image_type)), None)
    for dims in (4, 3):  # else the first plain NCHW batch, else the first plain CHW image (a per-sample pipeline's)
        at = at if at is not None else next((i for i, o in enumerate(flat) if isinstance(o, Tensor) and o.ndim == dims
                                             and not other_tv_tensor(o)), None)
    if at is None:
        got = ", ".join(f"{type(o).__name__}{tuple(o.shape) if hasattr(o, 'shape') else ''}" for o in flat[:4])
        pil = any(type(o).__module__.startswith("PIL.") for o in flat)  # a per-sample v2 pipeline before v2.ToImage()
        raise ValueError(f"expected an NCHW tensor batch among the inputs (the first tv_tensors.Image, else "
                         f"the first plain 4-dim tensor, else 3-dim: one CHW image), got {got or type(inputs[0]).__name__ + ' holding no tensor'}"
                         + (": put v2.ToImage() (or v2.PILToTensor()) before BatchFaceAug for PIL images" if pil else ""))
    return at


def check_batch(x: Any, check_values: bool | None, read_before: bool) -> tuple[Tensor, bool]:
    """Refuse what is not an NCHW image batch; returns the batch (float values read and within ``FLOAT_OVERSHOOT`` of
    [0, 1] - a cubic resize's ringing - clipped, as the per-image path does) and whether its float values were read
    (then they lie in [0, 1]). ``check_values``: read them (None: on the CPU, or elsewhere unless ``read_before``)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"expected an NCHW tensor batch, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"expected an NCHW batch (4 dims) or one CHW image, got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise ValueError(f"batch dtype must be uint8 (0..255) or float (0..1), got {x.dtype}")
    if x.device.type == "meta":
        raise ValueError("the batch is on the 'meta' device (shapes only, no pixels): genaug edits real images")
    n, c, h, w = x.shape
    if c not in (1, 3, 4) and w in (1, 3, 4):  # (N, H, W, C): say so, not "images Wx3 are too small"
        raise ValueError(f"expected an NCHW batch, got shape {tuple(x.shape)}, which looks channels-last (NHWC): "
                         "pass x.permute(0, 3, 1, 2) (channels_last memory format is fine)")
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"images {h}x{w} are too small to hold a face (min side {MIN_SIDE} px)")
    check = (x.device.type == "cpu" or not read_before) if check_values is None else check_values
    read = bool(check and x.is_floating_point() and n)
    if read and not _within_01(x):  # (else: in [0, 1], nothing to clip)
        cpu = x.device.type == "cpu" and x.dtype != torch.bfloat16  # (numpy has no bfloat16)
        if needs_clipping(*(float(host_array(v) if cpu else v) for v in torch.aminmax(x)), "batch"):
            x = x.clamp(0.0, 1.0)
    return x, read


_BITS = {torch.float32: (torch.int32, 0x3F800000), torch.float64: (torch.int64, 0x3FF0000000000000)}  # 1.0's bits


def _within_01(x: Tensor) -> bool:
    """Every value of the float32 / float64 batch ``x`` lies in [+0, 1], by one integer ``aminmax`` of its bits (faster
    than the float one on a CPU): a non-negative float's bits, read as an integer, order as the float does; a negative
    value (-0.0 too) reads below 0, NaN and values above 1 above 1.0's bits. False also for other dtypes (the float
    range is read then)."""
    bits = _BITS.get(x.dtype)
    if bits is None:
        return False
    lo, hi = torch.aminmax(x.view(bits[0]))
    lo, hi = (int(host_array(v)) for v in (lo, hi)) if x.device.type == "cpu" else torch.stack((lo, hi)).tolist()
    return lo >= 0 and hi <= bits[1]


def one_image(aug: Any, x: Tensor, index: Any, params: BatchParams | None, landmarks: Tensor | None) -> Any:
    """One (C, H, W) image through ``aug`` (a :class:`genaug.BatchFaceAug`) as a batch of one, returned (C, H, W) with
    its type kept (``index``: one dataset index; ``landmarks``: (5, 2) or (1, 5, 2); the params are a batch of one's)."""
    index = None if index is None else torch.as_tensor(index).reshape(-1)
    landmarks = landmarks[None] if isinstance(landmarks, Tensor) and landmarks.ndim == 2 else landmarks
    res = aug._forward(x.as_subclass(Tensor)[None], index=index, params=params, landmarks=landmarks)
    out, params = res if aug.return_params else (res, None)
    out = out[0]
    if type(x) is not Tensor and tv_image_type() is not None and isinstance(x, tv_image_type()):
        from torchvision import tv_tensors

        out = tv_tensors.wrap(out, like=x)
    return (out, params) if aug.return_params else out


def route(aug: Any, inputs: tuple, several: bool, index: Any, params: BatchParams | None, landmarks: Tensor | None = None) -> Any:
    """``aug`` on the batch found in any structure of ``inputs`` (:func:`batch_position`), the rest passed through
    unchanged, as ``torchvision.transforms.v2`` does; refused when a code that turns the head would leave boxes, masks or
    keypoints among them unmoved."""
    from torch.utils._pytree import tree_flatten, tree_unflatten

    flat, spec = tree_flatten(inputs)
    if any(isinstance(o, BatchParams) for o in flat):
        raise ValueError("pass replayed parameters by keyword: aug(x, params=params)")
    at = batch_position(flat, inputs)
    latent_spec = aug._spec()  # the codes by name or index, and a replay's drawn ones: what may turn the head
    drawn = (check_codes(latent_spec, aug.codes) or []) + (params.code[params.apply].tolist() if isinstance(params, BatchParams) else [])
    turning = sorted(GEOMETRIC_CONTROLS & {getattr(control_of(latent_spec, int(i)), "name", None) for i in drawn})
    if turning:
        moved = geometric_targets(inputs)  # tv_tensors and dict entries that mark places (boxes, masks, keypoints)
        if moved:
            raise ValueError(f"codes {turning} turn the head and move the photo by a few "
                             f"pixels, but {', '.join(moved)} passed with the batch would come back unmoved: leave "
                             "those codes out here, or apply them before making such targets")
    res = aug.forward(flat[at], index=index, params=params, landmarks=landmarks)
    flat[at], params = res if aug.return_params else (res, None)
    out = tree_unflatten(flat, spec)
    out = out if several else out[0]
    return (out, params) if aug.return_params else out
