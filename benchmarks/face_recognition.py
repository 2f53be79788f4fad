"""Does generative augmentation help a face recogniser? A few-shot identification benchmark.

    python benchmarks/face_recognition.py                          # celeba_id200, shots 1 2 4, 3 seeds
    python benchmarks/face_recognition.py --data DIR --shots 1 5 --seeds 5 --out results.json
    python benchmarks/face_recognition.py --quick --bundle PATH     # smoke test (seconds)

For each k in ``--shots`` (training images per person) and each seed, the same small recogniser
(ResNet-ish CNN at ``--size`` px, softmax over identities) is trained from scratch on k images per
person with each augmentation arm:

  none                     no augmentation
  classical                a strong albumentations pipeline (flip, affine, colour, gray, blur, dropout)
  genaug                   offline: ``--variants`` genaug variants per training image made once with
                           ``genaug.expand_to_hdf5`` (reused across seeds/epochs); each step shows a
                           random variant with probability ``--p-genaug``, else the original
  classical+genaug         the same variants, then the classical pipeline
  classical+genaug-online  online: ``genaug.Engine`` edits each batch (latents cached), then classical

Same-settings rule: all arms share architecture, epochs, optimiser, batch size and seeds (the
seed picks the k shots, the initialisation and the batch order); only the augmentation differs.
Model selection uses the ``val`` split; the ``test`` split is only scored: top-1 accuracy
(mean ± std over seeds) and verification (ROC AUC, TAR@FAR=1e-2 on genuine vs impostor pairs of
test images, cosine of the recogniser's penultimate embedding). Wall-clock per arm: ``train_s``
(training per run) and ``prep_s`` (one-off genaug expansion / inversion).

Data: an ImageFolder of identities (``<person>/<image>``); CelebA 178x218 frames are cropped to
the face box 35,55,143,163, others to the centre square; everything is pre-cropped to 64x64 once
(cached). With ``splits.csv`` (path, ..., split) its train/val/test are used, otherwise a seeded
per-person split (10 % val, 10 % test, at least one each). Default run (celeba_id200, 3 shots x 3
seeds x 5 arms, 30 epochs): 18 min on one CPU core with the default model (measured; `--epochs 80`:
39 min), most of it the online arm and the one-off expansion.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.report import emit  # noqa: E402
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from genaug.device import resolve_device  # noqa: E402
from genaug.features import EvaluatorConfig, FaceNet  # noqa: E402
from genaug.metrics import verification_scores  # noqa: E402
from training.evaluators import IdentityFolder, load_identity_folder  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba_id200"
ARMS = ("none", "classical", "genaug", "classical+genaug", "classical+genaug-online")


@dataclass
class BenchConfig:
    data: str = str(DEFAULT_DATA)
    shots: list[int] = field(default_factory=lambda: [1, 2, 4])
    seeds: int = 3
    epochs: int = 30
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    bundle: str = "default"
    device: str = "auto"
    size: int = 32
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    variants: int = 4
    p_genaug: float = 0.5
    refine_steps: int = 10
    strength: float = 1.0
    max_ids: int | None = None
    quick: bool = False


# ----------------------------------------------------------------------------- data
def make_splits(data: IdentityFolder, seed: int = 0) -> dict[str, Tensor]:
    """train/val/test indices: the folder's splits.csv, else a seeded per-person split."""
    if data.splits is not None:
        return {s: data.where(s) for s in ("train", "val", "test")}
    g = torch.Generator().manual_seed(seed)
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for c in range(len(data.classes)):
        m = torch.nonzero(data.labels == c).flatten()
        m = m[torch.randperm(len(m), generator=g)].tolist()
        if len(m) < 3:
            continue
        n_val = max(1, round(0.1 * len(m)))
        n_test = max(2 if len(m) >= 6 else 1, n_val)  # >= 2 test images give genuine verification pairs
        out["test"] += m[:n_test]
        out["val"] += m[n_test : n_test + n_val]
        out["train"] += m[n_test + n_val :]
    return {k: torch.tensor(sorted(v), dtype=torch.long) for k, v in out.items()}


def pick_shots(labels: Tensor, train_idx: Tensor, k: int, seed: int) -> Tensor:
    """k training images per person (seeded; people with fewer keep all they have)."""
    g = torch.Generator().manual_seed(1000 + seed)
    picked = []
    for c in torch.unique(labels[train_idx]).tolist():
        m = train_idx[labels[train_idx] == c]
        picked.append(m[torch.randperm(len(m), generator=g)[:k]])
    return torch.cat(picked)


