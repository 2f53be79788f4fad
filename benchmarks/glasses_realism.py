"""Do genaug's glasses look like real glasses? (a classifier two-sample test against real photos WITH glasses)

    python benchmarks/glasses_realism.py                  # celeba_train_64, 400 + 400 faces, 5 seeds
    python benchmarks/glasses_realism.py --quick          # smoke test (seconds)

``benchmarks/realism.py`` compares augmented photos with real photos of the set, most of which
have no glasses: there any edit that adds glasses is spotted (AUC ~1.0) because of the glasses, real
or not. Here the real side is photos that do have eyeglasses (CelebA's ``Eyeglasses`` label) and the
augmented side photos without them, given glasses by genaug: the detector (the same small CNN,
:mod:`benchmarks.c2st`) must tell worn glasses from added ones. One photo per CelebA identity, the
two sides of disjoint people matched on sex and age group, 64x64 model-frame crops; paired seeds deal the pool into quarters of
disjoint rows (train on one real and one augmented quarter, score ROC AUC on the other two).

Arms: ``real`` (real glasses photos against other real glasses photos: the floor, ~0.5),
``none`` (photos without glasses, unedited: how visible glasses themselves are, ~1.0), ``latent``
(the model's bound ``glasses`` code set on, ``genaug.Engine``, delta mode), ``rendered`` (the
``drawn_glasses`` image-space control, :mod:`genaug.faces.glasses`, at value 1).
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.c2st import DetectorSettings, c2st, summarise  # noqa: E402
from benchmarks.faces import ID200, SHARED, MissingInput  # noqa: E402
from benchmarks.report import RESULTS, run_protocol  # noqa: E402

DATA = SHARED / "celeba_train_64"
ARMS = ("real", "none", "latent", "rendered")


def pick(data: Path, n: int, seed: int = 0) -> tuple[list[Path], list[Path], list[Path]]:
    """One photo per identity: ``n`` with eyeglasses, ``n`` more with them (the floor's other side),
    ``n`` without, from identities that never wear them in the set, matched to the first ``n`` on
    CelebA's ``Male`` and ``Young`` labels (so ``none`` measures the glasses, not who wears them)."""
    csv_path = data / "attributes.csv"
    if not csv_path.exists():
        raise MissingInput(f"{csv_path} not found")
    rows = list(csv.DictReader(open(csv_path, newline="")))
    by_id: dict[str, list[dict]] = {}
    for r in rows:
        by_id.setdefault(r["celeba_identity"], []).append(r)
    rng = np.random.default_rng(seed)
    wearers = [ident for ident, rs in by_id.items() if any(r["Eyeglasses"] == "1" for r in rs)]
    never = [ident for ident, rs in by_id.items() if all(r["Eyeglasses"] != "1" for r in rs)]
    rng.shuffle(wearers), rng.shuffle(never)
    if len(wearers) < 2 * n or len(never) < n:
        raise MissingInput(f"{data}: {len(wearers)} identities with eyeglasses, need {2 * n}")
    photo = lambda ident, want: next(r for r in by_id[ident] if (r["Eyeglasses"] == "1") == want)  # noqa: E731
    group = lambda r: (r["Male"], r["Young"])  # noqa: E731
    worn = [photo(i, True) for i in wearers[:n]]
    pools: dict[tuple, list[dict]] = {}
    for ident in never:
        r = photo(ident, False)
        pools.setdefault(group(r), []).append(r)
    bare = [pools[group(r)].pop() if pools.get(group(r)) else None for r in worn]  # matched on sex and age group
    rest = [r for rs in pools.values() for r in rs]
    bare = [b if b is not None else rest.pop() for b in bare]
    path = lambda r: data / "images" / r["filename"]  # noqa: E731
    return [path(r) for r in worn], [path(photo(i, True)) for i in wearers[n : 2 * n]], [path(r) for r in bare]


def load(paths: list[Path]) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((64, 64), Image.BICUBIC)) for p in paths])


def add(images: np.ndarray, arm: str, batch: int = 64) -> np.ndarray:
    """The ``latent`` or ``rendered`` glasses on uint8 (N, 64, 64, 3) model-frame faces."""
    from genaug import Engine
    from genaug.engine.edits import Edit, code_index

    engine = Engine("default", seed=0)
    edit = Edit(code_index(engine.spec, "glasses" if arm == "latent" else "drawn_glasses"), 1.0)
    out = []
    for i in range(0, len(images), batch):
        part = [np.ascontiguousarray(a) for a in images[i : i + batch]]
        out += engine.augment(part, edits=[edit] * len(part), framing="full")[0]
    return np.stack(out)


def run(n: int, seeds: int, arms: list[str], settings: DetectorSettings, judge_n: int = 0, data: Path = DATA) -> dict:
    t0 = time.time()
    worn, worn_other, bare = pick(Path(data), n)
    real, others, plain = load(worn), load(worn_other), load(bare)
    people = np.arange(n)  # one photo per identity, the sides of disjoint identities: rows are people
    report: dict = {"benchmark": "glasses_realism", "data": str(data), "n": n, "seeds": seeds, "arms": {}}
    for arm in arms:
        fake = others if arm == "real" else plain if arm == "none" else add(plain, arm)
        aucs = [c2st(real, fake, people, settings, s)["auc"] for s in range(seeds)]
        report["arms"][arm] = {**summarise(aucs), "aucs": aucs}
        print(f"{arm:<9} AUC {report['arms'][arm]['mean']:.3f} ({seeds} seeds)", flush=True)
    if judge_n:
        report["judged_celeba_id200"] = judged(judge_n)
    report["wall_s"] = round(time.time() - t0, 1)
    return report


