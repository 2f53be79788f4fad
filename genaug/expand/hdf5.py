"""Expanded face datasets in HDF5: the file layout, the writer helpers and the reader.

``genaug expand SOURCE OUT.h5`` / :func:`genaug.expand.expand_to_hdf5` write one record per
output image, block by block into part files (:class:`PartWriter`), then :func:`merge_parts`
joins them; :class:`HDF5FaceDataset` reads the result back as a torch Dataset.

Layout (plain HDF5, readable by h5py, h5dump, HDFView, pandas/PyTables, MATLAB, ...)::

    images        uint8   (N, H, W, C)  chunks (1, H, W, C), lzf/gzip compressed; H, W = the
                                        model size (--size model) or the output size with the
                                        augmented face pasted back (--size source | WxH)
    label         int64   (N,)          class index (ImageFolder classes sorted -> 0..K-1; the
                                        source HDF5's ``labels``), -1 when the source has none
    source_index  int64   (N,)          index of the source image (sorted file order / HDF5 row)
    source_path   utf-8   (N,)          file path relative to SOURCE, or ``images[i]`` for HDF5
    variant       int16   (N,)          0 = the original (with --include-original), 1..V = variants
    codes         float32 (N, n_codes)  the code values set for this record (category index or
                                        continuous value), NaN for codes left as inverted
                                        (all NaN for originals); names in attr ``code_names``
    score         float32 (N,)          reconstruction score of the source's inversion
                                        (MS-SSIM in [0, 1], higher is better)
    skipped/      group: source_index int64, path utf-8, reason utf-8 (K,) — unreadable inputs

    Records are ordered by source index, then variant.
    File attributes: format="genaug-expanded", layout_version, genaug_version, bundle_identity,
    bundle_config (JSON), seed, settings (JSON), command (JSON argv), run_key (hash of bundle,
    seed, settings and source listing), class_names (JSON list), code_names, source, n_skipped.
"""
from __future__ import annotations

import json
import operator
import os
import queue
import threading
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..images import apply_transform
from ..io import commit_file, remove_stale_temps, temp_path

FORMAT = "genaug-expanded"
LAYOUT_VERSION = 1
STR = h5py.string_dtype("utf-8")
RECORD_FIELDS = ("images", "label", "source_index", "source_path", "variant", "codes", "score")


def compression_args(compression: str | None) -> dict[str, Any]:
    """h5py keyword arguments for ``--compression`` (lzf, gzip, gzip-<level>, none)."""
    if compression in (None, "none"):
        return {}
    if compression == "lzf":
        return {"compression": "lzf"}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4}
    level = compression[len("gzip-"):] if compression.startswith("gzip-") else ""
    if level.isdigit() and 0 <= int(level) <= 9:
        return {"compression": "gzip", "compression_opts": int(level)}
    raise ValueError(f"unknown compression {compression!r}: choose lzf, gzip, gzip-<level> with level 0..9, or none")


def create_records(
    f: h5py.File, n: int, shape: tuple[int, int, int], n_codes: int, compression: str | None, resizable: bool = False
) -> dict[str, h5py.Dataset]:
    """Create the record datasets of the layout (``n`` rows; growable along axis 0 if ``resizable``)."""
    h, w, c = shape
    mx = (None,) if resizable else (n,)
    ds = {
        "images": f.create_dataset(
            "images", (n, h, w, c), np.uint8, chunks=(1, h, w, c), maxshape=mx + (h, w, c), **compression_args(compression)
        ),
        "codes": f.create_dataset(
            "codes", (n, n_codes), np.float32, maxshape=mx + (n_codes,), chunks=(256, max(1, n_codes)) if resizable else None
        ),
    }
    for name, dt in (("label", np.int64), ("source_index", np.int64), ("source_path", STR), ("variant", np.int16), ("score", np.float32)):
        ds[name] = f.create_dataset(name, (n,), dt, maxshape=mx, chunks=(4096,) if resizable else None)
    return ds


