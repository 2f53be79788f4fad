"""Latent caches. One rule for both: a latent is found by a key over everything that determines
it — the content of the model-frame image, the bundle and the inversion settings — so an edited,
replaced or reordered image never gets a stale latent.

:class:`LatentCache` is the engine's bounded in-memory LRU; :class:`LatentStore` is the Dataset
wrapper's file (safetensors) with one content key per row: rows whose key matches are reused,
the others are inverted again; a file made with another bundle or settings is rebuilt, with a
message saying why.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import Tensor

from ..io import write_safetensors

STORE_FORMAT = "genaug-latent-cache"
STORE_VERSION = "3"  # 3: SHA-256 content keys
KEY_BYTES = 16


def content_keys(x: Tensor, settings: str = "") -> list[bytes]:
    """One key per row of a model-frame batch (N, C, S, S) in [-1, 1]: SHA-256 (hardware-accelerated
    on most CPUs) of its uint8 pixels + ``settings``, truncated to ``KEY_BYTES``. On an accelerator
    the pixels are read to the host once (uint8, a quarter of the floats)."""
    return pixel_keys(x.detach().add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8), settings)


def pixel_keys(q: Tensor, settings: str = "") -> list[bytes]:
    """:func:`content_keys` of a batch already quantized: uint8 pixels (N, ...) -> one key per row."""
    tail = settings.encode()
    return [_key(row, tail) for row in q.detach().cpu().contiguous().numpy()]


def _key(row: Any, tail: bytes) -> bytes:
    h = hashlib.sha256(row)
    h.update(tail)
    return h.digest()[:KEY_BYTES]


def bundle_key(bundle: Any) -> str:
    """The bundle's identity; for an unsaved bundle, a hash of its weights."""
    if bundle.identity != "unsaved":
        return bundle.identity
    h = hashlib.blake2b(digest_size=8)
    for module in (bundle.generator, bundle.predictor):
        for name, t in module.state_dict().items():
            h.update(name.encode() + t.detach().cpu().contiguous().numpy().tobytes())
    return "weights-" + h.hexdigest()


class LatentCache:
    """Bounded LRU: content key -> (latent, recon, score) on the engine's device."""

    def __init__(self, size: int):
        self.size = int(size)
        self._d: OrderedDict[bytes, tuple[Tensor, Tensor, Tensor]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> tuple[Tensor, Tensor, Tensor] | None:
        v = self._d.get(key)
        if v is None:
            self.misses += 1
            return None
        self._d.move_to_end(key)
        self.hits += 1
        return v

    def put(self, key: bytes, value: tuple[Tensor, Tensor, Tensor]) -> None:
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


class LatentStore:
    """A latent file for one dataset: rows (latent, score) keyed by content, valid for ``settings``."""

    def __init__(self, path: str | Path, settings: dict[str, Any]):
        self.path = Path(path)
        self.settings = json.dumps(settings, sort_keys=True)

    def load(self) -> dict[bytes, tuple[Tensor, Tensor]]:
        """content key -> (latent, score) of a matching file; {} (with a message) when the file is
        missing, unreadable or made with other settings."""
        if not self.path.is_file():
            return {}
        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != STORE_FORMAT or meta.get("version") != STORE_VERSION:
                    return self._stale("it is not a genaug latent cache of this version")
                if meta.get("settings") != self.settings:
                    return self._stale(f"it was made with other settings ({meta.get('settings')} != {self.settings})")
                keys, latent, score = (f.get_tensor(k) for k in ("content", "latent", "score"))
        except Exception as e:  # noqa: BLE001 - any unreadable file is rebuilt, and said so
            return self._stale(f"it cannot be read ({type(e).__name__}: {e})")
        return {bytes(k.tolist()): (lat, s) for k, lat, s in zip(keys, latent, score)}

    def _stale(self, why: str) -> dict:
        warnings.warn(f"latent cache {self.path} is not used and will be rebuilt: {why}", stacklevel=3)
        return {}

    def save(self, keys: list[bytes], latent: Tensor, score: Tensor) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        content = torch.tensor([list(k) for k in keys], dtype=torch.uint8).reshape(-1, KEY_BYTES)
        tensors = {"content": content, "latent": latent.contiguous(), "score": score.contiguous()}
        write_safetensors(tensors, self.path, {"format": STORE_FORMAT, "version": STORE_VERSION, "settings": self.settings})
