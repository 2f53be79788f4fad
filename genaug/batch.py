"""``BatchFaceAug``: genaug for batches already on the device, in the shape of
``torchvision.transforms.v2`` and ``kornia.augmentation`` modules.

    aug = genaug.BatchFaceAug(p=0.5, seed=0)          # device: the first batch's
    for images, labels, index in loader:              # NCHW uint8 or float in [0, 1], any size
        images = aug(images.cuda(), index=index)      # index: dataset indices -> latents kept on the device

Per call: which rows are edited (probability ``p``), the code, its value and the strength are drawn
on the host from the transform's CPU ``torch.Generator`` (the same draws on every device, like
kornia's parameters) and sent in one non-blocking copy; the edited rows go through one batched
pass on the device (:mod:`genaug.engine.batch_pass`: frame, latent look-up, :mod:`genaug.engine.batch_edits`, one
generator pass, blend, paste back); pickling and device moves: :mod:`genaug.engine.batch_module`. A random colour
edit is moved at least ``COLOUR_MARGIN`` off the face's own value on the device, as :class:`genaug.Engine` moves it
(``params.value`` keeps the draw, ``params.target`` the value applied; a replay of the params moves it alike). The
output keeps the input's dtype, shape, device and ``tv_tensors.Image`` type (grey and RGBA too: edited as grey RGB,
alpha kept); rows not drawn come back unchanged, as do rows whose edit changes no pixel (strength 0, a control at 0).
Nothing is differentiable: the output is detached data.

Latents: with ``index=`` (dataset indices, ideally on the host as a DataLoader yields them) they
live in a :class:`genaug.engine.latent_table.LatentTable` - no hashing, no device-to-host read; without,
the model-frame pixels are hashed on the device (:func:`genaug.engine.cache.pixel_keys`) - one
device-to-host read of the (N, 16) keys per batch on an accelerator. A row seen for the first time is
inverted (a host decision, outside the hot path). Value checks of float input read the batch's range:
on by default on the CPU only.
Image-space controls named in ``codes`` are placed by the framing rule's landmarks, or by the caller's
(``aug(x, landmarks=lm)``: (N, 5, 2) dlib-order points in pixels of the batch, e.g. ``aug.find_landmarks(x)`` computed
once per dataset on the host; :mod:`genaug.engine.batch_landmarks`).
Inside ``torch.compile`` it runs eagerly, a graph break; ``torch.jit``, ``torch.export`` and ``torch.func`` transforms
refuse it with a reason; a script's default dtype or device, autocast and inference mode change nothing
(:func:`genaug.device.torch_defaults`); threads sharing one transform take turns (:class:`genaug.distenv.Turns`).
No identity gate here (a host decision per row): use :class:`genaug.GenerativeFaceAug` or :class:`genaug.Engine`.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .bundle.format import Bundle, bundle_path
from .device import resolve_device, torch_defaults
from .distenv import Turns, mix_rank_seed, mix_worker_seed, worker_tag
from .engine.batch_calls import compiling, eagerly, exporting, transformed
from .engine.batch_edits import BatchParams, code_layout, colour_margins, recipe_kinds, recipe_tables
from .engine.batch_inputs import check_batch, one_image, other_tv_tensor, route, tv_image_type
from .engine.batch_landmarks import check_landmark_values, check_landmarks, check_replay_size, find_landmarks
from .engine.batch_module import BatchModule
from .engine.batch_pass import augment_rows, channels_last, unmoved_nan
from .engine.batch_render import render_controls
from .engine.codes import (all_code_names, check_codes, check_flag, check_generator, check_seed, check_spec_options, code_ranges,
                           default_codes, probability, strength_range, whole)
from .engine.colour_margin import COLOUR_MARGIN
from .engine.edits import draw_edits
from .engine.latent_table import ContentSlots, LatentTable, host_array
from .engine.render import MODES
from .engine.roomless import redraw_batch_roomless
from .faces.framing import face_box


class BatchFaceAug(BatchModule):
    """Edit one semantic code (glasses, smile, ...) of each face in a device batch.

    Args:
        p: probability that a row is edited.
        codes: codes random edits may touch (None: the latent codes of the bundle's random set, its identity-safe
            codes not marked ``random=False``; the set's image-space controls are left out). Image-space controls
            named here (``"yaw"``, ``"light"``, ...) are rendered on the batch at its own size, placed by the framing
            rule's landmarks in the face box (no detection or refinement on this path), one batched call per control
            (their renderers read a few values to the host). Pass ``landmarks=`` to the call to place them on your
            faces instead (see :meth:`forward`, :meth:`find_landmarks`). A drawn control the face has no room for (a
            near-profile face) is re-drawn among the other codes here that act there (:mod:`genaug.engine.roomless`).
        strength: edit strength, or a ``(low, high)`` range drawn per row.
        bundle: ``"default"``, a bundle folder or a :class:`genaug.Bundle`.
        device: where the work runs (None: the first batch's device; batches elsewhere are copied there and back);
            ``.to(device)``, ``.cuda()``, ``.cpu()`` set it and move a built engine, as for any ``nn.Module``.
        mode: ``"delta"`` or ``"regenerate"`` (see :class:`genaug.Engine`).
        framing: ``"auto"`` (the bundle's CelebA box on 178x218-shaped batches, else the centred
            square) or ``"full"`` (the centred square); no face detection on this path.
        bounds: ``{code: (low, high)}`` ranges for continuous codes.
        generator / seed: the CPU ``torch.Generator`` parameters are drawn from (or a seed for one); neither:
            torch's global CPU generator (``torch.manual_seed`` makes the draws repeat, as in torchvision v2).
        return_params: return ``(out, params)`` instead of ``out`` (the params are kept in ``_params`` either way).
        cache_size: slots for latents found by content (unnamed images; storage grows with use); at least the batch size.
        table: the :class:`LatentTable` for named images (``index=``), or its capacity (None: grows). Its latents are of
            the photos as framed: after ``aug.framing`` (or the bundle) changes, the transform's own table starts afresh
            (the next calls invert again, as a new transform would); a table given here is refused then, with a
            ``ValueError`` saying how to reset (``aug.table = genaug.LatentTable()``).
        check_values: read the range of float input to reject values outside [0, 1] (one
            device-to-host read); None = every batch on the CPU, the first batch elsewhere.
        batch_size: rows per generator call.

    Call: ``aug(x, *others, index=None, params=None, landmarks=None)``; ``landmarks``: an (N, 5, 2) float tensor of
    each face's 5 landmarks in dlib's order (:mod:`genaug.faces.landmarks`) in pixels of ``x`` (pixel centres at integers),
    on the host or the device, where image-space controls are placed instead of the framing rule's guess (a row all
    NaN: the rule's). Checked up front (shape, dtype; values - finite, inside the image, a face's order - on the host
    at once for a CPU tensor, otherwise by one read in calls that render a control: a call of latent-code rows never
    reads them) and recorded in the returned params (``params.landmarks``), so ``aug(x, params=params)`` replays it.
    A replay repeats the call to the bit under the same torch thread count; under another, the CPU generator's float32
    transposed convolutions (oneDNN, which splits small batches by thread) may round differently: float outputs within
    1e-6 (measured: 1.2e-7 on 3 rows, 1 vs 2 threads; none on batches of 24-128), uint8 within one level on rare pixels.
    """

    @torch_defaults()  # its host tables on the CPU, also when built under torch.device("meta") with a model
    def __init__(self, p: float = 0.5, codes: list[str | int] | None = None, strength: float | tuple[float, float] = 1.0,
                 bundle: Bundle | str | Path = "default", device: str | torch.device | None = None, mode: str = "delta",
                 framing: str = "auto", bounds: dict[str | int, tuple[float, float]] | None = None,
                 generator: torch.Generator | None = None, seed: int | None = None, return_params: bool = False,
                 cache_size: int = 4096, table: LatentTable | int | None = None, check_values: bool | None = None,
                 batch_size: int = 256):
        super().__init__()
        self.p = p  # (checked: __setattr__, as are mode and framing below)
        check_generator(generator, host=True)
        if generator is not None and seed is not None:  # one would be ignored
            raise ValueError("give generator or seed, not both (seed=s is generator=torch.Generator().manual_seed(s))")
        if seed is not None:
            check_seed(seed, high=2**64)  # torch.Generator's range
        for name, v in (("cache_size", cache_size), ("batch_size", batch_size)):
            if not whole(v) or v < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {v!r}")
        self.strength, self.codes, self.bounds = strength, codes, bounds  # (strength: kept as strength_range)
        self.bundle, self.mode, self.framing, self.return_params = bundle_path(bundle), mode, framing, return_params
        self.check_values, self.batch_size, self.cache_size = check_values, int(batch_size), int(cache_size)
        self.device = resolve_device(device) if device is not None else None
        # neither given: draw from torch's global CPU generator, as torchvision v2 and kornia do (torch.manual_seed applies)
        self.generator = generator or (torch.Generator().manual_seed(int(seed)) if seed is not None else None)
        self._values_checked = False  # check_values=None: the first batch off the CPU is read once
        self.table = table if isinstance(table, LatentTable) else LatentTable(table)
        self._own_table = not isinstance(table, LatentTable)  # made here (not shared): started afresh when unbound
        self._params: BatchParams | None = None
        self._engine: Any = None
        self._feathers: dict[tuple[int, int], Tensor] = {}
        self._box_key: tuple[Any, str] = (None, "")
        self._work: dict[tuple, Tensor] = {}  # work buffers kept across calls (never returned)
        self._views: dict[tuple, tuple[Tensor, Tensor]] = {}  # views of the tables' storage (batch_latents.stored)
        self._lock = Turns()  # one call at a time: the work buffers and tables are shared across calls
        spec = self._spec()  # fail now, not at the first batch
        check_spec_options(spec, codes, bounds, stacklevel=4)  # codes each once; bounds of drawn codes (4: the decorator)

    def __setattr__(self, name: str, value: Any) -> None:
        """``p``, given or set later (``aug.p = 0.3``): a probability in [0, 1], kept as a float (True is no p); ``strength``,
        ``mode``, ``framing`` and ``generator`` given or set later, ``codes`` and ``bounds`` set later (``__init__`` checks those
        against the bundle's codes) are checked here (each call reads them; a generator set inside a DataLoader worker -
        ``worker_init_fn`` - is used as given, not mixed with the worker's seed); ``aug.strength = 0.5`` was silently ignored. ``bounds`` and ``mode`` re-make the colour margins; a new
        ``framing`` starts the transform's own table afresh at the next call with ``index=`` (its latents were of the
        old framing's face box), a table the caller gave is refused there. A setting set while another thread's call
        runs waits for that call to end (the call's lock; re-entrant: a call path's own sets go through)."""
        lock = None if name.startswith("_") else self.__dict__.get("_lock")  # (none yet: in __init__)
        if lock is None:
            return self._set(name, value)
        with lock:
            self._set(name, value)

    def _set(self, name: str, value: Any) -> None:
        """:meth:`__setattr__`'s check and set."""
        if name == "p":
            value = probability(value)
        elif name == "strength":  # (the range drawn from: strength_range)
            name, value = "strength_range", strength_range(value)
        elif name == "table" and "_lock" in self.__dict__:  # a table set later is the caller's (refused, not replaced)
            if not isinstance(value, LatentTable):
                raise ValueError(f"table must be a genaug.LatentTable, got {type(value).__name__}")
            super().__setattr__("_own_table", False)
        elif (name == "mode" and value not in MODES) or (name == "framing" and value not in ("auto", "full")):
            raise ValueError(f"mode must be one of {MODES} and framing 'auto' or 'full', got {name}={value!r}")
        elif name == "generator":  # checked as given; one set inside a DataLoader worker (worker_init_fn) is used as given
            check_generator(value, host=True)
            if "_lock" in self.__dict__ and worker_tag() is not None:  # (not mixed with the worker's seed: mix_worker_seed)
                super().__setattr__("_worker_tag", worker_tag())
        elif name == "return_params" or (name == "check_values" and value is not None):  # "no" is true in Python
            value = check_flag(value, name)
        elif name in ("codes", "bounds") and "_lock" in self.__dict__:  # (after __init__, which checks them with its spec)
            if name == "codes":
                check_codes(self._spec(), value)
            elif name == "bounds":
                code_ranges(self._spec(), value)
        super().__setattr__(name, value)
        if name in ("bounds", "mode") and self.__dict__.get("_engine") is not None:  # its colour margins follow them
            self._margin = self._margins(self._engine)

    @property
    def strength(self) -> float | tuple[float, float]:
        """The edit strength: a number, or the ``(low, high)`` range drawn from per row (kept as ``strength_range``)."""
        lo, hi = self.strength_range
        return lo if lo == hi else (lo, hi)

    def extra_repr(self) -> str:  # the settings as given (strength: a number or its range); bounds when set
        bounds = f", bounds={self.bounds}" if self.bounds is not None else ""
        return f"p={self.p}, strength={self.strength}, codes={self.codes}, mode={self.mode!r}, framing={self.framing!r}{bounds}, device={self.device}"

    # ------------------------------------------------------------------ setup
    def _engine_on(self, device: torch.device, bundle: Bundle | None = None) -> Any:
        if self._engine is None:
            from .engine.core import Engine

            if device.type == "meta":
                raise ValueError("this BatchFaceAug was moved to the 'meta' device (shapes only, no weights): "
                                 "genaug edits real images, move it with .to('cpu') or .to('cuda')")
            eng = Engine(self.bundle if bundle is None else bundle, device=device, batch_size=self.batch_size, cache_size=0,
                         mode=self.mode, codes=self.codes, bounds=self.bounds)
            self._layout = code_layout(eng.spec, eng.device)
            self._recipe = recipe_tables(eng.bundle, self._layout, eng.device)
            (self._kind, self._colour_all, self._recipe_has, self._colour_entries, self._luma_code, self._luma_entries,
             self._region_code, self._region_entries, self._hue_code, self._hue_entries) = recipe_kinds(eng.bundle, self._layout, self._recipe, eng.device)
            self._margin = self._margins(eng)
            if getattr(self, "_content", None) is None:  # (kept when .to() moved the transform)
                self._slots, self._content = ContentSlots(self.cache_size), LatentTable(self.cache_size)
            self._content.bind(eng._settings)  # (keyed by the model-frame pixels: any framing)
            self._engine = eng
        elif self._engine.device != device:
            raise ValueError(f"this BatchFaceAug runs on {self._engine.device}, got a batch on {device}: "
                             "move it with .to(device) (or pass device=) to copy batches there, or use one transform per device")
        return self._engine

    def _named_table(self, eng: Any) -> LatentTable:
        """:attr:`table`, bound to what its latents depend on: the bundle and inversion settings, ``framing`` and the
        bundle's face box. Filled under others (``aug.framing`` changed since): the transform's own table is replaced
        by a fresh one of its capacity (what a new transform would hold); a table the caller gave is refused."""
        held, box = getattr(self, "_box_key", (None, ""))  # (the bundle's face box, written once per bundle, not per call)
        if held is not eng.bundle:
            box = json.dumps(getattr(eng.bundle, "framing", None), sort_keys=True)
            self._box_key = (eng.bundle, box)
        settings = f"{eng._settings}|framing={self.framing}|box={box}"
        table = self.table
        if table.settings not in (None, settings) and getattr(self, "_own_table", True):
            table = self.table = LatentTable(table.capacity)
            self._own_table, self._views = True, {}  # (views of the old storage dropped)
        try:
            table.bind(settings)
        except ValueError:
            raise ValueError(f"this BatchFaceAug's LatentTable holds latents of photos framed under other settings "
                             f"({table.settings!r}; now {settings!r}): framing, the bundle or its inversion settings "
                             "changed since it was filled (or another transform fills it). Give this transform a fresh "
                             "table (aug.table = genaug.LatentTable()), or one table per framing") from None
        return table

    @torch_defaults()  # float32 draws: the same params as a call's under a float64 default
    def draw(self, n: int) -> BatchParams:
        """Parameters for a batch of ``n`` rows, from the transform's generator."""
        if not whole(n) or n < 0:
            raise ValueError(f"draw(n): n is the batch's row count, a whole number >= 0, got {n!r}")
        if self.generator is not None:  # its own generator, copied into forked DataLoader workers and torchrun's ranks: mixed
            self._rank_tag = mix_rank_seed(self.generator, getattr(self, "_rank_tag", None))  # (rank 0: as in one process)
            self._worker_tag = mix_worker_seed(self.generator, getattr(self, "_worker_tag", None))
        g = self.generator if self.generator is not None else torch.default_generator
        apply = torch.rand(n, generator=g) < self.p
        spec = self._spec()
        codes = self.codes if self.codes is not None else default_codes(spec, controls=False)
        d = draw_edits(spec, n, g, codes=codes, bounds=self.bounds)
        lo, hi = self.strength_range
        strength = lo + (hi - lo) * torch.rand(n, generator=g)
        return BatchParams(apply, d.code, d.value, d.relative, strength)

    def _margins(self, eng: Any) -> Any:
        """A random colour edit is moved at least COLOUR_MARGIN off the face's own value, within the drawn range, as the
        engine moves it (:func:`colour_margins` of ``bounds``; ``delta`` mode only)."""
        return colour_margins(eng.spec, self._colour_all, code_ranges(eng.spec, self.bounds), COLOUR_MARGIN) if self.mode == "delta" else None

    def _spec(self) -> Any:
        if self._engine is not None:
            return self._engine.spec
        from .bundle.format import read_spec

        return self.bundle.spec if isinstance(self.bundle, Bundle) else read_spec(str(self.bundle))

    def find_landmarks(self, x: Tensor) -> Tensor:
        """dlib's 5 landmarks of each face in a batch ``x`` (NCHW, uint8 or float in [0, 1], as the call takes it), for
        ``aug(x, landmarks=...)``: (N, 5, 2) float32 on the host, in pixels of ``x``, placed as :class:`genaug.GenerativeFaceAug`
        and :meth:`genaug.Engine.augment` place their controls on such photos (a row dlib cannot place in a face's order:
        NaN, the framing rule's). Runs dlib per face on the host (ms each; the ``faces`` extra): compute them once per
        dataset, at the size the batch will have, and look them up by index in the loop
        (:func:`genaug.engine.batch_landmarks.find_landmarks`)."""
        with torch_defaults(), torch.no_grad():
            if not isinstance(x, Tensor) or x.ndim != 4:
                raise ValueError(f"expected an NCHW batch, got {getattr(x, 'shape', type(x).__name__)}")
            cfg = self._framing_config() or {}
            own = list(x.shape[:1:-1]) == list(cfg.get("reference_size") or ())  # CelebA's own 178x218: not searched
            return find_landmarks(x, face_box(x.shape[2], x.shape[3], cfg or None, self.framing), own)

    def _framing_config(self) -> dict | None:
        """The bundle's framing settings (its reference frame and face box), from its config alone when not loaded."""
        if self._engine is not None or isinstance(self.bundle, Bundle):
            return getattr(self._engine.bundle if self._engine is not None else self.bundle, "framing", None)
        from .bundle.format import read_config

        return read_config(str(self.bundle)).get("framing")

    def _checked(self, params: Any, n: int) -> BatchParams:
        if isinstance(params, Mapping) and set(params) <= {f.name for f in dataclasses.fields(BatchParams)}:
            params = BatchParams(**params)  # dataclasses.asdict of one, e.g. saved beside a batch
        if not isinstance(params, BatchParams):
            raise ValueError("params must be the BatchParams a call returned (or a dict of its fields), "
                             f"got {type(params).__name__}")
        if any(len(getattr(params, f)) != n for f in ("apply", "code", "value", "relative", "strength")):
            raise ValueError(f"params were drawn for {len(params.apply)} rows, the batch has {n}")
        fields = (params.apply, params.code, params.value, params.relative, params.strength)
        params = BatchParams(*(f if f.device.type == "cpu" else f.cpu() for f in fields), params.target,  # host tensors
                             None if params.landmarks is None else check_landmarks(params.landmarks, n), params.size)  # (kept where they are)
        codes, known = host_array(params.code), len(all_code_names(self._spec()))
        if len(codes) and not (0 <= codes.min() and codes.max() < known):  # (numpy: no tensor read on the hot path)
            raise ValueError(f"params name code indices {sorted(set(codes.tolist()))[:8]}, but this transform's bundle has "
                             f"{known} codes (0..{known - 1}): params of another bundle?")
        return params

    # ---------------------------------------------------------------- the call
    def forward(self, x: Tensor, *others: Any, index: Any = None, params: BatchParams | None = None,
                landmarks: Tensor | None = None) -> Any:
        if exporting():  # (torch.export, the dynamo-based torch.onnx.export) a graph would freeze one call's draws
            raise RuntimeError("BatchFaceAug cannot be exported (torch.export, torch.onnx.export): it draws its edits on "
                               "the host per call; apply it to the batch outside the exported model")
        if compiling():  # inside torch.compile (its own or a parent model's): run eagerly, as torch.compiler.disable does
            return eagerly(BatchFaceAug._call)(self, x, *others, index=index, params=params, landmarks=landmarks)
        return self._call(x, *others, index=index, params=params, landmarks=landmarks)

    def _call(self, x: Tensor, *others: Any, index: Any = None, params: BatchParams | None = None,
              landmarks: Tensor | None = None) -> Any:
        if torch.jit.is_tracing():  # (torch.jit.trace, the TorchScript torch.onnx.export) a trace would freeze one call's draws
            raise RuntimeError("BatchFaceAug cannot be traced (torch.jit.trace, torch.onnx.export): it draws its edits on "
                               "the host per call; apply it to the batch outside the traced model")
        if transformed():  # (torch.func.vmap, grad, jvp...) a batched or tracked wrapper has no storage to read
            raise RuntimeError("BatchFaceAug cannot run inside a torch.func transform (vmap, grad, jacrev, jvp, ...): it "
                               "draws its edits on the host and returns detached data; call it on the whole batch outside")
        # genaug's own settings (torch_defaults): buffers and tables outlive the call, never inference tensors nor made
        # under a script's dtype, device or autocast; threads calling one transform take turns
        with self._lock, torch_defaults(), torch.no_grad():
            return self._forward(x, *others, index=index, params=params, landmarks=landmarks)

    def _forward(self, x: Tensor, *others: Any, index: Any = None, params: BatchParams | None = None,
                 landmarks: Tensor | None = None) -> Any:
        """Augment ``x`` (N, C, H, W), uint8 or float in [0, 1]. ``index``: the rows' dataset
        indices (latents kept in ``table``); ``params``: replay a previous call's parameters (its landmarks too, unless
        ``landmarks`` is given); ``landmarks``: (N, 5, 2) float, dlib's 5 points of each face in pixels of ``x`` (a NaN
        row: the framing rule's), where the image-space controls are placed (:mod:`genaug.engine.batch_landmarks`;
        :meth:`find_landmarks` computes them once per dataset).
        As in ``torchvision.transforms.v2``, further inputs (labels, ...) pass through unchanged:
        ``aug(images, labels)`` returns ``(augmented, labels)``, a dict sample comes back a dict; the
        batch is the first ``tv_tensors.Image`` among the inputs, else the first plain 4-dim tensor (not a Mask)."""
        if others or not isinstance(x, Tensor) or other_tv_tensor(x):  # (images, labels), a dict sample, a bare Mask...: routed
            return route(self, (x, *others), bool(others), index, params, landmarks)
        if x.ndim == 3:  # one (C, H, W) image, as a per-sample torchvision v2 pipeline hands it: a batch of one
            return one_image(self, x, index, params, landmarks)
        image_type = tv_image_type()
        wrapped = image_type is not None and isinstance(x, image_type)
        given = x.as_subclass(Tensor) if wrapped else x
        t, checked = check_batch(given, self.check_values, self._values_checked)
        self._values_checked = self._values_checked or checked
        clipped = t is not given  # float ringing clipped to [0, 1] for the edit
        eng = self._engine_on(self.device or t.device)
        c = t.shape[1]
        if c != eng.channels and not (eng.channels == 3 and c in (1, 4)):
            raise ValueError(f"batch must have the model's {eng.channels} channels (or 1: grey, 4: RGBA) in dim 1 (NCHW), "
                             f"got shape {tuple(t.shape)}")
        alpha = t[:, 3:] if c == 4 else None  # RGBA: the colour is edited, alpha kept; grey: edited as grey RGB
        t = t.repeat(1, 3, 1, 1) if c == 1 else t[:, :3].contiguous() if c == 4 else t
        n = t.shape[0]
        drawn, params = params is None, self.draw(n) if params is None else self._checked(params, n)
        if landmarks is None and params.landmarks is not None:  # a replay placing controls where the call it replays did
            check_replay_size(params.size, t.shape[2], t.shape[3], params.landmarks)
        marks = params.landmarks if landmarks is None else check_landmarks(landmarks, n)  # (shape and dtype: no read)
        size = None if marks is None else tuple(t.shape[2:])  # recorded with them: what a replay checks
        if marks is not None and marks.device.type == "cpu":  # values read on the host now (no device involved);
            check_landmark_values(marks, t.shape[2], t.shape[3])  # elsewhere only in calls that render a control
        if index is not None:
            index = self._named_table(eng).check(index)
            if len(index) != n:
                raise ValueError(f"index must hold one dataset index per row: {len(index)} for a batch of {n}")
        if n == 0:  # an empty batch (aug(x[rows]) with no rows) comes back empty, as in torchvision v2
            params = BatchParams(params.apply, params.code, params.value, params.relative, params.strength, params.target, marks, size)
            self._params = params
            return (x.clone(), params) if self.return_params else x.clone()
        if drawn:  # a drawn control the face has no room for (near profile): re-drawn among the codes that act there
            params = redraw_batch_roomless(self, params, t, eng, marks)
        control = host_array(params.code) >= len(eng.spec.codes)  # rows drawn an image-space control (named in codes)
        # a row that would change no pixel (strength 0 for a control or, in delta mode, a latent code; a control at 0)
        # is not edited: the input as given, target NaN, as the other front ends report it unchanged (Engine.unchanged)
        still = ((host_array(params.strength) == 0) & (control | (self.mode == "delta"))) | (control & (host_array(params.value) == 0))
        edited = host_array(params.apply) & ~still
        rendered = edited & control if control.any() else None
        if marks is not None and marks.device.type != "cpu" and rendered is not None and rendered.any():
            check_landmark_values(marks, t.shape[2], t.shape[3])  # (one read, before any work: the renderers read anyway)
        latent = params if rendered is None and not still.any() else BatchParams(
            torch.from_numpy(edited & ~control), torch.from_numpy(np.where(control, 0, host_array(params.code))),
            params.value, params.relative, params.strength)
        td = t if t.device == eng.device else t.to(eng.device)
        out, target = augment_rows(self, td, latent, index, eng, checked)
        if rendered is not None and rendered.any():
            a = alpha if alpha is None or alpha.device == eng.device else alpha.to(eng.device)
            out, target, a = render_controls(td, out, target, params, rendered, eng, self.framing, a, marks)  # (a yaw moves alpha)
            alpha = a if a is None or a.device == t.device else a.to(t.device)
        out = out if out.device == t.device else out.to(t.device)
        if c != out.shape[1]:  # back to the input's channels (a grey photo stays grey: its channels are equal)
            out = out[:, :1].contiguous() if c == 1 else torch.cat([out, alpha], 1)
        if clipped:  # rows not edited come back as given, unclipped
            keep = ~torch.from_numpy(edited).to(out.device)
            out = torch.where(keep[:, None, None, None], given, out)
        target = unmoved_nan(out, given, target)  # a row the edit left as it was: NaN, reported unchanged
        params = BatchParams(params.apply, params.code, params.value, params.relative, params.strength, target, marks, size)
        self._params = params
        if channels_last(x):  # as the input's layout
            out = out.contiguous(memory_format=torch.channels_last)
        if wrapped:
            from torchvision import tv_tensors

            out = tv_tensors.wrap(out, like=x)
        return (out, params) if self.return_params else out

