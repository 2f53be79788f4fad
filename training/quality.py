"""Train the realism critic of the quality gate: a small CNN that tells real 64 px face crops from
genaug outputs (and from synthetic blotches, local blur and a face tinted alone).

    python -m genaug.training.quality --out /work/runs/quality3 --export genaug/default   # shipped: 619 steps in 25 min on a loaded CPU

Faces (none of them scored by the benchmarks): ``celeba_train_64`` (``--celeba`` random faces)
and ``utkface_128`` images with file index < ``UTK_CRITIC_LIMIT`` (3000, see
``/work/notes/UTK_SPLIT.md``: ``benchmarks/realism.py`` scores only index >= 3000), each as a 64 px
crop: utkface once as the whole tight crop and once as its centre 80 % (a tighter face box).
Negatives, one per real face: the bundle's random edits at strengths U(0.5, 1.5) over every code
(3 of 4), or a synthetic corruption (1 of 4: dark or coloured blotches, a locally blurred face, the
face box tinted alone). 10 % of the faces (and their negatives) are held out; the log reports their
ROC AUC, and the recommended ``quality_threshold`` is the held-out real faces' 2 % quantile of the
critic's score (so 98 % of real photos pass). Runs on the training skeleton (resume, checkpoint, JSON-lines log, SIGTERM, wall-clock budget).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from genaug.cli.common import plain_doc
from genaug.faces.features import EvaluatorConfig, FaceNet, save_evaluator
from genaug.faces.metrics import roc_auc

from .skeleton import RngState, Run, RunPlan

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
UTK_CRITIC_LIMIT = 3000  # utkface_128 images with index < this train the critic; benchmarks use the rest
SIZE = 64


def _read(path: Path, crop: float = 1.0) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if crop < 1.0:
            s = round(im.width * crop)
            o = (im.width - s) // 2
            im = im.crop((o, o, o + s, o + s))
        return np.asarray(im.resize((SIZE, SIZE), Image.BICUBIC) if im.size != (SIZE, SIZE) else im)


def load_real(shared: Path, n_celeba: int, n_utk: int, seed: int) -> tuple[Tensor, list[str]]:
    """uint8 NCHW real 64 px crops and their names (celeba_train_64, utkface index < 3000)."""
    rng = np.random.default_rng(seed)
    celeba = sorted((shared / "celeba_train_64" / "images").glob("*.jpg"))
    utk = sorted((shared / "utkface_128" / "images").glob("*.jpg"))[:UTK_CRITIC_LIMIT]
    if not celeba or not utk:
        raise FileNotFoundError(f"need {shared}/celeba_train_64/images and {shared}/utkface_128/images")
    picks = [(celeba[i], 1.0) for i in sorted(rng.choice(len(celeba), min(n_celeba, len(celeba)), replace=False))]
    u = sorted(rng.choice(len(utk), min(n_utk, len(utk)), replace=False))
    picks += [(utk[i], 1.0) for i in u[: len(u) // 2 + 1]] + [(utk[i], 0.8) for i in u[len(u) // 2 + 1:]]
    arr = np.stack([_read(p, c) for p, c in picks])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous(), [f"{p.parent.parent.name}/{p.name}@{c}" for p, c in picks]


def to_float(x: Tensor) -> Tensor:
    return x.float() / 127.5 - 1


@torch.no_grad()
def genaug_fakes(x: Tensor, bundle: str, gen: torch.Generator) -> Tensor:
    """The bundle's random edits (every code) at random strengths: float [-1, 1] model-frame outputs."""
    from genaug.engine.core import Engine

    engine = Engine(bundle, device="cpu", batch_size=128, cache_size=0, framing="none",
                    codes=None, seed=int(torch.randint(0, 2**31, (1,), generator=gen)))
    engine.codes = list(range(len(engine.spec.codes)))  # every code, the unsafe ones too: all are edits to judge
    out = []
    for i in range(0, len(x), 128):
        b = to_float(x[i : i + 128])
        s = 0.5 + torch.rand(len(b), generator=gen)
        out.append(engine.augment_tensor(b, generator=gen, strength=s)[0])
    return torch.cat(out)


