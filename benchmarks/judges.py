"""Judges of the classifier two-sample test (``benchmarks/c2st.py``): each turns photos into its inputs once per
arm and learns, per seed, to score real (0) against augmented (1). Judges with other inductive biases than the
project's CNN, because an independent judge will not use the detector genaug was measured with:

- ``cnn``: the project's detector on the photo (``c2st.Detector``; the realism numbers since the first session);
- ``residual``: the same CNN on a fixed high-pass residual, the photo minus its 3x3 median per channel, clipped
  to +-24 levels: the forensic cue for resampled or regenerated regions, JPEG grid breaks and a pasted region's
  missing grain or blur;
- ``spectrum``: logistic regression on the azimuthally averaged log power spectrum of the grey photo (Durall et
  al. 2020, "Watch your up-convolution"): the classic detector of generated images' spectral bumps and
  resampling's missing high frequencies;
- ``wide``: a CNN twice as wide, trained twice as long (what a judge with more compute runs).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

RESIDUAL_CLIP = 24.0  # levels of 255; the residual is scaled to [-3, 3]


@dataclass(frozen=True)
class Judge:
    """``inputs(images)``: uint8 (N, H, W, 3) to the judge's tensor rows; ``fit(x, y, settings, seed)``: a trained
    scorer, rows to one float score each (higher: augmented)."""

    inputs: Callable[[np.ndarray], torch.Tensor]
    fit: Callable[..., Callable[[torch.Tensor], np.ndarray]]


def photo_input(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def residual_input(images: np.ndarray) -> torch.Tensor:
    """The photo minus its 3x3 median, per channel (edges reflected), clipped to +-RESIDUAL_CLIP, scaled to +-3."""
    from scipy.ndimage import median_filter

    x = images.astype(np.float32)
    r = x - median_filter(x, size=(1, 3, 3, 1), mode="reflect")
    return torch.from_numpy(np.clip(r, -RESIDUAL_CLIP, RESIDUAL_CLIP) * (3 / RESIDUAL_CLIP)).permute(0, 3, 1, 2).contiguous()


def spectrum_input(images: np.ndarray) -> torch.Tensor:
    """Azimuthal average of the grey photo's log power spectrum: one value per integer radius 0 .. size/2."""
    grey = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    power = np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean((1, 2), keepdims=True)), axes=(1, 2))) ** 2
    h, w = grey.shape[1:]
    yy, xx = np.mgrid[0:h, 0:w]
    radius = np.hypot(yy - h // 2, xx - w // 2).round().astype(int).ravel()
    keep = radius <= min(h, w) // 2
    counts = np.bincount(radius[keep])
    logp = np.log(power.reshape(len(images), -1)[:, keep] + 1e-8)
    prof = np.stack([np.bincount(radius[keep], weights=row) for row in logp]) / counts
    return torch.from_numpy(prof).float()


def fit_cnn(x: torch.Tensor, y: torch.Tensor, s, seed: int):
    from benchmarks.c2st import train_detector

    net = train_detector(x, y, s, seed)

    def score(rows: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return torch.cat([net(b) for b in rows.split(256)]).numpy()

    return score


def fit_wide(x: torch.Tensor, y: torch.Tensor, s, seed: int):
    return fit_cnn(x, y, replace(s, widths=[2 * w for w in s.widths], epochs=2 * s.epochs), seed)


def fit_logistic(x: torch.Tensor, y: torch.Tensor, s, seed: int, l2: float = 1e-2):
    """L2-penalised logistic regression on standardised features (L-BFGS, full batch: no randomness)."""
    mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
    z = ((x - mu) / sd).double()
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y.double()) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w, b = w.detach(), b.detach()
    return lambda rows: (((rows - mu) / sd).double() @ w + b).numpy()


JUDGES: dict[str, Judge] = {
    "cnn": Judge(photo_input, fit_cnn),
    "residual": Judge(residual_input, fit_cnn),
    "spectrum": Judge(spectrum_input, fit_logistic),
    "wide": Judge(photo_input, fit_wide),
}


def judge(name: str) -> Judge:
    if name not in JUDGES:
        raise ValueError(f"unknown detector {name!r}; choose from {tuple(JUDGES)}")
    return JUDGES[name]