# ----------------------------------------------------------------------------- augmentation
def classical_pipeline(seed: int):
    """A strong classical pipeline (albumentations), HWC uint8 in and out."""
    import albumentations as A

    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), rotate=(-12, 12), p=0.8),
        A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.03, p=0.8),
        A.ToGray(p=0.1),
        A.GaussianBlur(blur_limit=(3, 3), p=0.1),
        A.CoarseDropout(num_holes_range=(1, 2), hole_height_range=(0.1, 0.25), hole_width_range=(0.1, 0.25), p=0.3),
    ], seed=seed)


def expand_variants(images: Tensor, cfg: BenchConfig, workdir: Path) -> tuple[dict[int, Tensor], float]:
    """Offline genaug: ``cfg.variants`` variants per image (uint8 NCHW 64x64, keyed by row) via
    ``genaug.expand_to_hdf5`` on a temporary ImageFolder of the pre-cropped faces."""
    import h5py
    from PIL import Image

    from genaug import expand_to_hdf5

    t0 = time.time()
    src = workdir / "faces"
    for i, im in enumerate(images):
        p = src / "all" / f"{i:06d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(p)
    out = workdir / "variants.h5"
    expand_to_hdf5(src, out, cfg.variants, bundle=cfg.bundle, seed=0, size="source", framing="full",
                   refine_steps=cfg.refine_steps, strength=cfg.strength, device=cfg.device, workers=1,
                   progress=not cfg.quick, overwrite=True, command=["benchmarks/face_recognition.py"])
    var: dict[int, list[np.ndarray]] = {}
    with h5py.File(out, "r") as f:
        imgs, paths = f["images"][()], f["source_path"][()]
    for im, p in zip(imgs, paths):
        p = p.decode() if isinstance(p, bytes) else str(p)
        var.setdefault(int(Path(p).stem), []).append(im)
    res = {k: torch.from_numpy(np.stack(v)).permute(0, 3, 1, 2).contiguous() for k, v in var.items()}
    return res, time.time() - t0


class Augmenter:
    """Applies one arm's augmentation to a uint8 NCHW 64x64 batch."""

    def __init__(self, arm: str, seed: int, variants: dict[int, Tensor] | None, engine, p_genaug: float):
        self.arm, self.p = arm, p_genaug
        self.classical = classical_pipeline(seed) if arm.startswith("classical") else None
        self.variants, self.engine = variants, engine
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, x: Tensor, rows: Tensor) -> Tensor:
        x = x.clone()
        use = torch.rand(len(x), generator=self.gen) < self.p
        if self.arm in ("genaug", "classical+genaug") and use.any():
            for i in use.nonzero().flatten().tolist():
                v = self.variants.get(int(rows[i]))  # None: the expansion skipped this image
                if v is not None and len(v):
                    x[i] = v[int(torch.randint(len(v), (1,), generator=self.gen))]
        elif self.arm == "classical+genaug-online" and use.any():
            sel = use.nonzero().flatten().tolist()
            arrs = [x[i].permute(1, 2, 0).numpy().copy() for i in sel]
            outs, _ = self.engine.augment(arrs, generator=self.gen, framing="full")
            for i, o in zip(sel, outs):
                x[i] = torch.from_numpy(np.ascontiguousarray(o)).permute(2, 0, 1)
        if self.classical is not None:
            arrs = x.permute(0, 2, 3, 1).numpy()
            x = torch.stack([torch.from_numpy(self.classical(image=a)["image"]).permute(2, 0, 1) for a in arrs])
        return x


# ----------------------------------------------------------------------------- training
def to_float(x: Tensor, device: torch.device) -> Tensor:
    return x.to(device).float().div(127.5).sub(1)


@torch.no_grad()
def predict(model: FaceNet, head: nn.Module, x: Tensor, device: torch.device, bs: int = 256) -> tuple[Tensor, Tensor]:
    model.eval()
    embs = [model(to_float(x[i : i + bs], device)) for i in range(0, len(x), bs)]
    emb = torch.cat(embs)
    return head(emb).argmax(1).cpu(), emb.cpu()


