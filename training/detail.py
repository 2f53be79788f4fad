"""Give a trained edit-kind bundle a *detail skip* so that one encoder pass reconstructs a face sharply.

    python -m genaug.training.detail BUNDLE FACES --out RUN [--channels 16] [--minutes 30] [--steps 20000]

The edit kind keeps a person in an 8x8 content map, which caps how closely one encoder pass can
redraw a photo. This adds an S/4 *detail map* to the latent (``NetConfig.detail_channels``; see
:mod:`genaug.models.editnets`): a new encoder head reads the encoder's S/4 features and a new, zero-initialised
generator convolution adds the map to the generator's S/4 features. Only these two layers train;
every other weight, the codes and the edit recipes stay as they were. Two losses:

- reconstruction of G(E(x)) on real faces: L1 + (1 - MS-SSIM);
- edit consistency (``--lambda-edit``): for random edits applied with the bundle's own edit
  recipes (:func:`genaug.engine.edits.apply_recipes`), the *change* an edit makes, G(edited) - G(latent), must equal the change the
  original bundle makes. In ``delta`` mode (the default) the augmented photo is the photo plus that
  change, so edits stay what the calibration measured while ``regenerate`` and the reported
  reconstruction get sharper.

Given a bundle that already has a detail map of ``--channels`` channels, it trains that map further
(edit consistency then refers to the bundle as given). Runs on :mod:`genaug.training.skeleton`
(also ``genaug train --kind detail BUNDLE FACES --out RUN``): the run folder resumes
(``checkpoint.pt``, same command; ``--minutes`` or SIGTERM/SIGINT end one invocation with a
checkpoint and a bundle), logs to ``log.jsonl`` and writes ``RUN/bundle`` at every evaluation: held-out reconstruction before and after
and the edit-consistency error on held-out faces. Directions get zeros for the detail part; re-run
``genaug.training.calibrate_edits --directions`` on the result to measure its edits.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from genaug.cli.common import plain_doc
from genaug.bundle import Bundle, load_bundle, save_bundle
from genaug.device import resolve_device
from genaug.engine.edits import apply_recipes, default_codes, random_edits
from genaug.models.editnets import content_shape
from genaug.models.recon import msssim_per_image, psnr
from genaug.models.registry import build_generator, build_predictor

from .checkpoint import check_resumable
from .config import RUN_HELP, RunOptions, add_options, check_at_least, dataclass_options
from .data import faces_record, load_faces, split_holdout
from .distributed import single_process
from .skeleton import FolderLock, RngState, Run, RunPlan


@dataclass
class DetailConfig(RunOptions):
    """A detail run's settings (its own options and :class:`RunOptions`); saved to ``OUT/train_config.json``."""

    bundle: str
    data: str
    out: str
    channels: int = 16
    lambda_edit: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least(self, {"channels": 1, "lambda_edit": 0})


RESUMABLE = {"steps", "minutes", "log_every", "eval_every", "checkpoint_every", "threads", "device", "name", "half", "overwrite"}
REMEDY = "another folder, or --overwrite to start again"


def add_detail(bundle: Bundle, channels: int) -> Bundle:
    """A copy of an edit-kind ``bundle`` with a ``channels``-deep detail map that changes nothing yet
    (the generator's detail convolution starts at zero); directions get zeros for the detail part."""
    from genaug.models.editnets import content_dim

    if bundle.kind != "edit":
        raise ValueError(f"only edit-kind bundles take a detail skip; {bundle.name!r} is kind {bundle.kind!r}")
    if bundle.net.detail_channels:
        raise ValueError(f"{bundle.name!r} already has a {bundle.net.detail_channels}-channel detail map")
    net = replace(bundle.net, detail_channels=channels)
    spec = replace(bundle.spec, noise_dim=content_dim(net))
    g, p = build_generator(spec, net), build_predictor(spec, net)
    for new, old in ((g, bundle.generator), (p, bundle.predictor)):
        missing, unexpected = new.load_state_dict(old.float().state_dict(), strict=False)
        if unexpected or any(not k.startswith(("detail.", "detail_in.")) for k in missing):
            raise ValueError(f"cannot carry {bundle.name!r}'s weights over: missing {missing}, unexpected {unexpected}")
    torch.nn.init.zeros_(g.detail_in.weight)
    torch.nn.init.zeros_(g.detail_in.bias)
    extra = spec.noise_dim - bundle.spec.noise_dim
    directions = {k: F.pad(v.float(), (0, extra)) for k, v in bundle.directions.items()}
    return replace(bundle, spec=spec, net=net, generator=g, predictor=p, directions=directions, path=None,
                   training=copy.deepcopy(bundle.training))


