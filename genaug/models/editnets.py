"""Networks of the edit-aware model kind (``NetConfig.kind == "edit"``), ST-GAN / AttGAN style.

An encoder maps a real face to a *spatial content map* (``content_channels`` x S/8 x S/8) plus
the codes; the generator decodes the content map with the codes injected at every resolution
up to S/2, so changing a code changes the decoded face while the content keeps the person.
Optionally (``detail_channels`` > 0) the encoder also emits a *detail map* (S/4) that the
generator adds, through one convolution, to its S/4 features: a skip that carries what the
8x8 content cannot (sharpness, exact contours); ``training.detail`` trains it so that edits
change faces as they did without it. Both networks speak the project's flat latent
``[content | detail (flattened) | codes]``, so inversion, sweeps, the latent cache and rendering
work unchanged; the content is not Gaussian, so this kind cannot sample random faces.

The discriminator (training only) has a real/fake head and a code head: categorical logits for
every categorical code (bound ones are trained on labelled real faces, AC-GAN style; free ones
on generated faces, InfoGAN style) and means for the continuous codes.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from .config import NetConfig, norm_layer
from .latent import LatentSpec


def content_shape(cfg: NetConfig) -> tuple[int, int, int]:
    """(channels, side, side) of the content map for ``cfg``."""
    side = cfg.image_size // 8
    return cfg.content_channels, side, side


def detail_shape(cfg: NetConfig) -> tuple[int, int, int]:
    """(channels, side, side) of the detail map (channels 0 when the model has none)."""
    side = cfg.image_size // 4
    return cfg.detail_channels, side, side


def content_dim(cfg: NetConfig) -> int:
    """Size of the latent's non-code part: content map plus detail map, flattened."""
    return math.prod(content_shape(cfg)) + math.prod(detail_shape(cfg))


def _down(cin: int, cout: int, norm: str) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 4, 2, 1, bias=norm == "none"), norm_layer(norm, cout), nn.LeakyReLU(0.2, True)]


class EditEncoder(nn.Module):
    """Image -> raw latent ``[content | categorical logits | continuous]`` (a predictor)."""

    def __init__(self, spec: LatentSpec, cfg: NetConfig):
        super().__init__()
        if spec.noise_dim != content_dim(cfg):
            raise ValueError(f"edit kind: latent noise_dim must equal the content size {content_dim(cfg)}, got {spec.noise_dim}")
        self.spec = spec
        w = cfg.e_width
        self.features = nn.Sequential(
            nn.Conv2d(cfg.channels, w, 4, 2, 1), nn.LeakyReLU(0.2, True),
            *_down(w, 2 * w, cfg.e_norm), *_down(2 * w, 4 * w, cfg.e_norm),
        )  # S/8
        self.content = nn.Conv2d(4 * w, cfg.content_channels, 3, 1, 1)
        self.detail = None  # S/4 features -> detail map
        if cfg.detail_channels:
            self.detail = nn.Sequential(nn.Conv2d(2 * w, 2 * w, 3, 1, 1), nn.LeakyReLU(0.2, True),
                                        nn.Conv2d(2 * w, cfg.detail_channels, 3, 1, 1))
        self.codes = nn.Sequential(
            *_down(4 * w, 8 * w, cfg.e_norm), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(8 * w, 4 * w), nn.LeakyReLU(0.2, True), nn.Linear(4 * w, max(spec.code_dim, 1)),
        )

    def forward_raw(self, x: Tensor) -> Tensor:
        quarter = self.features[:5](x)  # S/4: first convolution and one _down
        h = self.features[5:](quarter)
        parts = [self.content(h).flatten(1)]
        if self.detail is not None:
            parts.append(self.detail(quarter).flatten(1))
        return torch.cat(parts + [self.codes(h)[:, : self.spec.code_dim]], 1)

    def forward(self, x: Tensor) -> Tensor:
        """A valid generator input: categorical parts as probabilities."""
        parts = self.spec.split(self.forward_raw(x))
        return self.spec.join(parts.z, [p.softmax(1) for p in parts.categorical], parts.continuous)


class _Up(nn.Module):
    """Codes tiled and concatenated, then a 2x transposed convolution."""

    def __init__(self, cin: int, code_dim: int, cout: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.ConvTranspose2d(cin + code_dim, cout, 4, 2, 1, bias=norm == "none"), norm_layer(norm, cout), nn.ReLU(True)
        )

    def forward(self, h: Tensor, codes: Tensor) -> Tensor:
        tiled = codes[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        return self.body(torch.cat([h, tiled], 1))


class EditGenerator(nn.Module):
    """Flat latent ``[content | codes]`` -> image in [-1, 1]."""

    def __init__(self, spec: LatentSpec, cfg: NetConfig):
        super().__init__()
        self.spec, self.shape, self.detail_shape = spec, content_shape(cfg), detail_shape(cfg)
        self.in_dim = spec.dim
        w, k = cfg.g_width, spec.code_dim
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.content_channels + k, 8 * w, 3, 1, 1, bias=cfg.g_norm == "none"), norm_layer(cfg.g_norm, 8 * w), nn.ReLU(True),
            nn.Conv2d(8 * w, 8 * w, 3, 1, 1, bias=cfg.g_norm == "none"), norm_layer(cfg.g_norm, 8 * w), nn.ReLU(True),
        )
        self.ups = nn.ModuleList([_Up(8 * w, k, 4 * w, cfg.g_norm), _Up(4 * w, k, 2 * w, cfg.g_norm)])
        self.detail_in = nn.Conv2d(cfg.detail_channels, 4 * w, 3, 1, 1) if cfg.detail_channels else None
        self.out = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(True), nn.Conv2d(w, cfg.channels, 3, 1, 1), nn.Tanh()
        )

    def forward(self, latent: Tensor) -> Tensor:
        n, c = latent.shape[0], math.prod(self.shape)
        content = latent[:, :c].reshape(n, *self.shape)
        codes = latent[:, self.spec.noise_dim :]
        h = self.stem(torch.cat([content, codes[:, :, None, None].expand(-1, -1, *self.shape[1:])], 1))
        h = self.ups[0](h, codes)
        if self.detail_in is not None:  # the S/4 skip
            h = h + self.detail_in(latent[:, c : self.spec.noise_dim].reshape(n, *self.detail_shape))
        return self.out(self.ups[1](h, codes))


class EditDiscriminator(nn.Module):
    """Spectrally normalised conv trunk -> (real/fake logit (N,), code output (N, code_dim)).

    The code output holds categorical logits then continuous means, in latent order."""

    def __init__(self, spec: LatentSpec, cfg: NetConfig):
        super().__init__()
        w = cfg.d_width
        chans = [cfg.channels, w, 2 * w, 4 * w, 8 * w]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [_sn(nn.Conv2d(a, b, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        feat = 8 * w * (cfg.image_size // 16) ** 2
        self.adv = _sn(nn.Linear(feat, 1))
        self.codes = nn.Sequential(nn.Linear(feat, 4 * w), nn.LeakyReLU(0.2, True), nn.Linear(4 * w, max(spec.code_dim, 1)))
        self.code_dim = spec.code_dim

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)
        return self.adv(h).squeeze(1), self.codes(h)[:, : self.code_dim]
