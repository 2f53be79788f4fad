"""Benchmark ``genaug expand``: throughput against generation alone, and peak memory vs dataset size.

    python benchmarks/expand.py --bundle default --source ../shared/data/celeba_train_64/images \\
        --sizes 64,640 --variants 8 --batch-size 64 --json bench_expand.json

* speed: expansion (decode + invert + render + background HDF5 writing + merge) in images/s,
  against the same engine work without any writing (decode, frame, invert, edit, render, to uint8)
  on the same images with the same batch size. Goal: ratio >= 0.9.
* memory: each size runs in a fresh subprocess; peak RSS (ru_maxrss) at two dataset sizes 10x
  apart. Goal: ratio <= 1.2 (memory does not grow with the dataset).

``--bundle tiny`` builds an untrained 32 px bundle (for machines without the default model).
Source images are linked (not copied) into a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "celeba_train_64" / "images"


def make_source(src: Path, n: int, dest: Path) -> Path:
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(files) < n:
        raise SystemExit(f"{src} has {len(files)} images, need {n}")
    dest.mkdir(parents=True, exist_ok=True)
    for f in files[:n]:
        (dest / f.name).symlink_to(f.resolve())
    return dest


def make_bundle(spec: str, tmp: Path) -> str:
    if spec != "tiny":
        return spec
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import make_tiny_bundle

    from genaug.bundle import save_bundle
    from genaug.models.latent import LatentSpec

    path = tmp / "tiny-bundle"
    save_bundle(make_tiny_bundle(LatentSpec.parse(8, "glasses:2:Eyeglasses,3", "smile")), path)
    return str(path)


def generation_alone(src: Path, a: argparse.Namespace) -> tuple[float, int]:
    """Images/s of the engine's work on the same images and batch size, without writing."""
    from genaug.engine import Engine
    from genaug.expand.pipeline import to_uint8
    from genaug.expand.sources import FolderSource
    from genaug.engine.edits import variant_edits

    eng = Engine(a.bundle, device=a.device, refine_steps=a.refine_steps, batch_size=a.batch_size, cache_size=0)
    source = FolderSource(src)
    t0, n_out = time.time(), 0
    for lo in range(0, len(source), a.batch_size):
        idx = list(range(lo, min(lo + a.batch_size, len(source))))
        x, _ = eng.frame([source.load(i, eng.channels) for i in idx])
        x = x.to(eng.device)
        inv = eng.invert(x)
        rows = [(k, e) for k, i in enumerate(idx) for e in variant_edits(eng.spec, 0, i, a.variants)]
        for c in range(0, len(rows), a.batch_size):
            chunk = rows[c:c + a.batch_size]
            ks = torch.tensor([k for k, _ in chunk], device=eng.device)
            out, _ = eng.render_edits(x[ks], inv.latent[ks], [e for _, e in chunk], base=inv.recon[ks])
            _ = [to_uint8(o) for o in out]
            n_out += len(chunk)
    if eng.device.type == "cuda":
        torch.cuda.synchronize()
    return n_out / (time.time() - t0), n_out


def run_expand(src: Path, out: Path, a: argparse.Namespace) -> dict:
    from genaug.expand import expand_to_hdf5

    t0 = time.time()
    res = expand_to_hdf5(src, out, a.variants, bundle=a.bundle, refine_steps=a.refine_steps, batch_size=a.batch_size,
                         device=a.device, progress=False, overwrite=True)
    dt = time.time() - t0
    return {"records": res.n_records, "seconds": dt, "images_per_s": res.n_records / dt,
            "file_mb": out.stat().st_size / 2**20, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default="default", help="'default', a bundle folder, or 'tiny' (untrained 32 px)")
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder of face images (flat)")
    p.add_argument("--sizes", default="64,640", help="two dataset sizes (source images), 10x apart")
    p.add_argument("--variants", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--refine-steps", type=int, default=None, help="inversion refinement (default: the bundle's own)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, default=Path("bench_expand.json"))
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # internal: one memory run
    a = p.parse_args()
    if a.child:
        print(json.dumps(run_expand(a.child, a.child.with_suffix(".h5"), a)))
        return
    sizes = [int(s) for s in a.sizes.split(",")]
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        a.bundle = make_bundle(a.bundle, tmp)
        if a.refine_steps is None:  # what expansion does by default: the bundle's own inversion
            from genaug.bundle import load_bundle

            a.refine_steps = load_bundle(a.bundle).default_refine_steps
        srcs = {n: make_source(a.source, n, tmp / f"src{n}") for n in sizes}
        # speed: same images, same batch size; warm-up on a few images first
        generation_alone(make_source(a.source, min(8, sizes[0]), tmp / "warm"), a)
        n_speed = sizes[0]
        gen_ips, _ = generation_alone(srcs[n_speed], a)
        exp = run_expand(srcs[n_speed], tmp / "speed.h5", a)
        mem = {}
        for n in sizes:
            cmd = [sys.executable, __file__, "--child", str(srcs[n]), "--bundle", a.bundle, "--variants", str(a.variants),
                   "--batch-size", str(a.batch_size), "--refine-steps", str(a.refine_steps), "--device", a.device]
            mem[n] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    result = {
        "bundle": a.bundle, "device": a.device, "torch_threads": torch.get_num_threads(), "variants": a.variants,
        "batch_size": a.batch_size, "refine_steps": a.refine_steps,
        "speed": {"source_images": n_speed, "generation_alone_ips": gen_ips, "expand_ips": exp["images_per_s"],
                  "ratio": exp["images_per_s"] / gen_ips},
        "memory": {str(n): m for n, m in mem.items()},
        "memory_ratio": mem[sizes[-1]]["maxrss_mb"] / mem[sizes[0]]["maxrss_mb"],
    }
    print(f"{'measure':<34}{'value':>12}")
    print(f"{'generation alone (img/s)':<34}{gen_ips:>12.1f}")
    print(f"{'expand to HDF5 (img/s)':<34}{exp['images_per_s']:>12.1f}")
    print(f"{'speed ratio (goal >= 0.9)':<34}{result['speed']['ratio']:>12.2f}")
    for n, m in mem.items():
        print(f"{f'peak RSS, {n} sources (MB)':<34}{m['maxrss_mb']:>12.0f}   ({m['records']} records, {m['images_per_s']:.1f} img/s)")
    print(f"{'memory ratio (goal <= 1.2)':<34}{result['memory_ratio']:>12.2f}")
    a.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
