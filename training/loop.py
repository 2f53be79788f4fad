"""The training loop: GAN phase (InfoGAN or the BEGAN hybrid), then the latent-predictor phase,
then a bundle. Resumable (``checkpoint.pt`` every N steps; the same command continues), logs
JSON lines, writes sample and per-code sweep grids.

Data parallel under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; gloo on CPU, NCCL on
GPUs). Every rank holds full replicas of G, D, E (broadcast from rank 0 at start) and draws its
own ``batch_size`` images and latents (global batch = ``batch_size * world``). After each
backward pass the gradients are averaged in one flattened all-reduce per network
(:func:`_average_gradients`) and the float buffers (BatchNorm running statistics, spectral-norm
vectors) are averaged too, so the replicas stay bit-identical; the BEGAN balance term ``k_t`` is
updated from rank-averaged losses. We do this by hand rather than with
``DistributedDataParallel`` because D is run several times per step (real, fake, and frozen
inside G's step), which DDP's reducer handles only with ``find_unused_parameters``/static-graph
workarounds; explicit averaging is a dozen lines and obviously correct. Every checkpoint compares
a fingerprint of all weights across ranks and stops the run if they drifted apart (logged as
``rank_spread``). Rank 0 alone writes the config, log, grids, checkpoint and bundle, after a
barrier so the others never race ahead of a write they depend on."""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torchvision.utils import save_image
from tqdm.auto import tqdm

from genaug.bundle import CELEBA_FRAMING, Bundle, save_bundle
from genaug.device import resolve_device
from genaug.latent import LatentSpec
from genaug.recon import parse_mix
from genaug.nets import NetConfig, build_discriminator, build_generator, build_predictor, init_weights
from genaug.sweep import sweep

from .augment import instance_noise_std, parse_policy
from .data import load_faces, split_holdout
from .infogan import ObjectiveConfig, make_objective
from .losses import ADV_LOSSES
from .predictor import PredictorConfig, PredictorObjective

# settings that may change between a run and its resumption
RESUMABLE_CHANGES = {"ema", "steps", "predictor_steps", "log_every", "sample_every", "checkpoint_every", "device", "name", "half", "overwrite"}


