"""Train the project's evaluation models (identity embedder, attribute classifier).

    python -m genaug.training.evaluators identity   --data ../shared/data/celeba_train_64 --out /work/runs/eval_identity
    python -m genaug.training.evaluators attributes --data ../shared/data/celeba_train_64 --out /work/runs/eval_attributes
    python -m genaug.training.evaluators evaluate   --kind identity --weights genaug/default/evaluator_identity

Identity: CosFace (additive cosine margin) head over CelebA identities with >= ``--min-images``
images; one image per identity with >= ``min_images + 1`` is held out for validation. The
embedding is L2-normalised. Quality is reported as verification ROC AUC / TAR@FAR on pairs of
``celeba_id200`` (200 people never seen in training). Attributes: 40 sigmoid outputs, BCE,
held-out random split; mean accuracy and ROC AUC.

Training is budgeted in wall-clock minutes (``--minutes``): the learning rate follows a cosine
over the elapsed fraction of the budget (over all invocations), so the number of steps depends on
machine load. It runs on :mod:`genaug.training.skeleton`: checkpoints to ``--out/checkpoint.pt``,
resumes from it, stops cleanly on SIGTERM/SIGINT and logs to ``--out/log.jsonl``; the final float16 weights + JSON are
written to ``--out/evaluator_<kind>.*`` and, with ``--export DIR``, copied there.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genaug.cli.common import plain_doc
from genaug.faces.features import EvaluatorConfig, FaceNet, load_evaluator, save_evaluator
from .data import load_faces, load_identity_folder
from .skeleton import RngState, Run, RunPlan

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


# ----------------------------------------------------------------------------- training views
def to_float(x: Tensor) -> Tensor:
    return x.float().div_(127.5).sub_(1)


def jitter(x: Tensor, gen: torch.Generator, crop: float, size: int, color: float = 0.0) -> Tensor:
    """Training view: random crop of ``crop`` of the side (jittered), h-flip, optional brightness/
    contrast jitter, resize to ``size``. ``x`` is uint8 NCHW; returns float in [-1, 1]."""
    n, _, h, w = x.shape
    c = round(h * crop)
    tops = torch.randint(0, h - c + 1, (n,), generator=gen).tolist()
    lefts = torch.randint(0, w - c + 1, (n,), generator=gen).tolist()
    out = torch.stack([x[i, :, t : t + c, l : l + c] for i, (t, l) in enumerate(zip(tops, lefts))])
    out = to_float(out)
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(-1)
    if color:
        b = (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * color
        k = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * color
        m = out.mean((1, 2, 3), keepdim=True)
        out = ((out - m) * k + m + b).clamp(-1, 1)
    return F.interpolate(out, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


@torch.no_grad()
def embed_all(model: nn.Module, images: Tensor, batch: int = 256) -> Tensor:
    """Run ``model`` (eval) over uint8 NCHW ``images`` in batches -> (N, F) float."""
    model.eval()
    return torch.cat([model(to_float(images[i : i + batch])) for i in range(0, len(images), batch)])


# ----------------------------------------------------------------------------- training
@dataclass
class EvaluatorTrainConfig:
    kind: str
    data: str
    out: str
    minutes: float = 12.0
    max_epochs: int = 60
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    min_images: int = 3
    margin: float = 0.25
    scale: float = 24.0
    input_size: int = 40
    crop: float = 0.875
    widths: tuple[int, ...] = (24, 48, 96, 192)
    embed_dim: int = 128
    holdout: int = 2000
    threads: int = 1
    seed: int = 0
    export: str | None = None


class CosFaceHead(nn.Module):
    """Additive cosine-margin softmax head: logits = s * (cos(theta) - m * onehot)."""

    def __init__(self, dim: int, n_classes: int, scale: float, margin: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, emb: Tensor, labels: Tensor | None = None) -> Tensor:
        cos = emb @ F.normalize(self.weight, dim=1).t()
        if labels is not None:
            cos = cos - self.margin * F.one_hot(labels, cos.shape[1]).to(cos.dtype)
        return self.scale * cos


def _identity_split(data_dir: Path, files: list[str], min_images: int, seed: int) -> tuple[list[int], list[int], Tensor, int]:
    with open(data_dir / "attributes.csv", newline="") as f:
        ident = {r["filename"]: r["celeba_identity"] for r in csv.DictReader(f)}
    ids = [ident[Path(p).name] for p in files]
    by_id: dict[str, list[int]] = {}
    for i, c in enumerate(ids):
        by_id.setdefault(c, []).append(i)
    keep = sorted(c for c, v in by_id.items() if len(v) >= min_images)
    rng = np.random.default_rng(seed)
    train, val, labels = [], [], torch.full((len(files),), -1, dtype=torch.long)
    for k, c in enumerate(keep):
        members = list(by_id[c])
        for i in members:
            labels[i] = k
        if len(members) > min_images:
            j = members.pop(int(rng.integers(len(members))))
            val.append(j)
        train.extend(members)
    return train, val, labels, len(keep)


def _task(cfg: EvaluatorTrainConfig, data: Any) -> tuple[list[int], list[int], EvaluatorConfig, nn.Module, Tensor]:
    """Train/validation rows, the evaluator config, the training head and the targets of ``cfg.kind``."""
    if cfg.kind == "identity":
        tr, va, labels, n_classes = _identity_split(Path(cfg.data), data.files, cfg.min_images, cfg.seed)
        ecfg = EvaluatorConfig("identity", cfg.input_size, cfg.crop, list(cfg.widths), cfg.embed_dim)
        head: nn.Module = CosFaceHead(cfg.embed_dim, n_classes, cfg.scale, cfg.margin)
        targets = labels
        print(f"identity: {n_classes} identities with >= {cfg.min_images} images, {len(tr)} train / {len(va)} val images")
    else:
        if data.attributes is None:
            raise ValueError(f"{cfg.data} has no attributes.csv")
        perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
        va, tr = perm[: cfg.holdout], perm[cfg.holdout :]
        ecfg = EvaluatorConfig("attributes", cfg.input_size, cfg.crop, list(cfg.widths), outputs=list(data.attribute_names))
        head = nn.Identity()
        targets = (data.attributes > 0).float()
        print(f"attributes: {len(ecfg.outputs)} attributes, {len(tr)} train / {len(va)} val images")
    return tr, va, ecfg, head, targets


class EvaluatorKind:
    """An evaluator's training on :mod:`genaug.training.skeleton`: epochs over a fresh order, a
    wall-clock budget over all invocations (kept in the checkpoint), validation after each epoch."""

    def __init__(self, cfg: EvaluatorTrainConfig):
        torch.set_num_threads(cfg.threads)
        self.cfg, self.out = cfg, Path(cfg.out)
        self.data = load_faces(cfg.data, 64, 3)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.tr, self.va, self.ecfg, self.head, self.targets = _task(cfg, self.data)
        self.model = FaceNet(self.ecfg)
        print(f"model: {sum(p.numel() for p in self.model.parameters()) / 1e6:.2f} M parameters")
        params = list(self.model.parameters()) + list(self.head.parameters())
        self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.steps_per_epoch = max(1, len(self.tr) // cfg.batch_size)
        self.state: dict[str, Any] = {"step": 0, "elapsed": 0.0, "epoch": 0, "log": []}
        self.order: Tensor | None = None
        self.last_val: tuple[int, dict] | None = None
        settings = {k: v for k, v in asdict(cfg).items() if k != "out"}
        plan = RunPlan(self.out, 0, settings, {"minutes", "max_epochs", "threads", "export"}, log_every=25,
                       checkpoint_every=100, eval_every=self.steps_per_epoch, desc=f"evaluator {cfg.kind}",
                       log_time_key="sec")
        self.runner, self.progress_keys = Run(self, plan), ("loss",)
        self.runner.resume()
        self.t_last = time.time()

    def parts(self) -> dict[str, Any]:
        return {"model": self.model, "head": self.head, "opt": self.opt, "gen": RngState(self.gen)}

    def extra_state(self, collective: bool) -> dict[str, Any]:
        return {"state": json.dumps(self.state)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.state = json.loads(state["state"])

    def finished(self) -> bool:
        return self.state["elapsed"] >= self.cfg.minutes * 60 or self.state["epoch"] >= self.cfg.max_epochs

    def train_step(self, step: int) -> dict[str, Any]:
        cfg, model = self.cfg, self.model
        b = step % self.steps_per_epoch
        if self.order is None or b == 0:  # a new epoch (or a resumed one): a fresh order
            self.order = torch.tensor(self.tr)[torch.randperm(len(self.tr), generator=self.gen)]
        model.train()
        frac, warm = min(self.state["elapsed"] / (cfg.minutes * 60), 1.0), min(1.0, (step + 1) / 100)
        for g in self.opt.param_groups:
            g["lr"] = cfg.lr * warm * 0.5 * (1 + math.cos(math.pi * frac))
        idx = self.order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        x = jitter(self.data.images[idx], self.gen, cfg.crop, cfg.input_size, color=0.15)
        y = self.targets[idx]
        feats = model.head_output(model.trunk(x))
        if cfg.kind == "identity":
            loss = F.cross_entropy(self.head(feats, y), y)
        else:
            loss = F.binary_cross_entropy_with_logits(feats, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        now = time.time()
        self.state["elapsed"], self.t_last, self.state["step"] = self.state["elapsed"] + now - self.t_last, now, step + 1
        if b == self.steps_per_epoch - 1:
            self.state["epoch"] += 1
        return {"loss": loss.detach(), "epoch": self.state["epoch"], "lr": self.opt.param_groups[0]["lr"]}

    def evaluate(self, step: int) -> dict:
        v = validate(self.cfg.kind, self.model, self.head, self.data.images, self.targets, self.va)
        self.last_val = (step, v)
        if step % self.steps_per_epoch == 0:  # an epoch's end (not a stop inside one)
            self.state["log"].append({"epoch": self.state["epoch"], "step": step, **v})
        return {k: x for k, x in v.items() if k != "per_attribute_accuracy"}

    def export(self, step: int) -> Path:
        final = self.last_val[1] if self.last_val and self.last_val[0] == step else None
        return _finish(self.cfg, self.out, self.model, self.head, self.ecfg, self.data, self.targets, self.tr, self.va,
                       self.state, final)


def train_evaluator(cfg: EvaluatorTrainConfig) -> Path:
    """Train (or continue) an evaluator until its budget or ``max_epochs``; writes ``OUT/evaluator_<kind>.*``."""
    return EvaluatorKind(cfg).runner.run()


def _finish(cfg: EvaluatorTrainConfig, out: Path, model: FaceNet, head: nn.Module, ecfg: EvaluatorConfig, data: Any,
            targets: Tensor, tr: list[int], va: list[int], state: dict[str, Any], final: dict | None = None) -> Path:
    """Final validation (unless given), the training summary, the evaluator files (and their export)."""
    model.eval()
    final = dict(final or validate(cfg.kind, model, head, data.images, targets, va))
    ecfg.training = {
        "data": Path(cfg.data).name, "steps": state["step"], "epochs": state["epoch"],
        "minutes": round(state["elapsed"] / 60, 2), "batch_size": cfg.batch_size, "seed": cfg.seed,
        "train_images": len(tr), "val_images": len(va), "validation": final,
        "command": "python -m genaug.training.evaluators " + " ".join(sys.argv[1:]),
    }
    if cfg.kind == "identity":
        ecfg.training.update(identities=int(targets.max()) + 1, min_images=cfg.min_images, margin=cfg.margin, scale=cfg.scale)
        id200 = SHARED / "celeba_id200"
        if id200.exists():
            ecfg.training["celeba_id200_verification"] = verification_quality(model, id200)
    else:
        ecfg.training["per_attribute_val_accuracy"] = final.pop("per_attribute_accuracy")
    weights = save_evaluator(model, out / f"evaluator_{cfg.kind}")
    print(json.dumps(ecfg.training, indent=1))
    return export_evaluator(weights, cfg.export)


def export_evaluator(weights: Path, export: str | None) -> Path:
    """Copy an evaluator's weights and JSON into folder ``export`` (when given); returns ``weights``."""
    if export:
        dst = Path(export)
        dst.mkdir(parents=True, exist_ok=True)
        for p in (weights, weights.with_suffix(".json")):
            shutil.copy2(p, dst / p.name)
        print(f"exported to {dst}")
    return weights


