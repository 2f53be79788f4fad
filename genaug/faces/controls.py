"""Image-space controls: rendered edits (pose, light, drawn eyeglasses) that act on pixels, not on the latent.

Each control takes one plain float per image, so an edit of a control is an ordinary
``Edit(code, value)`` whose code index follows the latent codes (``len(spec.codes) + j``, see
:func:`genaug.engine.codes.code_index`). Value 0 returns the input exactly.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from .glasses import add_glasses, glasses_room
from .landmarks import landmarks_found_once
from .light import light_room, relight
from .pose import rotate_yaw, turn_room
from .shape import images_checked

LIGHT_ELEVATION = 15.0  # degrees: the main light a little above the face (helper D's measured setting)
LIGHT_STRENGTH = 0.8


@dataclass(frozen=True)
class ImageControl:
    """``apply(x, values, landmarks=None, framing="auto")``: NCHW [-1, 1] images, any size/device,
    ``values`` a number or one per image within [``low``, ``high``]; ``min_step``: random draws
    never come closer than this to 0 (a drawn variant is never a no-op). ``unit`` is for display; ``room``: for a
    control whose reach depends on the face, ``room(x, landmarks, framing)`` -> (N, 2) magnitudes it can reach
    below and above 0 (see :meth:`fit`)."""

    name: str
    low: float
    high: float
    render: Callable[..., Tensor]
    min_step: float = 2.0
    unit: str = "deg"
    summary: str = ""
    room: Callable[..., Tensor] | None = None

    def check(self, values, n: int) -> Tensor:
        """``values`` -> float (n,) tensor, refused with ``ValueError`` unless finite and in range."""
        try:
            t = torch.as_tensor(values, dtype=torch.float32).flatten().cpu()
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{self.name}: expected a number or one number per image, got {values!r}") from None
        if t.numel() == 1:
            t = t.expand(n)
        if t.numel() != n:
            raise ValueError(f"{self.name}: need one value or one per image ({n}), got {t.numel()}")
        bad = ~torch.isfinite(t) | (t < self.low) | (t > self.high)
        if bool(bad.any()):
            raise ValueError(f"{self.name} must be finite and within [{self.low:g}, {self.high:g}] {self.unit}, "
                             f"got {t[bad].tolist()[:8]}")
        return t

    def apply(self, x: Tensor, values, landmarks: Tensor | None = None, framing: str = "auto") -> Tensor:
        v = self.check(values, x.shape[0])
        if not bool((v != 0).any()):
            return x.clone()
        return self.render(x, v.to(x.device), landmarks, framing)

    def fit(self, x: Tensor, values, landmarks: Tensor | None = None, framing: str = "auto",
            drawn: tuple[float, float] | None = None) -> Tensor:
        """The values :meth:`apply` renders for ``values`` (CPU float (N,)): a request beyond what the face allows
        (``yaw``: a turn away from frontal stops at 35 degrees, so a face turned 25 degrees turns at most 10 further
        that way; a turn back from a face turned more than 23 degrees stops before its far cheek smears, 14 degrees
        from 35, :func:`genaug.faces.turn_limits.back_reach`) is clipped to it; values drawn at random from ``drawn`` = (low, high) are scaled into it instead
        (low..0..high onto what the face reaches), so draws stay distinct, and one that would come within ``min_step``
        of 0 that way (a face already turned to the limit) turns the other way if the bounds reach there.
        Controls without a ``room``: as given."""
        v = self.check(values, x.shape[0])
        if self.room is None or not bool((v != 0).any()):
            return v
        room = self.room(x, landmarks, framing).float().cpu()
        below, above = room[:, 0], room[:, 1]
        if drawn is not None:  # v = t * high (or t * low), t in [0, 1]: t times what the face reaches on that side
            lo, hi = drawn
            reach_up, reach_down = above.clamp(max=max(hi, 0.0)), below.clamp(max=max(-lo, 0.0))
            t = torch.where(v > 0, v / max(hi, 1e-9), v / min(lo, -1e-9)).clamp(0, 1)
            own = torch.where(v > 0, t * reach_up, -t * reach_down)
            other = torch.where(v > 0, -t * reach_down, t * reach_up)  # a face with no room that way turns the other
            own = torch.where(torch.where(v > 0, above >= hi, below >= -lo), v, own)  # room for all the draws: v as drawn
            # both within min_step of 0 though v is not (the room shrank it: a face at its stop one way, a draw near 0):
            # the least distinct turn, min_step, on a side that reaches it (a no-op turn of 0.02 degrees was recorded as
            # a yaw edit); a value a strength below 1 brought near 0 stays as scaled
            step = torch.sign(v) * self.min_step
            least = torch.where(torch.where(v > 0, reach_up, reach_down) >= self.min_step, step,
                                torch.where(torch.where(v > 0, reach_down, reach_up) >= self.min_step, -step, own))
            shrunk = (v.abs() >= self.min_step) & (own.abs() < self.min_step) & (other.abs() < self.min_step)
            own = torch.where(shrunk, least, own)
            return torch.where((own.abs() < self.min_step) & (other.abs() >= self.min_step), other, own)
        return torch.maximum(torch.minimum(v, above), -below)

    def fit_apply(self, x: Tensor, values, landmarks: Tensor | None = None, framing: str = "auto",
                  drawn: tuple[float, float] | None = None) -> tuple[Tensor, Tensor]:
        """(:meth:`apply` of the values :meth:`fit` gives, those values): the images checked, and their landmarks found
        (none given), once, not by each."""
        with images_checked(x), landmarks_found_once(x):
            v = self.fit(x, values, landmarks, framing, drawn)
            return self.apply(x, v, landmarks, framing), v

    def describe(self, value: float) -> str:
        return f"{self.name}={value:+.1f}"


def _yaw(x: Tensor, v: Tensor, landmarks: Tensor | None, framing: str) -> Tensor:
    return rotate_yaw(x, v, landmarks=landmarks, framing=framing)


def _light(x: Tensor, v: Tensor, landmarks: Tensor | None, framing: str) -> Tensor:
    strength = (v != 0).float() * LIGHT_STRENGTH  # azimuth 0 = the input (not a frontal relight)
    return relight(x, v, LIGHT_ELEVATION, strength, landmarks=landmarks, framing=framing)


def _light_up(x: Tensor, v: Tensor, landmarks: Tensor | None, framing: str) -> Tensor:
    strength = (v != 0).float() * LIGHT_STRENGTH  # elevation 0 = the input
    return relight(x, 0.0, v, strength, landmarks=landmarks, framing=framing)


def _drawn_glasses(x: Tensor, v: Tensor, landmarks: Tensor | None, framing: str) -> Tensor:
    return add_glasses(x, v, landmarks=landmarks, framing=framing)


IMAGE_CONTROLS: dict[str, ImageControl] = {
    "yaw": ImageControl("yaw", -30.0, 30.0, _yaw, summary="turn the head left/right (rendered, generic 3D face; the eyes stay in place; "
                        "stops 35 deg from frontal; a face turned over 23 deg turns back less: 20 deg from 30, 14 from 35; "
                        "random turns are scaled into what the face can turn)",
                        room=turn_room),
    "light": ImageControl("light", -75.0, 75.0, _light,
                          summary=f"main light azimuth (elevation {LIGHT_ELEVATION:g}, strength {LIGHT_STRENGTH:g}; "
                                  "shaded with a generic 3D face; fading out on a face turned 40-50 deg, "
                                  "none beyond 47.5 deg)", room=light_room),
    "light_up": ImageControl("light_up", -30.0, 60.0, _light_up,
                             summary=f"main light elevation, in front of the face (strength {LIGHT_STRENGTH:g}; "
                                     "shaded with a generic 3D face; none on a face turned beyond 47.5 deg)", room=light_room),
    "drawn_glasses": ImageControl("drawn_glasses", 0.0, 1.0, _drawn_glasses, min_step=0.6, unit="",
                               summary="draw eyeglass frames (value: their opacity; placed by the 5 landmarks; "
                                       "none on a face turned beyond 40 deg)", room=glasses_room),
}
CONTROL_NAMES = list(IMAGE_CONTROLS)
GEOMETRIC_CONTROLS = frozenset({"yaw"})  # controls that move pixels (boxes, masks, keypoints beside them would not follow)
GEOMETRIC_KEYS = ("boxes", "bboxes", "bbox", "masks", "mask", "keypoints", "landmarks")  # dict entries marking places
GEOMETRIC_TYPES = ("BoundingBoxes", "Mask", "KeyPoints")  # torchvision.tv_tensors classes that do


def geometric_targets(sample: Any) -> list[str]:
    """What in ``sample`` (a dataset item's targets: tuples, lists, dicts, nested) marks places in its image, which a
    :data:`GEOMETRIC_CONTROLS` edit would leave unmoved: ``tv_tensors.BoundingBoxes`` / ``Mask`` / ``KeyPoints`` and
    dict entries under :data:`GEOMETRIC_KEYS` (not None); their class names and keys, sorted (``[]``: none)."""
    tv = sys.modules.get("torchvision.tv_tensors")  # (a tv_tensor in the sample means torchvision is imported)
    kinds = tuple(getattr(tv, k) for k in GEOMETRIC_TYPES if hasattr(tv, k)) if tv is not None else ()
    found, todo = set(), [sample]
    while todo:
        o = todo.pop()
        if kinds and isinstance(o, kinds):
            found.add(next(k.__name__ for k in kinds if isinstance(o, k)))
        elif isinstance(o, Mapping):
            found.update(repr(k) for k, v in o.items() if isinstance(k, str) and k.lower() in GEOMETRIC_KEYS and v is not None)
            todo += o.values()
        elif isinstance(o, (tuple, list)):
            todo += o
    return sorted(found)


def check_bound(control: ImageControl, lo: float, hi: float) -> None:
    """A ``bounds`` pair for a control: finite, ordered, within its range and reaching past ``min_step``."""
    if not (math.isfinite(lo) and math.isfinite(hi) and control.low <= lo <= hi <= control.high):
        raise ValueError(f"bounds[{control.name!r}] = ({lo:g}, {hi:g}) must satisfy {control.low:g} <= low <= high "
                         f"<= {control.high:g} (the range of control {control.name!r})")
    if hi < control.min_step and lo > -control.min_step:
        raise ValueError(f"bounds[{control.name!r}] = ({lo:g}, {hi:g}) holds only values within {control.min_step:g} "
                         f"of 0, which random draws of {control.name!r} skip (a variant must differ visibly from the photo); "
                         f"reach past it, or name the value in an edit (Engine.augment(edits=...))")
