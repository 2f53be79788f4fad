"""Pose and lighting shift: learn people from their most frontal (most evenly lit) photos, recognise
them in their most turned (most side-lit) ones — the variation that separates a person's photos.

    python benchmarks/pose_shift.py                         # celeba_id200: pose and light shifts, 3 seeds
    python benchmarks/pose_shift.py --shifts pose --seeds 3
    python benchmarks/pose_shift.py --quick                  # smoke test (seconds)

Every photo of ``--data`` (64 px model-frame crops, ``benchmarks.faces.load_people``) gets dlib's
5 landmarks (``genaug.faces.landmarks.face_landmarks``; the framing rule without dlib), its yaw
(``genaug.faces.pose.estimate_yaw``) and its side lighting (``genaug.faces.light.estimate_light``
``.side``); they are cached under ``$GENAUG_CACHE`` (default ``~/.cache/genaug``). Per person, the
``--train`` photos with the smallest ``|yaw|`` (``|side|``) are the training photos and the
``--test`` photos with the largest are the test photos.

* trained: the recogniser of ``benchmarks/recogniser.py`` (``TrainSettings``, as in the
  attribute shift) with arms ``none`` / ``classical`` / ``classical+genaug``; genaug shows (with
  probability ``--p-genaug``) one of the training photo's rendered variants: ``rotate_yaw`` at each
  of ``--yaws``, or ``relight`` at azimuth +-``--azimuths`` (``--elevation``, ``--strength``, ``--ambient``),
  rendered on the folder's photos at their own size and framed like the 64 px faces (``--render-at photo``,
  the default; ``crop``: on the 64 px crops).
  ``classical-varied`` is the headroom: classical augmentation, but as many training photos drawn at
  random (seeded) from each person's photos outside the test ones — what real variation in the
  training photos buys on the same test photos, the most any augmenter could be expected to add.
* no training: dlib enrols each person's most frontal (evenly lit) photo, alone or with its
  variants as extra templates (``benchmarks.attribute_shift.identify_by_templates``).

Paired per-seed differences classical+genaug - classical and enrol+genaug - enrol (mean, std, 95 % CI).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.attribute_shift import embedded, identify_by_templates, identify_with_variants  # noqa: E402
from benchmarks.faces import ID200, frame_like_people, from_unit, identity_judge, load_people, subset, to_unit  # noqa: E402
from benchmarks.recogniser import Augmenter, TrainSettings, classify, top1, train  # noqa: E402
from benchmarks.report import RESULTS, run_protocol  # noqa: E402
from benchmarks.stats import format_difference, mean_std, paired_difference  # noqa: E402
from genaug.device import resolve_device  # noqa: E402
from genaug.faces.light import estimate_light, relight  # noqa: E402
from genaug.faces.pose import estimate_yaw, rotate_yaw  # noqa: E402
from genaug.faces.landmarks import face_landmarks  # noqa: E402

ARMS = ("none", "classical", "classical+genaug", "classical-varied")
SHIFTS = ("pose", "light")
RENDER_AT = ("photo", "crop")
DIFFS = ("classical+genaug - classical", "classical-varied - classical", "enrol+genaug - enrol")


@dataclass
class PoseShiftConfig:
    data: str = str(ID200)
    shifts: list[str] = field(default_factory=lambda: list(SHIFTS))
    train_photos: int = 5
    test_photos: int = 5
    seeds: int = 3
    arms: list[str] = field(default_factory=lambda: list(ARMS[:3]))
    device: str = "cpu"
    yaws: list[float] = field(default_factory=lambda: [-35.0, -20.0, 20.0, 35.0])
    # light variants strong enough to reach the test photos' side lighting (their |side| median 1.0;
    # these variants 0.9-1.2, the light control's own 45-70 deg at 0.8 / ambient 0.35 only 0.4-0.5)
    azimuths: list[float] = field(default_factory=lambda: [60.0, 75.0])
    elevation: float = 15.0
    strength: float = 1.0
    ambient: float = 0.15  # the new light's shadowless share (relight's ``ambient``)
    # "photo": variants rendered on the folder's own photos (landmarks found there), then framed like
    # the 64 px crops, as a user applies the transform before cropping; "crop": on the 64 px crops
    render_at: str = "photo"
    no_training: bool = True
    max_people: int | None = None  # the first N people of the folder (None: all)
    train: TrainSettings = field(default_factory=TrainSettings)


def face_measures(images: Tensor, data_key: str, batch: int = 64) -> dict[str, Tensor]:
    """Landmarks (N, 5, 2), yaw (N,) and side lighting (N,) of uint8 NCHW faces, cached per data set."""
    from genaug.faces.identity import faces_extra_available

    cache = Path(os.environ.get("GENAUG_CACHE", Path.home() / ".cache" / "genaug"))
    import genaug.faces.light as light_module

    here = Path(light_module.__file__).parent
    code = b"".join((here / f"{m}.py").read_bytes() for m in ("shape", "pose", "light"))  # stale after edits
    key = hashlib.sha1(f"{data_key}|{images.shape}|{int(images[:, :, ::7, ::7].sum())}|dlib={faces_extra_available()}".encode()
                       + code).hexdigest()[:16]
    path = cache / f"pose-light-{key}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    out: dict[str, list[Tensor]] = {"landmarks": [], "yaw": [], "side": []}
    for i in range(0, len(images), batch):
        x = to_unit(images[i : i + batch])
        lm = face_landmarks(x)
        out["landmarks"].append(lm)
        out["yaw"].append(estimate_yaw(landmarks=lm))
        out["side"].append(estimate_light(x, lm).side)
    res = {k: torch.cat(v) for k, v in out.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(res, path)
    return res


def split_by_score(labels: Tensor, score: Tensor, n_train: int, n_test: int) -> tuple[Tensor, Tensor]:
    """Per person: the ``n_train`` rows with the smallest ``score`` and the ``n_test`` with the largest
    (people with fewer than ``n_train + n_test`` photos are left out)."""
    train_rows, test_rows = [], []
    for c in torch.unique(labels).tolist():
        mine = torch.nonzero(labels == c).flatten()
        if len(mine) < n_train + n_test:
            continue
        order = mine[score[mine].argsort()]
        train_rows.append(order[:n_train])
        test_rows.append(order[len(order) - n_test :])
    return torch.cat(train_rows), torch.cat(test_rows)


def varied_rows(labels: Tensor, test_rows: Tensor, n_train: int, seed: int) -> Tensor:
    """Per person with test rows (in their order): ``n_train`` rows drawn at random (``seed``) from
    the person's photos that are not test photos."""
    g, is_test = torch.Generator().manual_seed(seed), torch.zeros(len(labels), dtype=torch.bool)
    is_test[test_rows] = True
    rows = []
    for c in torch.unique_consecutive(labels[test_rows]).tolist():
        rest = torch.nonzero((labels == c) & ~is_test).flatten()
        rows.append(rest[torch.randperm(len(rest), generator=g)[:n_train]])
    return torch.cat(rows)