def corrupt(x: Tensor, gen: torch.Generator) -> Tensor:
    """Synthetic artifacts on float [-1, 1] faces: blotches, a locally blurred face, a tinted face box."""
    n, _, s, _ = x.shape
    out = x.clone()
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    kind = torch.randint(0, 3, (n,), generator=gen)
    for i in range(n):
        r = lambda lo, hi: float(lo + (hi - lo) * torch.rand(1, generator=gen))  # noqa: E731
        if kind[i] == 0:  # 1-4 soft blotches, dark or coloured
            for _ in range(int(torch.randint(1, 5, (1,), generator=gen))):
                cx, cy, rad = r(0.25, 0.75) * s, r(0.3, 0.8) * s, r(0.04, 0.12) * s
                blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rad**2))
                colour = torch.rand(3, 1, 1, generator=gen) * 2 - 1 if r(0, 1) < 0.4 else torch.full((3, 1, 1), -0.9)
                out[i] = out[i] * (1 - r(0.5, 0.9) * blob) + r(0.5, 0.9) * blob * colour
        elif kind[i] == 1:  # the central face blurred (a smooth, smeared face in a sharp photo)
            sig = r(1.0, 2.5)
            k = 2 * math.ceil(2 * sig) + 1
            from torchvision.transforms.functional import gaussian_blur

            blurred = gaussian_blur(out[i : i + 1], [k, k], [sig, sig])[0]
            m = torch.exp(-((xx - s / 2) ** 2 + (yy - s * 0.55) ** 2) / (2 * (0.22 * s) ** 2))
            out[i] = out[i] * (1 - m) + blurred * m
        else:  # the face box alone tinted or brightened (a photometric edit that stops at the box)
            lo, hi = round(r(0.1, 0.25) * s), round(r(0.75, 0.9) * s)
            tint = (torch.rand(3, 1, 1, generator=gen) * 2 - 1) * r(0.1, 0.3)
            out[i, :, lo:hi, lo:hi] += tint
    return out.clamp(-1, 1)


def critic_config(widths: list[int], training: dict | None = None) -> EvaluatorConfig:
    return EvaluatorConfig(kind="quality", input_size=SIZE, crop=1.0, widths=widths, outputs=["real"],
                           training=training or {})


def scores(model: FaceNet, x: Tensor) -> Tensor:
    """Float [-1, 1] NCHW -> probability of 'real' (N,)."""
    model.eval()
    with torch.no_grad():
        return torch.cat([torch.sigmoid(model(x[i : i + 256])[:, 0]) for i in range(0, len(x), 256)])


