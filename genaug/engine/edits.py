"""Sweep plans -> edited latents.

A plan maps codes (name, ``"c<i>"`` or index) to values: ``"all"`` (every category of a
categorical code), an int ``n`` (n evenly spaced values over a continuous code's range, or
the first n categories), or an explicit list. Each entry edits *one* code at a time, so
``{"smile": [-1, 0, 1], "c0": "all"}`` gives 3 + k variants of each latent.
"""
from __future__ import annotations

import hashlib
import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Union

import torch
from torch import Tensor

from ..distenv import say_once
from ..faces.controls import CONTROL_NAMES
from ..models.latent import LatentSpec
from .codes import all_code_names, code_index, code_ranges, control_of, default_codes
from .codes import check_edit_options  # noqa: F401  (imported from here by tests and tools)

Values = Union[str, int, float, list]
Plan = dict[Union[str, int], Values]


class Edit(NamedTuple):
    """Set one code to one value (a category index or a continuous value). A named tuple, so a
    replay holding edits serialises to JSON (``[code, value, relative]``) and loads back.

    ``relative=True`` (categorical codes only; what random augmentation draws) moves the code
    ``value`` categories on from the face's own category (argmax of its inverted latent), modulo
    ``k``: an offset in 1..k-1 always changes the face (for a binary code it switches it), so a
    random edit is never a no-op. :func:`resolve_edits` turns it into the absolute edit it became."""

    code: int
    value: float
    relative: bool = False

    def describe(self, spec: LatentSpec) -> str:
        control = control_of(spec, self.code)
        if control is not None:
            return control.describe(self.value)
        c = spec.codes[self.code]
        if self.relative:
            return f"{c.name}=switch" if getattr(c, "k", 0) == 2 else f"{c.name}+{int(self.value)}"
        return f"{c.name}={int(self.value) if spec.is_categorical(self.code) else round(self.value, 3)}"


def categories(latent: Tensor, spec: LatentSpec) -> dict[int, list[int]]:
    """Each categorical code's current category (argmax) per row of ``latent``, read in one transfer."""
    if not spec.categorical:
        return {}
    codes = latent[:, spec.noise_dim : spec.noise_dim + spec.categorical_dim].detach().cpu()
    out, start = {}, 0
    for i, c in enumerate(spec.categorical):
        out[i] = codes[:, start : start + c.k].argmax(1).tolist()
        start += c.k
    return out


def check_edits(spec: LatentSpec, edits: Any) -> list[Edit]:
    """Edits as given by a user, as the engine applies them: each an :class:`Edit` or a
    ``(code, value[, relative])`` tuple or list (a replay's JSON), ``code`` a name, ``"c<i>"`` or
    index; a categorical value must be a category (relative: an offset 1..k-1). ``ValueError``
    naming the edit otherwise."""
    out = []
    for i, e in enumerate(edits):
        try:
            code, value, *rest = e
            if len(rest) > 1:
                raise ValueError("too many fields")
            ci = code_index(spec, int(code) if isinstance(code, numbers.Integral) and not isinstance(code, bool) else code)
            value, relative = float(value), bool(rest[0]) if rest else False
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise ValueError(f"edits[{i}] = {e!r}: an edit is Edit(code, value) or (code, value[, relative]) with code "
                             f"a name or index ({(err.args or [''])[0]})") from None
        control = control_of(spec, ci)
        categorical = control is None and spec.is_categorical(ci)
        k = getattr(spec.codes[ci], "k", 0) if categorical else 0
        lo, hi = (control.low, control.high) if control is not None else \
            (-math.inf, math.inf) if categorical else (spec.codes[ci].low, spec.codes[ci].high)  # type: ignore[union-attr]
        if not math.isfinite(value) or (categorical and (value != int(value) or not int(relative) <= value < k)) \
                or not lo <= value <= hi:  # a continuous value past its range would be clamped to the end: refused
            want = f"a category {int(relative)}..{k - 1}" if categorical else f"a value in [{lo:g}, {hi:g}]"
            raise ValueError(f"edits[{i}]: {all_code_names(spec)[ci]} takes {want}, got {value:g}")
        if relative and not categorical:
            raise ValueError(f"edits[{i}]: relative edits move categorical codes; {all_code_names(spec)[ci]} is continuous")
        out.append(Edit(ci, value, relative))
    return out


