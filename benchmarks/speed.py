"""Runtime speed, like with like.

    python benchmarks/speed.py [--bundle PATH] [--device auto] [--batch-size 64] [--out results.json]
    python benchmarks/speed.py --quick --bundle PATH          # smoke test (seconds)

1. Cached augmentation vs the raw generator, on the SAME batch and latents: the batch's latents
   are inverted once (filling the engine's cache); then, interleaved over ``--repeats`` rounds
   after ``--warmup`` rounds, ``generator`` times G(edited latents) alone and ``augment (cached)``
   times ``Engine.augment_tensor`` on that batch with the same edits (cache look-up by content
   hash, applying the edits, one generator pass on the edited latents, the delta blend; the base
   image G(latent) comes from the cache). Medians, quartiles and min/max per batch, for 1 thread
   and for all threads. Every timing is given as wall-clock and as this process's CPU time (all
   its threads): on a machine shared with other jobs the CPU time is the faithful one.
2. One ``GenerativeFaceAug`` call (inside ``A.Compose``) on a 178x218 photo (``--call-sizes 64 128``:
   on the ``--call-data`` photos resized to those squares, e.g. tight crops; this part alone), one thread:
   ``uncached`` (a photo not seen before: framing, inversion with the default refinement, edit,
   paste back), ``cached`` (the same photo again) and the classical albumentations pipeline of
   the recognition benchmarks on the same photos; medians over ``--photos`` photos.
3. Inversion cost: predictor + K refinement steps (``--steps``), against optimisation alone from a
   random start until it reaches the same reconstruction score (scored every ``--chunk`` steps).
4. The batch transform (``genaug.BatchFaceAug``, p=1) like with like against the bare generator on
   the same batch and edited latents, at each ``--batch-sizes`` and thread count (and on the GPU
   when ``--device`` is one): latents found by content key and by caller-named indices (both
   cached), the transform with the generator replaced by a copy of its stored output (its own cost,
   measured directly; the copy, the generator's output write, is timed alone and subtracted), and ``Engine.augment_tensor`` (cached; also with the generator stubbed) for reference; the cost beyond the generator
   per face (CPU time), also less the generator pass inside the same call, round by round; and per batch, from
   torch.profiler, the number of aten operations and of
   host reads / device syncs (``aten::item``, ``aten::_local_scalar_dense``, ``aten::is_nonzero``,
   ``cudaStreamSynchronize``, ``cudaDeviceSynchronize``). ``--batch-only`` runs this part alone.
Faces: real held-out faces (``--data``, default celeba_id200) or generated ones when absent.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
from benchmarks.faces import ID200, classical_pipeline  # noqa: E402
from benchmarks.report import emit  # noqa: E402
from genaug.engine import Engine
from genaug.engine.invert import invert, latent_to_raw, raw_to_latent, refine
from genaug.models.recon import reconstruction_score


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def spread(times_s: list[float]) -> dict[str, float]:
    """Median, quartiles and extremes of a list of seconds, in ms."""
    ms = sorted(1000 * t for t in times_s)
    q = statistics.quantiles(ms, n=4, method="inclusive") if len(ms) > 1 else [ms[0]] * 3
    return {"median_ms": q[1] if len(ms) > 1 else ms[0], "q1_ms": q[0], "q3_ms": q[2], "min_ms": ms[0], "max_ms": ms[-1], "n": len(ms)}


def interleaved(fns: dict[str, callable], device: torch.device, repeats: int, warmup: int) -> dict[str, dict]:
    """Time each function once per round, rounds interleaved, after ``warmup`` untimed rounds:
    wall-clock and CPU time of this process (all its threads; robust to a shared machine)."""
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in fns}
    for r in range(warmup + repeats):
        for name, fn in fns.items():
            _sync(device)
            t, c = time.perf_counter(), time.process_time()
            fn()
            _sync(device)
            if r >= warmup:
                times[name].append((time.perf_counter() - t, time.process_time() - c))
    return {k: {"wall": spread([w for w, _ in v]), "cpu": spread([c for _, c in v])} for k, v in times.items()}


def test_faces(eng: Engine, data: str, n: int, seed: int) -> tuple[torch.Tensor, str]:
    if data != "generated" and Path(data).is_dir():
        from benchmarks.augmentation_quality import held_out_faces, to_model

        return to_model(held_out_faces(data, n, seed)[0], eng.image_size, eng.channels).to(eng.device), f"real faces from {data}"
    with torch.no_grad():
        return eng.generate(eng.spec.sample(n, torch.Generator().manual_seed(seed))), "generated faces"


def cached_vs_generator(eng: Engine, x: torch.Tensor, threads: list[int], repeats: int, warmup: int, seed: int) -> dict:
    from genaug.engine.edits import default_codes, random_edits

    # latent edits: the random set's image-space controls never reach the generator
    edits = random_edits(eng.spec, len(x), torch.Generator().manual_seed(seed), codes=default_codes(eng.spec, controls=False))
    _, info = eng.augment_tensor(x, edits=edits)  # fills the cache; info.edited: the same latents G will see
    edited, gen = info.edited, eng.bundle.generator
    out = {}
    for t in threads:
        torch.set_num_threads(t)
        with torch.no_grad():
            res = interleaved({"generator": lambda: gen(edited), "augment (cached)": lambda: eng.augment_tensor(x, edits=edits)},
                              eng.device, repeats, warmup)
        for clock in ("wall", "cpu"):
            res[f"ratio_augment_over_generator_{clock}"] = res["augment (cached)"][clock]["median_ms"] / res["generator"][clock]["median_ms"]
        out[str(t)] = res
    return out


def per_call(bundle: str, device: str, data: str, photos: int, seed: int, size: int | None = None,
             codes: list[str] | None = None) -> dict:
    """ms per GenerativeFaceAug call (``codes``: its codes, None = the random set) on the folder's photos
    (celeba_id200: 178x218; ``size``: resized to size x size, e.g. tight 64 px crops) or 178x218 noise,
    one thread: uncached, cached, classical."""
    import albumentations as A

    from genaug.transforms import GenerativeFaceAug

    torch.set_num_threads(1)
    if Path(data).is_dir():
        from PIL import Image

        from genaug.training.data import list_images

        imgs = [Image.open(f).convert("RGB") for f in list_images(data)[: photos + 1]]
        imgs = [np.asarray(im.resize((size, size), Image.BILINEAR) if size else im) for im in imgs]
        source = f"{len(imgs) - 1} photos of {imgs[0].shape[1]}x{imgs[0].shape[0]} from {data}"
    else:
        rng = np.random.default_rng(seed)
        imgs = [rng.integers(0, 256, (218, 178, 3), dtype=np.uint8) for _ in range(photos + 1)]
        source = "random 178x218 noise images (no face folder)"
    pipe = A.Compose([GenerativeFaceAug(bundle=bundle, device=device, p=1.0, codes=codes)], seed=seed)
    classical = classical_pipeline(seed)
    pipe(image=imgs[-1])  # loads the model: not timed

    def each(fn) -> dict:
        walls, cpus = [], []
        for im in imgs[:-1]:
            t, c = time.perf_counter(), time.process_time()
            fn(im)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        return {"wall": spread(walls), "cpu": spread(cpus)}

    return {"photos": source, "uncached": each(lambda im: pipe(image=im)), "cached": each(lambda im: pipe(image=im)),
            "classical": each(lambda im: classical(image=im))}


def inversion_cost(eng: Engine, x: torch.Tensor, steps: list[int], repeats: int, chunk: int, max_steps: int, loss: str, seed: int) -> dict:
    """Predictor + K steps per K, and the random start's CPU time to the same score (the speedup
    compares CPU times: on a shared machine they, unlike wall-clock times, do not depend on load)."""
    spec, gen_net, pred, n, dev = eng.spec, eng.bundle.generator, eng.bundle.predictor, len(x), eng.device
    rows = []
    for k in steps:
        res = interleaved({"inv": lambda: invert(gen_net, pred, spec, x, k, loss)}, dev, max(1, repeats // 2), 1)["inv"]
        rows.append({"K": k, "ms_per_image": res["wall"]["median_ms"] / n, "cpu_ms_per_image": res["cpu"]["median_ms"] / n,
                     "score": invert(gen_net, pred, spec, x, k, loss).score.mean().item()})
    target = max(r["score"] for r in rows)
    raw = latent_to_raw(spec, spec.sample(n, torch.Generator().manual_seed(seed)).to(dev))
    trace, done, spent = [], 0, 0.0
    while done < max_steps:
        _sync(dev)
        t0 = time.process_time()
        raw = refine(gen_net, spec, x, raw, chunk, loss)
        _sync(dev)
        spent, done = spent + time.process_time() - t0, done + chunk
        with torch.no_grad():
            trace.append((done, spent, reconstruction_score(gen_net(raw_to_latent(spec, raw)), x).mean().item()))
        if trace[-1][2] >= target:
            break
    for r in rows:  # first point of the trace at the same score; a lower bound when never reached
        hit = next((t for t in trace if t[2] >= r["score"]), None)
        r.update(random_start_steps=hit[0] if hit else None, reached=hit is not None,
                 random_start_cpu_ms_per_image=1000 * (hit[1] if hit else spent) / n)
        r["speedup_at_equal_score"] = r["random_start_cpu_ms_per_image"] / r["cpu_ms_per_image"]
    return {"rows": rows, "random_start_final": {"steps": done, "score": trace[-1][2] if trace else None}}


DEFINITIONS = {
    "generator": "one generator forward pass on the batch's edited latents (no cache, no blend)",
    "augment (cached)": "Engine.augment_tensor on the same batch and edits with its latents cached: content-hash "
                        "look-up, edits applied, one generator pass on the edited latents, delta blend",
    "uncached": "one GenerativeFaceAug call in A.Compose on a photo not seen before: framing, inversion (predictor + "
                "default refinement steps), edit, render, paste back",
    "cached": "the same call on a photo already seen (latent from the cache)",
    "classical": "the classical albumentations pipeline of the recognition benchmarks on the same photo",
    "batch (content key)": "genaug.BatchFaceAug(p=1) on the same batch in [0, 1], latents found by content key (cached)",
    "batch (named)": "the same with index= (dataset indices; latents gathered from its LatentTable)",
    "beyond own generator pass": "batch (content key) / (named) less the CPU time of the generator pass inside that same call, "
                                 "median over rounds (beyond_own_generator_cpu_ms_per_face; not the bare pass's spread)",
    "batch, generator stubbed": "batch (named) with the generator replaced by a stored output: the transform's own cost",
    "batch (content key), generator stubbed": "batch (content key) with the generator replaced by a stored output",
    "engine augment_tensor (cached)": "Engine.augment_tensor on the same batch and edits (the albumentations path's engine call)",
    "engine augment_tensor, generator stubbed": "the same with the generator replaced by a stored output: the engine path's own cost",
}


BATCH_READS = ("aten::item", "aten::_local_scalar_dense", "aten::is_nonzero", "cudaStreamSynchronize", "cudaDeviceSynchronize")


def batch_counts(aug, x: torch.Tensor, **kw) -> dict[str, int]:
    """aten operations and host reads / device syncs of one call, from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if x.device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        aug(x, **kw)
    names = [e.name for e in prof.events()]
    return {"aten_ops": sum(n.startswith("aten::") for n in names), "host_reads_and_syncs": sum(n in BATCH_READS for n in names)}