def judged(n: int, seed: int = 0) -> dict:
    """On ``n`` celeba_id200 test photos without eyeglasses (178x218 frames, through ``GenerativeFaceAug``
    as a user applies it): the attribute classifier's Eyeglasses > 0.5 on the CelebA box (success) and
    dlib same person (identity, when the ``faces`` extra is installed), latent vs rendered glasses."""
    from genaug.faces.identity import faces_extra_available, get_judge
    from genaug.faces.metrics import attribute_names, attribute_probabilities, resolve_feature_net
    from genaug.transforms import GenerativeFaceAug

    split = ID200 / "splits.csv"
    if not split.exists():
        raise MissingInput(f"{split} not found")
    attrs = {r["path"]: r for r in csv.DictReader(open(ID200 / "attributes.csv", newline=""))}
    rows = [r["path"] for r in csv.DictReader(open(split, newline="")) if r["split"] == "test" and attrs[r["path"]]["Eyeglasses"] != "1"]
    rows = [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))[:n]]
    photos = [np.asarray(Image.open(ID200 / r).convert("RGB")) for r in rows]
    box = lambda a: np.asarray(Image.fromarray(a).crop((35, 55, 143, 163)).resize((64, 64), Image.BICUBIC))  # noqa: E731
    unit = lambda arrs: torch.from_numpy(np.stack([box(a) for a in arrs])).permute(0, 3, 1, 2).float().div(127.5).sub(1)  # noqa: E731
    clf = resolve_feature_net(None, "attributes", "cpu")
    col = attribute_names(clf).index("Eyeglasses")
    judge = get_judge("dlib") if faces_extra_available() else None
    base = unit(photos)
    out = {"n": len(rows), "judge": judge.name if judge else None}
    for arm, code in (("latent", "glasses"), ("rendered", "drawn_glasses")):
        aug = GenerativeFaceAug(p=1.0, codes=[code], device="cpu")
        aug.set_random_seed(seed)
        edited = unit([aug(image=p)["image"] for p in photos])
        res = {"success": float((attribute_probabilities(edited, clf)[:, col] > 0.5).float().mean())}
        if judge is not None:
            res["same_person"] = float(judge.same_person(judge.embed(base), judge.embed(edited)).float().mean())
            res["distance"] = float(judge.distance(judge.embed(base), judge.embed(edited)).mean())
        out[arm] = res
        print(f"{arm:<9} classifier sees glasses {res['success']:.0%}" + (f", same person {res['same_person']:.0%}" if judge else ""), flush=True)
    return out


def format_table(report: dict) -> str:
    lines = ["glasses realism: ROC AUC of a CNN telling real photos with eyeglasses from photos given glasses "
             "(0.5 = indistinguishable), mean [95 % CI] over seeds",
             "| arm | AUC | 95 % CI |", "| --- | --- | --- |"]
    for arm, r in report["arms"].items():
        ci = f"[{r['ci95_low']:.3f}, {r['ci95_high']:.3f}]" if r["ci95_low"] is not None else "-"
        lines.append(f"| {arm} | {r['mean']:.3f} | {ci} |")
    j = report.get("judged_celeba_id200")
    if j:
        lines += ["", f"celeba_id200, {j['n']} test photos without eyeglasses, 178x218 frames through GenerativeFaceAug "
                  f"(identity judge: {j['judge']})", "| glasses | classifier sees glasses | same person | distance |", "| --- | --- | --- | --- |"]
        for arm in ("latent", "rendered"):
            r = j[arm]
            lines.append(f"| {arm} | {r['success']:.0%} | {r.get('same_person', float('nan')):.0%} | {r.get('distance', float('nan')):.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DATA), help="CelebA-style faces: images/ + attributes.csv with celeba_identity, "
                                                      "Eyeglasses, Male, Young (default celeba_train_64)")
    p.add_argument("--n", type=int, default=400, help="photos per side (celeba_train_64 has 821 identities with eyeglasses)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--judge-n", type=int, default=300, help="celeba_id200 photos for the classifier / identity check (0: skip)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/glasses_realism.json; --quick: print)")
    p.add_argument("--quick", action="store_true", help="smoke test: 64 photos, 2 seeds, 2 epochs")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    settings = DetectorSettings()
    if a.quick:
        a.n, a.seeds, settings.epochs, a.judge_n = 64, 2, 2, min(a.judge_n, 8)
    out = a.out or (None if a.quick else RESULTS / "glasses_realism.json")
    return run_protocol("glasses_realism", lambda: run(a.n, a.seeds, a.arms, settings, a.judge_n, Path(a.data)), format_table, out)


if __name__ == "__main__":
    main()
