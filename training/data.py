"""Training data: a folder of face images (flat or ImageFolder) held in memory as uint8 NCHW.

Images of any size are cut to a square and resized to the model size: the face box of the framing the
model records when a picture is in its reference frame (CelebA's 178x218), else the centred square. Decoded arrays
are cached in ``~/.cache/genaug`` (keyed by the content of every file and the size) so a resumed
run starts at once. An optional CSV of attributes (CelebA style: ``filename,...,Attr,...`` with -1/+1
values) provides labels for attribute-bound codes; an empty cell is an unknown label (held as 0), so faces
without labels (e.g. another face set) can train alongside labelled ones.

A folder of people (``<identity>/<image>``: :func:`load_identity_folder`, an :class:`IdentityFolder` labelled by
person, CelebA-framed) feeds the measuring nets, the identity student and the benchmarks.
"""
from __future__ import annotations

import csv
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from tqdm.auto import tqdm

from genaug.faces.framing import CELEBA_FRAMING, face_box
from genaug.io import files_key, list_images, open_photo, save_npz_atomic


def load_face(path: str | Path, size: int, channels: int = 3, framing: dict | None = None) -> np.ndarray:
    """One image as uint8 (size, size, channels): the face box of ``framing`` (see
    :func:`genaug.engine.render.face_box`; None = the centred square), bicubic resize."""
    with open_photo(path) as im:  # upright by EXIF, 16-bit / float grey scaled to 8 bits
        im = im.convert("RGB" if channels == 3 else "L")
        box = face_box(im.height, im.width, framing)
        im = im.crop(box)
        if im.size != (size, size):
            im = im.resize((size, size), Image.BICUBIC)
        arr = np.asarray(im, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


@dataclass
class FaceData:
    """In-memory faces (uint8, N x C x S x S), optional attribute labels (N x A, -1/+1, 0 = unknown) and names."""

    images: Tensor
    files: list[str]
    attributes: Tensor | None = None
    attribute_names: list[str] | None = None
    not_labels: dict[str, str] = field(default_factory=dict)  # CSV column -> its first value other than -1/1/0/empty

    def why_not(self, name: str) -> str:
        """Why attribute ``name`` is not among the labels: a column holding other values, or none of that name."""
        if name in self.not_labels:
            return not_a_label(name, self.not_labels[name])
        return f"the attribute file has no column {name!r} (its attributes: {self.attribute_names})"

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, idx: Tensor, device: torch.device) -> Tensor:
        """Float batch in [-1, 1] on ``device``."""
        return self.images[idx].to(device, non_blocking=True).float().div_(127.5).sub_(1)

    def attribute_index(self, name: str) -> int:
        if not self.attribute_names or name not in self.attribute_names:
            if name in self.not_labels:
                raise ValueError(f"attribute {name!r}: {self.why_not(name)}")
            raise ValueError(f"attribute {name!r} not in the attribute file (has {self.attribute_names})")
        return self.attribute_names.index(name)

    def subset(self, idx: Tensor | list[int]) -> "FaceData":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return FaceData(
            self.images[idx], [self.files[i] for i in idx.tolist()],
            None if self.attributes is None else self.attributes[idx], self.attribute_names, self.not_labels,
        )


def not_a_label(name: str, where: str) -> str:
    """Why column ``name`` of an attribute file is no attribute: ``where`` is its first other value."""
    return (f"its column {name!r} in the attribute file holds values other than labels ({where}; a label is -1, 1, "
            "0 (read as -1) or empty (unknown))")


def _label(cell: str) -> float | None:
    """An attribute cell as a label: -1, 1 or 0 (also written ``1.0``, ``+1``), nan when empty; None otherwise."""
    cell = cell.strip()
    if not cell:
        return float("nan")
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if v in (-1.0, 0.0, 1.0) else None


_FAST = {"-1": -1.0, "1": 1.0, "0": 0.0, "": float("nan")}  # the usual cells, without parsing


