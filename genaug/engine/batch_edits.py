"""Edits as tensors on the device: the batch path's version of :func:`genaug.engine.edits.apply_edits`
and :func:`genaug.engine.render.render` with no per-row Python and no device-to-host read.

Per engine, two sets of tables are built once:

* :class:`CodeLayout` (from the latent spec): per code on the host, where it sits in the latent, its
  width (``k`` for a categorical code, 1 for a continuous one) and the index arithmetic of the
  recipe tables; per code column on the device, its range;
* :class:`RecipeTables` (from the bundle's per-edit runtime settings, :func:`recipe_tables`, the one
  place that reads them), on the device: gain and local-regeneration threshold by (code index, target
  category; 0 for continuous codes), and the content edit (shift along the code's direction, the
  target category's mean content and selective-transfer weights) by (code, old category, new one);
* :func:`colour_margins` (host, by code): the least code move of a random colour edit and its drawn range.

:func:`edit_plan` works out on the host, in numpy, all of an edit that does not depend on the
latent; :func:`apply_plan` does the rest on the device in a fixed number of batched operations
whatever the batch size (:func:`edit_latents` = both); :func:`blend` renders the edited batch
(``delta`` with local regeneration as a mask weight: a threshold of 0 weighs 0 instead of selecting rows).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..models.latent import LatentSpec
from .colour import _HALF, _on_host
from .edits import Edit, EditDraw
from .latent_table import host_array
from .regions import region_mask
from .render import MODES, local_mask_of, mask_weights
from .workspace import constant, part


@dataclass(frozen=True)
class BatchParams:
    """The sampled parameters of one call (kornia's ``_params``); pass them back to replay it, also after ``torch.save``
    and ``torch.load(..., weights_only=True)`` or as a dict of its fields (``dataclasses.asdict``)."""

    apply: Tensor  # (N,) bool: rows edited
    code: Tensor  # (N,) long: code index
    value: Tensor  # (N,) float64 as drawn: category offset (relative rows), category, or continuous value
    relative: Tensor  # (N,) bool
    strength: Tensor  # (N,) float32
    target: Tensor | None = None  # (N,) on the device: the absolute value each edited row got (NaN: not edited, also
    #                               a row the edit left as it was - strength 0, a colour edit of a black row, a turn
    #                               of a flat one: batch_pass.unmoved_nan; a random colour edit moved off the
    #                               face's own value: see colour_margins)
    landmarks: Tensor | None = None  # (N, 5, 2) float32 where given (aug(x, landmarks=)): where controls were placed
    #                                  (a NaN row, or None: the framing rule's landmarks)
    size: tuple[int, int] | None = None  # the batch's (height, width) the landmarks are pixels of; a replay
    #                             on another size is refused unless it is given its own landmarks

    def edits(self) -> list[Edit]:
        """One :class:`genaug.engine.edits.Edit` per row (what the engine and the albumentations transform take)."""
        return EditDraw(self.code, self.value, self.relative).edits()


# saved parameters load as tensors do, with torch.load(weights_only=True) (the default since torch 2.6): no code runs
if hasattr(torch.serialization, "add_safe_globals"):  # (torch >= 2.4; before 2.6 torch.load's default is not weights_only)
    torch.serialization.add_safe_globals([BatchParams])


@dataclass(frozen=True)
class CodeLayout:
    """The latent spec as tables: per code on the host (numpy, for :func:`edit_plan`), per code
    column on the device."""

    noise_dim: int
    kmax: int  # the widest categorical code (1 without categorical codes)
    per_code: np.ndarray  # (codes, 6) int64: first column of the code inside the code part of the latent,
    #                       width (k for a categorical code, 1 for a continuous one), categorical (0 / 1),
    #                       code * kmax, code * kmax^2 - categorical * first column * kmax, categorical * kmax
    inside: np.ndarray  # (codes, code_dim) bool: the code's columns
    columns: Tensor  # (code_dim,) long on the device: 0, 1, ..., code_dim - 1
    low: Tensor  # (code_dim,) range of each code column (-inf / inf for categorical columns), on the device
    high: Tensor


def code_layout(spec: LatentSpec, device: torch.device | str) -> CodeLayout:
    starts, widths, cats, lows, highs, col = [], [], [], [], [], 0
    for i, c in enumerate(spec.codes):
        cat = spec.is_categorical(i)
        w = int(c.k) if cat else 1  # type: ignore[attr-defined]
        starts.append(col)
        widths.append(w)
        cats.append(cat)
        lows += [-float("inf")] * w if cat else [float(c.low)]  # type: ignore[attr-defined]
        highs += [float("inf")] * w if cat else [float(c.high)]  # type: ignore[attr-defined]
        col += w
    kmax = max([w for w, c in zip(widths, cats) if c], default=1)
    start, width, cat = np.array(starts, dtype=np.int64), np.array(widths, dtype=np.int64), np.array(cats, dtype=np.int64)
    code = np.arange(len(starts), dtype=np.int64)
    per_code = np.stack([start, width, cat, code * kmax, code * kmax * kmax - cat * start * kmax, cat * kmax], 1)
    inside = (np.arange(col) >= start[:, None]) & (np.arange(col) < (start + width)[:, None])
    dev = torch.device(device)
    return CodeLayout(spec.noise_dim, kmax, per_code, inside, torch.arange(col, device=dev),
                      torch.tensor(lows, device=dev), torch.tensor(highs, device=dev))


@dataclass(frozen=True)
class RecipeTables:
    """Per-edit runtime settings on the device, indexed by the edit's entry ``code * kmax + target
    category`` (0 for continuous codes), or its move ``entry * kmax + old category`` ... see the fields."""

    gain_regenerate: Tensor  # (codes * kmax, 2) by entry: latent-space scale of a full edit, local-regeneration threshold (0 = off)
    mask_weights: Tensor  # (codes * kmax, 1, channels) by entry: the threshold as mask_weights for half changes (0 = off)
    content: Tensor  # (codes * kmax * kmax, 3, noise_dim) by move (code * kmax^2 + old * kmax + new): the content
    #                  shift of a full edit times (mean content of the new category - of the old), the mean
    #                  content of the new category (0 without a direction), its selective-transfer weights in [0, 1]
    host: np.ndarray | None = None  # gain_regenerate on the host (float32), for :func:`edit_plan`


def recipe_tables(bundle, layout: CodeLayout, device: torch.device | str) -> RecipeTables:
    """Build :class:`RecipeTables` from the bundle's edit recipes (:meth:`genaug.bundle.Bundle.recipe`,
    ``transfer_weights``, ``direction_table``): the one place the batch path reads them."""
    spec, kmax, nd = bundle.spec, layout.kmax, layout.noise_dim
    n = len(spec.codes) * kmax
    gain, shift, regen = torch.ones(n), torch.zeros(n), torch.zeros(n)
    transfer, directions = torch.zeros(n, nd), torch.zeros(n, nd)
    dirs = bundle.direction_table()
    for ci in range(len(spec.codes)):
        values = range(spec.codes[ci].k) if spec.is_categorical(ci) else [0]  # type: ignore[attr-defined]
        for v in values:
            row = ci * kmax + v
            r = bundle.recipe(ci, v)
            gain[row], shift[row], regen[row] = r.gain, r.shift, r.regenerate
            if r.transfer is not None and ci in dirs:
                transfer[row] = bundle.transfer_weights(ci, v, r.transfer)
            if ci in dirs:
                directions[row] = dirs[ci][v].float().cpu()
    codes = len(spec.codes)
    per_code = directions.reshape(codes, kmax, 1, nd)
    moves = (per_code.transpose(1, 2) - per_code) * shift.reshape(codes, 1, kmax, 1)  # [code, old, new]
    new = lambda t: t.reshape(codes, 1, kmax, nd).expand(codes, kmax, kmax, nd)  # noqa: E731 - [code, old, new] = t[code, new]
    content = torch.stack([moves, new(directions), new(transfer)], 3).reshape(-1, 3, nd)
    weights = mask_weights(regen / 2, bundle.channels)  # blend hands local_mask_of (edited - base) / 2
    dev = torch.device(device)
    settings = torch.stack([gain, regen], 1)
    return RecipeTables(settings.to(dev), weights.to(dev), content.to(dev), settings.numpy().copy())


class RecipeKinds(NamedTuple):
    """What the batch path decides from the recipes' flags, by code (host) or by entry (device)."""

    kind: np.ndarray  # host, by code: 0 blended whole, 1 also colour-fitted, 2 the colour transform alone
    colour_all: np.ndarray  # host, by code: every entry a colour edit
    recipe_has: np.ndarray  # host, by code: (a content shift, a selective transfer)
    colour_entries: Tensor  # device, by entry: the edit is a colour edit
    luma_code: np.ndarray  # host, by code: some entry is a brightness-only edit
    luma_entries: Tensor  # device, by entry: 1 = a brightness-only edit
    region_code: np.ndarray  # host, by code: some entry acts in a region of the face
    region_entries: Tensor  # device, by entry: (entries, 1, S, S) region weights (ones without a region)
    hue_code: np.ndarray  # host, by code: white-balance colour edits (recipe ``hue``: keep_hue makes them gains): 0 none,
    # 1 every entry, 2 some entries (a categorical code: the rows' entries say which, ``hue_entries``)
    hue_entries: Tensor  # device, by entry: 1 = a white-balance colour edit


