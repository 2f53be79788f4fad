"""Realism: can a small CNN tell augmented photos from real ones? (classifier two-sample test)

    python benchmarks/realism.py --threads 1 --out benchmarks/results/realism_before.json
    python benchmarks/realism.py --sets utkface_64 --arms real classical genaug --seeds 5
    python benchmarks/realism.py --genaug-kwargs '{"strength": 0.5}'   # measure transform settings
    python benchmarks/realism.py --sheets docs/realism                 # contact sheets only (PNG)
    python benchmarks/realism.py --quick                               # smoke test (seconds)

Per face set and arm, a pool of ``--n`` photos is drawn once (seed 0) and every arm makes one
augmented version of each. Per seed the pool's people are dealt into four disjoint quarters:
real photos of quarter 1 and augmented photos of quarter 2 train the detector (a few conv
layers + global pooling, ``Detector``), real photos of quarter 3 and augmented photos of quarter
4 score it (ROC AUC). The detector never sees the same person twice, so it must learn what
augmentation looks like, not who is in the pool; every arm sees the same deal per seed, so arms
are paired. AUC 0.5: indistinguishable; 1.0: always spotted. Mean over seeds, 95 % t-interval.

Sets (``--sets``): ``celeba_id200`` (178x218 frames, as the transform sees them; the detector
reads the CelebA face box resized to 64 px: every pixel an edit changes lies in that box, and it
is what the recognition benchmarks train on; people = the folder's identities), ``utkface_128``
(128 px in-the-wild photos, detector at 128 px; each photo its own person) and ``utkface_64``
(the same photos resized to 64x64 tight crops), ``utkface_rotated`` (the 128 px photos rotated by up to 15
degrees with black corners, as a face aligner leaves them; real and augmented alike), ``utkface_arcface112`` /
``celeba_arcface112`` (ArcFace 112 px crops of those: ``benchmarks.aligned``); ``synthetic`` (patterns, for tests).

Arms (``--arms``): ``real`` (real vs real: the floor, ~0.5), ``classical`` (benchmarks.faces
``classical_pipeline``, the recognisers' classical arm, on the detector's view), ``genaug``
(``GenerativeFaceAug(p=1, **--genaug-kwargs)`` on the photo as the transform sees it: every
output edited, so the number is the edits' realism, not diluted by ``p``), ``few_shot`` (one
offline variant per photo made exactly as ``benchmarks/few_shot.py`` makes them, on the 64 px
crops / the set's photos, ``framing="full"``), ``CODE=VALUE`` (every photo gets that fixed edit
through the same transform's engine; ``codes`` expands to every identity-safe code and
direction: categories 0/1, continuous codes at their low/high end) and ``noise`` (Gaussian noise
sigma 25: a positive control). Headline arms use ``--seeds``, per-code arms ``--code-seeds``.

Judges (``--detectors``, ``benchmarks/judges.py``; the first is the arm's headline, the others are stored under the
arm's ``judges``, all on the same photos and deals): ``cnn`` (the detector above, the default), ``residual`` (the same
CNN on the photo minus its 3x3 median), ``spectrum`` (logistic regression on the grey photo's azimuthal log power
spectrum), ``wide`` (twice the widths, twice the epochs). ``--native`` reads celeba_id200's face box at its own 108 px.

    python benchmarks/realism.py --sets utkface_128 --arms real genaug yaw=-20 --seeds 3 --detectors residual spectrum
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.faces import ID200, SHARED, MissingInput, classical_pipeline, offline_variants  # noqa: E402
from benchmarks.report import emit, skip  # noqa: E402
from benchmarks.c2st import DetectorSettings, c2st, summarise  # noqa: E402
from benchmarks.judges import JUDGES, judge  # noqa: E402
from benchmarks.realism_report import format_table, merge, paired_to_classical  # noqa: E402

UTK = SHARED / "utkface_128"
UTK_HELD_OUT = 3000  # utkface files with index < 3000 train the quality critic (training/quality.py): never scored here
CELEBA_BOX = (35, 55, 143, 163)  # CelebA's face box in a 178x218 frame (the bundles' framing)
SETS = ("celeba_id200", "utkface_128", "utkface_64", "utkface_rotated", "utkface_arcface112", "celeba_arcface112", "synthetic")
ALIGNED = {"utkface_arcface112": ("utkface_128", "arcface112"), "celeba_arcface112": ("celeba_id200", "arcface112")}
HEADLINE = ("real", "classical", "genaug", "few_shot")


def make_edit(code: int, value: float):
    """A fixed edit for ``Engine.augment_tensor``: the one genaug internal this script uses."""
    from genaug.engine.edits import Edit

    return Edit(code, value)


# ----------------------------------------------------------------------------- face sets
@dataclass
class FaceSet:
    """Photos as the transform sees them (HWC uint8), a person id per photo, the detector's size."""

    name: str
    photos: list[np.ndarray]
    people: np.ndarray
    size: int
    box: tuple[int, int, int, int] | None = None  # crop before resizing to ``size`` (None: whole photo)
    paths: list[Path] | None = None  # the photos' files (None: generated)

    def view(self, photo: np.ndarray) -> np.ndarray:
        """What the detector (and the classical / few-shot arms) see of a photo."""
        if self.box is None and photo.shape[:2] == (self.size, self.size):
            return photo
        im = Image.fromarray(photo)
        im = im.crop(self.box) if self.box else im
        return np.asarray(im.resize((self.size, self.size), Image.BICUBIC))


