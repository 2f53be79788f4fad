"""``genaug demo``, ``genaug augment`` and ``genaug info``: the user's first five minutes.

* ``demo`` writes one picture: real faces (a public-domain photo shipped with genaug, plus any
  given with ``--images``), their reconstructions, and a sweep of every code on each face.
* ``augment IMAGE_OR_DIR --out DIR`` writes augmented variants of the user's own faces (same size
  as the inputs) and a contact sheet.
* ``info`` lists a bundle's codes and what they control.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .bundle import Bundle, read_config
from .sweep import Edit, code_values

ASSETS = Path(__file__).with_name("assets")
DEMO_FACES = [ASSETS / "astronaut_face.jpg"]
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
CELL = 96  # display size of one face in the picture
LABEL_W = 110


def _images_in(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no such image or folder: {path}")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise ValueError(f"no images found in {path}")
    return files


def _to_pil(t: torch.Tensor) -> Image.Image:
    """CHW [-1,1] -> PIL at display size."""
    arr = ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    im = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    return im.convert("RGB").resize((CELL, CELL), Image.BICUBIC)


def _value_label(bundle: Bundle, code: int, value: float) -> str:
    return f"{int(value)}" if bundle.spec.is_categorical(code) else f"{value:+.1f}"


def demo_sweep_values(bundle: Bundle, code: int) -> list[float]:
    """Categories of a categorical code; 5 values across a continuous code's range."""
    return code_values(bundle.spec, code, "all" if bundle.spec.is_categorical(code) else 5)


