"""The training loop: runs the phases of a model kind (``genaug.training.gan``: GAN phase, then the
latent-predictor phase) and writes a bundle. Resumable (``checkpoint.pt`` every N steps; the same
command continues), logs JSON lines, writes sample and per-code sweep grids.

Data parallel under ``torchrun`` (:mod:`genaug.training.distributed`): every rank draws its own
``batch_size`` images and latents (global batch = ``batch_size * world``); every checkpoint
compares a fingerprint of all weights across ranks and stops the run if they drifted apart
(logged as ``rank_spread``). Rank 0 alone writes the config, log, grids, checkpoint and bundle,
after a barrier so the others never race ahead of a write they depend on."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from genaug.bundle import Bundle, save_bundle
from genaug.io import write_json_atomic

from . import distributed
from .checkpoint import (append_log, check_resumable, load_checkpoint, load_state_dicts, save_checkpoint, state_dicts, truncate_log)
from .config import MODEL_KINDS, TrainConfig
from .data import load_faces, split_holdout
from .gan import GanKind

# model kind -> class with the step logic (see genaug.training.gan); a new kind adds a file and an entry
KINDS: dict[str, Any] = {"infogan": GanKind, "began": GanKind}
assert set(KINDS) == set(MODEL_KINDS)
__all__ = ["KINDS", "TrainConfig", "Trainer", "train"]

# settings that may change between a run and its resumption
RESUMABLE_CHANGES = {"ema", "steps", "predictor_steps", "log_every", "sample_every", "checkpoint_every", "device", "name", "half", "overwrite"}


class Trainer:
    """Runs the phases of ``KINDS[cfg.kind]`` with logging, grids, checkpoints and resume."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        env, self.device = distributed.setup(cfg.device)
        self.rank, self.world, self.main = env.rank, env.world, env.main
        self.out = Path(cfg.out)
        torch.manual_seed(cfg.seed)
        self.spec = cfg.spec()
        opts = cfg.options
        data = load_faces(cfg.data, cfg.network.image_size, cfg.network.channels, attributes=opts.attributes,
                          limit=opts.limit or None)
        self.train_data, self.holdout = split_holdout(data, opts.holdout, cfg.seed)
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
            check_resumable(cfg_file, self.cfg.flat(), RESUMABLE_CHANGES, "another --out, or --overwrite to start again")
            self._load_checkpoint(load_checkpoint(self.ckpt, self.device))
            if self.main:
                truncate_log(self.out / "log.jsonl", self.step)
                print(f"resuming {self.out} at step {self.step}")
        elif self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "log.jsonl").unlink(missing_ok=True)
            write_json_atomic(cfg_file, self.cfg.flat())

    def _load_checkpoint(self, state: dict[str, Any]) -> None:
        load_state_dicts({**self.kind.modules(), **self._named_optimizers()}, state)
        self.kind.load_extra_state(state)
        self.step = int(state["step"])
        if self.rank < len(state["gen"]):
            self.gen.set_state(state["gen"][self.rank])
        else:  # saved with fewer ranks: a fresh, distinct stream per rank
            self.gen.manual_seed(self.cfg.seed * 1000 + self.rank + 7919 * self.step)

    def _named_optimizers(self) -> dict[str, Any]:
        return {"opt_" + k: o for k, o in self.kind.optimizers().items()}

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
        state = {**state_dicts({**self.kind.modules(), **self._named_optimizers()}), **self.kind.extra_state(),
                 "gen": gens, "step": torch.tensor(self.step)}
        save_checkpoint(self.ckpt, state)

    def _log(self, record: dict[str, Any]) -> None:
        append_log(self.out / "log.jsonl", record)

    # ----------------------------------------------------------------- run
    def phase_at(self, step: int) -> str:
        for name, n in self.kind.phases:
            if step < n:
                return name
            step -= n
        return self.kind.phases[-1][0]

    def _after_step(self, phase: str, logs: dict[str, float], bar: Any, t0: float) -> None:
        cfg, step = self.cfg.schedule, self.step
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
        bundle = self.kind.bundle({"config": self.cfg.flat(), "steps": self.step, "metrics": metrics,
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
