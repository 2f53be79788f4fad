"""Device-resident latents for the batch path, gathered by tensor indexing.

:class:`LatentTable` keeps, per slot, an inverted latent and its render ``G(latent)`` on the
device, and on the host which slots are filled. Images the caller *names* (dataset indices, as a
DataLoader yields them on the host) use their index as the slot: the look-up is one host gather
and one device gather, no hashing and no device-to-host read. Unnamed images are found by content
(:func:`genaug.engine.cache.content_keys` of the model-frame pixels, as the engine's own cache does) through
:class:`ContentSlots`, a bounded key -> slot map that reuses the oldest slot when full.

Name images only when the pixels at an index are the same at every call (genaug before any random
transform); images that may change are safer found by content.
"""
from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..images import sample_grid


def host_array(t: Tensor | np.ndarray) -> np.ndarray:
    """A host tensor's values as a numpy array sharing its memory (writable), without the four tensor operations
    of ``Tensor.numpy()`` (detach, to, resolve_conj, resolve_neg: host time per call on the hot path) and without
    ``Tensor.__dlpack__``'s Python checks (~8 us a call on a CPU; the batch path reads ~20 host tensors a call);
    numpy arrays pass through. A lazily conjugated or negated view comes back resolved, as a copy: its memory holds
    the values before that, and DLPack lends it as it is (a negative view read as its negation)."""
    if isinstance(t, np.ndarray):
        return t
    if t.is_conj() or t.is_neg():
        return t.detach().resolve_conj().resolve_neg().numpy()
    if _TO_DLPACK is not None and not t.requires_grad:  # (what __dlpack__ refuses)
        try:
            return np.from_dlpack(_Lent(t))
        except (RuntimeError, TypeError, BufferError, ValueError):  # a device tensor, a dtype numpy lacks: as below
            pass
    try:
        return np.from_dlpack(t)
    except (RuntimeError, TypeError, BufferError, ValueError):  # grad, ...
        return t.detach().numpy()


_TO_DLPACK = getattr(torch._C, "_to_dlpack_versioned", None)  # (torch's, private: a versioned capsule says writable; without
# it, the public route below)


class _Lent:
    """A host tensor lent to :func:`numpy.from_dlpack` by torch's capsule alone."""

    __slots__ = ("t",)

    def __init__(self, t: Tensor):
        self.t = t

    def __dlpack__(self, stream: Any = None, max_version: Any = None, dl_device: Any = None, copy: Any = None) -> Any:
        if max_version is None or max_version[0] < 1:  # (a reader of unversioned capsules alone)
            raise BufferError("a versioned DLPack reader is needed")
        return _TO_DLPACK(self.t)

    def __dlpack_device__(self) -> tuple[int, int]:
        if self.t.device.type != "cpu":
            raise BufferError("not a host tensor")
        return (1, 0)  # kDLCPU


