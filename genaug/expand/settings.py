"""What an expansion is asked for, checked before any work starts (:func:`check_arguments`): :class:`ExpandSettings`
(everything that changes the records, part of the run key), ``--size`` and ``--shard`` parsing, the
output path and the records' shape, and the columns of the ``codes`` dataset (see
:mod:`genaug.expand.hdf5`). Used by :func:`genaug.expand.pipeline.expand_to_hdf5`.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..distenv import dist_env
from ..engine.codes import (all_code_names, as_number, check_code_list, check_flag, check_refine_loss, check_seed, code_index,
                            control_of, default_codes, real, whole)
from ..images import MIN_SIDE
from ..io import check_path
from .hdf5 import compression_args
from .sources import ExpandError, Source

MAX_VARIANTS = int(np.iinfo(np.int16).max)  # variants per source the int16 ``variant`` dataset can number
MAX_CHUNK_BYTES = 2**32 - 1  # HDF5's largest chunk: one record (H x W x up to 3 bytes) is one chunk of ``images``


@dataclass
class ExpandSettings:
    """Everything that changes the records (part of the run key; a resume must match it)."""

    variants: int = 8
    include_original: bool = False
    size: str = "model"  # "model" | "source" | "WxH"
    strength: float = 1.0
    mode: str = "delta"  # "delta" | "regenerate"
    codes: list[str] | None = None  # codes to edit (default: the bundle's random set (identity-safe codes; `genaug info`))
    refine_steps: int | None = None  # None = the bundle's default (resolved before the run key)
    refine_loss: str = "mse+msssim"
    framing: str = "auto"
    batch_size: int = 64
    block_size: int = 256
    gate_threshold: float | None = None  # identity gate (re-draw, then keep the source unchanged)
    quality_threshold: float | str | None = None  # quality gate: the realism critic ("auto": its own threshold)

    def validate(self) -> None:
        for name in ("variants", "include_original", "strength", "refine_steps", "batch_size", "block_size", "gate_threshold"):
            setattr(self, name, as_number(getattr(self, name)))  # a 0-dim tensor as the number it holds (as before checked)
        if not whole(self.variants):
            raise ExpandError(f"--variants must be a whole number, got {self.variants!r}")
        if self.variants < 0 or (self.variants == 0 and not self.include_original):
            raise ExpandError(f"--variants must be >= 1 (or 0 with --include-original: the originals only), got {self.variants}")
        if self.variants > MAX_VARIANTS:  # the file's variant column is int16: refused up front, not after the rendering
            raise ExpandError(f"--variants must be at most {MAX_VARIANTS} (the records' 'variant' column is int16), got {self.variants}")
        if any(not whole(v) or v < 1 for v in (self.batch_size, self.block_size)):
            raise ExpandError(f"--batch-size and --block-size must be whole numbers >= 1, got {self.batch_size!r}, {self.block_size!r}")
        if self.refine_steps is not None and (not whole(self.refine_steps) or self.refine_steps < 0):
            raise ExpandError(f"--refine-steps must be a whole number >= 0, got {self.refine_steps!r}")
        if not real(self.strength) or not math.isfinite(self.strength) or self.strength < 0:
            raise ExpandError(f"--strength must be a finite number >= 0, got {self.strength!r}")
        if self.gate_threshold is not None and not (real(self.gate_threshold) and math.isfinite(self.gate_threshold)):
            raise ExpandError(f"--gate-threshold must be a finite similarity, got {self.gate_threshold!r}")
        try:
            self.include_original = check_flag(self.include_original, "--include-original")  # "no" is true in Python
        except ValueError as e:
            raise ExpandError(str(e)) from None
        q = self.quality_threshold
        if q is not None and q != "auto" and not (isinstance(q, numbers.Real) and 0.0 <= q <= 1.0):
            raise ExpandError(f"--quality-threshold must be 'auto' or a number in [0, 1], got {q!r}")
        if self.mode not in ("delta", "regenerate"):
            raise ExpandError(f"--mode must be 'delta' or 'regenerate', got {self.mode!r}")
        try:
            check_refine_loss(self.refine_loss, "genaug expand")
        except ValueError as e:
            raise ExpandError(f"--refine-loss: {e}") from None
        if self.size not in ("model", "source"):
            parse_size(self.size)
        # numpy scalars as plain ones (the run key is JSON: np.int64 failed to serialise) and 1 as 1.0 (the same run key)
        self.variants, self.batch_size, self.block_size = int(self.variants), int(self.batch_size), int(self.block_size)
        self.include_original, self.strength = bool(self.include_original), float(self.strength)
        self.gate_threshold, self.quality_threshold = (v if v is None or v == "auto" else float(v) for v in (self.gate_threshold, q))

    @property
    def rows_per_source(self) -> int:
        return self.variants + int(self.include_original)


def check_run_options(source: Any, out: Any, workers: Any, **flags: Any) -> None:
    """:func:`expand_to_hdf5`'s options that do not change the records, checked as :func:`check_arguments` checks
    the others: ``source`` / ``out`` paths, ``workers`` a whole number >= 0, and yes / no ``flags`` (``overwrite="no"``
    is true in Python: it would have discarded a finished file); an :class:`ExpandError` or ``TypeError`` naming it."""
    root = getattr(source, "root", None)  # a torchvision dataset (ImageFolder): its folder is the source
    if not isinstance(source, (str, os.PathLike)) and isinstance(root, (str, os.PathLike)):
        raise TypeError(f"source must be a path (a str or Path), got the dataset {type(source).__name__}: pass its folder, "
                        f"{str(root)!r} (its .root), which genaug expand reads as an ImageFolder")
    check_path(source, "source", "a path")
    check_path(out, "out", "a path")
    workers = as_number(workers)
    if not whole(workers) or workers < 0:
        raise ExpandError(f"--workers must be a whole number >= 0 (0 or 1: decode in one thread), got {workers!r}")
    for name, value in flags.items():
        try:
            check_flag(value, name)
        except ValueError as e:
            raise ExpandError(str(e)) from None


def check_arguments(
    variants: int = 8, *, include_original: bool = False, seed: int = 0, size: str | tuple[int, int] = "model",
    strength: float = 1.0, mode: str = "delta", codes: list[str] | None = None, refine_steps: int | None = None,
    refine_loss: str = "mse+msssim", framing: str = "auto", batch_size: int = 64, block_size: int = 256,
    compression: str = "lzf", shard: str | tuple[int, int] | None = None, gate_threshold: float | None = None,
    quality_threshold: float | str | None = None,
) -> tuple[ExpandSettings, int, tuple[int, int]]:
    """The values of :func:`expand_to_hdf5`'s arguments (those of the same names), checked before any file or
    model is read: ``(settings, seed, (rank, world))``, or an :class:`ExpandError` naming the option. The codes'
    names are checked against the bundle later (by the engine)."""
    try:
        check_code_list(codes)  # "smile" would be read letter by letter, [] as the random set
    except ValueError as e:
        raise ExpandError(str(e).replace("codes", "--codes", 1)) from None
    try:
        seed = check_seed(seed, "--seed", high=2**63)  # the file's 'seed' attribute is an int64; np.int64 as an int
    except ValueError as e:
        raise ExpandError(str(e)) from None
    if codes is not None:  # numpy integers (np.arange) as plain ints: the run key is JSON
        codes = [int(c) if whole(c) else c for c in codes]
    if isinstance(size, (tuple, list)):  # (W, H), as PIL gives sizes: the run key keeps the CLI's "WxH"
        size = "x".join(str(v) for v in size)
    s = ExpandSettings(variants, include_original, size, strength, mode, codes,
                       refine_steps, refine_loss, framing, batch_size, block_size, gate_threshold,
                       quality_threshold)
    s.validate()
    try:
        compression_args(compression)
    except ValueError as e:
        raise ExpandError(str(e)) from None
    return s, seed, parse_shard(shard)


def parse_size(size: str) -> tuple[int, int]:
    """``"WxH"`` -> (W, H)."""
    try:
        w, h = (int(v) for v in size.lower().split("x"))
        if w < 1 or h < 1:
            raise ValueError
    except (ValueError, AttributeError):  # AttributeError: not a string (64)
        raise ExpandError(f"--size must be 'model', 'source' or WIDTHxHEIGHT like 178x218, got {size!r}") from None
    if min(w, h) < MIN_SIDE:  # every record would be refused as too small to hold a face, mid-run
        raise ExpandError(f"--size {size} is too small to hold a face (min side {MIN_SIDE} px)")
    if w * h * 3 > MAX_CHUNK_BYTES:  # else h5py fails at the first record written, after the first batch's work
        raise ExpandError(f"--size {size} is too large: a {w}x{h} RGB record is {w * h * 3} bytes, over HDF5's chunk limit "
                          f"of {MAX_CHUNK_BYTES} bytes (4 GiB; each record is one chunk)")
    return w, h


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n); None -> torchrun's RANK/WORLD_SIZE, else (0, 1)."""
    if shard is None:
        env = dist_env()
        return env.rank, env.world
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


