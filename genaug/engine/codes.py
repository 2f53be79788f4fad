"""Codes by name or index — the bundle's latent codes, then the image-space controls of
:mod:`genaug.faces.controls` — the random set random edits draw from, and the checks of the
options that name them (``codes``, ``bounds``, ``strength``, seeds): shared by every front end,
so a bad option fails the same way, early, wherever it is given.
"""
from __future__ import annotations

import math
import numbers
import operator
import warnings
from collections.abc import Mapping
from typing import Any

from ..faces.controls import CONTROL_NAMES, IMAGE_CONTROLS, ImageControl, check_bound
from ..models.latent import LatentSpec


def code_index(spec: LatentSpec, code: str | int) -> int:
    """A code's index: the spec's latent codes (name, ``"c<i>"`` or index), then the image-space
    controls (:mod:`genaug.faces.controls`) by name, index ``len(spec.codes) + j`` or its ``"c<i>"``. ``KeyError`` if unknown."""
    n = len(spec.codes)
    if not isinstance(code, (str, int)) and _index(code) is not None:  # a numpy or 0-d torch integer: its index (controls' too)
        code = _index(code)
    if isinstance(code, str) and code in IMAGE_CONTROLS and code not in spec.code_names:
        return n + CONTROL_NAMES.index(code)
    if isinstance(code, str) and code not in spec.code_names and code[:1] == "c" and code[1:].isdecimal():
        code = int(code[1:]) if n <= int(code[1:]) < n + len(CONTROL_NAMES) else code  # "c8": as `genaug info` numbers controls
    if isinstance(code, int) and not isinstance(code, bool) and n <= code < n + len(CONTROL_NAMES):
        return code
    try:
        return spec.code_index(code)
    except KeyError as e:
        if isinstance(code, int) or code[:1] == "c" and code[1:].isdecimal():  # (the controls' indices follow the spec's)
            last = n + len(CONTROL_NAMES) - 1
            what = f"code index {code} out of range" if isinstance(code, int) else f"unknown code {code!r}"
            raise KeyError(f"{what}: valid indices are 0-{last} or 'c0'-'c{last}' (0-{n - 1}: the latent codes "
                           f"{spec.code_names}; {n}-{last}: the image-space controls {CONTROL_NAMES})") from None
        raise KeyError(f"{e.args[0]} (image-space controls: {CONTROL_NAMES})") from None


def control_of(spec: LatentSpec, index: int) -> ImageControl | None:
    """The image-space control at code index ``index`` (None for a latent code)."""
    j = index - len(spec.codes)
    return IMAGE_CONTROLS[CONTROL_NAMES[j]] if 0 <= j < len(CONTROL_NAMES) else None


def all_code_names(spec: LatentSpec) -> list[str]:
    """Latent code names, then the image-space controls' (the columns of an expansion's ``codes``)."""
    return list(spec.code_names) + CONTROL_NAMES


def default_codes(spec: LatentSpec, controls: bool = True) -> list[int]:
    """The codes random edits touch when none are named (the bundle's random set): the spec's
    identity-safe latent codes in the set (``LatentSpec.default_codes``; every code for a spec
    without it), then its ``random_controls`` (image-space controls; ``controls=False``: left out)."""
    codes = getattr(spec, "default_codes", None)
    latent = list(codes) if codes is not None else list(range(len(spec.codes)))
    extra = getattr(spec, "random_controls", []) if controls else []
    return latent + [len(spec.codes) + CONTROL_NAMES.index(name) for name in extra]


def whole(value: Any) -> bool:
    """``value`` is a whole number (a Python or numpy integer), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def real(value: Any) -> bool:
    """``value`` is a real number (a Python or numpy int or float), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_seed(seed: Any, name: str = "seed", high: int | None = None) -> int:
    """``seed`` as an int, refused by ``name`` unless a whole number (not a bool) and, with ``high``,
    within ``[-2**63, high)`` (2**63: an int64 such as an HDF5 attribute; 2**64: torch.Generator's range)."""
    if not whole(seed) or (high is not None and not -2**63 <= seed < high):
        raise ValueError(f"{name} must be a whole number{' that fits in 64 bits' if high else ''}, got {seed!r}")
    return int(seed)