def write_skipped(f: h5py.File, skipped: list[tuple[int, str, str]]) -> None:
    """The ``skipped`` group: (source_index, path, reason) of every unreadable input."""
    g = f.create_group("skipped")
    g.create_dataset("source_index", data=np.array([s[0] for s in skipped], dtype=np.int64))
    g.create_dataset("path", data=[s[1] for s in skipped], dtype=STR, shape=(len(skipped),))
    g.create_dataset("reason", data=[s[2] for s in skipped], dtype=STR, shape=(len(skipped),))


def read_skipped(f: h5py.File) -> list[tuple[int, str, str]]:
    if "skipped" not in f:
        return []
    g = f["skipped"]
    return [
        (int(i), p.decode() if isinstance(p, bytes) else p, r.decode() if isinstance(r, bytes) else r)
        for i, p, r in zip(g["source_index"][()], g["path"][()], g["reason"][()])
    ]


# --------------------------------------------------------------------------- writing parts
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
        raise kind(f"HDF5 writer failed: {self.error!r}") from self.error

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
        """Stop a writer that is still running (after an error in the producer): it drops what is
        queued, closes and deletes its unfinished part file, and is joined."""
        if not self.is_alive():
            return
        self.error = self.error or RuntimeError("stopped")
        try:
            self.q.put(None, timeout=timeout)  # the writer drains the queue once error is set
        except queue.Full:
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
                    self._f = h5py.File(self._tmp, "w")
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
        if isinstance(e, RuntimeError):  # h5py's write failure (a full disk): an I/O error, as the part writer's
            raise OSError(f"writing {out} failed: {e}") from e
        raise
    commit_file(tmp, out)
    return total, skipped


def _write_merged(tmp: Path, parts: list[Path], total: int, shape: Any, n_codes: int, compression: str,
                  attrs: dict[str, Any], out: Path, progress: bool) -> tuple[int, list[tuple[int, str, str]]]:
    skipped: list[tuple[int, str, str]] = []
    with h5py.File(tmp, "w") as g:
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


# ---------------------------------------------------------------------------------- reading
def not_class_index(labels: Any) -> np.ndarray:
    """Where ``labels`` (any shape) are floats that are not whole class indices (4.5, NaN, inf): an integer cast
    would truncate them silently. Integer labels: all False."""
    a = np.asarray(labels)
    return ~(np.isfinite(a) & (a == np.round(a))) if a.dtype.kind == "f" else np.zeros(a.shape, dtype=bool)


LABEL_KEYS = ("label", "labels")  # genaug's record field, then the name most HDF5 face sets use


def label_key(f: h5py.File, where: Any) -> str | None:
    """The labels dataset of an open HDF5 file, the same for every reader: ``label`` (genaug's records), else
    ``labels``, else None. A file holding both with different values is refused (which one is meant?)."""
    keys = [k for k in LABEL_KEYS if k in f]
    if len(keys) == 2 and not np.array_equal(f["label"][()], f["labels"][()]):
        raise ValueError(f"{where}: holds both 'label' and 'labels' with different values; keep the one meant")
    return keys[0] if keys else None