def _read_attributes(csv_path: Path, files: list[Path], root: Path,
                     not_labels: dict[str, str] | None = None) -> tuple[Tensor, list[str]]:
    """Labels of ``files`` from ``csv_path`` and the names of its attribute columns. A column is an
    attribute when every cell is -1, 1 or 0 (0 reads as -1) or empty (unknown); the other columns
    (identities, ages, a mistyped label) go to ``not_labels`` with their first other value, so a code
    bound to one can be told why."""
    with open(csv_path, newline="") as f:
        rows = [(n, r) for n, r in enumerate(csv.reader(f), 1) if any(c.strip() for c in r)]  # blank lines skipped
    if not rows:
        raise ValueError(f"{csv_path}: empty attribute file (expected a header 'filename,Attr,...' and one row per image)")
    header, body = rows[0][1], rows[1:]
    short = [n for n, r in body if len(r) != len(header)]
    if short:
        raise ValueError(f"{csv_path}: line {short[0]} has a different number of cells than the header's {len(header)}"
                         f"{f' ({len(short)} such lines)' if len(short) > 1 else ''}")
    cols, values = [], {}
    for i in range(1, len(header)):
        labels = [_FAST.get(r[i]) if r[i] in _FAST else _label(r[i]) for _, r in body]
        bad = next((k for k, v in enumerate(labels) if v is None), None)
        if bad is not None:
            if not_labels is not None:
                not_labels[header[i]] = f"line {body[bad][0]}: {body[bad][1][i]!r}"
        elif any(v == v for v in labels):  # not every cell empty
            cols.append(i)
            values[i] = labels
    table = {r[0]: [values[i][k] for i in cols] for k, (_, r) in enumerate(body)}
    out = []
    for p in files:
        key = p.name if p.name in table else str(p.relative_to(root))
        if key not in table:
            raise ValueError(f"{csv_path}: no attribute row for image {key}")
        out.append(table[key])
    t = torch.tensor(out, dtype=torch.float32).reshape(len(out), len(cols))
    t[t == 0] = -1
    t[t.isnan()] = 0  # unknown: bound codes learn nothing from this face's missing labels
    return t, [header[i] for i in cols]


def _outside_run_folders(files: list[Path], root: Path, exclude: str | Path | None) -> list[Path]:
    """``files`` less those in a training run folder below ``root`` (``exclude`` or one holding ``train_config.json``);
    each folder is looked at once."""
    skip = Path(exclude).resolve() if exclude is not None else None
    run: dict[Path, bool] = {}

    def is_run(folder: Path) -> bool:
        if folder not in run:
            run[folder] = (folder / "train_config.json").is_file() or (skip is not None and folder.resolve() == skip)
        return run[folder]

    return [f for f in files if not any(is_run(root / rel) for rel in f.relative_to(root).parents[:-1])]


def load_faces(
    root: str | Path,
    size: int,
    channels: int = 3,
    attributes: str | Path | None = "auto",
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    exclude: str | Path | None = None,
    framing: dict | None = None,
) -> FaceData:
    """Load (and cache) every face under ``root``. ``attributes="auto"`` uses ``root/attributes.csv``
    when present; ``None`` or ``""``: no labels. Unreadable files are skipped with a warning naming them.
    Training run folders inside ``root`` (``exclude``, or any folder with a ``train_config.json``: their
    sample grids are no faces) are left out. ``framing``: the framing the model records (e.g. CelebA's):
    a picture in its reference frame is cut to its face box, as augmentation cuts it; any other picture
    (and every picture when None) to its centred square."""
    root = Path(root)
    files = _outside_run_folders(list_images(root, "image folder"), root, exclude)
    if not files:
        raise ValueError(f"no images found in {root} outside training run folders")
    if limit:
        files = files[:limit]
    key = files_key(files, root, "faces", size, channels, *([framing] if framing else []))
    cache = Path(cache_dir or os.environ.get("GENAUG_CACHE", Path.home() / ".cache" / "genaug")) / f"faces-{key}.npz"
    if cache.exists():  # paths kept relative to the folder: the cache serves any spelling of it (relative, absolute)
        z = np.load(cache, allow_pickle=False)
        arr, good = z["images"], [root / str(s) for s in z["files"]]
    else:
        arrays, good = [], []
        for p in tqdm(files, desc=f"decoding {root.name}", unit="img", leave=False):
            try:
                arrays.append(load_face(p, size, channels, framing))
                good.append(p)
            except (UnidentifiedImageError, OSError, ValueError) as e:
                tqdm.write(f"warning: skipped unreadable image {p}: {e}", file=sys.stderr)
        if not arrays:
            raise ValueError(f"no readable images in {root} ({len(files)} file(s) could not be decoded)")
        arr = np.stack(arrays)
        cache.parent.mkdir(parents=True, exist_ok=True)
        save_npz_atomic(cache, images=arr, files=np.array([str(p.relative_to(root)) for p in good]))
    images = torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()
    attrs = names = None
    not_labels: dict[str, str] = {}
    csv_path = root / "attributes.csv" if attributes == "auto" else (Path(attributes) if attributes else None)
    if csv_path is not None and csv_path.exists():
        attrs, names = _read_attributes(csv_path, good, root, not_labels)
    elif attributes not in ("auto", None, ""):
        raise FileNotFoundError(f"attribute file not found: {csv_path}")
    return FaceData(images, [str(p) for p in good], attrs, names, not_labels)


