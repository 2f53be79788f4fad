"""Latent predictor (encoder) training against a frozen generator.

Two terms: on generated pairs (G(l), l) it regresses the whole latent (z by MSE, categorical
codes by cross-entropy, continuous codes by MSE); on real images it minimises the
reconstruction loss of G(E(x)) (MSE, SSIM, MS-SSIM, feature, or a mix)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genaug.models.latent import LatentSpec
from genaug.models.nets import Predictor
from genaug.models.recon import reconstruction_loss, reconstruction_score


@dataclass
class PredictorConfig:
    loss: str = "mse+msssim"
    real_weight: float = 1.0
    latent_weight: float = 1.0


class PredictorObjective:
    def __init__(self, spec: LatentSpec, G: nn.Module, E: Predictor, cfg: PredictorConfig, feature_net: nn.Module | None = None):
        self.spec, self.G, self.E, self.cfg, self.feature_net = spec, G, E, cfg, feature_net

    def latent_loss(self, latent: Tensor) -> tuple[Tensor, dict[str, float]]:
        with torch.no_grad():
            x = self.G(latent)
        raw = self.E.forward_raw(x)
        p, t = self.spec.split(raw), self.spec.split(latent)
        lz = F.mse_loss(p.z, t.z) if self.spec.noise_dim else raw.new_zeros(())
        lc = sum((F.cross_entropy(a, b.argmax(1)) for a, b in zip(p.categorical, t.categorical)), raw.new_zeros(()))
        lk = F.mse_loss(p.continuous, t.continuous) if self.spec.continuous_dim else raw.new_zeros(())
        return lz + lc + lk, {"e_z": lz.item(), "e_cat": lc.item(), "e_cont": lk.item()}

    def real_loss(self, real: Tensor) -> tuple[Tensor, dict[str, float]]:
        rec = self.G(self.E(real))
        loss = reconstruction_loss(rec, real, self.cfg.loss, self.feature_net).mean()
        return loss, {"e_rec": loss.item()}

    def loss(self, latent: Tensor, real: Tensor) -> tuple[Tensor, dict[str, float]]:
        a, la = self.latent_loss(latent)
        total = self.cfg.latent_weight * a
        logs = dict(la)
        if self.cfg.real_weight > 0:
            b, lb = self.real_loss(real)
            total = total + self.cfg.real_weight * b
            logs.update(lb)
        return total, logs

    @torch.no_grad()
    def evaluate(self, real: Tensor, batch: int = 128) -> dict[str, float]:
        """Held-out reconstruction: MSE and MS-SSIM score of G(E(x)) against x."""
        mse, score = [], []
        for i in range(0, real.shape[0], batch):
            x = real[i : i + batch]
            rec = self.G(self.E(x))
            mse.append((rec - x).pow(2).flatten(1).mean(1))
            score.append(reconstruction_score(rec, x))
        return {"heldout_mse": torch.cat(mse).mean().item(), "heldout_msssim": torch.cat(score).mean().item()}
