"""A source's variants as the front ends draw them for its photo (the Dataset, ``genaug expand``): their count
(:func:`check_variants`), beside targets that mark places in the image a named head turn refused (:func:`marks_places`)
and a drawn one re-drawn (:func:`redraw_turns`), the
controls re-drawn for want of a face, in one pass per source (:func:`unplaced_redraws`, which
:meth:`Engine.replace_unplaced_variant` draws one variant of), and whether such a re-draw repeats another variant
(:func:`repeats_another`). Every re-draw avoids the categorical moves other variants make (:func:`redraw_distinct`).
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import torch

from ..faces.controls import GEOMETRIC_CONTROLS, geometric_targets
from .codes import default_codes
from .edits import Edit, redraw_distinct


def check_variants(variants: Any, include_original: bool) -> int:
    """``variants`` as an int: a whole number >= 1, or 0 with ``include_original`` (the originals only)."""
    try:
        if isinstance(variants, bool):  # True is not a count
            raise TypeError
        variants = operator.index(variants)
    except TypeError:
        raise ValueError(f"variants must be a whole number, got {variants!r}") from None
    if variants < 0 or (variants == 0 and not include_original):
        raise ValueError(f"variants must be >= 1 (or 0 with include_original=True), got {variants}")
    return variants


def marks_places(engine: Any, src: int, rest: Any, edits: bool = True) -> bool:
    """True when base item ``src``'s targets (``rest``) mark places in its image (boxes, masks, keypoints:
    :func:`~genaug.faces.controls.geometric_targets`), which a head turn would leave unmoved; the engine's named codes
    that turn the head are refused beside them (``edits`` False: none drawn, nothing refused)."""
    marked = geometric_targets(rest)
    names = engine.code_names if marked and engine.codes and edits else []
    turning = [names[c] for c in engine.codes if names[c] in GEOMETRIC_CONTROLS] if names else []
    if turning:
        raise ValueError(f"codes {turning} turn the head and move the photo by a few pixels, but base item {src}'s "
                         f"{', '.join(marked)} would come back unmoved (genaug edits the image only): leave those codes out")
    return bool(marked)


def redraw_turns(engine: Any, plan: list[Edit], src: int, seed_of: Callable[[int], int]) -> list[Edit]:
    """``plan`` (base item ``src``'s variant edits, whose targets mark places in the image) with each head turn re-drawn
    among the random set's other codes, variant ``j`` from a generator seeded ``seed_of(j)``."""
    turns = [engine.code_names[p.code] in GEOMETRIC_CONTROLS for p in plan]
    if not any(turns):
        return plan
    keep = [c for c in default_codes(engine.spec) if engine.code_names[c] not in GEOMETRIC_CONTROLS]
    if not keep:
        raise ValueError(f"base item {src}'s targets mark places in the image, which a head turn would leave "
                         "unmoved, and the bundle's random set only turns the head: name other codes")
    gens = [torch.Generator().manual_seed(seed_of(j)) for j in range(len(plan))]
    return redraw_distinct(engine.spec, plan, turns, gens, keep, engine.bounds)


def unplaced_redraws(engine: Any, plan: list[Edit], frame: Any, seed_of: Callable[[int], int],
                     upto: int | None = None) -> list[Edit]:
    """Every variant of ``plan`` as :meth:`Engine.replace_unplaced_variant` draws it for the photo of ``frame`` (variant
    ``j`` from a generator seeded ``seed_of(j)``), in one pass: a variant's re-draw depends only on those before it.
    ``upto``: only the variants before it re-drawn (the rest as planned)."""
    redraw, codes = [engine.unplaced(e, frame) for e in plan], engine._latent_codes([frame])
    n = max((j + 1 for j, r in enumerate(redraw) if r), default=0)
    n = n if upto is None else min(n, upto)
    if not n or not codes:
        return list(plan)
    gens = [torch.Generator().manual_seed(seed_of(j)) for j in range(n)]
    return redraw_distinct(engine.spec, plan, redraw, gens, codes, engine.bounds)


def repeats_another(engine: Any, plan: list[Edit], frame: Any, v: int, edit: Edit, seed_of: Callable[[int], int],
                    redrawn: list[Edit] | None = None) -> bool:
    """Whether variant ``v``'s planned edit, re-drawn as ``edit`` for want of a face (``framing="auto"`` found none:
    :meth:`Engine.replace_unplaced_variant`, variant ``j``'s draws seeded ``seed_of(j)``), repeats another variant's
    edit: the re-draws avoid the moves other variants make until the latent codes have none left. ``redrawn``: the
    source's :func:`unplaced_redraws`, when already drawn (one pass serves all its variants)."""
    if frame.no_face:  # (detect found no face: every variant is the source, said so, none a repeat)
        return False
    if not (engine.unplaced(plan[v], frame) and not engine.unplaced(edit, frame)):  # (re-drawn, not left undone)
        return False
    redrawn = unplaced_redraws(engine, plan, frame, seed_of) if redrawn is None else redrawn
    return edit in redrawn[:v] + redrawn[v + 1:]
