"""Losses: adversarial (5 kinds), InfoGAN mutual information, noise recovery, attribute binding,
and the BEGAN equilibrium. Pure functions of network outputs."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from genaug.models.latent import LatentSpec
from genaug.models.nets import QOutput

ADV_LOSSES = ("ns", "minimax", "hinge", "wgan", "lsgan")


def d_adv_loss(kind: str, real: Tensor, fake: Tensor) -> Tensor:
    """Discriminator loss from logits on real and fake images."""
    if kind in ("ns", "minimax"):
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "wgan":
        return fake.mean() - real.mean() + 1e-3 * real.pow(2).mean()  # drift term keeps logits bounded
    if kind == "lsgan":
        return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())
    raise ValueError(f"unknown adversarial loss {kind!r}; choose from {ADV_LOSSES}")


def g_adv_loss(kind: str, fake: Tensor) -> Tensor:
    """Generator loss from the discriminator's logits on fakes."""
    if kind == "ns":
        return F.softplus(-fake).mean()
    if kind == "minimax":
        return -F.softplus(fake).mean()
    if kind in ("hinge", "wgan"):
        return -fake.mean()
    if kind == "lsgan":
        return 0.5 * (fake - 1).pow(2).mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; choose from {ADV_LOSSES}")


def info_loss(spec: LatentSpec, q: QOutput, latent: Tensor) -> tuple[Tensor, Tensor]:
    """InfoGAN's mutual-information lower bound as losses: (categorical CE, continuous Gaussian NLL)."""
    parts = spec.split(latent)
    cat = sum((F.cross_entropy(lg, p.argmax(1)) for lg, p in zip(q.cat_logits, parts.categorical)), latent.new_zeros(()))
    if spec.continuous_dim:
        nll = 0.5 * (q.cont_logvar + (parts.continuous - q.cont_mean).pow(2) / q.cont_logvar.exp() + math.log(2 * math.pi))
        cont = nll.sum(1).mean()
    else:
        cont = latent.new_zeros(())
    return cat, cont


def noise_loss(spec: LatentSpec, q: QOutput, latent: Tensor) -> Tensor:
    """Extended InfoGAN: L2 between the recovered and the true noise z."""
    if q.z is None:
        return latent.new_zeros(())
    return (q.z - spec.split(latent).z).pow(2).mean()


def attribute_loss(spec: LatentSpec, q: QOutput, attrs: Tensor, attr_cols: dict[int, int]) -> Tensor:
    """AC-GAN-style binding on real images: Q's reading of each bound code must match the label.

    ``attr_cols`` maps a code's global index to its column in ``attrs`` (values -1/+1). Categorical
    codes (k=2) learn category 1 for +1; continuous codes regress to their range's ends.
    """
    total = attrs.new_zeros(())
    n_cat = len(spec.categorical)
    for ci, col in attr_cols.items():
        y = attrs[:, col]
        if ci < n_cat:
            total = total + F.cross_entropy(q.cat_logits[ci], (y > 0).long())
        else:
            c = spec.continuous[ci - n_cat]
            target = torch.where(y > 0, torch.full_like(y, c.high), torch.full_like(y, c.low))
            total = total + (q.cont_mean[:, ci - n_cat] - target).pow(2).mean()
    return total


class BEGANBalance:
    """BEGAN equilibrium: k_t update and the M_global convergence measure."""

    def __init__(self, gamma: float = 0.5, lambda_k: float = 1e-3, k: float = 0.0, reduce: Callable[[Tensor], None] | None = None):
        self.gamma, self.lambda_k, self.k = gamma, lambda_k, k
        self.reduce = reduce  # in-place cross-rank mean of the losses (data parallel), or None

    def d_loss(self, rec_real: Tensor, rec_fake: Tensor) -> Tensor:
        return rec_real - self.k * rec_fake

    def update(self, rec_real: float, rec_fake: float) -> float:
        """Update k_t; returns M_global = L_real + |gamma * L_real - L_fake|."""
        if self.reduce is not None:
            both = torch.tensor([rec_real, rec_fake], dtype=torch.float64)
            self.reduce(both)
            rec_real, rec_fake = both.tolist()
        balance = self.gamma * rec_real - rec_fake
        self.k = min(max(self.k + self.lambda_k * balance, 0.0), 1.0)
        return rec_real + abs(balance)


def ae_error(x: Tensor, rec: Tensor) -> Tensor:
    """Per-image L1 autoencoder error (BEGAN)."""
    return (x - rec).abs().flatten(1).mean(1)