def load_framed_face(path: str | Path, size: int = 64) -> np.ndarray:
    """One face as uint8 (size, size, 3), framed like the bundles (genaug.faces.framing.CELEBA_FRAMING:
    CelebA-shaped frames use the centre box 35,55,143,163, other images a centre square)."""
    return load_face(path, size, 3, CELEBA_FRAMING)


@dataclass
class IdentityFolder:
    """An ImageFolder of identities held in memory: uint8 NCHW images, labels, relative paths, splits."""

    images: Tensor
    labels: Tensor
    paths: list[str]
    classes: list[str]
    splits: list[str] | None  # "train"/"val"/"test" per image when the folder has splits.csv

    def where(self, split: str) -> Tensor:
        if self.splits is None:
            raise ValueError("this folder has no splits")
        return torch.tensor([i for i, s in enumerate(self.splits) if s == split], dtype=torch.long)


def load_identity_folder(root: str | Path, size: int = 64, cache_dir: str | Path | None = None) -> IdentityFolder:
    """Load ``root/<identity>/<image>`` (cached as npz in ``~/.cache/genaug``); reads
    ``root/splits.csv`` (path, ..., split) when present."""
    root = Path(root)
    files = [p for p in list_images(root) if p.parent != root]
    if not files:
        raise ValueError(f"{root} is not an ImageFolder (<identity>/<image> sub-folders)")
    rel = [str(p.relative_to(root)) for p in files]
    key = files_key(files, root, "idfolder", size)
    cache = Path(cache_dir or os.environ.get("GENAUG_CACHE", Path.home() / ".cache" / "genaug")) / f"idfolder-{key}.npz"
    if cache.exists():
        arr = np.load(cache, allow_pickle=False)["images"]
    else:
        arr = np.stack([load_framed_face(p, size) for p in files])
        cache.parent.mkdir(parents=True, exist_ok=True)
        save_npz_atomic(cache, images=arr)
    classes = sorted({p.parent.name for p in files})
    idx = {c: i for i, c in enumerate(classes)}
    labels = torch.tensor([idx[p.parent.name] for p in files])
    splits = None
    sp = root / "splits.csv"
    if sp.exists():
        with open(sp, newline="") as f:
            table = {r["path"]: r["split"] for r in csv.DictReader(f)}
        splits = [table.get(r, "train") for r in rel]
    return IdentityFolder(torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous(), labels, rel, classes, splits)


def split_holdout(data: FaceData, n_holdout: int, seed: int = 0) -> tuple[FaceData, FaceData]:
    """Deterministic train / held-out split: ``n_holdout`` faces (at most a fifth of them, at least one) held out."""
    if n_holdout < 0:
        raise ValueError(f"--holdout must be >= 0, got {n_holdout}")
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    asked = n_holdout
    n_holdout = min(n_holdout, max(len(data) // 5, 1 if len(data) >= 2 else 0))  # a fifth at most; one of a few faces
    if n_holdout == 0:  # the held-out metrics and sample grid need faces the run did not train on
        raise ValueError(f"no faces held out (--holdout {asked} of {len(data)} faces): give --holdout >= 1 and at least 2 faces")
    return data.subset(perm[n_holdout:]), data.subset(perm[:n_holdout])


def faces_record(data: FaceData, held: FaceData, root: str | Path) -> dict[str, object]:
    """What a run folder records of its faces (``faces.json``, checked on resume): their count, a hash of their sorted
    file names (relative to ``root``) and the held-out faces' names. The split is a permutation of the faces
    loaded, so adding, removing or renaming any face reshuffles it."""
    root = Path(root)

    def rel(f: str) -> str:
        p = Path(f)
        return (p.relative_to(root) if p.is_relative_to(root) else p).as_posix()

    names = sorted(rel(f) for f in data.files)
    return {"faces": len(names), "files_sha256": hashlib.sha256("\n".join(names).encode()).hexdigest(),
            "holdout": sorted(rel(f) for f in held.files)}
