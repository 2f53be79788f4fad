"""The edit-aware kind, the shipped default model (``genaug train --kind edit`` /
``python -m genaug.training.edit_loop``): an encoder E and generator G trained together to
reconstruct real faces and switch attribute-bound codes, judged by a discriminator with a code head.

Runs on :mod:`genaug.training.skeleton` (the same command resumes from ``checkpoint.pt``; ``--steps``,
a wall-clock budget ``--minutes`` or SIGTERM/SIGINT end it with a checkpoint and a bundle), logs
JSON lines, writes sample grids (photo | reconstruction |
each bound code switched) and evaluates held-out faces: reconstruction from one encoder pass
(PSNR, MS-SSIM) and edit success (switching each bound code on/off, judged by D's own code head
and, for monitoring only, by the project's attribute evaluator). ``bundle/`` is rewritten at every
evaluation, so a long run can be used while it trains.
"""
from __future__ import annotations

import argparse
import copy
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import save_image

from genaug.cli.common import plain_doc
from genaug.bundle import Bundle, save_bundle
from genaug.device import resolve_device
from genaug.faces.framing import CELEBA_FRAMING
from genaug.models.editnets import EditDiscriminator
from genaug.models.nets import init_weights
from genaug.models.recon import psnr, reconstruction_score
from genaug.models.registry import build_generator, build_predictor

from .checkpoint import check_resumable, update_ema
from .config import add_options, dataclass_options
from .data import faces_record, load_faces, split_holdout
from .distributed import single_process
from .edit import CodeLayout, d_step, edit_spec, g_step
from .edit_config import HELP, EditTrainConfig
from .skeleton import FolderLock, RngState, Run, RunPlan


RESUMABLE = {"steps", "minutes", "log_every", "eval_every", "checkpoint_every", "threads", "device", "name", "half", "snapshots",
             "overwrite"}
REMEDY = "another folder, or --overwrite to start again"


