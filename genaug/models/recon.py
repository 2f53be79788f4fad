"""Reconstruction losses and scores between image batches in [-1, 1] (NCHW).

One functional form, :func:`reconstruction_loss`, per image (shape ``(N,)``), used by predictor
training and by inversion; :class:`ReconstructionLoss` wraps it as a module. Kinds: ``mse``,
``ssim``, ``msssim`` (pytorch-msssim; small images are upsampled to satisfy its window limit),
``feature`` (a pluggable feature network) and mixes written ``"mse+msssim"`` or
``"0.2*mse+0.8*msssim"``.
"""
from __future__ import annotations

import contextlib
import math
import re

import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim, ssim
from torch import Tensor, nn

KINDS = ("mse", "l1", "ssim", "msssim", "feature")


def parse_mix(kind: str) -> list[tuple[float, str]]:
    """``"0.2*mse+0.8*msssim"`` -> ``[(0.2, "mse"), (0.8, "msssim")]``; weights default to 1."""
    terms = []
    for part in kind.replace(" ", "").lower().replace("ms-ssim", "msssim").split("+"):
        m = re.fullmatch(r"(?:([0-9.eE-]+)\*)?([a-z0-9]+)", part)
        if not m or m.group(2) not in KINDS:
            raise ValueError(f"unknown reconstruction loss {part!r} in {kind!r}; choose from {KINDS} or a mix like 'mse+msssim'")
        terms.append((float(m.group(1)) if m.group(1) else 1.0, m.group(2)))
    if not all(math.isfinite(w) and w >= 0 for w, _ in terms) or not any(w > 0 for w, _ in terms):
        raise ValueError(f"reconstruction loss {kind!r}: each weight must be finite and >= 0, one of them > 0 "
                         "(a negative weight would maximise the error)")
    return terms


def _check(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"expected two NCHW batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def ssim_per_image(x: Tensor, y: Tensor) -> Tensor:
    """SSIM in [0, 1] per image (window shrunk for small images)."""
    _check(x, y)
    win = 11 if min(x.shape[-2:]) >= 44 else 7 if min(x.shape[-2:]) >= 16 else 3
    return ssim((x + 1) / 2, (y + 1) / 2, data_range=1.0, size_average=False, win_size=win)


def msssim_per_image(x: Tensor, y: Tensor) -> Tensor:
    """MS-SSIM in [0, 1] per image. pytorch-msssim needs side > (win-1)*16, so images of 32 px or
    less are upsampled (bilinear) to 64 px first and a 3-px window is used below 176 px."""
    _check(x, y)
    side = min(x.shape[-2:])
    if side <= 32:
        scale = 64 / side
        x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
        y = F.interpolate(y, scale_factor=scale, mode="bilinear", align_corners=False)
        side = min(x.shape[-2:])
    win = 11 if side > 160 else 7 if side > 96 else 3
    return ms_ssim((x + 1) / 2, (y + 1) / 2, data_range=1.0, size_average=False, win_size=win, )


def reconstruction_loss(
    x: Tensor, y: Tensor, kind: str = "mse", feature_net: nn.Module | None = None
) -> Tensor:
    """Loss per image, shape ``(N,)``, lower is better. SSIM kinds give ``1 - similarity``."""
    _check(x, y)
    total = x.new_zeros(x.shape[0])
    for w, k in parse_mix(kind):
        if k == "mse":
            term = (x - y).pow(2).flatten(1).mean(1)
        elif k == "l1":
            term = (x - y).abs().flatten(1).mean(1)
        elif k == "ssim":
            term = 1 - ssim_per_image(x, y)
        elif k == "msssim":
            term = 1 - msssim_per_image(x, y)
        else:
            if feature_net is None:
                raise ValueError("the 'feature' reconstruction loss needs a feature_net")
            term = (feature_net(x) - feature_net(y)).pow(2).flatten(1).mean(1)
        total = total + w * term
    return total


def reconstruction_score(x: Tensor, y: Tensor) -> Tensor:
    """Per-image similarity in [0, 1], higher is better: MS-SSIM in [0, 1].

    This is the score reported with every inversion and recorded in expanded datasets. On the CPU its
    ~50 tiny grouped convolutions run without oneDNN, whose per-call overhead made one 64 px score
    cost 7 ms (3.3 ms without; the same values to 1e-7).
    """
    with torch.no_grad(), _without_onednn(x.device.type == "cpu"):
        return msssim_per_image(x.float(), y.float()).clamp(0, 1)


@contextlib.contextmanager
def _without_onednn(off: bool):
    """oneDNN off for the block (``torch.backends.mkldnn.flags`` would also touch TF32 and warn)."""
    get, set_ = getattr(torch._C, "_get_mkldnn_enabled", None), getattr(torch._C, "_set_mkldnn_enabled", None)
    if not off or get is None or set_ is None:
        yield
        return
    was = get()
    set_(False)
    try:
        yield
    finally:
        set_(was)


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """PSNR in dB per image for inputs in [-1, 1]."""
    mse = ((x - y) / 2).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return -10 * torch.log10(mse)


class ReconstructionLoss(nn.Module):
    """Module form of :func:`reconstruction_loss`; ``reduction`` is ``"mean"``, ``"sum"`` or ``"none"``."""

    def __init__(self, kind: str = "mse", feature_net: nn.Module | None = None, reduction: str = "mean"):
        super().__init__()
        parse_mix(kind)  # validate up front
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.kind, self.feature_net, self.reduction = kind, feature_net, reduction

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        loss = reconstruction_loss(x, y, self.kind, self.feature_net)
        return loss.mean() if self.reduction == "mean" else loss.sum() if self.reduction == "sum" else loss