def detail_parameters(bundle: Bundle) -> list[torch.nn.Parameter]:
    return [*bundle.predictor.detail.parameters(), *bundle.generator.detail_in.parameters()]


class DetailTrainer:
    """The detail kind on the skeleton: trains the detail layers of ``cfg.bundle`` (resumes ``cfg.out``)."""

    def __init__(self, cfg: DetailConfig):
        # the run folder is held first (a second run on it is refused before the bundle and the faces load); an error
        # while building releases it, else the run does when it ends
        self.folder = FolderLock(cfg.out)
        with self.folder.released_on_error():
            self._build(cfg)

    def _build(self, cfg: DetailConfig) -> None:
        self.cfg, self.out = cfg, Path(cfg.out)
        single_process("detail")
        # "kind" is saved with the settings: another kind's run folder is refused by name (a run saved before it was: detail)
        path, defaults = self.out / "train_config.json", {"kind": "detail", **{f.name: f.default for f in fields(DetailConfig)
                                                                                if f.default is not MISSING}}
        self.settings = {"kind": "detail", **asdict(cfg)}
        if path.exists() and (self.out / "checkpoint.pt").exists() and not cfg.overwrite:
            check_resumable(path, self.settings, RESUMABLE, REMEDY, defaults)  # before the bundle loads
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.base = load_bundle(cfg.bundle).to(self.device)
        self.bundle = self._trainable(self.base, cfg.channels).to(self.device)
        for b in (self.base, self.bundle):
            for m in (b.generator, b.predictor):
                m.eval().requires_grad_(False)
        self.params = detail_parameters(self.bundle)
        for q in self.params:
            q.requires_grad_(True)
        data = load_faces(cfg.data, self.base.image_size, self.base.channels, None, exclude=cfg.out, framing=self.base.framing)
        self.train_data, held = split_holdout(data, cfg.holdout, cfg.seed)
        self.held = held.images.float().div(127.5).sub(1).to(self.device)
        self.held_edits = self._edits(len(self.held), torch.Generator().manual_seed(cfg.seed + 1))
        self.opt = torch.optim.Adam(self.params, cfg.lr, betas=(0.5, 0.99))
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.progress_keys, self.last_ev = ("psnr", "edit"), None
        plan = RunPlan(self.out, cfg.steps, self.settings, RESUMABLE, cfg.log_every, cfg.checkpoint_every, cfg.eval_every,
                       cfg.minutes, remedy=REMEDY, defaults=defaults, overwrite=cfg.overwrite, desc="detail skip",
                       log_digits=5, faces=faces_record(data, held, cfg.data))  # other faces on resume: refused
        self.runner = Run(self, plan, self.device, lock=self.folder)
        self.runner.resume()

    @property
    def step(self) -> int:
        return self.runner.step

    def parts(self) -> dict[str, Any]:
        return {"detail": self.bundle.predictor.detail, "detail_in": self.bundle.generator.detail_in, "opt": self.opt,
                "gen": RngState(self.gen)}

    @staticmethod
    def _trainable(base: Bundle, channels: int) -> Bundle:
        """A fresh detail map on ``base``, or a copy of ``base``'s own map of the same size (trained further)."""
        have = base.net.detail_channels if base.kind == "edit" else 0
        if not have:
            return add_detail(base, channels)
        if have != channels:
            raise ValueError(f"{base.name!r} already has a {have}-channel detail map; --channels {channels} would replace "
                             f"it (give --channels {have} to train it further)")
        return replace(base, generator=copy.deepcopy(base.generator), predictor=copy.deepcopy(base.predictor),
                       training=copy.deepcopy(base.training), path=None)

    def _edits(self, n: int, gen: torch.Generator) -> list:
        """Random edits over the random set's latent codes (applied with the bundle's own recipes)."""
        return random_edits(self.base.spec, n, gen, codes=default_codes(self.base.spec, controls=False))

    def _losses(self, x: Tensor, edits: list) -> dict[str, Tensor]:
        old, new = self.base, self.bundle
        with torch.no_grad():
            lat0 = old.predictor(x)
            ed0 = apply_recipes(lat0, old, edits)
            change0 = old.generator(ed0) - old.generator(lat0)
            quarter = new.predictor.features[:5](x)  # frozen: equals the base encoder's S/4 features
        # latent = [content (c0) | detail | codes]; the base's own detail part (if any) ends at n0
        c0, n0 = math.prod(content_shape(new.net)), old.spec.noise_dim
        detail = new.predictor.detail(quarter).flatten(1)
        moved = ed0[:, c0:n0] - lat0[:, c0:n0] if n0 > c0 else 0.0  # what the edit's shift does to the detail map
        lat = torch.cat([lat0[:, :c0], detail, lat0[:, n0:]], 1)
        ed = torch.cat([ed0[:, :c0], detail + moved, ed0[:, n0:]], 1)
        rec, edited = new.generator(lat), new.generator(ed)
        ms = msssim_per_image(rec, x)
        return {"l1": F.l1_loss(rec, x), "msssim": ms.mean(), "edit": F.l1_loss(edited - rec, change0),
                "psnr": psnr(rec.detach(), x).mean()}

    def train_step(self, step: int) -> dict[str, Tensor]:
        idx = torch.randint(0, len(self.train_data), (self.cfg.batch_size,), generator=self.gen)
        x = self.train_data.batch(idx, self.device)
        parts = self._losses(x, self._edits(len(x), self.gen))
        loss = parts["l1"] + (1 - parts["msssim"]) + self.cfg.lambda_edit * parts["edit"]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return parts

    def evaluate(self, step: int) -> dict[str, float]:
        """Held-out scores, reported; ``RUN/bundle`` rewritten with them."""
        self.last_ev = self.held_out()
        self.report(self.last_ev)
        self.save(self.last_ev)
        return self.last_ev

    def export(self, step: int) -> Path:
        out = self.save(self.last_ev if self.last_ev is not None else self.held_out())
        print(f"wrote {out}")
        return out

    @torch.no_grad()
    def held_out(self) -> dict[str, float]:
        """Held-out faces: one-pass reconstruction before / after and the edit-consistency error."""
        x = self.held
        parts = self._losses(x, self.held_edits)
        base = self.base.generator(self.base.predictor(x))
        return {"psnr_base": float(psnr(base, x).mean()), "msssim_base": float(msssim_per_image(base, x).mean()),
                "psnr": float(parts["psnr"]), "msssim": float(parts["msssim"]), "edit_error": float(parts["edit"])}

    def save(self, ev: dict[str, float]) -> Path:
        b = self.bundle
        b.name = self.cfg.name or f"{self.base.name}-detail"
        b.training = {k: v for k, v in self.base.training.items() if k != "weights_sha256"}
        b.training["detail"] = {"from": self.base.name, "from_identity": self.base.identity, "steps": self.step,
                                "continued": bool(self.base.net.detail_channels),
                                "config": asdict(self.cfg), "holdout": ev}
        return save_bundle(b, self.out / "bundle", half=self.cfg.half)

    def report(self, ev: dict[str, float], end: str = "") -> None:
        print(f"step {self.step}: held-out {json.dumps({k: round(v, 4) for k, v in ev.items()})}{end}", flush=True)

    def run(self) -> Path:
        """Report the start, train to ``--steps`` / the budget / a signal; returns the bundle folder."""
        self.report(self.held_out())
        return self.runner.run()