def make_data(args: argparse.Namespace, gen: torch.Generator, cache: Path) -> tuple[Tensor, Tensor, Tensor, list[str]]:
    """Real faces, one negative each (float [-1, 1]) and which negatives are synthetic; kept in
    ``cache`` (uint8) so a second run with the same settings skips the slow genaug pass."""
    from safetensors.torch import load_file, save_file

    key = json.dumps([args.shared, args.bundle, args.celeba, args.utk, args.seed])
    if cache.is_file() and (cache.with_suffix(".key").read_text() if cache.with_suffix(".key").is_file() else "") == key:
        d = load_file(str(cache))
        torch.rand(len(d["real"]), generator=gen)  # keep the generator's stream as in a fresh run
        return to_float(d["real"]), to_float(d["fake"]), d["synth"].bool(), json.loads(cache.with_suffix(".names").read_text())
    real_u8, names = load_real(Path(args.shared), args.celeba, args.utk, args.seed)
    real = to_float(real_u8)
    synth = torch.rand(len(real), generator=gen) < 0.25
    fake = real.clone()
    fake[~synth] = genaug_fakes(real_u8[~synth], args.bundle, gen)
    fake[synth] = corrupt(real[synth], gen)
    to_u8 = lambda t: ((t + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # noqa: E731
    save_file({"real": real_u8, "fake": to_u8(fake), "synth": synth.to(torch.uint8)}, str(cache))
    cache.with_suffix(".key").write_text(key)
    cache.with_suffix(".names").write_text(json.dumps(names))
    return real, to_float(to_u8(fake)), synth, names


class QualityKind:
    """The realism critic as a kind of :class:`~training.skeleton.Run`: cosine-decayed AdamW on real
    (1) vs augmented (0) crops with random flips; evaluation on the held-out tenth; export writes the
    evaluator (and copies it to ``--export``)."""

    progress_keys = ("loss",)

    def __init__(self, args: argparse.Namespace, real: Tensor, fake: Tensor, synth: Tensor):
        self.args, self.gen = args, torch.Generator().manual_seed(args.seed)
        perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(args.seed))
        n_val = len(real) // 10
        val, tr = perm[:n_val], perm[n_val:]
        self.real_val, self.fake_val, self.synth_val = real[val], fake[val], synth[val]
        self.x = torch.cat([real[tr], fake[tr]])
        self.y = torch.cat([torch.ones(len(tr)), torch.zeros(len(tr))])
        torch.manual_seed(args.seed)
        self.model = FaceNet(critic_config(args.widths))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=args.lr, weight_decay=1e-4)
        self.result: dict = {}

    def parts(self) -> dict:
        return {"model": self.model, "opt": self.opt, "rng": RngState(self.gen)}

    def train_step(self, step: int) -> dict:
        for g in self.opt.param_groups:
            g["lr"] = self.args.lr * 0.5 * (1 + math.cos(math.pi * step / self.args.steps))
        idx = torch.randint(0, len(self.x), (self.args.batch,), generator=self.gen)
        xb = self.x[idx]
        flip = torch.rand(len(idx), generator=self.gen) < 0.5
        xb[flip] = xb[flip].flip(-1)
        self.model.train()
        loss = F.binary_cross_entropy_with_logits(self.model(xb)[:, 0], self.y[idx])
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss, "lr": self.opt.param_groups[0]["lr"]}

    def evaluate(self, step: int) -> dict:
        s_real, s_fake = scores(self.model, self.real_val), scores(self.model, self.fake_val)
        threshold, vs, n = float(torch.quantile(s_real, 0.02)), self.synth_val, len(s_real)
        self.result = dict(
            steps=step, held_out_auc=roc_auc(torch.cat([s_real, s_fake]), torch.cat([torch.ones(n), torch.zeros(n)])),
            threshold=round(threshold, 4), real_pass=float((s_real >= threshold).float().mean()),
            genaug_rejected=float((s_fake[~vs] < threshold).float().mean()),
            synthetic_rejected=float((s_fake[vs] < threshold).float().mean()))
        return self.result

    def export(self, step: int) -> Path:
        a = self.args
        training = dict(data=dict(celeba_train_64=a.celeba, utkface_128=f"{a.utk} of file index < {UTK_CRITIC_LIMIT}"),
                        negatives="genaug random edits over every code at strength U(0.5,1.5) (3/4); synthetic blotches, "
                                  "local blur, tinted face box (1/4)",
                        bundle=a.bundle, seed=a.seed, score="P(real), sigmoid of the logit", **self.result)
        self.model.cfg = critic_config(a.widths, training)
        weights = save_evaluator(self.model, Path(a.out) / "evaluator_quality")
        if a.export:
            for f in (weights, weights.with_suffix(".json")):
                shutil.copy2(f, Path(a.export) / f.name)
        print(json.dumps(self.result))
        return weights


def train(args: argparse.Namespace) -> Path:
    """Build the data (cached in the run folder), then run the critic on the training skeleton:
    the same command resumes; ``--minutes`` bounds one invocation, ``--steps`` the whole run."""
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    real, fake, synth, _ = make_data(args, torch.Generator().manual_seed(args.seed), out / "data.safetensors")
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "shared")}
    plan = RunPlan(out, args.steps, settings, {"minutes", "threads", "export", "steps"}, log_every=50,
                   checkpoint_every=200, minutes=args.minutes, desc="quality critic")
    run = Run(QualityKind(args, real, fake, synth), plan)
    run.resume()
    return run.run()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m genaug.training.quality", description=plain_doc(__doc__.split("\n\n")[0]))
    p.add_argument("--out", required=True)
    p.add_argument("--shared", default=str(SHARED))
    p.add_argument("--bundle", default="default")
    p.add_argument("--celeba", type=int, default=4000)
    p.add_argument("--utk", type=int, default=UTK_CRITIC_LIMIT)
    p.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32, 64])
    p.add_argument("--minutes", type=float, default=25.0)
    p.add_argument("--steps", type=int, default=2000, help="at most this many steps (the budget may stop it first)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--export", default=None, help="copy evaluator_quality.{safetensors,json} into this folder")
    train(p.parse_args(argv))


if __name__ == "__main__":
    main()
