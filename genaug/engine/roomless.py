"""A random image-space control that a found face had no room for (a near-profile face: no turn beyond 40 degrees,
no light beyond 47.5; a face cut by the photo's edge) re-drawn among the other codes that can act on that face, in
every front end alike: the transform (:meth:`Engine.augment`), the Dataset, ``genaug expand`` (:func:`redraw_roomless`),
:class:`genaug.BatchFaceAug` (:func:`redraw_batch_roomless`) and each face of a photo (:func:`redraw_face`, for
:func:`genaug.faces.align.augment_faces`). A named control stays as asked (clipped, or reported
unchanged: "no room")."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from .batch_edits import BatchParams
from .batch_render import roomless_rows
from .codes import check_codes, control_of, default_codes
from .edits import Edit, draw_edits, random_edits
from .latent_table import host_array

Again = Callable[[list[int], list[int]], list[Any]]


def roomless_codes(engine: Any, tried: Any, frames: Any = (), codes: list[int] | None = None) -> list[int]:
    """What a random control draw that a found face had no room for is re-drawn among: the random set ``codes`` (default
    the engine's ``codes``, else the bundle's) less the controls in ``tried`` (found without room on that face) and the
    latent codes that do not apply on ``frames``' photos (:meth:`Engine.unplaced`). A face turned 40-47.5 degrees has no
    room to turn, but the light reaches it; a latent code always acts."""
    base = codes if codes is not None else engine.codes if engine.codes is not None else default_codes(engine.spec)
    latent = engine._latent_codes(frames, base)
    return [c for c in base if c in latent or (control_of(engine.spec, c) is not None and c not in tried)]


def redraw_roomless(engine: Any, todo: dict[int, tuple[Edit, Any]], again: Again, codes: list[int] | None = None) -> None:
    """Re-draw rows until their edit acts on the face: ``todo`` maps each row whose drawn control had no room on its
    face to (that edit, its photo's frame). Each pass groups the rows by what they can still be re-drawn among
    (:func:`roomless_codes` of the random set ``codes``, less every control found without room on the row's face so
    far) and calls ``again(rows, codes)``, which renders those rows with a code drawn among ``codes`` and returns, per
    row, the edit that again had no room (a control) or None (it acted). A row with nothing left to draw stays as it
    came back (unchanged, "no room"). Ends: each pass rules out one more control per row."""
    tried: dict[int, set[int]] = {}
    while todo:
        alike: dict[tuple[int, ...], list[int]] = {}
        for r, (edit, frame) in todo.items():
            tried.setdefault(r, set()).add(edit.code)
            left = tuple(roomless_codes(engine, tried[r], [frame], codes))
            if left:
                alike.setdefault(left, []).append(r)
        frames, todo = {r: f for r, (_, f) in todo.items()}, {}
        for left, rows in alike.items():
            for r, edit in zip(rows, again(rows, list(left))):
                if edit is not None:
                    todo[r] = (edit, frames[r])


def redraw_batch_roomless(aug: Any, params: BatchParams, x: torch.Tensor, eng: Any,
                          marks: torch.Tensor | None) -> BatchParams:
    """:class:`genaug.BatchFaceAug` ``aug``'s drawn ``params`` for the batch ``x`` with each edited row whose control
    the face has no room for (placed by ``marks`` or the framing rule: :func:`~genaug.engine.batch_render.roomless_rows`)
    re-drawn from its generator among its codes less the controls found without room there, before its latent pass,
    so a re-draw may be a latent code. A row with nothing left keeps its draw (target NaN); replayed parameters are
    rendered as given (the caller re-draws only what it drew)."""
    spec, n_latent = eng.spec, len(eng.spec.codes)
    codes = check_codes(spec, aug.codes) if aug.codes is not None else default_codes(spec, controls=False)
    if all(c < n_latent for c in codes):
        return params
    code, value, relative = params.code.clone(), params.value.clone(), params.relative.clone()
    strength = host_array(params.strength)
    rows, g = host_array(params.apply) & (strength > 0), aug.generator if aug.generator is not None else torch.default_generator
    roomless = roomless_rows(x, strength, eng, aug.framing, marks)
    todo = np.zeros(len(rows), bool)
    for ci in np.unique(code.numpy()[rows]):
        if ci >= n_latent:
            at = np.flatnonzero(rows & (code.numpy() == ci))
            todo[at] = roomless(at, int(ci), value[at])
    tried: dict[int, set[int]] = {}
    while todo.any():
        alike: dict[tuple[int, ...], list[int]] = {}
        for r in np.flatnonzero(todo).tolist():
            tried.setdefault(r, set()).add(int(code[r]))
            left = tuple(c for c in codes if c < n_latent or c not in tried[r])
            if left:
                alike.setdefault(left, []).append(r)
        todo[:] = False
        for left, rs in alike.items():
            d, at = draw_edits(spec, len(rs), g, codes=list(left), bounds=aug.bounds), np.asarray(rs)
            code[at], value[at], relative[at] = d.code, d.value.to(value.dtype), d.relative
            for ci in np.unique(d.code.numpy()):
                if ci >= n_latent:
                    sub = at[d.code.numpy() == ci]
                    todo[sub] = roomless(sub, int(ci), value[sub])
    return BatchParams(params.apply, code, value, relative, params.strength)


def redraw_face(engine: Any, photo: Any, frame: Any, edit: Edit, aligner: Any, generator: torch.Generator | None,
                recoloured: bool) -> tuple[Any, Edit | None, bool]:
    """One face of :meth:`~genaug.engine.photos.PhotoIO.augment_faces` (``frame``: its alignment in ``photo``, a user
    image) whose drawn control ``edit`` had no room there, re-drawn from ``generator`` among :func:`roomless_codes`
    until an edit acts, rendered as the first draw was (:meth:`Engine.augment_tensor`: at the engine's strength, a
    colour edit moved off the face's own, judged by its gates; the face counted once): a control rendered on the
    photo, a latent edit on the face as it now is (its change pasted back through the inverse warp; a colour edit
    recolours the photo, unless ``recoloured`` already: then the face is recoloured with it). Returns (photo, the edit
    that acted or None, whether the photo was recoloured now)."""
    from ..images import from_chw01, match_channels, to_chw01
    from .colour import photo_transform
    from .render import recolour_channels

    tried, gen = {edit.code}, generator if generator is not None else engine.generator
    while left := roomless_codes(engine, tried, [frame]):
        e = random_edits(engine.spec, 1, gen, codes=left, bounds=engine.bounds)[0]
        full, ch = to_chw01(photo)[0].clone(), frame.channels
        x = match_channels(aligner.crop(full[:ch], frame.alignment), engine.channels) * 2 - 1
        out, res = engine.augment_tensor(x[None].to(engine.device), [e], gen, placed=True, drawn=True, redraw_codes=left)
        engine.stats["augmented"] -= 1  # (the face was counted by the first draw)
        out, done = out[0].cpu(), res.edits[0]
        if not bool(res.kept[0]):  # (a gate kept the face as it was)
            return photo, None, False
        if control_of(engine.spec, done.code) is not None:
            placed, applied = engine.place(out, photo, frame, done, True, drawn=True)
            if applied.value != 0:
                return placed, applied, False
            tried.add(done.code)
            continue
        if engine.recolours(done):
            if recoloured:
                return photo, done, False
            full[:ch] = recolour_channels(full[:ch], photo_transform(x[None].float(), out[None].float())[0])
        else:
            full[:ch] = aligner.paste(full[:ch], match_channels((out - x) / 2, ch), frame.alignment)
        return from_chw01(full, photo, frame), done, engine.recolours(done)
    return photo, None, False