class LatentTable:
    """Latents and renders by slot on one device. ``capacity``: the number of slots (indices must
    lie in ``[0, capacity)``), or None to grow as larger indices arrive. Storage is allocated at the
    first store and doubles as higher slots fill (never beyond the capacity), one row per slot: the
    latent (D floats), its render ``G(latent)`` (C x S x S floats), the render on the image scale ``(G(latent) + 1) / 2`` in [0, 1] as the batch blend uses
    it, so one gather reads both, and that render's :func:`genaug.images.sample_grid` (:attr:`grid`, the colour fit's
    samples) kept contiguous; about 77 KB per face for the default 64x64 bundle."""

    def __init__(self, capacity: int | None = None):
        if capacity is not None and (not isinstance(capacity, int) or capacity < 1):
            raise ValueError(f"capacity must be a positive int or None (grow as needed), got {capacity!r}")
        self.capacity = capacity
        self.filled = torch.zeros(capacity or 0, dtype=torch.bool)  # host copy: which slots hold a latent
        self.grey = torch.zeros(capacity or 0, dtype=torch.bool)  # host: the slot's photo is black-and-white
        self.rows: Tensor | None = None  # (slots, D + C * S * S + C * S' * S'): latent, the render on the image scale, its grid
        self.latent_dim = 0
        self.image_shape: tuple[int, ...] = ()
        self.grid_shape: tuple[int, ...] = ()  # the render's sample_grid
        self.settings: str | None = None  # bundle + inversion settings the latents were made with

    def __setstate__(self, state: dict) -> None:
        """Unpickling (a ``torch.save`` of a transform holding a named table): a table pickled before the rows held
        the render's sample grid (no ``grid_shape``) gets it computed from the stored renders."""
        self.__dict__.update(state)
        if "grid_shape" not in state:
            self.grid_shape = ()
            if self.rows is not None:
                base = self.base
                self.grid_shape = tuple(sample_grid(base[:0]).shape[1:])
                self.rows = torch.cat([self.rows, sample_grid(base).flatten(1)], 1)

    @property
    def latent(self) -> Tensor | None:
        """(slots, D) latents (a view of the storage)."""
        return None if self.rows is None else self.rows[:, : self.latent_dim]

    @property
    def base(self) -> Tensor | None:
        """(slots, C, S, S) renders ``(G(latent) + 1) / 2`` (a view of the storage)."""
        return None if self.rows is None else self._split(self.rows)[1]

    @property
    def grid(self) -> Tensor | None:
        """(slots, C, S', S') :func:`genaug.images.sample_grid` of the renders, each slot's contiguous (a view of the storage)."""
        return None if self.rows is None else self.rows[:, self.latent_dim + math.prod(self.image_shape) :].unflatten(1, self.grid_shape)

    def __len__(self) -> int:
        return int(self.filled.sum())

    def bind(self, settings: str) -> None:
        """Tie the table to one bundle and inversion settings; another engine's latents are refused."""
        if self.settings is None:
            self.settings = settings
        elif self.settings != settings:
            raise ValueError(f"this LatentTable holds latents of {self.settings!r}, not {settings!r}: "
                             "use one table per bundle and inversion settings")

    def check(self, index: Tensor) -> Tensor:
        """``index`` as a host long tensor, checked against the capacity (a device tensor is read once)."""
        if not isinstance(index, Tensor):
            try:
                index = torch.as_tensor(index)
            except (TypeError, ValueError, RuntimeError):  # ("a" among them: torch's own words name no argument)
                raise ValueError(f"index must be a 1-d integer tensor (one dataset index per row), got {index!r}") from None
        if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool or index.ndim != 1:
            raise ValueError(f"index must be a 1-d integer tensor (one dataset index per row), got "
                             f"{index.dtype} of shape {tuple(index.shape)}")
        if index.device.type != "cpu" or index.dtype != torch.long:
            index = index.to("cpu", torch.long)
        values = host_array(index)  # host bookkeeping in numpy: no tensor reads
        if len(values) and (values.min() < 0 or (self.capacity is not None and values.max() >= self.capacity)):
            raise ValueError(f"index values must lie in [0, {self.capacity or 'inf'}), got [{values.min()}, {values.max()}]")
        return index

    def missing(self, index: Tensor | np.ndarray) -> Tensor:
        """Host bool (N,): rows of ``index`` (host long, or numpy) whose slot holds no latent yet."""
        return torch.from_numpy(self.missing_rows(index))

    def missing_rows(self, index: Tensor | np.ndarray) -> np.ndarray:
        """:meth:`missing` as a numpy array (no tensor operations)."""
        index, filled = host_array(index), host_array(self.filled)  # host bookkeeping in numpy: no tensor ops
        if len(filled) == 0:
            return np.ones(len(index), dtype=bool)
        return ~filled[np.minimum(index, len(filled) - 1)] | (index >= len(filled))

    def gather(self, slots: Tensor) -> tuple[Tensor, Tensor]:
        """(latents (N, D), renders on the image scale (N, C, S, S)) of ``slots`` (a long tensor on the
        table's device): views of one gathered copy."""
        assert self.rows is not None
        return self._split(self.rows.index_select(0, slots))

    def gather_latent(self, slots: Tensor, out: Tensor | None = None) -> Tensor:
        """(N, D) latents of ``slots`` (a long tensor on the table's device), a gathered copy (into ``out``)."""
        assert self.rows is not None
        return torch.index_select(self.latent, 0, slots, out=out)  # type: ignore[arg-type]

    def gather_base(self, slots: Tensor, step: int = 1) -> Tensor:
        """(N, C, S', S') renders on the image scale of ``slots``, every ``step``-th pixel each way
        (:func:`genaug.images.sample_grid`'s grid), a gathered copy."""
        assert self.rows is not None
        return self.base[:, :, ::step, ::step].index_select(0, slots)  # type: ignore[index]

    def _split(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        d = self.latent_dim
        return rows[:, :d], rows[:, d : d + math.prod(self.image_shape)].unflatten(1, self.image_shape)

    def is_grey(self, index: Tensor | np.ndarray) -> np.ndarray:
        """Host bool (N,): the stored photos of slots ``index`` (host long, or numpy) that are black-and-white."""
        return host_array(self.grey)[host_array(index)]

    def store(self, index: Tensor, latent: Tensor, base: Tensor, grey: Tensor | None = None) -> None:
        """Write rows into slots ``index`` (host long), allocating or growing the storage: ``latent``
        and its render ``base = G(latent)`` in [-1, 1] (kept as ``(base + 1) / 2``); ``grey``: (N,)
        bool, the photos are black-and-white (:func:`genaug.grey.is_grey`; kept on the host)."""
        allocated = 0 if self.rows is None else len(self.rows)
        size = max(int(index.numpy().max()) + 1, 2 * allocated)  # storage doubles as slots fill, up to the capacity
        size = min(size, self.capacity) if self.capacity else size
        if self.rows is None:
            self.latent_dim, self.image_shape = latent.shape[1], tuple(base.shape[1:])
            self.grid_shape = tuple(sample_grid(base[:0]).shape[1:])
        elif (latent.shape[1], tuple(base.shape[1:])) != (self.latent_dim, self.image_shape) or self.rows.device != latent.device:
            raise ValueError(f"this LatentTable holds latents of shape ({self.latent_dim},) and renders of shape "
                             f"{self.image_shape} on {self.rows.device}, got {tuple(latent.shape[1:])} and "
                             f"{tuple(base.shape[1:])} on {latent.device}")
        if self.rows is None or len(self.rows) <= int(index.numpy().max()):
            self._grow(size, latent)
        base01 = base.to(self.rows.dtype).add(1).mul_(0.5)  # type: ignore[union-attr]
        rows = torch.cat([latent.to(self.rows.dtype), base01.flatten(1), sample_grid(base01).flatten(1)], 1)  # type: ignore[union-attr]
        self.rows.index_copy_(0, index.to(latent.device), rows)  # type: ignore[union-attr]
        self.filled[index] = True
        self.grey[index] = False if grey is None else grey.cpu()

    def _grow(self, size: int, latent: Tensor) -> None:
        old = len(self.rows) if self.rows is not None else 0
        width = self.latent_dim + math.prod(self.image_shape) + math.prod(self.grid_shape)
        try:
            rows = latent.new_zeros((size, width))
        except (RuntimeError, MemoryError):  # (CUDA's out-of-memory error is a RuntimeError)
            raise ValueError(f"index {size - 1} needs a LatentTable of {size:,} slots ({size * width * latent.element_size() / 2**30:,.1f} "
                             f"GiB on {latent.device}), more than can be allocated: one slot per index up to the largest, "
                             "so name images by dataset position (0..N-1), not by sparse ids, or leave index out "
                             "(images found by content)") from None
        if old:
            rows[:old] = self.rows
        self.rows = rows
        if size > len(self.filled):  # host flags: as many as the capacity from the start, else as the storage
            filled, grey = torch.zeros(size, dtype=torch.bool), torch.zeros(size, dtype=torch.bool)
            filled[: len(self.filled)], grey[: len(self.grey)] = self.filled, self.grey
            self.filled, self.grey = filled, grey


class ContentSlots:
    """Content key -> slot of a :class:`LatentTable` of ``capacity`` slots; when full, the oldest
    slot is reused (first in, first out)."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"the content cache needs at least one slot, got {capacity}")
        self.capacity = int(capacity)
        self.slot_of: dict[bytes, int] = {}
        self.key_in: list[bytes | None] = [None] * self.capacity
        self.next = 0

    def lookup(self, keys: list[bytes]) -> tuple[Tensor, Tensor]:
        """(slots (N,) host long, missing (N,) host bool); missing rows get fresh slots, evicting the
        oldest slot not used by this batch (so at most ``capacity`` rows per batch)."""
        if len(keys) > self.capacity:
            raise ValueError(f"a batch of {len(keys)} images needs a content cache of at least {len(keys)} slots, "
                             f"it has {self.capacity}: raise cache_size or name the images (index=)")
        slots = np.fromiter(map(self.slot_of.get, keys, itertools.repeat(-1)), np.int64, len(keys))  # host bookkeeping in numpy
        missing = slots < 0
        in_use = set(slots.tolist()) if missing.any() else set()
        for row in np.flatnonzero(missing).tolist():
            key = keys[row]
            if key in self.slot_of:  # the same new image twice in one batch
                slots[row] = self.slot_of[key]
                continue
            while self.next in in_use:
                self.next = (self.next + 1) % self.capacity
            slot, self.next = self.next, (self.next + 1) % self.capacity
            in_use.add(slot)
            if self.key_in[slot] is not None:
                del self.slot_of[self.key_in[slot]]  # type: ignore[arg-type]
            self.key_in[slot], self.slot_of[key], slots[row] = key, slot, slot
        return torch.from_numpy(slots), torch.from_numpy(missing)
