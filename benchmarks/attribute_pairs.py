"""How much does an attribute itself move the identity judge? The yardstick for an edit's identity cost.

    python benchmarks/attribute_pairs.py                                   # celeba_id200, every photo
    python benchmarks/attribute_pairs.py --data DIR --attributes Eyeglasses Smiling --out pairs.json

For every pair of *real* photos of the same person (any ImageFolder of people with an
``attributes.csv`` of -1/+1 columns), the identity judge's distance, split by attribute: pairs
where one photo has the attribute and the other does not ("across"), against pairs where neither
has it ("without"). The share of pairs the judge still calls the same person in each group shows
what the attribute alone costs the judge — e.g. how often dlib separates a person from themselves
with glasses on — so that an edit's same-person rate can be read against reality: an edit that
adds glasses and keeps the person on 90 % of faces does better than real glasses do if "across"
is lower. No model is involved; the judge is ``genaug.faces.identity.get_judge()`` (dlib's descriptor
with ``genaug[faces]``), else the project's embedder.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
from benchmarks.faces import ID200, MissingInput, identity_judge, load_people, read_attributes, to_unit  # noqa: E402
from benchmarks.report import emit, skip  # noqa: E402

DEFAULT_ATTRIBUTES = ("Eyeglasses", "Smiling", "Mouth_Slightly_Open", "Bangs")


def group_stats(d: torch.Tensor, threshold: float) -> dict:
    return {"pairs": int(d.numel()), "same_person_rate": float((d < threshold).float().mean()) if d.numel() else None,
            "distance_mean": float(d.mean()) if d.numel() else None}


def measure(emb: torch.Tensor, labels: torch.Tensor, attrs: dict[str, torch.Tensor], names: list[str], judge,
            threshold: float) -> dict:
    """Per attribute, same-person pair statistics across / without it."""
    i, j = torch.triu_indices(len(labels), len(labels), 1)
    keep = labels[i] == labels[j]
    i, j = i[keep], j[keep]
    d = judge.distance(emb[i], emb[j]) if len(i) else torch.zeros(0)
    out = {}
    for name in names:
        if name not in attrs:
            out[name] = {"skipped": f"{name} is not a column of attributes.csv"}
            continue
        a = attrs[name]
        across, without = a[i] != a[j], ~a[i] & ~a[j]
        out[name] = {"across": group_stats(d[across], threshold), "without": group_stats(d[without], threshold)}
    out["all"] = group_stats(d, threshold)
    return out


def format_table(r: dict) -> str:
    lines = [f"same-person pairs of real photos in {r['data']} ({r['photos']} photos, judge {r['judge']}, same person below "
             f"{r['threshold']:g})", "| attribute | pairs across | same person across | distance across | pairs without | "
             "same person without | distance without |", "| --- | --- | --- | --- | --- | --- | --- |"]
    pct = lambda v: "-" if v is None else f"{100 * v:.1f} %"  # noqa: E731
    num = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for name, g in r["attributes"].items():
        if name == "all" or "skipped" in g:
            continue
        a, w = g["across"], g["without"]
        lines.append(f"| {name} | {a['pairs']} | {pct(a['same_person_rate'])} | {num(a['distance_mean'])} | {w['pairs']} | "
                     f"{pct(w['same_person_rate'])} | {num(w['distance_mean'])} |")
    lines += [f"{n}: skipped ({g['skipped']})" for n, g in r["attributes"].items() if "skipped" in g]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ID200), help="ImageFolder of people with attributes.csv (default celeba_id200)")
    p.add_argument("--attributes", nargs="+", default=list(DEFAULT_ATTRIBUTES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON path (default: print it)")
    p.add_argument("--quick", action="store_true", help="smoke test: the first 40 photos")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.time()
    try:
        data = load_people(a.data)
    except MissingInput as e:
        return skip("attribute_pairs", str(e), a.out)
    attrs = read_attributes(a.data, data.paths)
    if attrs is None:
        return skip("attribute_pairs", f"{Path(a.data) / 'attributes.csv'} is missing", a.out)
    n = min(40, len(data.labels)) if a.quick else len(data.labels)
    judge = identity_judge(a.device)
    threshold = float(getattr(judge, "threshold", 0.5))  # the project's embedder: cosine distance 0.5
    x = to_unit(data.images[:n])
    emb = torch.cat([judge.embed(x[s:s + 256]) for s in range(0, n, 256)])
    r = {"benchmark": "attribute_pairs", "data": str(a.data), "photos": n, "judge": judge.name, "threshold": threshold,
         "attributes": measure(emb, data.labels[:n], {k: v[:n] for k, v in attrs.items()}, a.attributes, judge, threshold)}
    r["wall_s"] = round(time.time() - t0, 1)
    emit(r, format_table(r), a.out)
    return r


if __name__ == "__main__":
    main()
