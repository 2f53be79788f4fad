"""Files: image discovery and reading, atomic writes, checksums and versioned JSON configs.

Every file genaug writes (bundles, evaluators, latent caches, HDF5 parts, manifests, checkpoints)
goes through :func:`atomic_write`: a per-process temporary file beside the target, fsynced,
renamed over it, the folder fsynced — all or nothing on disk, and world-readable.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

# (".jfif" / ".jpe": JPEGs as browsers on Windows save them; ".avif": read by Pillow >= 11.3; ".heic" / ".heif", phone
# photos: read with pillow-heif installed; else each is named unreadable, with the reason, not left out unsaid)
HEIF_EXTS = frozenset({".heic", ".heif"})
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".bmp", ".gif", ".webp", ".avif", ".tif", ".tiff",
                        ".ppm", ".pgm"}) | HEIF_EXTS


def check_path(value: Any, name: str, what: str) -> Any:
    """``value`` as given when a file-system path (str or ``os.PathLike``); else a TypeError naming ``name`` and
    what it must be (``what``, e.g. "an HDF5 file's path")."""
    if not isinstance(value, (str, os.PathLike)):
        shown = " ".join(repr(value).split())  # (one line: a dataset's repr spans several)
        raise TypeError(f"{name} must be {what} (a str or Path), got {type(value).__name__} {shown:.80}")
    return value


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS and path.is_file()


def list_images(root: str | Path, what: str = "image folder", broken_links: bool = False) -> list[Path]:
    """Image files under ``root`` (recursively, linked folders followed, hidden files and folders left out; broken
    links named as images too with ``broken_links``, for a reader that reports them), sorted; a single image file
    gives ``[root]``. Raises FileNotFoundError / ValueError naming the problem."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() not in IMAGE_EXTS:
            raise ValueError(f"{root} is not an image file ({', '.join(sorted(IMAGE_EXTS))})")
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{what} not found: {root}")
    files = sorted(_walk_images(root, frozenset({os.path.realpath(root)}), broken_links))
    if not files:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_EXTS))}) found in {root}")
    return files


def _walk_images(folder: Path, above: frozenset[str], broken_links: bool) -> list[Path]:
    """The images below ``folder``; linked folders are followed (a class folder may be a link, as torchvision's
    ImageFolder reads it), except a link back to a folder ``above`` it (a loop)."""
    files = []
    try:
        entries = list(os.scandir(folder))
    except PermissionError:  # an unreadable folder is left out, as before
        return files
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(folder, entry.name)
        if entry.is_dir():
            real = os.path.realpath(path)
            if real not in above:
                files += _walk_images(path, above | {real}, broken_links)
        elif is_image_file(path) or (broken_links and entry.is_symlink() and path.suffix.lower() in IMAGE_EXTS):
            files.append(path)
    return files


def printable(name: str) -> str:
    """A file name as UTF-8 text: bytes that are not UTF-8 (which Python keeps as surrogates, and which HDF5's
    UTF-8 strings refuse) written as ``\\xNN``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def open_photo(path: str | Path | Any) -> Any:
    """A photo file (or a binary file object) as a loaded PIL image, as a viewer shows it: turned upright by its EXIF
    orientation (phone photos), and a 16-bit or float grey image scaled to 8 bits ("L"), not clipped."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from .images import eight_bit

    try:
        im = Image.open(path)
    except UnidentifiedImageError:
        if not isinstance(path, (str, Path)) or Path(path).suffix.lower() not in HEIF_EXTS:  # (a file object: no suffix)
            raise
        _open_heif()
        im = Image.open(path)
    with im:
        im.load()
        im = ImageOps.exif_transpose(im)
    return eight_bit(im)


