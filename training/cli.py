"""``genaug train`` / ``python -m genaug.training``: train a model of any kind into a bundle.

Every kind is one entry of :data:`KINDS` and runs on :mod:`genaug.training.skeleton` (resume,
checkpoints, JSON-lines log, SIGTERM/SIGINT, evaluation, export). ``--kind edit`` is the kind of
the shipped default model and the default: an edit-aware encoder + generator trained to edit real faces
(``genaug train --help``). ``infogan`` / ``began`` are the older kind: a controllable
generator from noise, then an encoder fitted to it. ``detail`` adds a detail skip to a trained
edit bundle (``genaug train --kind detail BUNDLE FACES --out RUN``)."""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

from genaug.cli.common import plain_doc

from .config import NET_HELP, TrainConfig, add_options, option_fields
from .loop import Trainer


@dataclass(frozen=True)
class KindEntry:
    """Where a kind's command line lives: ``module.function(argv) -> exit status``."""

    module: str
    function: str
    summary: str


# kind -> its command line; `genaug train --kind NAME` dispatches here (default: the shipped default model's)
KINDS: dict[str, KindEntry] = {
    "edit": KindEntry(".edit_loop", "main", "edit-aware encoder + generator (the shipped default model's kind)"),
    "infogan": KindEntry(".cli", "gan_main", "InfoGAN generator from noise (DCGAN D + Q head), then its encoder"),
    "began": KindEntry(".cli", "gan_main", "InfoGAN-BEGAN hybrid (autoencoder D), then its encoder"),
    "detail": KindEntry(".detail", "main", "adds an S/4 detail skip to a trained edit bundle"),
}
DEFAULT_KIND = "edit"  # genaug/default/config.json: training.kind

HELP = {
    "data": "image folder (flat or ImageFolder; any size, resized: a picture in CelebA's 178x218 frame is cut to its "
            "face box with --framing celeba, any other to its centred square)",
    "out": "run folder: checkpoint, log.jsonl, samples/, sweeps/, bundle/ (same command resumes)",
    "kind": "; ".join(f"'{k}': {e.summary}" for k, e in KINDS.items()) + " (each kind lists its own options: "
            "`genaug train --kind edit --help`)",
    **NET_HELP,
    "noise_dim": "size of the incompressible noise z",
    "categorical": "categorical codes: comma list of K or NAME:K or NAME:K:ATTRIBUTE (e.g. 'glasses:2:Eyeglasses,10')",
    "continuous": "continuous codes in [-1,1]: a count ('3') or comma list of NAME or NAME:ATTRIBUTE",
    "g_width": "generator channels at full resolution (doubling towards 4x4)",
    "max_width": "channel cap of every network", "d_norm": "discriminator normalisation: batch, group or none",
    "e_norm": "encoder normalisation: batch, group or none", "q_hidden": "hidden units of the Q head",
    "began_hidden": "BEGAN discriminator bottleneck size",
    "predictor_latent_weight": "weight of the generated-pair latent regression term",
    "g_norm": "generator normalisation: batch, group or none",
    "spectral_norm": "spectral normalisation in D (implied by --adv-loss wgan)",
    "noise_head": "extended InfoGAN: D also regresses z (L2 weighted by --lambda-noise)",
    "steps": "GAN training steps",
    "predictor_steps": "encoder steps after the GAN phase (against the frozen EMA generator)",
    "d_steps": "discriminator steps per generator step",
    "lr_g": "generator learning rate", "lr_d": "discriminator (+Q) learning rate", "lr_e": "encoder learning rate",
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
    "predictor_loss": "encoder reconstruction loss on real faces: mse, ssim, msssim, l1 or a mix like 'mse+msssim'",
    "predictor_real_weight": "weight of the real-image reconstruction term (0 = generated pairs only)",
    "attributes": "attribute CSV ('auto' = DATA/attributes.csv when present)",
    "holdout": "real faces held out to measure the encoder's reconstruction",
    "limit": "use only the first N images (0 = all)",
    "framing": "framing recorded in the bundle: 'celeba' (aligned 178x218, box 35,55,143,163) or 'none'",
    "log_every": "steps between log lines", "sample_every": "steps between sample/sweep grids",
    "checkpoint_every": "steps between checkpoints",
    "seed": "random seed (data order, latents, initialisation)",
    "device": "auto, cpu, cuda or cuda:N",
    "name": "bundle name", "half": "store bundle weights in float16",
    "overwrite": "discard an existing run in --out instead of resuming",
}


def build_parser(parser: argparse.ArgumentParser | None = None, kind: str = "infogan") -> argparse.ArgumentParser:
    """The infogan / began command line; ``kind`` is the one its ``--kind`` (listed with the choices) says."""
    p = parser or argparse.ArgumentParser(prog=f"genaug train --kind {kind}", description=plain_doc(__doc__))
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    add_options(p, [o for o in option_fields() if o[0] != "kind"], HELP, positional=("data", "out"))
    kind_option(p, kind)
    return p


def kind_option(p: argparse.ArgumentParser, kind: str) -> None:
    """The ``--kind`` option of a kind's own parser (dispatch already happened in :func:`main`): its help lists the
    choices and says the kind of this command line."""
    p.add_argument("--kind", choices=list(KINDS), default=kind, help=HELP["kind"] + " (default: %(default)s)")


def dispatched_kind(argv: list[str], default: str = DEFAULT_KIND) -> str:
    """The ``--kind`` of ``argv`` (``default`` when none; an unknown one is argparse's usage error)."""
    pre = argparse.ArgumentParser(prog="genaug train", add_help=False)
    pre.add_argument("--kind", choices=list(KINDS), default=default)
    return pre.parse_known_args(argv)[0].kind


def main(argv: list[str] | None = None) -> int:
    """``genaug train [--kind KIND] ...``: run ``KINDS[KIND]``'s command line on the same arguments."""
    argv = sys.argv[1:] if argv is None else list(argv)
    entry = KINDS[dispatched_kind(argv)]
    return getattr(importlib.import_module(entry.module, __package__), entry.function)(argv)


def gan_main(argv: list[str]) -> int:
    """The infogan / began command line: a bad value is one line on stderr and exit status 2 (a usage error), a bad
    path or an unreadable folder 1 (unreadable files inside the folder are skipped with a warning)."""
    from genaug.cli.common import checking_arguments, run_guarded, stop_status

    def run(args: argparse.Namespace) -> int:
        with checking_arguments():
            cfg = TrainConfig.from_flat(**vars(args))
        trainer = Trainer(cfg)
        trainer.train()
        return stop_status(trainer.runner.stopped_by)

    return run_guarded("genaug train", run, build_parser(kind=dispatched_kind(argv, "infogan")).parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