class EditTrainer:
    """The edit kind on the skeleton: builds E, G, D from ``cfg`` and resumes ``cfg.out`` if it holds a checkpoint."""

    progress_keys = ("rec", "g_adv", "d_adv")  # log keys shown on the progress bar

    def __init__(self, cfg: EditTrainConfig):
        # the run folder is held first: a second run on it is refused at once, not after the faces load and the
        # networks build; an error while building releases it, else the run does when it ends
        self.folder = FolderLock(cfg.out)
        with self.folder.released_on_error():
            self._build(cfg)

    def _build(self, cfg: EditTrainConfig) -> None:
        self.cfg, self.out = cfg, Path(cfg.out)
        single_process("edit")
        # "kind" is saved with the settings: another kind's run folder is refused by name (a run saved before it was: edit)
        defaults = {"kind": "edit", **{f.name: f.default for f in fields(EditTrainConfig) if f.default is not MISSING}}
        plan = RunPlan(self.out, cfg.steps, {"kind": "edit", **asdict(cfg)}, RESUMABLE, cfg.log_every, cfg.checkpoint_every,
                       cfg.eval_every, cfg.minutes, remedy=REMEDY, defaults=defaults, overwrite=cfg.overwrite, desc="edit model")
        resuming = (self.out / "checkpoint.pt").exists() and not cfg.overwrite
        if resuming and (self.out / "train_config.json").exists():
            check_resumable(self.out / "train_config.json", plan.settings, RESUMABLE, plan.remedy, defaults)  # before the data loads
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.net, self.obj = cfg.net(), cfg.objective()
        self.spec = edit_spec(self.net, cfg.categorical, cfg.continuous, cfg.identity_unsafe)
        init = self._init_bundle(cfg.init_from) if cfg.init_from and not resuming else None  # before the data loads
        data = load_faces(cfg.data, cfg.image_size, cfg.channels, cfg.attributes, cfg.limit or None, exclude=cfg.out,
                          framing=CELEBA_FRAMING)  # cut as augmentation will cut them: the bundle records this framing
        self.train_data, self.held = split_holdout(data, cfg.holdout, cfg.seed)
        plan.faces = faces_record(data, self.held, cfg.data)  # other faces on resume: refused (they reshuffle the split)
        self.layout = CodeLayout(self.spec, data.attribute_names, data.not_labels)
        self.E, self.G = build_predictor(self.spec, self.net), build_generator(self.spec, self.net)
        self.D = EditDiscriminator(self.spec, self.net)
        for m in (self.E, self.G, self.D):
            init_weights(m)
            m.to(self.device)
        if init is not None:
            self.E.load_state_dict(init.predictor.float().state_dict())
            self.G.load_state_dict(init.generator.float().state_dict())
            print(f"E and G start from {init.path or cfg.init_from} ({init.name}); D starts fresh")
        self.weights = self._sampling_weights()
        self.judge = None
        if cfg.lambda_identity:  # a frozen identity judge (the distilled student by default) as a loss
            from genaug.faces.identity import get_judge

            self.judge = get_judge(cfg.identity_judge, self.device)
            if not hasattr(self.judge, "embed_with_grad"):
                raise ValueError(f"identity judge {cfg.identity_judge!r} is not differentiable; use 'student' or 'embedder'")
            self.judge.net.requires_grad_(False)
        if self.device.type == "cuda":  # the whole uint8 set lives on the GPU; no per-step uploads
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
            self.train_data.images = self.train_data.images.to(self.device)
        self.E_ema, self.G_ema = copy.deepcopy(self.E).eval(), copy.deepcopy(self.G).eval()
        betas = (cfg.beta1, 0.999)
        self.opt_g = torch.optim.Adam([*self.E.parameters(), *self.G.parameters()], cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), cfg.lr, betas=betas)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.runner = Run(self, plan, self.device, lock=self.folder)
        self.runner.resume()

    @property
    def step(self) -> int:
        return self.runner.step

    def _init_bundle(self, path: str) -> Any:
        """The bundle E and G start from, checked to be of the same kind, latent layout and network shape (code names
        may differ) before the faces load (minutes on CelebA)."""
        from genaug.bundle import load_bundle

        b = load_bundle(path)
        shape = lambda s: (s.noise_dim, [(c.k, c.attribute) for c in s.categorical], len(s.continuous))  # noqa: E731
        if b.kind != "edit" or shape(b.spec) != shape(self.spec) or b.net.to_dict() != self.net.to_dict():
            raise ValueError(f"--init-from {path}: its networks or latent differ from this run's "
                             f"(kind {b.kind}, codes {b.spec.code_names}, network {b.net.to_dict()})")
        return b

    # ------------------------------------------------------- skeleton hooks
    def parts(self) -> dict[str, Any]:
        return {"E": self.E, "G": self.G, "D": self.D, "E_ema": self.E_ema, "G_ema": self.G_ema, "opt_g": self.opt_g,
                "opt_d": self.opt_d, "gen": RngState(self.gen)}

    def run(self) -> Bundle:
        """Train (or continue) to ``--steps``, the budget or a signal; returns the exported bundle."""
        return self.runner.run()

    def _sampling_weights(self) -> torch.Tensor | None:
        """Per-face sampling weight: the rarest of its bound-code values, freq^-balance (None = uniform)."""
        attrs = self.train_data.attributes
        if not self.cfg.balance or attrs is None or not self.layout.bound:
            return None
        w = torch.zeros(len(attrs))
        for col in self.layout.bound.values():
            pos, known = attrs[:, col] > 0, attrs[:, col] != 0
            share = pos[known].float().mean() if known.any() else pos.float().new_tensor(0.5)
            freq = torch.where(pos, share, 1 - share).clamp_min(1.0 / len(attrs))
            freq = torch.where(known, freq, torch.ones_like(freq))  # an unlabelled face: weight 1 for this code
            w = torch.maximum(w, freq.pow(-self.cfg.balance))
        return w

    # ------------------------------------------------------------------ steps
    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """One E+G and one D update at ``step``; returns the losses as tensors (read only when logged: no GPU sync)."""
        if self.weights is None:
            idx = torch.randint(0, len(self.train_data), (self.cfg.batch_size,), generator=self.gen)
        else:
            idx = torch.multinomial(self.weights, self.cfg.batch_size, replacement=True, generator=self.gen)
        x = self.train_data.batch(idx, self.device)
        attrs = None if self.train_data.attributes is None else self.train_data.attributes[idx].to(self.device)
        self.E.train(), self.G.train(), self.D.train()
        warmup = step < self.cfg.d_warmup  # D alone: E and G give it faces but do not learn
        with torch.set_grad_enabled(not warmup):
            loss_g, own, edited, target, log = g_step(self.obj, self.layout, self.E, self.G, self.D, x, attrs, self.gen, self.judge)
        if not warmup:
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
        loss_d, log_d = d_step(self.obj, self.layout, self.D, x, own, edited, target, self.gen, self.layout.label_known(attrs))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        beta = self.cfg.ema if step > 200 else 0.0
        update_ema(self.E_ema, self.E, beta)
        update_ema(self.G_ema, self.G, beta)
        return {**log, **log_d}

    # ------------------------------------------------------------- evaluation
    @torch.no_grad()
    def recalibrate_batchnorm(self, batches: int = 16) -> None:
        """Recompute the EMA generator's BatchNorm statistics for its own (averaged) weights.

        The live generator's running statistics do not match the EMA weights, and codes reach G as
        constant channels, so mismatched statistics shift exactly what an edit changes. We rerun
        G_ema in training mode on the same two kinds of inputs a training step gives it (faces' own
        codes and random codes), averaging the statistics over ``batches`` draws of each."""
        bns = [m for m in self.G_ema.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if not bns:
            return
        gen = torch.Generator().manual_seed(self.cfg.seed + 1)
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        self.G_ema.train()
        for _ in range(batches):
            idx = torch.randint(0, len(self.train_data), (self.cfg.batch_size,), generator=gen)
            x = self.train_data.batch(idx, self.device)
            attrs = None if self.train_data.attributes is None else self.train_data.attributes[idx].to(self.device)
            raw = self.E_ema.forward_raw(x)
            h = raw[:, : self.spec.noise_dim]
            labels = self.layout.label_indices(attrs) if attrs is not None and self.layout.bound else {}
            own = self.layout.own_codes(raw[:, self.spec.noise_dim :], labels, self.layout.label_known(attrs))
            self.G_ema(torch.cat([h, own], 1))
            self.G_ema(torch.cat([h, self.layout.random_codes(len(x), gen, self.device)], 1))
        self.G_ema.eval()
        for m in bns:
            m.momentum = 0.1

    def evaluate(self, step: int) -> dict[str, Any]:
        """Held-out metrics, a sample grid and the bundle (rewritten at every evaluation)."""
        result = self.held_out_scores()
        self.write_grid()
        self.export(step)
        return result

    @torch.no_grad()
    def held_out_scores(self) -> dict[str, Any]:
        """Held-out faces: one-pass reconstruction and per-code edit success (delta edits)."""
        from genaug.faces.metrics import attribute_names, attribute_probabilities, resolve_feature_net

        self.recalibrate_batchnorm()
        self.D.eval()

        x = self.held.batch(torch.arange(len(self.held)), self.device)
        lat = self.E_ema(x)
        rec = self.G_ema(lat)
        out: dict[str, Any] = {"psnr": psnr(rec, x).mean().item(), "msssim": reconstruction_score(rec, x).mean().item()}
        try:
            clf = resolve_feature_net(None, "attributes", self.device)
            names = attribute_names(clf)
        except (FileNotFoundError, ValueError):
            clf, names = None, []
        attrs = self.held.attributes
        for i, col in self.layout.bound.items():
            code = self.spec.categorical[i]
            sl = self.spec.code_slice(i)
            has = attrs[:, col] > 0 if attrs is not None else torch.zeros(len(x), dtype=torch.bool)
            lacks = attrs[:, col] < 0 if attrs is not None else ~has  # labelled faces only
            for target, rows in ((1, lacks), (0, has)):
                if rows.sum() == 0:
                    continue
                e = lat[rows.to(lat.device)].clone()
                e[:, sl] = 0
                e[:, sl.start + target] = 1
                edited = (x[rows.to(x.device)] + self.G_ema(e) - rec[rows.to(rec.device)]).clamp(-1, 1)
                tag = f"{code.name}_{'on' if target else 'off'}"
                _, dcodes = self.D(edited)
                dsl = slice(sl.start - self.spec.noise_dim, sl.stop - self.spec.noise_dim)
                out[f"d_{tag}"] = (dcodes[:, dsl].argmax(1) == target).float().mean().item()
                if clf is not None and code.attribute in names:
                    p = attribute_probabilities(edited, clf)[:, names.index(code.attribute)]
                    out[f"clf_{tag}"] = ((p > 0.5) == bool(target)).float().mean().item()
        self.D.train()
        return out

    @torch.no_grad()
    def write_grid(self) -> None:
        x = self.held.batch(torch.arange(min(8, len(self.held))), self.device)
        lat = self.E_ema(x)
        rows = [x, self.G_ema(lat)]
        for i in self.layout.bound:
            sl = self.spec.code_slice(i)
            e = lat.clone()
            flip = 1 - e[:, sl].argmax(1)
            e[:, sl] = torch.nn.functional.one_hot(flip, 2).float()
            rows.append(self.G_ema(e))
        (self.out / "samples").mkdir(exist_ok=True)
        save_image(torch.cat(rows), self.out / "samples" / f"{self.step:06d}.png", nrow=len(x), normalize=True, value_range=(-1, 1))

    def export(self, step: int | None = None) -> Bundle:
        self.recalibrate_batchnorm()
        bundle = Bundle(self.spec, self.net, copy.deepcopy(self.G_ema).cpu(), copy.deepcopy(self.E_ema).cpu(),
                        framing=CELEBA_FRAMING, name=self.cfg.name,
                        training={"kind": "edit", "steps": self.step, "config": asdict(self.cfg), "data": str(self.cfg.data)})
        if self.cfg.snapshots:  # pick a point of the reconstruction/edit trade-off after the run
            save_bundle(bundle, self.out / "snapshots" / f"{self.step:06d}", half=True)
        save_bundle(bundle, self.out / "bundle", half=self.cfg.half)  # last: the returned bundle's path and hash are its
        return bundle


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genaug train --kind edit", description=plain_doc(__doc__),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_options(p, dataclass_options(EditTrainConfig), HELP, positional=("data", "out"))
    from .cli import kind_option

    kind_option(p, "edit")
    return p


def main(argv: list[str] | None = None) -> int:
    """A bad value is one line on stderr and exit status 2 (a usage error), a bad path or unreadable data 1
    (:mod:`genaug.cli.common`)."""
    from genaug.cli.common import checking_arguments, run_guarded, stop_status

    args = vars(build_parser().parse_args(argv))
    args.pop("kind")

    def run(args: dict) -> int:
        with checking_arguments():
            cfg = EditTrainConfig(**args)
        trainer = EditTrainer(cfg)
        print(f"wrote {trainer.run().path}")
        return stop_status(trainer.runner.stopped_by)

    return run_guarded("genaug train --kind edit", run, args)


if __name__ == "__main__":
    raise SystemExit(main())