def recipe_kinds(bundle: Any, layout: CodeLayout, recipe: RecipeTables, device: torch.device | str) -> RecipeKinds:
    """:class:`RecipeKinds` from the bundle's recipes (their ``colour``, ``regenerate``, ``luma``, ``region`` and ``hue`` settings) and the
    :class:`RecipeTables` built from them: how the batch transform works each code's rows."""
    spec, kmax = bundle.spec, layout.kmax
    colour = np.zeros(len(spec.codes) * kmax, dtype=bool)  # by entry: the edit is a colour edit
    local = np.zeros(len(spec.codes) * kmax, dtype=bool)  # by entry: local regeneration
    luma = np.zeros(len(spec.codes) * kmax, dtype=np.float32)  # by entry: 1 = a brightness-only edit
    size = bundle.image_size
    regions = torch.ones(len(spec.codes) * kmax, 1, size, size)  # by entry: where the change may act
    has_region = np.zeros(len(spec.codes) * kmax, dtype=bool)
    hue = np.zeros(len(spec.codes) * kmax, dtype=np.float32)  # by entry: 1 = a white balance
    for ci in range(len(spec.codes)):
        for v in range(spec.codes[ci].k) if spec.is_categorical(ci) else [0]:
            r = bundle.recipe(ci, v)
            colour[ci * kmax + v], local[ci * kmax + v], luma[ci * kmax + v] = r.colour, r.regenerate > 0, r.luma
            hue[ci * kmax + v] = r.hue
            if r.region is not None:
                regions[ci * kmax + v, 0], has_region[ci * kmax + v] = region_mask(r.region, size, size), True
    per_code, widths = colour.reshape(len(spec.codes), kmax), [w for w in layout.per_code[:, 1]]
    every = np.array([per_code[ci, :w].all() for ci, w in enumerate(widths)])
    # host, by code: 0 blended whole, 1 blended whole and colour-fitted (some entries colour, or local
    # regeneration), 2 the colour transform alone (every entry colour, no local regeneration): blended on the grid
    kind = np.where(every & ~local.reshape(len(spec.codes), kmax).any(1), 2, per_code.any(1).astype(int))
    content = recipe.content.reshape(len(spec.codes), -1, *recipe.content.shape[1:]).cpu()
    recipe_has = np.stack([content[:, :, 0].flatten(1).ne(0).any(1).numpy(),  # host, by code: a content shift,
                           content[:, :, 2].flatten(1).ne(0).any(1).numpy()], 1)  # a selective transfer
    colour_entries = torch.from_numpy(colour).to(device)
    luma_code = luma.reshape(len(spec.codes), kmax).any(1)  # host, by code: some entry is luma
    luma_entries = torch.from_numpy(luma).to(device)
    region_code = has_region.reshape(len(spec.codes), kmax).any(1)
    hue_by_code = hue.reshape(len(spec.codes), kmax) > 0
    hue_code = np.where([hue_by_code[ci, :w].all() for ci, w in enumerate(widths)], 1, np.where(hue_by_code.any(1), 2, 0))
    return RecipeKinds(kind, every, recipe_has, colour_entries, luma_code, luma_entries, region_code, regions.to(device),
                       hue_code.astype(np.int8), torch.from_numpy(hue).to(device))


