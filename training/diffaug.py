"""Differentiable augmentation of what the discriminator sees (DiffAugment's translation + cutout).

Applied to real and generated faces alike before D, so D cannot key its decisions (real/fake and the
attribute head) on exact pixel positions and G cannot satisfy it with position-exact patterns. The
random parameters are drawn on the CPU from the caller's seeded generator (reproducible, resumable),
then applied on the images' device.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def translate_cutout(x: Tensor, generator: torch.Generator, shift: float = 0.125, cutout: float = 0.25) -> Tensor:
    """Shift each image by up to ``shift`` of its size (zero fill), then zero one random square of
    side ``cutout`` of its size. NCHW in, same shape out; gradients flow to ``x``."""
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
