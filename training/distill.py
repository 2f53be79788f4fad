"""Distil dlib's face descriptor into the project's small torch embedder (the "student").

    python -m genaug.training.distill teacher  --out /work/runs/distill --faces 4800      # dlib pass, cached, resumable
    python -m genaug.training.distill train    --out /work/runs/distill --minutes 10 --export genaug/default
    python -m genaug.training.distill evaluate --student /work/runs/distill/evaluator_student

``teacher``: dlib's descriptors (:class:`genaug.faces.identity.DlibJudge`, detection-free on the 64x64
crops) of a seeded subset of ``celeba_train_64``, written every ``--save-every`` faces to
``OUT/teacher.safetensors`` (atomic), so an interrupted pass continues where it stopped.
``train``: starts from the shipped identity embedder (``evaluator_identity``) with its head
replaced by a ridge regression of the (unit) teacher descriptors on the embedder's trunk features,
then fine-tunes its unit embedding times the teacher's mean descriptor norm towards the descriptors
(MSE on descriptors plus matching of all in-batch pair distances) on whatever part of the cache
exists, budgeted in
*CPU* minutes of this process over all invocations (a shared machine's load does not shorten
training), on :mod:`genaug.training.skeleton` (checkpointed, resumable, SIGTERM-safe, ``OUT/log.jsonl``). The student's threshold is the distance that best reproduces dlib's decisions at
0.6 on all pairs of held-out teacher faces; it writes ``OUT/evaluator_student.{safetensors,json}``
(``--export DIR`` copies them).
``evaluate``: verification ROC AUC and TAR@FAR on celeba_id200 ``test`` pairs for teacher, student
and the project's embedder, and the correlation of pair distances student <-> teacher.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor
from tqdm import tqdm

from genaug.cli.common import plain_doc
from genaug.faces.features import load_evaluator, save_evaluator
from genaug.faces.identity import DLIB_THRESHOLD, DlibJudge, IdentityJudge, get_judge, load_student
from genaug.faces.metrics import roc_auc, tar_at_far, verification_pairs
from genaug.io import write_safetensors
from .data import load_faces, load_identity_folder
from .evaluators import export_evaluator, to_float
from .skeleton import RngState, Run, RunPlan

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TEACHER_FILE = "teacher.safetensors"


# ----------------------------------------------------------------------------- teacher cache
def teacher_subset(n_total: int, n: int, seed: int) -> Tensor:
    """Seeded indices of the faces the teacher describes: a prefix of one seeded permutation, so a
    larger ``n`` extends an existing cache instead of starting another."""
    if not 0 < n <= n_total:
        raise ValueError(f"--faces must be in 1..{n_total}, got {n}")
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n]


def read_teacher(path: Path) -> tuple[Tensor, Tensor, dict]:
    """(face indices, descriptors so far, metadata) of a teacher cache file."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata() or {})
    t = load_file(str(path))
    return t["index"], t["descriptors"], meta


def describe_faces(images: Tensor, idx: Tensor, out: Path, data: str, seed: int, save_every: int = 200,
                   judge: IdentityJudge | None = None) -> tuple[Tensor, Tensor]:
    """Teacher descriptors of ``images[idx]`` (uint8 NCHW), cached in ``out`` and resumed from it
    (also when ``idx`` extends the cached faces: more ``--faces`` continue the same cache)."""
    meta = {"teacher": "dlib", "data": data, "seed": str(seed)}
    done = torch.empty(0, 128)
    if out.exists():
        old_idx, done, old_meta = read_teacher(out)
        n = min(len(old_idx), len(idx))
        if {k: old_meta.get(k) for k in meta} != meta or not torch.equal(old_idx[:n], idx[:n]):
            raise ValueError(f"{out} was made for other settings ({old_meta}); use another --out or delete it")
        done = done[: len(idx)]
    judge = judge or DlibJudge()
    parts = [done]
    with tqdm(total=len(idx), initial=len(done), desc="dlib teacher", unit="face") as bar:
        for start in range(len(done), len(idx), save_every):
            chunk = idx[start : start + save_every]
            parts.append(judge.embed(to_float(images[chunk])))
            desc = torch.cat(parts)
            write_safetensors({"index": idx[: len(desc)].contiguous(), "descriptors": desc.contiguous()}, out, meta)
            bar.update(len(chunk))
    return idx, torch.cat(parts)


