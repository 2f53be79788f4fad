"""Colour edits of the whole photo, and grey photos kept grey.

A photometric code (tone, shade, warmth: a recipe with ``colour=True``) changes how the photo
was lit and developed, not the face: drawn through the generator it also redraws texture (smears)
and, pasted into a larger photo, tints the face alone. So its rendered change is reduced to the
colour transform that best explains it - per photo and channel a gain, a pull towards the
luminance (saturation) and an offset, least squares over the model frame with a ridge towards the
identity - and that transform is applied
to every pixel of the photo: exact texture, the background shifts with the face.

A grey photo (all channels equal) stays grey: an edit that would add colour to it (a blue cast from
the glasses code) keeps only its luminance change.
"""
from __future__ import annotations

import torch
from torch import Tensor

GREY_TOLERANCE = 4 / 255  # largest mean channel spread (model units, [-1, 1]) of a grey photo
RIDGE = 1e-4  # pulls the fitted transform towards the identity (flat or single-colour faces)


def fit_colour(src: Tensor, dst: Tensor) -> Tensor:
    """Per row and channel, ``dst_c ~ a_c src_c + k_c lum(src) + b_c`` in least squares (a gain, a
    saturation-like pull to the luminance and an offset: what exposure, white balance and colour
    grading do; no channel leaks into another hue), ridge towards the identity: (N, C, 3)."""
    lum = src.mean(1, keepdim=True)
    x = torch.stack([src.flatten(2), lum.expand_as(src).flatten(2), torch.ones_like(src).flatten(2)], -1).double()
    y = dst.flatten(2).double()[..., None]  # (N, C, P, 1)
    p = x.shape[2]
    reg = RIDGE * p * torch.eye(3, dtype=x.dtype, device=x.device)
    prior = torch.tensor([1.0, 0.0, 0.0], dtype=x.dtype, device=x.device)[:, None]  # the identity
    a = x.transpose(-1, -2) @ x + reg
    return (_inverse3(a) @ (x.transpose(-1, -2) @ y + reg @ prior))[..., 0].to(src.dtype)


def _inverse3(a: Tensor) -> Tensor:
    """Inverses of (..., 3, 3) matrices by their adjugate: no pivoting, no host read (unlike
    ``torch.linalg``'s checks), fine for the well-conditioned ridge systems here."""
    c = lambda i, j, k, l: a[..., i, j] * a[..., k, l] - a[..., i, l] * a[..., k, j]  # noqa: E731
    adj = torch.stack([torch.stack([c(1, 1, 2, 2), -c(0, 1, 2, 2), c(0, 1, 1, 2)], -1),
                       torch.stack([-c(1, 0, 2, 2), c(0, 0, 2, 2), -c(0, 0, 1, 2)], -1),
                       torch.stack([c(1, 0, 2, 1), -c(0, 0, 2, 1), c(0, 0, 1, 1)], -1)], -2)
    det = (a[..., 0, :] * adj[..., :, 0]).sum(-1)
    return adj / det[..., None, None]


def apply_colour(images: Tensor, transform: Tensor) -> Tensor:
    """``images`` (N, C, H, W) in [-1, 1] through the per-row ``transform`` of :func:`fit_colour`, clamped."""
    t = transform.to(images.device, images.dtype)[:, :, :, None, None]
    lum = images.mean(1, keepdim=True)
    return (t[:, :, 0] * images + t[:, :, 1] * lum + t[:, :, 2]).clamp(-1, 1)


def colour_only(x: Tensor, out: Tensor) -> Tensor:
    """``out`` replaced by the colour transform of ``x`` that best explains it (same shape)."""
    return apply_colour(x, fit_colour(x, out))


def is_grey(x: Tensor, tolerance: float = GREY_TOLERANCE) -> Tensor:
    """(N,) bool: rows whose channels are (nearly) equal everywhere (a black-and-white photo);
    ``tolerance`` in the units of ``x`` (the default: model units, [-1, 1])."""
    if x.shape[1] == 1:
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    spread = (x.amax(1) - x.amin(1)).flatten(1).mean(1)
    return spread <= tolerance


def keep_grey(x: Tensor, out: Tensor, tolerance: float = GREY_TOLERANCE) -> Tensor:
    """``out`` with the rows whose input ``x`` is grey made grey (their channel mean)."""
    if x.shape[1] == 1:
        return out
    grey = is_grey(x, tolerance)
    return torch.where(grey[:, None, None, None], out.mean(1, keepdim=True).expand_as(out), out)
