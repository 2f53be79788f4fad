"""The registry of network kinds: a :class:`NetConfig` ``kind`` -> its generator and its image ->
latent network, the encoder (the ``dcgan`` kind's latent predictor, the ``edit`` kind's encoder)."""
from __future__ import annotations

from torch import nn

from .config import NetConfig
from .editnets import EditEncoder, EditGenerator
from .latent import LatentSpec
from .nets import Generator, Predictor


def build_generator(spec: LatentSpec, cfg: NetConfig) -> nn.Module:
    if cfg.kind == "edit":
        return EditGenerator(spec, cfg)
    return Generator(spec.dim, cfg)


def build_predictor(spec: LatentSpec, cfg: NetConfig) -> nn.Module:
    """The encoder (image -> latent) of the kind: the latent predictor, or the edit kind's encoder."""
    if cfg.kind == "edit":
        return EditEncoder(spec, cfg)
    return Predictor(spec, cfg)
