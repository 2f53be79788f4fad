"""Expansion sources: a folder of images (flat or ImageFolder ``class/xxx.jpg``) or an HDF5 file
with ``images`` (N,H,W[,C]) uint8 and optional ``labels``. Each gives paths, labels, decoded
images and a fingerprint of its listing (part of an expansion's run key).
"""
from __future__ import annotations

import hashlib
import threading
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from PIL import Image

from ..io import IMAGE_EXTS, decode_row, encoded_rows, list_images, open_photo, printable
from .hdf5 import label_key, names_attr, not_class_index, one_label_each


class ExpandError(ValueError):
    """A clear, user-facing problem with an expansion (bad source, settings, resume mismatch)."""


def to_channels(arr: np.ndarray, channels: int) -> np.ndarray:
    """HW / HWC uint8 -> HWC uint8 with ``channels`` channels."""
    if arr.ndim == 3 and arr.shape[2] == channels:
        return np.ascontiguousarray(arr)
    img = Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    out = np.array(img.convert("RGB" if channels == 3 else "L"))
    return out[..., None] if out.ndim == 2 else out


class FolderSource:
    """A flat folder of images, or ImageFolder ``class/xxx.jpg`` (classes sorted -> labels)."""

    kind = "folder"

    def __init__(self, root: str | Path, skip: Path | None = None):
        self.root = Path(root)
        try:
            files = sorted(p.relative_to(self.root).as_posix()  # a broken link too: skipped and listed as unreadable
                           for p in list_images(self.root, "source folder", broken_links=True))
        except ValueError as e:
            raise ExpandError(str(e)) from None
        nested = [f for f in files if "/" in f]
        if nested and len(nested) != len(files):
            top = [f for f in files if "/" not in f][:3]
            raise ExpandError(
                f"{self.root}: mixes images at the top level ({top}…) with class folders; "
                "use a flat folder or an ImageFolder layout (class/xxx.jpg)"
            )
        # every class folder numbered, as torchvision's ImageFolder numbers them (a folder without images too:
        # dropping it would shift the labels of the classes after it against the user's ImageFolder)
        # ``skip``: an expansion's own parts folder when OUT is inside the source (not a class: a resume would renumber)
        folders = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
                         and not (skip is not None and p.name == skip.name and p.parent.resolve() == skip.parent.resolve())) if nested else []
        empty = sorted(set(folders) - {f.split("/", 1)[0] for f in nested})
        if empty:
            warnings.warn(f"{self.root}: class folder(s) {empty[:5]} hold no images; they keep their labels "
                          "(as torchvision's ImageFolder(allow_empty=True) numbers them)", UserWarning, stacklevel=3)
        self.class_names = folders
        cls = {c: i for i, c in enumerate(self.class_names)}
        self.paths = files
        self.labels = np.array([cls[f.split("/", 1)[0]] if "/" in f else -1 for f in files], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)

    def path(self, i: int) -> str:
        return printable(self.paths[i])

    def label(self, i: int) -> int:
        return int(self.labels[i])

    def load(self, i: int, channels: int) -> np.ndarray:
        im = open_photo(self.root / self.paths[i])  # upright by EXIF, 16-bit grey scaled
        return to_channels(np.array(im.convert("RGB" if channels == 3 else "L")), channels)

    def close(self) -> None:
        """Nothing to release (files are opened per image)."""

    def fingerprint(self) -> dict[str, Any]:
        """Paths, labels, sizes and modification times: an edited or replaced file changes it."""
        h = hashlib.sha256()
        for p, l in zip(self.paths, self.labels):
            path = self.root / p
            st = path.stat() if path.exists() else path.lstat()  # a broken link: skipped as unreadable when loaded
            h.update(f"{p}\t{l}\t{st.st_size}\t{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        return {"kind": self.kind, "count": len(self), "listing_sha256": h.hexdigest()[:16]}


class HDF5Source:
    """An HDF5 file with ``images`` (N,H,W[,C]) uint8 and optional ``label`` or ``labels`` (N,) or (N, 1)
    (:func:`~genaug.expand.hdf5.label_key`, :func:`~genaug.expand.hdf5.one_label_each`)."""

    kind = "hdf5"

    def __init__(self, path: str | Path):
        self.root = Path(path)
        self._file: h5py.File | None = None
        self._images: h5py.Dataset | None = None
        self._lock = threading.Lock()
        try:
            with h5py.File(self.root, "r") as f:
                if "images" not in f:
                    raise ExpandError(f"{self.root}: HDF5 source needs an 'images' dataset (N,H,W,C) uint8")
                ds = f["images"]
                if not isinstance(ds, h5py.Dataset):  # a group of per-image datasets: no .dtype (an AttributeError)
                    raise ExpandError(f"{self.root}: 'images' is a group ({len(ds)} members), not one (N,H,W,C) uint8 dataset")
                self.encoded = encoded_rows(ds)  # (N,) image files' bytes, as h5py users keep JPEGs
                if not self.encoded and (ds.dtype != np.uint8 or ds.ndim not in (3, 4)):
                    raise ExpandError(f"{self.root}: 'images' must be uint8 (N,H,W) or (N,H,W,C), or (N,) encoded image "
                                      f"files (JPEG / PNG bytes: h5py.vlen_dtype(np.uint8) or np.void), got {ds.dtype} {ds.shape}")
                if ds.ndim == 4 and ds.shape[3] not in (1, 3, 4):
                    hint = " (channels first? store (N,H,W,C): np.moveaxis(images, 1, -1))" if ds.shape[1] in (1, 3, 4) else ""
                    raise ExpandError(f"{self.root}: 'images' (N,H,W,C) must have 1, 3 or 4 channels last, got shape {ds.shape}{hint}")
                self.shape = ds.shape
                try:
                    key = label_key(f, self.root)
                except ValueError as e:
                    raise ExpandError(str(e)) from None
                raw = np.asarray(f[key][()]) if key else np.full(ds.shape[0], -1, np.int64)
                bad = raw[not_class_index(raw)]  # a cast would make 4.5 -> 4, NaN -> -2**63
                if bad.size:
                    names = " (class names: store their indices, np.unique(names, return_inverse=True)[1], and the names " \
                            "as the file's class_names attribute)" if raw.dtype.kind in "SUO" else ""
                    raise ExpandError(f"{self.root}: '{key}' must hold whole class indices (-1: none), got {raw.dtype} "
                                      f"values such as {bad[:3].tolist()}{names}")
                if key:
                    try:
                        one_label_each(raw.shape, ds.shape[0], key, self.root)
                    except ValueError as e:
                        raise ExpandError(str(e)) from None
                self.labels = raw.reshape(-1).astype(np.int64)  # ((N, 1): a column)
                self.class_names = names_attr(f, "class_names", self.root)
        except (OSError, TypeError, ValueError) as e:
            if isinstance(e, ExpandError):
                raise
            raise ExpandError(f"{self.root}: cannot read HDF5 source ({e})") from None

    def __len__(self) -> int:
        return int(self.shape[0])

    def path(self, i: int) -> str:
        return f"images[{i}]"

    def label(self, i: int) -> int:
        return int(self.labels[i])

    def load(self, i: int, channels: int) -> np.ndarray:
        with self._lock:  # the loading threads open one handle
            if self._images is None:
                # the dataset kept open, with room for the chunks a row spans: reopened per image it lost its chunk
                # cache, and a compressed chunk of 100 images was inflated once for each of them (~40x slower)
                self._file = h5py.File(self.root, "r", rdcc_nbytes=64 << 20, rdcc_nslots=10007)
                self._images = self._file["images"]
            images = self._images
        if self.encoded:  # one image file's bytes, decoded as a file of the folder source is
            return to_channels(np.array(decode_row(images[i]).convert("RGB" if channels == 3 else "L")), channels)
        return to_channels(images[i], channels)

    def close(self) -> None:
        """Close the file handle opened by :meth:`load` (reopened when needed)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = self._images = None

    def fingerprint(self) -> dict[str, Any]:
        """Shape, labels, file size and modification time: a rewritten file changes it."""
        st = self.root.stat()
        return {"kind": self.kind, "count": len(self), "shape": list(self.shape),
                "labels_sha256": hashlib.sha256(self.labels.tobytes()).hexdigest()[:16],
                "file": [st.st_size, st.st_mtime_ns]}


Source = FolderSource | HDF5Source


def open_source(source: str | Path, skip: Path | None = None) -> Source:
    """The source at ``source`` (folder or HDF5 file; ``skip``: a folder in it that is not a class); ExpandError
    when missing, empty or unreadable."""
    if not str(source).strip():  # Path("") is "." : the current folder would be expanded
        raise ExpandError("source path is empty; give a folder of images or an HDF5 file")
    p = Path(source)
    if not p.exists():
        pattern = any(ch in str(source) for ch in "*?[")  # a quoted glob, as `genaug augment` takes
        raise ExpandError(f"source not found: {p}" + (" (SOURCE is one folder or HDF5 file, not a glob pattern: put the "
                                                       "images in a folder and give that)" if pattern else ""))
    if p.is_dir():
        src: Source = FolderSource(p, skip)
    elif h5py.is_hdf5(p):
        src = HDF5Source(p)
    else:
        raise ExpandError(f"source {p} is neither a folder of images nor an HDF5 file")
    if len(src) == 0:
        looked = f"looked for {', '.join(sorted(IMAGE_EXTS))}" if p.is_dir() else "its 'images' dataset has 0 rows"
        raise ExpandError(f"no images in {p} ({looked})")
    return src