def resolve_edits(latent: Tensor, spec: LatentSpec, edits: list[Edit], cats: dict[int, list[int]] | None = None) -> list[Edit]:
    """Relative categorical edits -> the absolute edits they mean for each row of ``latent``
    (``cats``: :func:`categories` of ``latent`` if already known)."""
    if not any(e.relative for e in edits):
        return list(edits)
    cats = categories(latent, spec) if cats is None else cats
    return [Edit(e.code, float((cats[e.code][row] + int(e.value)) % spec.codes[e.code].k)) if e.relative else e  # type: ignore[attr-defined]
            for row, e in enumerate(edits)]


def code_values(spec: LatentSpec, code: str | int, values: Values = "all") -> list[float]:
    """The values a plan entry expands to (validated against the code)."""
    i = spec.code_index(code)
    c = spec.codes[i]
    if spec.is_categorical(i):
        if values == "all":
            return [float(v) for v in range(c.k)]
        vals = list(range(min(int(values), c.k))) if isinstance(values, int) else list(values)
        for v in vals:
            if not (float(v).is_integer() and 0 <= int(v) < c.k):
                raise ValueError(f"code {c.name!r} has categories 0..{c.k - 1}, got {v!r}")
        return [float(v) for v in vals]
    if values == "all":
        values = 5
    if isinstance(values, int):
        if values < 1:
            raise ValueError(f"number of sweep values must be >= 1, got {values}")
        return torch.linspace(c.low, c.high, values).tolist() if values > 1 else [(c.low + c.high) / 2]
    if isinstance(values, str):
        raise ValueError(f"plan values must be 'all', an int or a list, got {values!r}")
    return [float(v) for v in (values if isinstance(values, (list, tuple)) else [values])]


def plan_edits(spec: LatentSpec, plan: Plan | None = None) -> list[Edit]:
    """Expand a plan to a flat list of edits. ``None`` sweeps every code ("all" / 5 values)."""
    if plan is None:
        plan = {i: "all" for i in range(len(spec.codes))}
    if not isinstance(plan, dict) or not plan:
        raise ValueError(f"a sweep plan is a non-empty dict of code -> values, got {plan!r}")
    return [Edit(spec.code_index(k), v) for k, vals in plan.items() for v in code_values(spec, k, vals)]


