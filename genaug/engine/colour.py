"""Colour edits of the whole photo, and grey photos kept grey.

A photometric code (tone, shade, warmth: a recipe with ``colour=True``) changes how the photo
was lit and developed, not the face: drawn through the generator it also redraws texture (smears)
and, pasted into a larger photo, tints the face alone. So its rendered change is reduced to the
colour transform that best explains it - per photo and channel a gain, a pull towards the
luminance (saturation) and an offset that fades out towards black (black stays black, as under a
camera's gains: black corners and borders take no tint), least squares over the model frame with a
ridge towards the identity - and that transform is applied to every pixel of the photo: exact
texture, the background shifts with the face.

A grey photo (all channels equal) stays grey: an edit that would add colour to it (a blue cast from
the glasses code) keeps only its luminance change.
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor

_HALF = torch.tensor(0.5)  # a 0-dim constant: ``torch.add(_HALF, t, alpha=0.5)`` is ``(t + 1) / 2`` in one pass

GREY_TOLERANCE = 4 / 255  # largest mean channel spread (model units, [-1, 1]) of a grey photo
RIDGE = 2.5e-5  # pulls the fitted transform towards the identity (flat or single-colour faces; image-scale units)


def fit_colour(src: Tensor, dst: Tensor, refit: bool = False) -> Tensor:
    """Per row and channel, on the image scale [0, 1] (``src``, ``dst`` in model units [-1, 1]),
    ``dst_c ~ a_c src_c + k_c lum(src) + b_c w(lum(src))`` in least squares on a grid of about 16 x 16
    pixels (a gain, a saturation-like pull to the luminance and an offset that fades out towards black,
    :func:`black_weight`: what exposure, white balance and colour grading do - black stays black; no
    channel leaks into another hue), ridge towards the identity: (N, C, 3). ``refit``: the fit of ``src``
    through that transform as :func:`apply_colour` renders it (clamped), the system solved once for both.
    The normal equations of all channels come from one Gram product per row (channels, luminance,
    offset weight, targets)."""
    s = torch.add(_HALF, sample_grid(src), alpha=0.5)  # a global fit: ~256 samples are plenty
    n, c = s.shape[:2]
    lum = s.mean(1, keepdim=True)
    f = torch.cat([s, lum, black_weight(lum), torch.add(_HALF, sample_grid(dst), alpha=0.5)], 1).flatten(2).double()
    pick_a, pick_b, reg_a, reg_b = _normal_picks(c, f.shape[-1], f.device)
    gram = torch.bmm(f, f.transpose(1, 2)).flatten(1)  # (N, (2 C + 2)^2): regressors s_c, lum, w, then targets d_c
    inverse, det = _inverse3(gram.index_select(1, pick_a).add_(reg_a).view(n * c, 3, 3))
    solve = lambda xtd: torch.bmm(inverse, xtd.add_(reg_b).view(n * c, 3, 1)).div_(det).view(n, c, 3).to(src.dtype)  # noqa: E731
    t = solve(gram.index_select(1, pick_b))  # X^T d (+ the ridge's pull to a = 1)
    if refit:  # src through t as apply_colour renders it (clamped), on the grid, in double: a s + k lum + b w
        td = t.double()
        d2 = torch.mul(td[..., 2:], f[:, c + 1 : c + 2]).addcmul_(td[..., :1], f[:, :c]).addcmul_(td[..., 1:2], f[:, c : c + 1])
        t = solve(torch.bmm(f[:, : c + 2], d2.clamp_(0, 1).transpose(1, 2)).flatten(1).index_select(1, _refit_picks(c, f.device)))
    return t


BLACK_RAMP = 0.15  # luminance (image scale) below which a colour transform's offset fades out linearly to 0 at black


def black_weight(lum: Tensor) -> Tensor:
    """How much of the colour transform's offset reaches a pixel of luminance ``lum`` (image scale):
    0 at black, rising linearly to 1 at ``BLACK_RAMP``. Black borders, dark hair and night photos keep
    their black instead of taking the offset's tint (a camera's gains scale light; they add none)."""
    if lum.dtype == torch.float32:  # by a float32 0-dim constant: the same product, no scalar conversion per call
        return torch.mul(lum, constant(1 / BLACK_RAMP)).clamp_(0, 1)
    return lum.mul(1 / BLACK_RAMP).clamp_(0, 1)


@functools.lru_cache(maxsize=None)
def constant(value: float, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
    """``value`` as a 0-dim tensor of ``dtype`` on ``device``, made once: the batch path's hot operations take it
    instead of a Python scalar (made into a tensor at every call) or a host tensor (copied to an accelerator)."""
    return torch.full((), value, dtype=dtype, device=device)


_PICKS: dict = {}


def _normal_picks(c: int, p: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Flat positions in the Gram matrix of the normal matrices (C x 3 x 3) and right-hand sides (C x 3) of
    the channels' fits, and the ridge added to each (``RIDGE * p`` on the diagonal, to ``a``'s equation)."""
    key = ("normal", c, p, device)
    if key not in _PICKS:
        k, reg = 2 * c + 2, RIDGE * p
        regressors = [[i, c, c + 1] for i in range(c)]
        a = [r * k + q for rows in regressors for r in rows for q in rows]
        b = [r * k + c + 2 + i for i, rows in enumerate(regressors) for r in rows]
        _PICKS[key] = (torch.tensor(a, device=device), torch.tensor(b, device=device),
                       torch.eye(3, dtype=torch.float64).mul(reg).repeat(c, 1).flatten().to(device),
                       torch.tensor([reg, 0.0, 0.0] * c, dtype=torch.float64, device=device))
    return _PICKS[key]


