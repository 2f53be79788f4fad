"""Where :class:`genaug.BatchFaceAug` finds its image batch among the inputs, as ``torchvision.transforms.v2``
does: in any structure (tuples, lists, dicts) the first ``tv_tensors.Image``, else the first plain 4-dim tensor;
a tv_tensor of another kind (``Mask``, ``BoundingBoxes``, ``Video``) is never the batch. The rest pass through."""
from __future__ import annotations

import sys
from typing import Any

from torch import Tensor


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
        raise ValueError(f"expected an NCHW tensor batch among the inputs (the first tv_tensors.Image, else "
                         f"the first plain 4-dim tensor, else 3-dim: one CHW image), got {got or type(inputs[0]).__name__ + ' holding no tensor'}")
    return at
