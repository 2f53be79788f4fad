"""The one batched pass of :class:`genaug.BatchFaceAug` over the rows drawn a latent-code edit (:func:`augment_rows`):
the rows put in the order of their code's kind, the per-row plan made on the host and sent in one copy, the model
frame, the latent look-up (:mod:`genaug.engine.batch_latents`), the edit (:mod:`genaug.engine.batch_edits`: a random
colour edit moved off the face's own value there), one generator pass, the blend and the colour fit, the paste back
(:mod:`genaug.engine.batch_render`), written back by index.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..faces.framing import face_box
from .batch_edits import _MINUS_ONE, PLAN_DTYPES, BatchParams, apply_plan, blend, edit_plan, plan_columns
from .batch_latents import content_slots, named_slots, stored
from .batch_render import columns, frame, grid_blend, make_grey, paste, recolour
from .colour import _HALF, fit_regressors, sample_grid
from .exposure import expose, light_gain, restore, unlift
from .latent_table import host_array
from .render import luma_only, within_region
from .workspace import part, workspace


def augment_rows(aug: Any, x: Tensor, params: BatchParams, index: Tensor | None, eng: Any,
                 checked: bool = False) -> tuple[Tensor, Tensor]:
    """The latent-code rows of ``params`` edited in ``x`` (on ``eng``'s device) by the transform ``aug`` (its tables and
    work buffers, built by ``BatchFaceAug._engine_on``): returns (batch, target value per row, NaN where not edited).
    ``index``: the rows' dataset indices (latents from ``aug.table``; None: found by content);
    ``checked``: float values of ``x`` are known to lie in [0, 1] (saves a clamp in the content keys).
    The edited rows are worked in the order of their code's kind (``_kind``: blended whole, then
    blended whole and colour-fitted, then colour transform alone; within a kind, rows with a content
    edit first), so each step reads a slice, and written back by index."""
    dev, n = eng.device, x.shape[0]
    rows = np.flatnonzero(host_array(params.apply))  # host bookkeeping in numpy: no tensor operations
    if len(rows) == 0:
        return x.clone(), torch.full((n,), float("nan"), device=dev)
    every, m, delta = len(rows) == n, len(rows), aug.mode == "delta"
    pick = host_array if every else (lambda t: host_array(t)[rows])
    codes = pick(params.code)
    kind = aug._kind[codes] if delta else np.zeros(m, dtype=np.int64)
    shift, transfer = aug._recipe_has[:, 0][codes], aug._recipe_has[:, 1][codes]
    order = np.lexsort((~transfer, ~shift, kind))
    identity = every and np.array_equal(order, np.arange(m))
    pick = (lambda t, pick=pick: pick(t)[order]) if not identity else pick
    codes, shift, transfer = codes[order], shift[order], transfer[order]
    a0, a = int((kind == 0).sum()), int((kind < 2).sum())  # [:a0] plain, [a0:a] fitted too, [a:] grid only
    content_rows, transfer_rows = _prefix(shift), _prefix(transfer)
    table = aug.table if index is not None else aug._content
    float32 = table.rows is not None and table.rows.dtype == torch.float32  # (the first call: the latents are not made yet)
    hue = aug._hue_code[codes[a0:]] if delta else np.zeros(0, dtype=np.int8)  # white balances: keep_hue makes them gains
    hue_by_entry = bool((hue == 2).any())  # a code some of whose entries are: the rows' entries say which
    host = plan_columns(edit_plan(aug._layout, codes, pick(params.value), pick(params.relative), pick(params.strength),
                                  aug._recipe, aug._margin), content_rows, transfer_rows, float32, entries=a > 0 or hue_by_entry)
    if not identity:  # (the identity order reads neither)
        host.update(dest=rows[order], inverse=np.argsort(order))
    if index is not None:
        host["slots"] = pick(index)
    if hue.any() and not hue_by_entry:
        host["free"] = aug._hue_code[codes] == 1
    cols = columns(host, {**PLAN_DTYPES, "dest": torch.long, "inverse": torch.long, "slots": torch.long, "free": torch.float32},
                   dev)
    xr = x if identity else x.index_select(0, cols["dest"])  # the rows in that order
    box = face_box(x.shape[2], x.shape[3], getattr(eng.bundle, "framing", None), aug.framing)
    x01 = frame(xr, box, eng.image_size)  # the model frame in [0, 1]
    full = box == (0, 0, eng.image_size, eng.image_size) and xr.shape[-2:] == x01.shape[-2:]  # no crop, no resize
    # results, in that order; contiguous or channels_last (as the input), the layouts the steps view flat
    # (empty_like would copy any strides, e.g. x.transpose(2, 3)'s, which the colour step cannot view as (N, C, H * W))
    layout = torch.channels_last if channels_last(xr) else torch.contiguous_format
    buf = torch.empty_like(xr, memory_format=layout) if delta and full and xr.dtype == torch.float32 else None
    if m > a0:  # colour edits fit on a ~16 x 16 grid: the photo's, read (strided) while the photo is fresh in cache
        xg = sample_grid(_rows(x01, a0))
        c = xg.shape[1]
        f = workspace(aug._work, "fit", (m - a0, 2 * c + 2, *xg.shape[2:]), torch.float32, dev)
        src = part(f, (None, (0, c))).copy_(xg)
    if index is not None:
        slots, grey = named_slots(aug.table, x01, host["slots"], cols["slots"], eng)
    else:  # a uint8 batch that is the model frame already is hashed as it is
        slots, grey = content_slots(aug._slots, aug._content, x01, xr if full and xr.dtype == torch.uint8 else None, eng, checked,
                                    aug._work, scratch=buf)
    latent = torch.index_select(stored(aug._views, table), 0, slots,
                                out=workspace(aug._work, "latent", (m, table.latent_dim), table.rows.dtype, dev))
    edited, target, _, entry = apply_plan(latent, aug._layout, aug._recipe, cols, True, content_rows, transfer_rows)
    # on the caller's threads (unlike Engine.generate's one CPU thread): the batch path is for throughput; its outputs
    # repeat at a given thread count, and at one thread match the per-image front ends'
    images = eng.bundle.generator(edited) if len(edited) <= eng.batch_size else eng.generate(edited, one_thread=False)
    grey = grey if delta else np.zeros(m, dtype=bool)  # host flags kept with the latents
    parts = []  # (first row, rows in x's dtype)
    if a:
        base = stored(aug._views, table, "base").index_select(0, _rows(slots, 0, a))
        weights = aug._recipe.mask_weights.index_select(0, _rows(entry, 0, a))
        xa = xe = _rows(x01, 0, a)
        gain = None
        if delta and not aug._colour_all[codes[:a]].all():  # named edits: blended at a normal exposure (engine.exposure)
            gain = light_gain(xa, aug._colour_entries.index_select(0, _rows(entry, 0, a)).logical_not())
            xe = expose(xa, gain)
        result = blend(xe, base, _rows(images, 0, a), aug.mode, weights, out=None if buf is None else _rows(buf, 0, a))
        if not delta:  # the generator's face, drawn from a lifted latent (engine.exposure.lift): at the photo's light
            result = unlift(xa, result)
        if delta and aug._luma_code[codes[:a]].any():  # brightness-only edits keep the photo's colour
            result.copy_(luma_only(xe, result, aug._luma_entries.index_select(0, _rows(entry, 0, a))).clamp_(0, 1))
        if delta and aug._region_code[codes[:a]].any():  # the change kept where the edit belongs on the face
            result = within_region(xe, result, aug._region_entries.index_select(0, _rows(entry, 0, a)))
        # a black-and-white photo kept grey at the exposure it was blended at, then mapped back, as the transform does
        result = make_grey(result, np.flatnonzero(grey[:a]), xe)
        if gain is not None:  # back to the photo's exposure (in place: the rows may be the output buffer's)
            result.copy_(restore(xa, xe, result, gain))
    if m > a0:  # colour edits: the photo through the colour transform of the change (engine.colour), fitted on the grid
        dst = part(f, (None, (c + 2, 2 * c + 2)))
        if a > a0:
            dst[: a - a0].copy_(sample_grid(result[a0:]))
        if m > a:
            g = grid_blend(_rows(src, a - a0), stored(aug._views, table, "grid").index_select(0, _rows(slots, a)),
                           sample_grid(_rows(images, a)), out=_rows(dst, a - a0))
            make_grey(g, np.flatnonzero(grey[a:]))
        torch.add(_MINUS_ONE, f, alpha=2, out=f)  # to model units and back, as the engine's fit sees them
        free = (aug._hue_entries.index_select(0, entry[a0:]) if hue_by_entry else _rows(cols["free"], a0) if "free" in cols
                else None)
        transform = fit_regressors(torch.add(_HALF, f, alpha=0.5, out=f), True, aug._work, free)  # (its hue kept, then refitted)
    if a:
        result = paste(result, _rows(x01, 0, a), _rows(xr, 0, a), box, aug._feathers)
        if a > a0:  # colour-fitted rows blended whole: colour entries take the colour transform
            new = recolour(xr[a0:a], transform[: a - a0], np.flatnonzero(grey[a0:a]))
            if not aug._colour_all[codes[a0:a]].all():  # a code with colour and non-colour recipes
                is_colour = aug._colour_entries.index_select(0, entry[a0:a])
                new = torch.where(is_colour[:, None, None, None], new, result[a0:])
            result[a0:] = new
        parts.append((0, result))
    if m > a:
        parts.append((a, recolour(_rows(xr, a), _rows(transform, a - a0), np.flatnonzero(grey[a:]),
                                  None if buf is None else _rows(buf, a), aug._work)))
    if buf is not None:  # written in place: one gather back to the rows' places
        out = buf if identity else buf.index_select(0, cols["inverse"]) if every else x.clone().index_copy_(0, cols["dest"], buf)
        return out, target if identity else target.index_select(0, cols["inverse"]) if every else \
            torch.full((n,), float("nan"), device=dev).index_copy_(0, cols["dest"], target)
    if identity and len(parts) == 1:
        return parts[0][1], target
    out = torch.empty_like(x) if every else x.clone()
    for at, done in parts:
        if identity:
            out[at : at + len(done)] = done
        else:
            out.index_copy_(0, cols["dest"][at : at + len(done)], done)
    if identity:
        return out, target
    return out, torch.full((n,), float("nan"), device=dev).index_copy_(0, cols["dest"], target)


def unmoved_nan(out: Tensor, given: Tensor, target: Tensor) -> Tensor:
    """``target`` (N,) with NaN on each row of ``out`` that came back as ``given`` (the batch as passed, on ``out``'s
    device): uint8 value for value, float with no value moved by half an 8-bit level or more (the per-image front ends
    read a float photo level for level, :func:`genaug.images.same_levels`; rounding both is 5x the time of this one
    pass, 1.7 ms a 178x218 face on one CPU thread). An edit that changed no pixel of its row (a colour edit of a black
    row, a turn or the light on a flat one, a named edit of a near-black one) is so reported unchanged, as the
    per-image front ends report it; on the device, no host read."""
    if out.is_floating_point():
        moved = torch.sub(out, given).abs_().amax(dim=(1, 2, 3)).ge(_HALF_LEVEL)
    else:
        moved = torch.ne(out, given).any(dim=(1, 2, 3))
    return torch.where(moved if moved.device == target.device else moved.to(target.device), target, _NAN)


_HALF_LEVEL = torch.tensor(0.5 / 255, dtype=torch.float32, device="cpu")  # 0-dim host constants (no conversion per call)
_NAN = torch.tensor(float("nan"), dtype=torch.float32, device="cpu")


def channels_last(t: Tensor) -> bool:
    """``t`` is laid out channels_last (and not also plain contiguous, as a 1-channel or 1x1 batch can be)."""
    return not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def _prefix(flags: np.ndarray) -> int | None:
    """How many rows lead ``flags`` (host bool), all set, with none set after them; None when set rows follow unset ones."""
    k = int(flags.sum())
    return k if flags[:k].all() else None


def _rows(t: Tensor, start: int, stop: int | None = None) -> Tensor:
    """``t[start:stop]``, or ``t`` itself (no view operation) when that is all of it."""
    return t if start == 0 and (stop is None or stop >= len(t)) else t[start:stop]
