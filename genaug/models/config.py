"""Network hyper-parameters shared by every kind (:class:`NetConfig`) and the layers both the
DCGAN-style and the edit networks build from."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from torch import nn

NORMS = ("batch", "group", "none")


@dataclass
class NetConfig:
    """Architecture hyper-parameters. Widths are channels at the highest resolution; they double
    towards 4x4 and are capped at ``max_width``."""

    image_size: int = 64
    channels: int = 3
    g_width: int = 64
    d_width: int = 64
    e_width: int = 64
    max_width: int = 512
    g_norm: str = "batch"
    d_norm: str = "batch"
    e_norm: str = "group"
    spectral_norm: bool = False  # on the discriminator (used with the Wasserstein/hinge losses)
    discriminator: str = "infogan"  # "infogan" (DCGAN D + Q head) or "began" (autoencoder D)
    q_hidden: int = 128
    noise_head: bool = False  # extended InfoGAN: D also regresses z
    began_hidden: int = 64  # BEGAN bottleneck size
    kind: str = "dcgan"  # "dcgan" (noise -> image, inverted after the fact) or "edit" (genaug.models.editnets)
    content_channels: int = 32  # edit kind: channels of the S/8 content map the encoder emits
    detail_channels: int = 0  # edit kind: channels of an optional S/4 detail map (a skip the codes do not touch)

    def __post_init__(self) -> None:
        s = self.image_size
        if s < 8 or s & (s - 1):
            raise ValueError(f"image_size must be a power of two >= 8, got {s}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        for name in ("g_norm", "d_norm", "e_norm"):
            if getattr(self, name) not in NORMS:
                raise ValueError(f"{name} must be one of {NORMS}, got {getattr(self, name)!r}")
        if self.kind not in ("dcgan", "edit"):
            raise ValueError(f"network kind must be 'dcgan' or 'edit', got {self.kind!r}")
        if self.detail_channels < 0 or (self.detail_channels and self.kind != "edit"):
            raise ValueError(f"detail_channels must be >= 0 and only the edit kind has a detail map, got {self.detail_channels}")
        if self.discriminator not in ("infogan", "began"):
            raise ValueError(f"discriminator must be 'infogan' or 'began', got {self.discriminator!r}")

    @property
    def n_levels(self) -> int:
        """Number of 2x resolution steps between 4x4 and the image."""
        return int(math.log2(self.image_size)) - 2

    def widths(self, base: int) -> list[int]:
        """Channels per level, highest resolution first."""
        return [min(base * 2**i, self.max_width) for i in range(self.n_levels)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NetConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown network config keys {sorted(unknown)}")
        return cls(**d)


def norm_layer(kind: str, ch: int) -> nn.Module:
    """The normalisation layer named by ``kind`` (one of :data:`NORMS`)."""
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "group":
        return nn.GroupNorm(min(8, ch), ch)
    return nn.Identity()