def encoded_rows(dataset: Any) -> bool:
    """An HDF5 ``images`` dataset holds one encoded image file per row (JPEG / PNG bytes, as h5py users keep large sets:
    ``h5py.vlen_dtype(np.uint8)`` or ``np.void`` rows) rather than pixel arrays."""
    import h5py
    import numpy as np

    opaque = dataset.dtype.kind == "V" and dataset.dtype.names is None  # (not a compound row of named fields)
    return dataset.ndim == 1 and (h5py.check_vlen_dtype(dataset.dtype) == np.uint8 or opaque)


def decode_row(row: Any, where: str = "the row") -> Any:
    """One such row (a uint8 array or ``np.void``) as a loaded PIL image, read as :func:`open_photo` reads a file. One
    PIL cannot read raises its ``UnidentifiedImageError`` naming ``where`` and the row's size and first bytes (PIL's own
    named the ``BytesIO`` object's address: another each run, in an expanded file's ``skipped/reason`` too)."""
    import io

    from PIL import UnidentifiedImageError

    data = row.tobytes()
    try:
        return open_photo(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UnidentifiedImageError(f"cannot identify image file in {where} ({len(data)} bytes, starting {data[:8]!r}; "
                                     "JPEG / PNG bytes expected)") from None


def _open_heif() -> None:
    """Let PIL open HEIC / HEIF photos (an iPhone's) through pillow-heif; without it, a clear error to skip the file by."""
    try:
        import pillow_heif
    except ImportError:
        from PIL import UnidentifiedImageError

        raise UnidentifiedImageError("HEIC / HEIF photos need the pillow-heif package (pip install pillow-heif)") from None
    pillow_heif.register_heif_opener()


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: str | Path) -> Path:
    """The per-process temporary name beside ``path`` that :func:`commit_file` renames."""
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the :func:`temp_path` files of ``path`` whose process is gone (a killed run's leftovers);
    returns them. Temporaries of a live process (or, off POSIX, of any other process) are kept."""
    path = Path(path)
    gone = []
    for tmp in path.parent.glob(f"{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 1 : -len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            gone.append(tmp)
    return gone


def _process_alive(pid: int) -> bool:
    if os.name != "posix":  # (os.kill(pid, 0) would end the process on Windows)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def commit_file(tmp: Path, path: str | Path) -> Path:
    """Make the finished ``tmp`` become ``path``: the mode a new file gets under the process's umask
    (a temporary file is private), fsync, rename, fsync the folder."""
    path = Path(path)
    tmp.chmod(0o666 & ~_umask())
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(path.parent)
    return path


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on :func:`temp_path`, then :func:`commit_file` it (all or nothing)."""
    tmp = temp_path(path)
    try:
        write(tmp)
        return commit_file(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: str | Path, data: Any, indent: int = 2, sort_keys: bool = False) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n")


def write_safetensors(tensors: dict[str, Any], path: str | Path, metadata: dict[str, str]) -> Path:
    """Write a safetensors file atomically and world-readable."""
    from safetensors.torch import save_file

    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_versioned_json(path: Path, fmt: str, version: int, error: type[Exception], what: str) -> dict[str, Any]:
    """Parse a JSON config and check its ``format`` / ``format_version``; ``error`` names the problem."""
    try:
        cfg = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: not valid JSON ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != fmt:
        raise error(f"{path}: not a {what} config (format must be {fmt!r})")
    if cfg.get("format_version") != version:
        raise error(f"{path}: {what} format version {cfg.get('format_version')!r} is not supported "
                    f"(this genaug reads version {version})")
    return cfg


def files_key(files: list[Path], root: Path, *settings: Any) -> str:
    """A cache key over the content of every file (relative path and bytes) and ``settings``:
    it changes whenever any file is edited, replaced, added, removed or reordered."""
    h = hashlib.blake2b(json.dumps([str(s) for s in settings]).encode(), digest_size=12)
    for p in files:
        h.update(str(Path(p).relative_to(root)).encode() + b"\0")
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def save_npz_atomic(path: str | Path, **arrays: Any) -> Path:
    """``numpy.savez`` written atomically (parallel ranks may write the same cache at once)."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, write)
