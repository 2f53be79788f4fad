"""``genaug augment IMAGE_OR_DIR --out DIR``: augmented variants of the user's own faces (the
variants of one image are distinct edits, :func:`genaug.engine.edits.variant_edits`)."""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..engine.codes import check_strength
from ..engine.edits import derive_seed, variant_edits
from ..images import MIN_SIDE
from ..io import list_images, open_photo
from .common import (EXIT_STATUS, UsageError, add_model_args, check_model_args, checking_arguments, parse_codes,
                     run_guarded)
from .demo import CELL, hstack, vstack

SHEET_ROWS = 32
_GREY_ALPHA: set[Path] = set()  # inputs read as LA (grey with alpha)


def _load(path: Path) -> np.ndarray:
    im = open_photo(path)  # upright by EXIF, 16-bit grey scaled
    if im.mode not in ("RGBA", "LA") and ("transparency" in im.info or im.mode in ("PA", "La", "RGBa")):
        im = im.convert("LA" if im.mode in ("L", "La") else "RGBA")  # a palette / tRNS cut-out: its alpha kept
    mode = "RGBA" if im.mode in ("RGBA", "LA") else "L" if im.mode in ("L", "1") else "RGB"  # grey stays grey
    # grey with alpha is edited as RGBA (grey kept), written back as LA
    (_GREY_ALPHA.add if im.mode == "LA" else _GREY_ALPHA.discard)(Path(path))
    img = np.asarray(im.convert(mode))
    if min(img.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image {img.shape[1]}x{img.shape[0]} is too small to hold a face (min side {MIN_SIDE} px)")
    return img


def output_stems(files: list[Path], root: Path) -> dict[Path, Path]:
    """Where each input's variants go (``STEM_augNN.png`` below the output folder): the input's
    folder below ``root`` is mirrored, and inputs sharing a stem in one folder (``a.jpg``, ``a.png``)
    keep their extension in the name, so no output overwrites another."""
    rel = {f: f.relative_to(root) if root.is_dir() else Path(f.name) for f in files}
    stems: dict[Path, int] = {}
    for r in rel.values():
        stems[r.with_suffix("")] = stems.get(r.with_suffix(""), 0) + 1
    names = {f: r.with_suffix("") if stems[r.with_suffix("")] == 1 else r.with_name(r.stem + "_" + r.suffix.lstrip(".").lower())
             for f, r in rel.items()}
    taken: set[str] = set()  # a.jpg + a.JPG, or a.png + a_png.jpg, still meet: number the later ones (any case of a name)
    for f, name in names.items():
        n, base = 1, name
        while name.as_posix().lower() in taken:
            n += 1
            name = base.with_name(f"{base.name}_{n}")
        names[f] = name
        taken.add(name.as_posix().lower())
    return names


def file_index(name: Path) -> int:
    """The item index an input's edits are drawn from: a hash of its path below the input folder, so a file gets
    the same variants for a seed whatever else the folder holds (files added, removed or unreadable)."""
    digest = hashlib.blake2b(name.as_posix().encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def augment_chunk(engine: Any, images: list[np.ndarray], indices: list[int], variants: int, seed: int,
                  no_face: list[int] | None = None) -> list[list[Any]]:
    """``variants`` augmentations of each image (one inversion per image); image ``k`` draws its
    edits from (seed, indices[k]) (:func:`file_index`). A planned ``yaw`` / ``light`` on an image in which no face
    was found is re-drawn among the latent codes (:meth:`Engine.replace_unplaced_variant`, as the Dataset and
    expand do); images with variants that still come back unchanged for want of a face (``framing="detect"`` found
    none, or only controls may be drawn) have their positions appended to ``no_face``."""
    x, frames = engine.frame(images)
    x = x.to(engine.device)
    inv = engine.invert(x)
    rows = [k for k in range(len(images)) for _ in range(variants)]
    seeds = [derive_seed(seed, indices[k]) for k in range(len(images))]
    gate_draws = [torch.Generator().manual_seed(derive_seed(seeds[k], v)) for k in range(len(images)) for v in range(variants)]
    plans = [variant_edits(engine.spec, seed, indices[k], variants, engine.codes, engine.bounds) for k in range(len(images))]
    edits = [engine.replace_unplaced_variant(plans[k], frames[k], v, gate_draws[k * variants + v],
                                             lambda j, s=seeds[k]: derive_seed(s, j))
             for k in range(len(images)) for v in range(variants)]
    ks = torch.tensor(rows, device=engine.device)
    out, info = engine.render_edits(x[ks], inv.latent[ks], edits, base=inv.recon[ks], score=inv.score[ks],
                                    generator=gate_draws, placed=True, drawn=True,
                                    frames=[frames[k] for k in rows])
    pasted = engine.unframe(out, [images[k] for k in rows], [frames[k] for k in rows], info, drawn=True)
    if no_face is not None:
        no_face.extend(sorted({k for r, k in enumerate(rows) if engine.faceless(info.edits[r], frames[k])}))
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
    files = list_images(Path(args.input), "input image or folder")
    inside, top = out.resolve(), Path(args.input).resolve()
    if inside == top or top in inside.parents:  # an --out inside the input folder: a rerun must not augment the
        files = [f for f in files if inside not in f.resolve().parents]  # earlier variants (an --out above it may hold them)
    if not files:
        raise ValueError(f"no input images in {args.input} outside --out {args.out}")
    root = Path(args.input)
    names = output_stems(files, root)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder to write the variants into")
    engine = Engine(args.bundle, device=args.device, mode=args.mode, refine_steps=args.refine_steps, seed=args.seed,
                    framing=args.framing, codes=codes, strength=args.strength)
    out.mkdir(parents=True, exist_ok=True)
    sheet_rows, written, skipped, faceless = [], 0, [], []
    bar = tqdm(total=len(files), desc="augmenting", unit="img", disable=getattr(args, "quiet", False))
    for path in files:  # one file per pass: its variants do not depend on the files beside it in a batch
        bar.update(1)       # (the inversion's float sums follow the batch size)
        try:
            index = file_index(path.relative_to(root) if root.is_dir() else Path(path.name))
            img = _load(path)
        except (OSError, ValueError) as e:
            skipped.append(path)
            tqdm.write(f"genaug augment: skipped {path}: {e}", file=sys.stderr)  # above the bar, not on its line
            continue
        no_face: list[int] = []
        variants = augment_chunk(engine, [img], [index], args.variants, args.seed, no_face)[0]
        if no_face:
            faceless.append(path)
            tqdm.write(f"genaug augment: no face found in {path}: variants written unchanged", file=sys.stderr)
        stem = out / names[path]
        stem.parent.mkdir(parents=True, exist_ok=True)
        for i, v in enumerate(variants):
            im = Image.fromarray(v)
            (im.convert("LA") if Path(path) in _GREY_ALPHA else im).save(stem.with_name(f"{stem.name}_aug{i:02d}.png"))
        written += len(variants)
        if len(sheet_rows) < SHEET_ROWS:
            cells = [Image.fromarray(a).convert("RGB").resize((CELL, CELL)) for a in [img, *variants]]
            sheet_rows.append(hstack(cells, gap=2))
    bar.close()
    if not sheet_rows:
        raise ValueError(f"none of the {len(files)} image(s) in {args.input} could be read")
    vstack(sheet_rows, gap=2).save(out / "contact_sheet.png")
    note = f"; skipped {len(skipped)} file(s) (unreadable or too small)" if skipped else ""
    note += f"; no face found in {len(faceless)} image(s), written unchanged" if faceless else ""
    print(f"wrote {written} augmented images and {out / 'contact_sheet.png'} to {out.resolve()}{note}")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genaug augment", description=(
        "Write augmented variants of your own face images: OUT/NAME_augNN.png, the same size as each input, "
        "sub-folders mirrored, and a contact sheet. The variants of one image are distinct edits; unreadable "
        "files are skipped and reported."), epilog=EXIT_STATUS)
    p.add_argument("input", help="an image file or a folder of images")
    add_model_args(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--variants", type=int, default=4, help="augmented variants per image (distinct edits)")
    p.add_argument("--mode", default="delta", choices=["delta", "regenerate"], help="how edits are applied")
    p.add_argument("--codes", default=None, help="comma list of codes to edit, e.g. smile,glasses or yaw,light "
                   "(default: the bundle's random set of identity-safe codes; `genaug info` lists them)")
    p.add_argument("--strength", type=float, default=1.0, help="edit strength (0 = unchanged, 1 = full edit)")
    p.add_argument("--seed", type=int, default=0, help="seed; each image's variants depend only on (seed, its path below the input folder)")
    p.add_argument("--framing", default="auto", choices=["auto", "full", "detect"],
                   help="auto: CelebA box for 178x218 frames, else the detected face (with genaug[faces]) or the "
                        "centre square; detect: dlib's detector + 5-point alignment, photos without a face unchanged")
    p.add_argument("--quiet", action="store_true", help="no progress bar (skipped files are still reported)")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_guarded("genaug augment", run_augment, build_parser().parse_args(argv))