# ----------------------------------------------------------------------------- training
@dataclass
class DistillConfig:
    out: str
    data: str = str(SHARED / "celeba_train_64")
    minutes: float = 10.0
    batch_size: int = 128
    lr: float = 3e-4
    ridge: float = 300.0  # ridge penalty of the head's closed-form initialisation
    pair_weight: float = 1.0
    holdout: int = 150
    threads: int = 1
    seed: int = 0
    export: str | None = None


def distill_loss(student: Tensor, teacher: Tensor, pair_weight: float) -> Tensor:
    """MSE on descriptors plus MSE between all in-batch pair distances of student and teacher."""
    loss = F.mse_loss(student, teacher) * student.shape[1]
    if pair_weight:
        loss = loss + pair_weight * F.mse_loss(torch.cdist(student, student), torch.cdist(teacher, teacher))
    return loss


def _views(x: Tensor, gen: torch.Generator) -> Tensor:
    """Light training jitter that dlib is nearly invariant to: +-2 px shifts, brightness/contrast."""
    n = x.shape[0]
    dx, dy = (torch.randint(-2, 3, (2,), generator=gen)).tolist()
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    b = (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.1
    k = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.1
    m = x.mean((1, 2, 3), keepdim=True)
    return ((x - m) * k + m + b).clamp(-1, 1)


@torch.no_grad()
def ridge_head(model, images: Tensor, desc: Tensor, penalty: float) -> None:
    """Set the embedder's head (Linear + BatchNorm) to the ridge regression of the unit teacher
    descriptors on the trunk features of ``images`` (BatchNorm made the identity)."""
    model.eval()
    feats = torch.cat([model.trunk_features(to_float(images[i : i + 256])) for i in range(0, len(images), 256)])
    mu = feats.mean(0)
    x = feats - mu
    w = torch.linalg.solve(x.T @ x + penalty * torch.eye(x.shape[1]), x.T @ F.normalize(desc, dim=1))
    lin, bn = model.head[1], model.head[2]
    lin.weight.copy_(w.T)
    lin.bias.copy_(F.normalize(desc, dim=1).mean(0) - mu @ w)
    bn.running_mean.zero_()
    bn.running_var.fill_(1 - bn.eps)
    bn.weight.fill_(1)
    bn.bias.zero_()


class DistillKind:
    """The student's training on :mod:`genaug.training.skeleton`. The budget is *CPU* minutes over all
    invocations (kept in the checkpoint); the learning rate follows a cosine over it."""

    def __init__(self, cfg: DistillConfig):
        torch.set_num_threads(cfg.threads)
        self.cfg, out = cfg, Path(cfg.out)
        idx, self.desc, _ = read_teacher(out / TEACHER_FILE)
        self.n_teacher, self.images = len(idx), load_faces(cfg.data, 64, 3).images[idx]
        self.scale = float(self.desc.norm(dim=1).mean())
        self.val, self.tr = torch.arange(len(idx))[-cfg.holdout :], torch.arange(len(idx))[: -cfg.holdout]
        self.model = load_evaluator("identity")
        print(f"student: {sum(p.numel() for p in self.model.parameters()) / 1e6:.2f} M parameters, {len(self.tr)} train / "
              f"{len(self.val)} val faces, teacher mean norm {self.scale:.3f}")
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=1e-4)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.state: dict[str, Any] = {"step": 0, "elapsed": 0.0, "log": []}
        settings = {k: v for k, v in asdict(cfg).items() if k != "out"}
        plan = RunPlan(out, 0, settings, {"minutes", "threads", "export"}, log_every=100, checkpoint_every=100,
                       eval_every=100, checkpoint_name="distill_checkpoint.pt", desc="distill", log_time_key="sec")
        self.runner, self.progress_keys, self.loss = Run(self, plan), ("loss",), float("nan")
        if self.runner.resume() == 0:
            ridge_head(self.model, self.images[self.tr], self.desc[self.tr], cfg.ridge)
            self.state["log"].append({"step": 0, "init": "ridge head", **self._holdout()})
            self.runner.log({"step": 0, "eval": self.state["log"][-1]})
            print(f"ridge head: holdout {self.state['log'][-1]}")
        else:
            print(f"({self.state['elapsed'] / 60:.1f} CPU min so far)")
        self.t_last = time.process_time()

    def parts(self) -> dict[str, Any]:
        return {"model": self.model, "opt": self.opt, "gen": RngState(self.gen)}

    def extra_state(self, collective: bool) -> dict[str, Any]:
        return {"state": json.dumps(self.state)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.state = json.loads(state["state"])

    def finished(self) -> bool:
        return self.state["elapsed"] >= self.cfg.minutes * 60

    def _holdout(self) -> dict:
        return holdout_error(self.model, self.images[self.val], self.desc[self.val], self.scale)

    def train_step(self, step: int) -> dict[str, Tensor]:
        cfg, model = self.cfg, self.model
        model.eval()  # fine-tuning with batch-norm statistics frozen (the ridge head assumes them)
        frac = self.state["elapsed"] / (cfg.minutes * 60)
        for g in self.opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * frac))
        b = self.tr[torch.randint(0, len(self.tr), (cfg.batch_size,), generator=self.gen)]
        x = _views(to_float(self.images[b]), self.gen)
        loss = distill_loss(model(x) * self.scale, self.desc[b], cfg.pair_weight)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        now = time.process_time()
        self.state["step"], self.state["elapsed"], self.t_last = step + 1, self.state["elapsed"] + now - self.t_last, now
        self.loss = loss.item()
        return {"loss": loss.detach()}

    def evaluate(self, step: int) -> dict:
        v = self._holdout()
        self.state["log"].append({"step": step, "loss": round(self.loss, 4), **v})
        return v

    def export(self, step: int) -> Path:
        self.model.eval()
        with torch.no_grad():
            held = F.normalize(self.model(to_float(self.images[self.val])), dim=1) * self.scale
        return export_student(self.model, self.cfg, self.state, self.scale, self.n_teacher, len(self.tr),
                              agreement_threshold(held, self.desc[self.val]))


