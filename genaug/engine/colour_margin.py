"""A random colour edit moved off the face's own value (:func:`margin_edits`): a draw within
:data:`COLOUR_MARGIN` of it leaves an 8-bit photo as it was. The batch path's twin, on the device:
:func:`genaug.engine.batch_edits.colour_margin`."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

COLOUR_MARGIN = 0.02  # least code move of a random colour edit: twice the largest move seen to leave an 8-bit photo as it was


def margin_edits(bundle: Any, ranges: dict[int, tuple[float, float]], edits: list, latent: Tensor, wanted: Tensor,
                 mode: str) -> list:
    """Random ``edits`` (checked :class:`genaug.engine.edits.Edit` tuples) with each colour edit (recipe ``colour``,
    ``delta`` mode) that would move its code less than :data:`COLOUR_MARGIN` at its strength (``wanted``) from the
    face's own value in ``latent`` moved out by that margin: a draw ``d`` off the face's own value is applied
    ``margin + d`` off it, on the side of the drawn value (else the other), within the code's drawn range (``ranges``,
    else the code's; neither side fits: left as drawn). An 8-bit photo takes no change from a smaller move (it came back
    unchanged, about 1 in 100 draws); distinct draws stay distinct (moved *to* the margin, two draws on one side gave
    byte-identical variants); a value at the margin or past it is kept, so the value applied (reported, recorded) gives
    the same photo. The batch path's twin, on the device: :func:`genaug.engine.batch_edits.colour_margin`."""
    spec = bundle.spec
    rows = [r for r, e in enumerate(edits) if mode == "delta" and e.code < len(spec.codes)  # (controls follow the codes)
            and not spec.is_categorical(e.code) and bundle.recipe(e.code, e.value).colour]
    if not rows:
        return edits
    cols = torch.tensor([spec.code_slice(edits[r].code).start for r in rows], device=latent.device)
    own = latent[torch.tensor(rows, device=latent.device), cols].double().cpu().tolist()  # one read
    out = list(edits)
    for r, o in zip(rows, own):
        e = edits[r]
        move = float(wanted[r]) * bundle.recipe(e.code, e.value).gain
        if not (move > 0 and math.isfinite(o)) or abs(e.value - o) * move >= COLOUR_MARGIN:
            continue
        low, high = ranges.get(e.code, (spec.codes[e.code].low, spec.codes[e.code].high))
        side = 1.0 if e.value > o or (e.value == o and o < (low + high) / 2) else -1.0
        off = COLOUR_MARGIN / move + abs(e.value - o)
        for v in (o + side * off, o - side * off):
            if low <= v <= high:
                out[r] = e._replace(value=v, relative=False)
                break
    return out
