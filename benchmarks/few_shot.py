"""Few-shot closed-set identification: does genaug help a recogniser that sees k photos per person?

    python benchmarks/few_shot.py                               # celeba_id200, k = 1 2, 3 seeds
    python benchmarks/few_shot.py --data DIR --shots 1 5 --seeds 5 --bundle PATH
    python benchmarks/few_shot.py --eval-split val --lr 1e-3    # tune on val (never on test)
    python benchmarks/few_shot.py --quick --bundle PATH         # smoke test (seconds)

For each k and seed, k training photos per person are drawn (the seed picks them, the
initialisation and the batch order), and each arm trains the same recogniser from scratch
(``benchmarks/recogniser.py``: FaceNet at 64 px, cosine softmax, a fixed budget of ``--steps``
AdamW steps with warm-up + cosine whatever k is). Arms: ``none``; ``classical`` (flip, affine,
colour, grey, blur, dropout); ``genaug`` (each sample shown as one of ``--variants`` offline
variants from ``genaug.expand_to_hdf5`` with probability ``--p-genaug``; made on the folder's photos at their own
size and framed like the 64 px faces, ``--render-at photo``, the default; ``crop``: on the crops); ``classical+genaug``
(both); ``classical+genaug-pair`` (every sample shown as itself and as one of its variants, both
classically augmented; loss on the real view plus ``--pair-weight`` * (1 - cos) pulling the
variant's embedding to the real one's). Every table also has ``HOG 1-NN``, a non-learned reference (scikit-image HOG features,
nearest training photo by cosine) that shows how strong the recogniser is. Top-1 on the test
split (``--eval-split``) of the folder's ``splits.csv``, else a seeded per-person split. Paired
differences per seed: classical+genaug(-pair) - classical and classical - none (mean, std, 95 % CI).
Settings: lr, steps and batch size were tuned on celeba_id200's val split (see docs/results.md).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.faces import (ID200, RECOGNISER_CODES, RECOGNISER_QUALITY, hog_features, load_people,  # noqa: E402
                              make_splits, nearest_neighbour_top1, offline_variants, parse_quality, pick_shots, subset)
from benchmarks.recogniser import ARMS, Augmenter, TrainSettings, classify, top1, train  # noqa: E402
from benchmarks.report import default_out, run_protocol  # noqa: E402
from benchmarks.stats import format_difference, mean_std, paired_difference  # noqa: E402
from genaug.device import resolve_device

RENDER_AT = ("photo", "crop")
PAIRS = (("classical+genaug", "classical"), ("classical+genaug-pair", "classical"), ("classical", "none"), ("genaug", "none"))


@dataclass
class FewShotConfig:
    data: str = str(ID200)
    shots: list[int] = field(default_factory=lambda: [1, 2])
    seeds: int = 3
    arms: list[str] = field(default_factory=lambda: ["none", "classical", "classical+genaug"])
    bundle: str = "default"
    device: str = "cpu"
    eval_split: str = "test"
    variants: int = 4
    refine_steps: int | None = None  # None: the bundle's own default
    strength: float = 1.0
    # codes genaug edits may move (names, "bound": the identity-safe codes bound to an attribute, "all-safe").
    # val, k = 1, 2 seeds (1 thread; classical 10.3 / 8.8 %): yaw + light with the quality gate 10.8 / 8.8 %,
    # bound codes + yaw + light 9.0 / -; bound codes alone lost 1-2 points (docs/results.md)
    codes: list[str] | None = field(default_factory=lambda: list(RECOGNISER_CODES))
    max_ids: int | None = None
    quality_threshold: float | str | None = RECOGNISER_QUALITY  # the expansion's realism gate ("auto": the critic's own threshold)
    # "photo": variants made on the folder's photos at their own resolution, then framed like the faces
    # (as a user augments photos before cropping); "crop": on the 64 px crops
    render_at: str = "photo"
    # 4,800 steps of 16 (val, k = 1, classical, 2 seeds: 10.1 % against 8.9 % for 1,600 of 32), on 2 threads
    train: TrainSettings = field(default_factory=lambda: TrainSettings(steps=4800, batch_size=16))
    first_seed: int = 0  # seeds first_seed .. first_seed + seeds - 1


def genaug_variants(cfg: FewShotConfig, data, rows: Tensor) -> tuple[dict[int, int], Tensor | None, float]:
    """Offline variants of every row any run trains on: (row -> position, variants, seconds)."""
    if not any("genaug" in a for a in cfg.arms):
        return {}, None, 0.0
    if cfg.render_at not in RENDER_AT:
        raise ValueError(f"render_at must be one of {RENDER_AT}, got {cfg.render_at!r}")
    files = [Path(cfg.data) / data.paths[r] for r in rows.tolist()] if cfg.render_at == "photo" else None
    var, secs = offline_variants(data.images[rows], cfg.bundle, cfg.variants, cfg.refine_steps, cfg.strength, cfg.device,
                                 codes=cfg.codes, quality_threshold=cfg.quality_threshold, files=files)
    print(f"offline genaug: {cfg.variants} variants x {len(rows)} photos in {secs:.0f}s", flush=True)
    return {r: i for i, r in enumerate(rows.tolist())}, var, secs


def run(cfg: FewShotConfig) -> dict:
    t_start = time.time()
    device = resolve_device(cfg.device)
    data = load_people(cfg.data)
    if cfg.max_ids:
        data = subset(data, torch.nonzero(data.labels < cfg.max_ids).flatten())
    splits = make_splits(data)
    ev = splits[cfg.eval_split]
    shots = {(k, s): pick_shots(data.labels, splits["train"], k, s) for k in cfg.shots for s in range(cfg.first_seed, cfg.first_seed + cfg.seeds)}
    pos, var, prep_s = genaug_variants(cfg, data, torch.unique(torch.cat(list(shots.values()))))
    ev_hog = hog_features(data.images[ev])
    runs: dict[str, dict[str, list[dict]]] = {a: {str(k): [] for k in cfg.shots} for a in ["HOG 1-NN", *cfg.arms]}
    for (k, s), rows in shots.items():
        labels = data.labels[rows]
        ref = nearest_neighbour_top1(hog_features(data.images[rows]), labels, ev_hog, data.labels[ev])
        runs["HOG 1-NN"][str(k)].append({"seed": s, "top1": ref})
        for arm in cfg.arms:
            v = None if var is None else var[[pos[r] for r in rows.tolist()]]
            aug = Augmenter(arm, s, v if "genaug" in arm else None, cfg.train.p_genaug)
            net, head, secs = train(data.images[rows], labels, cfg.train, aug, s, device)
            acc = top1(classify(net, head, data.images[ev], device), data.labels[ev])
            runs[arm][str(k)].append({"seed": s, "top1": acc, "train_s": round(secs, 1)})
            print(f"k={k} seed={s} {arm:18s} top1={acc:.3f} ({secs:.0f}s)   HOG 1-NN {ref:.3f}", flush=True)
    results = {a: {k: {**mean_std([r["top1"] for r in rs]), "runs": rs} for k, rs in per_k.items()}
               for a, per_k in runs.items()}
    diffs = {f"{a} - {b}": {str(k): paired_difference([r["top1"] for r in runs[a][str(k)]], [r["top1"] for r in runs[b][str(k)]])
                            for k in cfg.shots}
             for a, b in PAIRS if a in runs and b in runs}
    return {"benchmark": "few_shot", "config": asdict(cfg), "eval_split": cfg.eval_split,
            "data": {"folder": str(cfg.data), "identities": len(torch.unique(data.labels)), "eval_images": len(ev)},
            "results": results, "paired_differences": diffs, "genaug_prep_s": round(prep_s, 1),
            "wall_s": round(time.time() - t_start, 1), "cpu_s": round(time.process_time(), 1)}


def format_table(report: dict) -> str:
    cfg, t = report["config"], report["config"]["train"]
    ks = list(next(iter(report["results"].values())))
    lines = [f"few-shot identification on {Path(cfg['data']).name} ({report['data']['identities']} people, "
             f"{report['eval_split']} top-1 %, mean ± std over {cfg['seeds']} seeds; {t['steps']} AdamW steps of "
             f"{t['batch_size']}, lr {t['lr']:g}, weight decay {t['weight_decay']:g}, scale {t['scale']:g}, widths {t['widths']})",
             "| arm | " + " | ".join(f"k={k}" for k in ks) + " |", "| --- |" + " --- |" * len(ks)]
    for arm, per_k in report["results"].items():
        lines.append(f"| {arm} | " + " | ".join(f"{100 * per_k[k]['mean']:.1f} ± {100 * per_k[k]['std']:.1f}" for k in ks) + " |")
    for name, per_k in report["paired_differences"].items():
        lines.append(f"| {name} (points, ± std [95 % CI]) | " + " | ".join(format_difference(per_k[k]) for k in ks) + " |")
    lines.append(f"wall-clock {report['wall_s']:.0f}s, CPU {report['cpu_s']:.0f}s (genaug expansion {report['genaug_prep_s']:.0f}s)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = FewShotConfig()
    t = d.train
    p.add_argument("--data", default=d.data, help="ImageFolder of identities (default: celeba_id200)")
    p.add_argument("--shots", type=int, nargs="+", default=d.shots, help="training photos per person")
    p.add_argument("--seeds", type=int, default=d.seeds)
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds FIRST..FIRST+SEEDS-1 (more seeds later; benchmarks/pool_seeds.py joins the runs)")
    p.add_argument("--arms", nargs="+", default=d.arms, choices=ARMS)
    p.add_argument("--bundle", default="default", help="genaug bundle: 'default' or a bundle folder")
    p.add_argument("--device", default="cpu")
    p.add_argument("--eval-split", default="test", choices=("test", "val"), help="score on test, or on val to tune")
    p.add_argument("--steps", type=int, default=t.steps, help="optimiser steps per run (whatever k is)")
    p.add_argument("--batch-size", type=int, default=t.batch_size)
    p.add_argument("--lr", type=float, default=t.lr)
    p.add_argument("--weight-decay", type=float, default=t.weight_decay)
    p.add_argument("--scale", type=float, default=t.scale, help="cosine-softmax temperature")
    p.add_argument("--widths", type=int, nargs="+", default=t.widths, help="recogniser stage widths")
    p.add_argument("--ema", type=float, default=t.ema, help="evaluate a moving average of the weights with this decay (0: off)")
    p.add_argument("--label-smoothing", type=float, default=t.label_smoothing)
    p.add_argument("--flip-test", action=argparse.BooleanOptionalAction, default=t.flip_test,
                   help="embed each test face as the mean of it and its mirror image")
    p.add_argument("--variants", type=int, default=d.variants, help="offline genaug variants per training photo")
    p.add_argument("--p-genaug", type=float, default=t.p_genaug, help="probability a sample is a genaug variant")
    p.add_argument("--pair-weight", type=float, default=t.pair_weight,
                   help="classical+genaug-pair: weight of the consistency term 1 - cos(variant, real)")
    p.add_argument("--refine-steps", type=int, default=None, help="inversion refinement steps (default: the bundle's)")
    p.add_argument("--strength", type=float, default=d.strength, help="genaug edit strength")
    p.add_argument("--codes", nargs="+", default=d.codes, help="codes genaug edits may move: names (default: yaw light, chosen on val), 'bound' (the "
                   "identity-safe codes bound to an attribute) or 'all-safe' (every identity-safe code)")
    p.add_argument("--max-ids", type=int, default=None, help="use only the first N identities")
    p.add_argument("--quality-threshold", default=d.quality_threshold, type=parse_quality,
                   help="realism gate for the variants: 'auto' (the critic's threshold, the default), a number, or 'none'")
    p.add_argument("--render-at", default=d.render_at, choices=RENDER_AT,
                   help="make the variants on the folder's photos, then frame them (photo), or on the 64 px crops (crop)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/few_shot_<bundle>.json)")
    p.add_argument("--quick", action="store_true", help="smoke test: 8 people, k=1, 2 seeds, 20 steps")
    return p


def main(argv: list[str] | None = None) -> dict:
    a = build_parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    t = TrainSettings(steps=a.steps, batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay, scale=a.scale,
                      widths=a.widths, p_genaug=a.p_genaug, pair_weight=a.pair_weight, ema=a.ema, label_smoothing=a.label_smoothing,
                      flip_test=a.flip_test)
    cfg = FewShotConfig(a.data, a.shots, a.seeds, a.arms, a.bundle, a.device, a.eval_split, a.variants,
                        a.refine_steps, a.strength, a.codes, a.max_ids, a.quality_threshold, a.render_at, t)
    cfg.first_seed = a.first_seed
    if a.quick:
        cfg.shots, cfg.seeds, cfg.variants, cfg.refine_steps, cfg.max_ids = [1], 2, 2, 1, cfg.max_ids or 8
        t.steps, t.batch_size = 20, 8
    out = a.out or default_out("few_shot", a.bundle, a.quick)
    return run_protocol("few_shot", lambda: run(cfg), format_table, out)


if __name__ == "__main__":
    main()