@torch.no_grad()
def validate(kind: str, model: FaceNet, head: nn.Module, images: Tensor, targets: Tensor, idx: list[int]) -> dict:
    model.eval()
    x = images[torch.tensor(idx)]
    out = embed_all(model, x)
    y = targets[torch.tensor(idx)]
    if kind == "identity":
        acc = (head(out).argmax(1) == y).float().mean().item()
        return {"val_top1": round(acc, 4)}
    from genaug.faces.metrics import roc_auc

    pred = out > 0
    per = (pred == (y > 0.5)).float().mean(0)
    aucs = [roc_auc(out[:, j], y[:, j]) for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    names = model.cfg.outputs
    return {"mean_accuracy": round(per.mean().item(), 4), "mean_auc": round(float(np.mean(aucs)), 4),
            "per_attribute_accuracy": {n: round(a, 4) for n, a in zip(names, per.tolist())}}


def verification_quality(model: nn.Module, folder: str | Path, seed: int = 0) -> dict:
    """Verification AUC / TAR@FAR on all genuine and sampled impostor pairs of an identity folder."""
    from genaug.faces.metrics import verification_scores

    data = load_identity_folder(folder, 64)
    emb = embed_all(model, data.images)
    res = verification_scores(emb, data.labels, seed=seed)
    res["folder"] = Path(folder).name
    return res


def evaluate(kind: str, weights: str | None, data: str | None) -> dict:
    model = load_evaluator(kind, weights)
    if kind == "identity":
        res = verification_quality(model, data or SHARED / "celeba_id200")
    else:
        faces = load_faces(data or SHARED / "celeba_train_64", 64, 3)
        perm = torch.randperm(len(faces), generator=torch.Generator().manual_seed(0)).tolist()[:2000]
        res = validate("attributes", model, nn.Identity(), faces.images, (faces.attributes > 0).float(), perm)
        res.pop("per_attribute_accuracy")
    print(json.dumps(res, indent=1))
    return res


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m genaug.training.evaluators", description=plain_doc(__doc__.split("\n\n")[0]),
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 1)[1])
    sub = p.add_subparsers(dest="cmd", required=True)
    for kind in ("identity", "attributes"):
        s = sub.add_parser(kind, help=f"train the {kind} evaluator")
        s.add_argument("--data", default=str(SHARED / "celeba_train_64"))
        s.add_argument("--out", required=True)
        s.add_argument("--minutes", type=float, default=12.0, help="wall-clock training budget")
        s.add_argument("--max-epochs", type=int, default=60)
        s.add_argument("--batch-size", type=int, default=128)
        s.add_argument("--lr", type=float, default=3e-3)
        s.add_argument("--min-images", type=int, default=3, help="identity: keep identities with >= this many images")
        s.add_argument("--margin", type=float, default=0.25)
        s.add_argument("--scale", type=float, default=24.0)
        s.add_argument("--input-size", type=int, default=40)
        s.add_argument("--widths", default="24,48,96,192")
        s.add_argument("--threads", type=int, default=1)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--export", default=None, help="also copy the final weights + JSON into this folder (e.g. genaug/default)")
    e = sub.add_parser("evaluate", help="measure a saved evaluator")
    e.add_argument("--kind", choices=("identity", "attributes"), required=True)
    e.add_argument("--weights", default=None, help="weights path/stem (default: the shipped one)")
    e.add_argument("--data", default=None)
    a = p.parse_args(argv)
    if a.cmd == "evaluate":
        torch.set_num_threads(1)
        evaluate(a.kind, a.weights, a.data)
        return
    train_evaluator(EvaluatorTrainConfig(
        kind=a.cmd, data=a.data, out=a.out, minutes=a.minutes, max_epochs=a.max_epochs, batch_size=a.batch_size,
        lr=a.lr, min_images=a.min_images, margin=a.margin, scale=a.scale, input_size=a.input_size,
        widths=tuple(int(w) for w in a.widths.split(",")), threads=a.threads, seed=a.seed, export=a.export,
    ))


if __name__ == "__main__":
    main()