def apply_edits(latent: Tensor, spec: LatentSpec, edits: list[Edit], strength: float | Tensor = 1.0,
                directions: dict[int, Tensor] | None = None, shift: float | Tensor = 0.0,
                transfer: dict[tuple[int, int], Tensor] | None = None, transfer_amount: float | Tensor = 1.0) -> Tensor:
    """Apply one edit per row of ``latent`` (``len(edits) == N``), interpolated by ``strength``
    (0 = unchanged, 1 = the edit, >1 extrapolates; a continuous code stays within its range).
    ``directions`` (code index -> (k, noise_dim) mean content per category, see
    :attr:`genaug.bundle.Bundle.directions`) with ``shift`` (a number or one per row) also move the
    content of a categorical edit by ``shift`` x (mean of the new category - mean of the face's).
    ``transfer`` ((code, new category) -> (noise_dim,) weights in [0, 1], see
    :meth:`genaug.bundle.Bundle.transfer_weights`) then pulls those parts of the content towards the
    new category's mean, by ``transfer_amount`` (clamped to [0, 1]; a number or one per row).
    Built on the host, applied in a few batched operations. Returns a new (N, D) tensor."""
    n = latent.shape[0]
    if len(edits) != n:
        raise ValueError(f"need one edit per latent row: {len(edits)} edits for {n} rows")
    # the faces' categories (one device-to-host read) are needed for relative edits and content shifts only
    needed = bool(directions) or any(e.relative for e in edits)
    cats = categories(latent, spec) if needed else {}
    edits = resolve_edits(latent, spec, edits, cats)
    nd = spec.noise_dim
    cells: list[tuple[int, int]] = []  # (row, column of the code part) the edits set
    values: list[float] = []
    moves: list[tuple[int, int, int, int]] = []  # (row, code, from, to) of categorical edits
    for row, e in enumerate(edits):
        sl = spec.code_slice(e.code)
        if spec.is_categorical(e.code):
            cells += [(row, c - nd) for c in range(sl.start, sl.stop)]
            values += [float(c - sl.start == int(e.value)) for c in range(sl.start, sl.stop)]
            if directions and e.code in directions:
                moves.append((row, e.code, cats[e.code][row], int(e.value)))
        else:
            cells.append((row, sl.start - nd))
            values.append(float(e.value))
    dev = latent.device
    mask = torch.zeros(n, spec.code_dim, dtype=torch.bool)
    value = torch.zeros(n, spec.code_dim, dtype=latent.dtype)
    if cells:
        r, c = torch.tensor(cells).T
        mask[r, c] = True
        value[r, c] = torch.tensor(values, dtype=latent.dtype)
    mask, value = mask.to(dev), value.to(dev)
    s = torch.as_tensor(strength, dtype=latent.dtype, device=dev).reshape(-1, 1)
    codes = latent[:, nd:]
    moved = codes + s * (value - codes)
    if spec.continuous:  # extrapolation (strength > 1) saturates at a continuous code's range
        start = spec.categorical_dim
        lo = torch.tensor([c.low for c in spec.continuous], dtype=latent.dtype, device=dev)
        hi = torch.tensor([c.high for c in spec.continuous], dtype=latent.dtype, device=dev)
        moved[:, start:] = torch.maximum(torch.minimum(moved[:, start:], hi), lo)
    out = torch.cat([latent[:, :nd], torch.where(mask, moved, codes)], 1)
    if moves:
        order = sorted(directions)  # type: ignore[arg-type]
        offset = dict(zip(order, [0, *torch.tensor([len(directions[c]) for c in order]).cumsum(0).tolist()]))  # type: ignore[index]
        table = torch.cat([directions[c] for c in order]).to(dev, latent.dtype)  # type: ignore[index]
        rows = torch.tensor([m[0] for m in moves], device=dev)
        new, old = (torch.tensor([offset[m[1]] + m[j] for m in moves], device=dev) for j in (3, 2))
        delta = table[new] - table[old]
        amount = torch.as_tensor(shift, dtype=latent.dtype, device=dev).reshape(-1).expand(n)[rows]
        out[rows, :nd] += amount[:, None] * delta
        if transfer:
            zero = torch.zeros(nd)
            w = torch.stack([transfer.get((m[1], m[3]), zero) for m in moves]).to(dev, latent.dtype)
            a = torch.as_tensor(transfer_amount, dtype=latent.dtype, device=dev).reshape(-1).expand(n)[rows].clamp(0, 1)
            out[rows, :nd] += a[:, None] * w * (table[new] - out[rows, :nd])
    return out


def apply_recipes(latent: Tensor, bundle: Any, edits: list[Edit], strength: float | Tensor = 1.0,
                  recipes: list[Any] | None = None) -> Tensor:
    """The one place edit recipes act: ``edits`` (one per row; relative ones are resolved first,
    so each row gets the recipe of the edit it becomes) applied by
    :func:`apply_edits` with each edit's recipe (:meth:`genaug.bundle.Bundle.recipe`, or the given
    ``recipes``, one per row): the code moves ``strength x gain`` of the way, the content
    ``strength x shift`` along the code's direction, and the recipe's transfer pulls the
    direction's region towards the new category by ``strength`` (clamped to [0, 1]). Strength 1 is
    the bundle's full edit. (A recipe's ``regenerate`` acts in rendering, see :func:`render`.)"""
    edits = resolve_edits(latent, bundle.spec, edits)
    recipes = [bundle.recipe(e.code, e.value) for e in edits] if recipes is None else list(recipes)
    if len(recipes) != len(edits):
        raise ValueError(f"need one recipe per edit: {len(recipes)} recipes for {len(edits)} edits")
    wanted = torch.as_tensor(strength, dtype=torch.float32).cpu().reshape(-1).expand(len(edits))
    gain = torch.tensor([r.gain for r in recipes], dtype=torch.float32)
    shift = torch.tensor([r.shift for r in recipes], dtype=torch.float32)
    directions = bundle.direction_table()
    transfer: dict[tuple[int, int], Tensor] = {}
    for e, r in zip(edits, recipes):
        if r.transfer is not None and e.code in directions:
            key = (e.code, int(e.value))
            weights = bundle.transfer_weights(e.code, int(e.value), r.transfer)
            if key in transfer and transfer[key] is not weights:
                raise ValueError(f"rows editing {key} carry different transfers; give one transfer per edit in a batch")
            transfer[key] = weights
    return apply_edits(latent, bundle.spec, edits, wanted * gain, directions, wanted * shift, transfer, wanted)


