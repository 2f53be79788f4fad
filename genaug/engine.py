"""The engine: the one place that runs inversion, edits and rendering — batched, on one device,
with a bounded latent cache and explicit seeds. Front ends (albumentations transform, torch
dataset, HDF5 expansion, CLI) are thin adapters over it.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from .bundle import Bundle, load_bundle
from .device import resolve_device
from .invert import Inversion, invert
from .recon import parse_mix
from .render import FRAMINGS, MODES, FrameInfo, paste_back, render, to_model_batch
from .sweep import Edit, apply_edits, random_edits

Gate = Callable[[Tensor, Tensor], Tensor]


@dataclass
class AugmentInfo:
    """What :meth:`Engine.augment_tensor` did to each row."""

    edits: list[Edit]
    latent: Tensor  # (N, D) inverted latents
    edited: Tensor  # (N, D) latents after the edits
    score: Tensor  # (N,) reconstruction score of the inversion
    kept: Tensor  # (N,) bool: False where the gate rejected every try (row returned unchanged)
    cache_hits: int = 0
    descriptions: list[str] = field(default_factory=list)


class LatentCache:
    """Bounded LRU: content key -> (latent, recon, score) on the engine's device."""

    def __init__(self, size: int):
        self.size = int(size)
        self._d: OrderedDict[str, tuple[Tensor, Tensor, Tensor]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> tuple[Tensor, Tensor, Tensor] | None:
        v = self._d.get(key)
        if v is None:
            self.misses += 1
            return None
        self._d.move_to_end(key)
        self.hits += 1
        return v

    def put(self, key: str, value: tuple[Tensor, Tensor, Tensor]) -> None:
        if self.size <= 0:
            return
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)

    def clear(self) -> None:
        self._d.clear()
        self.hits = self.misses = 0


