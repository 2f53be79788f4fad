"""Latent caches. One rule for both: a latent is found by a key over everything that determines
it — the content of the model-frame image, the bundle and the inversion settings — so an edited,
replaced or reordered image never gets a stale latent.

:class:`LatentCache` is the engine's bounded in-memory LRU; :class:`LatentStore` is the Dataset
wrapper's file (safetensors) with one content key per row: rows whose key matches are reused,
the others are inverted again; a file made with another bundle or settings, or whose rows fail
their BLAKE2b checksum (a corrupt file), is rebuilt, with a message saying why.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from ..io import write_safetensors
from .latent_table import host_array
from .workspace import part, workspace

STORE_FORMAT = "genaug-latent-cache"
STORE_VERSION = "5"  # 3: SHA-256 content keys; 4: tensor-op content keys (pixel_keys); 5: a checksum of the rows
KEY_BYTES = 16


def content_keys(x: Tensor, settings: str = "") -> list[bytes]:
    """One key per row of a model-frame batch (N, C, S, S) in [-1, 1]: :func:`pixel_keys` of its pixels
    quantized to uint8."""
    return pixel_keys(x.detach().add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8), settings)


def pixel_keys(q: Tensor, settings: str = "", work: dict | None = None) -> list[bytes]:
    """One ``KEY_BYTES`` key per row of uint8 pixels (N, ...) and ``settings``, hashed on their device
    in a fixed number of integer tensor operations, then one (N, 16) read to the host.

    The row's bytes, as 64-bit words w_i (zero-padded, in the machine's byte order: little-endian
    on x86, ARM and GPUs), are mixed one by one, v_i = xs(a_i * xs(w_i)) with xs(x) = x ^ (x >>> 32)
    and a_i odd: a bijection of w_i in which every bit of v_i depends on every bit of w_i (so a
    changed pixel changes v_i, whichever byte of the word it is); then summed in two lanes,
    c_1 + sum(v_i) and c_2 + sum(b_i * v_i) mod 2^64. The keys a_i, odd b_i and c are splitmix64
    draws seeded by SHA-256 of the row's length and ``settings``: a pixel moved (mirrored, rolled,
    swapped rows or channels) is mixed with another key. Integer operations only, so the key is the
    same on every device and thread count. ``work``: a dict keeping work buffers across calls
    (:func:`genaug.engine.workspace.workspace`)."""
    n = q.shape[0]
    if n == 0:
        return []
    work = {} if work is None else work
    lanes = _lanes(work, n, math.prod(q.shape[1:]), q.device)  # v_i, then b_i v_i
    v = part(lanes, (None, 0))
    at = key_pixels(work, q.shape, q.device)
    if not (at.data_ptr() == v.data_ptr() == q.data_ptr() and at.stride() == q.stride()):  # (else written there: no copy)
        v.copy_(_words(q.view(n, -1) if q.is_contiguous() else q.reshape(n, -1)))
    a, b, c = _keys(settings, math.prod(q.shape[1:]), q.device)
    # xs(x) = x ^ (x >>> 32) flips the low 32-bit half of x by its high half: one op on the int32 halves (little-endian)
    low, high = (part(workspace(work, "key", (*lanes.shape, 2), torch.int32, q.device), (None, 0, None, i)) for i in (0, 1))
    low.bitwise_xor_(high)
    v.mul_(a)
    low.bitwise_xor_(high)
    torch.mul(v, b, out=part(lanes, (None, 1)))
    sums = torch.sum(lanes, 2, out=workspace(work, "key_sums", (n, 2), torch.long, q.device)).add_(c)
    keys = host_array(sums if sums.device.type == "cpu" else sums.cpu()).astype("<i8").tobytes()
    return [keys[i : i + KEY_BYTES] for i in range(0, len(keys), KEY_BYTES)]


def key_pixels(work: dict, shape: tuple, device: torch.device) -> Tensor:
    """A uint8 work buffer of ``shape`` (N, ...) in ``work`` for pixels to hash: where rows fill whole 64-bit words,
    :func:`pixel_keys`' own first lane (given the same ``work``, it reads them in place: no copy)."""
    n, nbytes = shape[0], math.prod(shape[1:])
    if nbytes % 8:
        return workspace(work, "pixels", shape, torch.uint8, device)
    lanes = _lanes(work, n, nbytes, device)
    views, key = lanes._genaug_parts, ("pixels", tuple(shape))  # (made once, kept with the buffer)
    if key not in views:
        views[key] = part(lanes, (None, 0)).view(torch.uint8).view(shape)
    return views[key]


