"""Inversion: image -> latent. The predictor gives the first guess; ``steps`` Adam steps on the
latent through the frozen generator refine it (categorical parts optimised as logits and
re-softmaxed, continuous codes kept in their range). No gradient ever reaches the weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..models.latent import LatentSpec
from ..models.recon import parse_mix, reconstruction_loss, reconstruction_score


@dataclass
class Inversion:
    """Result of inverting a batch: latents, reconstructions G(latent) and their scores."""

    latent: Tensor  # (N, D) valid generator input
    score: Tensor  # (N,) reconstruction score in [0, 1] (MS-SSIM), higher is better
    recon: Tensor  # (N, C, S, S) = G(latent)


def raw_to_latent(spec: LatentSpec, raw: Tensor) -> Tensor:
    """``[z | logits | continuous]`` -> a valid latent (softmaxed categories, clamped codes)."""
    parts = spec.split(raw)
    lo = torch.tensor([c.low for c in spec.continuous], dtype=raw.dtype, device=raw.device)
    hi = torch.tensor([c.high for c in spec.continuous], dtype=raw.dtype, device=raw.device)
    cont = torch.maximum(torch.minimum(parts.continuous, hi), lo)
    return spec.join(parts.z, [p.softmax(1) for p in parts.categorical], cont)


def latent_to_raw(spec: LatentSpec, latent: Tensor, eps: float = 1e-4) -> Tensor:
    """Inverse of :func:`raw_to_latent` (log-probabilities as logits)."""
    parts = spec.split(latent)
    return spec.join(parts.z, [p.clamp_min(eps).log() for p in parts.categorical], parts.continuous)


def refine(
    generator: nn.Module,
    spec: LatentSpec,
    x: Tensor,
    raw: Tensor,
    steps: int,
    loss: str = "mse+msssim",
    lr: float = 0.05,
    feature_net: nn.Module | None = None,
) -> Tensor:
    """``steps`` Adam steps on ``raw`` (N, D) minimising the per-image loss to ``x``; returns the
    best raw latent seen per image (the loss is not monotone)."""
    parse_mix(loss)
    with torch.inference_mode(False), torch.enable_grad():
        x = x.detach().clone()
        raw = raw.detach().clone().requires_grad_(True)
        best = raw.detach().clone()
        best_loss = torch.full((x.shape[0],), float("inf"), device=x.device)
        opt = torch.optim.Adam([raw], lr=lr)
        for _ in range(steps):
            per = reconstruction_loss(generator(raw_to_latent(spec, raw)), x, loss, feature_net)
            with torch.no_grad():
                better = per < best_loss
                best[better] = raw.detach()[better]
                best_loss = torch.where(better, per.detach(), best_loss)
            (grad,) = torch.autograd.grad(per.sum(), [raw])
            raw.grad = grad
            opt.step()
        with torch.no_grad():
            per = reconstruction_loss(generator(raw_to_latent(spec, raw)), x, loss, feature_net)
            better = per < best_loss
            best[better] = raw.detach()[better]
    return best


@torch.no_grad()
def invert(
    generator: nn.Module,
    predictor: nn.Module,
    spec: LatentSpec,
    x: Tensor,
    steps: int = 20,
    loss: str = "mse+msssim",
    lr: float = 0.05,
    feature_net: nn.Module | None = None,
) -> Inversion:
    """Invert a batch ``x`` (N, C, S, S) in [-1, 1]: predictor, then ``steps`` refinement steps
    (0 = predictor only). The one inversion entry point (:meth:`genaug.engine.Engine.invert`)."""
    if steps < 0:
        raise ValueError(f"refine steps must be >= 0, got {steps}")
    raw = predictor.forward_raw(x)
    if steps:
        raw = refine(generator, spec, x, raw, steps, loss, lr, feature_net)
    latent = raw_to_latent(spec, raw)
    recon = generator(latent)
    return Inversion(latent, reconstruction_score(recon, x), recon)
