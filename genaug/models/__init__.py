"""Models: the latent layout (:mod:`.latent`), network hyper-parameters and shared layers
(:mod:`.config`), the networks of each kind (:mod:`.nets` for ``dcgan``, :mod:`.editnets` for
``edit``), the registry that builds a kind's networks (:mod:`.registry`) and the reconstruction
losses and scores (:mod:`.recon`)."""
from .config import NetConfig
from .latent import CategoricalCode, ContinuousCode, LatentSpec

__all__ = ["NetConfig", "CategoricalCode", "ContinuousCode", "LatentSpec"]