def read_rgb(path: Path, size: int | None = None) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        return np.asarray(im.resize((size, size), Image.BICUBIC) if size else im)


def load_set(name: str, n: int) -> FaceSet:
    """``n`` photos of set ``name``, drawn with seed 0 (celeba_id200: n // 200 per person)."""
    rng = np.random.default_rng(0)
    if name == "celeba_id200":
        if not (ID200 / "splits.csv").is_file():
            raise MissingInput(f"{ID200}/splits.csv not found")
        with open(ID200 / "splits.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        by_person: dict[int, list[str]] = {}
        for r in rows:
            by_person.setdefault(int(r["identity"]), []).append(r["path"])
        per = max(1, n // len(by_person))
        picked = [(p, path) for p, paths in sorted(by_person.items())
                  for path in rng.choice(sorted(paths), min(per, len(paths)), replace=False)]
        return FaceSet(name, [read_rgb(ID200 / path) for _, path in picked], np.array([p for p, _ in picked]), 64,
                       CELEBA_BOX, [ID200 / path for _, path in picked])
    if name in ("utkface_128", "utkface_64", "utkface_rotated"):
        files = sorted((UTK / "images").glob("*.jpg"))[UTK_HELD_OUT:]
        if not files:
            raise MissingInput(f"{UTK}/images not found")
        chosen = sorted(rng.choice(len(files), min(n, len(files)), replace=False))
        size = 64 if name == "utkface_64" else 128
        photos = [read_rgb(files[i], size) for i in chosen]
        if name == "utkface_rotated":  # rotated by up to 15 degrees with black corners, as an aligner leaves them
            angles = rng.uniform(-15, 15, len(photos))
            photos = [np.asarray(Image.fromarray(p).rotate(float(a), resample=Image.BILINEAR)) for p, a in zip(photos, angles)]
        return FaceSet(name, photos, np.arange(len(chosen)), size,  # rotated: not the files' pictures any more
                       paths=None if name == "utkface_rotated" else [files[i] for i in chosen])
    if name in ALIGNED:
        from benchmarks.aligned import aligned_set  # (it loads the source set here)
        return aligned_set(name, n, ALIGNED[name])
    if name == "synthetic":
        return synthetic_set(n)
    raise ValueError(f"unknown face set {name!r}; choose from {SETS}")


def synthetic_set(n: int, size: int = 64) -> FaceSet:
    """Smooth random colour patterns (a blurred face-like blob on a gradient), one 'person' each."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    photos = []
    for _ in range(n):
        cx, cy, r = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6), rng.uniform(0.2, 0.35)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
        bg = rng.uniform(40, 200, 3) * (0.6 + 0.4 * xx[..., None])
        photos.append(np.clip(bg * (1 - blob) + rng.uniform(120, 230, 3) * blob, 0, 255).astype(np.uint8))
    return FaceSet("synthetic", photos, np.arange(n), size)


# ----------------------------------------------------------------------------- arms
def code_arms(bundle: str) -> list[str]:
    """``CODE=VALUE`` for every identity-safe code and direction of the bundle."""
    import genaug

    spec = genaug.load_bundle(bundle).spec
    out = []
    for i, c in enumerate(spec.codes):
        if c.identity_safe:
            values = range(c.k) if spec.is_categorical(i) else (c.low, c.high)
            out += [f"{c.name}={v:g}" for v in values]
    return out


def expand_arms(arms: list[str], bundle: str) -> list[str]:
    out: list[str] = []
    for a in arms:
        out += code_arms(bundle) if a == "codes" else [a]
    return list(dict.fromkeys(out))


def transform(bundle: str, kwargs: dict):
    import genaug

    return genaug.GenerativeFaceAug(**{"bundle": bundle, "device": "cpu", "p": 1.0, **kwargs})


def make_fakes(fs: FaceSet, arms: list[str], bundle: str, kwargs: dict, batch: int = 64) -> dict[str, np.ndarray]:
    """Each arm's augmented version of every photo, as the detector sees it: uint8 (N, S, S, 3)."""
    return dict(iter_fakes(fs, arms, bundle, kwargs, batch))


def iter_fakes(fs: FaceSet, arms: list[str], bundle: str, kwargs: dict, batch: int = 64):
    """(arm, augmented photos as the detector sees them) one arm at a time (the transform, its
    framing and its cached inversions are made once and shared by the arms)."""
    views = np.stack([fs.view(p) for p in fs.photos])
    out: dict[str, np.ndarray] = {}
    t = engine = frames = x = None
    for arm in arms:
        t0 = time.time()
        if arm == "real":
            out[arm] = views
        elif arm == "noise":
            noise = np.random.default_rng(0).normal(0, 25, views.shape)
            out[arm] = np.clip(views + noise, 0, 255).astype(np.uint8)
        elif arm == "classical":
            aug = classical_pipeline(0)
            out[arm] = np.stack([aug(image=v)["image"] for v in views])
        elif arm == "few_shot":
            out[arm] = few_shot_variants(views, bundle, fs.paths)
        else:
            t = t or transform(bundle, kwargs)
            if arm == "genaug":
                t.set_random_seed(0)
                res = [t(images=np.stack(fs.photos[i : i + batch]))["images"] for i in range(0, len(fs.photos), batch)]
                out[arm] = np.stack([fs.view(p) for p in np.concatenate(res)])
            else:
                if engine is None:  # frame (and invert, cached) once for every fixed edit
                    engine = t.engine
                    x, frames = engine.frame(fs.photos)
                out[arm] = fixed_edit(fs, engine, x, frames, arm, t.strength, batch)
        print(f"  {fs.name}: made arm {arm} ({time.time() - t0:.0f}s)", flush=True)
        yield arm, out.pop(arm)


def few_shot_variants(views: np.ndarray, bundle: str, files: list[Path] | None = None) -> np.ndarray:
    """One variant per photo with benchmarks/few_shot.py's own settings (its FewShotConfig): made on the
    photos ``files`` (``render_at="photo"``; the views are those photos framed as ``load_people`` frames
    them), else on the views."""
    from benchmarks.few_shot import FewShotConfig

    cfg = FewShotConfig()
    images = torch.from_numpy(views).permute(0, 3, 1, 2).contiguous()
    var, _ = offline_variants(images, bundle, 1, cfg.refine_steps, cfg.strength, "cpu", codes=cfg.codes,
                              quality_threshold=cfg.quality_threshold,
                              files=files if cfg.render_at == "photo" else None)
    return var[:, 0].permute(0, 2, 3, 1).numpy()


def fixed_edit(fs: FaceSet, engine, x: torch.Tensor, frames: list, arm: str, strength, batch: int) -> np.ndarray:
    """Every photo with the edit ``CODE=VALUE`` at the transform's strength (a range: its middle), made and put
    into the photo as ``GenerativeFaceAug`` does (``Engine.unframe`` with the edits: a control rendered on the full
    photo, a colour edit recolouring the whole photo)."""
    from genaug.engine.edits import all_code_names, code_index

    name, _, value = arm.partition("=")
    try:
        code = code_index(engine.spec, name)  # a latent code or an image-space control
        value = float(value)
    except (KeyError, ValueError):
        raise ValueError(f"arm {arm!r}: expected one of {HEADLINE + ('noise', 'codes')} or CODE=VALUE with a code "
                         f"or control of the bundle ({all_code_names(engine.spec)})") from None
    s = float(np.mean(strength))
    res = []
    for i in range(0, len(x), batch):  # placed as the transform places it: a control on the full photo, a colour
        out, info = engine.augment_tensor(x[i : i + batch], edits=[make_edit(code, value)] * len(x[i : i + batch]),
                                          generator=torch.Generator().manual_seed(i), strength=s, placed=True)
        res += engine.unframe(out, fs.photos[i : i + batch], frames[i : i + batch], info)  # edit recolouring the photo
    return np.stack([fs.view(p) for p in res])


# ----------------------------------------------------------------------------- protocol
@dataclass
class RealismConfig:
    sets: list[str] = field(default_factory=lambda: ["celeba_id200", "utkface_128", "utkface_64"])
    arms: list[str] = field(default_factory=lambda: [*HEADLINE, "codes"])
    seeds: int = 5
    code_seeds: int = 2  # 14 per-code arms per set: 2 seeds keep the full run near 25 CPU minutes
    n: int = 800
    bundle: str = "default"
    genaug_kwargs: dict = field(default_factory=dict)
    reference: str = "pool"  # the real side: the pool's photos, or "turned" ones (benchmarks.turned)
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    detectors: list[str] = field(default_factory=lambda: ["cnn"])  # benchmarks.judges; the first is the headline
    native: bool = False  # the detector reads a framed set's face box at its own size (celeba_id200: 108 px), not 64 px


def run(cfg: RealismConfig, partial: str | Path | None = None) -> dict:
    """Every set x arm; with ``partial``, the report so far is written there after each arm."""
    t_start = time.time()
    arms = expand_arms(cfg.arms, cfg.bundle)
    for d in cfg.detectors:
        judge(d)  # an unknown name fails before any photo is made
    results: dict[str, dict] = {}
    for name in cfg.sets:
        fs = load_set(name, cfg.n)
        if cfg.native and fs.box:
            fs = replace(fs, size=fs.box[2] - fs.box[0])
        real = np.stack([fs.view(p) for p in fs.photos])
        per_arm: dict[str, dict] = {}
        results[name] = {"photos": len(fs.photos), "people": int(len(np.unique(fs.people))), "detector_px": fs.size,
                         "arms": per_arm, "paired_differences": {}}
        if cfg.reference == "turned":  # real side: turned heads; the arm ``real`` then measures the pose gap itself
            from benchmarks.turned import turned_views

            real, yaw = turned_views(fs)
            results[name]["reference"] = {"kind": "turned", "abs_yaw_mean": float(yaw.mean()),
                                          "abs_yaw_quartiles": np.percentile(yaw, [25, 50, 75]).round(1).tolist()}
        real_in = {d: judge(d).inputs(real) for d in cfg.detectors}
        for arm, fake in iter_fakes(fs, arms, cfg.bundle, cfg.genaug_kwargs):
            seeds = cfg.seeds if arm in HEADLINE or arm == "noise" else cfg.code_seeds
            for k, d in enumerate(cfg.detectors):  # the first judge's result is the arm's; the others under "judges"
                t0, fake_in = time.time(), judge(d).inputs(fake)  # (once per arm, not per seed)
                runs = [c2st(real_in[d], fake_in, fs.people, cfg.detector, s, d) for s in range(seeds)]
                entry = {**summarise([r["auc"] for r in runs]), "runs": runs}
                if k == 0:
                    per_arm[arm] = entry
                else:
                    per_arm[arm].setdefault("judges", {})[d] = entry
                print(f"{name:13s} {arm:12s} {d:8s} AUC {entry['mean']:.3f} ({seeds} seeds, {time.time() - t0:.0f}s)", flush=True)
            if partial:
                Path(partial).write_text(json.dumps({"benchmark": "realism", "partial": True, "config": asdict(cfg),
                                                     "results": results}, indent=1) + "\n")
        results[name]["paired_differences"] = paired_to_classical(per_arm)
    return {"benchmark": "realism", "config": asdict(cfg), "arms": arms, "results": results,
            "wall_s": round(time.time() - t_start, 1), "cpu_s": round(time.process_time(), 1)}


# ----------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d, det = RealismConfig(), DetectorSettings()
    p.add_argument("--sets", nargs="+", default=d.sets, choices=SETS)
    p.add_argument("--arms", nargs="+", default=d.arms,
                   help=f"{', '.join(HEADLINE)}, noise, codes (every identity-safe code and direction) or CODE=VALUE")
    p.add_argument("--seeds", type=int, default=d.seeds, help="seeds of the headline arms (and noise)")
    p.add_argument("--code-seeds", type=int, default=d.code_seeds, help="seeds of the CODE=VALUE arms")
    p.add_argument("--n", type=int, default=d.n, help="photos per set (celeba_id200: n // 200 per person)")
    p.add_argument("--bundle", default="default", help="genaug bundle: 'default' or a bundle folder")
    p.add_argument("--genaug-kwargs", type=json.loads, default={},
                   help="JSON of GenerativeFaceAug arguments for the genaug and CODE=VALUE arms, e.g. '{\"strength\": 0.5}'")
    p.add_argument("--reference", default="pool", choices=("pool", "turned"),
                   help="the real photos: the pool's, or real turned heads (pose-matched, for yaw arms; arm 'real' then "
                        "measures the pose gap)")
    p.add_argument("--detectors", nargs="+", default=["cnn"], choices=tuple(JUDGES),
                   help="judges (benchmarks/judges.py), each on the same photos and deals; the first is the headline: "
                        "cnn (the project's), residual (the CNN on the photo minus its 3x3 median), spectrum (logistic "
                        "regression on the grey photo's azimuthal log power spectrum), wide (2x wider, 2x the epochs)")
    p.add_argument("--native", action="store_true",
                   help="framed sets (celeba_id200): the detector reads the face box at its own size (108 px), not at 64 px")
    p.add_argument("--epochs", type=int, default=det.epochs, help="detector training epochs")
    p.add_argument("--widths", type=int, nargs="+", default=det.widths, help="detector stage widths")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/realism.json; --quick: print)")
    p.add_argument("--sheets", default=None, help="write contact sheets <DIR>/<set>.png and <DIR>/<set>_photometric.png (celeba_id200, utkface_128) and stop")
    p.add_argument("--merge", nargs="+", default=None, help="merge these JSON reports (one per set or arm group) into --out and stop")
    p.add_argument("--sheet-faces", type=int, default=6, help="faces per contact-sheet row")
    p.add_argument("--quick", action="store_true", help="smoke test: synthetic set, 128 photos, 2 seeds (1 per code), 3 epochs")
    return p


def main(argv: list[str] | None = None) -> dict:
    a = build_parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    if not isinstance(a.genaug_kwargs, dict):
        raise ValueError(f"--genaug-kwargs must be a JSON object, got {a.genaug_kwargs!r}")
    if a.sheets:
        from benchmarks.realism_sheets import write_sheets

        return write_sheets(Path(a.sheets), a.bundle, a.genaug_kwargs, a.sheet_faces)
    if a.merge:
        report = merge(a.merge)
        emit(report, format_table(report), a.out)
        return report
    cfg = RealismConfig(a.sets, a.arms, a.seeds, a.code_seeds, a.n, a.bundle, a.genaug_kwargs, a.reference,
                        DetectorSettings(widths=a.widths, epochs=a.epochs), a.detectors, a.native)
    if a.quick:
        cfg.n, cfg.seeds, cfg.code_seeds, cfg.detector.epochs = min(a.n, 128), 2, 1, 3
        if a.sets == RealismConfig().sets:
            cfg.sets = ["synthetic"]
    out = a.out or (None if a.quick else Path(__file__).resolve().parent / "results" / "realism.json")
    try:
        report = run(cfg, partial=f"{out}.partial" if out else None)
    except MissingInput as e:
        return skip("realism", str(e), out)
    emit(report, format_table(report), out)
    if out:
        Path(f"{out}.partial").unlink(missing_ok=True)
    return report


if __name__ == "__main__":
    main()