def check_engine_options(mode: Any, framing: Any, refine_steps: Any, batch_size: Any, device: Any, gate: Any,
                         quality_threshold: Any) -> None:
    """The options :class:`genaug.engine.Engine` checks when built (it calls this), checked without building it, by a
    front end that builds its engine later (``GenerativeAugDataset(lazy=True)``: else at the first item, inside a DataLoader
    worker). ``gate``: a judge's name (or a callable); ``quality_threshold``: None, ``"auto"`` or a number in [0, 1];
    ``framing="detect"``: the faces extra installed."""
    from ..device import resolve_device
    from ..faces.framing import FRAMINGS
    from ..faces.identity import JUDGES, require_dlib
    from .gates import check_gate
    from .render import MODES

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {FRAMINGS}, got {framing!r}")
    if framing == "detect":  # (as the engine: the faces extra, before any work)
        require_dlib()
    for name, value, low in (("refine_steps", refine_steps, 0), ("batch_size", batch_size, 1)):  # (None: the bundle's steps)
        if value is None and name != "batch_size":
            continue
        if not whole(value):
            raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value!r}")
    resolve_device(device)
    check_gate(gate)
    if isinstance(gate, str) and gate not in (*JUDGES, "identity"):
        raise ValueError(f"unknown identity judge {gate!r}; choose from {(*JUDGES, 'identity')}")
    q = quality_threshold
    if q is not None and q != "auto" and (isinstance(q, (str, bool)) or not isinstance(q, numbers.Real) or not 0 <= q <= 1):
        raise ValueError(f"quality_threshold must be None, 'auto' or a number in [0, 1], got {q!r}")


def check_generator(generator: Any, host: bool = False) -> None:
    """``generator`` is None or a ``torch.Generator``; else a TypeError naming it (a seed given there was taken as "no
    generator" when 0, and failed deep in torch otherwise). ``host``: a CPU one (:class:`genaug.BatchFaceAug` draws its
    parameters on the host, given or set later), else a ValueError naming what it got."""
    import torch

    if host and generator is not None and not (isinstance(generator, torch.Generator) and generator.device.type == "cpu"):
        got = (f"one on {generator.device}" if isinstance(generator, torch.Generator) else
               f"{type(generator).__module__}.{type(generator).__qualname__}")
        raise ValueError(f"generator must be a CPU torch.Generator (parameters are drawn on the host), got {got}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__} {generator!r} "
                        "(from a seed: torch.Generator().manual_seed(seed))")


def as_number(value: Any) -> Any:
    """A 0-dim tensor or array, or a numpy scalar, as the Python number it holds (``torch.tensor(5)``,
    ``np.array(True)``, ``np.int64(3)``: taken where an int, float or bool is, as Python and torch take them); anything
    else as it is."""
    return value.item() if getattr(value, "ndim", None) == 0 and hasattr(value, "item") else value