def render(shift: str, x: Tensor, lm: Tensor, cfg: PoseShiftConfig) -> Tensor:
    """(N, V, C, H, W) in [-1, 1]: every setting of ``cfg`` rendered on unit images ``x``."""
    settings = cfg.yaws if shift == "pose" else [s * a for a in cfg.azimuths for s in (-1, 1)]
    return torch.stack([rotate_yaw(x, v, lm) if shift == "pose"
                        else relight(x, v, cfg.elevation, cfg.strength, lm, ambient=cfg.ambient) for v in settings], 1)


def variants(shift: str, images: Tensor, landmarks: Tensor, cfg: PoseShiftConfig, batch: int = 64) -> Tensor:
    """uint8 (N, V, C, H, W): each face rendered at every yaw of ``cfg.yaws`` (pose) or lit from
    every azimuth +-``cfg.azimuths`` (light), on the 64 px crops."""
    return torch.cat([from_unit(render(shift, to_unit(images[i : i + batch]), landmarks[i : i + batch], cfg))
                      for i in range(0, len(images), batch)])


def photo_variants(shift: str, files: list[Path], cfg: PoseShiftConfig, size: int = 64) -> Tensor:
    """uint8 (N, V, C, size, size): each photo rendered at its own resolution (dlib's landmarks found on
    it), then framed and resized exactly as ``load_people`` frames the photo itself."""
    from PIL import Image

    out = []
    for f in files:
        with Image.open(f) as im:
            x = to_unit(torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)[None])
        rendered = from_unit(render(shift, x, face_landmarks(x), cfg))[0].permute(0, 2, 3, 1).numpy()  # (V, H, W, C)
        out.append(torch.from_numpy(np.stack([frame_like_people(v, size) for v in rendered])).permute(0, 3, 1, 2))
    return torch.stack(out)


