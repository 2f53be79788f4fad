"""The infogan / began kinds (the older model: a controllable generator from noise, then an encoder
fitted to it) on :mod:`genaug.training.skeleton`: runs the phases of :class:`genaug.training.gan.GanKind`
(GAN phase, then the encoder phase) and writes a bundle. The same command resumes from
``checkpoint.pt``; SIGTERM / SIGINT save a checkpoint and end the run; logs JSON lines, writes
sample and per-code sweep grids.

Data parallel under ``torchrun`` (:mod:`genaug.training.distributed`): every rank draws its own
``batch_size`` images and latents (global batch = ``batch_size * world``); every checkpoint
compares a fingerprint of all weights across ranks and stops the run if they drifted apart
(logged as ``rank_spread``). Rank 0 alone writes the config, log, grids, checkpoint and bundle,
after a barrier so the others never race ahead of a write they depend on."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from genaug.bundle import Bundle, save_bundle
from genaug.faces.framing import CELEBA_FRAMING
from genaug.io import write_json_atomic

from . import distributed
from .config import MODEL_KINDS, TrainConfig
from .data import faces_record, load_faces, split_holdout
from .gan import GanKind
from .skeleton import FolderLock, Run, RunPlan

# GAN kind -> class with its step logic (see genaug.training.gan); the command-line registry is genaug.training.cli.KINDS
GAN_KINDS: dict[str, Any] = {"infogan": GanKind, "began": GanKind}
assert set(GAN_KINDS) == set(MODEL_KINDS)
__all__ = ["GAN_KINDS", "TrainConfig", "Trainer", "train"]

# settings that may change between a run and its resumption
RESUMABLE_CHANGES = {"ema", "steps", "predictor_steps", "log_every", "sample_every", "checkpoint_every", "device", "name", "half", "overwrite"}
PROGRESS_KEYS = ("d_adv", "g_adv", "e_rec", "heldout_msssim", "M_global")


class Trainer:
    """The skeleton's kind for infogan / began: runs the phases of ``GAN_KINDS[cfg.kind]``."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        env, self.device = distributed.setup(cfg.device)
        self.rank, self.world, self.main = env.rank, env.world, env.main
        # the run folder is held (by rank 0) before the faces load and the networks build: a second run on it is
        # refused at once; an error while building releases it, else the run does when it ends
        self.folder = FolderLock(cfg.out, self.main)
        with self.folder.released_on_error():
            self._build(cfg)

    def _build(self, cfg: TrainConfig) -> None:
        self.out = Path(cfg.out)
        torch.manual_seed(cfg.seed)
        self.spec = cfg.spec()
        opts = cfg.options
        data = load_faces(cfg.data, cfg.network.image_size, cfg.network.channels, attributes=opts.attributes,
                          limit=opts.limit or None, exclude=cfg.out,
                          framing=CELEBA_FRAMING if opts.framing == "celeba" else None)  # as the bundle records
        self.train_data, self.holdout = split_holdout(data, opts.holdout, cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed * 1000 + self.rank)
        self.kind = GAN_KINDS[cfg.kind](cfg, self.spec, self.train_data, self.holdout, self._attribute_columns(),
                                    self.device, self.world, self.gen)
        self.total = sum(n for _, n in self.kind.phases)
        sched = cfg.schedule
        ends = {sum(n for _, n in self.kind.phases[: i + 1]) for i in range(len(self.kind.phases))}
        plan = RunPlan(self.out, self.total, cfg.flat(), RESUMABLE_CHANGES, sched.log_every, sched.checkpoint_every,
                       sched.sample_every, remedy="another --out, or --overwrite to start again", overwrite=cfg.overwrite,
                       marks=ends, finish_on_stop=False, desc=f"train {cfg.kind}", main=self.main, log_time_key="sec",
                       log_digits=None, faces=faces_record(data, self.holdout, cfg.data))  # other faces: refused
        self.progress_keys = PROGRESS_KEYS
        self.runner = Run(self, plan, self.device, lock=self.folder)
        self.runner.resume()

    @property
    def step(self) -> int:
        return self.runner.step

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

    # ------------------------------------------------------- skeleton hooks
    def parts(self) -> dict[str, Any]:
        return {**self.kind.modules(), **{"opt_" + k: o for k, o in self.kind.optimizers().items()}}

    def extra_state(self, collective: bool) -> dict[str, Any]:
        """The kind's scalars and every rank's sampling RNG (weights compared across ranks first)."""
        gens = [self.gen.get_state()]
        if self.world > 1 and collective:
            modules = list(self.kind.modules().values())
            spread = distributed.check_sync(modules, self.kind.sync_scalars(), self.world, self.device, self.runner.step)
            gens = distributed.gather_objects(gens[0], self.world)
            self.runner.log({"step": self.runner.step, "phase": "sync", "world": self.world, "rank_spread": spread})
        return {**self.kind.extra_state(), "gen": gens}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.kind.load_extra_state(state)
        if self.rank < len(state["gen"]):
            self.gen.set_state(state["gen"][self.rank].cpu())
        else:  # saved with fewer ranks: a fresh, distinct stream per rank
            self.gen.manual_seed(self.cfg.seed * 1000 + self.rank + 7919 * int(state["step"]))

    def phase_at(self, step: int) -> str:
        for name, n in self.kind.phases:
            if step < n:
                return name
            step -= n
        return self.kind.phases[-1][0]

    def train_step(self, step: int) -> dict[str, Any]:
        phase = self.phase_at(step)
        return {"phase": phase, **self.kind.step(phase, step)}

    def log_extra(self, step: int) -> dict[str, Any]:
        return self.kind.evidence(self.phase_at(step - 1), step)

    def evaluate(self, step: int) -> None:
        """Sample and sweep grids (rank 0)."""
        self.kind.write_samples(self.out, step)

    def export(self, step: int) -> Bundle | None:
        distributed.barrier(self.world)
        if not self.main:
            return None
        metrics = self.kind.evidence(self.phase_at(self.total - 1), self.total, final=True)
        bundle = self.kind.bundle({"config": self.cfg.flat(), "steps": step, "metrics": metrics,
                                   "images": len(self.train_data)})
        save_bundle(bundle, self.out / "bundle", half=self.cfg.half)
        write_json_atomic(self.out / "metrics.json", metrics)
        print(f"wrote bundle {self.out / 'bundle'}: {json.dumps(metrics)}")
        return bundle

    def run(self) -> Bundle | None:
        """Train to the end of the last phase; None on ranks > 0 and when stopped by a signal."""
        return self.runner.run()

    def train(self) -> Bundle | None:
        """:meth:`run`, then the other ranks wait until rank 0 has written the bundle; the process group ends."""
        try:
            bundle = self.run()
            distributed.barrier(self.world)
            return bundle
        finally:
            distributed.shutdown(self.world)


def train(cfg: TrainConfig) -> Bundle | None:
    """Run (or resume) a training run; returns the bundle on rank 0 (None when a signal stopped it)."""
    return Trainer(cfg).train()
