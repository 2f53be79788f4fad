"""``GenerativeAugDataset``: a torch Dataset that yields ``variants`` generative augmentations of
every item of a base dataset.

On first use every image is inverted once, in batches on the engine's device (tqdm bar); the
latents can be cached on disk (safetensors, keyed by bundle identity + settings) so a second run
skips inversion. Item ``i`` is variant ``i % per_source`` of source ``i // per_source``; its edit
is a pure function of ``(seed, i)``. Output type mirrors the input (PIL, HWC numpy, CHW tensor).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import Tensor
from torch.utils.data import Dataset

from .bundle import Bundle, write_safetensors
from .render import paste_back, render
from .sweep import Edit, apply_edits


@dataclass
class SampleMeta:
    """Where a sample came from and what was done to it."""

    source: int  # index in the base dataset
    variant: int  # 0..per_source-1 (0 is the original when include_original)
    original: bool
    edit: Edit | None
    description: str
    score: float  # reconstruction score of the source's inversion

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["edit"] = None if self.edit is None else {"code": self.edit.code, "value": self.edit.value}
        return d


class GenerativeAugDataset(Dataset):
    """Wrap ``base`` (items ``image`` or ``(image, target, ...)``) to yield augmented variants.

    Args:
        base: any map-style dataset of PIL images, HWC numpy arrays or CHW tensors.
        variants: augmented samples per original. include_original: also yield the original.
        bundle / device / refine_* / mode / strength / framing / codes / bounds / batch_size:
            passed to :class:`~genaug.engine.Engine` (or give a ready ``engine``).
        seed: augmentations are a pure function of ``(seed, index)``.
        cache_path: file for the inverted latents (``.safetensors``); reused when it matches.
        return_meta: items become ``(image, target, SampleMeta)`` (or ``(image, SampleMeta)``).
        progress: show a tqdm bar while inverting.
        lazy: invert on first access instead of at construction. Without it the inversion runs
            once, here, in the main process; with it, call :meth:`prepare` before a DataLoader
            with workers, or every worker inverts the whole dataset itself.
    """

    def __init__(
        self,
        base: Any,
        variants: int = 8,
        bundle: Bundle | str | Path = "default",
        device: str | torch.device = "auto",
        refine_steps: int | None = None,
        refine_loss: str = "mse+msssim",
        mode: str = "delta",
        strength: float = 1.0,
        framing: str = "auto",
        codes: list[str | int] | None = None,
        bounds: dict[str | int, tuple[float, float]] | None = None,
        batch_size: int = 64,
        include_original: bool = False,
        seed: int = 0,
        cache_path: str | Path | None = None,
        return_meta: bool = False,
        progress: bool = True,
        engine: Any = None,
        lazy: bool = False,
    ):
        if variants < 0 or (variants == 0 and not include_original):
            raise ValueError(f"variants must be >= 1 (or 0 with include_original=True), got {variants}")
        self.base, self.variants, self.include_original = base, int(variants), bool(include_original)
        self.seed, self.return_meta, self.progress = int(seed), bool(return_meta), bool(progress)
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self._engine_kw = dict(
            bundle=bundle, device=device, refine_steps=refine_steps, refine_loss=refine_loss, mode=mode,
            strength=strength, framing=framing, codes=codes, bounds=bounds, batch_size=batch_size, cache_size=0,
        )
        self._engine, self._engine_pid = engine, (os.getpid() if engine is not None else None)
        self.latents: Tensor | None = None
        self.scores: Tensor | None = None
        if not lazy:
            self.prepare()

    # ------------------------------------------------------------------ engine
    @property
    def engine(self) -> Any:
        """The engine (created lazily; re-created on the CPU inside a forked DataLoader worker)."""
        if self._engine is None or self._engine_pid != os.getpid():
            from .engine import Engine

            kw = dict(self._engine_kw)
            if torch.utils.data.get_worker_info() is not None:
                kw["device"] = "cpu"
                if self._engine is not None:  # a user-given engine: reuse its bundle on the CPU
                    kw["bundle"] = self._engine.bundle
            self._engine, self._engine_pid = Engine(**kw), os.getpid()
        return self._engine

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if state["_engine"] is not None and isinstance(self._engine_kw["bundle"], (str, Path)):
            state["_engine"], state["_engine_pid"] = None, None
        return state

    # --------------------------------------------------------------- structure
    @property
    def per_source(self) -> int:
        return self.variants + int(self.include_original)

    def __len__(self) -> int:
        return len(self.base) * self.per_source

    @staticmethod
    def _split(item: Any) -> tuple[Any, tuple | None]:
        if isinstance(item, (tuple, list)):
            return item[0], tuple(item[1:])
        return item, None

    def _image(self, src: int) -> tuple[Any, tuple | None]:
        return self._split(self.base[src])

    # --------------------------------------------------------------- inversion
    def _cache_key(self) -> str:
        e = self.engine
        first = e.frame([self._image(0)[0]])[0] if len(self.base) else torch.zeros(0)
        last = e.frame([self._image(len(self.base) - 1)[0]])[0] if len(self.base) else torch.zeros(0)
        fp = hashlib.blake2b(((torch.cat([first, last]) + 1) * 127.5).round().to(torch.uint8).numpy().tobytes(),
                             digest_size=8).hexdigest()
        return json.dumps({
            "bundle": e.bundle.identity, "refine": [e.refine_steps, e.refine_loss, e.refine_lr], "framing": e.framing,
            "n": len(self.base), "fingerprint": fp,
        }, sort_keys=True)

    def _load_cache(self, key: str) -> bool:
        if self.cache_path is None or not self.cache_path.is_file():
            return False
        try:
            with safe_open(str(self.cache_path), framework="pt") as f:
                if (f.metadata() or {}).get("key") != key:
                    return False
                self.latents, self.scores = f.get_tensor("latent"), f.get_tensor("score")
            return True
        except Exception:  # unreadable cache: recompute
            return False

    def prepare(self) -> "GenerativeAugDataset":
        """Invert every image once (batched on the engine's device), or load the latent cache."""
        if self.latents is not None:
            return self
        if len(self.base) == 0:
            raise ValueError("the base dataset is empty")
        key = self._cache_key()
        if self._load_cache(key):
            return self
        from tqdm.auto import tqdm

        e, n, bs = self.engine, len(self.base), self.engine.batch_size
        lat, score = [], []
        for start in tqdm(range(0, n, bs), desc="genaug: inverting", unit="batch", disable=not self.progress):
            x, _ = e.frame([self._image(i)[0] for i in range(start, min(start + bs, n))])
            inv = e.invert(x.to(e.device))
            lat.append(inv.latent.cpu())
            score.append(inv.score.cpu())
        self.latents, self.scores = torch.cat(lat), torch.cat(score)
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            write_safetensors({"latent": self.latents.contiguous(), "score": self.scores.contiguous()}, self.cache_path, {"key": key})
        return self

    # ------------------------------------------------------------------- items
    def _locate(self, index: int) -> tuple[int, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        return divmod(index % len(self), self.per_source)

    def _edit(self, index: int) -> tuple[Edit, float]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        return self.engine.random_edits(1, g)[0], self.engine.strength

    def meta(self, index: int) -> SampleMeta:
        """Metadata of sample ``index`` (source index, edit, reconstruction score)."""
        self.prepare()
        src, v = self._locate(index)
        score = float(self.scores[src])
        if self.include_original and v == 0:
            return SampleMeta(src, v, True, None, "original", score)
        edit, _ = self._edit(index % len(self))
        return SampleMeta(src, v, False, edit, edit.describe(self.engine.spec), score)

    def __getitem__(self, index: int) -> Any:
        meta = self.meta(index)
        image, target = self._image(meta.source)
        if not meta.original:
            e = self.engine
            x, (frame,) = e.frame([image])
            latent = self.latents[meta.source : meta.source + 1].to(e.device)
            edited = apply_edits(latent, e.spec, [meta.edit], e.strength)
            base, new = e.generate(torch.cat([latent, edited])).split(1)
            out = render(x.to(e.device), base, new, e.mode)
            image = paste_back(out[0], image, frame)
        parts = (image, *(target or ()))
        if self.return_meta:
            parts = (*parts, meta)
        return parts if len(parts) > 1 else parts[0]

    # -------------------------------------------------------------- batch path
    def augment_batch(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Any]:
        """Augment a model-frame batch (N, C, S, S) in [-1, 1] already on the device
        (:meth:`Engine.augment_tensor`)."""
        return self.engine.augment_tensor(x, generator=generator)
