"""Expanded face datasets in HDF5: the file layout, its record helpers and the reader.

``genaug expand SOURCE OUT.h5`` / :func:`genaug.expand.expand_to_hdf5` write one record per
output image, block by block into part files, then join them (:mod:`genaug.expand.parts`);
:class:`HDF5FaceDataset` reads the result back as a torch Dataset.

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
    score         float32 (N,)          reconstruction score of the inversion the record was rendered
                                        from (MS-SSIM in [0, 1], higher is better): the source's, or
                                        for a named edit on a face the framing rule's box misplaces,
                                        the inversion framed by its detected face
    skipped/      group: source_index int64, path utf-8, reason utf-8 (K,) — unreadable inputs

    Records are ordered by source index, then variant. Each dataset's attribute ``description`` says what it holds.
    File attributes: format="genaug-expanded", layout_version, render_revision, genaug_version, bundle_identity,
    bundle_config (JSON), seed, settings (JSON), command (JSON argv), run_key (hash of bundle,
    seed, settings and source listing), class_names (JSON list), code_names, source, n_skipped.
"""
from __future__ import annotations

import json
import numbers
import operator
import os
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
from torch.utils.data import Dataset

from ..engine.codes import check_flag
from ..images import apply_transform, check_transform
from ..io import check_path, decode_row, encoded_rows

FORMAT = "genaug-expanded"
LAYOUT_VERSION = 1
# how this genaug renders records for given settings (part of the run key): raised when a change of genaug renders the
# same settings otherwise, so a resume does not mix records made two ways (each raise: docs/CHANGELOG.md). 2 (r29)
# named edits framed by the face, the pitch-aware yaw fit; 3 (r30) no-face and strength-0 edits kept as the source; 4
# (r31) strength 0 in delta mode; 5 (r33) dim faces lifted, side-lit faces found, roomless controls re-drawn; 6 (r34)
# controls on the detected face of non-square sources; 7 (r35) / 8 (r37) light's slope without near-grey and off-hue
# pixels, controls that changed no pixel with codes NaN; 9 (r38) a colour edit's cast cut before its saturation and the
# photo's refit held towards that transform (engine.colour: tone +1 on dark faces and photos), a turned face's turn
# back stopped at a 1.8x far-cheek stretch across frontal (faces.turn_limits.back_reach).
RENDER_REVISION = 9
STR = h5py.string_dtype("utf-8")
RECORD_FIELDS = ("images", "label", "source_index", "source_path", "variant", "codes", "score")
# each dataset's ``description`` attribute: the file says what its columns mean (HDFView, h5dump, ``ds.attrs``)
DESCRIPTIONS = {
    "images": "uint8 (N, H, W, C) output images, one record per row, ordered by source_index then variant",
    "label": "class index of the source (names: file attribute class_names, a JSON list), -1 if none",
    "source_index": "index of the source image this record was made from (sorted file order, or the source HDF5's row)",
    "source_path": "path of the source image relative to the source (file attribute source), or images[i] for HDF5",
    "variant": "0 = the original (--include-original), 1..V = the variants of the source",
    "codes": "value set per code (category index or continuous value), NaN = unedited; columns: file attribute "
             "code_names (a JSON list)",
    "score": "reconstruction score (MS-SSIM in [0, 1], higher is better) of the inversion the record was rendered from: "
             "the source's, or for a named edit on a face the framing rule's box misplaces, the one framed by the face",
    "skipped": "source images left out (unreadable, too small, or not the output size), with the reason",
    "skipped/source_index": "index of the left-out source image (sorted file order, or the source HDF5's row)",
    "skipped/path": "path of the left-out source image relative to the source (file attribute source)",
    "skipped/reason": "why the source image was left out (the error reading it, or its size)",
}


