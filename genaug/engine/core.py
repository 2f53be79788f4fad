"""The engine: the one place that runs inversion, edits and rendering — batched, on one device,
with a bounded latent cache and explicit seeds. Every front end (albumentations transform, torch
dataset, HDF5 expansion, ``augment``, ``demo``) inverts with :meth:`Engine.invert` and turns
latents + edits into images with :meth:`Engine.render_edits` (strength, mode, identity gate).
User photos (framing, placing results back) are the methods of :class:`genaug.engine.photos.PhotoIO`.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Union

import torch
from torch import Tensor, nn

from ..bundle.format import Bundle, load_bundle
from ..device import module_on, one_cpu_thread, resolve_device, torch_defaults
from ..faces.landmarks import default_landmarks, face_landmarks, landmarks_inside
from ..images import FrameInfo
from ..models.recon import parse_mix
from .cache import LatentCache, bundle_key, content_keys
from .exposure import INVERSION, lift
from .codes import (all_code_names, as_number, check_code_list, check_codes, check_engine_options, check_generator,
                    check_seed, check_strength, code_ranges, control_of, whole)
from .edits import AugmentInfo, Edit, apply_recipes, check_edits, random_edits, resolve_edits
from .invert import Inversion, invert
from .photos import GATED, PhotoIO
from .colour_margin import margin_edits
from .gates import Gate, check_gate_threshold, identity_gate, quality_gate
from .render import MODES, check_model_batch, render_recipes

Generators = Union[torch.Generator, list[torch.Generator], None]


class Engine(PhotoIO):
    """Invert faces, edit their codes and render the edits, batched on ``device``.

    Args:
        bundle: a :class:`Bundle`, ``"default"`` or a bundle folder.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``...
        refine_steps / refine_loss / refine_lr: inversion refinement (0 steps = predictor only;
            None = the bundle's measured default, ``bundle.default_refine_steps``).
        batch_size: rows per network call. cache_size: latents kept (LRU, keyed by content).
        mode: ``"delta"`` (x + G(edited) - G(latent); where an edit with a local-regeneration
            threshold, the recipe's ``regenerate``, acts strongly: G(edited)) or ``"regenerate"`` (G(edited)).
        strength: scales each edit (latent interpolation; 0 = no change, 1 = the bundle's full edit,
            i.e. the code moved the recipe's ``gain`` times the way to its new value and the content
            its ``shift`` along the code's direction, see :meth:`genaug.bundle.Bundle.recipe`).
        framing: ``"auto"``, ``"full"``, ``"none"`` or ``"detect"`` for user images (see :mod:`genaug.engine.render`).
        feature_net: network for the ``feature`` refinement loss.
        gate: ``gate(original, augmented) -> (N,)`` similarity, ``"identity"`` (the identity
            embedder of :mod:`genaug.faces.metrics`) or an identity judge's name (:mod:`genaug.faces.identity`); rows below ``gate_threshold`` are re-drawn with a
            new random edit up to ``gate_retries`` times, then returned *unchanged* (counted in
            ``stats["dropped"]``).
        quality / quality_threshold: the quality gate, next to the identity gate: ``quality(original,
            augmented) -> (N,)`` realism score or ``"critic"`` (the shipped realism critic,
            :mod:`genaug.faces.quality`, P(real) of the augmented face); rows scoring below
            ``quality_threshold`` (``"auto"``: the critic's own, which 98 % of real faces pass) are
            re-drawn and finally kept unchanged like the identity gate's (a row must pass both);
            ``stats["quality_rejected"]`` counts the critic's rejections over all tries.
        codes / bounds: which codes random edits may touch (default: the bundle's random set (identity-safe codes; `genaug info`),
            :func:`genaug.engine.codes.default_codes`) and continuous ranges; of the image-space controls
            (:mod:`genaug.faces.controls`) a bundle's random set may hold some (the default's: ``yaw``, ``light``), the rest are named.
        seed: seeds the engine's own generator (used when no generator is passed).
    """

    @torch_defaults()
    def __init__(
        self,
        bundle: Bundle | str | Path = "default",
        device: str | torch.device = "auto",
        refine_steps: int | None = None,
        refine_loss: str = "mse+msssim",
        refine_lr: float = 0.05,
        batch_size: int = 64,
        cache_size: int = 4096,
        mode: str = "delta",
        strength: float = 1.0,
        framing: str = "auto",
        feature_net: nn.Module | None = None,
        gate: Gate | str | None = None,
        gate_threshold: float = 0.5,
        gate_retries: int = 2,
        quality: Gate | str | None = None,
        quality_threshold: float | str = "auto",
        codes: list[str | int] | None = None,
        bounds: dict[str | int, tuple[float, float]] | None = None,
        seed: int | None = None,
    ):
        check_engine_options(mode, framing, refine_steps, batch_size, device, gate, quality_threshold)  # (detect: dlib first)
        cache_size, gate_retries, seed = as_number(cache_size), as_number(gate_retries), as_number(seed)  # (0-dim tensors)
        for name, value in (("cache_size", cache_size), ("gate_retries", gate_retries)):  # "x" was "'<' not supported"
            if value is not None and (not whole(value) or value < 0):
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if seed is not None:  # torch.Generator's range (was torch's "manual_seed expected a long"); np.int64 as an int
            seed = check_seed(seed, high=2**64)
        if feature_net is not None and not isinstance(feature_net, nn.Module):
            raise TypeError(f"feature_net must be a torch.nn.Module or None, got {type(feature_net).__name__}")
        if not (isinstance(refine_lr, (int, float)) and math.isfinite(refine_lr) and refine_lr > 0):
            raise ValueError(f"refine_lr must be a finite number > 0, got {refine_lr!r}")
        check_strength(strength)
        check_code_list(codes)
        parse_mix(refine_loss)
        check_gate_threshold(gate, gate_threshold)
        self.options = dict(refine_steps=refine_steps, refine_loss=refine_loss, refine_lr=refine_lr, batch_size=batch_size,
                            cache_size=cache_size, mode=mode, strength=strength, framing=framing, feature_net=feature_net,
                            gate=gate, gate_threshold=gate_threshold, gate_retries=gate_retries, quality=quality,
                            quality_threshold=quality_threshold, codes=codes,
                            bounds=bounds, seed=seed)
        self.device = resolve_device(device)
        if isinstance(bundle, Bundle):  # the caller's bundle is not moved: a copy when it lies elsewhere
            self.bundle = bundle.on(self.device)
        else:
            self.bundle = load_bundle(bundle, device=self.device)
        self.spec = self.bundle.spec
        self.image_size = self.bundle.image_size
        self.channels = self.bundle.channels
        steps = self.bundle.default_refine_steps if refine_steps is None else refine_steps
        self.refine_steps, self.refine_loss, self.refine_lr = int(steps), refine_loss, float(refine_lr)
        self.batch_size, self.mode, self.strength, self.framing = int(batch_size), mode, float(strength), framing
        self.feature_net = module_on(feature_net, self.device) if feature_net is not None else None
        self.gate = identity_gate(self.device, gate) if isinstance(gate, str) else gate
        self.gate_threshold, self.gate_retries = float(gate_threshold), int(gate_retries)
        self.quality, self.quality_threshold = quality_gate(self.device, quality, quality_threshold)
        self.codes = check_codes(self.spec, codes)  # indices: known codes, each once
        self.code_names = all_code_names(self.spec)  # latent codes, then image-space controls
        self._ranges = code_ranges(self.spec, bounds)  # a bad range is an error here, not at the first draw
        self.bounds = bounds
        self.generator = torch.Generator()
        self.generator.manual_seed(seed) if seed is not None else self.generator.seed()
        self.cache = LatentCache(cache_size)
        self.stats = {"augmented": 0, "gated": 0, "dropped": 0, "no_face": 0, "quality_rejected": 0}
        self._settings = f"{bundle_key(self.bundle)}|{self.refine_steps}|{self.refine_loss}|{self.refine_lr}|{INVERSION}"

    # ------------------------------------------------------------------ inversion
    @torch_defaults()
    def invert(self, x: Tensor, steps: int | None = None) -> Inversion:
        """Invert a batch (N, C, S, S) in [-1, 1] (no cache): predictor, then refinement; a dim face at a normal
        exposure, a face in a coloured light out of it (:func:`genaug.engine.exposure.lift`: where named edits blend
        it; ``recon`` and ``score`` are of that)."""
        x = lift(check_model_batch(x, self.channels, self.image_size, self.device), low=-1.0)
        steps = self.refine_steps if steps is None else steps
        g, p = self.bundle.generator, self.bundle.predictor
        with one_cpu_thread(self.device):  # the same latents under any thread count
            outs = [
                invert(g, p, self.spec, x[i : i + self.batch_size], steps, self.refine_loss, self.refine_lr, self.feature_net)
                for i in range(0, x.shape[0], self.batch_size)
            ]
        return Inversion(*(torch.cat([getattr(o, f) for o in outs]) for f in ("latent", "score", "recon")))

    @torch_defaults()
    def invert_cached(self, x: Tensor) -> tuple[Inversion, int]:
        """Like :meth:`invert` but served from / stored in the latent cache; returns (inversion, hits)."""
        x = check_model_batch(x, self.channels, self.image_size, self.device)
        keys = content_keys(x, self._settings)
        found = [self.cache.get(k) for k in keys]
        miss = [i for i, f in enumerate(found) if f is None]
        if miss:
            inv = self.invert(x[miss])
            for j, i in enumerate(miss):
                found[i] = (inv.latent[j], inv.recon[j], inv.score[j])
                self.cache.put(keys[i], found[i])
        latent, recon, score = (torch.stack([f[k] for f in found]) for k in range(3))
        return Inversion(latent, score, recon), len(keys) - len(miss)

    # ------------------------------------------------------------ edit + render
    @torch_defaults()
    @torch.no_grad()
    def generate(self, latent: Tensor, one_thread: bool = True) -> Tensor:
        """G(latent) in batches: (N, D) latents (any float dtype) -> (N, C, S, S) float32 images in [-1, 1]; on the CPU
        on one thread (the same pixels under any thread count) unless ``one_thread`` is False (the caller's threads)."""
        g = self.bundle.generator
        if not isinstance(latent, Tensor) or latent.ndim != 2 or latent.shape[1] != self.spec.dim:
            raise ValueError(f"latent must be an (N, {self.spec.dim}) tensor, got {tuple(getattr(latent, 'shape', ())) or type(latent).__name__}")
        latent = latent.to(self.device, torch.float32)
        if not len(latent):
            return torch.empty(0, self.channels, self.image_size, self.image_size, device=self.device)
        with one_cpu_thread(self.device) if one_thread else contextlib.nullcontext():
            return torch.cat([g(latent[i : i + self.batch_size]) for i in range(0, latent.shape[0], self.batch_size)])

    @torch_defaults()
    def random_edits(self, n: int, generator: torch.Generator | None = None, codes: list[int] | None = None) -> list[Edit]:
        """``n`` random edits over ``codes`` (default: the engine's ``codes``) within the engine's ``bounds``."""
        n = as_number(n)  # (a 0-dim tensor or array, as torch took it before the check)
        if not whole(n) or n < 0:  # (was torch's "negative dimension")
            raise ValueError(f"n must be a whole number of edits >= 0, got {n!r}")
        check_generator(generator)
        return random_edits(self.spec, n, generator or self.generator, codes=self.codes if codes is None else codes,
                            bounds=self.bounds)

    def _redraw(self, rows: list[int], generator: Generators, frames: list[FrameInfo] | None = None,
                codes: list[int] | None = None) -> list[Edit]:
        """New random edits for ``rows`` (a gate rejected them) among ``codes`` (default: the engine's), from
        ``generator`` (one, or one per row); with the rows' photo ``frames``, a control drawn for a photo without a
        placed face (it would do nothing there) is re-drawn among the latent codes, as :meth:`replace_unplaced` does
        for the first draw."""
        per_row = isinstance(generator, (list, tuple))
        drawn = ([self.random_edits(1, generator[r], codes)[0] for r in rows] if per_row
                 else self.random_edits(len(rows), generator, codes))
        if frames is None:
            return drawn
        if per_row:
            return [self.replace_unplaced([e], [frames[r]], generator[r])[0] for e, r in zip(drawn, rows)]  # type: ignore[index]
        return self.replace_unplaced(drawn, [frames[r] for r in rows], generator)  # type: ignore[arg-type]

    @torch_defaults()
    @torch.no_grad()
    def render_edits(
        self, x: Tensor, latent: Tensor, edits: list[Edit], *, base: Tensor | None = None, score: Tensor | None = None,
        strength: float | Tensor | None = None, mode: str | None = None, generator: Generators = None, hits: int = 0,
        placed: bool = False, drawn: bool = False, frames: list[FrameInfo] | None = None,
        redraw_codes: list[int] | None = None,
    ) -> tuple[Tensor, AugmentInfo]:
        """The one road from inverted faces to augmented ones, used by every front end.

        ``x`` (N, C, S, S) in [-1, 1] are model-frame images, ``latent`` (N, D) their inversions,
        ``edits`` one per row; ``strength`` (float or (N,)) scales each edit in latent space;
        ``base`` = G(latent) if known. Rows the gate rejects are re-drawn from ``generator`` (one
        generator, or one per row) up to ``gate_retries`` times, then returned unchanged.
        ``placed``: the caller puts every row into its photo with :meth:`place`, which renders an
        image-space control (yaw, light) on the full photo, so control rows are rendered in the model
        frame only when a gate judges them (else they come back as ``x``). A control's value is fitted to what the
        face allows (:meth:`genaug.faces.controls.ImageControl.fit`: clipped, or scaled into it when ``drawn`` at
        random) and reported as rendered (when ``placed``, :meth:`place` fits and reports it on the photo). A random
        (``drawn``) colour edit is moved at least :data:`~genaug.engine.colour_margin.COLOUR_MARGIN` from the face's own value (:meth:`_colour_margin`)
        and reported as moved.
        ``frames``: the rows' photos (:meth:`frame`), when ``placed``: a gate's re-draw for a photo without a placed face
        is among the latent codes (a yaw or light there would leave it unchanged, see :meth:`unplaced`).
        ``redraw_codes``: what a gate's re-draws are drawn among (default: the engine's ``codes``; the transform leaves
        ``yaw`` out beside boxes, masks or keypoints)."""
        n = x.shape[0]
        edits = check_edits(self.spec, edits)
        if len(edits) != n or latent.shape[0] != n or (frames is not None and len(frames) != n):
            frame_count = "" if frames is None else f", {len(frames)} frames"
            raise ValueError(f"need one latent and one edit per row: {latent.shape[0]} latents, {len(edits)} edits{frame_count}, {n} rows")
        x, latent = x.to(self.device), latent.to(self.device)
        edits = resolve_edits(latent, self.spec, edits)  # relative (random) edits -> what they became here
        base = self.generate(latent) if base is None else base.to(self.device)
        try:
            wanted = torch.as_tensor(self.strength if strength is None else strength, dtype=torch.float32).cpu().reshape(-1)
        except (TypeError, ValueError, RuntimeError):  # strength="1" was "new(): invalid data type 'str'"
            raise TypeError(f"strength must be a number or one number per row, got {strength!r}") from None
        if wanted.numel() not in (1, n):
            raise ValueError(f"strength must be a number or one value per row ({n}), got {wanted.numel()} values")
        if not bool(torch.isfinite(wanted).all()) or bool((wanted < 0).any()):
            raise ValueError(f"strength must be finite and >= 0, got {wanted.tolist()[:8]}")
        wanted = wanted.expand(n)
        mode, gen = self.mode if mode is None else mode, generator or self.generator
        if mode not in MODES:  # (checked here: a control placed on the photo never reaches the blend that checks it)
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        edits = self._scale_controls(edits, wanted)
        if drawn:  # a random colour edit moves the photo's colour (not left at about the face's own)
            edits = self._colour_margin(edits, latent, wanted, mode)
        frame_controls = not placed or self.gate is not None or self.quality is not None
        edited, out = self._edit(x, base, latent, edits, wanted, mode, frame_controls, drawn, record=not placed)
        kept = torch.ones(n, dtype=torch.bool)
        if self.gate is not None or self.quality is not None:
            bad = self._rejects(x, out)
            for _ in range(self.gate_retries):
                rows = bad.nonzero().flatten().tolist()
                if not rows:
                    break
                self.stats["gated"] += len(rows)
                redrawn = self._scale_controls(resolve_edits(latent[rows], self.spec, self._redraw(rows, gen, frames, redraw_codes)), wanted[rows])
                redrawn = self._colour_margin(redrawn, latent[rows], wanted[rows], mode)
                for r, e in zip(rows, redrawn):
                    edits[r] = e
                sub = [edits[r] for r in rows]
                edited[rows], out[rows] = self._edit(x[rows], base[rows], latent[rows], sub, wanted[rows], mode,
                                                     drawn=True, record=not placed)  # re-draws are random
                for r, e in zip(rows, sub):  # (as rendered)
                    edits[r] = e
                bad[rows] = self._rejects(x[rows], out[rows])
            if bad.any():
                out[bad.to(out.device)] = x[bad.to(x.device)]
                edited[bad.to(edited.device)] = latent[bad.to(latent.device)]  # unchanged rows: their own latent
                kept = ~bad
                self.stats["dropped"] += int(bad.sum())
        self.stats["augmented"] += n
        score = torch.full((n,), float("nan")) if score is None else score
        info = AugmentInfo(edits, latent, edited, score, kept, hits,
                           [e.describe(self.spec) if k else GATED for e, k in zip(edits, kept.tolist())])
        return out, info

    def _scale_controls(self, edits: list[Edit], wanted: Tensor) -> list[Edit]:
        """Image-space control edits at their user strengths: the value that is applied (and reported);
        a strength above 1 saturates at the control's range, as it does at a continuous code's."""
        out = []
        for e, w in zip(edits, wanted.tolist()):
            c = control_of(self.spec, e.code)
            out.append(e if c is None else Edit(e.code, min(max(e.value * float(w), c.low), c.high), e.relative))
        return out

    def _colour_margin(self, edits: list[Edit], latent: Tensor, wanted: Tensor, mode: str) -> list[Edit]:
        """Random ``edits`` with each colour edit moved off the face's own value (:func:`genaug.engine.colour_margin.margin_edits`,
        within the engine's ``bounds``)."""
        return margin_edits(self.bundle, self._ranges, edits, latent, wanted, mode)

    def _rejects(self, x: Tensor, out: Tensor) -> Tensor:
        """(N,) bool on the host: rows the identity gate or the quality gate rejects."""
        bad = torch.zeros(len(x), dtype=torch.bool)
        if self.gate is not None:
            bad |= self.gate(x, out).reshape(-1).cpu() < self.gate_threshold
        if self.quality is not None:
            poor = self.quality(x, out).reshape(-1).cpu() < self.quality_threshold
            self.stats["quality_rejected"] += int(poor.sum())
            bad |= poor
        return bad

    def _edit(self, x: Tensor, base: Tensor, latent: Tensor, edits: list[Edit], wanted: Tensor,
              mode: str, controls: bool = True, drawn: bool = False, record: bool = True) -> tuple[Tensor, Tensor]:
        """Absolute ``edits`` at user strengths ``wanted`` (N,) through the bundle's recipes
        (:func:`apply_recipes`; strength 1 = the bundle's full edit), rendered: (edited latents, images).
        Rows whose edit is an image-space control skip the generator: the control acts on ``x``
        (their edited latent is the inverted one; ``controls`` False: they stay ``x``, see ``placed``), its value fitted
        to the face (``drawn``: scaled into what it allows) and, when ``record``, written back into ``edits``."""
        ctrl = [i for i, e in enumerate(edits) if control_of(self.spec, e.code) is not None]
        if not ctrl:
            return self._edit_latent(x, base, latent, edits, wanted, mode)
        edited, out = latent.clone(), x.clone()
        lat = [i for i in range(len(edits)) if i not in set(ctrl)]
        if lat:
            edited[lat], out[lat] = self._edit_latent(x[lat], base[lat], latent[lat], [edits[i] for i in lat], wanted[lat], mode)
        for name in {control_of(self.spec, edits[i].code).name for i in ctrl} if controls else ():  # type: ignore[union-attr]
            rows = [i for i in ctrl if control_of(self.spec, edits[i].code).name == name]  # type: ignore[union-attr]
            control = control_of(self.spec, edits[rows[0]].code)
            lm = face_landmarks(x[rows], None, "model_frame") if control.room is not None else None  # type: ignore[union-attr]
            if lm is not None:  # a point dlib put outside the frame: the framing rule's there (as the batch path's)
                rule = default_landmarks(*x.shape[-2:], len(rows), "model_frame").to(lm.device)
                lm = torch.where(landmarks_inside(lm, *x.shape[-2:])[:, None, None], lm, rule)
            bounds = self.drawn_range(edits[rows[0]].code) if drawn else None
            out[rows], values = control.fit_apply(x[rows], [edits[i].value for i in rows], lm, "model_frame", bounds)  # type: ignore[union-attr]
            for i, v in zip(rows, values.tolist()) if record else ():
                edits[i] = edits[i] if v == edits[i].value else Edit(edits[i].code, v)
        return edited, out

    def drawn_range(self, code: int) -> tuple[float, float]:
        """The (low, high) random draws of control ``code`` come from (the engine's ``bounds``, else its range)."""
        control = control_of(self.spec, code)
        return self._ranges.get(code, (control.low, control.high))  # type: ignore[union-attr]

    def _edit_latent(self, x: Tensor, base: Tensor, latent: Tensor, edits: list[Edit], wanted: Tensor,
                     mode: str) -> tuple[Tensor, Tensor]:
        """Latent ``edits`` through the bundle's recipes, rendered (:func:`genaug.engine.render.render_recipes`); in
        ``delta`` mode a row whose edit did not move its latent (strength 0) is ``x`` itself, not its round trip through
        the renderer (so it changed no pixel, :meth:`genaug.engine.photos.PhotoIO.unchanged`)."""
        recipes = [self.bundle.recipe(e.code, e.value) for e in edits]
        edited = apply_recipes(latent, self.bundle, edits, wanted, recipes)
        out = render_recipes(x, base, self.generate(edited), recipes, mode)
        still = (edited == latent).all(1) if mode == "delta" else None
        if still is not None and bool(still.any()):
            out[still] = x[still]
        return edited, out

    @torch_defaults()
    @torch.no_grad()
    def augment_tensor(
        self, x: Tensor, edits: list[Edit] | None = None, generator: torch.Generator | None = None,
        strength: float | Tensor | None = None, mode: str | None = None, placed: bool = False,
        frames: list[FrameInfo] | None = None, drawn: bool | None = None, redraw_codes: list[int] | None = None,
    ) -> tuple[Tensor, AugmentInfo]:
        """Augment a model-frame batch (N, C, S, S) in [-1, 1]: invert (cached), apply one edit per
        row (random when ``edits`` is None; ``Edit("smile", 1)`` or ``("yaw", 20.0)``: a code by name or
        index, see :func:`genaug.engine.edits.check_edits`), render. Returns (batch on the device, AugmentInfo).
        ``placed``: see :meth:`render_edits` (when every edit is then such a control and no gate judges it, the
        faces are not inverted: ``latent`` and ``edited`` are NaN; ``frames``: see :meth:`render_edits`). ``drawn``: the
        edits are random (default: when ``edits`` is None; a front end that drew them says so), see :meth:`render_edits`;
        ``redraw_codes``: the random set of a gate's re-draws (and of the draw when ``edits`` is None)."""
        x = check_model_batch(x, self.channels, self.image_size, self.device)
        gen = generator or self.generator
        drawn = edits is None if drawn is None else bool(drawn)
        edits = list(edits) if edits is not None else self.random_edits(x.shape[0], gen, redraw_codes)
        if len(edits) != x.shape[0]:
            raise ValueError(f"need one edit per row: {len(edits)} edits for a batch of {x.shape[0]}")
        edits = check_edits(self.spec, edits)
        if placed and self.gate is None and self.quality is None and all(control_of(self.spec, e.code) is not None for e in edits):
            # every row is an image-space control the caller renders on its photo: nothing needs the latent
            # (reported as NaN), so the face is not inverted
            nan = torch.full((x.shape[0], self.spec.dim), float("nan"), device=self.device)
            return self.render_edits(x, nan, edits, base=x, strength=strength, mode=mode, generator=gen, placed=True, drawn=drawn,
                                     frames=frames, redraw_codes=redraw_codes)
        inv, hits = self.invert_cached(x)
        return self.render_edits(x, inv.latent, edits, base=inv.recon, score=inv.score, strength=strength, mode=mode,
                                 generator=gen, hits=hits, placed=placed, drawn=drawn, frames=frames,
                                 redraw_codes=redraw_codes)