def train(cfg: DistillConfig) -> Path:
    """Train (or continue) the student until its CPU-minute budget is spent; writes ``OUT/evaluator_student.*``."""
    return DistillKind(cfg).runner.run()


@torch.no_grad()
def holdout_error(model, images: Tensor, desc: Tensor, scale: float) -> dict:
    """Mean descriptor error and pair-distance correlation on held-out teacher faces."""
    model.eval()
    s = F.normalize(model(to_float(images)), dim=1) * scale
    i, j = torch.triu_indices(len(s), len(s), 1)
    ds, dt = (s[i] - s[j]).norm(dim=1), (desc[i] - desc[j]).norm(dim=1)
    return {"descriptor_error": round(float((s - desc).norm(dim=1).mean()), 4),
            "pair_distance_r": round(float(torch.corrcoef(torch.stack([ds, dt]))[0, 1]), 4)}


def agreement_threshold(emb: Tensor, teacher: Tensor, metric: str = "euclidean") -> dict:
    """The distance threshold at which a judge calls as many of all pairs of ``emb`` the same person
    as dlib does at 0.6 (``teacher`` descriptors), and how often the two then agree."""
    i, j = torch.triu_indices(len(emb), len(emb), 1)
    if metric == "euclidean":
        d = (emb[i] - emb[j]).norm(dim=1)
    else:
        d = 1 - F.cosine_similarity(emb[i], emb[j], dim=1)
    same = (teacher[i] - teacher[j]).norm(dim=1) < DLIB_THRESHOLD
    t = float(torch.quantile(d, same.float().mean()))
    agree_same = float((d[same] < t).float().mean()) if same.any() else float("nan")
    return {"threshold": round(t, 4), "dlib_same_rate": round(float(same.float().mean()), 5),
            "agrees_on_dlib_same": round(agree_same, 4), "agrees_on_all": round(float(((d < t) == same).float().mean()), 4),
            "pairs": len(d)}