HELP = {
    **RUN_HELP, "channels": "channels of the S/4 detail map", "lr": "Adam learning rate of the two detail layers",
    "lambda_edit": "weight of edit consistency (an edit's change stays the original bundle's)",
    "holdout": "faces held out for the evaluation (at most a fifth of them)",
    "eval_every": "steps between held-out evaluations and bundle exports",
    "threads": "torch CPU threads (0 = torch's default)", "seed": "random seed (held-out split, batches, edits)",
    "name": "bundle name ('' = the source bundle's name + '-detail')",
    "half": "store bundle weights in float16",
    "overwrite": "start the run folder again instead of resuming it (its checkpoint, log and bundle go)",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="genaug train --kind detail", description=plain_doc(__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="edit-kind bundle folder or 'default'")
    p.add_argument("data", help="training faces (an image folder in the model's frame, e.g. celeba_train_64)")
    p.add_argument("--out", required=True, help="run folder (same command resumes)")
    add_options(p, [o for o in dataclass_options(DetailConfig) if o[0] not in ("bundle", "data", "out")], HELP)
    from .cli import kind_option

    kind_option(p, "detail")
    a = vars(p.parse_args(argv))
    a.pop("kind")
    from genaug.cli.common import checking_arguments, run_guarded, stop_status

    def run(a: dict) -> int:
        with checking_arguments():  # a bad value: exit status 2; a bad path or bundle: 1
            cfg = DetailConfig(**a)
        trainer = DetailTrainer(cfg)
        trainer.run()
        return stop_status(trainer.runner.stopped_by)

    return run_guarded("genaug train --kind detail", run, a)


if __name__ == "__main__":
    raise SystemExit(main())
