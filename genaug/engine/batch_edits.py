"""Edits as tensors on the device: the batch path's version of :func:`genaug.engine.edits.apply_edits`
and :func:`genaug.engine.render.render` with no per-row Python and no device-to-host read.

Per engine, two sets of tables are built once and kept on the device:

* :class:`CodeLayout` (from the latent spec): where each code sits in the latent, its width
  (``k`` for a categorical code, 1 for a continuous one) and the range of each code column;
* :class:`RecipeTables` (from the bundle's per-edit runtime settings, :func:`recipe_tables`, the one
  place that reads them): gain, content shift, local-regeneration threshold and selective-transfer
  weights, indexed by (code index, target category; 0 for continuous codes), plus the content
  directions on the same index.

:func:`edit_latents` gathers each row's entries with tensor indexing and applies the edits in a
fixed number of batched operations whatever the batch size; :func:`blend` renders them (``delta``
with local regeneration as a mask multiply: a threshold of 0 multiplies by 0 instead of selecting rows).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..models.latent import LatentSpec
from .render import MODES, local_mask


@dataclass(frozen=True)
class CodeLayout:
    """The latent spec as device tensors (one entry per code, or per code column)."""

    noise_dim: int
    kmax: int  # the widest categorical code (1 without categorical codes)
    start: Tensor  # (codes,) long: first column of the code inside the code part of the latent
    width: Tensor  # (codes,) long: k for a categorical code, 1 for a continuous one
    categorical: Tensor  # (codes,) bool
    low: Tensor  # (code_dim,) range of each code column (-inf / inf for categorical columns)
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
    dev = torch.device(device)
    as_long = lambda v: torch.tensor(v, dtype=torch.long, device=dev)  # noqa: E731
    return CodeLayout(spec.noise_dim, max([w for w, c in zip(widths, cats) if c], default=1), as_long(starts),
                      as_long(widths), torch.tensor(cats, dtype=torch.bool, device=dev),
                      torch.tensor(lows, device=dev), torch.tensor(highs, device=dev))


@dataclass(frozen=True)
class RecipeTables:
    """Per-edit runtime settings indexed by ``code * kmax + target category`` (0 for continuous codes)."""

    gain: Tensor  # (codes * kmax,) latent-space scale of a full edit
    shift: Tensor  # (codes * kmax,) content shift along the code's direction
    regenerate: Tensor  # (codes * kmax,) local-regeneration threshold (0 = off)
    transfer: Tensor  # (codes * kmax, noise_dim) selective-transfer weights in [0, 1]
    directions: Tensor  # (codes * kmax, noise_dim) mean content per category (0 without a direction)
    moves: Tensor  # (codes * kmax * kmax, noise_dim) mean content of the new category - of the old, at code * kmax^2 + old * kmax + new


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
    per_code = directions.reshape(len(spec.codes), kmax, 1, nd)
    moves = (per_code.transpose(1, 2) - per_code).reshape(-1, nd)  # [code, old, new] = new - old
    dev = torch.device(device)
    return RecipeTables(gain.to(dev), shift.to(dev), regen.to(dev), transfer.to(dev), directions.to(dev), moves.to(dev))


def edit_latents(latent: Tensor, layout: CodeLayout, recipe: RecipeTables, code: Tensor, value: Tensor,
                 relative: Tensor, strength: Tensor, inplace: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """One edit per row, as tensors on the latent's device: ``code`` (N,) long, ``value`` (N,)
    (a category offset where ``relative``, else the category or continuous value), ``strength`` (N,).
    Same result as :func:`genaug.engine.edits.apply_edits` with the bundle's gain, shift and transfer at
    that strength (what :meth:`genaug.engine.core.Engine.render_edits` does).

    Returns (edited latents (N, D) - ``latent`` itself, edited in place, when ``inplace`` -, the
    absolute target value per row (N,), the local-regeneration threshold per row (N,))."""
    nd, dtype = layout.noise_dim, latent.dtype
    codes = latent[:, nd:]
    col = torch.arange(codes.shape[1], device=latent.device)
    start, width, cat = layout.start[code], layout.width[code], layout.categorical[code]
    inside = (col >= start[:, None]) & (col < (start + width)[:, None])  # (N, code_dim): the edited code's columns
    current = torch.where(inside, codes, -torch.inf).argmax(1) - start  # the face's category (categorical rows)
    steps = value.round().long()
    new = torch.where(cat, torch.where(relative, current + steps, steps).remainder(width), 0)
    target = torch.where(cat, new.to(value.dtype), value)
    onehot = (col == (start + new)[:, None]).to(dtype)
    goal = torch.where(cat[:, None], onehot, value[:, None].to(dtype))
    kmax = layout.kmax
    entry = code * kmax + new
    move = (code * kmax + torch.where(cat, current, 0)) * kmax + new
    s = strength.to(dtype)
    moved = torch.addcmul(codes, (s * recipe.gain[entry])[:, None], goal - codes)
    moved = torch.maximum(torch.minimum(moved, layout.high), layout.low)  # continuous codes saturate at their range
    out = latent if inplace else latent.clone()
    out[:, nd:] = torch.where(inside, moved, codes)
    content = out[:, :nd]
    content.addcmul_((s * recipe.shift[entry])[:, None], recipe.moves.index_select(0, move))
    content.lerp_(recipe.directions.index_select(0, entry), recipe.transfer.index_select(0, entry).mul_(s.clamp(0, 1)[:, None]))
    return out, target, recipe.regenerate[entry]


def blend(x: Tensor, base: Tensor, edited: Tensor, mode: str, tau: Tensor) -> Tensor:
    """:func:`genaug.engine.render.render` for a device batch with one threshold per row (``tau`` (N,),
    0 = off): local regeneration as a mask multiply over every row, no row selection on the host.
    Works in place on ``base`` and ``edited`` (the caller's own buffers), and returns ``edited``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "regenerate":
        return edited.clamp_(-1, 1)
    on = tau > 0
    keep = local_mask(edited - base, torch.where(on, tau, 1.0), scratch=True).mul_(on.to(x.dtype).reshape(-1, 1, 1, 1)).neg_().add_(1)
    # x + change + mask * (base - x) = edited + (1 - mask) * (x - base)
    return edited.addcmul_(keep, torch.sub(x, base, out=base)).clamp_(-1, 1)
