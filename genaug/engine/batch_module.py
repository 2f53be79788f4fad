"""What :class:`genaug.BatchFaceAug` is as a ``torch.nn.Module`` beyond its call: how it is pickled (``deepcopy``,
``torch.save``, spawned DataLoader workers) and moved (``.to(device)``, ``.cuda()``, ``.cpu()``, a parent module's), and
that ``torch.jit.script`` refuses it. A base class: its methods read the transform's own fields (the lock, engine,
tables, work buffers) and rebuild the engine with ``BatchFaceAug._engine_on``."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class BatchModule(nn.Module):
    """The module behaviour of :class:`genaug.BatchFaceAug`: pickling and device moves."""

    def __getstate__(self) -> dict[str, Any]:
        """Pickling / deepcopy / ``torch.save`` keep the settings, generator (as bytes: a spawned DataLoader worker cannot
        read a pickled torch.Generator) and named ``table``; the engine and the content cache (~300 MB) are rebuilt."""
        drop = ("_layout", "_recipe", "_margin", "_colour_codes", "_colour_all", "_colour_entries", "_luma_code", "_luma_entries",
                "_region_code", "_region_entries", "_hue_code", "_hue_entries", "_slots", "_content")
        g = None if self.generator is None else self.generator.get_state().numpy().tobytes()
        return {**{k: v for k, v in self.__dict__.items() if k not in drop}, "generator": g, "_engine": None, "_feathers": {},
                "_work": {}, "_views": {}, "_box_key": (None, "")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if isinstance(self.generator, bytes):  # (not through __setattr__: unpickled is not set by the caller)
            self.__dict__["generator"] = torch.Generator().set_state(torch.frombuffer(bytearray(self.generator), dtype=torch.uint8))

    def _apply(self, fn: Any, recurse: bool = True) -> "BatchModule":
        """``.to(device)``, ``.cuda()``, ``.cpu()`` (and a parent module's): the work moves there - ``device`` is recorded
        (later batches elsewhere are copied there and back) and a built engine's networks and latent tables are moved.
        The device is read off ``fn`` applied to an empty CPU and meta probe; a dtype-only ``fn`` (``.half()``) moves nothing.
        A move waits for a call running in another thread, as a setting does."""
        with self._lock:
            return self._move(fn, recurse)

    def _move(self, fn: Any, recurse: bool) -> "BatchModule":
        super()._apply(fn, recurse)
        on_cpu = fn(torch.empty(0)).device  # (.cuda() without CUDA: torch's error, here)
        try:
            if fn(torch.empty(0, device="meta")).device != on_cpu:  # each probe stayed where it was: no device in fn
                return self
        except NotImplementedError:  # "cannot copy out of meta tensor": fn moves data (to on_cpu's device)
            pass
        except RuntimeError:  # an fn only CPU tensors take (.share_memory()): no move
            return self
        self.device, eng = on_cpu, self._engine
        if eng is not None and eng.device != on_cpu:  # device buffers are rebuilt there
            self._engine, self._feathers, self._work, self._views = None, {}, {}, {}
        if on_cpu.type == "meta":  # shapes only: nothing of the engine or tables goes there (a later .to() rebuilds)
            return self
        for table in (self.table, getattr(self, "_content", None)):  # the latents found so far go along
            if table is not None and table.rows is not None and table.rows.device != on_cpu:
                table.rows = table.rows.to(on_cpu)
        if eng is not None and self._engine is None:  # its bundle there (no reload; the same bundle_key, so the tables
            self._engine_on(on_cpu, eng.bundle.on(on_cpu))  # stay bound; a caller's bundle is not moved: a copy)
        return self

    def __prepare_scriptable__(self) -> "BatchModule":
        """``torch.jit.script`` (of this module or a model holding it) is refused with a reason, as
        ``torchvision.transforms.v2`` refuses it."""
        raise RuntimeError("BatchFaceAug cannot be scripted (torch.jit.script): it draws its edits on the host and reads "
                           "values back per call; apply it to the batch outside the scripted model (torch.compile is fine: "
                           "it runs BatchFaceAug eagerly)")