def edit_plan(layout: CodeLayout, code: Any, value: Any, relative: Any, strength: Any,
              recipe: RecipeTables | None = None, margin: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The part of :func:`edit_latents` that does not depend on the latents, on the host in numpy
    (no tensor operations): per row (N,) arrays of the drawn ``code``, ``value``, ``relative`` and
    ``strength`` (numpy, or host tensors) -> per row columns for :func:`apply_plan` (:data:`PLAN_DTYPES`).
    With ``recipe`` and no relative categorical row, also each row's gain times strength (float32, as the
    device multiplies them) and local-regeneration threshold. With ``margin`` (:func:`colour_margins`) and a
    colour row, the columns :func:`colour_margin` reads."""
    code = np.asarray(code, dtype=np.int64)
    start, width, cat, entry, move, move_per_column = layout.per_code[code].T
    value = np.asarray(value, dtype=np.float64)
    rel = np.asarray(relative, dtype=bool) * cat  # relative categorical rows: 1
    strength = np.asarray(strength, dtype=np.float32)
    plan = {
        # the new category = (column of the face's category * rel + offset) mod width (0 for continuous codes)
        "rel": rel, "offset": np.round(value).astype(np.int64) - start * rel, "width": width, "start": start,
        "categorical": cat.astype(bool), "value": value.astype(np.float32),  # the target: the new category, or value
        "scale": np.where(cat, 1.0, value).astype(np.float32),  # goal: one-hot of the new category, or the value
        "entry": entry, "move": move, "move_per_column": move_per_column,  # entry + new; move + column * that + new
        "strength": strength, "transfer_strength": np.clip(strength, 0, 1),
        "inside": layout.inside[code],  # (N, code_dim): the code's columns
    }
    if not rel.any():  # no relative categorical row: the new category, and what follows from it, is known here
        new = np.remainder(plan["offset"], width)
        onehot = np.arange(layout.inside.shape[1]) == (start + new)[:, None]
        plan.update(entry_new=entry + new, move_new=move + new,
                    target=np.where(plan["categorical"], new.astype(np.float32), plan["value"]),
                    goal=onehot.astype(np.float32) * plan["scale"][:, None])
        if recipe is not None and recipe.host is not None:
            gain, threshold = recipe.host[plan["entry_new"]].T
            plan.update(rate=(gain * strength)[:, None], threshold=threshold)
    if margin is not None and margin[code, 0].any():  # colour rows: the code's column, and (N, 4) least move, the side
        least, low, high = margin[code].T  # of a value at the face's own (1: up), the drawn range less the value
        plan.update(margin_at=start[:, None], margin=np.stack([least, value < (low + high) / 2, low - value, high - value], 1))
    return plan


PLAN_DTYPES = {"rel": torch.long, "offset": torch.long, "width": torch.long, "start": torch.long,
               "categorical": torch.bool, "value": torch.float32, "scale": torch.float32, "entry": torch.long,
               "move": torch.long, "move_per_column": torch.long, "strength": torch.float32,
               "transfer_strength": torch.float32, "inside": torch.bool,
               # planned on the host when no row is a relative categorical edit (no row's new category depends on its face):
               "entry_new": torch.long, "move_new": torch.long, "target": torch.float32, "goal": torch.float32,
               "rate": torch.float32, "threshold": torch.float32,
               "margin_at": torch.long, "margin": torch.float32}  # colour rows (colour_margins)
KNOWN_NEW = ("rel", "offset", "width", "start", "categorical", "value", "scale", "entry", "move")  # unread when "goal" is planned


def plan_columns(plan: dict[str, np.ndarray], content_rows: int | None = None,
                 transfer_rows: int | None = None, float32: bool = False, entries: bool = True) -> dict[str, np.ndarray]:
    """``plan`` (:func:`edit_plan`) less the columns :func:`apply_plan` will not read with these
    ``content_rows`` / ``transfer_rows`` (fewer tensors to make and send). ``float32``: the latents are float32
    (the planned rates apply); ``entries``: the caller reads the rows' recipe entries (else, with the rates, the
    entries and thresholds are not sent)."""
    drop = set(KNOWN_NEW) if "goal" in plan else {"entry_new", "move_new", "target", "goal", "rate", "threshold"}
    if "rate" in plan and float32:
        drop |= {"threshold"} | ({"strength"} if content_rows == 0 else set()) | (set() if entries else {"entry_new"})
    if content_rows == 0 and transfer_rows == 0:
        drop |= {"move", "move_new", "move_per_column"}
    if transfer_rows == 0:
        drop.add("transfer_strength")
    return {k: v for k, v in plan.items() if k not in drop}


def apply_plan(latent: Tensor, layout: CodeLayout, recipe: RecipeTables, plan: dict[str, Tensor],
               inplace: bool = False, content_rows: int | None = None,
               transfer_rows: int | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The latent-dependent part of :func:`edit_latents`, in a fixed number of operations on the
    device: ``plan`` is :func:`edit_plan`'s columns as tensors there (:data:`PLAN_DTYPES`).
    ``content_rows`` / ``transfer_rows``: only the first that many rows have a content shift /
    a selective transfer (their recipe entries are zero for the rest: the same result, less work; None: all).
    Returns (edited latents, target value per row (float32), local-regeneration threshold per row,
    :class:`RecipeTables` entry per row)."""
    p, nd, dtype = plan, layout.noise_dim, latent.dtype
    out = latent if inplace else latent.clone()
    codes = part(out, (None, (nd, None)))  # (a view kept with a work buffer)
    c, t, table = content_rows, transfer_rows, recipe.content
    as_dtype = (lambda v: v) if dtype == torch.float32 else (lambda v: v.to(dtype))  # the plan's floats are float32
    if "goal" in p:  # the new categories were known on the host (edit_plan): the face's category only places the move
        entry, target, move = p.get("entry_new"), p["target"], None
        if c != 0 or t != 0:
            column = torch.where(p["inside"], codes, constant(-math.inf, dtype, codes.device)).argmax(1)  # the face's category, as a column
            move = torch.addcmul(p["move_new"], column, p["move_per_column"])
        change = torch.sub(p["goal"], codes)
    else:
        column = torch.where(p["inside"], codes, constant(-math.inf, dtype, codes.device)).argmax(1)  # the face's category, as a column
        move = torch.addcmul(p["move"], column, p["move_per_column"]) if c != 0 or t != 0 else None
        new = column.mul_(p["rel"]).add_(p["offset"]).remainder_(p["width"])
        if move is not None:
            move.add_(new)
        entry = torch.add(p["entry"], new)
        target = torch.where(p["categorical"], new, p["value"])
        goal = (layout.columns == torch.add(p["start"], new)[:, None]).to(dtype).mul_(as_dtype(p["scale"][:, None]))
        change = goal.sub_(codes)
    s = as_dtype(p["strength"]) if "strength" in p else None
    if "goal" in p and "rate" in p and dtype == torch.float32:  # gain x strength and threshold planned on the host
        rate, threshold = p["rate"], p.get("threshold")
    else:
        settings = recipe.gain_regenerate.index_select(0, entry)
        rate, threshold = (settings[:, 0] * s)[:, None], settings[:, 1]
    if "margin_at" in p:  # random colour edits: moved off the face's own value
        target = colour_margin(change, rate, p, target)
    moved = torch.addcmul(codes, rate, change)
    moved = torch.clamp(moved, layout.low, layout.high)  # continuous codes saturate at their range
    torch.where(p["inside"], moved, codes, out=codes)
    if c != 0 or t != 0:  # (no rows with a content shift / a transfer: nothing to do)
        rows = table.index_select(0, move[: None if c is None or t is None else max(c, t)])  # one gather for both
        content = out[:, :nd]
        if c != 0:
            content[:c].addcmul_(s[:c, None], rows[:c, 0])
        if t != 0:
            transfer = rows[:t, 2].mul_(as_dtype(p["transfer_strength"][:t])[:, None])
            content[:t].lerp_(rows[:t, 1], transfer)
    return out, target, threshold, entry


