"""Runtime speed: augmentation throughput with cached latents vs the raw generator, and inversion
cost (predictor, predictor + K refinement steps, optimisation alone from a random start).

    python benchmarks/speed.py [--bundle PATH] [--device auto] [--batch-size 64] [--out results.json]

Test faces: ``--batch-size`` real held-out faces (``--data``, default celeba_id200; people the
default model never saw) or, with ``--data generated`` or when the folder is absent, generated
faces. For each K in ``--steps``: ms/image and score of predictor + K Adam steps. Optimisation
alone starts from a random latent and runs (scored every ``--chunk`` steps, up to ``--max-steps``)
until it reaches the best of those scores; for each K the speedup is the random start's time to
reach the same score over predictor + K's time (goal >= 20). Ratios, not absolute times, are comparable across machines.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genaug.engine import Engine
from genaug.invert import invert, latent_to_raw, raw_to_latent, refine
from genaug.recon import reconstruction_score


DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba_id200"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> tuple[float, object]:
    """Median seconds per call after one warm-up call, and the last call's result."""
    out = fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2], out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="default")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, nargs="+", default=[0, 5, 20], help="K refinement steps after the predictor (several)")
    ap.add_argument("--chunk", type=int, default=5, help="random-start optimisation is scored every CHUNK steps")
    ap.add_argument("--max-steps", type=int, default=2000, help="cap for optimisation from a random start")
    ap.add_argument("--loss", default="mse+msssim")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="ImageFolder of faces, or 'generated'")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    eng = Engine(a.bundle, device=a.device, refine_steps=max(a.steps), refine_loss=a.loss, batch_size=a.batch_size, seed=a.seed)
    dev, n, spec = eng.device, a.batch_size, eng.spec
    g = torch.Generator().manual_seed(a.seed)
    if a.data != "generated" and Path(a.data).is_dir():
        from benchmarks.augmentation_quality import held_out_faces, to_model

        faces = "real held-out faces from " + a.data
        x = to_model(held_out_faces(a.data, n, a.seed)[0], eng.image_size, eng.channels).to(dev)
    else:
        faces = "generated faces"
        with torch.no_grad():
            x = eng.generate(spec.sample(n, g).to(dev))
    gen_net, pred = eng.bundle.generator, eng.bundle.predictor
    lat = spec.sample(n, g).to(dev)

    # throughput: raw generator vs augment_tensor with cached latents
    with torch.no_grad():
        t_gen, _ = timed(lambda: gen_net(lat), dev, a.repeats)
    eng.augment_tensor(x)  # fill the cache
    t_aug, _ = timed(lambda: eng.augment_tensor(x), dev, a.repeats)

    # inversion: predictor + K refinement steps, for each K
    inv_rows = []
    for k in a.steps:
        t_k, inv = timed(lambda: invert(gen_net, pred, spec, x, k, a.loss), dev, a.repeats if k == 0 else max(1, a.repeats // 2))
        inv_rows.append({"K": k, "ms_per_image": 1000 * t_k / n, "score": inv.score.mean().item()})

    # optimisation alone from a random start, timed in chunks of --chunk steps (scoring not timed),
    # until it reaches the best predictor + K score or --max-steps
    target = max(r["score"] for r in inv_rows)
    raw = latent_to_raw(spec, spec.sample(n, g).to(dev))
    trace, steps, spent = [], 0, 0.0
    while steps < a.max_steps:
        _sync(dev)
        t0 = time.perf_counter()
        raw = refine(gen_net, spec, x, raw, a.chunk, a.loss)
        _sync(dev)
        spent += time.perf_counter() - t0
        steps += a.chunk
        with torch.no_grad():
            score = reconstruction_score(gen_net(raw_to_latent(spec, raw)), x).mean().item()
        trace.append((steps, spent, score))
        if score >= target:
            break
    for r in inv_rows:  # first point of the trace at the same score; a lower bound when never reached
        hit = next((t for t in trace if t[2] >= r["score"]), None)
        r["random_start_steps"] = hit[0] if hit else None
        r["random_start_ms_per_image"] = 1000 * (hit[1] if hit else spent) / n
        r["speedup_at_equal_score"] = r["random_start_ms_per_image"] / r["ms_per_image"]
        r["reached"] = hit is not None

    res = {
        "device": str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
        "bundle": a.bundle, "faces": faces, "image_size": eng.image_size, "batch_size": n, "loss": a.loss,
        "generator_images_per_s": n / t_gen,
        "augment_cached_images_per_s": n / t_aug,
        "augment_vs_generator_ratio": t_gen / t_aug,
        "random_start_final": {"steps": steps, "score": trace[-1][2] if trace else None},
        "inversion": inv_rows,
    }
    flat = {k: v for k, v in res.items() if k != "inversion"}
    width = max(map(len, flat))
    for k, v in flat.items():
        print(f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    print(f"\n{'inversion':<22}{'ms/image':>9}  {'score':>6}  {'random start: steps':>20}  {'ms/image':>9}  {'speedup':>8}")
    for r in inv_rows:
        name = "predictor only" if r["K"] == 0 else f"predictor + {r['K']} steps"
        steps_txt = str(r["random_start_steps"]) if r["reached"] else f">{res['random_start_final']['steps']}"
        print(f"{name:<22}{r['ms_per_image']:9.2f}  {r['score']:6.3f}  {steps_txt:>20}  {r['random_start_ms_per_image']:9.1f}  "
              f"{r['speedup_at_equal_score']:7.1f}x" + ("" if r["reached"] else " (lower bound)"))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