def parts_dir_of(out: str | Path) -> Path:
    """Where the part files of the expansion into ``out`` are kept until the merge: ``OUT.parts/``."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def writing_now(parts_dir: Path) -> Path | None:
    """The lock in ``parts_dir`` that a running expansion holds (:meth:`genaug.expand.runs.RunFiles.locked`), or None:
    none runs there now (the lock taken and at once released to find out; a run starting in that instant is refused,
    to be rerun)."""
    from filelock import FileLock, Timeout

    for path in sorted(parts_dir.glob("lock*")):
        lock = FileLock(path, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return path
        except OSError:  # (a lock this process may not open: not a sign of a run)
            continue
        lock.release()
    return None


def compression_name(compression: Any) -> str:
    """``compression`` as ``--compression`` writes it (lzf, gzip, gzip-<level>, none; so recorded in the file's settings,
    which took a numpy int as no JSON); as h5py's ``compression=``, an int 0..9 is a gzip level, True gzip, False none."""
    if isinstance(compression, bool) or compression is None:  # (before int: True == 1)
        return "gzip" if compression else "none"
    if isinstance(compression, numbers.Integral) and 0 <= compression <= 9:
        return f"gzip-{int(compression)}"
    level = compression[len("gzip-"):] if isinstance(compression, str) and compression.startswith("gzip-") else ""
    if (isinstance(compression, str) and compression in ("lzf", "gzip", "none")) or (level.isdigit() and int(level) <= 9):
        return compression
    raise ValueError(f"unknown compression {compression!r}: choose lzf, gzip, gzip-<level> with level 0..9 (or that level "
                     "as an int, as h5py takes it), or none")


def compression_args(compression: Any) -> dict[str, Any]:
    """h5py keyword arguments for ``compression`` (:func:`compression_name`)."""
    name = compression_name(compression)
    if name in ("none", "lzf"):
        return {} if name == "none" else {"compression": "lzf"}
    return {"compression": "gzip", "compression_opts": 4 if name == "gzip" else int(name[len("gzip-"):])}


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
    for name, d in ds.items():
        d.attrs["description"] = DESCRIPTIONS[name]
    return ds


def write_skipped(f: h5py.File, skipped: list[tuple[int, str, str]]) -> None:
    """The ``skipped`` group: (source_index, path, reason) of every unreadable input, each with its ``description``."""
    g = f.create_group("skipped")
    g.attrs["description"] = DESCRIPTIONS["skipped"]
    made = (g.create_dataset("source_index", data=np.array([s[0] for s in skipped], dtype=np.int64)),
            g.create_dataset("path", data=[s[1] for s in skipped], dtype=STR, shape=(len(skipped),)),
            g.create_dataset("reason", data=[s[2] for s in skipped], dtype=STR, shape=(len(skipped),)))
    for d in made:
        d.attrs["description"] = DESCRIPTIONS[d.name.lstrip("/")]


def read_skipped(f: h5py.File) -> list[tuple[int, str, str]]:
    if "skipped" not in f:
        return []
    g = f["skipped"]
    return [
        (int(i), p.decode() if isinstance(p, bytes) else p, r.decode() if isinstance(r, bytes) else r)
        for i, p, r in zip(g["source_index"][()], g["path"][()], g["reason"][()])
    ]


# ---------------------------------------------------------------------------------- reading
def names_attr(f: h5py.File, key: str, where: Any) -> list[str]:
    """A list of names stored as a file attribute (``class_names``, ``code_names``): a JSON text, as genaug writes
    it, or an array of strings (fixed or variable length), as h5py stores ``f.attrs[key] = ["alice", "bob"]``."""
    value = f.attrs.get(key, "[]")
    if isinstance(value, bytes):  # a fixed-length string attribute: one JSON text
        value = value.decode()
    if not isinstance(value, str):
        return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(value)]
    try:
        names = json.loads(value)
    except json.JSONDecodeError:
        names = None
    if not isinstance(names, list):
        raise ValueError(f"{where}: attribute {key!r} must be a JSON list or an array of names, got {value[:80]!r}")
    return [str(n) for n in names]


def not_class_index(labels: Any) -> np.ndarray:
    """Where ``labels`` (any shape) are not whole class indices: floats such as 4.5, NaN, inf (an integer cast
    would truncate them silently) and names (strings: a cast fails on them). Integer labels: all False."""
    a = np.asarray(labels)
    if a.dtype.kind in "SUO":
        return np.ones(a.shape, dtype=bool)
    return ~(np.isfinite(a) & (a == np.round(a))) if a.dtype.kind == "f" else np.zeros(a.shape, dtype=bool)


def one_label_each(shape: Any, n: int, key: str, where: Any) -> None:
    """Refuse labels ``key`` of ``shape`` that are not one per image of ``n``: ``(N,)``, or ``(N, 1)`` (a column, as
    h5py users often store them; read as ``(N,)``); any other shape is a ValueError naming it."""
    if tuple(shape) not in ((n,), (n, 1)):
        raise ValueError(f"{where}: '{key}' has shape {tuple(shape)} but 'images' holds {n} images; it must be ({n},) "
                         f"or ({n}, 1), one class index per image")


