"""InfoGAN (and its BEGAN hybrid) objectives: one discriminator step and one generator step.

The Q head shares the discriminator's trunk. It learns to recover the codes (and optionally z)
from fakes in the D step and, for attribute-bound codes, to read the attribute from real
images (AC-GAN style); the generator's step adds the same information loss so G makes codes
recoverable.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genaug.models.latent import LatentSpec

from .augment import diff_augment
from .losses import BEGANBalance, ae_error, attribute_loss, d_adv_loss, g_adv_loss, info_loss, noise_loss


@dataclass
class ObjectiveConfig:
    adv_loss: str = "ns"
    lambda_info: float = 1.0
    lambda_cont: float = 0.5  # weight of the continuous part inside the info term
    lambda_noise: float = 0.1
    lambda_attr: float = 1.0
    diffaug: str = ""
    began_gamma: float = 0.5
    began_lambda_k: float = 1e-3


class InfoGANObjective:
    """Losses of the DCGAN discriminator + Q head and of the generator."""

    def __init__(self, spec: LatentSpec, G: nn.Module, D: nn.Module, cfg: ObjectiveConfig, attr_cols: dict[int, int]):
        self.spec, self.G, self.D, self.cfg, self.attr_cols = spec, G, D, cfg, attr_cols
        self.began = BEGANBalance(cfg.began_gamma, cfg.began_lambda_k)

    def _d_in(self, x: Tensor, noise_std: float, gen: torch.Generator) -> Tensor:
        if self.cfg.diffaug:
            x = diff_augment(x, self.cfg.diffaug, gen)
        if noise_std > 0:
            x = x + noise_std * torch.randn(x.shape, generator=gen, device=x.device if gen is None else gen.device).to(x.device)
        return x

    def _info(self, q, latent: Tensor) -> tuple[Tensor, dict[str, float]]:
        cat, cont = info_loss(self.spec, q, latent)
        noise = noise_loss(self.spec, q, latent)
        loss = self.cfg.lambda_info * (cat + self.cfg.lambda_cont * cont) + self.cfg.lambda_noise * noise
        return loss, {"info_cat": cat.item(), "info_cont": cont.item(), "noise_rec": noise.item()}

    def d_loss(self, real: Tensor, attrs: Tensor | None, fake: Tensor, latent: Tensor, noise_std: float, gen: torch.Generator):
        r_in, f_in = self._d_in(real, noise_std, gen), self._d_in(fake.detach(), noise_std, gen)
        (out_r, q_r), (out_f, q_f) = self.D(r_in), self.D(f_in)
        info, logs = self._info(q_f, latent)
        adv, extra = self._d_adv(r_in, f_in, out_r, out_f)
        loss = adv + info
        if attrs is not None and self.attr_cols:
            a = attribute_loss(self.spec, q_r, attrs, self.attr_cols)
            loss = loss + self.cfg.lambda_attr * a
            logs["attr"] = a.item()
        return loss, {"d_adv": adv.item(), **logs, **extra}

    def g_loss(self, fake: Tensor, latent: Tensor, noise_std: float, gen: torch.Generator):
        f_in = self._d_in(fake, noise_std, gen)
        out_f, q_f = self.D(f_in)
        info, logs = self._info(q_f, latent)
        adv = self._g_adv(f_in, out_f)
        return adv + info, {"g_adv": adv.item(), **{f"g_{k}": v for k, v in logs.items()}}

    def _d_adv(self, real, fake, out_r, out_f):
        return d_adv_loss(self.cfg.adv_loss, out_r, out_f), {}

    def _g_adv(self, fake, out_f):
        return g_adv_loss(self.cfg.adv_loss, out_f)


class BEGANObjective(InfoGANObjective):
    """InfoGAN–BEGAN hybrid: the discriminator is an autoencoder; its L1 reconstruction error is
    the adversarial signal, balanced by the BEGAN equilibrium (k_t, gamma, M_global)."""

    def _d_adv(self, real, fake, out_r, out_f):
        rr = ae_error(real, out_r).mean()
        rf = ae_error(fake, out_f).mean()
        loss = self.began.d_loss(rr, rf)
        m = self.began.update(rr.item(), rf.item())
        return loss, {"k_t": self.began.k, "M_global": m}

    def _g_adv(self, fake, out_f):
        return ae_error(fake, out_f).mean()


def make_objective(kind: str, spec, G, D, cfg: ObjectiveConfig, attr_cols) -> InfoGANObjective:
    if kind == "began":
        return BEGANObjective(spec, G, D, cfg, attr_cols)
    if kind == "infogan":
        return InfoGANObjective(spec, G, D, cfg, attr_cols)
    raise ValueError(f"unknown model kind {kind!r}; choose 'infogan' or 'began'")