def shift_runs(cfg: PoseShiftConfig, images: Tensor, labels: Tensor, train_rows: Tensor, test_rows: Tensor,
               var: Tensor, judge, device) -> dict[str, list[dict]]:
    """Every seed and arm of one shift (the split is fixed by the photos; the seed draws the
    initialisation, batch order and augmentation)."""
    runs: dict[str, list[dict]] = {a: [] for a in [*cfg.arms, *(["enrol", "enrol+genaug"] if cfg.no_training else [])]}
    tr_x, tr_y, te_x, te_y = images[train_rows], labels[train_rows], images[test_rows], labels[test_rows]
    for s in range(cfg.seeds):
        for arm in cfg.arms:
            aug = Augmenter(arm.removesuffix("-varied"), s, var if "genaug" in arm else None, cfg.train.p_genaug)
            if arm == "classical-varied":
                rows = varied_rows(labels, test_rows, cfg.train_photos, s)
                net, head, secs = train(images[rows], labels[rows], cfg.train, aug, s, device)
            else:
                net, head, secs = train(tr_x, tr_y, cfg.train, aug, s, device)
            runs[arm].append({"seed": s, "top1": top1(classify(net, head, te_x, device), te_y), "train_s": round(secs, 1)})
        print(f"seed={s} " + " ".join(f"{a}={r[-1]['top1']:.3f}" for a, r in runs.items() if r), flush=True)
    if cfg.no_training:  # deterministic: one result, repeated per seed so the pairs line up
        cache: dict[int, Tensor] = {}
        first = train_rows.reshape(-1, cfg.train_photos)[:, 0]  # each person's most frontal / evenly lit photo
        enrol, probes = embedded(judge, cache, images, first.tolist()), embedded(judge, cache, images, test_rows.tolist())
        plain = identify_by_templates(judge, enrol, labels[first], probes, te_y)
        extra = var.reshape(-1, cfg.train_photos, *var.shape[1:])[:, 0]  # (P, V, C, H, W)
        more = identify_with_variants(judge, enrol, labels[first], extra, probes, te_y)
        for s in range(cfg.seeds):
            runs["enrol"].append({"seed": s, "top1": plain})
            runs["enrol+genaug"].append({"seed": s, "top1": more})
    return runs


def run(cfg: PoseShiftConfig) -> dict:
    t_start = time.time()
    if cfg.train_photos < 1 or cfg.test_photos < 1:
        raise ValueError("--train and --test must be >= 1")
    if cfg.render_at not in RENDER_AT:
        raise ValueError(f"--render-at must be one of {RENDER_AT}, got {cfg.render_at!r}")
    device = resolve_device(cfg.device)
    data = load_people(cfg.data)
    if cfg.max_people is not None:
        data = subset(data, torch.nonzero(data.labels < cfg.max_people).flatten())
    measures = face_measures(data.images, str(Path(cfg.data).resolve()))
    judge = identity_judge(str(device)) if cfg.no_training else None
    report: dict = {"benchmark": "pose_shift", "config": asdict(cfg), "judge": judge.name if judge else None, "shifts": {}}
    for shift in cfg.shifts:
        score = measures["yaw" if shift == "pose" else "side"].abs()
        train_rows, test_rows = split_by_score(data.labels, score, cfg.train_photos, cfg.test_photos)
        if len(train_rows) == 0:
            report["shifts"][shift] = {"skipped": f"no person has {cfg.train_photos + cfg.test_photos} photos"}
            continue
        people = torch.unique(data.labels[train_rows])
        labels = torch.searchsorted(people, data.labels)
        t0 = time.time()
        if cfg.render_at == "photo":
            var = photo_variants(shift, [Path(cfg.data) / data.paths[i] for i in train_rows.tolist()], cfg)
        else:
            var = variants(shift, data.images[train_rows], measures["landmarks"][train_rows], cfg)
        print(f"{shift}: {len(people)} people, |{'yaw' if shift == 'pose' else 'side'}| train {score[train_rows].mean():.2f} "
              f"test {score[test_rows].mean():.2f}; variants {time.time() - t0:.0f}s", flush=True)
        runs = shift_runs(cfg, data.images, labels, train_rows, test_rows, var, judge, device)
        entry = {"people": len(people), "score": "abs yaw (deg)" if shift == "pose" else "abs side lighting",
                 "train_score_mean": float(score[train_rows].mean()), "test_score_mean": float(score[test_rows].mean()),
                 "variants_per_photo": var.shape[1], "seconds": round(time.time() - t0, 1),
                 "results": {a: {**mean_std([r["top1"] for r in rs]), "runs": rs} for a, rs in runs.items()},
                 "paired_differences": {}}
        for a, b in (("classical+genaug", "classical"), ("classical-varied", "classical"), ("enrol+genaug", "enrol")):
            if a in runs and b in runs and runs[a]:
                entry["paired_differences"][f"{a} - {b}"] = paired_difference([r["top1"] for r in runs[a]], [r["top1"] for r in runs[b]])
        report["shifts"][shift] = entry
    report["wall_s"], report["cpu_s"] = round(time.time() - t_start, 1), round(time.process_time(), 1)
    return report