def _refit_picks(c: int, device: torch.device) -> Tensor:
    """Flat positions of channel ``i``'s right-hand side in ``X^T d`` of shape (C + 2, C)."""
    key = ("refit", c, device)
    if key not in _PICKS:
        _PICKS[key] = torch.tensor([r * c + i for i in range(c) for r in (i, c, c + 1)], device=device)
    return _PICKS[key]


def _inverse3(a: Tensor) -> tuple[Tensor, Tensor]:
    """(det(a) a^-1, det(a)[..., None, None]) for (..., 3, 3) matrices ``a`` (see :func:`_solve3`): column j of
    the adjugate is the cross product of rows j + 1 and j + 2 (mod 3), all three in one ``linalg.cross``
    along the columns of the rows gathered once."""
    key = ("rows", a.device)
    if key not in _PICKS:
        _PICKS[key] = torch.tensor([1, 2, 0, 2, 0, 1], device=a.device)
    g = a.index_select(-2, _PICKS[key])  # rows 1, 2, 0, then 2, 0, 1
    cols = torch.linalg.cross(g[..., :3, :].transpose(-1, -2), g[..., 3:, :].transpose(-1, -2), dim=-2)
    return cols, (a[..., 0, :] * cols[..., 0]).sum(-1)[..., None, None]


def _solve3(a: Tensor, b: Tensor) -> Tensor:
    """``a^-1 b`` for (..., 3, 3) matrices ``a``: the inverse's columns are cross products of
    ``a``'s rows over the determinant. No pivoting and no host read (``torch.linalg``'s solvers
    read back), a handful of operations; fine for the well-conditioned ridge systems here."""
    cols, det = _inverse3(a)
    return (cols @ b).div_(det)


def sample_grid(x: Tensor, samples: int = 16) -> Tensor:
    """Every k-th pixel each way, about ``samples`` per side (the whole image below 2 * samples px;
    a grid of the grid is the grid itself, so a fit on ``sample_grid(x)`` equals the fit on ``x``)."""
    k = max(1, min(x.shape[-2:]) // samples)
    return x if k == 1 else x[..., ::k, ::k]


def apply_colour(images: Tensor, transform: Tensor) -> Tensor:
    """``images`` (N, C, H, W) in [-1, 1] through the per-row ``transform`` of :func:`fit_colour`, clamped."""
    return apply_colour01(torch.add(_HALF, images, alpha=0.5), transform).mul_(2).sub_(1)


def apply_colour01(images: Tensor, transform: Tensor, out: Tensor | None = None) -> Tensor:
    """:func:`apply_colour` for ``images`` on the image scale [0, 1] (result in [0, 1]): per row one
    channels x channels matrix (the gains and the luminance pull) in one batched matrix product, then
    the offset weighted by :func:`black_weight` of each pixel's luminance; ``out``: where to write it."""
    n, c = images.shape[:2]
    t = transform if (transform.device, transform.dtype) == (images.device, images.dtype) else transform.to(images.device, images.dtype)
    m = torch.diag_embed(t[..., 0]).add_(t[..., 1:2].div(constant(float(c)) if t.dtype == torch.float32 else c))  # a_i [i = j] + k_i / C
    flat = images.reshape(n, c, -1)
    new = torch.bmm(m, flat, out=None if out is None else out.view(n, c, -1))
    new.addcmul_(t[..., 2:], black_weight(flat.mean(1, keepdim=True)))
    return new.clamp_(0, 1).view(images.shape)


def colour_only(x: Tensor, out: Tensor) -> Tensor:
    """``out`` replaced by the colour transform of ``x`` that best explains it (same shape)."""
    return apply_colour(x, fit_colour(x, out))


def is_grey(x: Tensor, tolerance: float = GREY_TOLERANCE) -> Tensor:
    """(N,) bool: rows whose channels are (nearly) equal everywhere (a black-and-white photo;
    judged on a grid of about 32 x 32 pixels); ``tolerance`` in the units of ``x`` (the default:
    model units, [-1, 1])."""
    if x.shape[1] == 1:
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    g = sample_grid(x, 32)
    spread = (g.amax(1) - g.amin(1)).flatten(1).mean(1)
    return spread <= tolerance


def keep_grey(x: Tensor, out: Tensor, tolerance: float = GREY_TOLERANCE) -> Tensor:
    """``out`` with the rows whose input ``x`` is grey made grey (their channel mean)."""
    if x.shape[1] == 1:
        return out
    grey = is_grey(x, tolerance)
    return torch.where(grey[:, None, None, None], out.mean(1, keepdim=True).expand_as(out), out)
