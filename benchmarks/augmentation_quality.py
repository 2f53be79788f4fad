"""How good are a bundle's augmentations? Reconstruction, identity, attribute control, realism.

    python benchmarks/augmentation_quality.py                         # default bundle, 512 faces
    python benchmarks/augmentation_quality.py --bundle PATH --n 256 --out quality.json

On held-out faces of people the generator never saw (celeba_id200, ``test`` then ``val`` split,
CelebA box 35,55,143,163, resized to the model size) it measures, with the project's evaluators
(``genaug.faces.metrics``; ``--identity-weights`` / ``--attribute-weights`` to use others):

- reconstruction: MS-SSIM score and PSNR of the inversion;
- identity by the identity judge (``--judge``, default ``auto``: dlib's face descriptor when
  ``genaug[faces]`` is installed, else the project's embedder; see ``genaug.faces.identity``): same-person
  rate and mean distance photo <-> reconstruction and photo <-> edit for every value of every code,
  next to two real photos of the same person and two different people; every number names its judge;
- identity similarity (cosine of the project's identity embeddings) for the same pairs;
- attribute change per code: P(attribute) for each value of the code; for a code bound to an
  attribute (e.g. smile -> Smiling) the spread of P(bound attribute) across its values, and the
  mean |change| of all other attributes (should stay small);
- edit size: mean |pixel change| and identity cosine of genaug's random edits, of the classical
  pipeline of ``benchmarks/faces.py`` and of another real photo of the same person;
- Fréchet distance on identity features (realism): real vs random samples G(z, c), real vs
  reconstructions and real vs random edits, with
  the real-vs-real floor (two disjoint halves of the real set).

Prints a table and JSON (``--out`` writes it). About 2-6 min at ``--n 512`` on 2 CPU cores,
mostly inversion (``--refine-steps``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.report import emit  # noqa: E402
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from genaug.faces.identity import EmbedderJudge, IdentityJudge, get_judge
from genaug.faces.metrics import (attribute_names, attribute_probabilities, compute, extract_features, frechet_with_floor, identity_similarity, resolve_feature_net)
from genaug.engine.edits import Edit, code_values
from genaug.training.data import load_identity_folder

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba_id200"


def held_out_faces(folder: str | Path, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``n`` faces (uint8 NCHW 64x64) and identity labels: test split first, then val, then the rest."""
    data = load_identity_folder(folder, 64)
    g = torch.Generator().manual_seed(seed)
    order = []
    for split in ("test", "val", "train") if data.splits is not None else (None,):
        idx = data.where(split) if split else torch.arange(len(data.labels))
        order.append(idx[torch.randperm(len(idx), generator=g)])
    idx = torch.cat(order)[:n]
    return data.images[idx], data.labels[idx]


def to_model(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    x = images.float().div(127.5).sub(1)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)
    if channels == 1:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)).sum(1, keepdim=True)
    return x.clamp(-1, 1)