def train_run(arm: str, data: IdentityFolder, shots: Tensor, splits: dict[str, Tensor], n_classes: int, cfg: BenchConfig,
              seed: int, variants: dict[int, Tensor] | None, engine, device: torch.device) -> dict[str, float]:
    """Train the recogniser from scratch with one arm; returns test/val accuracy, verification, time."""
    torch.manual_seed(seed)
    model = FaceNet(EvaluatorConfig("identity", cfg.size, 0.875, list(cfg.widths), 128)).to(device)
    head = nn.Linear(128, n_classes).to(device)
    opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=cfg.lr, weight_decay=cfg.weight_decay)
    aug = Augmenter(arm, seed, variants, engine, cfg.p_genaug)
    g = torch.Generator().manual_seed(seed)
    steps_per_epoch = max(1, -(-len(shots) // cfg.batch_size))
    total = cfg.epochs * steps_per_epoch
    val_every = max(1, cfg.epochs // 6)
    best, best_state, step = -1.0, None, 0
    t0 = time.time()
    for epoch in range(cfg.epochs):
        model.train()
        order = shots[torch.randperm(len(shots), generator=g)]
        for b in range(steps_per_epoch):
            rows = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            x = aug(data.images[rows], rows)
            for grp in opt.param_groups:
                grp["lr"] = cfg.lr * 0.5 * (1 + np.cos(np.pi * step / total))
            emb = model(to_float(x, device))
            loss = F.cross_entropy(head(emb * 16.0), data.labels[rows].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        if (epoch + 1) % val_every == 0 or epoch + 1 == cfg.epochs:
            pred, _ = predict(model, head, data.images[splits["val"]], device)
            acc = (pred == data.labels[splits["val"]]).float().mean().item()
            if acc > best:
                best = acc
                best_state = ({k: v.clone() for k, v in model.state_dict().items()},
                              {k: v.clone() for k, v in head.state_dict().items()})
    train_s = time.time() - t0
    model.load_state_dict(best_state[0])
    head.load_state_dict(best_state[1])
    pred, emb = predict(model, head, data.images[splits["test"]], device)
    test_labels = data.labels[splits["test"]]
    try:
        ver = verification_scores(emb, test_labels, seed=seed)
    except ValueError:  # fewer than two test images per person: no genuine pairs
        ver = {"auc": None, "tar@far=1e-2": None}
    return {"top1": (pred == test_labels).float().mean().item(), "val_top1": best, "auc": ver["auc"],
            "tar@far=1e-2": ver["tar@far=1e-2"], "train_s": train_s}


def _summary(runs: list[dict[str, float]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k in ("top1", "val_top1", "auc", "tar@far=1e-2", "train_s"):
        v = np.array([r[k] for r in runs if r[k] is not None], dtype=np.float64)
        out[f"{k}_mean"] = round(float(v.mean()), 4) if len(v) else None
        out[f"{k}_std"] = round(float(v.std(ddof=1)) if len(v) > 1 else 0.0, 4) if len(v) else None
    out["runs"] = runs
    return out


def run(cfg: BenchConfig) -> dict:
    t_start = time.time()
    for a in cfg.arms:
        if a not in ARMS:
            raise ValueError(f"unknown arm {a!r}; choose from {ARMS}")
    device = resolve_device(cfg.device)
    data = load_identity_folder(cfg.data, 64)
    if cfg.max_ids:
        keep = data.labels < cfg.max_ids
        idx = torch.nonzero(keep).flatten()
        data = IdentityFolder(data.images[idx], data.labels[idx], [data.paths[i] for i in idx.tolist()],
                              data.classes[: cfg.max_ids], None if data.splits is None else [data.splits[i] for i in idx.tolist()])
    splits = make_splits(data)
    n_classes = len(data.classes)
    shot_sets = {(k, s): pick_shots(data.labels, splits["train"], k, s) for k in cfg.shots for s in range(cfg.seeds)}
    prep_s: dict[str, float] = {}
    variants = engine = None
    if any(a in ("genaug", "classical+genaug") for a in cfg.arms):
        needed = torch.unique(torch.cat(list(shot_sets.values())))
        with tempfile.TemporaryDirectory(prefix="genaug-bench-") as tmp:
            sub, secs = expand_variants(data.images[needed], cfg, Path(tmp))
        variants = {int(needed[i]): v for i, v in sub.items()}
        prep_s["genaug"] = prep_s["classical+genaug"] = round(secs, 2)
        print(f"offline genaug: {cfg.variants} variants x {len(needed)} training images in {secs:.1f}s", flush=True)
    if "classical+genaug-online" in cfg.arms:
        from genaug import Engine

        t0 = time.time()
        engine = Engine(cfg.bundle, device=cfg.device, refine_steps=cfg.refine_steps, strength=cfg.strength,
                        cache_size=8192, seed=0)
        prep_s["classical+genaug-online"] = round(time.time() - t0, 2)
    results: dict[str, dict[str, object]] = {a: {} for a in cfg.arms}
    for k in cfg.shots:
        for arm in cfg.arms:
            runs = []
            for s in range(cfg.seeds):
                r = train_run(arm, data, shot_sets[(k, s)], splits, n_classes, cfg, s, variants, engine, device)
                runs.append({kk: None if v is None else round(v, 4) for kk, v in r.items()})
                print(f"k={k} arm={arm:24s} seed={s} top1={r['top1']:.3f} auc={_f(r['auc'])} ({r['train_s']:.1f}s)", flush=True)
            results[arm][str(k)] = _summary(runs)
    report = {
        "benchmark": "face_recognition",
        "config": asdict(cfg),
        "data": {"folder": str(cfg.data), "identities": n_classes, **{f"{k}_images": len(v) for k, v in splits.items()}},
        "arms": list(cfg.arms),
        "results": results,
        "prep_s": prep_s,
        "engine_stats": dict(engine.stats) if engine is not None else None,
        "wall_s": round(time.time() - t_start, 1),
    }
    return report


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def format_table(report: dict) -> str:
    cfg = report["config"]
    lines = [f"few-shot identification on {Path(cfg['data']).name}: {report['data']['identities']} people, "
             f"{cfg['seeds']} seeds, {cfg['epochs']} epochs (test top-1 mean ± std; verification AUC, TAR@FAR=1e-2)",
             f"{'arm':26s}{'k':>3s}  {'top-1':>15s}  {'AUC':>7s}  {'TAR@1e-2':>8s}  {'train s':>8s}  {'prep s':>7s}"]
    for arm, per_k in report["results"].items():
        for k, r in per_k.items():
            lines.append(f"{arm:26s}{k:>3s}  {r['top1_mean']:7.3f} ± {r['top1_std']:5.3f}  {_f(r['auc_mean']):>7s}  "
                         f"{_f(r['tar@far=1e-2_mean']):>8s}  {r['train_s_mean']:8.1f}  {report['prep_s'].get(arm, 0.0):7.1f}")
    lines.append(f"total wall-clock {report['wall_s']:.0f}s")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="ImageFolder of identities (default: celeba_id200)")
    p.add_argument("--shots", type=int, nargs="+", default=[1, 2, 4], help="training images per person")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--out", default=None, help="write the JSON report here")
    p.add_argument("--bundle", default="default", help="genaug bundle for the genaug arms")
    p.add_argument("--device", default="auto")
    p.add_argument("--size", type=int, default=32, help="recogniser input size")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--variants", type=int, default=4, help="offline genaug variants per training image")
    p.add_argument("--p-genaug", type=float, default=0.5, help="probability a training sample is a genaug variant")
    p.add_argument("--refine-steps", type=int, default=10, help="inversion refinement steps")
    p.add_argument("--strength", type=float, default=1.0, help="genaug edit strength")
    p.add_argument("--max-ids", type=int, default=None, help="use only the first N identities")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--quick", action="store_true", help="smoke test: 8 people, k=1, 1 seed, 2 epochs, 2 variants")
    return p


def main(argv: list[str] | None = None) -> dict:
    a = build_parser().parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = BenchConfig(a.data, a.shots, a.seeds, a.epochs, a.arms, a.bundle, a.device, a.size, batch_size=a.batch_size,
                      variants=a.variants, p_genaug=a.p_genaug, refine_steps=a.refine_steps, strength=a.strength,
                      max_ids=a.max_ids, quick=a.quick)
    if a.quick:
        cfg.shots, cfg.seeds, cfg.epochs, cfg.variants, cfg.refine_steps = [1], 1, 2, 2, 1
        cfg.max_ids = cfg.max_ids or 8
    report = run(cfg)
    emit(report, format_table(report), a.out)
    return report


if __name__ == "__main__":
    main()
