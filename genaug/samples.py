"""A base dataset's items as :class:`genaug.GenerativeAugDataset` takes them apart and puts them back: the image and
the rest (``(image, target, ...)``, a dict sample's other entries; :func:`read_item`, :func:`split_item`, :func:`join_item`), the
user's ``transform`` of an item (:func:`transform_item`), and :class:`SampleMeta`, where a sample came from and what
was done to it."""
from __future__ import annotations

import bisect
import sys
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple

import numpy as np
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset

from .engine.edits import Edit
from .faces.controls import GEOMETRIC_TYPES, geometric_targets
from .images import albumentations_image, apply_transform, is_albumentations

IMAGE_KEYS = ("image", "img")  # where a dict sample holds its image
TARGET_KEYS = ("label", "target", "labels", "targets")  # a dict sample's entry target_transform applies to
MASK_KEYS = ("mask", "masks", "mask3d", "masks3d")  # a dict sample's entries any albumentations transform moves
NO_VALUE = float("nan")  # one object, so two metas of an unchanged sample compare equal


class DictRest(NamedTuple):
    """What a dict sample holds besides its image (``key``: where the image goes back)."""

    key: str
    entries: dict[str, Any]
    at: int = 0  # the image's place among the sample's keys (it comes back there)


class SampleMeta(NamedTuple):
    """Where a sample came from and what was done to it. A named tuple of plain values, so
    ``DataLoader``'s default collate batches it (``code`` -1 / ``value`` NaN: no edit)."""

    source: int  # index in the base dataset
    variant: int  # 0..per_source-1 (0 is the original when include_original)
    original: bool
    code: int  # the edited code's index, -1 when the image is unchanged
    value: float  # the value it was set to (category or continuous value; NaN when unchanged)
    relative: bool  # value is a category offset from the face's own (a planned random edit)
    description: str
    score: float  # reconstruction score of the source's inversion

    @classmethod
    def of(cls, source: int, variant: int, edit: Edit | None, description: str, score: float, original: bool = False) -> "SampleMeta":
        if edit is None:
            return cls(source, variant, original, -1, NO_VALUE, False, description, score)
        return cls(source, variant, original, int(edit.code), float(edit.value), bool(edit.relative), description, score)

    @property
    def edit(self) -> Edit | None:
        """The edit as an :class:`~genaug.engine.edits.Edit` (None when the image is unchanged)."""
        return None if self.code < 0 else Edit(self.code, self.value, self.relative)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self._asdict().items() if k not in ("code", "value", "relative")}
        d["edit"] = None if self.edit is None else {"code": self.code, "value": self.value}
        return d


def read_item(base: Any, src: int) -> tuple[Any, Any]:
    """:func:`split_item` of ``base[src]``; an error reading it (a corrupt file behind an ImageFolder, ...) names the item."""
    try:
        item = base[src]
    except (IndexError, KeyError, TypeError):
        raise
    except Exception as e:
        path = getattr(base, "samples", None)
        where = f" ({path[src][0]})" if isinstance(path, list) and 0 <= src < len(path) else ""
        msg = f"base item {src}{where} could not be read: {e}"
        try:
            named = type(e)(msg)
        except Exception:  # an exception type that takes other arguments
            named = RuntimeError(msg)
        raise named from e
    return split_item(item, src)


def split_item(item: Any, src: int) -> tuple[Any, Any]:
    """Base item ``src`` -> (image, the rest): ``(image, target, ...)``, a dict sample (its ``"image"`` or ``"img"``
    entry; the other entries are the rest, a :class:`DictRest`) or a bare image (rest None)."""
    if isinstance(item, (tuple, list)):
        return item[0], tuple(item[1:])
    if isinstance(item, Mapping):
        key = next((k for k in IMAGE_KEYS if k in item), None)
        if key is None:
            raise ValueError(f"base item {src} is a dict without an image entry {IMAGE_KEYS}: keys {list(item)}")
        return item[key], DictRest(key, {k: v for k, v in item.items() if k != key}, list(item).index(key))
    return item, None


def with_base_marks(base: Any, rest: Any, src: int) -> Any:
    """Base item ``src``'s ``rest`` (its targets) and, where the dataset it comes from says its targets hold places in
    the image that no entry or type names (torchvision's ``CelebA`` with ``target_type`` "landmarks": the aligned
    photo's 5 points as a plain tensor; also inside a ``Subset`` or ``ConcatDataset``), those named
    (``{"landmarks": True}``), so a head turn is not drawn beside them."""
    while True:  # the dataset item src comes from, through Subsets and ConcatDatasets
        if isinstance(base, ConcatDataset):
            part = bisect.bisect_right(base.cumulative_sizes, src)
            src, base = src - (base.cumulative_sizes[part - 1] if part else 0), base.datasets[part]
        elif isinstance(getattr(base, "dataset", None), Dataset) and hasattr(base, "indices"):  # a Subset
            src, base = int(base.indices[src]), base.dataset
        else:
            break
    kinds = getattr(base, "target_type", None)
    kinds = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, (list, tuple)) else []
    return (rest, {"landmarks": True}) if "landmarks" in kinds else rest


