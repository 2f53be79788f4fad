"""``genaug augment INPUT [INPUT ...] --out DIR``: augmented variants of the user's own faces (the
variants of one image are distinct edits, :func:`genaug.engine.edits.variant_edits`)."""
from __future__ import annotations

import argparse
import glob
import hashlib
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps

from ..engine.codes import check_strength
from ..engine.edits import derive_seed, variant_edits
from ..engine.photos import ROOMLESS
from ..engine.roomless import redraw_roomless
from ..engine.variants import unplaced_redraws
from ..faces.framing import FRAMINGS
from ..images import MIN_SIDE
from ..io import IMAGE_EXTS, atomic_write, list_images, open_photo
from .common import (EXIT_STATUS, FRAMING_HELP, UsageError, add_model_args, check_model_args, checking_arguments,
                     parse_codes, run_guarded)
from .demo import CELL, hstack, vstack

SHEET_ROWS = 32
OUTPUT_NAME = re.compile(r".*_aug\d{2,}\.png|contact_sheet\.png")  # what run_augment writes into --out
SAME_COLOURS = {"RGB", "RGBA", "L", "LA", "P", "PA", "1", "La", "RGBa"}  # modes read without a colour conversion


class Photo(NamedTuple):
    """An input as it is edited and written back: its pixels (HW grey, HWC RGB or RGBA), the PIL mode its variants
    are saved in (grey with alpha, edited as RGBA, goes back to LA) and its ICC profile (kept, so a Display P3 or
    Adobe RGB photo's variants show its colours; None after a colour conversion such as CMYK's)."""

    pixels: np.ndarray
    mode: str
    icc_profile: bytes | None


