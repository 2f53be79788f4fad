"""``GenerativeFaceAug``: an albumentations (2.0.x) image-only transform over the engine.

Parameters (which code, which value, which strength) are sampled with the transform's own
``py_random`` so ``A.Compose(..., seed=...)`` reproduces them; ``apply`` is a pure function of
the image and those params (replayable). The model loads lazily on first use, once per process;
inside a DataLoader worker it loads on the CPU and the random state is re-mixed with the
worker's seed so workers draw different augmentations (reproducible with a seeded DataLoader).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from albumentations.core.transforms_interface import BaseTransformInitSchema, ImageOnlyTransform
from pydantic import Field, field_validator

from .bundle.format import bundle_path
from .device import torch_defaults
from .distenv import worker_tag
from .engine.codes import (all_code_names, check_code_list, check_codes, check_edit_options, check_refine_loss, default_codes,
                           probability, strength_range)
from .engine.edits import Edit
from .engine.lazy import LazyEngine
from .faces.controls import GEOMETRIC_CONTROLS
from .faces.identity import online_gate

GEOMETRIC_TARGETS = ("bboxes", "keypoints", "mask", "masks", "mask3d", "masks3d")  # what a Compose may carry beside the image
ENGINE_ARGS = frozenset(("bundle", "codes", "mode", "refine_steps", "refine_loss", "framing", "bounds", "device", "cache_size",
                         "gate_threshold", "gate", "quality_threshold"))  # init arguments the engine is built from

Strength = float | tuple[float, float]


class GenerativeFaceAug(ImageOnlyTransform):
    """Edit one semantic code of the face (glasses, smile, ...) with the bundle's generator.

    Args:
        bundle: ``"default"`` or a bundle folder (a string or path; kept as an absolute path string, so the
            transform serialises and a saved pipeline loads it from any working directory).
        codes: codes that may be edited (names, ``"c<i>"`` or indices); None = the bundle's random set (identity-safe codes; `genaug info`).
        mode: ``"delta"`` (add only the generator's change to the photo) or ``"regenerate"``.
        strength: edit strength, or a ``(low, high)`` range sampled per image.
        refine_steps / refine_loss: inversion refinement (0 = predictor only, fastest; None = the
            bundle's measured default: 0 for the edit kind, 20 otherwise).
        framing: ``"auto"`` (CelebA box for 178x218-shaped images; other images: the largest face
            detected and aligned when ``genaug[faces]`` is installed, else the centre square; where
            no face is found there, a drawn ``light`` / ``yaw`` is re-drawn among the latent codes in ``codes``, where
            the face is near profile (no room for it), among the other codes in ``codes`` that act there (none: the
            image comes back unchanged); no face
            found in a photo whose short side is >= 4 model frames (a scene, not a face crop): an edit that draws on
            the face is likewise not painted in the centre square, a drawn one re-drawn among the colour codes),
            ``"full"`` or ``"detect"`` (detected faces only; no face: image unchanged, counted in
            ``engine.stats["no_face"]``; see :mod:`genaug.faces.align`).
        bounds: ``{code: (low, high)}`` ranges for continuous codes.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``; DataLoader workers always use the CPU.
        cache_size: inverted latents kept per process (keyed by image content).
        gate_threshold: if set, augmentations whose identity similarity to the photo is below it
            are re-drawn, then returned unchanged.
        gate: the identity judge of that similarity: ``"auto"`` (the distilled student shipped with
            genaug, similarity = 1 - its dlib-unit distance, same person above about 0.59; else
            ``"identity"``), ``"student"``, ``"embedder"`` or ``"identity"`` (the embedder's cosine
            similarity, ``genaug.faces.metrics``); ``"dlib"`` works but is slow (~8 faces/s per core).
        quality_threshold: the quality gate: augmentations the shipped realism critic
            (:mod:`genaug.faces.quality`) scores below it (P(real) in [0, 1]; ``"auto"``: the
            critic's threshold, which 98 % of real faces pass) are re-drawn, then returned
            unchanged; None turns it off.
        p: probability of applying the transform.

    Targets: image, images. Image types: uint8, float32, RGB (as albumentations expects: convert ``cv2.imread``'s BGR
    with ``cv2.cvtColor(img, cv2.COLOR_BGR2RGB)``; a BGR face is inverted worse and its colour edits go the other
    way, ``warmth`` making it blue). Unlike albumentations' own transforms, which apply one draw to every image of
    ``images=`` (a video clip), it draws one edit per image of ``images=``; the frames of ``volume=`` and the images
    named in ``additional_targets`` share the call's one edit. It leaves bboxes, keypoints and masks unmoved, so beside
    them its random set leaves ``yaw`` (which moves the photo) out and a named ``yaw`` is refused on every call.
    """

    class InitSchema(BaseTransformInitSchema):
        bundle: str | Path
        codes: list[str | int] | None
        mode: Literal["delta", "regenerate"]
        strength: Strength
        refine_steps: int | None = Field(default=None, ge=0)
        refine_loss: str
        framing: Literal["auto", "full", "none", "detect"]
        bounds: dict[str | int, tuple[float, float]] | None
        device: str
        cache_size: int = Field(ge=0)
        gate_threshold: float | None = Field(default=None, allow_inf_nan=False, le=1.0)  # a similarity: above 1 rejects every edit
        gate: Literal["auto", "student", "embedder", "identity", "dlib"]
        quality_threshold: float | Literal["auto"] | None = None

        @field_validator("bundle", mode="before")
        @classmethod
        def _bundle(cls, v: Any) -> str:
            if not isinstance(v, (str, os.PathLike)):  # e.g. a loaded genaug.Bundle, which Engine takes
                where = f" (this one was loaded from {v.path!r}: pass that)" if getattr(v, "path", None) else ""
                raise ValueError(f"bundle must be 'default' or a bundle folder (str or Path), got {type(v).__name__}; the "
                                 f"transform names its bundle so it serialises: save_pretrained(folder), pass the folder{where}")
            return os.fspath(v)  # a bundle folder given as a Path is kept as a string, so the transform serialises

        @field_validator("p", mode="before")
        @classmethod
        def _p(cls, v: Any) -> Any:  # before albumentations' range check (NaN read as "more than 1"; True, "0.5" taken)
            probability(v)  # as BatchFaceAug's p
            return v

        @field_validator("strength", mode="before")
        @classmethod
        def _strength(cls, v: Any) -> Any:  # before pydantic's coercion, which reads True / False as 1.0 / 0.0
            if isinstance(v, np.ndarray):  # np.array([0.5, 1.0]): a plain number or pair
                v = v.tolist() if v.ndim == 0 else tuple(v.tolist())
            strength_range(v)
            return v

        @field_validator("gate_threshold", "refine_steps", "cache_size", "quality_threshold", mode="before")
        @classmethod
        def _not_bool(cls, v: Any, info: Any) -> Any:  # pydantic reads True as 1: gate_threshold=True rejected every edit
            if isinstance(v, (bool, np.bool_)) or (isinstance(v, (np.ndarray, torch.Tensor)) and v.dtype in (np.bool_, torch.bool)):
                raise ValueError(f"{info.field_name} must be a number, got {v!r}")
            return v

        @field_validator("quality_threshold")
        @classmethod
        def _quality(cls, v: float | str | None) -> float | str | None:  # after pydantic made a float of np.float32, "0.5"
            if isinstance(v, float) and not (math.isfinite(v) and 0.0 <= v <= 1.0):  # above 1: every edit rejected
                raise ValueError(f"quality_threshold must be 'auto', None or a number in [0, 1], got {v}")
            return v

        @field_validator("bounds")
        @classmethod
        def _bounds(cls, v: dict[str | int, tuple[float, float]] | None) -> dict[str | int, tuple[float, float]] | None:
            # JSON turns the index keys of to_dict into strings ("5"): read them back as indices
            return None if v is None else {int(k) if isinstance(k, str) and k.isdecimal() else k: r for k, r in v.items()}

        @field_validator("codes", mode="before")
        @classmethod
        def _codes(cls, v: list[str | int] | None) -> list[str | int] | None:
            if isinstance(v, np.ndarray):  # np.array(["smile", "tone"]): plain names / indices
                v = v.tolist()
            check_code_list(v)  # before pydantic reads True as 1
            return v

        @field_validator("device", mode="before")
        @classmethod
        def _device(cls, v: Any) -> Any:
            if isinstance(v, torch.device):  # torch.device("cuda", 1): kept as its name, so the transform serialises
                return str(v)
            if isinstance(v, str) and v != "auto":
                try:
                    torch.device(v)
                except RuntimeError:
                    raise ValueError(f"unknown device {v!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
            return v

        @field_validator("refine_loss")
        @classmethod
        def _loss(cls, v: str) -> str:
            check_refine_loss(v, "GenerativeFaceAug (it serialises by its arguments)")
            return v

    def __init__(
        self,
        bundle: str | Path = "default",
        codes: list[str | int] | None = None,
        mode: Literal["delta", "regenerate"] = "delta",
        strength: Strength = 1.0,
        refine_steps: int | None = None,
        refine_loss: str = "mse+msssim",
        framing: Literal["auto", "full", "none", "detect"] = "auto",
        bounds: dict[str, tuple[float, float]] | None = None,
        device: str = "auto",
        cache_size: int = 4096,
        gate_threshold: float | None = None,
        gate: Literal["auto", "student", "embedder", "identity", "dlib"] = "auto",
        quality_threshold: float | Literal["auto"] | None = None,
        p: float = 0.5,
    ):
        super().__init__(p=p)
        self.bundle = bundle_path(bundle)
        self.codes = list(codes) if codes is not None else None
        self.mode = mode
        self.strength = strength
        self.refine_steps = refine_steps
        self.refine_loss = refine_loss
        self.framing = framing
        self.bounds = dict(bounds) if bounds is not None else None
        self.device = device
        self.cache_size = cache_size
        self.gate_threshold, self.gate = gate_threshold, gate
        self.quality_threshold = quality_threshold
        self._lazy = LazyEngine(
            bundle=self.bundle, device=device, refine_steps=refine_steps, refine_loss=refine_loss, cache_size=cache_size,
            mode=mode, framing=framing, gate=online_gate(gate) if gate_threshold is not None else None,
            gate_threshold=gate_threshold or 0.0, quality="critic" if quality_threshold is not None else None,
            quality_threshold=quality_threshold if quality_threshold is not None else "auto", codes=self.codes, bounds=self.bounds, seed=0,
        )
        self._worker_tag: tuple[int, int] | None = None
        self._geometric_aliases: dict[str, str] = {}  # Compose(additional_targets=) names of masks, boxes, keypoints
        self.last_info = None
        check_edit_options(self.bundle, self.codes, self.bounds, stacklevel=5)  # (5: albumentations wraps __init__)
        self._turns = _named_turns(self.bundle, self.codes)

    def __setattr__(self, name: str, value: Any) -> None:
        """An argument set after construction (``aug.codes = ["yaw"]``, ``aug.strength = (0.5, 1.0)``, ``aug.p = 0.3``)
        is validated and takes effect as if given to ``__init__`` (an engine argument rebuilds the engine on next use),
        so what runs is what ``to_dict`` saves."""
        if (name == "p" or name in self.get_transform_init_args_names()) and "_turns" in self.__dict__:
            args = {k: getattr(self, k) for k in self.get_transform_init_args_names()}
            fresh = type(self)(**{**args, "p": self.p, name: value})
            for k in (*ENGINE_ARGS, "_lazy", "_turns") if name in ENGINE_ARGS else (name,):
                object.__setattr__(self, k, fresh.__dict__[k])
            return
        super().__setattr__(name, value)

    @property
    def last_info(self) -> Any:
        """What this transform's last call applied: a :class:`genaug.engine.AugmentInfo` (``edits`` after re-draws and
        gates, ``kept``, ``descriptions``), or None when that call was skipped by this transform's own ``p`` (or
        replayed as not applied). The params record what was drawn; this, what was applied.

        It is the last call *of this transform*, not always the last call of a pipeline holding it: albumentations
        calls a transform only when it reaches it, so when ``A.OneOf`` / ``A.SomeOf`` picks another transform, or
        an enclosing ``A.Compose(p<1)`` / ``A.OneOf`` skips the block, this transform is not called and
        ``last_info`` still describes an earlier call (as albumentations' own ``params`` do; a pipeline's call has
        no hook that reaches transforms it does not run). Per pipeline call: set ``aug.last_info = None`` before it
        (it stays None unless this transform ran), or build the outer ``A.Compose`` with
        ``save_applied_params=True``: its result's ``applied_transforms`` names this transform only when it ran.
        Inside a DataLoader worker it is the worker's copy that records."""
        return self._last_info

    @last_info.setter
    def last_info(self, info: Any) -> None:
        self._last_info = info

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("bundle", "codes", "mode", "strength", "refine_steps", "refine_loss", "framing", "bounds",
                "device", "cache_size", "gate_threshold", "gate", "quality_threshold")

    @property
    def engine(self) -> Any:
        """The engine, loaded on first use in this process (CPU inside DataLoader workers)."""
        return self._lazy.get()

    @property
    def _engine(self) -> Any:
        """The engine if already loaded in this process, else None."""
        return self._lazy.built

    # ------------------------------------------------------------------ params
    def set_random_seed(self, seed: int | None) -> None:
        """As albumentations does, but a seed is salted with this transform's name and draw settings (p, codes,
        strength, bounds) first: ``A.Compose(seed=...)`` seeds every transform with the same number, so a ``p=0.5`` GenerativeFaceAug would
        apply exactly when a ``p=0.5`` flip before it flips, and two GenerativeFaceAugs of one pipeline
        (``codes=["yaw"]`` and ``codes=["light"]``) would fire together; still reproduced by the seed. A fixed
        ``strength`` scales the drawn edit and draws nothing, so it salts as 1 does: a strength sweep at one seed shows
        the same edit weaker or stronger (it drew another edit at each strength); a ``(low, high)`` range salts."""
        settings = {k: getattr(self, k, None) for k in ("p", "codes", "strength")}  # what draws (no paths, devices)
        settings["strength"] = 1.0 if isinstance(settings["strength"], (int, float)) else settings["strength"]
        settings["bounds"] = sorted((str(k), v) for k, v in (getattr(self, "bounds", None) or {}).items())  # (keys: names or indices)
        text = f"genaug.GenerativeFaceAug/{seed}/{json.dumps(settings, sort_keys=True, default=str)}"
        salted = hashlib.blake2b(text.encode(), digest_size=8).digest()
        super().set_random_seed(None if seed is None else int.from_bytes(salted, "little") % 2**62)
        self._seeded_here()

    def set_random_state(self, random_generator: Any, py_random: Any) -> None:
        super().set_random_state(random_generator, py_random)
        self._seeded_here()

    def _seeded_here(self) -> None:
        """A seed or random state set inside a DataLoader worker (``worker_init_fn``: ``pipe.set_random_seed(137 +
        worker_id)``) is the caller's choice for that worker: used as given, not re-mixed with the worker's seed (which
        made such runs differ each time, where albumentations' own transforms repeat)."""
        here = worker_tag()
        if here is not None:
            self._worker_tag = here

    def _mix_worker_seed(self) -> None:
        """In a DataLoader worker, re-mix the random state with the worker's seed once, so forked
        workers (which start with identical states) draw different augmentations; not where the state was set in
        this worker (:meth:`_seeded_here`)."""
        here = worker_tag()
        if here is not None and here != self._worker_tag:
            self.set_random_seed((self.py_random.getrandbits(62) ^ here[1]) % 2**62)  # (sets the tag)

    def add_targets(self, additional_targets: dict[str, str]) -> None:
        super().add_targets(additional_targets)  # (it keeps only the image-like ones this transform edits)
        self._geometric_aliases.update({k: v for k, v in additional_targets.items() if v in GEOMETRIC_TARGETS})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.last_info = None  # a call that p skips (or a replay that skips it) applied nothing
        if not self.replay_mode and self.p > 0:  # before the p draw: the refusal must not depend on it
            self._refuse_named_turns(kwargs)
        if self.replay_mode and self.applied_in_replay:  # a replay does not draw: check the record's edits
            self._check_replayed_edits(self.params.get("edits", []), kwargs)
        return super().__call__(*args, **kwargs)

    def _marked(self, data: dict[str, Any]) -> list[str]:
        """The targets of this call that mark places in the image (boxes, masks, keypoints), non-empty ones only."""
        kinds = {**{k: k for k in GEOMETRIC_TARGETS}, **self._geometric_aliases}  # with additional_targets={"mask2": "mask"}
        return [k for k, v in data.items() if k in kinds and v is not None and len(v)]

    def _refuse_named_turns(self, data: dict[str, Any]) -> list[str]:
        """This call's marking targets (:meth:`_marked`); ValueError if ``codes`` names a turn beside them."""
        marked = self._marked(data)
        if marked and self._turns:
            raise ValueError(f"codes {self._turns} turn the head and move the photo by a few pixels, but this call's "
                             f"{', '.join(marked)} would come back unmoved (an image-only transform): leave those "
                             "codes out of this Compose")
        return marked

    def _check_replayed_edits(self, edits: list[Any], data: dict[str, Any]) -> None:
        """A replayed record that drew a head turn is refused beside boxes / masks / keypoints, as a fresh call
        never draws one there (they would come back unmoved)."""
        marked = self._marked(data)
        if not marked or not edits:
            return
        names = self.engine.code_names
        moving = sorted({names[int(e[0])] for e in edits if names[int(e[0])] in GEOMETRIC_CONTROLS})
        if moving:
            raise ValueError(f"this replay's record drew {moving}, which turns the head and moves the photo by a few "
                             f"pixels, but this call's {', '.join(marked)} would come back unmoved (an image-only "
                             "transform): replay it without those targets, or draw a fresh record with them "
                             "(a call with them never draws a turn)")

    def should_apply(self, force_apply: bool = False) -> bool:
        self._mix_worker_seed()  # the p-decision is the first draw of a call: workers must differ from it on
        return super().should_apply(force_apply=force_apply)

    def _sample_strength(self) -> float:
        s = self.strength
        return float(s) if isinstance(s, (int, float)) else self.py_random.uniform(*s)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        with torch_defaults():  # genaug's draws whatever default dtype or device the script set (genaug.device)
            return self._draw_params(data)

    def _draw_params(self, data: dict[str, Any]) -> dict[str, Any]:
        self._mix_worker_seed()
        n = len(data["images"]) if "images" in data and "image" not in data else 1
        draw = torch.Generator().manual_seed(self.py_random.getrandbits(62))
        still = bool(self._refuse_named_turns(data))  # boxes, masks or keypoints: yaw would move what they mark
        return {
            "edits": self.engine.random_edits(n, draw, self._still_codes() if still else None),
            "strengths": [self._sample_strength() for _ in range(n)],
            "gate_seed": self.py_random.getrandbits(32),
            "still": still,
        }

    def _still_codes(self) -> list[int]:
        """The engine's random set without the controls that move the photo (yaw): drawn beside boxes, masks or keypoints."""
        eng = self.engine
        codes = eng.codes if eng.codes is not None else default_codes(eng.spec)  # code indices
        return [c for c in codes if eng.code_names[c] not in GEOMETRIC_CONTROLS]

    # ------------------------------------------------------------------- apply
    def _run(self, images: list[np.ndarray], edits: list[Edit], strengths: list[float], gate_seed: int,
             still: bool = False) -> list:
        edits = [Edit(*e) for e in edits]  # also edits read back from a JSON replay ([code, value, relative])
        if len(edits) != len(images):  # params sampled for one image, replayed on several
            if len(edits) != 1:  # a batch's record on another batch: each image's own edit has no image here
                raise ValueError(f"these params hold the edits of a batch of {len(edits)} images, but this call has "
                                 f"{len(images)}: replay a batch's record on a batch of that size (one image's on any)")
            edits, strengths = [edits[0]] * len(images), [strengths[0]] * len(images)
        with torch_defaults():  # a drawn yaw / light on a photo without a found face: re-drawn among the latent codes
            out, info = self.engine.augment(
                list(images), edits=edits, strength=torch.tensor(strengths), generator=torch.Generator().manual_seed(gate_seed),
                redraw_unplaced=True, redraw_codes=self._still_codes() if still else None,  # a gate's re-draws too
            )
        self.last_info = info  # what was applied (after re-draws and gates); the params record what was drawn
        return out

    def apply(self, img: np.ndarray, edits: list[Edit], strengths: list[float], gate_seed: int, still: bool = False,
              **params: Any) -> np.ndarray:
        return self._run([img], edits[:1], strengths[:1], gate_seed, still)[0]

    def apply_to_images(
        self, images: np.ndarray, edits: list[Edit], strengths: list[float], gate_seed: int, still: bool = False,
        **params: Any
    ) -> np.ndarray:
        return np.stack(self._run(list(images), edits, strengths, gate_seed, still))


def _named_turns(bundle: str, codes: list[str | int] | None) -> list[str]:
    """The codes named in ``codes`` that turn the head (:data:`GEOMETRIC_CONTROLS`), from the bundle's config alone."""
    if codes is None:
        return []
    from .bundle.format import read_spec

    spec = read_spec(bundle)
    names = all_code_names(spec)
    return [names[i] for i in check_codes(spec, codes) or [] if names[i] in GEOMETRIC_CONTROLS]