def output_shape(src: Source, engine: Any, s: ExpandSettings) -> tuple[tuple[int, int, int], tuple[int, int] | None, bool]:
    """(H, W, C) of the records, the fixed source size (None for model size), resize flag."""
    c = engine.channels
    if s.size == "model":
        return (engine.image_size, engine.image_size, c), None, False
    if s.size != "source":
        w, h = parse_size(s.size)
        return (h, w, c), (h, w), True
    for i in range(len(src)):  # the first usable image fixes the size (a thumbnail under MIN_SIDE is skipped, not the size)
        try:
            h, w = src.load(i, c).shape[:2]
        except Exception:  # noqa: BLE001 - reported when its block is expanded
            continue
        if min(h, w) >= MIN_SIDE:
            return (h, w, c), (h, w), False
    raise ExpandError(f"no readable images of at least {MIN_SIDE} px a side in {src.root}")


def code_columns(spec: Any, codes: list[str] | None) -> list[str]:
    """The names of the ``codes`` dataset's columns: the latent codes, then the image-space controls
    (yaw, light) when the expansion may draw one — named, or in the bundle's random set when ``codes``
    is None (else the file stays as without them)."""
    drawn = [code_index(spec, c) for c in codes] if codes else default_codes(spec)
    if any(control_of(spec, ci) is not None for ci in drawn):
        return all_code_names(spec)
    return list(spec.code_names)


def check_out(source: Path, given: str | Path) -> None:
    """Refuse an output path that is a folder, is written as one (``out/new/``: it would have become
    a file named ``new``), is the source itself or an existing file that is not HDF5 (``--overwrite`` would delete it)."""
    if not str(given).strip():  # Path("") is ".": the folder, or a parts folder named ".parts" beside nothing
        raise ExpandError("output path is empty; give the path of an .h5 file to write (e.g. expanded.h5)")
    out = Path(given)
    if out.is_dir() or str(given).endswith(("/", os.sep)):
        raise ExpandError(f"output {given} is a folder; give the path of an .h5 file to write (e.g. {out / 'expanded.h5'})")
    if out.exists() and source.exists() and out.samefile(source):
        raise ExpandError(f"output {out} is the source file itself; write the expansion to another file")
    if out.exists() and not h5py.is_hdf5(out):  # a photo, a note: never deleted, even with --overwrite
        raise ExpandError(f"{out} exists and is not an HDF5 file; genaug does not replace it (--overwrite replaces "
                          "HDF5 files only): write the expansion to another path")