def export_student(model, cfg: DistillConfig, state: dict, scale: float, n_teacher: int, n_train: int,
                   calibration: dict) -> Path:
    out = Path(cfg.out)
    model.cfg.training = {
        "data": Path(cfg.data).name, "teacher": "dlib_face_recognition_resnet_model_v1 (detection-free, genaug.faces.identity)",
        "teacher_faces": n_teacher, "train_faces": n_train, "steps": state["step"],
        "cpu_minutes": round(state["elapsed"] / 60, 2), "init": "evaluator_identity", "config": asdict(cfg),
        "holdout": state["log"][-1] if state["log"] else {},
        "distillation": {"scale": round(scale, 5), "threshold": calibration["threshold"],
                         "calibration": {**calibration, "on": f"all pairs of the {cfg.holdout} held-out teacher faces"}},
        "command": "python -m genaug.training.distill " + " ".join(sys.argv[1:]),
    }
    weights = save_evaluator(model, out / "evaluator_student")
    print(json.dumps(model.cfg.training, indent=1))
    return export_evaluator(weights, cfg.export)


# ----------------------------------------------------------------------------- evaluation
def split_faces(split: str, folder: Path = SHARED / "celeba_id200") -> tuple[Tensor, Tensor]:
    """Float [-1, 1] 64x64 faces and identity labels of one celeba_id200 split."""
    data = load_identity_folder(folder, 64)
    idx = data.where(split)
    return to_float(data.images[idx]), data.labels[idx]


def cached_embed(judge: IdentityJudge, x: Tensor, cache: Path | None) -> Tensor:
    """Embeddings of ``x``; dlib's are kept in ``cache`` (they take minutes)."""
    if cache is not None and cache.exists():
        e = load_file(str(cache))["embeddings"]
        if len(e) == len(x):
            return e
    e = judge.embed(x)
    if cache is not None:
        write_safetensors({"embeddings": e.contiguous()}, cache, {"judge": judge.name})
    return e


def pair_distances(judge: IdentityJudge, emb: Tensor, labels: Tensor, seed: int = 0) -> tuple[Tensor, Tensor]:
    gen, imp = verification_pairs(labels, seed=seed)
    return judge.distance(emb[gen[:, 0]], emb[gen[:, 1]]), judge.distance(emb[imp[:, 0]], emb[imp[:, 1]])


def verification(dg: Tensor, di: Tensor, threshold: float) -> dict:
    y = torch.cat([torch.ones(len(dg)), torch.zeros(len(di))])
    return {"auc": round(roc_auc(torch.cat([-dg, -di]), y), 4), "tar@far=1e-2": round(tar_at_far(-dg, -di, 1e-2), 4),
            "tar@far=1e-3": round(tar_at_far(-dg, -di, 1e-3), 4), "genuine_mean_distance": round(float(dg.mean()), 4),
            "same_person_rate_genuine": round(float((dg < threshold).float().mean()), 4),
            "false_accept_rate": round(float((di < threshold).float().mean()), 4)}


