"""Writing an expansion's records: a background thread fills one part file per block (:class:`PartWriter`),
:func:`part_status` tells a finished part from a partial or foreign one on resume, and :func:`merge_parts` joins
the parts, in order, into the output file (the layout: :mod:`genaug.expand.hdf5`)."""
from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import h5py
from tqdm.auto import tqdm

from ..io import commit_file, remove_stale_temps, temp_path
from .hdf5 import RECORD_FIELDS, create_records, read_skipped, write_skipped

class PartWriter(threading.Thread):
    """Background thread writing record batches into part files (bounded queue).

    Messages: ``("open", block)``, ``("rows", dict)``, ``("close", block, skipped)``, ``None`` (stop)."""

    def __init__(self, parts_dir: Path, shape: tuple[int, int, int], n_codes: int, compression: str | None,
                 attrs: dict[str, Any], queue_size: int = 8):
        super().__init__(daemon=True, name="genaug-expand-writer")
        self.parts_dir, self.shape, self.n_codes, self.compression, self.attrs = parts_dir, shape, n_codes, compression, attrs
        self.q: queue.Queue = queue.Queue(maxsize=queue_size)
        self.error: BaseException | None = None
        self.done_blocks: list[int] = []
        self._f: h5py.File | None = None  # the part file being written and its temp path
        self._tmp: Path | None = None

    def _raise(self) -> None:
        """Re-raise the writer's failure: an I/O one (a full disk: h5py's RuntimeError names errno 28) as OSError."""
        kind = OSError if isinstance(self.error, (OSError, RuntimeError)) else RuntimeError
        raise kind(f"HDF5 writer failed: {type(self.error).__name__}: {one_line(self.error)}") from self.error

    def put(self, msg: Any) -> None:
        while True:
            if self.error is not None:
                self._raise()
            try:
                self.q.put(msg, timeout=0.5)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Stop after the queued messages; raise if writing failed."""
        self.put(None)
        self.join()
        if self.error is not None:
            self._raise()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop a writer that is still running (after an error or Ctrl-C in the producer): it writes what is queued
        (a block whose rows were all queued is finished: its part is kept), closes and deletes its unfinished part
        file, and is joined."""
        if not self.is_alive():
            return
        try:
            self.q.put(None, timeout=timeout)
        except queue.Full:  # the writer is stuck: it drops the rest
            self.error = self.error or RuntimeError("stopped")
            return
        self.join(timeout)

    def _abandon(self) -> None:
        """Close and remove the part file being written, if any."""
        if self._f is not None:
            try:
                self._f.close()
            except Exception:  # noqa: BLE001 - already failing; the temp file is removed below
                pass
            self._f = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def run(self) -> None:
        ds: dict[str, h5py.Dataset] = {}
        n = 0
        while True:
            msg = self.q.get()
            if msg is None:
                self._abandon()
                return
            if self.error is not None:
                continue  # drain after a failure; the producer raises
            try:
                if msg[0] == "open":
                    self._tmp = temp_path(self.parts_dir / part_name(msg[1]))
                    # no chunk cache: rows go to disk as written, so a full disk fails that write, and no dirty chunk is
                    # left for HDF5 to flush when the failed file's datasets are freed (it crashed the process: SIGSEGV)
                    self._f = h5py.File(self._tmp, "w", rdcc_nbytes=0)
                    ds, n = create_records(self._f, 0, self.shape, self.n_codes, self.compression, resizable=True), 0
                elif msg[0] == "rows":
                    rows = msg[1]
                    k = len(rows["score"])
                    for name in RECORD_FIELDS:
                        ds[name].resize(n + k, axis=0)
                        ds[name][n:n + k] = rows[name]
                    n += k
                else:
                    _, block, skipped = msg
                    assert self._f is not None and self._tmp is not None
                    write_skipped(self._f, skipped)
                    self._f.attrs.update({**self.attrs, "block": block, "n_records": n, "complete": True})
                    self._f.close()
                    self._f = None
                    commit_file(self._tmp, self.parts_dir / part_name(block))
                    self._tmp = None
                    self.done_blocks.append(block)
            except BaseException as e:  # noqa: BLE001 - re-raised in the producer
                self.error = e
                self._abandon()


