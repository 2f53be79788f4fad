"""Edit recipes: how each edit of a bundle acts, one :class:`EditRecipe` per code and direction.

An edit sets a code to a value (``glasses=1``: glasses on). Its recipe says how far the code moves
(``gain``; 1 = exactly to the new value), how far the latent content moves along the code's
direction (``shift``), how much of the content inside the direction's region is pulled to the new
category's mean (``transfer``), where the photo's own residual is dropped in ``delta`` rendering
(``regenerate``), whether the edit is a colour change of the whole photo (``colour``: its rendered
change reduced to a per-photo colour transform, :mod:`genaug.engine.colour`) and whether its rendered
change reaches the photo's brightness only (``luma``: the photo keeps its own colour, so the generator's
colour noise — green or pink blotches — does not reach it) and where on the face it may act (``region``: an
ellipse of the model frame outside which the rendered change fades out, so what the generator redraws
elsewhere — blotches on the cheeks of a mouth edit — does not reach the photo); a colour edit that is a white
balance (``hue``) turns the skin's hue as it turns the rest of the photo, by a gain per channel (other colour edits keep
the skin's hue and saturation, :func:`genaug.engine.colour.keep_hue`).
:func:`genaug.engine.edits.apply_recipes` is the one place the latent settings act, :func:`genaug.engine.regions.region_mask` the region's.

A bundle stores them in ``config.json`` as one table ``"edit_recipes"``, keyed ``"code=value"``
(a categorical code set to a category) or ``"code"`` (a continuous code), every entry complete.
Hand-written tables may be partial: a field missing from ``"code=value"`` comes from ``"code"``,
then ``"*"``, then the default. Bundles of format 1 kept four separate tables in their runtime
(``edit_gain``, ``edit_shift``, ``edit_regenerate``, ``edit_transfer``; same key rule): they are
read into recipes (:func:`parse_recipes`).
"""
from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from ..models.latent import LatentSpec

# format-1 runtime table -> recipe field
LEGACY_TABLES = {"edit_gain": "gain", "edit_shift": "shift", "edit_regenerate": "regenerate", "edit_transfer": "transfer"}


def _is_number(v: Any) -> bool:
    """A real number, numpy's included (``np.float32`` is no ``float``), and not a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


@dataclass(frozen=True)
class Transfer:
    """Selective transfer: after the code and shift move, the content (``content``) and detail
    (``detail``) map cells where the code's direction acts (direction energy at or above its
    ``quantile`` quantile) are pulled that fraction of the way (1 = replaced) to the new category's mean."""

    quantile: float = 0.0
    content: float = 0.0
    detail: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not _is_number(v) or not 0 <= v <= 1:
                raise ValueError(f"transfer {f.name} must be a number in [0, 1], got {v!r}")
            object.__setattr__(self, f.name, float(v))