def judge_stats(judge: IdentityJudge, a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Same-person rate, mean distance and near-duplicate rate (distance < 0.1) of paired embeddings."""
    d = judge.distance(a, b)
    return {"same_person_rate": round(float(judge.same_person(a, b).float().mean()), 4),
            "mean_distance": round(float(d.mean()), 4), "near_duplicate_rate": round(float((d < 0.1).float().mean()), 4)}


def make_judge(name: str, identity_weights: str | None) -> IdentityJudge:
    """The identity judge by name; ``embedder`` with ``--identity-weights`` uses those weights."""
    if name == "embedder" and identity_weights:
        from genaug.faces.identity import EMBEDDER_THRESHOLD

        return EmbedderJudge(resolve_feature_net(identity_weights, "identity"), "embedder", EMBEDDER_THRESHOLD)
    return get_judge(name)


def judge_baselines(judge: IdentityJudge, emb: torch.Tensor, labels: torch.Tensor) -> dict[str, dict]:
    """Judge statistics of two real photos of the same person and of two different people."""
    i, j = torch.triu_indices(len(labels), len(labels), 1)
    same = labels[i] == labels[j]
    out = {"different_people": {**judge_stats(judge, emb[i[~same]], emb[j[~same]]), "pairs": int((~same).sum())}}
    if same.any():
        out["other_photo_same_person"] = {**judge_stats(judge, emb[i[same]], emb[j[same]]), "pairs": int(same.sum())}
    return out


def edit_size(x: torch.Tensor, aug: torch.Tensor, images: torch.Tensor, labels: torch.Tensor, emb_net, seed: int,
              judge: IdentityJudge | None = None, emb_x: torch.Tensor | None = None) -> dict:
    """How far augmentations move a face: mean |pixel change| (0..255) and identity cosine, for
    genaug's random edits, the classical pipeline of benchmarks/faces.py, and another
    real photo of the same person (the variation a recogniser has to learn)."""
    from benchmarks.faces import classical_pipeline

    pipe = classical_pipeline(seed)
    classical = torch.stack([torch.from_numpy(pipe(image=a)["image"]).permute(2, 0, 1) for a in images.permute(0, 2, 3, 1).numpy()])
    classical = to_model(classical, x.shape[-1], x.shape[1])

    def size(a: torch.Tensor, b: torch.Tensor, ea: torch.Tensor | None = None, eb: torch.Tensor | None = None) -> dict:
        res = {"abs_change_255": round(float((a - b).abs().mean() * 127.5), 2),
               "identity_similarity": round(float(identity_similarity(a, b, emb_net).mean()), 4)}
        if judge is not None:
            ea = judge.embed(a) if ea is None else ea
            res[judge.name] = judge_stats(judge, ea, judge.embed(b) if eb is None else eb)
        return res

    out = {"genaug_random_edits": size(x, aug, emb_x), "classical_pipeline": size(x, classical, emb_x)}
    i, j = torch.triu_indices(len(labels), len(labels), 1)
    same = labels[i] == labels[j]
    if same.any():
        e = (emb_x[i[same]], emb_x[j[same]]) if emb_x is not None else (None, None)
        out["other_photo_same_person"] = {**size(x[i[same]], x[j[same]], *e), "pairs": int(same.sum())}
    return out


def same_person_baselines(x: torch.Tensor, labels: torch.Tensor, emb_net) -> dict[str, float]:
    e = F.normalize(extract_features(emb_net, x), dim=1)
    sim = e @ e.t()
    same = labels[:, None] == labels[None, :]
    off = ~torch.eye(len(labels), dtype=torch.bool)
    out = {"different_people": float(sim[~same].mean())}
    if (same & off).any():
        out["same_person"] = float(sim[same & off].mean())
    return out


def run(bundle: str, folder: str | Path, n: int, refine_steps: int, device: str, strength: float, seed: int,
        identity_weights: str | None, attribute_weights: str | None, continuous_values: int = 3,
        judge_name: str = "auto") -> dict:
    from genaug import Engine

    t0 = time.time()
    engine = Engine(bundle, device=device, refine_steps=refine_steps, strength=strength, seed=seed)
    spec = engine.spec
    emb_net = resolve_feature_net(identity_weights, "identity")
    judge = make_judge(judge_name, identity_weights)
    attr_net = resolve_feature_net(attribute_weights, "attributes")
    names = attribute_names(attr_net)
    images, labels = held_out_faces(folder, n, seed)
    x = to_model(images, engine.image_size, engine.channels)
    inv = engine.invert(x)
    recon = inv.recon.cpu()
    rec = compute("reconstruction", original=x, reconstructed=recon)
    report: dict = {
        "benchmark": "augmentation_quality", "bundle": engine.bundle.name, "bundle_identity": engine.bundle.identity,
        "n": len(x), "refine_steps": engine.refine_steps, "strength": strength, "seed": seed,
        "reconstruction": {"score": round(rec["score_mean"], 4), "psnr": round(rec["psnr_mean"], 2)},
        "identity": {"reconstruction": round(identity_similarity(x, recon, emb_net).mean().item(), 4),
                     **{k: round(v, 4) for k, v in same_person_baselines(x, labels, emb_net).items()}},
        "codes": {},
    }
    emb_x = judge.embed(x)
    report["identity_judge"] = {"judge": judge.name, "threshold": judge.threshold, "description": judge.describe(),
                                "reconstruction": judge_stats(judge, emb_x, judge.embed(recon)),
                                **judge_baselines(judge, emb_x, labels)}
    p_orig = attribute_probabilities(x, attr_net)
    for ci, code in enumerate(spec.codes):
        cat = spec.is_categorical(ci)
        values = code_values(spec, ci, "all" if cat else continuous_values)
        per_value = []
        bound = code.attribute if code.attribute in names else None
        for v in values:
            out, info = engine.augment_tensor(x, edits=[Edit(ci, v)] * len(x))
            out = out.cpu()
            sim = identity_similarity(x, out, emb_net)
            p = attribute_probabilities(out, attr_net)
            d = (p - p_orig).abs().mean(0)
            others = [i for i, a in enumerate(names) if a != bound]
            row = {"value": v, "identity_similarity": round(sim.mean().item(), 4),
                   "identity_similarity_p10": round(sim.quantile(0.1).item(), 4),
                   "other_attributes_abs_change": round(d[others].mean().item(), 4),
                   judge.name: judge_stats(judge, emb_x, judge.embed(out))}
            if bound:
                row[f"P({bound})"] = round(p[:, names.index(bound)].mean().item(), 4)
            per_value.append(row)
        entry: dict = {"kind": "categorical" if cat else "continuous", "attribute": code.attribute, "values": per_value}
        if bound:
            ps = [r[f"P({bound})"] for r in per_value]
            entry["bound_attribute_spread"] = round(max(ps) - min(ps), 4)
            entry["bound_attribute_original"] = round(p_orig[:, names.index(bound)].mean().item(), 4)
        report["codes"][code.name] = entry
    aug, _ = engine.augment_tensor(x, generator=torch.Generator().manual_seed(seed))
    real_f = extract_features(emb_net, x)
    def fd(images: torch.Tensor) -> dict:
        res = frechet_with_floor(real_f, extract_features(emb_net, images), seed)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}

    report["frechet_identity_features"] = {"reconstruction": fd(recon), "random_edits": fd(aug.cpu())}
    if engine.bundle.can_sample:  # the edit kind has no prior to draw random faces from
        samples = engine.generate(spec.sample(len(x), generator=torch.Generator().manual_seed(seed + 1))).cpu()
        report["frechet_identity_features"]["random_samples"] = fd(samples)
    report["edit_size"] = edit_size(x, aug.cpu(), images, labels, emb_net, seed, judge, emb_x)
    report["wall_s"] = round(time.time() - t0, 1)
    return report


def format_table(r: dict) -> str:
    lines = [f"augmentation quality of bundle {r['bundle']} ({r['bundle_identity']}) on {r['n']} held-out faces",
             f"reconstruction: MS-SSIM {r['reconstruction']['score']:.3f}, PSNR {r['reconstruction']['psnr']:.2f} dB",
             "identity cosine (project embedder): " + ", ".join(f"{k} {v:.3f}" for k, v in r["identity"].items())]
    jd = r.get("identity_judge")
    jn = jd["judge"] if jd else None
    if jd:
        lines.append(f"identity judge {jd['description']}: same-person rate / mean distance")
        for k in ("reconstruction", "other_photo_same_person", "different_people"):
            if k in jd:
                lines.append(f"  photo vs {k:24s} {jd[k]['same_person_rate']:6.3f} / {jd[k]['mean_distance']:.3f}")
    lines.append(f"{'code':14s}{'value':>8s}  {'id sim':>7s}  {'id p10':>7s}  {'P(bound)':>9s}  {'others |dP|':>11s}"
                 + (f"  {jn + ' same':>12s}  {jn + ' dist':>12s}" if jn else ""))
    for name, c in r["codes"].items():
        for v in c["values"]:
            pb = next((val for k, val in v.items() if k.startswith("P(")), None)
            js = f"  {v[jn]['same_person_rate']:12.3f}  {v[jn]['mean_distance']:12.3f}" if jn and jn in v else ""
            lines.append(f"{name:14s}{v['value']:8.2f}  {v['identity_similarity']:7.3f}  {v['identity_similarity_p10']:7.3f}  "
                         f"{'-' if pb is None else f'{pb:.3f}':>9s}  {v['other_attributes_abs_change']:11.4f}{js}")
        if "bound_attribute_spread" in c:
            lines.append(f"{'':14s}-> {c['attribute']}: spread {c['bound_attribute_spread']:.3f} (originals {c['bound_attribute_original']:.3f})")
    for k, v in r["frechet_identity_features"].items():
        lines.append(f"Fréchet distance (identity features), real vs {k}: {v['fd']:.4f} (real-vs-real floor {v['floor']:.4f}, n={v['n']})")
    for k, v in r.get("edit_size", {}).items():
        j = (f", {jn} distance {v[jn]['mean_distance']:.3f} (same person {v[jn]['same_person_rate']:.3f}, "
             f"under 0.1: {v[jn]['near_duplicate_rate']:.3f})") if jn and jn in v else ""
        lines.append(f"edit size, {k}: mean |pixel change| {v['abs_change_255']:.1f}/255, identity cosine {v['identity_similarity']:.3f}{j}")
    lines.append(f"wall-clock {r['wall_s']:.0f}s")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default="default")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="ImageFolder of held-out people (default: celeba_id200)")
    p.add_argument("--n", type=int, default=512, help="number of held-out faces")
    p.add_argument("--refine-steps", type=int, default=None, help="inversion refinement (default: the bundle's own default)")
    p.add_argument("--strength", type=float, default=1.0)
    p.add_argument("--continuous-values", type=int, default=3, help="values swept per continuous code")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--identity-weights", default=None, help="identity evaluator (default: shipped)")
    p.add_argument("--attribute-weights", default=None, help="attribute evaluator (default: shipped)")
    p.add_argument("--judge", default=None, choices=("auto", "dlib", "student", "embedder"),
                   help="identity judge (genaug.faces.identity): auto = dlib when genaug[faces] is installed, else the "
                        "project's embedder (default auto; --quick: embedder)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--quick", action="store_true", help="smoke test: n=16, 1 refinement step, embedder judge")
    return p


def main(argv: list[str] | None = None) -> dict:
    a = build_parser().parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.quick:
        a.n, a.refine_steps, a.continuous_values = min(a.n, 16), 1, 2
    judge = a.judge or ("embedder" if a.quick else "auto")
    r = run(a.bundle, a.data, a.n, a.refine_steps, a.device, a.strength, a.seed, a.identity_weights,
            a.attribute_weights, a.continuous_values, judge)
    emit(r, format_table(r), a.out)
    return r


if __name__ == "__main__":
    main()
