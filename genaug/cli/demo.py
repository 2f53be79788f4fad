"""``genaug demo``: one picture of real faces (a public-domain photo shipped with genaug, plus any
given with ``--images``), their reconstructions, and a sweep of every code on each face; also the
picture helpers ``genaug augment`` uses for its contact sheet.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..bundle.format import Bundle
from ..engine.codes import control_of, default_codes
from ..engine.edits import Edit, code_values
from ..engine.exposure import unlift
from ..faces.controls import CONTROL_NAMES
from ..io import list_images, open_photo
from .common import EXIT_STATUS, UsageError, add_model_args, check_model_args, run_guarded

ASSETS = Path(__file__).parents[1] / "assets"
DEMO_FACES = [ASSETS / "astronaut_face.jpg"]
CELL = 96  # display size of one face in the picture
LABEL_W = 110


def to_pil(t: torch.Tensor) -> Image.Image:
    """CHW [-1,1] -> PIL at display size."""
    arr = ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    im = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    return im.convert("RGB").resize((CELL, CELL), Image.BICUBIC)


def _value_label(bundle: Bundle, code: int, value: float) -> str:
    control = control_of(bundle.spec, code)
    if control is not None:
        return f"{value:+.0f} {control.unit}" if control.unit else f"{value:.2f}"
    return f"{int(value)}" if bundle.spec.is_categorical(code) else f"{value:+.1f}"


def demo_sweep_values(bundle: Bundle, code: int) -> list[float]:
    """Categories of a categorical code; 5 values across a continuous code's or an image-space
    control's range (a control's middle value, 0, is the input)."""
    control = control_of(bundle.spec, code)
    if control is not None:
        return np.linspace(control.low, control.high, 5).tolist()
    return code_values(bundle.spec, code, "all" if bundle.spec.is_categorical(code) else 5)


def demo_codes(bundle: Bundle) -> list[int]:
    """Every latent code and image-space control (yaw, light, drawn_glasses) by code index: first the random set
    (what ``codes=None`` draws), then the other controls, then the other latent codes (named only)."""
    n = len(bundle.spec.codes)
    every = list(range(n)) + [n + j for j in range(len(CONTROL_NAMES)) if CONTROL_NAMES[j] not in bundle.spec.code_names]
    first = [c for c in default_codes(bundle.spec) if c in every]
    return first + [c for c in every if c >= n and c not in first] + [c for c in every if c < n and c not in first]


def photo_to_pil(photo: np.ndarray) -> Image.Image:
    """An HWC (or HW) uint8 photo -> a CELL x CELL picture, its aspect kept (letterboxed on white)."""
    im = Image.fromarray(photo).convert("RGB")
    scale = CELL / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BICUBIC)
    cell = Image.new("RGB", (CELL, CELL), "white")
    cell.paste(im, ((CELL - im.width) // 2, (CELL - im.height) // 2))
    return cell


def face_panel(engine, image: np.ndarray | None, title: str, seed: int = 0) -> Image.Image:
    """One face: input and reconstruction, then one row per code sweeping its values, and one
    per image-space control (yaw, light; rendered on the face itself).

    With ``image`` each edit is made as the transform makes it (``Engine.augment``: framed, edited in
    ``delta`` mode and pasted back, controls rendered on the photo at its own resolution) and the photo is
    shown whole; with ``image=None`` a random generated face is swept in ``regenerate`` mode, which shows
    what each code controls on its own.
    """
    bundle = engine.bundle
    if image is None:
        lat = bundle.spec.sample(1, generator=torch.Generator().manual_seed(seed)).to(engine.device)
        x = recon = engine.generate(lat)
        caption, mode = "generated", "regenerate"
    else:
        x = engine.frame([image])[0].to(engine.device)  # framed as the transform frames it (detected when it can)
        inv = engine.invert(x)
        recon = unlift(x, inv.recon, low=-1.0)  # (a dim face is inverted lifted: shown at the photo's exposure)
        lat, caption, mode = inv.latent, f"score {inv.score[0].item():.2f}", "delta"
    rows = []
    for ci in demo_codes(bundle):
        values = demo_sweep_values(bundle, ci)
        n = len(values)
        edits = [Edit(ci, v) for v in values]
        if image is None:
            out, _ = engine.render_edits(x.expand(n, -1, -1, -1), lat.expand(n, -1), edits, base=recon.expand(n, -1, -1, -1),
                                         mode=mode)
            cells = [to_pil(o) for o in out]
        else:
            photos, _ = engine.augment([image] * n, edits=edits)
            cells = [photo_to_pil(o) for o in photos]
        rows.append((ci, values, cells))
    ncol = max(2, max(len(v) for _, v, _ in rows))
    canvas = Image.new("RGB", (LABEL_W + ncol * CELL, 20 + (CELL + 16) * (1 + len(rows))), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), f"{title}  ({mode})", fill="black")
    y = 20
    draw.text((4, y + CELL // 2 - 6), "input / recon" if image is not None else "random face", fill="black")
    canvas.paste(to_pil(x[0]) if image is None else photo_to_pil(image), (LABEL_W, y))
    draw.text((LABEL_W, y + CELL + 2), "real face" if image is not None else "", fill="gray")
    if image is not None:
        canvas.paste(to_pil(recon[0]), (LABEL_W + CELL, y))
        draw.text((LABEL_W + CELL, y + CELL + 2), caption, fill="gray")
    random_set = set(default_codes(bundle.spec))
    for ci, values, outs in rows:
        y += CELL + 16
        control = control_of(bundle.spec, ci)
        if control is not None:
            label = f"{control.name}\n(rendered)"
        else:
            code = bundle.spec.codes[ci]
            label = code.name + (f"\n({code.attribute})" if code.attribute else "")  # descriptions: genaug info
        if ci not in random_set:
            label += "\nnamed only"  # not in the random set of codes=None
        draw.text((4, y + CELL // 2 - 12), label, fill="black")
        for j, (v, o) in enumerate(zip(values, outs)):
            canvas.paste(o, (LABEL_W + j * CELL, y))
            draw.text((LABEL_W + j * CELL + 2, y + CELL + 2), _value_label(bundle, ci, v), fill="gray")
    return canvas


def generated_panel(bundle: Bundle, n: int, seed: int) -> Image.Image:
    """Random faces from the generator (what the model can draw on its own)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        imgs = bundle.generator(bundle.spec.sample(n, generator=g).to(bundle.device))
    cols = min(n, 8)
    rows = (n + cols - 1) // cols
    canvas = Image.new("RGB", (cols * CELL, 20 + rows * CELL), "white")
    ImageDraw.Draw(canvas).text((4, 4), f"random samples of {bundle.name}", fill="black")
    for i, im in enumerate(imgs):
        canvas.paste(to_pil(im), ((i % cols) * CELL, 20 + (i // cols) * CELL))
    return canvas


def hstack(panels: list[Image.Image], gap: int = 12) -> Image.Image:
    w = sum(p.width for p in panels) + gap * (len(panels) - 1)
    h = max(p.height for p in panels)
    out = Image.new("RGB", (w, h), "white")
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + gap
    return out


def vstack(panels: list[Image.Image], gap: int = 12) -> Image.Image:
    w = max(p.width for p in panels)
    out = Image.new("RGB", (w, sum(p.height for p in panels) + gap * (len(panels) - 1)), "white")
    y = 0
    for p in panels:
        out.paste(p, (0, y))
        y += p.height + gap
    return out


def _load_rgb(path: Path) -> np.ndarray:
    return np.asarray(open_photo(path).convert("RGB"))  # upright by EXIF, 16-bit grey scaled


def _demo_faces(paths: list[str], limit: int) -> list[tuple[Path, np.ndarray]]:
    """The shipped face plus the user's: a file that cannot be read is an error; unreadable files
    inside a folder are skipped and reported."""
    faces = []
    for path in [*DEMO_FACES, *paths]:
        for p in list_images(Path(path), "image or folder"):
            if len(faces) == limit:
                return faces
            try:
                faces.append((p, _load_rgb(p)))
            except OSError as e:
                if Path(path).is_file():
                    raise OSError(f"cannot read image {p}: {e}") from None
                print(f"genaug demo: skipped {p}: {e}", file=sys.stderr)
    return faces


def run_demo(args: argparse.Namespace) -> Path:
    from ..engine.core import Engine

    if args.max_faces < 0 or (args.generated or 0) < 0:
        raise UsageError("--max-faces and --generated must be >= 0")
    if args.max_faces == 0 and args.generated == 0:
        raise UsageError("nothing to show: --max-faces 0 and --generated 0")
    check_model_args(args.bundle, args.device, args.refine_steps)
    out = Path(args.out).expanduser()
    if out.is_dir() or not out.suffix:  # a folder (made if new), as `genaug augment --out` takes: the picture goes into it
        out = out / "genaug_demo.png"
    if out.suffix.lower() not in Image.registered_extensions():  # checked before the work, not by PIL's save after it
        raise UsageError(f"--out {args.out}: give a picture file (.png, .jpg, ...) or a folder, "
                         f"not {out.suffix or 'no extension'!r}")
    blocked = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:  # checked before the work, not by mkdir after it
        raise NotADirectoryError(f"--out {args.out}: {blocked} is a file, not a folder")
    faces = _demo_faces(args.images or [], args.max_faces)
    if any(p.resolve() == out.resolve() for p, _ in faces):  # the picture would replace one of the user's photos
        raise ValueError(f"--out {args.out} is one of the --images; write the picture to another path")
    engine = Engine(args.bundle, device=args.device, refine_steps=args.refine_steps)
    can_sample = getattr(engine.bundle, "can_sample", True)  # the edit kind edits faces, it cannot invent them
    if args.generated and not can_sample:  # asked for, not the default: refused rather than dropped
        raise UsageError(f"--generated {args.generated}: bundle {engine.bundle.name!r} is an edit model, it edits real "
                         "faces and cannot generate random ones (drop --generated, or give it 0)")
    generated = (2 if args.generated is None else args.generated) if can_sample else 0
    if not faces and not generated:
        raise UsageError(f"bundle {engine.bundle.name!r} cannot generate faces: give real faces (--max-faces >= 1)")
    panels = [face_panel(engine, image, p.name) for p, image in faces]
    panels += [face_panel(engine, None, f"generated face {i + 1}", seed=args.seed + i) for i in range(generated)]
    picture = vstack([hstack(panels), *([generated_panel(engine.bundle, 16, args.seed)] if can_sample else [])])
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out)
    print(f"wrote {out.resolve()} ({picture.width}x{picture.height}): {len(faces)} real face(s), "
          f"their reconstructions and sweeps of {len(engine.spec.codes)} codes and the {', '.join(CONTROL_NAMES)} controls")
    return out


def build_parser() -> argparse.ArgumentParser:
    d = argparse.ArgumentParser(prog="genaug demo", description="Write a picture of real faces, their reconstructions "
                                "and a sweep of every code and image-space control (yaw, light) on each face.",
                                epilog=EXIT_STATUS)
    add_model_args(d)
    d.add_argument("--out", default="genaug_demo.png", help="where to write the picture (a folder: genaug_demo.png in it)")
    d.add_argument("--images", nargs="*", help="extra face images or folders to include")
    d.add_argument("--max-faces", type=int, default=4, help="at most this many real faces")
    d.add_argument("--generated", type=int, default=None, help="also sweep this many random generated faces (default 2); "
                   "only for bundles that can generate faces: an edit model (the default bundle) shows none")
    d.add_argument("--seed", type=int, default=0, help="seed for the random samples")
    return d


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded("genaug demo", run_demo, args)
