"""Attribute shift: recognise people in photos WITH an attribute after learning them only from
photos WITHOUT it (enrolled without glasses, later seen wearing them) — the case genaug is for.

    python benchmarks/attribute_shift.py                          # celeba_id200: Eyeglasses, Smiling, Mouth_Slightly_Open
    python benchmarks/attribute_shift.py --data DIR --attributes Eyeglasses --bundle PATH
    python benchmarks/attribute_shift.py --quick --bundle PATH     # smoke test (seconds)

Needs ``DATA/attributes.csv`` (path, then attributes as -1/+1). For each attribute, the people
with >= 1 photo with it and >= ``--min-without`` without take part; per seed, up to
``--max-train`` of their photos without the attribute are the training photos and every photo
with it is a test photo. Two settings:

* trained: the recogniser of ``benchmarks/recogniser.py`` (same settings as the few-shot
  protocol) trains from scratch with arms ``none`` / ``classical`` / ``classical+genaug``, where
  genaug shows (with probability ``--p-genaug``) the training photo with the attribute switched
  on: the code *bound* to that attribute in the bundle's latent spec set to its "on" value, at
  each of ``--strengths`` (``genaug.Engine``, delta mode). Test top-1 among the protocol's people.
* no training: an identity judge (``genaug.faces.identity.get_judge()`` when installed, else the
  project's embedder) enrols one photo per person — alone, or with its genaug variants as extra
  templates — and identifies each test photo by its most similar template.

A bundle without a code bound to an attribute runs that attribute's non-genaug arms and says why
the genaug ones are missing. Paired per-seed differences: classical+genaug - classical, and
enrol+genaug - enrol (mean, std, 95 % CI); with ``--arms ... classical+genaug-pair`` (each sample
and its variant, the variant's embedding pulled to the sample's) also that arm - classical.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.faces import (ID200, MissingInput, attribute_variants, bound_code, eligible,  # noqa: E402
                              identity_judge, load_people, pick_shots, read_attributes, to_unit)
from benchmarks.recogniser import ARMS as ALL_ARMS, Augmenter, TrainSettings, classify, top1, train  # noqa: E402
from benchmarks.report import default_out, run_protocol  # noqa: E402
from benchmarks.stats import format_difference, mean_std, paired_difference  # noqa: E402
from genaug.device import resolve_device

ARMS = ("none", "classical", "classical+genaug")  # the default arms
DIFFERENCES = (("classical+genaug", "classical"), ("classical+genaug-pair", "classical"), ("enrol+genaug", "enrol"))
NO_TRAINING = ("enrol", "enrol+genaug")


@dataclass
class ShiftConfig:
    data: str = str(ID200)
    attributes: list[str] = field(default_factory=lambda: ["Eyeglasses", "Smiling", "Mouth_Slightly_Open"])
    min_without: int = 3
    max_train: int = 5
    seeds: int = 3
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    bundle: str = "default"
    device: str = "cpu"
    strengths: list[float] = field(default_factory=lambda: [1.0, 2.0])
    refine_steps: int | None = None  # None: the bundle's own default
    no_training: bool = True
    train: TrainSettings = field(default_factory=TrainSettings)
    edit: str = ""  # "CODE=VALUE": the variants' edit for every attribute (e.g. "drawn_glasses=1"); "": the bound code


@torch.no_grad()
def identify_by_templates(judge, gallery: Tensor, owners: Tensor, probes: Tensor, probe_labels: Tensor) -> float:
    """Top-1 of probe embeddings against gallery templates (embeddings, ``owners`` their person):
    each probe goes to the owner of the template at the smallest ``judge.distance``."""
    pred = torch.stack([owners[judge.distance(p.expand_as(gallery), gallery).argmin()] for p in probes])
    return top1(pred, probe_labels)


def identify_with_variants(judge, enrol: Tensor, enrol_labels: Tensor, extra: Tensor, probes: Tensor,
                           probe_labels: Tensor) -> float:
    """:func:`identify_by_templates` with each person's gallery grown by the embeddings of their
    genaug variants ``extra`` (P, V, C, H, W; person ``i`` owns enrol template ``i``)."""
    gallery = torch.cat([enrol, judge.embed(to_unit(extra.flatten(0, 1)))])
    owners = torch.cat([enrol_labels, enrol_labels.repeat_interleave(extra.shape[1])])
    return identify_by_templates(judge, gallery, owners, probes, probe_labels)


def embedded(judge, cache: dict[int, Tensor], images: Tensor, rows: list[int]) -> Tensor:
    """Judge embeddings of ``images[rows]``, each row embedded once (``cache``: row -> embedding)."""
    todo = [r for r in dict.fromkeys(rows) if r not in cache]
    for i in range(0, len(todo), 256):
        part = todo[i : i + 256]
        cache.update(zip(part, judge.embed(to_unit(images[part]))))
    return torch.stack([cache[r] for r in rows])


def shift_runs(cfg: ShiftConfig, images: Tensor, labels: Tensor, has: Tensor, engine, code, judge, device) -> dict:
    """Every seed and arm of one attribute; labels are already 0..P-1 over its people."""
    test = torch.nonzero(has).flatten()
    pool = torch.nonzero(~has).flatten()
    arms = [a for a in cfg.arms if code is not None or "genaug" not in a]
    settings = [*arms, *([s for s in NO_TRAINING if code is not None or s == "enrol"] if cfg.no_training else [])]
    runs: dict[str, list[dict]] = {a: [] for a in settings}
    cache: dict[int, Tensor] = {}
    for s in range(cfg.seeds):
        rows = pick_shots(labels, pool, cfg.max_train, s)
        var = attribute_variants(images[rows], engine, *code, cfg.strengths) if code is not None else None
        for arm in arms:
            aug = Augmenter(arm, s, var if "genaug" in arm else None, cfg.train.p_genaug)
            net, head, secs = train(images[rows], labels[rows], cfg.train, aug, s, device)
            runs[arm].append({"seed": s, "top1": top1(classify(net, head, images[test], device), labels[test]),
                              "train_s": round(secs, 1)})
        if cfg.no_training:
            first = pick_shots(labels, rows, 1, s)  # one per person, in label order: person i owns template i
            enrol, probes = embedded(judge, cache, images, first.tolist()), embedded(judge, cache, images, test.tolist())
            runs["enrol"].append({"seed": s, "top1": identify_by_templates(judge, enrol, labels[first], probes, labels[test])})
            if "enrol+genaug" in runs:
                pos = {r: i for i, r in enumerate(rows.tolist())}
                extra = var[[pos[r] for r in first.tolist()]]  # (P, V, C, H, W)
                more = identify_with_variants(judge, enrol, labels[first], extra, probes, labels[test])
                runs["enrol+genaug"].append({"seed": s, "top1": more})
        print(f"seed={s} " + " ".join(f"{a}={r[-1]['top1']:.3f}" for a, r in runs.items()), flush=True)
    return runs


def named_edit(spec, edit: str) -> tuple[int, float]:
    """``"CODE=VALUE"`` (a latent code or an image-space control) -> (code index, value)."""
    from genaug.engine.edits import code_index

    name, _, value = edit.partition("=")
    try:
        return code_index(spec, name.strip()), float(value)
    except (KeyError, ValueError):
        raise ValueError(f"--edit must be CODE=VALUE with a code or control of the bundle, got {edit!r}") from None


def code_name(spec, code: tuple[int, float] | None) -> str | None:
    from genaug.engine.edits import all_code_names

    return None if code is None else all_code_names(spec)[code[0]]


def run(cfg: ShiftConfig) -> dict:
    t_start = time.time()
    if cfg.min_without < 1 or cfg.max_train < 1:
        raise ValueError("--min-without and --max-train must be >= 1")
    device = resolve_device(cfg.device)
    data = load_people(cfg.data)
    attrs = read_attributes(cfg.data, data.paths)
    if attrs is None:
        raise MissingInput(f"{cfg.data} has no attributes.csv (path, then attributes as -1/+1)")
    from genaug import Engine

    engine = Engine(cfg.bundle, device=cfg.device, refine_steps=cfg.refine_steps, cache_size=100_000, seed=0)
    judge = identity_judge(str(device)) if cfg.no_training else None
    report: dict = {"benchmark": "attribute_shift", "config": asdict(cfg), "bundle": engine.bundle.name,
                    "judge": judge.name if judge else None, "attributes": {}}
    for attr in cfg.attributes:
        if attr not in attrs:
            report["attributes"][attr] = {"skipped": f"{attr} is not a column of attributes.csv"}
            continue
        people = eligible(attrs[attr], data.labels, cfg.min_without)
        if len(people) < 2:
            report["attributes"][attr] = {"skipped": f"fewer than 2 people with >= 1 photo with {attr} and >= {cfg.min_without} without"}
            continue
        rows = torch.nonzero(torch.isin(data.labels, people)).flatten()
        labels = torch.searchsorted(people, data.labels[rows])
        code = bound_code(engine.spec, attr) if not cfg.edit else named_edit(engine.spec, cfg.edit)
        t0 = time.time()
        print(f"{attr}: {len(people)} people, code {code_name(engine.spec, code)}", flush=True)
        runs = shift_runs(cfg, data.images[rows], labels, attrs[attr][rows], engine, code, judge, device)
        entry = {"people": len(people), "test_photos": int(attrs[attr][rows].sum()),
                 "code": code_name(engine.spec, code), "seconds": round(time.time() - t0, 1),
                 "results": {a: {**mean_std([r["top1"] for r in rs]), "runs": rs} for a, rs in runs.items()},
                 "paired_differences": {}}
        if code is None:
            entry["genaug_skipped"] = f"bundle {engine.bundle.name!r} has no code bound to {attr}"
        for a, b in DIFFERENCES:
            if a in runs and b in runs:
                entry["paired_differences"][f"{a} - {b}"] = paired_difference([r["top1"] for r in runs[a]], [r["top1"] for r in runs[b]])
        report["attributes"][attr] = entry
    report["wall_s"], report["cpu_s"] = round(time.time() - t_start, 1), round(time.process_time(), 1)
    return report


def format_table(report: dict) -> str:
    cfg = report["config"]
    cols = [*cfg["arms"], *(NO_TRAINING if cfg["no_training"] else ())]
    names = [f"{a} - {b}" for a, b in DIFFERENCES if a != "classical+genaug-pair" or a in cfg["arms"]]
    lines = [f"attribute shift on {Path(cfg['data']).name}: learn from <= {cfg['max_train']} photos without the attribute "
             f"per person, test on photos with it (top-1 %, mean ± std over {cfg['seeds']} seeds; "
             f"no-training judge: {report['judge']})",
             "| attribute | people | code | " + " | ".join(cols + names) + " |",
             "| --- " * (3 + len(cols) + len(names)) + "|"]
    for attr, e in report["attributes"].items():
        if "skipped" in e:
            lines.append(f"| {attr} | skipped: {e['skipped']} |")
            continue
        cells = [f"{100 * e['results'][c]['mean']:.1f} ± {100 * e['results'][c]['std']:.1f}" if c in e["results"] else "-" for c in cols]
        diffs = [format_difference(e["paired_differences"][d]) if d in e["paired_differences"] else "-"
                 for d in names]
        lines.append(f"| {attr} | {e['people']} | {e['code'] or 'none bound'} | " + " | ".join(cells + diffs) + " |")
    lines.append(f"wall-clock {report['wall_s']:.0f}s, CPU {report['cpu_s']:.0f}s")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = ShiftConfig()
    p.add_argument("--data", default=d.data, help="ImageFolder of identities with attributes.csv (default celeba_id200)")
    p.add_argument("--attributes", nargs="+", default=d.attributes)
    p.add_argument("--min-without", type=int, default=d.min_without, help="photos without the attribute a person needs")
    p.add_argument("--max-train", type=int, default=d.max_train, help="training photos per person (without the attribute)")
    p.add_argument("--seeds", type=int, default=d.seeds)
    p.add_argument("--arms", nargs="+", default=d.arms, choices=ALL_ARMS)
    p.add_argument("--bundle", default="default", help="genaug bundle: 'default' or a bundle folder")
    p.add_argument("--device", default="cpu")
    p.add_argument("--strengths", type=float, nargs="+", default=d.strengths, help="edit strengths (one variant each)")
    p.add_argument("--refine-steps", type=int, default=None, help="inversion refinement steps (default: the bundle's)")
    p.add_argument("--steps", type=int, default=d.train.steps)
    p.add_argument("--p-genaug", type=float, default=d.train.p_genaug, help="probability a training sample is shown as a genaug variant")
    p.add_argument("--pair-weight", type=float, default=d.train.pair_weight,
                   help="classical+genaug-pair: weight of the consistency term 1 - cos(variant, real)")
    p.add_argument("--no-training-only", action="store_true", help="skip the trained arms")
    p.add_argument("--edit", default="", help="CODE=VALUE: the variants' edit for every attribute instead of the code bound "
                                              "to it (e.g. drawn_glasses=1, the drawn frames)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/attribute_shift_<bundle>.json)")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 seeds, 20 steps")
    return p


def main(argv: list[str] | None = None) -> dict:
    a = build_parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = ShiftConfig(a.data, a.attributes, a.min_without, a.max_train, a.seeds, [] if a.no_training_only else a.arms,
                      a.bundle, a.device, a.strengths, a.refine_steps, True, TrainSettings(steps=a.steps, p_genaug=a.p_genaug,
                      pair_weight=a.pair_weight), a.edit)
    if a.quick:
        cfg.seeds, cfg.refine_steps, cfg.train.steps, cfg.train.batch_size = 2, 1, 20, 8
    out = a.out or default_out("attribute_shift", a.bundle, a.quick)
    return run_protocol("attribute_shift", lambda: run(cfg), format_table, out)


if __name__ == "__main__":
    main()