def sweep(latent: Tensor, spec: LatentSpec, plan: Plan | None = None, strength: float = 1.0) -> tuple[Tensor, list[Edit]]:
    """Every edit of the plan applied to every latent: returns ((N*E, D) latents, edits per row),
    rows ordered latent-major (all edits of latent 0 first)."""
    edits = plan_edits(spec, plan)
    rep = latent.repeat_interleave(len(edits), 0)
    row_edits = edits * latent.shape[0]
    return apply_edits(rep, spec, row_edits, strength), row_edits


def derive_seed(seed: int, index: int) -> int:
    """The seed of one item's randomness: a hash of (seed, item index) only, so sharded, resumed
    and differently batched runs draw the same."""
    digest = hashlib.blake2b(f"genaug-expand:{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclass
class AugmentInfo:
    """What :meth:`genaug.engine.core.Engine.augment_tensor` (and ``augment``) did to each row."""

    edits: list[Edit]  # as applied (a control's value as fitted to the face)
    latent: Tensor  # (N, D) inverted latents; NaN when every row was an image-space control (not inverted)
    edited: Tensor  # (N, D) latents after the edits (NaN likewise)
    score: Tensor  # (N,) reconstruction score of the inversion (NaN likewise)
    kept: Tensor  # (N,) bool: False where the row came back unchanged (a gate rejected every try, no face, no room)
    cache_hits: int = 0
    descriptions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EditDraw:
    """Sampled edit parameters as tensors (kornia style): draw first, then apply or replay."""

    code: Tensor  # (N,) int64 code index
    value: Tensor  # (N,) float64 category offset (categorical: 1..k-1, relative) or continuous value
    relative: Tensor  # (N,) bool: categorical rows, whose value is an offset from the face's category

    def edits(self) -> list[Edit]:
        return [Edit(int(c), float(v), bool(r)) for c, v, r in zip(self.code.tolist(), self.value.tolist(), self.relative.tolist())]


def draw_edits(
    spec: LatentSpec,
    n: int,
    generator: torch.Generator | None = None,
    codes: list[str | int] | None = None,
    bounds: dict[str | int, tuple[float, float]] | None = None,
) -> EditDraw:
    """``n`` random edits: a code uniformly from ``codes`` (default :func:`default_codes`), then
    another category than the face's own uniformly (a relative edit, see :class:`Edit`), or a
    continuous value uniformly within ``bounds`` (default its range)."""
    idx = [code_index(spec, c) for c in (codes if codes is not None else default_codes(spec))]
    if not idx:
        raise ValueError("random edits need at least one code")
    ranges = code_ranges(spec, bounds)
    code = torch.tensor(idx, dtype=torch.long)[torch.randint(0, len(idx), (n,), generator=generator)]
    u = torch.rand(n, generator=generator).double()
    controls = [control_of(spec, len(spec.codes) + j) for j in range(len(CONTROL_NAMES))]
    k = torch.tensor([float(getattr(c, "k", 0)) for c in spec.codes] + [0.0] * len(controls), dtype=torch.float64)[code]
    lo, hi = (torch.tensor([ranges.get(i, (getattr(c, "low", 0.0), getattr(c, "high", 0.0)))[j]
                            for i, c in enumerate(list(spec.codes) + controls)], dtype=torch.float64)[code] for j in (0, 1))
    categorical = torch.tensor([spec.is_categorical(i) for i in range(len(spec.codes))] + [False] * len(controls))[code]
    value = torch.where(categorical, 1 + torch.minimum((u * (k - 1)).floor(), k - 2), lo + (hi - lo) * u)
    step = torch.tensor([0.0] * len(spec.codes) + [c.min_step for c in controls], dtype=torch.float64)[code]
    for _ in range(1000):  # a control drawn near 0 would be a no-op: re-draw it (bounds reach past min_step)
        near = value.abs() < step
        if not bool(near.any()):
            break
        value[near] = lo[near] + (hi[near] - lo[near]) * torch.rand(int(near.sum()), generator=generator).double()
    return EditDraw(code, value, categorical)


def random_edits(spec: LatentSpec, n: int, generator: torch.Generator | None = None, **draw: Any) -> list[Edit]:
    """:func:`draw_edits` (``codes``, ``bounds``) as a list of :class:`Edit`."""
    return draw_edits(spec, n, generator, **draw).edits()


def redraw_distinct(spec: LatentSpec, plan: list[Edit], redraw: list[bool], generators: list[torch.Generator],
                    codes: list[int], bounds: dict[str | int, tuple[float, float]] | None = None) -> list[Edit]:
    """``plan`` (one source's variant edits) with the entries flagged in ``redraw`` drawn anew among ``codes`` (latent
    codes or controls), entry ``j`` from ``generators[j]`` (one per entry up to the last flagged), as :func:`random_edits`
    draws, except that a categorical move another entry makes is not drawn again: the variants stay distinct (once
    every move is taken they may repeat, as :func:`variant_edits`' do)."""
    used = {(e.code, e.value) for e, r in zip(plan, redraw) if not r and e.relative}
    out = list(plan)
    for j, g in enumerate(generators):
        if not redraw[j]:
            continue
        free = {c: [m for m in range(1, spec.codes[c].k) if (c, float(m)) not in used]  # type: ignore[attr-defined]
                for c in codes if control_of(spec, c) is None and spec.is_categorical(c)}
        edit = random_edits(spec, 1, g, codes=[c for c in codes if free.get(c, True)] or codes, bounds=bounds)[0]
        if edit.relative and free[edit.code] and (edit.code, edit.value) in used:  # an unused move of that code instead
            edit = Edit(edit.code, float(free[edit.code][int(torch.randint(0, len(free[edit.code]), (1,), generator=g))]), True)
        used.add((edit.code, edit.value))
        out[j] = edit
    return out


def variant_edits(
    spec: LatentSpec,
    seed: int,
    index: int,
    variants: int,
    codes: list[str | int] | None = None,
    bounds: dict[str | int, tuple[float, float]] | None = None,
) -> list[Edit]:
    """The ``variants`` edits of source ``index`` — a pure function of (seed, index) — drawn
    *without replacement* so no two are the same: each variant picks a code uniformly among those
    with edits left (default :func:`default_codes`), then an unused move of a categorical code to
    another category than the face's own (relative edits: k-1 per code, so a binary code gives one
    switch) or a fresh uniform value of a continuous one (continuous codes never run out). When only
    categorical codes are allowed and ``variants`` exceeds their k-1 moves each, every distinct edit
    is used once, then the plan starts again (edits repeat) and a warning says so, once per run
    (:func:`genaug.distenv.say_once`: not again in each DataLoader worker)."""
    if variants < 0:
        raise ValueError(f"variants must be >= 0, got {variants}")
    idx = [code_index(spec, c) for c in (codes if codes is not None else default_codes(spec))]
    if not idx:
        raise ValueError("random edits need at least one code")
    ranges = code_ranges(spec, bounds)
    g = torch.Generator().manual_seed(derive_seed(seed, index))
    left = {ci: list(range(1, spec.codes[ci].k)) for ci in idx if control_of(spec, ci) is None and spec.is_categorical(ci)}  # type: ignore[attr-defined]
    out: list[Edit] = []
    for _ in range(variants):
        open_codes = [ci for ci in idx if ci not in left or left[ci]]
        if not open_codes:
            names = [spec.codes[ci].name for ci in idx]
            if len(out) == sum(spec.codes[ci].k - 1 for ci in left) and say_once(f"edits_repeat:{variants}:{names}"):  # type: ignore[attr-defined]
                warnings.warn(f"{variants} variants exceed the {len(out)} distinct edits of codes "
                              f"{names}; edits repeat", stacklevel=2)
            left = {ci: list(range(1, spec.codes[ci].k)) for ci in left}  # type: ignore[attr-defined]
            open_codes = idx
        ci = open_codes[int(torch.randint(0, len(open_codes), (1,), generator=g))]
        if ci in left:
            out.append(Edit(ci, float(left[ci].pop(int(torch.randint(0, len(left[ci]), (1,), generator=g)))), relative=True))
        else:
            c = control_of(spec, ci) or spec.codes[ci]
            lo, hi = ranges.get(ci, (c.low, c.high))  # type: ignore[union-attr]
            value = lo + (hi - lo) * float(torch.rand(1, generator=g, dtype=torch.float64))
            for _ in range(1000):  # a control near 0 is a no-op: re-draw (its bounds reach past min_step)
                if abs(value) >= getattr(c, "min_step", 0.0):
                    break
                value = lo + (hi - lo) * float(torch.rand(1, generator=g, dtype=torch.float64))
            out.append(Edit(ci, value))
    return out