def _lanes(work: dict, n: int, nbytes: int, device: torch.device) -> Tensor:
    """:func:`pixel_keys`' (N, 2, words) int64 work buffer for rows of ``nbytes`` bytes."""
    return workspace(work, "key", (n, 2, -(-nbytes // 8)), torch.long, device)


def _words(rows: Tensor) -> Tensor:
    """(N, B) uint8 rows as (N, ceil(B / 8)) int64 words: a view when they allow it, else a zero-padded copy."""
    pad = -rows.shape[1] % 8
    if pad or not rows.is_contiguous() or rows.storage_offset() % 8:
        rows = torch.nn.functional.pad(rows, (0, pad)) if pad else rows.clone(memory_format=torch.contiguous_format)
    return rows.view(torch.long)


@functools.lru_cache(maxsize=16)
def _keys(settings: str, nbytes: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """(a, b, c) of :func:`pixel_keys` for rows of ``nbytes`` bytes: a, b odd, one per word; c (2,)."""
    words = -(-nbytes // 8)
    seed = int.from_bytes(hashlib.sha256(f"{nbytes}:{settings}".encode()).digest()[:8], "little")
    with np.errstate(over="ignore"):  # splitmix64, in wrapping uint64 arithmetic: distinct draws
        z = np.uint64(seed) + np.arange(1, 2 * words + 3, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    k = torch.from_numpy(z.view(np.int64)).to(device)
    return k[:words] | 1, k[words : 2 * words] | 1, k[2 * words :]


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
        """content key -> (latent, score) of a matching file; {} when it is missing, and {} with a message when it is
        unreadable, of another version, made with other settings or its rows fail their checksum (rebuilt)."""
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
        if meta.get("checksum") != _checksum(keys, latent, score):  # bytes changed on disk: latents silently wrong
            return self._stale("its rows do not match their checksum (the file is corrupt)")
        return {bytes(k.tolist()): (lat, s) for k, lat, s in zip(keys, latent, score)}

    def _stale(self, why: str) -> dict:
        warnings.warn(f"latent cache {self.path} is not used and will be rebuilt: {why}", stacklevel=3)
        return {}

    def save(self, keys: list[bytes], latent: Tensor, score: Tensor) -> None:
        """Write the rows; a file that cannot be written (a folder in the way, no permission, a full disk) is said in a
        warning, not raised: the latents were inverted and are used, only the next run inverts them again."""
        content = torch.tensor([list(k) for k in keys], dtype=torch.uint8).reshape(-1, KEY_BYTES)
        tensors = {"content": content, "latent": latent.contiguous(), "score": score.contiguous()}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_safetensors(tensors, self.path, {"format": STORE_FORMAT, "version": STORE_VERSION,
                                                   "settings": self.settings, "checksum": _checksum(*tensors.values())})
        except (OSError, SafetensorError) as e:
            warnings.warn(f"latent cache {self.path} could not be written, the next run inverts these images again: "
                          f"{type(e).__name__}: {e}", stacklevel=3)


def _checksum(*tensors: Tensor) -> str:
    """A BLAKE2b digest of the tensors' shapes, dtypes and bytes (a latent file's rows)."""
    h = hashlib.blake2b(digest_size=16)
    for t in tensors:
        h.update(f"{tuple(t.shape)}{t.dtype};".encode())
        h.update(t.detach().cpu().contiguous().numpy().view(np.uint8).reshape(-1))
    return h.hexdigest()
