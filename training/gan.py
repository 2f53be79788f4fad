"""Step logic of the GAN kinds (``infogan`` and the ``began`` hybrid): a GAN phase (G against D + Q
head), then a latent-predictor phase against the frozen EMA generator, then a bundle.

``GanKind`` has ``phases`` (name, steps), ``step(phase)``, ``modules()`` / ``optimizers()`` /
``extra_state()`` (what a checkpoint holds), ``evidence(phase, final)`` (extra log metrics),
``write_samples(out, step)`` and ``bundle(...)``; :class:`genaug.training.loop.Trainer` runs it on
:mod:`genaug.training.skeleton` (a GAN variant adds a class and one entry in ``genaug.training.loop.GAN_KINDS``).
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torchvision.utils import save_image

from genaug.bundle import Bundle
from genaug.engine.edits import sweep
from genaug.faces.framing import CELEBA_FRAMING
from genaug.models.latent import LatentSpec
from genaug.models.nets import build_discriminator, init_weights
from genaug.models.registry import build_generator, build_predictor

from . import distributed
from .augment import instance_noise_std
from .checkpoint import update_ema
from .data import FaceData
from .infogan import make_objective
from .predictor import PredictorObjective


def linear_decay(base_lr: float, progress: float, start: float) -> float:
    """``base_lr`` until ``start`` (a fraction of the phase), then linearly down to 0 at the end."""
    return base_lr if progress < start or start >= 1 else base_lr * max(0.0, (1 - progress) / (1 - start))


class GanKind:
    """G, D (+ Q head), the latent predictor P and the EMA generator, with their optimisers."""

    def __init__(self, cfg: Any, spec: LatentSpec, data: FaceData, holdout: FaceData, attr_cols: dict[int, int],
                 device: torch.device, world: int, gen: torch.Generator):
        self.cfg, self.spec, self.data, self.holdout, self.device, self.world, self.gen = \
            cfg, spec, data, holdout, device, world, gen
        self.sched = cfg.schedule
        net, sched = cfg.network, cfg.schedule
        self.G = build_generator(spec, net).to(device)
        self.D = build_discriminator(spec, net).to(device)
        self.P = build_predictor(spec, net).to(device)
        for m in (self.G, self.D, self.P):
            init_weights(m)
            distributed.broadcast_from_rank0(m, world)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        betas = (sched.beta1, 0.999)
        self.base_lr = {"G": sched.lr_g, "D": sched.lr_d, "E": sched.lr_e}
        self.opt = {
            "G": torch.optim.Adam(self.G.parameters(), sched.lr_g, betas=betas),
            "D": torch.optim.Adam(self.D.parameters(), sched.lr_d, betas=betas),
            "E": torch.optim.Adam(self.P.parameters(), sched.lr_e, betas=(0.9, 0.999)),
        }
        self.objective = make_objective(cfg.kind, spec, self.G, self.D, cfg.objective, attr_cols)
        if world > 1:
            self.objective.began.reduce = self._mean_across_ranks
        self.pred = PredictorObjective(spec, self.G_ema, self.P, cfg.predictor)
        self.fixed = spec.sample(64, generator=torch.Generator().manual_seed(cfg.seed + 12345)).to(device)

    # ----------------------------------------------------------- checkpoint
    @property
    def phases(self) -> list[tuple[str, int]]:
        return [("gan", self.sched.steps), ("predictor", self.sched.predictor_steps)]

    def modules(self) -> dict[str, nn.Module]:
        """The checkpointed networks (checkpoint keys: E is the latent predictor)."""
        return {"G": self.G, "D": self.D, "E": self.P, "G_ema": self.G_ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self.opt

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {"began_k": torch.tensor(self.objective.began.k)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.objective.began.k = float(state["began_k"])

    def sync_scalars(self) -> list[float]:
        return [self.objective.began.k]

    def _mean_across_ranks(self, v: torch.Tensor) -> None:
        t = v.to(self.device)
        distributed.all_reduce_mean([t], self.world)
        v.copy_(t.cpu())

    # ---------------------------------------------------------------- steps
    def _set_lr(self, name: str, progress: float) -> None:
        for g in self.opt[name].param_groups:
            g["lr"] = linear_decay(self.base_lr[name], progress, self.sched.lr_decay_start)

    def _real(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = torch.randint(0, len(self.data), (n,), generator=self.gen)
        attrs = self.data.attributes
        return self.data.batch(idx, self.device), None if attrs is None else attrs[idx].to(self.device)

    def _latent(self, n: int) -> torch.Tensor:
        return self.spec.sample(n, generator=self.gen).to(self.device)

    def _update(self, name: str, module: nn.Module, loss: torch.Tensor) -> None:
        self.opt[name].zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(module, self.world)
        distributed.average_buffers(module, self.world)
        self.opt[name].step()

    def step(self, phase: str, step: int) -> dict[str, float]:
        return self.gan_step(step) if phase == "gan" else self.predictor_step(step)

    def gan_step(self, step: int) -> dict[str, float]:
        cfg = self.sched
        for k in ("G", "D"):
            self._set_lr(k, step / max(cfg.steps, 1))
        anneal = cfg.instance_noise_steps or cfg.steps // 2
        sigma = instance_noise_std(step, cfg.instance_noise, anneal, cfg.instance_noise_power)
        logs: dict[str, float] = {}
        for _ in range(cfg.d_steps):
            real, attrs = self._real(cfg.batch_size)
            latent = self._latent(cfg.batch_size)
            with torch.no_grad():
                fake = self.G(latent)
            loss, logs = self.objective.d_loss(real, attrs, fake, latent, sigma, self.gen)
            self._update("D", self.D, loss)
        latent = self._latent(cfg.batch_size)
        fake = self.G(latent)
        self.D.requires_grad_(False)
        loss, glogs = self.objective.g_loss(fake, latent, sigma, self.gen)
        self.opt["G"].zero_grad(set_to_none=True)
        loss.backward()
        self.D.requires_grad_(True)
        distributed.average_gradients(self.G, self.world)
        distributed.average_buffers(self.G, self.world)
        distributed.average_buffers(self.D, self.world)  # D's BatchNorm statistics moved on each rank's own fakes
        self.opt["G"].step()
        update_ema(self.G_ema, self.G, cfg.ema if step > 100 else 0.0)
        return {**logs, **glogs, "instance_noise": sigma}

    def predictor_step(self, step: int) -> dict[str, float]:
        self._set_lr("E", (step - self.sched.steps) / max(self.sched.predictor_steps, 1))
        real, _ = self._real(self.sched.batch_size)
        loss, logs = self.pred.loss(self._latent(self.sched.batch_size), real)
        self._update("E", self.P, loss)
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

    def evidence(self, phase: str, step: int, final: bool = False) -> dict[str, float]:
        """Extra metrics for a log line (all of them for the final metrics)."""
        heldout = lambda: self.pred.evaluate(self.holdout.batch(torch.arange(len(self.holdout)), self.device))  # noqa: E731
        if final:
            return {**self.q_accuracy(), **heldout()}
        if phase == "gan":
            return self.q_accuracy()
        return heldout() if step % (self.sched.log_every * 4) == 0 or step == sum(n for _, n in self.phases) else {}

    def sample_due(self, step: int) -> bool:
        return step % self.sched.sample_every == 0 or step == self.sched.steps

    @torch.no_grad()
    def write_samples(self, out: Any, step: int) -> None:
        """A grid of the fixed latents and one sweep grid per code."""
        (out / "samples").mkdir(exist_ok=True)
        save_image(self.G_ema(self.fixed), out / "samples" / f"step_{step:07d}.png", nrow=8, normalize=True, value_range=(-1, 1))
        (out / "sweeps").mkdir(exist_ok=True)
        base = self.fixed[:8]
        for i, code in enumerate(self.spec.codes):
            lat, edits = sweep(base, self.spec, {i: "all" if self.spec.is_categorical(i) else 7})
            save_image(self.G_ema(lat), out / "sweeps" / f"{code.name}.png", nrow=len(edits) // base.shape[0],
                       normalize=True, value_range=(-1, 1), padding=1)

    def bundle(self, training: dict[str, Any]) -> Bundle:
        return Bundle(self.spec, self.cfg.network, copy.deepcopy(self.G_ema).cpu(), copy.deepcopy(self.P).cpu().eval(),
                      framing=CELEBA_FRAMING if self.cfg.options.framing == "celeba" else None, name=self.cfg.name,
                      training=training)