def evaluate(student: str | None, out: Path, people: int = 200) -> dict:
    """Teacher, student and embedder on celeba_id200 test pairs of the first ``people`` people, and
    the correlation of pair distances student <-> teacher and embedder <-> teacher."""
    x, labels = split_faces("test")
    keep = labels < people
    x, labels = x[keep], labels[keep]
    judges = {"dlib": DlibJudge(), "student": load_student(student), "embedder": get_judge("embedder")}
    res, dists = {}, {}
    for name, judge in judges.items():
        cache = out / f"dlib_id200_test_{people}people.safetensors" if name == "dlib" else None
        emb = cached_embed(judge, x, cache)
        dg, di = pair_distances(judge, emb, labels)
        dists[name] = torch.cat([dg, di])
        res[name] = {**verification(dg, di, judge.threshold), "threshold": judge.threshold}
    for name in ("student", "embedder"):
        a, b = dists[name].double().numpy(), dists["dlib"].double().numpy()
        ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
        res[name]["distance_correlation_with_dlib"] = {"pearson": round(float(np.corrcoef(a, b)[0, 1]), 4),
                                                       "spearman": round(float(np.corrcoef(ra, rb)[0, 1]), 4)}
    res["pairs"] = {"genuine": int(len(dg)), "impostor": int(len(di)), "faces": len(x), "split": "celeba_id200 test"}
    if (out / TEACHER_FILE).exists():  # the embedder's threshold at dlib's decisions, on the student's holdout
        idx, desc, _ = read_teacher(out / TEACHER_FILE)
        held = DistillConfig(out=str(out)).holdout
        faces = load_faces(SHARED / "celeba_train_64", 64, 3).images[idx[-held:]]
        res["embedder"]["agreement_threshold_teacher_holdout"] = agreement_threshold(
            judges["embedder"].embed(to_float(faces)), desc[-held:], "cosine")
    print(json.dumps(res, indent=1))
    (out / "distill_evaluation.json").write_text(json.dumps(res, indent=1) + "\n")
    return res


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m genaug.training.distill", description=plain_doc(__doc__.split("\n\n")[0]),
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("teacher", help="compute (or continue) the cached dlib descriptors")
    t.add_argument("--faces", type=int, default=4800, help="faces of celeba_train_64 the teacher describes")
    t.add_argument("--save-every", type=int, default=200)
    s = sub.add_parser("train", help="train the student on the cached descriptors")
    s.add_argument("--minutes", type=float, default=10.0)
    s.add_argument("--batch-size", type=int, default=128)
    s.add_argument("--lr", type=float, default=3e-4)
    s.add_argument("--ridge", type=float, default=300.0, help="ridge penalty of the head's initialisation")
    s.add_argument("--pair-weight", type=float, default=1.0)
    s.add_argument("--export", default=None, help="also copy evaluator_student.* here (e.g. genaug/default)")
    e = sub.add_parser("evaluate", help="teacher vs student vs embedder on celeba_id200 test pairs")
    e.add_argument("--student", default=None, help="student weights stem (default: the shipped one)")
    e.add_argument("--people", type=int, default=200, help="use the test photos of the first N people (dlib: ~6 faces/s)")
    for q in (t, s, e):
        q.add_argument("--out", required=True, help="work folder (teacher cache, checkpoints, results)")
        q.add_argument("--data", default=str(SHARED / "celeba_train_64"))
        q.add_argument("--threads", type=int, default=1)
        q.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.cmd == "teacher":
        faces = load_faces(a.data, 64, 3)
        idx = teacher_subset(len(faces), a.faces, a.seed)
        describe_faces(faces.images, idx, out / TEACHER_FILE, Path(a.data).name, a.seed, a.save_every)
    elif a.cmd == "train":
        train(DistillConfig(out=a.out, data=a.data, minutes=a.minutes, batch_size=a.batch_size, lr=a.lr, ridge=a.ridge,
                            pair_weight=a.pair_weight, threads=a.threads, seed=a.seed, export=a.export))
    else:
        evaluate(a.student, out, a.people)


if __name__ == "__main__":
    main()