class Engine:
    """Invert faces, edit their codes and render the edits, batched on ``device``.

    Args:
        bundle: a :class:`Bundle`, ``"default"`` or a bundle folder.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``...
        refine_steps / refine_loss / refine_lr: inversion refinement (0 steps = predictor only;
            None = the bundle's measured default, ``bundle.default_refine_steps``).
        batch_size: rows per network call. cache_size: latents kept (LRU, keyed by content).
        mode: ``"delta"`` (x + G(edited) - G(latent)) or ``"regenerate"`` (G(edited)).
        strength: scales each edit (latent interpolation; 0 = no change, 1 = the edit).
        framing: ``"auto"``, ``"full"`` or ``"none"`` for user images (see :mod:`genaug.render`).
        feature_net: network for the ``feature`` refinement loss.
        gate: ``gate(original, augmented) -> (N,)`` similarity; rows below ``gate_threshold`` are
            re-drawn with a new random edit up to ``gate_retries`` times, then returned
            *unchanged* (counted in ``stats["dropped"]``).
        codes / bounds: which codes random edits may touch and continuous ranges.
        seed: seeds the engine's own generator (used when no generator is passed).
    """

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
        gate: Gate | None = None,
        gate_threshold: float = 0.5,
        gate_retries: int = 2,
        codes: list[str | int] | None = None,
        bounds: dict[str | int, tuple[float, float]] | None = None,
        seed: int | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {FRAMINGS}, got {framing!r}")
        if (refine_steps is not None and refine_steps < 0) or batch_size < 1 or cache_size < 0 or gate_retries < 0:
            raise ValueError("refine_steps, cache_size and gate_retries must be >= 0 and batch_size >= 1")
        parse_mix(refine_loss)
        self.device = resolve_device(device)
        if isinstance(bundle, Bundle):
            self.bundle = bundle.to(self.device)
        else:
            self.bundle = load_bundle(bundle, device=self.device)
        self.spec = self.bundle.spec
        self.image_size = self.bundle.image_size
        self.channels = self.bundle.channels
        steps = self.bundle.default_refine_steps if refine_steps is None else refine_steps
        self.refine_steps, self.refine_loss, self.refine_lr = int(steps), refine_loss, float(refine_lr)
        self.batch_size, self.mode, self.strength, self.framing = int(batch_size), mode, float(strength), framing
        self.feature_net = feature_net.to(self.device).eval() if feature_net is not None else None
        self.gate, self.gate_threshold, self.gate_retries = gate, float(gate_threshold), int(gate_retries)
        self.codes = [self.spec.code_index(c) for c in codes] if codes is not None else None
        self.bounds = bounds
        self.generator = torch.Generator()
        self.generator.manual_seed(seed) if seed is not None else self.generator.seed()
        self.cache = LatentCache(cache_size)
        self.stats = {"augmented": 0, "gated": 0, "dropped": 0}
        self._settings = f"{self.bundle.identity}|{self.refine_steps}|{self.refine_loss}|{self.refine_lr}"

    # ------------------------------------------------------------------ inversion
    def _keys(self, x: Tensor) -> list[str]:
        q = ((x.detach() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
        return [hashlib.blake2b(row.tobytes() + self._settings.encode(), digest_size=16).hexdigest() for row in q]

    def _check_batch(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise ValueError(f"expected a tensor batch (N, C, S, S), got {type(x).__name__}")
        want = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"expected a batch of shape (N, {want[0]}, {want[1]}, {want[2]}) in [-1, 1], got {tuple(x.shape)} "
                             "(use Engine.augment for images of any size)")
        if x.shape[0] == 0:
            raise ValueError("empty batch (N = 0)")
        if not x.is_floating_point():
            raise ValueError(f"batch must be a float tensor in [-1, 1], got dtype {x.dtype}")
        if not torch.isfinite(x).all():
            raise ValueError("batch contains NaN or inf values")
        if x.min() < -1.001 or x.max() > 1.001:
            raise ValueError(f"batch values must be in [-1, 1], got [{float(x.min()):.3g}, {float(x.max()):.3g}]")
        return x.to(self.device, torch.float32)

    def invert(self, x: Tensor, steps: int | None = None) -> Inversion:
        """Invert a batch (N, C, S, S) in [-1, 1] (no cache): predictor, then refinement."""
        x = self._check_batch(x)
        steps = self.refine_steps if steps is None else steps
        g, p = self.bundle.generator, self.bundle.predictor
        outs = [
            invert(g, p, self.spec, x[i : i + self.batch_size], steps, self.refine_loss, self.refine_lr, self.feature_net)
            for i in range(0, x.shape[0], self.batch_size)
        ]
        return Inversion(*(torch.cat([getattr(o, f) for o in outs]) for f in ("latent", "score", "recon")))

    def invert_cached(self, x: Tensor) -> tuple[Inversion, int]:
        """Like :meth:`invert` but served from / stored in the latent cache; returns (inversion, hits)."""
        x = self._check_batch(x)
        keys = self._keys(x)
        found = [self.cache.get(k) for k in keys]
        miss = [i for i, f in enumerate(found) if f is None]
        if miss:
            inv = self.invert(x[miss])
            for j, i in enumerate(miss):
                found[i] = (inv.latent[j], inv.recon[j], inv.score[j])
                self.cache.put(keys[i], found[i])
        latent, recon, score = (torch.stack([f[k] for f in found]) for k in range(3))
        return Inversion(latent, score, recon), len(keys) - len(miss)

    # -------------------------------------------------------------------- render
    @torch.no_grad()
    def generate(self, latent: Tensor) -> Tensor:
        """G(latent) in batches."""
        g = self.bundle.generator
        latent = latent.to(self.device)
        return torch.cat([g(latent[i : i + self.batch_size]) for i in range(0, latent.shape[0], self.batch_size)])

    @torch.no_grad()
    def render(
        self, x: Tensor, latent: Tensor, edited: Tensor, mode: str | None = None,
        strength: float | Tensor | None = None, base: Tensor | None = None,
    ) -> Tensor:
        """``regenerate``: G(edited); ``delta``: clamp(x + G(edited) - G(latent)). ``strength``
        scales the image-space change; ``base`` = G(latent) if already known (saves a pass)."""
        x = x.to(self.device)
        base = self.generate(latent) if base is None else base.to(self.device)
        return render(x, base, self.generate(edited), mode or self.mode, 1.0 if strength is None else strength)

    def random_edits(self, n: int, generator: torch.Generator | None = None) -> list[Edit]:
        """``n`` random edits over the engine's ``codes`` within its ``bounds``."""
        return random_edits(self.spec, n, generator or self.generator, self.codes, self.bounds)

    @torch.no_grad()
    def augment_tensor(
        self, x: Tensor, edits: list[Edit] | None = None, generator: torch.Generator | None = None,
        strength: float | Tensor | None = None, mode: str | None = None,
    ) -> tuple[Tensor, AugmentInfo]:
        """Augment a model-frame batch (N, C, S, S) in [-1, 1]: invert (cached), apply one edit per
        row (random when ``edits`` is None), render. Returns (batch on the device, AugmentInfo)."""
        x = self._check_batch(x)
        n = x.shape[0]
        gen = generator or self.generator
        edits = list(edits) if edits is not None else self.random_edits(n, gen)
        if len(edits) != n:
            raise ValueError(f"need one edit per row: {len(edits)} edits for a batch of {n}")
        strength = self.strength if strength is None else strength
        inv, hits = self.invert_cached(x)
        edited = apply_edits(inv.latent, self.spec, edits, strength)
        out = self.render(x, inv.latent, edited, mode, base=inv.recon)
        kept = torch.ones(n, dtype=torch.bool)
        if self.gate is not None:
            bad = (self.gate(x, out).reshape(-1).cpu() < self.gate_threshold)
            for _ in range(self.gate_retries):
                rows = bad.nonzero().flatten().tolist()
                if not rows:
                    break
                self.stats["gated"] += len(rows)
                for r, e in zip(rows, self.random_edits(len(rows), gen)):
                    edits[r] = e
                s_rows = strength[rows] if isinstance(strength, Tensor) and strength.ndim else strength
                edited[rows] = apply_edits(inv.latent[rows], self.spec, [edits[r] for r in rows], s_rows)
                out[rows] = self.render(x[rows], inv.latent[rows], edited[rows], mode, base=inv.recon[rows])
                bad[rows] = self.gate(x[rows], out[rows]).reshape(-1).cpu() < self.gate_threshold
            if bad.any():
                out[bad.to(out.device)] = x[bad.to(x.device)]
                kept = ~bad
                self.stats["dropped"] += int(bad.sum())
        self.stats["augmented"] += n
        info = AugmentInfo(edits, inv.latent, edited, inv.score, kept, hits, [e.describe(self.spec) for e in edits])
        return out, info

    # ---------------------------------------------------------------- user images
    def augment(
        self, images: Any, edits: list[Edit] | None = None, generator: torch.Generator | None = None,
        strength: float | Tensor | None = None, mode: str | None = None, framing: str | None = None,
    ) -> tuple[Any, AugmentInfo]:
        """Augment user images of any size/format (one image or a list): frame, augment, paste back.
        Returns outputs of the same type/shape/dtype as the inputs, and the AugmentInfo."""
        single = not isinstance(images, (list, tuple))
        items = [images] if single else list(images)
        x, frames = self.frame(items, framing)
        out, info = self.augment_tensor(x.to(self.device), edits, generator, strength, mode)
        res = self.unframe(out, items, frames)
        return (res[0] if single else res), info

    def frame(self, images: list[Any], framing: str | None = None) -> tuple[Tensor, list[FrameInfo]]:
        """User images -> model-frame batch (CPU) and FrameInfos."""
        return to_model_batch(images, self.bundle, framing or self.framing)

    def unframe(self, out: Tensor, originals: list[Any], frames: list[FrameInfo]) -> list[Any]:
        """Model-frame results -> user images (pasting only the change back)."""
        out = out.cpu()
        return [paste_back(o, im, f) for o, im, f in zip(out, originals, frames)]