def check_flag(value: Any, name: str) -> bool:
    """A yes / no option (``True``, ``False``, numpy's bools, 0 or 1, or one held by a 0-dim tensor) as a bool; a string
    such as ``"no"`` (true in Python) or any other value is a ValueError naming ``name``."""
    import numpy as np

    value = as_number(value)
    if not (isinstance(value, (bool, np.bool_)) or isinstance(value, numbers.Integral) and value in (0, 1)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def code_ranges(spec: LatentSpec, bounds: dict[str | int, tuple[float, float]] | None) -> dict[int, tuple[float, float]]:
    """``bounds`` ({code: (low, high)}) keyed by code index, checked: continuous codes only, finite,
    ``low <= high`` and within the code's own range. Raises ``ValueError`` naming the problem."""
    if bounds is not None and not isinstance(bounds, Mapping):  # bounds=5 was "'int' object has no attribute 'items'"
        raise TypeError(f"bounds must be a dict {{code: (low, high)}} or None, got {type(bounds).__name__} {bounds!r}")
    out = {}
    for key, pair in (bounds or {}).items():
        try:
            ci = code_index(spec, key)
        except (KeyError, TypeError) as e:
            raise ValueError(f"bounds: {e.args[0]}") from None
        if ci in out:  # "tone" and 5: one range would be dropped unseen
            raise ValueError(f"bounds: {key!r} names a code already given a range (by another name or index); give each code one range")
        control = control_of(spec, ci)
        if control is not None:
            try:
                lo, hi = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise ValueError(f"bounds[{key!r}] must be a pair (low, high) of numbers, got {pair!r}") from None
            check_bound(control, lo, hi)
            out[ci] = (lo, hi)
            continue
        c = spec.codes[ci]
        if spec.is_categorical(ci):
            raise ValueError(f"bounds: {c.name!r} is a categorical code (categories 0..{c.k - 1}); bounds apply to "
                             f"continuous codes only")
        try:
            lo, hi = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(f"bounds[{key!r}] must be a pair (low, high) of numbers, got {pair!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and c.low <= lo <= hi <= c.high):
            raise ValueError(f"bounds[{key!r}] = ({lo:g}, {hi:g}) must satisfy {c.low:g} <= low <= high <= {c.high:g} "
                             f"(the range of code {c.name!r})")
        out[ci] = (lo, hi)
    return out


def check_strength(strength: Any) -> None:
    """``strength`` is one finite real number >= 0 (not a bool, not a range)."""
    if isinstance(strength, bool) or not isinstance(strength, numbers.Real) or not math.isfinite(strength) or strength < 0:
        raise ValueError(f"strength must be a finite number >= 0, got {strength!r}")


def check_refine_loss(refine_loss: str, who: str) -> None:
    """``refine_loss`` is a loss mix (:func:`genaug.models.recon.parse_mix`) without the 'feature' loss, whose feature
    network only ``genaug.Engine(feature_net=...)`` takes: ValueError naming the front end ``who`` otherwise."""
    from ..models.recon import parse_mix

    if any(kind == "feature" for _, kind in parse_mix(refine_loss)):
        raise ValueError(f"refine_loss {refine_loss!r}: the 'feature' loss needs a feature network, which {who} cannot "
                         "take: use 'mse', 'l1', 'ssim', 'msssim' or a mix, or genaug.Engine(feature_net=...)")


def probability(p: Any) -> float:
    """A front end's ``p``: a real number in [0, 1] (numpy scalars too; no bool, no string), as a float; else a
    ValueError naming it."""
    if isinstance(p, bool) or not (isinstance(p, numbers.Real) and 0.0 <= p <= 1.0):
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    return float(p)


def strength_range(strength: Any) -> tuple[float, float]:
    """A front end's ``strength``: a number >= 0, or a range (low, high) with 0 <= low <= high drawn from per image;
    finite, no bool (``False`` would read as 0: every call a no-op). Returns (low, high); ValueError otherwise."""
    pair = (strength, strength) if isinstance(strength, numbers.Real) else tuple(strength) if isinstance(strength, (tuple, list)) else ()
    if (len(pair) != 2 or not all(real(v) and math.isfinite(v) for v in pair)
            or not 0 <= pair[0] <= pair[1]):
        raise ValueError(f"strength must be a number >= 0 (finite, not a bool) or a range (low, high) with 0 <= low <= high, "
                         f"got {strength!r}")
    return float(pair[0]), float(pair[1])


def check_code_list(codes: Any) -> None:
    """``codes`` is None or a non-empty list of code names / indices (a bare string would be read
    letter by letter: ``"smile"`` as codes ``s``, ``m``, ...)."""
    if isinstance(codes, (str, bytes)):
        names = [c.strip() for c in codes.split("," if isinstance(codes, str) else b",")]  # "tone,yaw" as --codes writes it
        raise ValueError(f"codes must be a list of code names or indices, got the string {codes!r} (write {names!r})")
    if isinstance(codes, (set, frozenset)):  # its order (which the draws follow) changes with each run's string hashing
        raise ValueError(f"codes must be a list, got a set {codes!r}: a set's order changes from run to run, and so would "
                         f"a seed's draws (write sorted(...) or a list)")
    if codes is not None and not hasattr(codes, "__len__"):  # a ValueError: albumentations reads a TypeError of its
        # schema as a warning and builds the transform from every default
        fix = "list(...)" if hasattr(codes, "__iter__") else f"[{codes!r}]"
        raise ValueError(f"codes must be a list of code names or indices, got {type(codes).__name__} {codes!r} (write {fix})")
    if codes is not None and len(codes) == 0:
        raise ValueError("codes: name at least one code, or pass None for the bundle's random set (identity-safe codes; `genaug info`)")
    for c in list(codes) if codes is not None else []:
        if isinstance(c, str):
            continue
        i = _index(c)
        if isinstance(c, bool) or (i is not None and i < 0):
            raise ValueError(f"codes: {c!r} is not a code name or index (indices count from 0; `genaug info` lists them)")
        if i is None:  # 5.0 (which pydantic would read as 5 in the transform alone), a bool tensor
            raise ValueError(f"codes: code must be a name or an index, got {type(c).__name__} {c!r}")


def _index(c: Any) -> int | None:
    """``c`` as an index (a Python, numpy or 0-d torch integer, not a bool), else None."""
    if isinstance(c, bool) or str(getattr(c, "dtype", "")) in ("bool", "torch.bool"):
        return None
    try:
        return operator.index(c)
    except TypeError:
        return None


def check_codes(spec: LatentSpec, codes: Any) -> list[int] | None:
    """:func:`check_code_list`, and every code known to ``spec`` and named once; their indices (None for None)."""
    check_code_list(codes)
    seen: dict[int, Any] = {}
    for c in list(codes) if codes is not None else []:
        try:
            i = code_index(spec, c)
        except (KeyError, TypeError) as e:
            raise ValueError(f"codes: {e.args[0]}") from None
        if i in seen:
            raise ValueError(f"codes: {seen[i]!r} and {c!r} name the same code (each code once; it would be drawn twice as often)")
        seen[i] = c
    return None if codes is None else list(seen)


def check_edit_options(bundle: str, codes: list[str | int] | None, bounds: dict[str | int, tuple[float, float]] | None,
                       stacklevel: int = 4) -> None:
    """Fail fast, from the bundle's config alone: a missing bundle, an unknown code or a bad range
    raises ``ValueError`` here instead of at the first image (perhaps inside a DataLoader worker). ``stacklevel``: the
    warning's line (:func:`check_spec_options`; 4: the caller's caller)."""
    from ..bundle.format import read_spec

    check_spec_options(read_spec(bundle), codes, bounds, stacklevel=stacklevel)


def check_spec_options(spec: LatentSpec, codes: Any, bounds: Any, stacklevel: int = 3) -> None:
    """:func:`check_edit_options` for a bundle's ``spec``: the codes and ranges checked, and a warning for a range
    of a code random edits never draw (``stacklevel``: the caller's caller's line, as :func:`warnings.warn` counts)."""
    named = check_codes(spec, codes)
    drawn = set(named if named is not None else default_codes(spec))
    names = all_code_names(spec)
    unused = [names[c] for c in code_ranges(spec, bounds) if c not in drawn]
    if unused:  # a range for a code random edits never draw: likely meant for codes= too
        warnings.warn(f"bounds for {unused} have no effect: random edits draw only "
                      f"{[names[c] for c in sorted(drawn)]} (name those codes in codes= to draw them)",
                      UserWarning, stacklevel=stacklevel)