LABEL_KEYS = ("label", "labels")  # genaug's record field, then the name most HDF5 face sets use


def label_key(f: h5py.File, where: Any) -> str | None:
    """The labels dataset of an open HDF5 file, the same for every reader: ``label`` (genaug's records), else
    ``labels``, else None. A file holding both with different values is refused (which one is meant?)."""
    keys = [k for k in LABEL_KEYS if k in f]
    if len(keys) == 2 and not np.array_equal(f["label"][()], f["labels"][()]):
        raise ValueError(f"{where}: holds both 'label' and 'labels' with different values; keep the one meant")
    return keys[0] if keys else None


def open_for_reading(path: str) -> h5py.File:
    """``h5py.File(path, "r")``; a file another process holds open for writing (HDF5's file lock) is an
    ``OSError`` that says so and how to read it anyway, not HDF5's bare "unable to lock file"."""
    try:
        return h5py.File(path, "r")
    except OSError as e:
        if "lock" not in str(e).lower():
            raise
        raise OSError(f"{path} is open for writing in another process (HDF5 file lock: {e}); wait for it to finish "
                      "(a `genaug expand` still running?), or set HDF5_USE_FILE_LOCKING=FALSE before h5py is imported to "
                      "read it anyway") from None


class HDF5FaceDataset(Dataset):
    """A torch Dataset over an expanded file: ``(image, label)`` per record.

    ``image`` is HWC uint8 numpy (a row of JPEG / PNG bytes decoded, RGB), or what ``transform`` makes of it: an
    albumentations transform or ``Compose`` is called as ``transform(image=img)["image"]``, any other callable (a torchvision
    transform, a function) as ``transform(img)``; ``target_transform(label)`` likewise. With ``return_meta=True`` items are
    ``(image, label, meta)`` with ``meta`` = source_index, source_path, variant, codes, score.
    The file is opened lazily in each process (safe with DataLoader ``num_workers > 0``); ``close()`` or a ``with``
    block closes this process's handle.
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
        self.path = os.path.expanduser(check_path(path, "path", "an HDF5 file's path"))  # (no h5py ids: reopened per worker)
        self.transform, self.target_transform = check_transform(transform), check_transform(target_transform, "target_transform")
        self.return_meta = check_flag(return_meta, "return_meta")
        self._file: h5py.File | None = None
        self._pid = os.getpid()  # the process that opened ``_file``
        if not Path(self.path).is_file():
            parts = parts_dir_of(self.path)
            lock = writing_now(parts) if parts.is_dir() else None
            hint = (f" yet: an expansion is writing it now (it holds {lock}); the file appears when it has merged its "
                    "parts: wait for it to finish") if lock is not None else (
                    f" (an expansion into it is unfinished: {parts} holds its parts; rerun the same `genaug expand` "
                    "command to finish it)") if parts.is_dir() else " (it is a folder)" if Path(self.path).is_dir() else ""
            raise FileNotFoundError(f"no such HDF5 file: {self.path}{hint}")
        if not h5py.is_hdf5(self.path):
            raise ValueError(f"{self.path} is not an HDF5 file")
        self._inode = self._stat()  # the file measured here: one put in its place later is refused, not read
        with open_for_reading(self.path) as f:
            self._label_key = label_key(f, self.path)
            if "images" not in f:
                raise ValueError(f"{self.path}: no 'images' dataset (not a genaug expanded file?)")
            self._records, self._encoded = f["images"].shape[0], encoded_rows(f["images"])  # (JPEG / PNG bytes: decoded)
            if self._label_key:
                one_label_each(f[self._label_key].shape, self._records, self._label_key, self.path)
            self.code_names: list[str] = names_attr(f, "code_names", self.path)
            self.class_names: list[str] = names_attr(f, "class_names", self.path)
            self._rows: np.ndarray | None = None if variants is None else self._select(f, variants)
        self._n = self._records if self._rows is None else len(self._rows)

    @property
    def classes(self) -> list[str]:
        """The class names, as torchvision's ``ImageFolder.classes`` (``class_names``; empty if the file has none)."""
        return list(self.class_names)

    @property
    def class_to_idx(self) -> dict[str, int]:
        """Class name -> label, as torchvision's ``ImageFolder.class_to_idx``."""
        return {c: i for i, c in enumerate(self.class_names)}

    @property
    def targets(self) -> list[int]:
        """Each item's label, as torchvision's ``ImageFolder.targets`` (e.g. for a ``WeightedRandomSampler``; -1: none),
        read from the file in one go."""
        if not self._label_key:
            return [-1] * self._n
        labels = self._f()[self._label_key][()].reshape(-1)  # ((N, 1): a column)
        rows = labels if self._rows is None else labels[self._rows]
        bad = np.flatnonzero(not_class_index(rows))
        if len(bad):  # the first named, as an item's own label names it
            i = int(bad[0])
            raise self._not_a_class(i if self._rows is None else int(self._rows[i]), i, rows[i],
                                    f"; {len(bad)} of {len(rows)} labels are not")
        return rows.astype(np.int64).tolist()

    def _stat(self) -> tuple[int, int]:
        st = os.stat(self.path)
        return st.st_dev, st.st_ino

    def _select(self, f: h5py.File, variants: Any) -> np.ndarray:
        """Rows whose variant is in ``variants``; asking for one the file lacks (``[0]`` from a file
        written without ``--include-original``) is an error, not an empty dataset."""
        if "variant" not in f:
            raise ValueError(f"{self.path}: no 'variant' dataset to select variants {variants!r} from")
        have = f["variant"][()]
        variants = sorted(variants) if isinstance(variants, (set, frozenset)) else variants  # {0, 1}: not one object
        if np.size(variants) == 0:  # not an empty dataset
            raise ValueError(f"variants must name at least one variant (0 = the original, 1.. the variants), got {variants!r}")
        items = list(variants) if isinstance(variants, (list, tuple, range)) else np.atleast_1d(variants).tolist()
        if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) for v in items):  # True read as 1
            raise ValueError(f"variants must be whole numbers (0 = the original, 1.. the variants), got {variants!r}")
        missing = sorted(set(np.atleast_1d(variants).tolist()) - set(have.tolist()))
        if missing:
            raise ValueError(f"{self.path} holds no variant {missing} (it holds {sorted(set(have.tolist()))}; "
                             "0 is the original, written with --include-original)")
        return np.flatnonzero(np.isin(have, variants))

    def __len__(self) -> int:
        return self._n

    def _f(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():  # a forked worker opens its own handle (h5py is not fork-safe)
            inode = self._stat()
            f = open_for_reading(self.path)
            if inode != self._inode or f["images"].shape[0] != self._records:  # `genaug expand --overwrite` renamed a
                f.close()  # new file into place: its records are not the ones counted (and selected) here
                raise RuntimeError(f"{self.path} was replaced or rewritten since this HDF5FaceDataset read it "
                                   f"({self._records} records); create a new HDF5FaceDataset to read the file now there")
            self._file, self._pid = f, os.getpid()
        return self._file

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None  # each worker opens its own handle
        return state

    def _label(self, f: h5py.File, row: int, i: int) -> int:
        """Record ``row``'s label as an int; a float one that is not a whole number (4.5, NaN) is an error, not
        truncated (as :class:`~genaug.expand.sources.HDF5Source` refuses such labels when expanding)."""
        value = f[self._label_key][row]
        value = value[0] if np.ndim(value) == 1 else value  # ((N, 1): a column)
        if not_class_index(value).any():
            raise self._not_a_class(row, i, value)
        return int(value)

    def _not_a_class(self, row: int, i: int, value: Any, more: str = "") -> ValueError:
        """The error naming item ``i``'s (record ``row``'s) label ``value``, which is no whole class index."""
        item = f"item {i} (record {row} of the file)" if row != i else f"record {row}"
        return ValueError(f"{self.path}: '{self._label_key}' of {item} is {np.asarray(value).tolist()!r}, "
                          f"not a whole class index (-1: none){more}")

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
        if self._encoded:  # one image file's bytes: decoded (a row that is none is named in the error)
            image = np.asarray(decode_row(image, f"{self.path}: images[{row}]").convert("RGB"))
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

    def __enter__(self) -> "HDF5FaceDataset":
        """``with HDF5FaceDataset(path) as ds:`` closes this process's handle at the end, as ``h5py.File`` does (a later
        item opens it again)."""
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
