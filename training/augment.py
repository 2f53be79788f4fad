"""Stabilisers applied to the discriminator's inputs: differentiable augmentation (DiffAugment:
colour, translation, cutout — ``diff_augment`` for the InfoGAN kinds, ``translate_cutout`` for the
edit kind's ``--d-augment``) and annealed Gaussian instance noise."""
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


def translate_cutout(x: Tensor, generator: torch.Generator, shift: float = 0.125, cutout: float = 0.25) -> Tensor:
    """Shift each image by up to ``shift`` of its size (zero fill), then zero one random square of
    side ``cutout`` of its size. NCHW in, same shape out; gradients flow to ``x``. Unlike
    ``diff_augment`` the shifts are whole pixels and the hole is a quarter of the side by default, so
    a bound attribute (glasses, a smile) mostly stays visible to D's code head; the parameters are
    drawn on the CPU from ``generator`` (seeded, resumable) and applied on ``x``'s device."""
    n, _, h, w = x.shape
    if shift:
        d = (torch.rand(n, 2, generator=generator) * 2 - 1) * shift
        sx, sy = (d[:, 0] * w).round() / w * 2, (d[:, 1] * h).round() / h * 2  # whole pixels, in grid units
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, 0, 2], theta[:, 1, 2] = sx, sy
        grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    if cutout:
        ch, cw = max(1, round(h * cutout)), max(1, round(w * cutout))
        cy = (torch.rand(n, generator=generator) * (h + 1 - ch)).long()
        cx = (torch.rand(n, generator=generator) * (w + 1 - cw)).long()
        ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
        hole = ((ys >= cy.view(n, 1, 1)) & (ys < (cy + ch).view(n, 1, 1)) & (xs >= cx.view(n, 1, 1)) & (xs < (cx + cw).view(n, 1, 1)))
        x = x * (~hole).unsqueeze(1).to(x.device, x.dtype)
    return x


def instance_noise_std(step: int, start_std: float, anneal_steps: int, power: float = 1.0) -> float:
    """Std of the Gaussian instance noise at ``step``: ``start_std * (1 - step/anneal)^power``."""
    if start_std <= 0 or anneal_steps <= 0:
        return 0.0
    return start_std * max(0.0, 1.0 - step / anneal_steps) ** power