def _read(path: Path) -> Photo:
    im = open_photo(path)  # upright by EXIF, 16-bit grey scaled
    icc = im.info.get("icc_profile") if im.mode in SAME_COLOURS else None
    if im.mode not in ("RGBA", "LA") and ("transparency" in im.info or im.mode in ("PA", "La", "RGBa")):
        im = im.convert("LA" if im.mode in ("L", "La") else "RGBA")  # a palette / tRNS cut-out: its alpha kept
    mode = "RGBA" if im.mode in ("RGBA", "LA") else "L" if im.mode in ("L", "1") else "RGB"  # grey stays grey
    img = np.asarray(im.convert(mode))
    if min(img.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image {img.shape[1]}x{img.shape[0]} is too small to hold a face (min side {MIN_SIDE} px)")
    return Photo(img, "LA" if im.mode == "LA" else mode, icc or None)


def _save(pixels: np.ndarray, photo: Photo, path: Path) -> None:
    """A variant as a PNG in the input's mode and ICC profile, all or nothing (an interrupted run leaves no torn file)."""
    im = Image.fromarray(pixels).convert(photo.mode)
    atomic_write(path, lambda tmp: im.save(tmp, format="PNG", icc_profile=photo.icc_profile))


def input_files(inputs: list[str], out: Path) -> tuple[dict[Path, Path], list[Path], list[Path]]:
    """(each input image -> its name below its input, the named files that are not images, the images of an input
    folder left out for lying inside ``out`` that are not genaug's outputs). The name (a folder's
    files: their path below it; a file: its name) is what its outputs mirror and its edits are drawn from
    (:func:`file_index`). An input that does not exist is read as a glob pattern (a quoted ``'photos/*.jpg'``, or
    a shell that does not expand them); an ``out`` inside an input folder is left out (a rerun must not augment
    the earlier variants; the user's own photos there are returned, to be named); a file named twice counts once."""
    found: dict[Path, tuple[Path, Path]] = {}
    others: list[Path] = []
    left_out: list[Path] = []
    out = out.resolve()
    for text in inputs:
        roots = [Path(text)]
        if not roots[0].exists() and any(c in text for c in "*?["):
            roots = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
            if not roots:
                raise FileNotFoundError(f"no file matches {text!r}")
        for root in roots:
            if root.is_file() and root.suffix.lower() not in IMAGE_EXTS:
                others.append(root)  # `photos/*` names notes.txt too
                continue
            top = root.resolve()
            inside = root.is_dir() and (out == top or top in out.parents)
            for f in list_images(root, "input image or folder", broken_links=True):
                if not (inside and out in f.resolve().parents):
                    found.setdefault(f.resolve(), (f, f.relative_to(root) if root.is_dir() else Path(f.name)))
                elif not OUTPUT_NAME.fullmatch(f.name):
                    left_out.append(f)
    return dict(found.values()), others, left_out


def output_stems(names: dict[Path, Path]) -> dict[Path, Path]:
    """Where each input's variants go (``STEM_augNN.png`` below the output folder), from its name below its input
    (:func:`input_files`): sub-folders are mirrored, and inputs sharing a stem in one folder (``a.jpg``, ``a.png``)
    keep their extension in the name, so no output overwrites another."""
    stems: dict[Path, int] = {}
    for r in names.values():
        stems[r.with_suffix("")] = stems.get(r.with_suffix(""), 0) + 1
    out = {f: r.with_suffix("") if stems[r.with_suffix("")] == 1 else r.with_name(r.stem + "_" + r.suffix.lstrip(".").lower())
           for f, r in names.items()}
    taken: set[str] = set()  # a.jpg + a.JPG, or a.png + a_png.jpg, still meet: number the later ones (any case of a name)
    for f, name in out.items():
        n, base = 1, name
        while name.as_posix().lower() in taken:
            n += 1
            name = base.with_name(f"{base.name}_{n}")
        out[f] = name
        taken.add(name.as_posix().lower())
    return out


def file_index(name: Path) -> int:
    """The item index an input's edits are drawn from: a hash of its path below the input folder, so a file gets
    the same variants for a seed whatever else the folder holds (files added, removed or unreadable)."""
    digest = hashlib.blake2b(name.as_posix().encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def augment_chunk(engine: Any, images: list[np.ndarray], indices: list[int], variants: int, seed: int,
                  no_face: list[int] | None = None, unchanged: list[int] | None = None) -> list[list[Any]]:
    """``variants`` augmentations of each image (one inversion per image); image ``k`` draws its
    edits from (seed, indices[k]) (:func:`file_index`). A planned edit that needs a face (``yaw`` / ``light``; in a
    large photo, one that draws on the face: :meth:`Engine.unplaced`) on an image in which no face was found is
    re-drawn among the latent codes that apply there (:meth:`Engine.replace_unplaced_variant`, as the Dataset and
    expand do: an image's re-draws in one pass, :func:`~genaug.engine.variants.unplaced_redraws`); images with
    variants that still come back unchanged for want of a face (``framing="detect"`` found none, or no such code may
    be drawn) have their positions appended to ``no_face``. A drawn control the face has no room for (a near-profile
    face) is re-drawn among the codes that act there, as the other front ends do
    (:func:`~genaug.engine.roomless.redraw_roomless`); images with a variant that still comes back unchanged though a
    face was found (a control with no room on it and no other code to draw; an edit that changed no pixel, e.g. at
    strength 0: :meth:`Engine.unchanged`; every gate try rejected), to ``unchanged``."""
    x, frames = engine.frame(images)
    x = x.to(engine.device)
    inv = engine.invert(x)
    rows = [k for k in range(len(images)) for _ in range(variants)]
    seeds = [derive_seed(seed, indices[k]) for k in range(len(images))]
    gate_draws = [torch.Generator().manual_seed(derive_seed(seeds[k], v)) for k in range(len(images)) for v in range(variants)]
    plans = [variant_edits(engine.spec, seed, indices[k], variants, engine.codes, engine.bounds) for k in range(len(images))]
    seed_of = [lambda j, s=s: derive_seed(s, j) for s in seeds]
    passes = [unplaced_redraws(engine, plans[k], f, seed_of[k]) for k, f in enumerate(frames)]  # one per image
    edits = [engine.replace_unplaced_variant(plans[k], frames[k], v, gate_draws[k * variants + v], seed_of[k],
                                             redrawn=passes[k])
             for k in range(len(images)) for v in range(variants)]
    xr, ir, fr = engine.frame_rows(images, x, frames, inv, rows, edits)  # (a named edit on a misframed face: framed by it)
    out, info = engine.render_edits(xr, ir.latent, edits, base=ir.recon, score=ir.score, generator=gate_draws,
                                    placed=True, drawn=True, frames=fr)
    pasted = engine.unframe(out, [images[k] for k in rows], fr, info, drawn=True)

    def again(rs: list[int], left: list[int]) -> list[Any]:  # a drawn control the face has no room for (near profile)
        ks, gens = [rows[r] for r in rs], [gate_draws[r] for r in rs]
        redrawn = [engine.replace_unplaced_variant(plans[k], frames[k], r % variants, g, seed_of[k], roomless=left,
                                                   redrawn=passes[k]) for r, k, g in zip(rs, ks, gens)]
        xs, inv_s, fs = engine.frame_rows(images, x, frames, inv, ks, redrawn)
        o, sub = engine.render_edits(xs, inv_s.latent, redrawn, base=inv_s.recon, score=inv_s.score, generator=gens,
                                     placed=True, drawn=True, frames=fs, redraw_codes=left)
        engine.stats["augmented"] -= len(rs)  # (counted once, by the first pass)
        for i, (r, image) in enumerate(zip(rs, engine.unframe(o, [images[k] for k in ks], fs, sub, drawn=True))):
            pasted[r], info.edits[r], info.kept[r], info.descriptions[r] = image, sub.edits[i], sub.kept[i], sub.descriptions[i]
        return [info.edits[r] if info.descriptions[r] in ROOMLESS else None for r in rs]

    redraw_roomless(engine, {r: (info.edits[r], frames[k]) for r, k in enumerate(rows) if info.descriptions[r] in ROOMLESS},
                    again)
    faceless = [engine.faceless(info.edits[r], frames[k]) for r, k in enumerate(rows)]
    if no_face is not None:
        no_face.extend(sorted({k for k, lacks in zip(rows, faceless) if lacks}))
    if unchanged is not None:
        unchanged.extend(sorted({k for r, (k, lacks) in enumerate(zip(rows, faceless)) if not lacks and not bool(info.kept[r])}))
    return [pasted[k * variants:(k + 1) * variants] for k in range(len(images))]


def run_augment(args: argparse.Namespace) -> Path:
    from tqdm.auto import tqdm

    from ..engine.core import Engine

    if args.variants < 1:
        raise UsageError(f"--variants must be >= 1, got {args.variants}")
    if not -2**63 <= args.seed < 2**63:  # torch's generators take 64 bits ("Overflow when unpacking long long")
        raise UsageError(f"--seed must fit in 64 bits, got {args.seed}")
    with checking_arguments():
        check_strength(args.strength)
    codes = parse_codes(args.codes)
    check_model_args(args.bundle, args.device, args.refine_steps, codes)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder to write the variants into")
    names, others, left_out = input_files(args.inputs, out)
    if not names:
        what = f"{others[0]} is not an image file ({', '.join(sorted(IMAGE_EXTS))})" if len(others) == 1 and \
            len(args.inputs) == 1 else f"no input images in {' '.join(args.inputs)} outside --out {args.out}"
        raise ValueError(what)
    stems = output_stems(names)
    engine = Engine(args.bundle, device=args.device, mode=args.mode, refine_steps=args.refine_steps, seed=args.seed,
                    framing=args.framing, codes=codes, strength=args.strength)
    out.mkdir(parents=True, exist_ok=True)
    sheet_rows, written, skipped, faceless, stale, kept_as_is = [], 0, list(others), [], [], []
    for path in others:
        print(f"genaug augment: skipped {path}: not an image file", file=sys.stderr)
    bar = tqdm(total=len(names), desc="augmenting", unit="img", disable=getattr(args, "quiet", False))
    for path, name in names.items():  # one file per pass: its variants do not depend on the files beside it in a batch
        bar.update(1)                  # (the inversion's float sums follow the batch size)
        try:
            photo = _read(path)
        except (OSError, ValueError) as e:
            skipped.append(path)
            tqdm.write(f"genaug augment: skipped {path}: {e}", file=sys.stderr)  # above the bar, not on its line
            continue
        no_face: list[int] = []
        unchanged: list[int] = []
        variants = augment_chunk(engine, [photo.pixels], [file_index(name)], args.variants, args.seed, no_face,
                                 unchanged)[0]
        if no_face:
            faceless.append(path)
            tqdm.write(f"genaug augment: no face found in {path}: variants written unchanged", file=sys.stderr)
        elif unchanged:
            kept_as_is.append(path)
        stem = out / stems[path]
        stem.parent.mkdir(parents=True, exist_ok=True)
        for i, v in enumerate(variants):
            _save(v, photo, stem.with_name(f"{stem.name}_aug{i:02d}.png"))
        written += len(variants)
        i = len(variants)  # an earlier run with more --variants: its extra files stay (never deleted), and are named
        while (old := stem.with_name(f"{stem.name}_aug{i:02d}.png")).is_file():
            stale.append(old)
            i += 1
        if len(sheet_rows) < SHEET_ROWS:
            # each photo fitted in its cell at its own aspect (a landscape photo was stretched into the square)
            cells = [ImageOps.pad(Image.fromarray(a).convert("RGB"), (CELL, CELL)) for a in [photo.pixels, *variants]]
            sheet_rows.append(hstack(cells, gap=2))
    bar.close()
    if not sheet_rows:
        raise ValueError(f"none of the {len(names)} image(s) in {' '.join(args.inputs)} could be read")
    sheet = vstack(sheet_rows, gap=2)
    atomic_write(out / "contact_sheet.png", lambda tmp: sheet.save(tmp, format="PNG"))
    note = f"; skipped {len(skipped)} file(s) (not images, unreadable or too small): {named(skipped)}" if skipped else ""
    note += f"; no face found in {len(faceless)} image(s), written unchanged: {named(faceless)}" if faceless else ""
    note += (f"; {len(kept_as_is)} image(s) with variants written unchanged (no room for the control on the face, e.g. "
             f"near profile or cut by the photo's edge; an edit that changed no pixel, e.g. --strength 0; every gate try rejected): {named(kept_as_is)}"
             if kept_as_is else "")
    note += (f"; {len(left_out)} image(s) inside --out {out} left out (not augmented; give --out a folder of its "
             f"own): {named(left_out)}" if left_out else "")
    note += (f"; {len(stale)} file(s) of an earlier run with more --variants left in {out}: {named(stale)}"
             if stale else "")
    print(f"wrote {written} augmented images and {out / 'contact_sheet.png'} to {out.resolve()}{note}")
    return out


def named(paths: list[Path], most: int = 5) -> str:
    """The first ``most`` of ``paths``, and how many more."""
    more = f" and {len(paths) - most} more" if len(paths) > most else ""
    return ", ".join(str(p) for p in paths[:most]) + more


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genaug augment", description=(
        "Write augmented variants of your own face images: OUT/NAME_augNN.png, the same size as each input, "
        "sub-folders mirrored, and a contact sheet. The variants of one image are distinct edits; unreadable "
        "files are skipped and reported."), epilog=EXIT_STATUS)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images (several, or a glob "
                   "such as 'photos/*.jpg'; a folder's sub-folders are mirrored below --out)")
    add_model_args(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--variants", type=int, default=4, help="augmented variants per image (distinct edits)")
    p.add_argument("--mode", default="delta", choices=["delta", "regenerate"], help="how edits are applied")
    p.add_argument("--codes", default=None, help="comma list of codes to edit, e.g. smile,glasses or yaw,light "
                   "(default: the bundle's random set of identity-safe codes; `genaug info` lists them)")
    p.add_argument("--strength", type=float, default=1.0, help="edit strength (0 = unchanged, 1 = full edit)")
    p.add_argument("--seed", type=int, default=0, help="seed; each image's variants depend only on (seed, its path below the input folder)")
    p.add_argument("--framing", default="auto", choices=FRAMINGS, help=FRAMING_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar (skipped files are still reported)")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_guarded("genaug augment", run_augment, build_parser().parse_args(argv))