def batch_vs_generator(bundle: str, device: str, faces: torch.Tensor, sizes: list[int], threads: list[int], repeats: int,
                       warmup: int, seed: int) -> dict:
    """Part 4: BatchFaceAug (cached: by content, by index; generator stubbed) vs the bare generator."""
    from genaug.batch import BatchFaceAug
    from genaug.engine.batch_edits import edit_latents

    out: dict = {}
    for n in sizes:
        x = ((faces.repeat((n + len(faces) - 1) // len(faces), 1, 1, 1)[:n] + 1) / 2).clamp(0, 1)  # n faces in [0, 1]
        aug = BatchFaceAug(p=1.0, bundle=bundle, device=device, seed=seed, cache_size=max(n, 4096))
        x, idx = x.to(aug.device or x.device), torch.arange(n)
        aug(x, index=idx), aug(x)  # inverts once and fills both tables: everything below is cached
        eng, params = aug._engine, aug.draw(n)
        latent, base = aug.table.gather(idx.to(eng.device))
        step = dict(code=params.code.to(eng.device), value=params.value.to(eng.device), relative=params.relative.to(eng.device),
                    strength=params.strength.to(eng.device))
        edited = edit_latents(latent, aug._layout, aug._recipe, **step)[0]
        gen, seen = eng.bundle.generator, []
        eng.bundle.generator = lambda z: seen.append(gen(z)) or seen[-1]  # what the transform's own pass returns
        aug(x, index=idx, params=params)
        eng.bundle.generator, stored = gen, seen[-1]  # (its rows come in the transform's order, not edited's)

        def stubbed(call):  # the generator replaced by its stored output: the cost of everything else
            def run():
                eng.bundle.generator = lambda z: stored[: len(z)].clone()
                try:
                    call()
                finally:
                    eng.bundle.generator = gen
            return run

        own: dict[str, list[float]] = {"batch (content key)": [], "batch (named)": []}

        def own_pass(name, call):  # the call with its own generator pass timed: its cost beyond that pass, round by round
            def run():
                spent = []

                def timed(z):
                    c = time.process_time()
                    out = gen(z)
                    spent.append(time.process_time() - c)
                    return out
                eng.bundle.generator = timed
                try:
                    c = time.process_time()
                    call()
                    own[name].append(time.process_time() - c - sum(spent))
                finally:
                    eng.bundle.generator = gen
            return run

        xm, edits = x * 2 - 1, params.edits()
        eng.cache = type(eng.cache)(max(n, 4096))
        eng.augment_tensor(xm, edits=edits, strength=params.strength)  # fills the engine's own cache
        torch.set_num_threads(min(threads))  # counts under one thread setting at every size (some ops split work by thread)
        res: dict = {"counts": {"content": batch_counts(aug, x, params=params), "named": batch_counts(aug, x, index=idx, params=params)}}
        for t in threads:
            torch.set_num_threads(t)
            with torch.no_grad():
                for v in own.values():
                    v.clear()
                r = interleaved({"generator": lambda: gen(edited),
                                 "batch (content key)": own_pass("batch (content key)", lambda: aug(x, params=params)),
                                 "batch (named)": own_pass("batch (named)", lambda: aug(x, index=idx, params=params)),
                                 "batch, generator stubbed": stubbed(lambda: aug(x, index=idx, params=params)),
                                 "batch (content key), generator stubbed": stubbed(lambda: aug(x, params=params)),
                                 "engine augment_tensor (cached)": lambda: eng.augment_tensor(xm, edits=edits, strength=params.strength),
                                 "engine augment_tensor, generator stubbed": stubbed(
                                     lambda: eng.augment_tensor(xm, edits=edits, strength=params.strength)),
                                 "stub output": lambda: stored.clone()},  # what the stub itself costs (the generator's output write)
                                eng.device, repeats, warmup)
            g, stub = r["generator"]["cpu"]["median_ms"], r.pop("stub output")
            r["stub_output_cpu_ms"] = stub["cpu"]["median_ms"]
            r["beyond_generator_cpu_ms_per_face"] = {k: (r[k]["cpu"]["median_ms"] - g) / n for k in r
                                                     if k not in ("generator", "stub_output_cpu_ms")}
            for k in [k for k in r if k.endswith("generator stubbed")]:  # the stub's output copy is the generator's cost
                r["beyond_generator_cpu_ms_per_face"][k] = (r[k]["cpu"]["median_ms"] - r["stub_output_cpu_ms"]) / n
            r["ratio_over_generator_wall"] = {k: r[k]["wall"]["median_ms"] / r["generator"]["wall"]["median_ms"]
                                              for k in r if k not in ("generator", "beyond_generator_cpu_ms_per_face", "stub_output_cpu_ms")}
            # the same calls less their own generator pass, round by round (the bare pass's own spread on a shared machine,
            # a few % of a 300 ms pass, is more than the transform's cost; the rounds after the warmup)
            r["beyond_own_generator_cpu_ms_per_face"] = {k: 1000 * statistics.median(v[warmup:]) / n for k, v in own.items()}
            res[str(t)] = r
        out[str(n)] = res
    return out


def format_batch(part: dict, device: str) -> list[str]:
    lines = [f"BatchFaceAug on {device}: median CPU ms per batch; beyond the generator in CPU ms per face; counts per batch"]
    for n, res in part.items():
        for t, r in res.items():
            if t == "counts":
                continue
            b = r["beyond_generator_cpu_ms_per_face"]
            lines.append(f"batch {n}, {t} thread(s): generator {r['generator']['cpu']['median_ms']:.1f}, "
                         + ", ".join(f"{k} {r[k]['cpu']['median_ms']:.1f} (+{b[k]:.3f}/face)" for k in b))
            lines.append(f"batch {n}, {t} thread(s), beyond the call's own generator pass, CPU ms per face: "
                         + ", ".join(f"{k} {v:.3f}" for k, v in r["beyond_own_generator_cpu_ms_per_face"].items()))
        c = res["counts"]
        lines.append(f"batch {n}: aten ops / host reads+syncs per call: content {c['content']['aten_ops']} / "
                     f"{c['content']['host_reads_and_syncs']}, named {c['named']['aten_ops']} / {c['named']['host_reads_and_syncs']}")
    return lines


def format_table(r: dict) -> str:
    lines = [f"speed on {r['device']} ({r['faces']}, batch {r['batch_size']}); medians [q1, q3] in ms, wall-clock / CPU"]
    if "batch_transform" in r:
        lines += format_batch(r["batch_transform"], r["device"])
    for t, res in r.get("cached_vs_generator", {}).items():
        g, a = res["generator"], res["augment (cached)"]
        for clock in ("wall", "cpu"):
            lines.append(f"{t} thread(s), {clock}: generator {g[clock]['median_ms']:.1f} [{g[clock]['q1_ms']:.1f}, "
                         f"{g[clock]['q3_ms']:.1f}] ms/batch, augment (cached) {a[clock]['median_ms']:.1f} "
                         f"[{a[clock]['q1_ms']:.1f}, {a[clock]['q3_ms']:.1f}] ms/batch, "
                         f"ratio {res[f'ratio_augment_over_generator_{clock}']:.2f}")
    calls = {"": r["per_call"]} if "per_call" in r else {f" at {z}x{z}" if z != "0" else "": c
                                                          for z, c in r.get("per_call_sizes", {}).items()}
    codes = f", codes {' '.join(r['call_codes'])}" if r.get("call_codes") else ""
    for size, c in calls.items():
        lines.append(f"GenerativeFaceAug{codes} per photo{size} ({c['photos']}), 1 thread, wall / CPU ms: "
                     + ", ".join(f"{k} {c[k]['wall']['median_ms']:.1f} / {c[k]['cpu']['median_ms']:.1f}" for k in ("uncached", "cached", "classical")))
    if "inversion" in r:
        lines.append(f"{'inversion':<22}{'ms/image':>9}  {'CPU ms':>7}  {'score':>6}  {'random start: steps':>20}  {'CPU ms':>9}  {'speedup':>8}")
    for row in r.get("inversion", {}).get("rows", []):
        name = "predictor only" if row["K"] == 0 else f"predictor + {row['K']} steps"
        st = str(row["random_start_steps"]) if row["reached"] else f">{r['inversion']['random_start_final']['steps']}"
        lines.append(f"{name:<22}{row['ms_per_image']:9.2f}  {row['cpu_ms_per_image']:7.2f}  {row['score']:6.3f}  {st:>20}  "
                     f"{row['random_start_cpu_ms_per_image']:9.1f}  {row['speedup_at_equal_score']:7.1f}x"
                     + ("" if row["reached"] else " (lower bound)"))
    lines += [f"  {k}: {v}" for k, v in DEFINITIONS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="default")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, nargs="+", default=None, help="thread counts (default: 1 and all cores)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--photos", type=int, default=8, help="178x218 photos for the per-call timing")
    ap.add_argument("--steps", type=int, nargs="+", default=[0, 5, 20], help="K refinement steps after the predictor")
    ap.add_argument("--chunk", type=int, default=5, help="random-start optimisation is scored every CHUNK steps")
    ap.add_argument("--max-steps", type=int, default=2000, help="cap for optimisation from a random start")
    ap.add_argument("--loss", default="mse+msssim")
    ap.add_argument("--no-inversion", action="store_true", help="skip part 3 (inversion cost)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(ID200), help="ImageFolder of faces, or 'generated'")
    ap.add_argument("--out", default=None)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256], help="part 4: batch sizes")
    ap.add_argument("--batch-only", action="store_true", help="run part 4 (the batch transform) alone")
    ap.add_argument("--call-data", default=None, help="photos for part 2 (default: --data)")
    ap.add_argument("--call-sizes", type=int, nargs="+", default=None,
                    help="run part 2 alone, on the photos resized to each SxS (e.g. 64 128: tight crops; 0: as they are)")
    ap.add_argument("--call-codes", nargs="+", default=None, help="part 2: the transform's codes (default: the random set)")
    ap.add_argument("--quick", action="store_true", help="smoke test: batch 4, 2 repeats, 2 photos, K 0 2")
    a = ap.parse_args(argv)
    if a.quick:
        a.batch_size, a.repeats, a.warmup, a.photos, a.steps, a.max_steps, a.batch_sizes = 4, 2, 1, 2, [0, 2], 20, [4, 8]
    threads = a.threads or sorted({1, os.cpu_count() or 1})
    eng = Engine(a.bundle, device=a.device, refine_steps=max(a.steps), refine_loss=a.loss, batch_size=a.batch_size, seed=a.seed)
    x, faces = test_faces(eng, a.data, a.batch_size, a.seed)
    res = {"benchmark": "speed", "device": str(eng.device) + (f" ({torch.cuda.get_device_name(eng.device)})" if eng.device.type == "cuda" else ""),
           "bundle": a.bundle, "faces": faces, "image_size": eng.image_size, "batch_size": a.batch_size, "loss": a.loss,
           "definitions": DEFINITIONS}
    if a.call_sizes:  # part 2 alone, on photos resized to each size
        res["call_codes"] = a.call_codes
        res["per_call_sizes"] = {str(z): per_call(a.bundle, a.device, a.call_data or a.data, a.photos, a.seed, z or None,
                                                  a.call_codes) for z in a.call_sizes}
        emit(res, format_table(res), a.out)
        return res
    if not a.batch_only:
        res["cached_vs_generator"] = cached_vs_generator(eng, x, threads, a.repeats, a.warmup, a.seed)
        res["per_call"] = per_call(a.bundle, a.device, a.call_data or a.data, a.photos, a.seed)
        torch.set_num_threads(1)
        if not a.no_inversion:
            res["inversion"] = inversion_cost(eng, x, a.steps, a.repeats, a.chunk, a.max_steps, a.loss, a.seed)
    xb = x if len(x) >= max(a.batch_sizes) else test_faces(eng, a.data, max(a.batch_sizes), a.seed)[0]
    res["batch_transform"] = batch_vs_generator(a.bundle, str(eng.device), xb, a.batch_sizes, threads, a.repeats, a.warmup, a.seed)
    torch.set_num_threads(1)
    emit(res, format_table(res), a.out)
    return res


if __name__ == "__main__":
    main()