def colour_margins(spec: LatentSpec, colour: np.ndarray, ranges: dict[int, tuple[float, float]],
                   least: float) -> np.ndarray | None:
    """The batch path's :meth:`genaug.engine.core.Engine._colour_margin` table, on the host by code: (codes, 3) float64
    of the least code move at strength 1 x gain (``least``, :data:`genaug.engine.colour_margin.COLOUR_MARGIN`; 0: none) of a
    continuous code whose recipe is ``colour`` (``colour`` by code), and the (low, high) its random draws come from
    (``ranges``, else the code's range). None when no code has one."""
    table = np.zeros((len(spec.codes), 3))
    for ci, c in enumerate(spec.codes):
        if colour[ci] and not spec.is_categorical(ci):
            table[ci] = (least, *ranges.get(ci, (c.low, c.high)))  # type: ignore[attr-defined]
    return table if table[:, 0].any() else None


def colour_margin(change: Tensor, rate: Tensor, p: dict[str, Tensor], target: Tensor) -> Tensor:
    """:meth:`genaug.engine.core.Engine._colour_margin` on the device, in a fixed number of operations: a row whose
    code change ``change`` (N, code_dim; the value less the face's own in column ``margin_at``) moves its code less
    than the least move at its ``rate`` (gain x strength, (N, 1)) is moved out by it, on the side of the value (else the
    other, as far out), within the drawn range (neither fits: as drawn) - :func:`genaug.engine.colour_margin.margin_edits`'
    rule. ``p``: :func:`edit_plan`'s ``margin_at`` and ``margin`` columns (a least move of 0: no margin). Works in place
    on ``change``; returns ``target`` (N,) moved with it (the value applied). On the host the arithmetic on these few
    numbers per row is numpy's (the same operations; a fraction of torch's time an operation)."""
    margin = p["margin"] if p["margin"].dtype == change.dtype else p["margin"].to(change.dtype)
    if _on_host(change):
        codes, at = host_array(change), host_array(p["margin_at"])[:, 0]
        rows = np.arange(len(codes))
        with np.errstate(divide="ignore", invalid="ignore"):  # a rate of 0 (strength 0): no move, silently as torch's
            shift = _margin_rule(np, codes[rows, at][:, None], host_array(rate), host_array(margin))[:, 0]
        codes[rows, at] += shift
        return torch.from_numpy(host_array(target) + shift)
    shift = _margin_rule(torch, change.gather(1, p["margin_at"]), rate, margin)
    change.scatter_add_(1, p["margin_at"], shift)
    return target + shift.view(-1)


