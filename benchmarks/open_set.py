"""Open-set verification: does genaug help train a face embedder for people it never sees?

    python benchmarks/open_set.py                                 # train on celeba_train_64, verify on celeba_id200
    python benchmarks/open_set.py --max-per-id 2                  # simulate scarcity: <= 2 photos per identity
    python benchmarks/open_set.py --pairs lfw/pairs.txt --pairs-root lfw/ --pairs-crop 0.45
    python benchmarks/open_set.py --quick --bundle PATH            # smoke test (seconds)

An embedder (``benchmarks/recogniser.py``: FaceNet at 64 px, CosFace head with margin
``--margin``, ``--steps`` AdamW steps with warm-up + cosine) is trained from scratch on every
identity of ``--train-data`` (celeba_train_64: 19,452 photos of 6,763 people, 1-13 each; its
``attributes.csv`` gives the identity of each file, otherwise an ImageFolder's sub-folders),
with each arm: ``none``, ``classical``, ``classical+genaug`` (each sample shown with probability
``--p-genaug`` as one of ``--variants`` offline variants made once with ``genaug.expand_to_hdf5``;
predictor-only inversion by default, ``--refine-steps`` to refine). It then verifies people it
never saw, by cosine similarity of embeddings: the ``--verify-split`` photos of ``--verify-data``
(celeba_id200 test split: 600 photos of 200 people; all same-person pairs against 50,000 seeded
different-person pairs), and with ``--pairs`` a verification set in LFW's ``pairs.txt`` format
(``name i j`` same / ``name1 i name2 j`` different; images ``ROOT/name/name_000i.jpg``, centre
crop ``--pairs-crop`` of the side). Reported: ROC AUC, TAR at FAR 1e-3 and 1e-2 per arm (mean ±
std over seeds) and the paired per-seed difference of each genaug arm (``classical+genaug``, and
``classical+genaug-pair``: each sample and a variant of it, the variant's embedding pulled to the
sample's, weight ``--pair-weight``) against classical.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.faces import (ID200, RECOGNISER_CODES, RECOGNISER_QUALITY, TRAIN64, load_people, make_splits,  # noqa: E402
                              offline_variants, parse_quality)
from benchmarks.recogniser import ARMS, Augmenter, TrainSettings, embed, train  # noqa: E402
from benchmarks.report import default_out, run_protocol  # noqa: E402
from benchmarks.stats import format_difference, mean_std, paired_difference  # noqa: E402
from genaug.device import resolve_device
from genaug.faces.metrics import roc_auc, tar_at_far, verification_scores

METRICS = ("auc", "tar@far=1e-3", "tar@far=1e-2")


@dataclass
class OpenSetConfig:
    train_data: str = str(TRAIN64)
    verify_data: str = str(ID200)
    verify_split: str = "test"
    pairs: str | None = None
    pairs_root: str | None = None
    pairs_crop: float = 1.0
    max_per_id: int | None = None
    max_ids: int | None = None
    seeds: int = 3
    arms: list[str] = field(default_factory=lambda: ["none", "classical", "classical+genaug"])
    bundle: str = "default"
    device: str = "cpu"
    variants: int = 2
    refine_steps: int = 0
    strength: float = 1.0
    codes: list[str] | None = field(default_factory=lambda: list(RECOGNISER_CODES))  # as few_shot.py (benchmarks.faces)
    quality_threshold: float | str | None = RECOGNISER_QUALITY
    train: TrainSettings = field(default_factory=lambda: TrainSettings(steps=800, batch_size=64, scale=30.0, margin=0.2,
                                                                       label_smoothing=0.0))
    first_seed: int = 0  # seeds first_seed .. first_seed + seeds - 1


def training_faces(cfg: OpenSetConfig) -> tuple[Tensor, Tensor]:
    """uint8 NCHW photos and identity labels 0..C-1 of the training folder, capped per identity."""
    data = load_people(cfg.train_data)
    ids = [p.split("/")[0] for p in data.paths]
    table = Path(cfg.train_data) / "attributes.csv"
    if len(data.classes) == 1 and table.is_file():  # a flat images/ folder: identities from the table
        with open(table, newline="") as f:
            who = {r["filename"]: r["celeba_identity"] for r in csv.DictReader(f)}
        ids = [who[Path(p).name] for p in data.paths]
    names = sorted(set(ids))
    labels = _index(ids, names)
    keep = torch.ones(len(labels), dtype=torch.bool)
    if cfg.max_ids:
        keep &= labels < cfg.max_ids
    if cfg.max_per_id:
        g = torch.Generator().manual_seed(0)
        order = torch.randperm(len(labels), generator=g)
        seen: dict[int, int] = {}
        for i in order.tolist():
            c = int(labels[i])
            seen[c] = seen.get(c, 0) + 1
            keep[i] &= seen[c] <= cfg.max_per_id
    rows = torch.nonzero(keep).flatten()
    _, labels = torch.unique(labels[rows], return_inverse=True)
    return data.images[rows], labels


def _index(ids: list[str], names: list[str]) -> Tensor:
    pos = {n: i for i, n in enumerate(names)}
    return torch.tensor([pos[i] for i in ids])


def verification_faces(cfg: OpenSetConfig) -> tuple[Tensor, Tensor]:
    data = load_people(cfg.verify_data)
    rows = make_splits(data)[cfg.verify_split] if cfg.verify_split != "all" else torch.arange(len(data.labels))
    return data.images[rows], data.labels[rows]


def read_pairs(pairs: str | Path, root: str | Path) -> tuple[list[Path], list[tuple[int, int, bool]]]:
    """LFW ``pairs.txt``: optional header line of counts, then ``name i j`` (same person) or
    ``name1 i name2 j`` (different). Returns the image files and (a, b, same) index pairs."""
    root, files, index, out = Path(root), [], {}, []

    def image(name: str, i: str) -> int:
        p = root / name / f"{name}_{int(i):04d}.jpg"
        if p not in index:
            if not p.is_file():
                raise ValueError(f"{pairs}: image {p} not found (expected ROOT/name/name_000i.jpg)")
            index[p] = len(files)
            files.append(p)
        return index[p]

    for n, line in enumerate(Path(pairs).read_text().splitlines(), 1):
        f = line.split()
        if not f or (n == 1 and all(x.isdigit() for x in f)):
            continue
        if len(f) == 3:
            out.append((image(f[0], f[1]), image(f[0], f[2]), True))
        elif len(f) == 4:
            out.append((image(f[0], f[1]), image(f[2], f[3]), False))
        else:
            raise ValueError(f"{pairs}:{n}: expected 'name i j' or 'name1 i name2 j', got {line!r}")
    if not any(s for *_, s in out) or all(s for *_, s in out):
        raise ValueError(f"{pairs}: needs both same-person and different-person pairs")
    return files, out


def load_pair_images(files: list[Path], crop: float) -> Tensor:
    """The pair images as 64x64 uint8 NCHW: centre crop ``crop`` of the shorter side."""
    from PIL import Image

    out = []
    for p in files:
        with Image.open(p) as im:
            im = im.convert("RGB")
            side = round(min(im.size) * crop)
            left, top = (im.width - side) // 2, (im.height - side) // 2
            im = im.crop((left, top, left + side, top + side)).resize((64, 64), Image.BICUBIC)
            out.append(torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1))
    return torch.stack(out)


def pair_scores(emb: Tensor, pairs: list[tuple[int, int, bool]]) -> dict[str, float]:
    a, b, same = (torch.tensor(v) for v in zip(*pairs))
    sim = (emb[a] * emb[b]).sum(1).double()
    return {"auc": roc_auc(sim, same), "tar@far=1e-3": tar_at_far(sim[same], sim[~same], 1e-3),
            "tar@far=1e-2": tar_at_far(sim[same], sim[~same], 1e-2), "pairs": len(pairs)}


def run(cfg: OpenSetConfig) -> dict:
    t_start = time.time()
    device = resolve_device(cfg.device)
    images, labels = training_faces(cfg)
    sets = {Path(cfg.verify_data).name: verification_faces(cfg)}
    pair_sets = {}
    if cfg.pairs:
        files, pairs = read_pairs(cfg.pairs, cfg.pairs_root or Path(cfg.pairs).parent)
        pair_sets[Path(cfg.pairs).name] = (load_pair_images(files, cfg.pairs_crop), pairs)
    variants, prep_s = None, 0.0
    if any("genaug" in a for a in cfg.arms):
        variants, prep_s = offline_variants(images, cfg.bundle, cfg.variants, cfg.refine_steps, cfg.strength, cfg.device,
                                            codes=cfg.codes, quality_threshold=cfg.quality_threshold)
        print(f"offline genaug: {cfg.variants} variants x {len(images)} photos in {prep_s:.0f}s", flush=True)
    runs: dict[str, dict[str, list[dict]]] = {a: {n: [] for n in [*sets, *pair_sets]} for a in cfg.arms}
    for s in range(cfg.first_seed, cfg.first_seed + cfg.seeds):
        for arm in cfg.arms:
            aug = Augmenter(arm, s, variants if "genaug" in arm else None, cfg.train.p_genaug)
            net, _, secs = train(images, labels, cfg.train, aug, s, device)
            for name, (x, y) in sets.items():
                r = verification_scores(embed(net, x, device), y, seed=0)
                runs[arm][name].append({"seed": s, **{m: r[m] for m in METRICS}, "train_s": round(secs, 1)})
            for name, (x, pairs) in pair_sets.items():
                runs[arm][name].append({"seed": s, **pair_scores(embed(net, x, device), pairs), "train_s": round(secs, 1)})
            first = next(iter(runs[arm].values()))[-1]
            print(f"seed={s} {arm:18s} " + " ".join(f"{m}={first[m]:.3f}" for m in METRICS) + f" ({secs:.0f}s)", flush=True)
    results = {a: {n: {m: mean_std([r[m] for r in rs]) for m in METRICS} | {"runs": rs} for n, rs in per.items()}
               for a, per in runs.items()}
    diffs = {f"{a} - classical": {
        n: {m: paired_difference([r[m] for r in runs[a][n]], [r[m] for r in runs["classical"][n]]) for m in METRICS}
        for n in runs["classical"]} for a in ("classical+genaug", "classical+genaug-pair") if a in runs and "classical" in runs}
    return {"benchmark": "open_set", "config": asdict(cfg),
            "data": {"train_photos": len(images), "train_identities": int(labels.max()) + 1,
                     **{f"{n}_photos": len(v[0]) for n, v in sets.items()}, **{f"{n}_pairs": len(v[1]) for n, v in pair_sets.items()}},
            "results": results, "paired_differences": diffs, "genaug_prep_s": round(prep_s, 1),
            "wall_s": round(time.time() - t_start, 1), "cpu_s": round(time.process_time(), 1)}


def format_table(report: dict) -> str:
    cfg, t = report["config"], report["config"]["train"]
    d = report["data"]
    lines = [f"open-set verification: embedder trained on {d['train_photos']} photos of {d['train_identities']} people "
             f"({t['steps']} steps of {t['batch_size']}, CosFace s={t['scale']:g} m={t['margin']:g}), mean ± std over "
             f"{cfg['seeds']} seeds", "| verification set | arm | ROC AUC | TAR@FAR=1e-3 (%) | TAR@FAR=1e-2 (%) |",
             "| --- | --- | --- | --- | --- |"]
    for arm, per in report["results"].items():
        for name, r in per.items():
            lines.append(f"| {name} | {arm} | {r['auc']['mean']:.3f} ± {r['auc']['std']:.3f} | "
                         + " | ".join(f"{100 * r[m]['mean']:.1f} ± {100 * r[m]['std']:.1f}" for m in METRICS[1:]) + " |")
    for dname, per in report["paired_differences"].items():
        for name, r in per.items():
            lines.append(f"| {name} | {dname} (± std [95 % CI]) | {format_difference(r['auc'], 1.0, 3)} | "
                         + " | ".join(format_difference(r[m]) for m in METRICS[1:]) + " |")
    lines.append(f"wall-clock {report['wall_s']:.0f}s, CPU {report['cpu_s']:.0f}s (genaug expansion {report['genaug_prep_s']:.0f}s)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = OpenSetConfig()
    p.add_argument("--train-data", default=d.train_data, help="faces to train the embedder on (default celeba_train_64)")
    p.add_argument("--verify-data", "--data", dest="verify_data", default=d.verify_data,
                   help="ImageFolder of people the embedder never saw (default celeba_id200)")
    p.add_argument("--verify-split", default="test", choices=("test", "val", "train", "all"))
    p.add_argument("--pairs", default=None, help="a verification set in LFW pairs.txt format")
    p.add_argument("--pairs-root", default=None, help="folder with ROOT/name/name_000i.jpg (default: next to --pairs)")
    p.add_argument("--pairs-crop", type=float, default=1.0, help="centre fraction of each pair image kept (LFW: ~0.45)")
    p.add_argument("--max-per-id", type=int, default=None, help="cap training photos per identity (seeded)")
    p.add_argument("--max-ids", type=int, default=None, help="train on the first N identities only")
    p.add_argument("--seeds", type=int, default=d.seeds)
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds FIRST..FIRST+SEEDS-1 (more seeds later; benchmarks/pool_seeds.py joins the runs)")
    p.add_argument("--arms", nargs="+", default=d.arms, choices=ARMS)
    p.add_argument("--bundle", default="default", help="genaug bundle: 'default' or a bundle folder")
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=d.train.steps)
    p.add_argument("--batch-size", type=int, default=d.train.batch_size)
    p.add_argument("--lr", type=float, default=d.train.lr)
    p.add_argument("--margin", type=float, default=d.train.margin, help="CosFace margin")
    p.add_argument("--variants", type=int, default=d.variants)
    p.add_argument("--p-genaug", type=float, default=d.train.p_genaug)
    p.add_argument("--pair-weight", type=float, default=d.train.pair_weight,
                   help="classical+genaug-pair: weight of the consistency term 1 - cos(variant, real)")
    p.add_argument("--refine-steps", type=int, default=d.refine_steps)
    p.add_argument("--strength", type=float, default=d.strength)
    p.add_argument("--codes", nargs="+", default=d.codes, help="codes genaug edits may move: names (default: yaw light, as "
                   "few_shot.py), 'bound' (the identity-safe codes bound to an attribute) or 'all-safe'")
    p.add_argument("--quality-threshold", default=d.quality_threshold, type=parse_quality,
                   help="realism gate for the variants: 'auto' (the critic's threshold, the default), a number, or 'none'")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/open_set_<bundle>.json)")
    p.add_argument("--quick", action="store_true", help="smoke test: 30 identities, 2 seeds, 20 steps")
    return p


def main(argv: list[str] | None = None) -> dict:
    a = build_parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    t = replace(OpenSetConfig().train, steps=a.steps, batch_size=a.batch_size, lr=a.lr, margin=a.margin, p_genaug=a.p_genaug,
                pair_weight=a.pair_weight)
    cfg = OpenSetConfig(a.train_data, a.verify_data, a.verify_split, a.pairs, a.pairs_root, a.pairs_crop, a.max_per_id,
                        a.max_ids, a.seeds, a.arms, a.bundle, a.device, a.variants, a.refine_steps, a.strength, a.codes,
                        a.quality_threshold, t)
    cfg.first_seed = a.first_seed
    if a.quick:
        cfg.seeds, cfg.max_ids, t.steps, t.batch_size = 2, cfg.max_ids or 30, 20, 16
    out = a.out or default_out("open_set", a.bundle, a.quick)
    return run_protocol("open_set", lambda: run(cfg), format_table, out)


if __name__ == "__main__":
    main()