@dataclass(frozen=True)
class EditRecipe:
    """How one edit (a code set to one value) acts; see the module docs."""

    gain: float = 1.0
    shift: float = 0.0
    regenerate: float = 0.0
    transfer: Transfer | None = None
    colour: bool = False
    luma: bool = False
    hue: bool = False  # a colour edit whose turn of the skin's hue is the edit (a white balance): keep_hue makes it gains
    region: tuple[float, float, float, float] | None = None  # (centre x, centre y, half width, half height), frame fractions

    def __post_init__(self) -> None:
        if self.region is not None:
            r = tuple(self.region.tolist()) if isinstance(self.region, np.ndarray) else self.region
            if (not isinstance(r, (list, tuple)) or len(r) != 4
                    or not all(_is_number(v) for v in r)
                    or not (0 <= r[0] <= 1 and 0 <= r[1] <= 1 and 0 < r[2] <= 2 and 0 < r[3] <= 2)):
                raise ValueError("region must be [centre x, centre y, half width, half height] as fractions of the frame "
                                 f"(centre in [0, 1], half sides in (0, 2]), got {r!r}")
            object.__setattr__(self, "region", tuple(float(v) for v in r))
        if self.region is not None and self.colour:
            raise ValueError("a colour edit recolours the whole photo: it takes no region")
        if self.transfer is not None and not isinstance(self.transfer, Transfer):
            raise ValueError(f"transfer must be a Transfer or None, got {self.transfer!r}")
        for name in ("colour", "luma", "hue"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
            object.__setattr__(self, name, bool(getattr(self, name)))
        if self.colour and self.luma:
            raise ValueError("an edit is either a colour edit (colour) or a brightness-only one (luma), not both")
        if self.hue and not self.colour:
            raise ValueError("hue (a white balance: the skin's hue turns with the photo's) is a kind of colour edit: set colour too")
        for name, positive in (("gain", True), ("shift", False), ("regenerate", False)):
            v = getattr(self, name)
            if not _is_number(v) or not 0 <= v < float("inf") or (positive and v == 0):
                raise ValueError(f"{name} must be a {'positive' if positive else 'non-negative'} number, got {v!r}")
            object.__setattr__(self, name, float(v))

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if v is not None and not (k in ("colour", "luma", "hue") and v is False)}
        if "region" in d:
            d["region"] = list(d["region"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EditRecipe":
        t = d.get("transfer")
        if t is not None and (not isinstance(t, dict) or set(t) - {f.name for f in fields(Transfer)}):
            raise ValueError(f"transfer must hold 'quantile', 'content' and 'detail' in [0, 1], got {t!r}")
        return cls(**{**d, "transfer": Transfer(**t) if t is not None else None})


def edit_keys(spec: LatentSpec) -> list[str]:
    """The key of every edit of ``spec``: ``"code=value"`` per category, ``"code"`` per continuous code."""
    return [f"{c.name}={v}" for i, c in enumerate(spec.codes) if spec.is_categorical(i) for v in range(c.k)] + [
        c.name for i, c in enumerate(spec.codes) if not spec.is_categorical(i)]


def edit_key(spec: LatentSpec, code: int, value: float) -> str:
    """The recipe key of the edit that sets code ``code`` (index) to ``value``."""
    name = spec.codes[code].name
    return f"{name}={int(value)}" if spec.is_categorical(code) else name


def _entry(raw: Any, key: str, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or set(raw) - {f.name for f in fields(EditRecipe)}:
        raise ValueError(f"{where}[{key!r}] must be a table of {[f.name for f in fields(EditRecipe)]}, got {raw!r}")
    return raw


def parse_recipes(spec: LatentSpec, table: dict[str, Any] | None = None, runtime: dict[str, Any] | None = None,
                  base: dict[str, EditRecipe] | None = None) -> dict[str, EditRecipe]:
    """Complete recipes (one per :func:`edit_keys` key) from a possibly partial ``edit_recipes``
    ``table`` and/or format-1 ``runtime`` tables, over ``base`` (default: every recipe at its
    defaults). Raises ValueError naming the table and key of a bad entry."""
    partial: dict[str, dict[str, Any]] = {}
    for name, field in LEGACY_TABLES.items():
        old = (runtime or {}).get(name)
        if old is None:
            continue
        if field == "transfer":
            if not isinstance(old, dict):
                raise ValueError(f"runtime {name} must be a table {{'code=value': {{...}}}}, got {old!r}")
            items = old.items()
        else:
            items = old.items() if isinstance(old, dict) else [("*", old)]
        for key, value in items:
            partial.setdefault(key, {})[field] = value
    for key, raw in (table or {}).items():
        partial.setdefault(key, {}).update(_entry(raw, key, "edit_recipes"))
    keys = edit_keys(spec)
    known = {"*", *spec.code_names, *keys}
    for key in partial:
        if key not in known:
            raise ValueError(f"edit recipes name {key!r}: not a code, CODE=CATEGORY or '*' of this bundle "
                             f"(codes: {spec.code_names})" + _legacy_hint(runtime))
    if "transfer" in partial.get("*", {}):
        raise ValueError("edit recipes: a transfer under '*', which is not a code or CODE=CATEGORY (a transfer belongs to one edit)"
                         + _legacy_hint(runtime))
    out = {}
    for key in keys:
        merged = asdict(base[key]) if base and key in base else {}
        for k in ("*", key.split("=")[0], key):
            merged.update(partial.get(k, {}))
        if not merged.get("colour") and not any("hue" in partial.get(k, {}) for k in ("*", key.split("=")[0], key)):
            merged["hue"] = False  # a white balance made no colour edit is no white balance (``hue`` of the base dropped)
        try:
            out[key] = EditRecipe.from_dict(merged)
        except (TypeError, ValueError) as e:
            raise ValueError(f"edit recipe {key!r}: {e}" + _legacy_hint(runtime)) from None
    return out


def _legacy_hint(runtime: dict[str, Any] | None) -> str:
    old = [k for k in LEGACY_TABLES if k in (runtime or {})]
    return f" (from the runtime tables {', '.join(old)})" if old else ""


def recipes_digest(recipes: dict[str, EditRecipe]) -> str:
    """A content hash of the recipes (key order and float formatting do not matter)."""
    text = json.dumps({k: r.to_dict() for k, r in recipes.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def model_identity(weights_sha256: str, recipes: dict[str, EditRecipe]) -> str:
    """A bundle's identity: a short hash of its weights and its recipes (with every recipe at its
    defaults, the weights' hash alone); ``"unsaved"`` without a weights hash."""
    if not weights_sha256:
        return "unsaved"
    if all(r == EditRecipe() for r in recipes.values()):
        return weights_sha256[:16]
    return hashlib.sha256(f"{weights_sha256}:{recipes_digest(recipes)}".encode()).hexdigest()[:16]


def transfer_weights(direction: torch.Tensor, transfer: Transfer, net) -> torch.Tensor:
    """(noise_dim,) weights of a :class:`Transfer` for one code's (k, noise_dim) direction table:
    ``content`` / ``detail`` on the cells of the content / detail map whose direction energy (spread
    of the category means) is at or above the ``quantile`` quantile, 0 elsewhere (CPU float32)."""
    from ..models.editnets import content_shape, detail_shape

    t = direction.detach().float().cpu()
    energy = (t - t.mean(0)).pow(2).sum(0)
    parts, start = [], 0
    for shape, weight in ((content_shape(net), transfer.content), (detail_shape(net), transfer.detail)):
        size = shape[0] * shape[1] * shape[2]
        if size:
            e = energy[start : start + size].reshape(shape).sum(0)
            cell = (e >= torch.quantile(e.flatten(), float(transfer.quantile))).float()
            parts.append((float(weight) * cell).expand(shape).flatten())
        start += size
    return torch.cat(parts)
