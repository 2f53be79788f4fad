"""Offline dataset expansion: ``genaug expand SOURCE OUT.h5`` and :func:`expand_to_hdf5`.

Pipeline: the source (image folder, ImageFolder or HDF5) is cut into fixed blocks of
``block_size`` source indices. Each block is decoded by a thread pool (one batch ahead),
framed, inverted and rendered in batches on the device, and streamed by a background writer
thread (bounded queue) into its own part file ``OUT.h5.parts/part-<block>.h5`` (written as a
temp file, fsynced, atomically renamed). Finished parts are skipped on resume; the final step
merges the parts in order into ``OUT.h5.tmp`` (compressed chunks copied as they are) and
atomically renames it to ``OUT.h5``. Each record's randomness comes from (seed, source index)
only and a block is always batched the same way, so a resumed, sharded or interrupted run
gives the same bytes as a single uninterrupted one. File layout: :mod:`genaug.hdf5`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import h5py
import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from . import __version__
from .bundle import Bundle, BundleError
from .render import paste_back, to_model_frame
from .hdf5 import FORMAT, LAYOUT_VERSION, RECORD_FIELDS, compression_args, create_records, read_skipped, write_skipped
from .sweep import Edit, apply_edits, random_edits

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
MANIFEST = "manifest.json"


class ExpandError(ValueError):
    """A clear, user-facing problem with an expansion (bad source, settings, resume mismatch)."""


# --------------------------------------------------------------------------------- settings
@dataclass
class ExpandSettings:
    """Everything that changes the records (part of the run key; a resume must match it)."""

    variants: int = 8
    include_original: bool = False
    size: str = "model"  # "model" | "source" | "WxH"
    strength: float = 1.0
    mode: str = "delta"  # "delta" | "regenerate"
    codes: list[str] | None = None  # codes to edit (default: all)
    refine_steps: int = 20
    refine_loss: str = "mse+msssim"
    framing: str = "auto"
    batch_size: int = 64
    block_size: int = 256

    def validate(self) -> None:
        if self.variants < 1:
            raise ExpandError(f"--variants must be >= 1, got {self.variants}")
        if self.batch_size < 1 or self.block_size < 1:
            raise ExpandError("--batch-size and --block-size must be >= 1")
        if self.mode not in ("delta", "regenerate"):
            raise ExpandError(f"--mode must be 'delta' or 'regenerate', got {self.mode!r}")
        if self.size not in ("model", "source"):
            parse_size(self.size)

    @property
    def rows_per_source(self) -> int:
        return self.variants + int(self.include_original)


def parse_size(size: str) -> tuple[int, int]:
    """``"WxH"`` -> (W, H)."""
    try:
        w, h = (int(v) for v in size.lower().split("x"))
        if w < 1 or h < 1:
            raise ValueError
    except ValueError:
        raise ExpandError(f"--size must be 'model', 'source' or WIDTHxHEIGHT like 178x218, got {size!r}") from None
    return w, h


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n); None -> torchrun's RANK/WORLD_SIZE, else (0, 1)."""
    if shard is None:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if isinstance(shard, tuple):
        i, n = shard
    else:
        try:
            i, n = (int(v) for v in str(shard).split("/"))
        except ValueError:
            raise ExpandError(f"--shard must look like i/n (e.g. 0/4), got {shard!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ExpandError(f"--shard i/n needs n >= 1 and 0 <= i < n, got {i}/{n}")
    return i, n


def sample_seed(seed: int, index: int) -> int:
    """The seed of one source image's randomness: a hash of (seed, source index) only."""
    digest = hashlib.blake2b(f"genaug-expand:{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


# ---------------------------------------------------------------------------------- sources
def _convert(arr: np.ndarray, channels: int) -> np.ndarray:
    """HW / HWC uint8 -> HWC uint8 with ``channels`` channels."""
    if arr.ndim == 3 and arr.shape[2] == channels:
        return np.ascontiguousarray(arr)
    img = Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    out = np.array(img.convert("RGB" if channels == 3 else "L"))
    return out[..., None] if out.ndim == 2 else out


class FolderSource:
    """A flat folder of images, or ImageFolder ``class/xxx.jpg`` (classes sorted -> labels)."""

    kind = "folder"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        files = sorted(
            (p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
             if p.suffix.lower() in IMAGE_EXTS and not any(s.startswith(".") for s in p.relative_to(self.root).parts)),
        )
        nested = [f for f in files if "/" in f]
        if nested and len(nested) != len(files):
            top = [f for f in files if "/" not in f][:3]
            raise ExpandError(
                f"{self.root}: mixes images at the top level ({top}…) with class folders; "
                "use a flat folder or an ImageFolder layout (class/xxx.jpg)"
            )
        self.class_names = sorted({f.split("/", 1)[0] for f in nested})
        cls = {c: i for i, c in enumerate(self.class_names)}
        self.paths = files
        self.labels = np.array([cls[f.split("/", 1)[0]] if "/" in f else -1 for f in files], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)

    def path(self, i: int) -> str:
        return self.paths[i]

    def label(self, i: int) -> int:
        return int(self.labels[i])

    def load(self, i: int, channels: int) -> np.ndarray:
        with Image.open(self.root / self.paths[i]) as im:
            im.load()
            return _convert(np.array(im.convert("RGB" if channels == 3 else "L")), channels)

    def fingerprint(self) -> dict[str, Any]:
        h = hashlib.sha256("\n".join(f"{p}\t{l}" for p, l in zip(self.paths, self.labels)).encode())
        return {"kind": self.kind, "count": len(self), "listing_sha256": h.hexdigest()[:16]}


class HDF5Source:
    """An HDF5 file with ``images`` (N,H,W[,C]) uint8 and optional ``labels``/``label`` (N,)."""

    kind = "hdf5"

    def __init__(self, path: str | Path):
        self.root = Path(path)
        self._file: h5py.File | None = None
        try:
            with h5py.File(self.root, "r") as f:
                if "images" not in f:
                    raise ExpandError(f"{self.root}: HDF5 source needs an 'images' dataset (N,H,W,C) uint8")
                ds = f["images"]
                if ds.dtype != np.uint8 or ds.ndim not in (3, 4):
                    raise ExpandError(f"{self.root}: 'images' must be uint8 (N,H,W) or (N,H,W,C), got {ds.dtype} {ds.shape}")
                self.shape = ds.shape
                key = "labels" if "labels" in f else "label" if "label" in f else None
                self.labels = f[key][()].astype(np.int64) if key else np.full(ds.shape[0], -1, np.int64)
                names = f.attrs.get("class_names", "[]")
                self.class_names = list(json.loads(names)) if isinstance(names, str) else [
                    n.decode() if isinstance(n, bytes) else str(n) for n in names
                ]
        except OSError as e:
            raise ExpandError(f"{self.root}: cannot read HDF5 source ({e})") from None

    def __len__(self) -> int:
        return int(self.shape[0])

    def path(self, i: int) -> str:
        return f"images[{i}]"

    def label(self, i: int) -> int:
        return int(self.labels[i])

    def load(self, i: int, channels: int) -> np.ndarray:
        if self._file is None:
            self._file = h5py.File(self.root, "r")
        return _convert(self._file["images"][i], channels)

    def fingerprint(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": len(self), "shape": list(self.shape),
                "labels_sha256": hashlib.sha256(self.labels.tobytes()).hexdigest()[:16]}


Source = FolderSource | HDF5Source


def open_source(source: str | Path) -> Source:
    p = Path(source)
    if not p.exists():
        raise ExpandError(f"source not found: {p}")
    if p.is_dir():
        src: Source = FolderSource(p)
    elif h5py.is_hdf5(p):
        src = HDF5Source(p)
    else:
        raise ExpandError(f"source {p} is neither a folder of images nor an HDF5 file")
    if len(src) == 0:
        raise ExpandError(f"no images in {p} (looked for {', '.join(sorted(IMAGE_EXTS))})")
    return src


# ---------------------------------------------------------------------------------- backend
class _Backend:
    """Thin adapter over :class:`genaug.engine.Engine` and :mod:`genaug.render`: framing,
    batched inversion and rendering on the engine's device."""

    def __init__(self, bundle: str | Path | Bundle, device: str, s: ExpandSettings):
        from .engine import Engine

        self.s = s
        self.engine = Engine(
            bundle, device=device, refine_steps=s.refine_steps, refine_loss=s.refine_loss,
            batch_size=s.batch_size, mode=s.mode, strength=s.strength, framing=s.framing, cache_size=0,
        )
        self.bundle: Bundle = self.engine.bundle
        self.device = self.engine.device

    @property
    def image_size(self) -> int:
        return self.bundle.image_size

    def frame(self, img: np.ndarray) -> tuple[torch.Tensor, Any]:
        """HWC uint8 -> (CHW float in [-1, 1] at model size, FrameInfo)."""
        return to_model_frame(img, self.bundle, framing=self.s.framing)

    @staticmethod
    def paste(model_out: torch.Tensor, original: np.ndarray, info: Any) -> np.ndarray:
        """Model-size output pasted back into ``original`` -> HWC uint8 like ``original``."""
        return paste_back(model_out, original, info)

    def invert(self, x: torch.Tensor) -> Any:
        return self.engine.invert(x)

    def render(self, x: torch.Tensor, latent: torch.Tensor, edited: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        return self.engine.render(x, latent, edited, mode=self.s.mode, base=base)


def to_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """CHW float in [-1, 1] -> HWC uint8 (numpy uint8 passes through)."""
    if isinstance(x, np.ndarray):
        return x if x.dtype == np.uint8 else np.clip((x + 1) * 127.5, 0, 255).round().astype(np.uint8)
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


# ----------------------------------------------------------------------------------- writer
def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_replace(tmp: Path, final: Path) -> None:
    """fsync ``tmp``, rename it over ``final``, fsync the folder: all or nothing on disk."""
    _fsync(tmp)
    os.replace(tmp, final)
    _fsync(final.parent)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    _atomic_replace(tmp, path)


class _PartWriter(threading.Thread):
    """Background thread writing record batches into part files (bounded queue).

    Messages: ``("open", block)``, ``("rows", dict)``, ``("close", block, skipped)``, ``None`` (stop)."""

    def __init__(self, parts_dir: Path, shape: tuple[int, int, int], n_codes: int, compression: str | None,
                 attrs: dict[str, Any], queue_size: int = 8):
        super().__init__(daemon=True, name="genaug-expand-writer")
        self.parts_dir, self.shape, self.n_codes, self.compression, self.attrs = parts_dir, shape, n_codes, compression, attrs
        self.q: queue.Queue = queue.Queue(maxsize=queue_size)
        self.error: BaseException | None = None
        self.done_blocks: list[int] = []

    def put(self, msg: Any) -> None:
        while True:
            if self.error is not None:
                raise RuntimeError(f"HDF5 writer failed: {self.error!r}") from self.error
            try:
                self.q.put(msg, timeout=0.5)
                return
            except queue.Full:
                continue

    def run(self) -> None:
        f: h5py.File | None = None
        ds: dict[str, h5py.Dataset] = {}
        n, tmp = 0, None
        while True:
            msg = self.q.get()
            if msg is None:
                return
            if self.error is not None:
                continue  # drain after a failure; the producer raises
            try:
                if msg[0] == "open":
                    tmp = self.parts_dir / f"{part_name(msg[1])}.tmp{os.getpid()}"
                    f = h5py.File(tmp, "w")
                    ds, n = create_records(f, 0, self.shape, self.n_codes, self.compression, resizable=True), 0
                elif msg[0] == "rows":
                    rows = msg[1]
                    k = len(rows["score"])
                    for name in RECORD_FIELDS:
                        ds[name].resize(n + k, axis=0)
                        ds[name][n:n + k] = rows[name]
                    n += k
                else:
                    _, block, skipped = msg
                    assert f is not None and tmp is not None
                    write_skipped(f, skipped)
                    f.attrs.update({**self.attrs, "block": block, "n_records": n, "complete": True})
                    f.close()
                    f = None
                    _atomic_replace(tmp, self.parts_dir / part_name(block))
                    self.done_blocks.append(block)
            except BaseException as e:  # noqa: BLE001 - re-raised in the producer
                self.error = e
                if f is not None:
                    f.close()


def part_name(block: int) -> str:
    return f"part-{block:06d}.h5"


# ------------------------------------------------------------------------------------- run
@dataclass
class ExpandResult:
    """What a call did: the merged file (None for a shard that does not merge), counts, speed."""

    path: Path | None
    n_records: int
    skipped: list[tuple[int, str, str]] = field(default_factory=list)
    blocks_done: int = 0  # blocks expanded by this call
    blocks_total: int = 0
    seconds: float = 0.0
    images_per_s: float = 0.0  # records rendered per second by this call


@dataclass
class _Job:
    src: Source
    backend: _Backend
    s: ExpandSettings
    seed: int
    out_hw: tuple[int, int] | None  # fixed output (H, W) for --size source|WxH, None = model size
    resize: bool  # resize sources to out_hw (WxH) rather than skip mismatches (source)
    channels: int
    code_names: list[str]

    def load(self, i: int) -> tuple[np.ndarray | None, str]:
        try:
            img = self.src.load(i, self.channels)
        except Exception as e:  # noqa: BLE001 - every failure is reported, never silent
            return None, f"{type(e).__name__}: {e}"
        if self.out_hw is not None and img.shape[:2] != self.out_hw:
            if not self.resize:
                return None, (f"size {img.shape[1]}x{img.shape[0]} differs from the output size "
                              f"{self.out_hw[1]}x{self.out_hw[0]} (--size source); use --size WxH to resize")
            pil = Image.fromarray(img[..., 0] if self.channels == 1 else img).resize(self.out_hw[::-1], Image.BICUBIC)
            img = _convert(np.array(pil), self.channels)
        return img, ""

    def rows_for(self, idx: list[int], imgs: list[np.ndarray]) -> Iterator[dict[str, Any]]:
        """Invert one batch of source images and yield record batches (<= batch_size rows)."""
        s, be = self.s, self.backend
        framed = [be.frame(img) for img in imgs]
        x = torch.stack([t for t, _ in framed]).to(be.device)
        inv = be.invert(x)
        latent, recon = inv.latent, inv.recon
        score = inv.score.detach().float().cpu().numpy()
        plan: list[tuple[int, int, Edit | None]] = []  # (sample k, variant, edit)
        for k, i in enumerate(idx):
            g = torch.Generator().manual_seed(sample_seed(self.seed, i))
            edits = random_edits(be.bundle.spec, s.variants, g, codes=s.codes)
            plan += ([(k, 0, None)] if s.include_original else []) + [(k, v + 1, e) for v, e in enumerate(edits)]
        for c0 in range(0, len(plan), s.batch_size):
            chunk = plan[c0:c0 + s.batch_size]
            edited_rows = [j for j, (_, _, e) in enumerate(chunk) if e is not None]
            rendered: dict[int, torch.Tensor] = {}
            if edited_rows:
                ks = torch.tensor([chunk[j][0] for j in edited_rows], device=x.device)
                lat = latent[ks]
                new = apply_edits(lat, be.bundle.spec, [chunk[j][2] for j in edited_rows], s.strength)  # type: ignore[misc]
                out = be.render(x[ks], lat, new, recon[ks])
                rendered = {j: out[r] for r, j in enumerate(edited_rows)}
            images, codes = [], np.full((len(chunk), len(self.code_names)), np.nan, np.float32)
            for j, (k, _, e) in enumerate(chunk):
                if e is None:
                    images.append(imgs[k] if self.out_hw is not None else to_uint8(x[k]))
                else:
                    codes[j, e.code] = e.value
                    images.append(be.paste(rendered[j], imgs[k], framed[k][1]) if self.out_hw is not None
                                  else to_uint8(rendered[j]))
            yield {
                "images": np.stack(images),
                "label": np.array([self.src.label(idx[k]) for k, _, _ in chunk], np.int64),
                "source_index": np.array([idx[k] for k, _, _ in chunk], np.int64),
                "source_path": [self.src.path(idx[k]) for k, _, _ in chunk],
                "variant": np.array([v for _, v, _ in chunk], np.int16),
                "codes": codes,
                "score": score[[k for k, _, _ in chunk]].astype(np.float32),
            }


def _prefetched(pool: ThreadPoolExecutor, load: Callable[[int], Any], batches: Iterator[tuple[int, list[int]]]) -> Iterator[Any]:
    """Yield ``(block, indices, loaded)`` while the next batch decodes in the pool."""
    it = iter(batches)
    nxt = next(it, None)
    futs = [pool.submit(load, i) for i in nxt[1]] if nxt else []
    while nxt is not None:
        cur, cur_futs = nxt, futs
        nxt = next(it, None)
        futs = [pool.submit(load, i) for i in nxt[1]] if nxt else []
        yield cur[0], cur[1], [f.result() for f in cur_futs]


def _part_status(path: Path, run_key: str) -> str:
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


def _dist_init() -> Any:
    """torch.distributed (gloo) under torchrun for the barriers; None otherwise."""
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 or "MASTER_ADDR" not in os.environ:
        return None
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(days=1))
    return dist


def expand_to_hdf5(
    source: str | Path,
    out: str | Path,
    variants: int = 8,
    *,
    bundle: str | Path | Bundle = "default",
    include_original: bool = False,
    seed: int = 0,
    size: str = "model",
    strength: float = 1.0,
    mode: str = "delta",
    codes: list[str] | None = None,
    refine_steps: int = 20,
    refine_loss: str = "mse+msssim",
    framing: str = "auto",
    batch_size: int = 64,
    block_size: int = 256,
    compression: str = "lzf",
    device: str = "auto",
    workers: int = 4,
    shard: str | tuple[int, int] | None = None,
    merge: bool | None = None,
    merge_only: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    command: list[str] | None = None,
) -> ExpandResult:
    """Expand ``source`` (image folder, ImageFolder or HDF5) into ``out`` with ``variants``
    identity-preserving variants per image (see the module docs and :mod:`genaug.hdf5`).

    Resumable: call again with the same arguments after an interruption. ``shard="i/n"`` (or
    torchrun's RANK/WORLD_SIZE) expands blocks ``b % n == i`` only; ``merge`` (default: when
    not sharded; rank 0 under torchrun) merges all parts into ``out``; ``merge_only`` merges
    finished parts without expanding anything.
    """
    t0 = time.time()
    s = ExpandSettings(variants, include_original, size, strength, mode, list(codes) if codes else None,
                       refine_steps, refine_loss, framing, batch_size, block_size)
    s.validate()
    compression_args(compression)
    rank, world = parse_shard(shard)
    dist = _dist_init() if shard is None else None
    if merge is None:
        merge = world == 1 or (dist is not None and rank == 0)
    out = Path(out)
    parts_dir = out.with_name(out.name + ".parts")
    src = open_source(source)
    backend = _Backend(bundle, _rank_device(device, dist), s)
    b = backend.bundle
    code_names = b.spec.code_names
    if s.codes:
        for c in s.codes:
            try:
                b.spec.code_index(c)
            except KeyError as e:
                raise ExpandError(str(e)) from None
    key_info = {"bundle": b.identity, "seed": seed, "settings": asdict(s), "source": src.fingerprint(),
                "layout_version": LAYOUT_VERSION}
    run_key = hashlib.sha256(json.dumps(key_info, sort_keys=True).encode()).hexdigest()[:16]
    n_src = len(src)
    n_blocks = -(-n_src // s.block_size)
    say = lambda m: tqdm.write(m, file=sys.stderr)  # noqa: E731 - skip reports are always shown
    log = say if progress else (lambda m: None)

    # an existing output: finished (same run) or refuse
    if out.exists():
        same = False
        try:
            with h5py.File(out, "r") as f:
                same = f.attrs.get("run_key") == run_key
                n_out = f["images"].shape[0]
                skipped = read_skipped(f)
        except OSError:
            pass
        if same and not overwrite:
            if rank == 0 and parts_dir.exists():
                shutil.rmtree(parts_dir, ignore_errors=True)
            log(f"{out} is already complete ({n_out} records); nothing to do")
            return ExpandResult(out, n_out, skipped, 0, n_blocks, time.time() - t0)
        if not overwrite:
            raise ExpandError(f"{out} already exists (made by a different run or unreadable); pass --overwrite to replace it")
        if rank == 0:
            out.unlink()

    # manifest: bundle, seed, settings and source of the parts in OUT.h5.parts/
    manifest = {"run_key": run_key, **key_info, "bundle_name": b.name, "n_source": n_src, "n_blocks": n_blocks,
                "genaug_version": __version__}
    parts_dir.mkdir(parents=True, exist_ok=True)
    mpath = parts_dir / MANIFEST
    if mpath.exists():
        try:
            old = json.loads(mpath.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
        if old.get("run_key") != run_key and not overwrite:
            diff = [k for k in ("bundle", "seed", "settings", "source") if old.get(k) != key_info[k]]
            raise ExpandError(
                f"{parts_dir} holds parts of a different run ({', '.join(diff) or 'unreadable manifest'} differ: "
                f"{_describe_diff(old, key_info, diff)}); rerun with the original settings to resume, "
                "or pass --overwrite to discard them"
            )
    if rank == 0 or not mpath.exists():
        _write_json_atomic(mpath, manifest)
    if dist is not None:
        dist.barrier()

    # expand this shard's unfinished blocks
    todo = []
    for blk in range(rank, n_blocks, world):
        p = parts_dir / part_name(blk)
        if merge_only:
            continue
        for stale in parts_dir.glob(part_name(blk) + ".tmp*"):
            stale.unlink(missing_ok=True)
        st = _part_status(p, run_key)
        if st == "other" and not overwrite:
            raise ExpandError(f"{p} was made by a different run; pass --overwrite to discard it")
        if st in ("corrupt", "other"):
            p.unlink()
        if st != "ok":
            todo.append(blk)
    shape, out_hw, resize = _output_shape(src, backend, s)
    job = _Job(src, backend, s, seed, out_hw, resize, b.channels, code_names)
    attrs = {"run_key": run_key, "code_names": json.dumps(code_names)}
    rendered, skipped_now = 0, []
    if todo:
        writer = _PartWriter(parts_dir, shape, len(code_names), compression, attrs)
        writer.start()
        batches = ((blk, list(range(lo, min(lo + s.batch_size, hi))))
                   for blk in todo for hi in [min((blk + 1) * s.block_size, n_src)]
                   for lo in range(blk * s.block_size, hi, s.batch_size))
        n_todo_src = sum(min((blk + 1) * s.block_size, n_src) - blk * s.block_size for blk in todo)
        bar = tqdm(total=n_todo_src * s.rows_per_source, unit="img", desc=f"expand {out.name}"
                   + (f" [shard {rank}/{world}]" if world > 1 else ""), disable=not progress, smoothing=0.1)
        current, block_skipped = None, []
        try:
            with ThreadPoolExecutor(max(1, workers), thread_name_prefix="genaug-load") as pool:
                for blk, idx, loaded in _prefetched(pool, job.load, batches):
                    if blk != current:
                        if current is not None:
                            writer.put(("close", current, block_skipped))
                        writer.put(("open", blk))
                        current, block_skipped = blk, []
                    good = [(i, img) for i, (img, _) in zip(idx, loaded) if img is not None]
                    for i, (img, why) in zip(idx, loaded):
                        if img is None:
                            block_skipped.append((i, src.path(i), why))
                            skipped_now.append((i, src.path(i), why))
                            say(f"skipped {src.path(i)}: {why}")
                            bar.total -= s.rows_per_source
                    if good:
                        for rows in job.rows_for([i for i, _ in good], [im for _, im in good]):
                            writer.put(("rows", rows))
                            rendered += len(rows["score"])
                            bar.update(len(rows["score"]))
                if current is not None:
                    writer.put(("close", current, block_skipped))
            writer.put(None)
            writer.join()
            if writer.error is not None:
                raise RuntimeError(f"HDF5 writer failed: {writer.error!r}") from writer.error
        finally:
            bar.close()
            if writer.is_alive():
                writer.error = writer.error or RuntimeError("stopped")
                try:
                    writer.q.put_nowait(None)
                except queue.Full:
                    pass
    elapsed = time.time() - t0
    speed = rendered / elapsed if elapsed > 0 else 0.0

    if dist is not None:
        dist.barrier()
    if not merge:
        log(f"shard {rank}/{world}: {len(todo)} blocks expanded ({rendered} images, {speed:.1f} img/s); "
            "run the same command without --shard (or with --merge-only) to merge")
        _summarise_skipped(skipped_now, say)
        return ExpandResult(None, rendered, skipped_now, len(todo), n_blocks, elapsed, speed)
    missing = [blk for blk in range(n_blocks) if _part_status(parts_dir / part_name(blk), run_key) != "ok"]
    if missing:
        raise ExpandError(
            f"cannot merge: {len(missing)} of {n_blocks} blocks are not finished (e.g. {missing[:5]}); "
            "run the missing shards (or the same command without --shard) first"
        )
    file_attrs = {
        "format": FORMAT, "layout_version": LAYOUT_VERSION, "genaug_version": __version__, "run_key": run_key,
        "bundle_identity": b.identity, "bundle_name": b.name, "bundle_config": json.dumps(b.config()),
        "seed": seed, "settings": json.dumps({**asdict(s), "compression": compression}),
        "command": json.dumps(command if command is not None else sys.argv),
        "class_names": json.dumps(src.class_names), "code_names": json.dumps(code_names),
        "source": str(Path(source).resolve()), "source_kind": src.kind, "n_source": n_src,
    }
    n_rec, skipped = merge_parts(parts_dir, n_blocks, out, shape, len(code_names), compression, file_attrs, progress)
    shutil.rmtree(parts_dir, ignore_errors=True)
    log(f"wrote {out}: {n_rec} records from {n_src - len(skipped)} of {n_src} source images")
    _summarise_skipped(skipped, say)
    return ExpandResult(out, n_rec, skipped, len(todo), n_blocks, time.time() - t0, speed)


def _describe_diff(old: dict[str, Any], new: dict[str, Any], keys: list[str]) -> str:
    bits = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            sub = [f"{kk}: {a.get(kk)!r} -> {b.get(kk)!r}" for kk in sorted(set(a) | set(b)) if a.get(kk) != b.get(kk)]
            bits.append(f"{k} ({'; '.join(sub)})")
        else:
            bits.append(f"{k}: {a!r} -> {b!r}")
    return ", ".join(bits)


def _summarise_skipped(skipped: list[tuple[int, str, str]], log: Callable[[str], None]) -> None:
    if not skipped:
        return
    log(f"skipped {len(skipped)} unreadable source image(s) (listed in the file's 'skipped' group):")
    for _, p, why in skipped[:20]:
        log(f"  {p}: {why}")
    if len(skipped) > 20:
        log(f"  … and {len(skipped) - 20} more")


def _rank_device(device: str, dist: Any) -> str:
    if device == "auto" and dist is not None and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
    return device


def _output_shape(src: Source, be: _Backend, s: ExpandSettings) -> tuple[tuple[int, int, int], tuple[int, int] | None, bool]:
    """(H, W, C) of the records, the fixed source size (None for model size), resize flag."""
    c = be.bundle.channels
    if s.size == "model":
        return (be.image_size, be.image_size, c), None, False
    if s.size != "source":
        w, h = parse_size(s.size)
        return (h, w, c), (h, w), True
    for i in range(len(src)):  # the first readable image fixes the size
        try:
            h, w = src.load(i, c).shape[:2]
            return (h, w, c), (h, w), False
        except Exception:  # noqa: BLE001 - reported when its block is expanded
            continue
    raise ExpandError(f"no readable images in {src.root}")


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
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
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
    _atomic_replace(tmp, out)
    return total, skipped


# -------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genaug expand",
        description="Expand an image folder (flat or ImageFolder class/xxx.jpg) or an HDF5 file of faces into an "
        "HDF5 dataset of identity-preserving variants. Crash-safe and resumable: rerun the same command after an "
        "interruption. Scale out with torchrun --nproc_per_node N or --shard i/n (then merge).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("source", help="folder of images (flat or class sub-folders) or HDF5 file with 'images' (N,H,W,C) uint8 "
                   "and optional 'labels'")
    p.add_argument("out", help="output HDF5 file (parts are kept in OUT.parts/ until the merge)")
    p.add_argument("--variants", type=int, default=8, help="augmented variants per source image")
    p.add_argument("--bundle", default="default", help="model bundle: 'default' or a bundle folder")
    p.add_argument("--include-original", action="store_true", help="also store each source image (variant 0)")
    p.add_argument("--seed", type=int, default=0, help="seed; each image's edits depend only on (seed, source index)")
    p.add_argument("--size", default="model", help="'model' (the model's resolution), 'source' (the source size with the "
                   "face pasted back; all sources must share the first image's size, others are skipped and reported) "
                   "or WxH (sources resized to WxH, face pasted back)")
    p.add_argument("--strength", type=float, default=1.0, help="edit strength (0 = unchanged, 1 = full edit)")
    p.add_argument("--mode", choices=("delta", "regenerate"), default="delta",
                   help="delta: x + G(edited) - G(latent) (keeps details); regenerate: G(edited)")
    p.add_argument("--codes", default=None, help="comma list of codes to edit (names or c<i>; default all)")
    p.add_argument("--refine-steps", type=int, default=20, help="inversion refinement steps per image")
    p.add_argument("--refine-loss", default="mse+msssim", help="inversion refinement loss")
    p.add_argument("--framing", default="auto", help="how faces are framed for the model (see genaug.render)")
    p.add_argument("--batch-size", type=int, default=64, help="images per device batch")
    p.add_argument("--block-size", type=int, default=256, help="source images per part file (the resume unit)")
    p.add_argument("--compression", default="lzf", help="image compression: lzf, gzip, gzip-<0..9> or none")
    p.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    p.add_argument("--workers", type=int, default=4, help="image decoding threads")
    p.add_argument("--shard", default=None, help="i/n: expand only blocks b with b %% n == i (no merge); "
                   "default under torchrun: RANK/WORLD_SIZE (rank 0 merges)")
    p.add_argument("--merge-only", action="store_true", help="only merge finished parts into OUT (errors if some are missing)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT and parts made with other settings")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = build_parser().parse_args(argv)
    try:
        expand_to_hdf5(
            a.source, a.out, a.variants, bundle=a.bundle, include_original=a.include_original, seed=a.seed, size=a.size,
            strength=a.strength, mode=a.mode, codes=[c.strip() for c in a.codes.split(",") if c.strip()] if a.codes else None,
            refine_steps=a.refine_steps, refine_loss=a.refine_loss, framing=a.framing, batch_size=a.batch_size,
            block_size=a.block_size, compression=a.compression, device=a.device, workers=a.workers, shard=a.shard,
            merge=True if a.merge_only else None, merge_only=a.merge_only, overwrite=a.overwrite,
            progress=not a.quiet, command=["genaug", "expand", *argv],
        )
    except (ExpandError, BundleError, FileNotFoundError) as e:
        print(f"genaug expand: error: {e}", file=sys.stderr)
        return 2
    return 0