def format_table(report: dict) -> str:
    cfg = report["config"]
    cols = [*cfg["arms"], *(("enrol", "enrol+genaug") if cfg["no_training"] else ())]
    lines = [f"pose / lighting shift on {Path(cfg['data']).name}: learn from each person's {cfg['train_photos']} most frontal "
             f"(evenly lit) photos, test on the {cfg['test_photos']} most turned (side-lit); top-1 %, mean ± std over "
             f"{cfg['seeds']} seeds; judge {report['judge']}",
             "| shift | people | train / test score | " + " | ".join(cols) + " | " + " | ".join(DIFFS) + " |",
             "| --- " * (3 + len(DIFFS) + len(cols)) + "|"]
    for shift, e in report["shifts"].items():
        if "skipped" in e:
            lines.append(f"| {shift} | skipped: {e['skipped']} |")
            continue
        cells = [f"{100 * e['results'][c]['mean']:.1f} ± {100 * e['results'][c]['std']:.1f}" if c in e["results"] else "-" for c in cols]
        diffs = [format_difference(e["paired_differences"][d]) if d in e["paired_differences"] else "-"
                 for d in DIFFS]
        lines.append(f"| {shift} | {e['people']} | {e['train_score_mean']:.2f} / {e['test_score_mean']:.2f} | " + " | ".join(cells + diffs) + " |")
    lines.append(f"wall-clock {report['wall_s']:.0f}s, CPU {report['cpu_s']:.0f}s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    d = PoseShiftConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=d.data, help="ImageFolder of identities (default celeba_id200)")
    p.add_argument("--shifts", nargs="+", default=d.shifts, choices=SHIFTS)
    p.add_argument("--train", type=int, default=d.train_photos, help="training photos per person (most frontal / evenly lit)")
    p.add_argument("--test", type=int, default=d.test_photos, help="test photos per person (most turned / side-lit)")
    p.add_argument("--seeds", type=int, default=d.seeds)
    p.add_argument("--arms", nargs="+", default=d.arms, choices=ARMS)
    p.add_argument("--device", default="cpu")
    p.add_argument("--yaws", type=float, nargs="+", default=d.yaws, help="rotate_yaw variants (degrees)")
    p.add_argument("--azimuths", type=float, nargs="+", default=d.azimuths, help="relight variants at +- these azimuths")
    p.add_argument("--elevation", type=float, default=d.elevation)
    p.add_argument("--strength", type=float, default=d.strength)
    p.add_argument("--ambient", type=float, default=d.ambient, help="relight variants' shadowless share of the new light")
    p.add_argument("--render-at", default=d.render_at, choices=RENDER_AT,
                   help="render the variants on the folder's photos, then frame them (photo), or on the 64 px crops (crop)")
    p.add_argument("--steps", type=int, default=d.train.steps)
    p.add_argument("--p-genaug", type=float, default=d.train.p_genaug)
    p.add_argument("--people", type=int, default=None, help="use only the first N people (default all)")
    p.add_argument("--no-training-arms", action="store_true", help="skip the dlib enrol arms")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/pose_shift.json)")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 seeds, 20 steps, 2 + 1 photos per person")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = PoseShiftConfig(a.data, a.shifts, a.train, a.test, a.seeds, a.arms, a.device, a.yaws, a.azimuths, a.elevation,
                          a.strength, a.ambient, a.render_at, not a.no_training_arms, a.people, TrainSettings(steps=a.steps, p_genaug=a.p_genaug))
    if a.quick:
        cfg.seeds, cfg.train_photos, cfg.test_photos, cfg.train.steps, cfg.train.batch_size = 2, 2, 1, 20, 8
    out = a.out or (None if a.quick else RESULTS / "pose_shift.json")
    return run_protocol("pose_shift", lambda: run(cfg), format_table, out)


if __name__ == "__main__":
    main()
