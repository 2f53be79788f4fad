"""Runtime speed: augmentation throughput with cached latents vs the raw generator, and inversion
cost (predictor, predictor + K refinement steps, optimisation alone from a random start).

    python benchmarks/speed.py --bundle PATH [--device auto] [--batch-size 64] [--out results.json]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from genaug.engine import Engine
from genaug.invert import invert, latent_to_raw, raw_to_latent, refine
from genaug.recon import reconstruction_score


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds per call after one warm-up call."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="default")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20, help="K refinement steps after the predictor")
    ap.add_argument("--max-steps", type=int, default=2000, help="cap for optimisation from a random start")
    ap.add_argument("--loss", default="mse+msssim")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    eng = Engine(a.bundle, device=a.device, refine_steps=a.steps, refine_loss=a.loss, batch_size=a.batch_size, seed=a.seed)
    dev, n, spec = eng.device, a.batch_size, eng.spec
    g = torch.Generator().manual_seed(a.seed)
    with torch.no_grad():  # test faces: generated images (exactly invertible, so scores are comparable)
        x = eng.generate(spec.sample(n, g).to(dev))
    gen_net, pred = eng.bundle.generator, eng.bundle.predictor
    lat = spec.sample(n, g).to(dev)

    # throughput: raw generator vs augment_tensor with cached latents
    with torch.no_grad():
        t_gen = timed(lambda: gen_net(lat), dev, a.repeats)
    eng.augment_tensor(x)  # fill the cache
    t_aug = timed(lambda: eng.augment_tensor(x), dev, a.repeats)

    # inversion: predictor only, predictor + K steps
    t_pred = timed(lambda: invert(gen_net, pred, spec, x, 0, a.loss), dev, a.repeats)
    t_refk = timed(lambda: invert(gen_net, pred, spec, x, a.steps, a.loss), dev, max(1, a.repeats // 2))
    s_pred = invert(gen_net, pred, spec, x, 0, a.loss).score.mean().item()
    s_refk = invert(gen_net, pred, spec, x, a.steps, a.loss).score.mean().item()

    # optimisation alone from a random start until it reaches the predictor-only score
    raw = latent_to_raw(spec, spec.sample(n, g).to(dev))
    steps, chunk, score = 0, 10, 0.0
    _sync(dev)
    t0 = time.perf_counter()
    while steps < a.max_steps:
        raw = refine(gen_net, spec, x, raw, chunk, a.loss)
        steps += chunk
        with torch.no_grad():
            score = reconstruction_score(gen_net(raw_to_latent(spec, raw)), x).mean().item()
        if score >= s_pred:
            break
    _sync(dev)
    t_opt = time.perf_counter() - t0

    res = {
        "device": str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
        "bundle": a.bundle, "image_size": eng.image_size, "batch_size": n, "loss": a.loss,
        "generator_images_per_s": n / t_gen,
        "augment_cached_images_per_s": n / t_aug,
        "augment_vs_generator_ratio": t_gen / t_aug,
        "predictor_ms_per_image": 1000 * t_pred / n, "predictor_score": s_pred,
        f"predictor_plus_{a.steps}_steps_ms_per_image": 1000 * t_refk / n, f"predictor_plus_{a.steps}_steps_score": s_refk,
        "random_start_steps_to_predictor_score": steps, "random_start_reached": score >= s_pred,
        "random_start_score": score, "random_start_ms_per_image": 1000 * t_opt / n,
        "predictor_speedup_vs_random_start": t_opt / t_pred,
    }
    width = max(map(len, res))
    for k, v in res.items():
        print(f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == "__main__":
    main()