def face_panel(engine, image: np.ndarray | None, title: str, seed: int = 0) -> Image.Image:
    """One face: input and reconstruction, then one row per code sweeping its values.

    With ``image`` the face is inverted and edits are rendered in ``delta`` mode (what users get);
    with ``image=None`` a random generated face is swept in ``regenerate`` mode, which shows what
    each code controls on its own.
    """
    bundle = engine.bundle
    if image is None:
        lat = bundle.spec.sample(1, generator=torch.Generator().manual_seed(seed)).to(engine.device)
        x = recon = engine.generate(lat)
        caption, mode = "generated", "regenerate"
    else:
        x = engine.frame([image], framing="full")[0].to(engine.device)
        inv = engine.invert(x)
        lat, recon, caption, mode = inv.latent, inv.recon, f"score {inv.score[0].item():.2f}", "delta"
    rows = []
    for ci in range(len(bundle.spec.codes)):
        values = demo_sweep_values(bundle, ci)
        n = len(values)
        out, _ = engine.render_edits(x.expand(n, -1, -1, -1), lat.expand(n, -1), [Edit(ci, v) for v in values],
                                     base=recon.expand(n, -1, -1, -1), mode=mode)
        rows.append((ci, values, out))
    ncol = max(2, max(len(v) for _, v, _ in rows))
    canvas = Image.new("RGB", (LABEL_W + ncol * CELL, 20 + (CELL + 16) * (1 + len(rows))), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), f"{title}  ({mode})", fill="black")
    y = 20
    draw.text((4, y + CELL // 2 - 6), "input / recon" if image is not None else "random face", fill="black")
    canvas.paste(_to_pil(x[0]), (LABEL_W, y))
    draw.text((LABEL_W, y + CELL + 2), "real face" if image is not None else "", fill="gray")
    if image is not None:
        canvas.paste(_to_pil(recon[0]), (LABEL_W + CELL, y))
        draw.text((LABEL_W + CELL, y + CELL + 2), caption, fill="gray")
    for ci, values, outs in rows:
        y += CELL + 16
        code = bundle.spec.codes[ci]
        label = code.name + (f"\n({code.attribute})" if code.attribute else "")  # descriptions: genaug info
        draw.text((4, y + CELL // 2 - 12), label, fill="black")
        for j, (v, o) in enumerate(zip(values, outs)):
            canvas.paste(_to_pil(o), (LABEL_W + j * CELL, y))
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
        canvas.paste(_to_pil(im), ((i % cols) * CELL, 20 + (i // cols) * CELL))
    return canvas


def _hstack(panels: list[Image.Image], gap: int = 12) -> Image.Image:
    w = sum(p.width for p in panels) + gap * (len(panels) - 1)
    h = max(p.height for p in panels)
    out = Image.new("RGB", (w, h), "white")
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + gap
    return out


def _vstack(panels: list[Image.Image], gap: int = 12) -> Image.Image:
    w = max(p.width for p in panels)
    out = Image.new("RGB", (w, sum(p.height for p in panels) + gap * (len(panels) - 1)), "white")
    y = 0
    for p in panels:
        out.paste(p, (0, y))
        y += p.height + gap
    return out


def _load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def run_demo(args: argparse.Namespace) -> Path:
    from .engine import Engine

    engine = Engine(args.bundle, device=args.device, refine_steps=args.refine_steps)
    faces = [*DEMO_FACES, *([p for d in args.images for p in _images_in(Path(d))] if args.images else [])]
    faces = faces[: args.max_faces]
    panels = [face_panel(engine, _load_rgb(p), p.name) for p in faces]
    panels += [face_panel(engine, None, f"generated face {i + 1}", seed=args.seed + i) for i in range(args.generated)]
    picture = _vstack([_hstack(panels), generated_panel(engine.bundle, 16, args.seed)])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out)
    print(f"wrote {out.resolve()} ({picture.width}x{picture.height}): {len(faces)} real face(s), "
          f"their reconstructions and sweeps of {len(engine.spec.codes)} codes")
    return out


def run_augment(args: argparse.Namespace) -> Path:
    from tqdm.auto import tqdm

    from .engine import Engine

    files = _images_in(Path(args.input))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    engine = Engine(args.bundle, device=args.device, mode=args.mode, refine_steps=args.refine_steps, seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    sheet_rows = []
    bar = tqdm(total=len(files), desc="augmenting", unit="img")
    for start in range(0, len(files), engine.batch_size):
        chunk = files[start : start + engine.batch_size]
        images = []
        for path in chunk:
            with Image.open(path) as im:
                images.append(np.asarray(im.convert("RGBA" if im.mode in ("RGBA", "LA") else "RGB")))
        # the first pass inverts the whole chunk in one batch; later passes hit the latent cache
        passes = [engine.augment(images, generator=gen)[0] for _ in range(args.variants)]
        for j, (path, img) in enumerate(zip(chunk, images)):
            variants = [p[j] for p in passes]
            for i, v in enumerate(variants):
                Image.fromarray(v).save(out / f"{path.stem}_aug{i:02d}.png")
            if len(sheet_rows) < 32:
                sheet_rows.append(_hstack([Image.fromarray(a).convert("RGB").resize((CELL, CELL)) for a in [img, *variants]], gap=2))
        bar.update(len(chunk))
    bar.close()
    sheet = _vstack(sheet_rows, gap=2)
    sheet.save(out / "contact_sheet.png")
    print(f"wrote {len(files) * args.variants} augmented images and {out / 'contact_sheet.png'} to {out.resolve()}")
    return out


def run_info(args: argparse.Namespace) -> None:
    cfg = read_config(args.bundle)
    from .latent import LatentSpec

    spec = LatentSpec.from_dict(cfg["latent"])
    if args.json:
        print(json.dumps(cfg, indent=2))
        return
    img = cfg.get("image", {})
    print(f"bundle   {cfg.get('name')}  ({args.bundle})")
    print(f"image    {img.get('size')}x{img.get('size')}, {img.get('channels')} channels; framing {cfg.get('framing')}")
    print(f"latent   z: {spec.noise_dim} dims + {len(spec.codes)} codes")
    metrics = cfg.get("training", {}).get("metrics")
    if metrics:
        print("metrics  " + ", ".join(f"{k}={v:.3g}" for k, v in metrics.items() if isinstance(v, (int, float))))
    print(f"\n{'#':>2}  {'name':<12} {'kind':<18} {'attribute':<12} controls")
    for i, c in enumerate(spec.codes):
        kind = f"categorical k={c.k}" if spec.is_categorical(i) else f"continuous [{c.low:g},{c.high:g}]"
        print(f"{i:>2}  {c.name:<12} {kind:<18} {c.attribute or '-':<12} {c.description or '(unnamed: see genaug demo)'}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genaug", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--bundle", default="default", help="bundle folder or 'default' (the model shipped with genaug)")
        sp.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")

    d = sub.add_parser("demo", help="write a picture of faces, reconstructions and code sweeps")
    common(d)
    d.add_argument("--out", default="genaug_demo.png", help="where to write the picture")
    d.add_argument("--images", nargs="*", help="extra face images or folders to include")
    d.add_argument("--max-faces", type=int, default=4, help="at most this many real faces")
    d.add_argument("--refine-steps", type=int, default=30, help="latent refinement steps after the predictor")
    d.add_argument("--generated", type=int, default=2, help="also sweep this many random generated faces")
    d.add_argument("--seed", type=int, default=0, help="seed for the random samples")

    a = sub.add_parser("augment", help="augment your own face images")
    a.add_argument("input", help="an image file or a folder of images")
    common(a)
    a.add_argument("--out", required=True, help="output folder")
    a.add_argument("--variants", type=int, default=4, help="augmented variants per image")
    a.add_argument("--mode", default="delta", choices=["delta", "regenerate"], help="how edits are applied")
    a.add_argument("--refine-steps", type=int, default=20, help="latent refinement steps after the predictor")
    a.add_argument("--seed", type=int, default=0, help="random seed")

    i = sub.add_parser("info", help="list a bundle's codes and what they control")
    i.add_argument("--bundle", default="default", help="bundle folder or 'default'")
    i.add_argument("--json", action="store_true", help="print the whole config as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"demo": run_demo, "augment": run_augment, "info": run_info}[args.command](args)
    except (FileNotFoundError, ValueError) as e:
        print(f"genaug {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0
