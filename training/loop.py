"""The training loop: runs the phases of a model kind (``training.gan``: GAN phase, then the
latent-predictor phase) and writes a bundle. Resumable (``checkpoint.pt`` every N steps; the same
command continues), logs JSON lines, writes sample and per-code sweep grids.

Data parallel under ``torchrun`` (:mod:`training.distributed`): every rank draws its own
``batch_size`` images and latents (global batch = ``batch_size * world``); every checkpoint
compares a fingerprint of all weights across ranks and stops the run if they drifted apart
(logged as ``rank_spread``). Rank 0 alone writes the config, log, grids, checkpoint and bundle,
after a barrier so the others never race ahead of a write they depend on."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from genaug.bundle import Bundle, save_bundle
from genaug.io import atomic_write, write_json_atomic, write_text_atomic
from genaug.latent import LatentSpec
from genaug.nets import NetConfig
from genaug.recon import parse_mix

from . import distributed
from .augment import parse_policy
from .data import load_faces, split_holdout
from .gan import GanKind
from .infogan import ObjectiveConfig
from .losses import ADV_LOSSES

# model kind -> class with the step logic (see training.gan); a new kind adds a file and an entry
KINDS: dict[str, Any] = {"infogan": GanKind, "began": GanKind}

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
        if self.kind not in KINDS:
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

    def _section(self, cls: type, **fixed: Any) -> Any:
        """The config section ``cls`` (a dataclass) filled from the fields of the same name."""
        names = ({f.name for f in fields(cls)} & {f.name for f in fields(self)}) - set(fixed)
        return cls(**{k: getattr(self, k) for k in names}, **fixed)

    def net(self) -> NetConfig:
        return self._section(NetConfig, kind="dcgan", discriminator="began" if self.kind == "began" else "infogan")

    def objective(self) -> ObjectiveConfig:
        return self._section(ObjectiveConfig)


class Trainer:
    """Runs the phases of ``KINDS[cfg.kind]`` with logging, grids, checkpoints and resume."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        env, self.device = distributed.setup(cfg.device)
        self.rank, self.world, self.main = env.rank, env.world, env.main
        self.out = Path(cfg.out)
        torch.manual_seed(cfg.seed)
        self.spec = cfg.spec()
        data = load_faces(cfg.data, cfg.image_size, cfg.channels, attributes=cfg.attributes, limit=cfg.limit or None)
        self.train_data, self.holdout = split_holdout(data, cfg.holdout, cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed * 1000 + self.rank)
        self.kind = KINDS[cfg.kind](cfg, self.spec, self.train_data, self.holdout, self._attribute_columns(),
                                    self.device, self.world, self.gen)
        self.total = sum(n for _, n in self.kind.phases)
        self.step = 0
        self.ckpt = self.out / "checkpoint.pt"
        self._resume_or_start()

    def _attribute_columns(self) -> dict[int, int]:
        """code index -> attribute column, for the codes bound to an attribute."""
        cols = {}
        for i, code in enumerate(self.spec.codes):
            if code.attribute:
                if self.train_data.attribute_names is None:
                    raise ValueError(f"code {code.name!r} is bound to attribute {code.attribute!r} but {self.cfg.data} "
                                     "has no attributes.csv")
                cols[i] = self.train_data.attribute_index(code.attribute)
        return cols

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
            self._load_checkpoint(torch.load(self.ckpt, map_location=self.device, weights_only=True))
            if self.main:
                self._truncate_log()
                print(f"resuming {self.out} at step {self.step}")
        elif self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "log.jsonl").unlink(missing_ok=True)
            write_json_atomic(cfg_file, asdict(self.cfg))

    def _load_checkpoint(self, state: dict[str, Any]) -> None:
        for k, m in self.kind.modules().items():
            m.load_state_dict(state[k])
        for k, o in self.kind.optimizers().items():
            o.load_state_dict(state["opt_" + k])
        self.kind.load_extra_state(state)
        self.step = int(state["step"])
        if self.rank < len(state["gen"]):
            self.gen.set_state(state["gen"][self.rank])
        else:  # saved with fewer ranks: a fresh, distinct stream per rank
            self.gen.manual_seed(self.cfg.seed * 1000 + self.rank + 7919 * self.step)

    def _truncate_log(self) -> None:
        """Drop log lines written after the checkpoint (an interrupted run logs past it)."""
        log = self.out / "log.jsonl"
        if log.exists():
            keep = [ln for ln in log.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= self.step]
            write_text_atomic(log, "".join(ln + "\n" for ln in keep))

    def save_checkpoint(self, collective: bool = True) -> None:
        """Write ``checkpoint.pt`` (rank 0). Collective unless ``collective=False`` (interrupts)."""
        gens = [self.gen.get_state()]
        if self.world > 1 and collective:
            modules = list(self.kind.modules().values())
            spread = distributed.check_sync(modules, self.kind.sync_scalars(), self.world, self.device, self.step)
            gens = distributed.gather_objects(gens[0], self.world)
            if self.main:
                self._log({"step": self.step, "phase": "sync", "world": self.world, "rank_spread": spread})
        if not self.main:
            return
        state = {
            **{k: m.state_dict() for k, m in self.kind.modules().items()},
            **{"opt_" + k: o.state_dict() for k, o in self.kind.optimizers().items()},
            **self.kind.extra_state(), "gen": gens, "step": torch.tensor(self.step),
        }
        atomic_write(self.ckpt, lambda tmp: torch.save(state, tmp))

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    # ----------------------------------------------------------------- run
    def phase_at(self, step: int) -> str:
        for name, n in self.kind.phases:
            if step < n:
                return name
            step -= n
        return self.kind.phases[-1][0]

    def _after_step(self, phase: str, logs: dict[str, float], bar: Any, t0: float) -> None:
        cfg, step = self.cfg, self.step
        phase_ends = {sum(n for _, n in self.kind.phases[: i + 1]) for i in range(len(self.kind.phases))}
        if self.main and (step % cfg.log_every == 0 or step in phase_ends):
            rec: dict[str, Any] = {"step": step, "phase": phase, "sec": round(time.time() - t0, 1), **logs,
                                   **self.kind.evidence(phase, step)}
            self._log(rec)
            shown = ("d_adv", "g_adv", "e_rec", "heldout_msssim", "M_global")
            bar.set_postfix({k: f"{v:.3g}" for k, v in rec.items() if k in shown or k.startswith("q_acc_")}, refresh=False)
        if self.main and self.kind.sample_due(step):
            self.kind.write_samples(self.out, step)
        if step % cfg.checkpoint_every == 0 or step in phase_ends:
            self.save_checkpoint()

    def run(self) -> Bundle | None:
        bar = tqdm(total=self.total, initial=self.step, desc=f"train {self.cfg.kind}", unit="step", disable=not self.main,
                   dynamic_ncols=True)
        t0 = time.time()
        try:
            while self.step < self.total:
                phase = self.phase_at(self.step)
                logs = self.kind.step(phase, self.step)
                self.step += 1
                bar.update(1)
                self._after_step(phase, logs, bar, t0)
        except KeyboardInterrupt:
            self.save_checkpoint(collective=False)
            if self.main:
                print(f"\ninterrupted: checkpoint saved at step {self.step}; run the same command to resume")
            raise
        finally:
            bar.close()
        return self.finish()

    def finish(self) -> Bundle | None:
        distributed.barrier(self.world)
        if not self.main:
            return None
        metrics = self.kind.evidence(self.phase_at(self.total - 1), self.total, final=True)
        bundle = self.kind.bundle({"config": asdict(self.cfg), "steps": self.step, "metrics": metrics,
                                   "images": len(self.train_data)})
        save_bundle(bundle, self.out / "bundle", half=self.cfg.half)
        write_json_atomic(self.out / "metrics.json", metrics)
        print(f"wrote bundle {self.out / 'bundle'}: {json.dumps(metrics)}")
        return bundle


def train(cfg: TrainConfig) -> Bundle | None:
    """Run (or resume) a training run; returns the bundle on rank 0."""
    trainer = Trainer(cfg)
    try:
        bundle = trainer.run()
        distributed.barrier(trainer.world)  # the others wait until rank 0 has written the bundle
        return bundle
    finally:
        distributed.shutdown(trainer.world)
