"""genaug training: InfoGAN / InfoGAN-BEGAN generators and latent predictors -> bundles."""
from .loop import TrainConfig, Trainer, train

__all__ = ["TrainConfig", "Trainer", "train"]