def join_item(image: Any, rest: Any, meta: SampleMeta, return_meta: bool, target_transform: Callable | None) -> Any:
    """The item :func:`split_item` took apart, with ``image`` in it and ``target_transform`` applied to its first
    target (a dict sample's label entry); with ``return_meta``, ``meta`` last (a dict's ``"meta"`` entry)."""
    if isinstance(rest, DictRest):  # a dict sample comes back a dict (meta under "meta")
        entries = dict(rest.entries)
        if return_meta and "meta" in entries:  # not overwritten silently
            raise ValueError(f"dict sample {meta.source} has a 'meta' entry of its own, which return_meta=True would "
                             "replace: rename it, or leave return_meta off and read ds.meta(i)")
        if target_transform is not None:  # applied to its label entry
            label = next((k for k in TARGET_KEYS if k in entries), None)
            if label is None:
                raise ValueError(f"target_transform: dict sample {meta.source} has no label entry {TARGET_KEYS}: "
                                 f"keys {list(entries)}")
            entries[label] = target_transform(entries[label])
        items = list(entries.items())  # the image back in its place (a dict sample keeps its keys' order)
        return dict(items[: rest.at] + [(rest.key, image)] + items[rest.at :] + ([("meta", meta)] if return_meta else []))
    if target_transform is not None and isinstance(rest, tuple) and rest:
        rest = (target_transform(rest[0]), *rest[1:])
    parts = (image, *(rest or ()))
    if return_meta:
        parts = (*parts, meta)
    return parts if rest is not None or return_meta else image  # an (image,) item stays a 1-tuple


def transform_item(transform: Callable, image: Any, rest: Any) -> tuple[Any, Any]:
    """``transform`` applied to a split item's image (:func:`apply_transform`); an albumentations one gets a dict
    sample's entries that it moves with the image too, as albumentations users call it (``transform(**sample)``):
    masks, and for a ``Compose`` its additional targets and the boxes / keypoints its ``bbox_params`` /
    ``keypoint_params`` process, with their label fields; a ``torchvision.transforms.v2`` one gets the whole sample
    when it holds ``tv_tensors`` that mark places (boxes, masks, keypoints), as v2 users call it (``transform(sample)``,
    ``transform(image, target)``), so a flip or crop moves them with the image. Returns the image and the rest, those
    entries replaced."""
    if rest is not None and _v2_moves(transform, image, rest):
        if isinstance(rest, DictRest):
            out = transform({rest.key: image, **rest.entries})
            return out[rest.key], rest._replace(entries={k: out[k] for k in rest.entries})
        out = transform(image, *rest)
        return out[0], tuple(out[1:])
    keys = _joint_keys(transform, rest.entries) if isinstance(rest, DictRest) else []
    if not keys:
        return apply_transform(transform, image), rest
    out = transform(image=albumentations_image(image), **{k: rest.entries[k] for k in keys})
    return out["image"], rest._replace(entries={**rest.entries, **{k: out[k] for k in keys}})


def _v2_moves(transform: Any, image: Any, rest: Any) -> bool:
    """True when ``transform`` is a ``torchvision.transforms.v2`` transform, ``image`` one it transforms (a PIL image
    or a tensor; not a numpy array, which v2 passes through) and the item's rest (its target, a dict sample's other
    entries) holds ``tv_tensors`` that mark places in the image (``BoundingBoxes``, ``Mask``, ``KeyPoints``), which
    v2 moves with the image when it gets them in the same call. Not when the pipeline holds a plain callable (a
    ``lambda``, a v1 transform: v2 would hand it the whole sample): the image alone then, as any callable gets it."""
    v2 = sys.modules.get("torchvision.transforms.v2")  # (a v2 transform given means torchvision is imported)
    if v2 is None or not _v2_only(transform, v2.Transform) or not (isinstance(image, Tensor) or _is_pil(image)):
        return False
    return bool(set(geometric_targets(rest.entries if isinstance(rest, DictRest) else rest)) & set(GEOMETRIC_TYPES))


def _v2_only(transform: Any, kind: type) -> bool:
    """True when ``transform`` and every transform inside it (``Compose``, ``RandomApply``, ``RandomChoice``,
    ``RandomOrder``: their ``transforms``) is a ``torchvision.transforms.v2.Transform`` (``kind``)."""
    return isinstance(transform, kind) and all(_v2_only(t, kind) for t in getattr(transform, "transforms", ()))


def _is_pil(image: Any) -> bool:
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(image, pil.Image)


def _joint_keys(transform: Any, entries: dict[str, Any]) -> list[str]:
    """The keys of ``entries`` an albumentations ``transform`` moves with the image (none for other callables; masks
    only as the numpy arrays albumentations takes: a mask's path or tensor passes through as before)."""
    if not is_albumentations(transform):
        return []
    moved = {k for k in MASK_KEYS if isinstance(entries.get(k), np.ndarray)} | set(getattr(transform, "additional_targets", None) or ())
    for proc in (getattr(transform, "processors", None) or {}).values():  # a Compose's bbox / keypoint params
        moved |= {*proc.data_fields, *(proc.params.label_fields or ())}
    return [k for k in entries if k in moved]