class HDF5FaceDataset(Dataset):
    """A torch Dataset over an expanded file: ``(image, label)`` per record.

    ``image`` is HWC uint8 numpy, or what ``transform`` makes of it: an albumentations transform or
    ``Compose`` is called as ``transform(image=img)["image"]``, any other callable (a torchvision
    transform, a function) as ``transform(img)``; ``target_transform(label)`` likewise. With ``return_meta=True`` items are
    ``(image, label, meta)`` with ``meta`` = source_index, source_path, variant, codes, score.
    The file is opened lazily in each process (safe with DataLoader ``num_workers > 0``).
    ``variants`` keeps only records whose variant is in the given list (e.g. ``[0]``); asking for one
    the file lacks is a ``ValueError``.
    """

    def __init__(
        self,
        path: str | Path,
        transform: Callable[..., Any] | None = None,
        return_meta: bool = False,
        variants: list[int] | None = None,
        target_transform: Callable[[int], Any] | None = None,
    ):
        self.path = os.path.expanduser(path)
        self.transform, self.target_transform = transform, target_transform
        self.return_meta = return_meta
        self._file: h5py.File | None = None
        self._pid = os.getpid()  # the process that opened ``_file``
        if not Path(self.path).is_file():
            raise FileNotFoundError(f"no such HDF5 file: {self.path}")
        if not h5py.is_hdf5(self.path):
            raise ValueError(f"{self.path} is not an HDF5 file")
        with h5py.File(self.path, "r") as f:
            self._label_key = label_key(f, self.path)
            if "images" not in f:
                raise ValueError(f"{self.path}: no 'images' dataset (not a genaug expanded file?)")
            n = f["images"].shape[0]
            self.code_names: list[str] = list(json.loads(f.attrs.get("code_names", "[]")))
            self.class_names: list[str] = list(json.loads(f.attrs.get("class_names", "[]")))
            self._rows: np.ndarray | None = None if variants is None else self._select(f, variants)
        self._n = n if self._rows is None else len(self._rows)

    def _select(self, f: h5py.File, variants: Any) -> np.ndarray:
        """Rows whose variant is in ``variants``; asking for one the file lacks (``[0]`` from a file
        written without ``--include-original``) is an error, not an empty dataset."""
        if "variant" not in f:
            raise ValueError(f"{self.path}: no 'variant' dataset to select variants {variants!r} from")
        have = f["variant"][()]
        if np.size(variants) == 0:  # not an empty dataset
            raise ValueError(f"variants must name at least one variant (0 = the original, 1.. the variants), got {variants!r}")
        missing = sorted(set(np.atleast_1d(variants).tolist()) - set(have.tolist()))
        if missing:
            raise ValueError(f"{self.path} holds no variant {missing} (it holds {sorted(set(have.tolist()))}; "
                             "0 is the original, written with --include-original)")
        return np.flatnonzero(np.isin(have, variants))

    def __len__(self) -> int:
        return self._n

    def _f(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():  # a forked worker opens its own handle (h5py is not fork-safe)
            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._file

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None  # each worker opens its own handle
        return state

    def _label(self, f: h5py.File, row: int, i: int) -> int:
        """Record ``row``'s label as an int; a float one that is not a whole number (4.5, NaN) is an error, not
        truncated (as :class:`~genaug.expand.sources.HDF5Source` refuses such labels when expanding)."""
        value = f[self._label_key][row]
        if not_class_index(value).any():
            item = f"item {i} (record {row} of the file)" if row != i else f"record {row}"
            raise ValueError(f"{self.path}: '{self._label_key}' of {item} is {float(value)!r}, "
                             "not a whole class index (-1: none)")
        return int(value)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        try:
            i = operator.index(i)  # a numpy or 0-d torch integer too; 1.5 is not an index
        except TypeError:
            raise TypeError(f"dataset indices must be integers, got {type(i).__name__}") from None
        if not -self._n <= i < self._n:
            raise IndexError(f"index {i} out of range for {self._n} records")
        i = int(i) % self._n
        row = int(self._rows[i]) if self._rows is not None else i
        f = self._f()
        image = f["images"][row]
        label = self._label(f, row, i) if self._label_key else -1
        if self.transform is not None:
            image = apply_transform(self.transform, image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        if not self.return_meta:
            return image, label
        sp = f["source_path"][row] if "source_path" in f else b""
        meta = {
            "source_index": int(f["source_index"][row]) if "source_index" in f else row,
            "source_path": sp.decode() if isinstance(sp, bytes) else str(sp),
            "variant": int(f["variant"][row]) if "variant" in f else 0,
            "codes": f["codes"][row] if "codes" in f else np.zeros(0, np.float32),
            "score": float(f["score"][row]) if "score" in f else float("nan"),
        }
        return image, label, meta

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():  # not a handle inherited from the parent
            self._file.close()
        self._file = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
