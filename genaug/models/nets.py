"""The ``dcgan`` kind's networks: DCGAN-style generator, InfoGAN discriminator with Q head, BEGAN
autoencoder discriminator, and the latent predictor that inverts images into ``[z | codes]``.

Every network is rebuilt from a :class:`~genaug.models.config.NetConfig` plus a
:class:`~genaug.models.latent.LatentSpec`,
so a bundle's JSON config fully describes it. Images are NCHW in [-1, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from .config import NetConfig, norm_layer
from .latent import LatentSpec


class Generator(nn.Module):
    """Latent vector -> image in [-1, 1]: a linear 4x4 projection and transposed convolutions."""

    def __init__(self, in_dim: int, cfg: NetConfig, width: int | None = None, norm: str | None = None):
        super().__init__()
        norm = norm or cfg.g_norm
        ch = cfg.widths(width or cfg.g_width)[::-1]  # 4x4 first
        self.in_dim = in_dim
        self.project = nn.Sequential(nn.Linear(in_dim, ch[0] * 16), nn.Unflatten(1, (ch[0], 4, 4)))
        self.norm0 = nn.Sequential(norm_layer(norm, ch[0]), nn.ReLU(True))
        layers: list[nn.Module] = []
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=norm == "none"), norm_layer(norm, b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ch[-1], cfg.channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, latent: Tensor) -> Tensor:
        return self.body(self.norm0(self.project(latent)))


class Trunk(nn.Module):
    """Image -> flat features at 4x4 (strided convolutions, LeakyReLU)."""

    def __init__(self, cfg: NetConfig, width: int, norm: str, spectral: bool = False):
        super().__init__()
        wrap = _sn if spectral else (lambda m: m)
        ch = cfg.widths(width)
        layers: list[nn.Module] = []
        prev = cfg.channels
        for i, c in enumerate(ch):
            layers += [wrap(nn.Conv2d(prev, c, 4, 2, 1, bias=norm == "none" or i == 0))]
            if i > 0:
                layers += [norm_layer(norm, c)]
            layers += [nn.LeakyReLU(0.2, True)]
            prev = c
        layers += [nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.out_dim = ch[-1] * 16

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


@dataclass
class QOutput:
    """What the Q head predicts about the latent that made an image."""

    cat_logits: list[Tensor]
    cont_mean: Tensor
    cont_logvar: Tensor
    z: Tensor | None  # noise recovery (extended InfoGAN), or None


class QHead(nn.Module):
    """Code recovery: categorical logits, continuous mean/log-variance, optionally z."""

    def __init__(self, in_dim: int, spec: LatentSpec, hidden: int, noise: bool, spectral: bool = False):
        super().__init__()
        wrap = _sn if spectral else (lambda m: m)
        self.spec = spec
        self.noise = noise
        out = spec.categorical_dim + 2 * spec.continuous_dim + (spec.noise_dim if noise else 0)
        self.net = nn.Sequential(wrap(nn.Linear(in_dim, hidden)), nn.LeakyReLU(0.2, True), nn.Linear(hidden, max(out, 1)))

    def forward(self, h: Tensor) -> QOutput:
        y = self.net(h)
        cats, i = [], 0
        for c in self.spec.categorical:
            cats.append(y[:, i : i + c.k])
            i += c.k
        n = self.spec.continuous_dim
        mean, logvar = y[:, i : i + n], y[:, i + n : i + 2 * n].clamp(-8, 8)
        i += 2 * n
        z = y[:, i : i + self.spec.noise_dim] if self.noise else None
        return QOutput(cats, mean, logvar, z)


class Discriminator(nn.Module):
    """DCGAN discriminator with an InfoGAN Q head on the shared trunk. Returns (logit, QOutput)."""

    def __init__(self, spec: LatentSpec, cfg: NetConfig):
        super().__init__()
        self.trunk = Trunk(cfg, cfg.d_width, "none" if cfg.spectral_norm else cfg.d_norm, cfg.spectral_norm)
        wrap = _sn if cfg.spectral_norm else (lambda m: m)
        self.adv = wrap(nn.Linear(self.trunk.out_dim, 1))
        self.q = QHead(self.trunk.out_dim, spec, cfg.q_hidden, cfg.noise_head, cfg.spectral_norm)

    def forward(self, x: Tensor) -> tuple[Tensor, QOutput]:
        h = self.trunk(x)
        return self.adv(h).squeeze(1), self.q(h)


class BEGANDiscriminator(nn.Module):
    """BEGAN autoencoder discriminator with a code-recovery head on its bottleneck.

    Returns (reconstruction, QOutput); the adversarial signal is the reconstruction error.
    """

    def __init__(self, spec: LatentSpec, cfg: NetConfig):
        super().__init__()
        self.trunk = Trunk(cfg, cfg.d_width, "none")
        self.bottleneck = nn.Linear(self.trunk.out_dim, cfg.began_hidden)
        self.decoder = Generator(cfg.began_hidden, cfg, width=cfg.d_width, norm="none")
        self.q = QHead(cfg.began_hidden, spec, cfg.q_hidden, cfg.noise_head)

    def forward(self, x: Tensor) -> tuple[Tensor, QOutput]:
        h = self.bottleneck(self.trunk(x))
        return self.decoder(h), self.q(h)


class Predictor(nn.Module):
    """Latent predictor E: image -> latent ``[z | category probabilities | continuous]``."""

    def __init__(self, spec: LatentSpec, cfg: NetConfig):
        super().__init__()
        self.spec = spec
        self.trunk = Trunk(cfg, cfg.e_width, cfg.e_norm)
        self.head = nn.Sequential(nn.Linear(self.trunk.out_dim, 512), nn.LeakyReLU(0.2, True), nn.Linear(512, spec.dim))

    def forward_raw(self, x: Tensor) -> Tensor:
        """Unnormalised output: z, categorical logits, continuous values."""
        return self.head(self.trunk(x))

    def forward(self, x: Tensor) -> Tensor:
        """The predicted latent, categorical parts as probabilities (a valid generator input)."""
        return self.to_latent(self.forward_raw(x))

    def to_latent(self, raw: Tensor) -> Tensor:
        parts = self.spec.split(raw)
        return self.spec.join(parts.z, [p.softmax(1) for p in parts.categorical], parts.continuous)


def build_discriminator(spec: LatentSpec, cfg: NetConfig) -> nn.Module:
    return BEGANDiscriminator(spec, cfg) if cfg.discriminator == "began" else Discriminator(spec, cfg)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions, N(1, 0.02) norm scales."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(w, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