def one_line(e: BaseException) -> str:
    """An error's text on one line (HDF5's file-write errors span two: "time = ...\n, filename = ...")."""
    return " ".join(str(e).split())


def part_name(block: int) -> str:
    return f"part-{block:06d}.h5"


def part_status(path: Path, run_key: str) -> str:
    """'ok', 'missing', 'corrupt' or 'other' (made by a different run)."""
    if not path.exists():
        return "missing"
    try:
        with h5py.File(path, "r") as f:
            if not f.attrs.get("complete", False):
                return "corrupt"
            return "ok" if f.attrs.get("run_key") == run_key else "other"
    except OSError:
        return "corrupt"


def merge_parts(parts_dir: Path, n_blocks: int, out: Path, shape: tuple[int, int, int], n_codes: int,
                compression: str | None, attrs: dict[str, Any], progress: bool = True) -> tuple[int, list[tuple[int, str, str]]]:
    """Concatenate the part files in block order into ``out`` (via ``out.tmp`` + atomic rename).
    Compressed image chunks are copied as they are when the filters match. Returns
    (records, skipped)."""
    parts = [parts_dir / part_name(blk) for blk in range(n_blocks)]
    counts = []
    for p in parts:
        with h5py.File(p, "r") as f:
            counts.append(int(f.attrs["n_records"]))
    total = sum(counts)
    if total == 0:
        skipped = []
        for p in parts:
            with h5py.File(p, "r") as f:
                skipped += read_skipped(f)
        eg = "; ".join(f"{p}: {why}" for _, p, why in skipped[:3])
        raise ValueError(f"nothing to write to {out}: none of the {len(skipped)} source image(s) could be used "
                         f"(e.g. {eg})")
    tmp = temp_path(out)
    tmp.unlink(missing_ok=True)
    remove_stale_temps(out)  # an earlier merge killed outright (SIGKILL, power loss) left OUT.<pid>.tmp
    try:
        total, skipped = _write_merged(tmp, parts, total, shape, n_codes, compression, attrs, out, progress)
    except BaseException as e:  # no half-written OUT.<pid>.tmp left beside the output
        tmp.unlink(missing_ok=True)
        if isinstance(e, (OSError, RuntimeError)):  # h5py's write failure (a full disk): an I/O error, as the part
            raise OSError(f"writing {out} failed: {one_line(e)}") from e  # writer's (its text spans lines)
        raise
    commit_file(tmp, out)
    return total, skipped


def _write_merged(tmp: Path, parts: list[Path], total: int, shape: Any, n_codes: int, compression: str,
                  attrs: dict[str, Any], out: Path, progress: bool) -> tuple[int, list[tuple[int, str, str]]]:
    skipped: list[tuple[int, str, str]] = []
    with h5py.File(tmp, "w", rdcc_nbytes=0) as g:  # no chunk cache: see PartWriter (a full disk crashed the process)
        ds = create_records(g, total, shape, n_codes, compression)
        n = 0
        for p in tqdm(parts, desc=f"merge {out.name}", unit="part", disable=not progress):
            with h5py.File(p, "r") as f:
                k = int(f.attrs["n_records"])
                src_img = f["images"]
                direct = (src_img.compression, src_img.compression_opts) == (ds["images"].compression, ds["images"].compression_opts) \
                    and src_img.chunks == ds["images"].chunks and src_img.compression is not None
                for j in range(k):
                    if direct:
                        mask, chunk = src_img.id.read_direct_chunk((j, 0, 0, 0))
                        ds["images"].id.write_direct_chunk((n + j, 0, 0, 0), chunk, mask)
                    else:
                        ds["images"][n + j] = src_img[j]
                for name in RECORD_FIELDS[1:]:
                    if k:
                        ds[name][n:n + k] = f[name][:k]
                skipped += read_skipped(f)
                n += k
        write_skipped(g, skipped)
        g.attrs.update({**attrs, "n_records": total, "n_skipped": len(skipped)})
    return total, skipped
