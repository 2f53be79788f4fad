"""``genaug expand SOURCE OUT.h5``: the command line of :func:`genaug.expand.expand_to_hdf5`."""
from __future__ import annotations

import argparse
import sys

from ..expand.pipeline import expand_to_hdf5
from ..expand.settings import check_arguments, check_run_options
from ..faces.framing import FRAMINGS
from .common import EXIT_STATUS, FRAMING_HELP, UsageError, check_model_args, checking_arguments, parse_codes, run_guarded


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default appended to its help, but not "(default: None)" after a help that says what None
    means ("default: off", "default: the bundle's")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genaug expand",
        description="Expand an image folder (flat or ImageFolder class/xxx.jpg) or an HDF5 file of faces into an "
        "HDF5 dataset of identity-preserving variants. Crash-safe and resumable: rerun the same command after an "
        "interruption. Scale out with torchrun --nproc_per_node N or --shard i/n (then merge).",
        epilog=EXIT_STATUS, formatter_class=_Help,
    )
    p.add_argument("source", help="folder of images (flat or class sub-folders) or HDF5 file with 'images' (N,H,W,C) uint8 "
                   "(or (N,) JPEG / PNG bytes) and optional 'labels'")
    p.add_argument("out", help="output HDF5 file (parts are kept in OUT.parts/ until the merge)")
    p.add_argument("--variants", type=int, default=8, help="augmented variants per source image (0 with --include-original: "
                   "the originals only, framed as the variants would be)")
    p.add_argument("--bundle", default="default", help="model bundle: 'default' or a bundle folder")
    p.add_argument("--include-original", action="store_true", help="also store each source image (variant 0)")
    p.add_argument("--seed", type=int, default=0, help="seed; each image's edits depend only on (seed, source index)")
    p.add_argument("--size", default="model", help="'model' (the model's resolution), 'source' (the source size with the "
                   "face pasted back; all sources must share the first image's size, others are skipped and reported) "
                   "or WxH (sources resized to WxH, face pasted back)")
    p.add_argument("--strength", type=float, default=1.0, help="edit strength (0 = unchanged, 1 = full edit)")
    p.add_argument("--mode", choices=("delta", "regenerate"), default="delta",
                   help="delta: x + G(edited) - G(latent) (keeps details); regenerate: G(edited)")
    p.add_argument("--codes", default=None, help="comma list of codes to edit (names or c<i>; default: the bundle's random set (identity-safe codes; `genaug info`))")
    p.add_argument("--refine-steps", type=int, default=None, help="inversion refinement steps per image "
                   "(default: the bundle's, 0 for the edit kind and 20 otherwise)")
    p.add_argument("--refine-loss", default="mse+msssim", help="inversion refinement loss")
    p.add_argument("--framing", default="auto", choices=FRAMINGS, help=FRAMING_HELP)
    p.add_argument("--batch-size", type=int, default=64, help="images per device batch")
    p.add_argument("--block-size", type=int, default=256, help="source images per part file (the resume unit)")
    p.add_argument("--compression", default="lzf", help="image compression: lzf, gzip, gzip-<0..9> or none")
    p.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    p.add_argument("--workers", type=int, default=4, help="image decoding threads (0 or 1: one)")
    p.add_argument("--shard", default=None, help="i/n: expand only blocks b with b %% n == i (no merge); "
                   "default under torchrun: RANK/WORLD_SIZE (rank 0 merges)")
    p.add_argument("--merge-only", action="store_true", help="only merge finished parts into OUT (errors if some are missing)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT (kept until the new one is "
                   "complete: room for both is needed) and discard parts made with other settings")
    p.add_argument("--gate-threshold", type=float, default=None, help="identity gate: re-draw variants whose identity "
                   "similarity to the source is below this, then keep the source unchanged (default: off). Judge: dlib "
                   "with genaug[faces] (1 - descriptor distance; 0.4 = dlib's same-person threshold), else the "
                   "shipped student judge (1 - its distance in dlib's units, same person above about 0.59; "
                   "genaug/default/evaluator_student.*)")
    p.add_argument("--quality-threshold", type=_quality, default=None, help="quality gate: re-draw variants the "
                   "shipped realism critic scores below this P(real), then keep the source unchanged; 'auto' = the "
                   "critic's own threshold, which 98%% of real faces pass (default: off)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _quality(text: str) -> float | str:
    try:
        return "auto" if text == "auto" else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def run_expand(a: argparse.Namespace, argv: list[str]) -> None:
    """Check the arguments (a bad one: :class:`UsageError`, before any file is read), then expand (``argv`` is
    recorded in the file)."""
    codes = parse_codes(a.codes)
    kw = dict(variants=a.variants, include_original=a.include_original, seed=a.seed, size=a.size, strength=a.strength,
              mode=a.mode, codes=codes, refine_steps=a.refine_steps, refine_loss=a.refine_loss, framing=a.framing,
              batch_size=a.batch_size, block_size=a.block_size, compression=a.compression, shard=a.shard,
              gate_threshold=a.gate_threshold, quality_threshold=a.quality_threshold)
    with checking_arguments():
        check_arguments(**kw)
    with checking_arguments():
        check_run_options(a.source, a.out, a.workers)
    check_model_args(a.bundle, a.device, a.refine_steps, codes)
    expand_to_hdf5(a.source, a.out, bundle=a.bundle, device=a.device, workers=a.workers,
                   merge=True if a.merge_only else None, merge_only=a.merge_only, overwrite=a.overwrite,
                   progress=not a.quiet, command=["genaug", "expand", *argv], **kw)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = build_parser().parse_args(argv)
    return run_guarded("genaug expand", lambda args: run_expand(args, argv), a)