def _margin_rule(xp: Any, asked: Any, rate: Any, margin: Any) -> Any:
    """:func:`colour_margin`'s shift (N, 1) of the code change ``asked`` (N, 1; value less own) at ``rate`` (N, 1), from
    the ``margin`` columns (N, 4); ``xp``: numpy (host arrays) or torch (the same operations on the device)."""
    least, tie, low, high = (margin[:, i : i + 1] for i in range(4))
    step = least / rate  # the code change that moves the code the least move
    off = (xp.heaviside(asked, tie) * 2 - 1) * step  # +-step, on the value's side (0: tie's)
    near = (off - asked) * off  # > 0: |asked| < step (NaN: no)
    second = -(off + asked * 2)  # own - off - asked - value: the other side, as far out
    fits = lambda v: xp.minimum(xp.maximum(v, low), high) == v  # noqa: E731 - within the drawn range
    shift = xp.where(fits(off), off, xp.where(fits(second), second, 0.0))
    return xp.where(near > 0, shift, 0.0)  # moved out by the least move: value + off, on the value's side


def edit_latents(latent: Tensor, layout: CodeLayout, recipe: RecipeTables, code: Tensor, value: Tensor,
                 relative: Tensor, strength: Tensor, inplace: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """One edit per row: ``code`` (N,) long, ``value`` (N,) (a category offset where ``relative``,
    else the category or continuous value), ``strength`` (N,). Same result as
    :func:`genaug.engine.edits.apply_edits` with the bundle's gain, shift and transfer at that
    strength (what :meth:`genaug.engine.core.Engine.render_edits` does). The parameters are read to
    the host for :func:`edit_plan` (the batch transform plans on the host before sending anything);
    the rest is :func:`apply_plan` on the latent's device.

    Returns (edited latents (N, D) - ``latent`` itself, edited in place, when ``inplace`` -, the
    absolute target value per row (N,), the local-regeneration threshold per row (N,))."""
    host = (t.detach().cpu().numpy() for t in (code, value, relative, strength))
    plan = {k: torch.from_numpy(v).to(latent.device, PLAN_DTYPES[k]) for k, v in edit_plan(layout, *host, recipe=recipe).items()}
    return apply_plan(latent, layout, recipe, plan, inplace)[:3]


_MINUS_ONE = torch.tensor(-1.0, dtype=torch.float32, device="cpu")  # (host float32 under any importer's defaults)
# ``torch.add(_MINUS_ONE, t, alpha=2)`` is ``2 t - 1`` in one pass


def blend(x01: Tensor, base01: Tensor, edited: Tensor, mode: str, weights: Tensor, out: Tensor | None = None) -> Tensor:
    """:func:`genaug.engine.render.render` for a device batch, on the image scale: ``x01`` is the
    model-frame input and ``base01`` the render ``(G(latent) + 1) / 2`` (as
    :class:`genaug.engine.latent_table.LatentTable` keeps it), both in [0, 1], ``edited`` the
    generator's render of the edited latents in [-1, 1]; ``weights`` (N, 1, C): each row's
    local-regeneration threshold as :func:`genaug.engine.render.mask_weights` of half the threshold
    (``RecipeTables.mask_weights``; 0 = off). Returns ``(render(2 x01 - 1, 2 base01 - 1, edited,
    mode, tau) + 1) / 2``, in [0, 1]. Local regeneration is a mask weight on every row, no row
    selection on the host. Works in place on ``base01`` and ``edited`` (the caller's own buffers):
    six passes over the images, two of them the mask's. ``out``: where to write the result (delta mode)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    e01 = torch.add(_HALF, edited, alpha=0.5, out=edited)  # (edited + 1) / 2
    if mode == "regenerate":
        return e01.clamp_(0, 1)
    half_change = torch.sub(e01, base01, out=base01)  # (edited - base) / 2
    out = torch.add(x01, half_change, out=out)  # delta: x + change
    mask = local_mask_of(half_change.abs_(), weights)
    # where the mask is 1 the photo's residual x - base goes too: the result is edited there
    return torch.lerp(out, e01, mask, out=out).clamp_(0, 1)
