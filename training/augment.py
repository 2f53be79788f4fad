"""Stabilisers applied to the discriminator's inputs: differentiable augmentation (DiffAugment:
colour, translation, cutout — the same random transform for every image it is given) and
annealed Gaussian instance noise."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> list[str]:
    ops = [p.strip() for p in policy.split(",") if p.strip()]
    bad = [p for p in ops if p not in POLICIES]
    if bad:
        raise ValueError(f"unknown DiffAugment ops {bad}; choose from {POLICIES}")
    return ops


def diff_augment(x: Tensor, policy: str, generator: torch.Generator | None = None) -> Tensor:
    """Differentiable augmentation of a batch in [-1, 1] (gradients flow to the generator)."""
    n, dev = x.shape[0], x.device

    def rand(*shape: int) -> Tensor:  # drawn where the generator lives (the loop's is on the CPU)
        return torch.rand(*shape, generator=generator, device=dev if generator is None else generator.device).to(dev)

    for op in parse_policy(policy):
        if op == "color":
            x = x + (rand(n, 1, 1, 1) - 0.5)  # brightness
            mean = x.mean(1, keepdim=True)
            x = (x - mean) * (rand(n, 1, 1, 1) * 2) + mean  # saturation
            mean = x.mean((1, 2, 3), keepdim=True)
            x = (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean  # contrast
        elif op == "translation":
            h, w = x.shape[-2:]
            shift = (rand(n, 2) - 0.5) * 0.25  # up to 1/8 of the image each way
            theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
            theta[:, 0, 0] = theta[:, 1, 1] = 1
            theta[:, :, 2] = shift * 2
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
        else:  # cutout: a square of half the side, zeroed
            h, w = x.shape[-2:]
            cy = (rand(n, 1, 1) * h).long()
            cx = (rand(n, 1, 1) * w).long()
            ys = torch.arange(h, device=dev).view(1, h, 1)
            xs = torch.arange(w, device=dev).view(1, 1, w)
            keep = ((ys - cy).abs() >= h // 4) | ((xs - cx).abs() >= w // 4)
            x = x * keep.unsqueeze(1).to(x.dtype)
    return x


def instance_noise_std(step: int, start_std: float, anneal_steps: int, power: float = 1.0) -> float:
    """Std of the Gaussian instance noise at ``step``: ``start_std * (1 - step/anneal)^power``."""
    if start_std <= 0 or anneal_steps <= 0:
        return 0.0
    return start_std * max(0.0, 1.0 - step / anneal_steps) ** power