@dataclass
class TrainConfig:
    """Everything a run needs; saved to ``OUT/train_config.json``."""

    data: str
    out: str
    kind: str = "infogan"
    image_size: int = 64
    channels: int = 3
    noise_dim: int = 64
    categorical: str = "10"
    continuous: str = "2"
    g_width: int = 32
    d_width: int = 32
    e_width: int = 32
    g_norm: str = "batch"
    spectral_norm: bool = False
    noise_head: bool = False
    batch_size: int = 64
    steps: int = 10000
    predictor_steps: int = 2000
    d_steps: int = 1
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lr_e: float = 5e-4
    beta1: float = 0.5
    lr_decay_start: float = 1.0
    ema: float = 0.999
    instance_noise: float = 0.0
    instance_noise_steps: int = 0
    instance_noise_power: float = 1.0
    adv_loss: str = "ns"
    lambda_info: float = 1.0
    lambda_cont: float = 0.5
    lambda_noise: float = 0.1
    lambda_attr: float = 1.0
    diffaug: str = ""
    began_gamma: float = 0.5
    began_lambda_k: float = 1e-3
    predictor_loss: str = "mse+msssim"
    predictor_real_weight: float = 1.0
    attributes: str = "auto"
    holdout: int = 256
    limit: int = 0
    framing: str = "celeba"
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 250
    seed: int = 0
    device: str = "auto"
    name: str = "custom"
    half: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.spectral_norm is False and self.adv_loss == "wgan":
            self.spectral_norm = True  # Wasserstein needs a Lipschitz critic
        # fail at once on a bad setting, not at the first step
        if self.kind not in ("infogan", "began"):
            raise ValueError(f"unknown model kind {self.kind!r}; choose 'infogan' or 'began'")
        if self.adv_loss not in ADV_LOSSES:
            raise ValueError(f"unknown adversarial loss {self.adv_loss!r}; choose from {ADV_LOSSES}")
        positive = ("image_size", "channels", "noise_dim", "batch_size", "steps", "d_steps", "log_every", "sample_every",
                    "checkpoint_every", "lr_g", "lr_d", "lr_e")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        for name in ("predictor_steps", "holdout", "limit", "instance_noise", "instance_noise_steps", "ema"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        parse_policy(self.diffaug)
        parse_mix(self.predictor_loss)
        self.spec(), self.net(), self.objective()

    def spec(self) -> LatentSpec:
        return LatentSpec.parse(self.noise_dim, self.categorical, self.continuous)

    def net(self) -> NetConfig:
        return NetConfig(
            image_size=self.image_size, channels=self.channels, g_width=self.g_width, d_width=self.d_width,
            e_width=self.e_width, g_norm=self.g_norm, spectral_norm=self.spectral_norm,
            discriminator="began" if self.kind == "began" else "infogan", noise_head=self.noise_head,
        )

    def objective(self) -> ObjectiveConfig:
        names = {f.name for f in fields(ObjectiveConfig)}
        return ObjectiveConfig(**{k: v for k, v in asdict(self).items() if k in names})


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _all_reduce_mean(tensors: list[torch.Tensor], world: int) -> None:
    """Average ``tensors`` in place across ranks with one flattened all-reduce."""
    if world == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world
    for t, v in zip(tensors, flat.split([t.numel() for t in tensors])):
        t.copy_(v.view_as(t))


def _average_gradients(module: nn.Module, world: int) -> None:
    """Average the gradients of ``module`` across ranks (data-parallel step)."""
    _all_reduce_mean([p.grad for p in module.parameters() if p.grad is not None], world)


@torch.no_grad()
def _average_buffers(module: nn.Module, world: int) -> None:
    """Average float buffers (BatchNorm running stats, spectral-norm vectors) across ranks."""
    _all_reduce_mean([b for b in module.buffers() if b.is_floating_point()], world)


@torch.no_grad()
def fingerprint(*modules: nn.Module) -> torch.Tensor:
    """One float64 checksum per module over its whole state (parameters and buffers)."""
    out = []
    for m in modules:
        acc = torch.zeros((), dtype=torch.float64)
        for i, t in enumerate(m.state_dict().values()):
            acc += (t.detach().double().cpu() * (1 + (torch.arange(t.numel()).view_as(t) % 7) / 7)).sum() * (i + 1)
        out.append(acc)
    return torch.stack(out)


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.rank, self.world, local = _dist_info()
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        dev = resolve_device(cfg.device)
        self.device = torch.device("cuda", local) if dev.type == "cuda" and self.world > 1 else dev
        if self.device.type == "cuda" and self.world > 1:
            torch.cuda.set_device(self.device)
        self.out = Path(cfg.out)
        self.main = self.rank == 0
        torch.manual_seed(cfg.seed)

        self.spec = cfg.spec()
        self.netcfg = cfg.net()
        data = load_faces(cfg.data, cfg.image_size, cfg.channels, attributes=cfg.attributes, limit=cfg.limit or None)
        self.train_data, self.holdout = split_holdout(data, cfg.holdout, cfg.seed)
        self.attr_cols: dict[int, int] = {}
        for i, code in enumerate(self.spec.codes):
            if code.attribute:
                if self.train_data.attribute_names is None:
                    raise ValueError(f"code {code.name!r} is bound to attribute {code.attribute!r} but {cfg.data} has no attributes.csv")
                self.attr_cols[i] = self.train_data.attribute_index(code.attribute)

        self.G = build_generator(self.spec, self.netcfg).to(self.device)
        self.D = build_discriminator(self.spec, self.netcfg).to(self.device)
        self.E = build_predictor(self.spec, self.netcfg).to(self.device)
        for m in (self.G, self.D, self.E):
            init_weights(m)
            if self.world > 1:
                for t in m.state_dict().values():
                    dist.broadcast(t, 0)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        betas = (cfg.beta1, 0.999)
        self.opt = {
            "G": torch.optim.Adam(self.G.parameters(), cfg.lr_g, betas=betas),
            "D": torch.optim.Adam(self.D.parameters(), cfg.lr_d, betas=betas),
            "E": torch.optim.Adam(self.E.parameters(), cfg.lr_e, betas=(0.9, 0.999)),
        }
        self.base_lr = {"G": cfg.lr_g, "D": cfg.lr_d, "E": cfg.lr_e}
        self.objective = make_objective(cfg.kind, self.spec, self.G, self.D, cfg.objective(), self.attr_cols)
        if self.world > 1:
            self.objective.began.reduce = self._mean_across_ranks
        self.pred = PredictorObjective(self.spec, self.G_ema, self.E, PredictorConfig(cfg.predictor_loss, cfg.predictor_real_weight))
        self.gen = torch.Generator().manual_seed(cfg.seed * 1000 + self.rank)
        self.fixed = self.spec.sample(64, generator=torch.Generator().manual_seed(cfg.seed + 12345)).to(self.device)
        self.step = 0
        self.ckpt = self.out / "checkpoint.pt"
        self._resume_or_start()

    # ------------------------------------------------------------- resume
    def _resume_or_start(self) -> None:
        cfg_file = self.out / "train_config.json"
        if self.ckpt.exists() and not self.cfg.overwrite:
            saved = json.loads(cfg_file.read_text())
            diff = {k for k, v in asdict(self.cfg).items() if k not in RESUMABLE_CHANGES and saved.get(k) != v}
            if diff:
                raise ValueError(
                    f"{self.out} holds a run with different settings ({sorted(diff)}); "
                    "use another --out or --overwrite to start again"
                )
            state = torch.load(self.ckpt, map_location=self.device, weights_only=True)
            for k in ("G", "D", "E", "G_ema"):
                getattr(self, k).load_state_dict(state[k])
            for k, o in self.opt.items():
                o.load_state_dict(state["opt_" + k])
            self.step = int(state["step"])
            if self.rank < len(state["gen"]):
                self.gen.set_state(state["gen"][self.rank])
            else:  # saved with fewer ranks: a fresh, distinct stream per rank
                self.gen.manual_seed(self.cfg.seed * 1000 + self.rank + 7919 * self.step)
            self.objective.began.k = float(state["began_k"])
            if self.main:
                self._truncate_log()
                print(f"resuming {self.out} at step {self.step}")
        elif self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            for f in ("log.jsonl",):
                (self.out / f).unlink(missing_ok=True)
            cfg_file.write_text(json.dumps(asdict(self.cfg), indent=2) + "\n")

    def _mean_across_ranks(self, v: torch.Tensor) -> None:
        t = v.to(self.device)
        _all_reduce_mean([t], self.world)
        v.copy_(t.cpu())

    def _truncate_log(self) -> None:
        """Drop log lines written after the checkpoint (an interrupted run logs past it)."""
        log = self.out / "log.jsonl"
        if log.exists():
            keep = [ln for ln in log.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= self.step]
            log.write_text("".join(ln + "\n" for ln in keep))

    def check_sync(self) -> float:
        """Largest difference across ranks of the weight fingerprints (0 = replicas identical).
        Raises if the ranks drifted apart. Collective: every rank must call it."""
        if self.world == 1:
            return 0.0
        fp = fingerprint(self.G, self.D, self.E, self.G_ema)
        fp = torch.cat([fp, torch.tensor([self.objective.began.k], dtype=torch.float64)]).to(self.device)
        gathered = [torch.zeros_like(fp) for _ in range(self.world)]
        dist.all_gather(gathered, fp)
        allfp = torch.stack(gathered).cpu()
        spread = (allfp.max(0).values - allfp.min(0).values).max().item()
        if spread > 1e-6 * (1 + fp.abs().max().item()):
            raise RuntimeError(f"data-parallel replicas diverged at step {self.step}: fingerprints {allfp.tolist()}")
        return spread

    def save_checkpoint(self, collective: bool = True) -> None:
        """Write ``checkpoint.pt`` (rank 0). Collective unless ``collective=False`` (interrupts)."""
        gens = [self.gen.get_state()]
        if self.world > 1 and collective:
            spread = self.check_sync()
            gathered: list[Any] = [None] * self.world
            dist.all_gather_object(gathered, gens[0])
            gens = gathered
            if self.main:
                self._log({"step": self.step, "phase": "sync", "world": self.world, "rank_spread": spread})
        if not self.main:
            return
        state = {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "E": self.E.state_dict(), "G_ema": self.G_ema.state_dict(),
            **{"opt_" + k: o.state_dict() for k, o in self.opt.items()},
            "gen": gens, "began_k": torch.tensor(self.objective.began.k), "step": torch.tensor(self.step),
        }
        tmp = self.ckpt.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.ckpt)

    # ---------------------------------------------------------------- steps
    def _set_lr(self, name: str, progress: float) -> None:
        start = self.cfg.lr_decay_start
        scale = 1.0 if progress < start or start >= 1 else max(0.0, (1 - progress) / (1 - start))
        for g in self.opt[name].param_groups:
            g["lr"] = self.base_lr[name] * scale

    def _real(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = torch.randint(0, len(self.train_data), (n,), generator=self.gen)
        attrs = self.train_data.attributes
        return self.train_data.batch(idx, self.device), None if attrs is None else attrs[idx].to(self.device)

    def _latent(self, n: int) -> torch.Tensor:
        return self.spec.sample(n, generator=self.gen).to(self.device)

    def gan_step(self) -> dict[str, float]:
        cfg = self.cfg
        progress = self.step / max(cfg.steps, 1)
        for k in ("G", "D"):
            self._set_lr(k, progress)
        anneal = cfg.instance_noise_steps or cfg.steps // 2
        sigma = instance_noise_std(self.step, cfg.instance_noise, anneal, cfg.instance_noise_power)
        logs: dict[str, float] = {}
        for _ in range(cfg.d_steps):
            real, attrs = self._real(cfg.batch_size)
            latent = self._latent(cfg.batch_size)
            with torch.no_grad():
                fake = self.G(latent)
            loss, logs = self.objective.d_loss(real, attrs, fake, latent, sigma, self.gen)
            self.opt["D"].zero_grad(set_to_none=True)
            loss.backward()
            _average_gradients(self.D, self.world)
            _average_buffers(self.D, self.world)
            self.opt["D"].step()
        latent = self._latent(cfg.batch_size)
        fake = self.G(latent)
        self.D.requires_grad_(False)
        loss, glogs = self.objective.g_loss(fake, latent, sigma, self.gen)
        self.opt["G"].zero_grad(set_to_none=True)
        loss.backward()
        self.D.requires_grad_(True)
        _average_gradients(self.G, self.world)
        _average_buffers(self.G, self.world)
        self.opt["G"].step()
        self._update_ema()
        return {**logs, **glogs, "instance_noise": sigma}

    @torch.no_grad()
    def _update_ema(self) -> None:
        beta = self.cfg.ema if self.step > 100 else 0.0
        for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
            pe.lerp_(p, 1 - beta)
        for be, b in zip(self.G_ema.buffers(), self.G.buffers()):
            be.copy_(b)

    def predictor_step(self) -> dict[str, float]:
        progress = (self.step - self.cfg.steps) / max(self.cfg.predictor_steps, 1)
        self._set_lr("E", progress)
        real, _ = self._real(self.cfg.batch_size)
        loss, logs = self.pred.loss(self._latent(self.cfg.batch_size), real)
        self.opt["E"].zero_grad(set_to_none=True)
        loss.backward()
        _average_gradients(self.E, self.world)
        _average_buffers(self.E, self.world)
        self.opt["E"].step()
        return logs

    # ------------------------------------------------------------- evidence
    @torch.no_grad()
    def q_accuracy(self, n: int = 256) -> dict[str, float]:
        """How often Q recovers each categorical code of EMA-generator samples (chance = 1/k)."""
        self.D.eval()
        latent = self.spec.sample(n, generator=torch.Generator().manual_seed(999)).to(self.device)
        _, q = self.D(self.G_ema(latent))
        self.D.train()
        out = {}
        for c, logits, idx in zip(self.spec.categorical, q.cat_logits, self.spec.sample_indices(latent)):
            out[f"q_acc_{c.name}"] = (logits.argmax(1) == idx).float().mean().item()
        return out

    @torch.no_grad()
    def write_grids(self) -> None:
        samples = self.out / "samples"
        samples.mkdir(exist_ok=True)
        save_image(self.G_ema(self.fixed), samples / f"step_{self.step:07d}.png", nrow=8, normalize=True, value_range=(-1, 1))
        sweeps = self.out / "sweeps"
        sweeps.mkdir(exist_ok=True)
        base = self.fixed[:8]
        for i, code in enumerate(self.spec.codes):
            lat, edits = sweep(base, self.spec, {i: "all" if self.spec.is_categorical(i) else 7})
            ncol = len(edits) // base.shape[0]
            save_image(self.G_ema(lat), sweeps / f"{code.name}.png", nrow=ncol, normalize=True, value_range=(-1, 1), padding=1)

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    # ----------------------------------------------------------------- run
    def run(self) -> Bundle | None:
        cfg = self.cfg
        total = cfg.steps + cfg.predictor_steps
        bar = tqdm(total=total, initial=self.step, desc=f"train {cfg.kind}", unit="step", disable=not self.main, dynamic_ncols=True)
        t0 = time.time()
        try:
            while self.step < total:
                phase = "gan" if self.step < cfg.steps else "predictor"
                logs = self.gan_step() if phase == "gan" else self.predictor_step()
                self.step += 1
                bar.update(1)
                if self.main and (self.step % cfg.log_every == 0 or self.step in (cfg.steps, total)):
                    rec: dict[str, Any] = {"step": self.step, "phase": phase, "sec": round(time.time() - t0, 1), **logs}
                    if phase == "gan":
                        rec.update(self.q_accuracy())
                    elif self.step % (cfg.log_every * 4) == 0 or self.step == total:
                        rec.update(self.pred.evaluate(self.holdout.batch(torch.arange(len(self.holdout)), self.device)))
                    self._log(rec)
                    shown = ("d_adv", "g_adv", "e_rec", "heldout_msssim", "M_global")
                    post = {k: f"{v:.3g}" for k, v in rec.items() if k in shown or k.startswith("q_acc_")}
                    bar.set_postfix(post, refresh=False)
                if self.main and (self.step % cfg.sample_every == 0 or self.step == cfg.steps):
                    self.write_grids()
                if self.step % cfg.checkpoint_every == 0 or self.step in (cfg.steps, total):
                    self.save_checkpoint()
        except KeyboardInterrupt:
            self.save_checkpoint(collective=False)
            if self.main:
                print(f"\ninterrupted: checkpoint saved at step {self.step}; run the same command to resume")
            raise
        finally:
            bar.close()
        return self.finish()

    def finish(self) -> Bundle | None:
        if self.world > 1:
            dist.barrier()
        if not self.main:
            return None
        holdout = self.holdout.batch(torch.arange(len(self.holdout)), self.device)
        metrics = {**self.q_accuracy(), **self.pred.evaluate(holdout)}
        bundle = Bundle(
            self.spec, self.netcfg, copy.deepcopy(self.G_ema).cpu(), copy.deepcopy(self.E).cpu().eval(),
            framing=CELEBA_FRAMING if self.cfg.framing == "celeba" else None, name=self.cfg.name,
            training={"config": asdict(self.cfg), "steps": self.step, "metrics": metrics, "images": len(self.train_data)},
        )
        save_bundle(bundle, self.out / "bundle", half=self.cfg.half)
        (self.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"wrote bundle {self.out / 'bundle'}: {json.dumps(metrics)}")
        return bundle


def train(cfg: TrainConfig) -> Bundle | None:
    """Run (or resume) a training run; returns the bundle on rank 0."""
    trainer = Trainer(cfg)
    try:
        bundle = trainer.run()
        if trainer.world > 1:
            dist.barrier()  # the others wait until rank 0 has written the bundle
        return bundle
    finally:
        if trainer.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
