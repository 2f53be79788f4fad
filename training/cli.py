"""``genaug train`` / ``python -m genaug.training``: train a model of any kind into a bundle
(``--kind edit``: encoder + generator that edit real faces; ``infogan`` / ``began``: a controllable
generator from noise, then its encoder, the latent predictor)."""
from __future__ import annotations

import argparse
import sys
from .config import TrainConfig, add_options, option_fields
from .loop import train

HELP = {
    "data": "image folder (flat or ImageFolder; any size: centre-cropped and resized)",
    "out": "run folder: checkpoint, log.jsonl, samples/, sweeps/, bundle/ (same command resumes)",
    "kind": "'infogan' (DCGAN D + Q head), 'began' (InfoGAN-BEGAN hybrid, autoencoder D) or 'edit' (encoder + "
            "generator trained to edit real faces; its own options: `genaug train --kind edit --help`)",
    "image_size": "model resolution (power of two: 32, 64, 128)",
    "channels": "3 (RGB) or 1 (grayscale)",
    "noise_dim": "size of the incompressible noise z",
    "categorical": "categorical codes: comma list of K or NAME:K or NAME:K:ATTRIBUTE (e.g. 'glasses:2:Eyeglasses,10')",
    "continuous": "continuous codes in [-1,1]: a count ('3') or comma list of NAME or NAME:ATTRIBUTE",
    "g_width": "generator channels at full resolution (doubling towards 4x4)",
    "d_width": "discriminator channels at full resolution",
    "e_width": "latent predictor channels at full resolution",
    "max_width": "channel cap of every network", "d_norm": "discriminator normalisation: batch, group or none",
    "e_norm": "latent predictor normalisation: batch, group or none", "q_hidden": "hidden units of the Q head",
    "began_hidden": "BEGAN discriminator bottleneck size",
    "predictor_latent_weight": "weight of the generated-pair latent regression term",
    "g_norm": "generator normalisation: batch, group or none",
    "spectral_norm": "spectral normalisation in D (implied by --adv-loss wgan)",
    "noise_head": "extended InfoGAN: D also regresses z (L2 weighted by --lambda-noise)",
    "steps": "GAN training steps",
    "predictor_steps": "latent-predictor steps after the GAN phase (against the frozen EMA generator)",
    "d_steps": "discriminator steps per generator step",
    "lr_g": "generator learning rate", "lr_d": "discriminator (+Q) learning rate", "lr_e": "predictor learning rate",
    "lr_decay_start": "fraction of a phase after which the learning rate decays linearly to 0 (1 = no decay)",
    "ema": "generator EMA decay (0 disables)",
    "instance_noise": "initial std of Gaussian instance noise on D's inputs (0 = off)",
    "instance_noise_steps": "steps over which instance noise anneals to 0 (default steps/2)",
    "instance_noise_power": "anneal curve: std * (1 - t/T)^power",
    "adv_loss": "ns (non-saturating), minimax, hinge, wgan (with spectral norm) or lsgan",
    "lambda_info": "weight of the mutual-information term",
    "lambda_cont": "weight of the continuous-code part inside the information term",
    "lambda_noise": "weight of the noise-recovery L2 (with --noise-head)",
    "lambda_attr": "weight of the attribute-binding loss on real images",
    "diffaug": "differentiable augmentation of D's inputs: comma list of color,translation,cutout",
    "began_gamma": "BEGAN diversity ratio gamma", "began_lambda_k": "BEGAN k_t learning rate",
    "predictor_loss": "predictor reconstruction loss on real faces: mse, ssim, msssim, l1 or a mix like 'mse+msssim'",
    "predictor_real_weight": "weight of the real-image reconstruction term (0 = generated pairs only)",
    "attributes": "attribute CSV ('auto' = DATA/attributes.csv when present)",
    "holdout": "real faces held out to measure predictor reconstruction",
    "limit": "use only the first N images (0 = all)",
    "framing": "framing recorded in the bundle: 'celeba' (aligned 178x218, box 35,55,143,163) or 'none'",
    "log_every": "steps between log lines", "sample_every": "steps between sample/sweep grids",
    "checkpoint_every": "steps between checkpoints",
    "seed": "random seed (data order, latents, initialisation)",
    "device": "auto, cpu, cuda or cuda:N",
    "name": "bundle name", "half": "store bundle weights in float16",
    "overwrite": "discard an existing run in --out instead of resuming",
}


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="genaug train", description=__doc__)
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    add_options(p, option_fields(), HELP, positional=("data", "out"))
    return p


def main(argv: list[str] | None = None) -> int:
    """``genaug train``: a bad path, an unreadable folder or a bad value is one line on stderr and
    exit status 1 (unreadable files inside the folder are skipped with a warning)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if _wants_edit_kind(argv):  # the edit-aware kind has its own settings: `genaug train --kind edit --help`
        from .edit_loop import main as edit_main

        return edit_main([a for i, a in enumerate(argv) if a not in ("--kind=edit",) and not
                          (a == "--kind" or (i > 0 and argv[i - 1] == "--kind"))])
    args = build_parser().parse_args(argv)
    try:
        train(TrainConfig.from_flat(**vars(args)))
    except (OSError, ValueError, KeyError) as e:
        print(f"genaug train: error: {str(e).strip(chr(39))}", file=sys.stderr)
        return 1
    return 0


def _wants_edit_kind(argv: list[str]) -> bool:
    return "--kind=edit" in argv or any(a == "--kind" and b == "edit" for a, b in zip(argv, argv[1:]))


if __name__ == "__main__":
    main()
