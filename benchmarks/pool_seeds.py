"""Join runs of one recogniser protocol made with different seeds into one report.

    python benchmarks/few_shot.py --seeds 3 --first-seed 3 --out more.json   # seeds 3..5, later
    python benchmarks/pool_seeds.py benchmarks/results/few_shot_x.json more.json --out pooled.json
    python benchmarks/pool_seeds.py old.json:classical new.json --out pooled.json   # only old.json's classical arm

Every input must be the same protocol (``few_shot`` or ``open_set``) with the same configuration apart from
its seeds and arms. Per arm and group (k, or verification set) the runs are joined by seed; a seed present in two
files must have identical scores there (the classical arms are bit-identical per seed across code versions), else
the files do not describe the same runs and nothing is written. Means, stds and the paired per-seed differences
(benchmarks/stats.py) are recomputed over the joined seeds; the paired differences use only seeds both arms ran.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import emit  # noqa: E402
from stats import format_difference, mean_std, paired_difference  # noqa: E402

PROTOCOLS = ("few_shot", "open_set")
PAIRS = (("classical+genaug", "classical"), ("classical+genaug-pair", "classical"), ("classical", "none"), ("genaug", "none"))
VARYING = ("seeds", "first_seed", "arms")  # what may differ between the runs joined
FOLDERS = ("data", "train_data", "verify_data", "pairs", "pairs_root")  # compared by name (runs from other checkouts)


def _setup(config: dict) -> dict:
    return {k: Path(v).name if k in FOLDERS and v else v for k, v in config.items() if k not in VARYING}


def _same_setup(configs: list[dict]) -> None:
    ref = _setup(configs[0])
    for i, c in enumerate(configs[1:], 1):
        other = _setup(c)
        diff = sorted(k for k in ref.keys() | other.keys() if ref.get(k) != other.get(k))
        if diff:
            raise ValueError(f"run {i} differs from run 0 in {diff}: only seeds and arms may differ")


def _metrics(run: dict) -> list[str]:
    return [k for k, v in run.items() if k not in ("seed", "train_s") and isinstance(v, (int, float))]


def pool(reports: list[dict]) -> dict:
    """One report from several of the same protocol (see the module's docstring)."""
    if not reports:
        raise ValueError("nothing to pool")
    kinds = {r.get("benchmark") for r in reports}
    if len(kinds) != 1 or next(iter(kinds)) not in PROTOCOLS:
        raise ValueError(f"reports must all be one of {PROTOCOLS}, got {sorted(map(str, kinds))}")
    _same_setup([r["config"] for r in reports])
    runs: dict[str, dict[str, dict[int, dict]]] = {}
    for r in reports:
        for arm, groups in r["results"].items():
            for group, res in groups.items():
                have = runs.setdefault(arm, {}).setdefault(group, {})
                for run in res["runs"]:
                    old = have.get(run["seed"])
                    if old is not None and any(old[m] != run[m] for m in _metrics(run)):
                        raise ValueError(f"{arm} / {group} seed {run['seed']} differs between the files: not the same runs")
                    have[run["seed"]] = run
    results = {arm: {g: {"runs": [by_seed[s] for s in sorted(by_seed)]} for g, by_seed in groups.items()}
               for arm, groups in runs.items()}
    for groups in results.values():
        for res in groups.values():
            res.update({m: mean_std([r[m] for r in res["runs"]]) for m in _metrics(res["runs"][0])})
    diffs = {}
    for a, b in PAIRS:
        if a not in runs or b not in runs:
            continue
        diffs[f"{a} - {b}"] = per_group = {}
        for g in runs[a]:
            seeds = sorted(set(runs[a][g]) & set(runs[b].get(g, {})))
            if seeds:
                per_group[g] = {m: paired_difference([runs[a][g][s][m] for s in seeds], [runs[b][g][s][m] for s in seeds])
                                for m in _metrics(runs[a][g][seeds[0]])}
    seeds = sorted({s for groups in runs.values() for by_seed in groups.values() for s in by_seed})
    return {"benchmark": reports[0]["benchmark"], "pooled": True, "seeds": seeds, "config": reports[0]["config"],
            "results": results, "paired_differences": diffs}


def format_table(report: dict) -> str:
    lines = [f"{report['benchmark']}, pooled over seeds {report['seeds']}", "| difference | group | metric | points ± std [95 % CI] | n |",
             "| --- | --- | --- | --- | --- |"]
    for name, groups in report["paired_differences"].items():
        for g, per_metric in groups.items():
            for m, d in per_metric.items():
                scale = 1.0 if m == "auc" else 100.0
                lines.append(f"| {name} | {g} | {m} | {format_difference(d, scale=scale, digits=3 if m == 'auc' else 1)} | {d['n']} |")
    return "\n".join(lines)


def read_report(spec: str) -> dict:
    """A report from ``PATH`` or ``PATH:ARM,ARM`` (only those arms of it; a PATH that exists as given is read whole)."""
    path, arms = (spec, None) if Path(spec).exists() or ":" not in spec else spec.rsplit(":", 1)
    report = json.loads(Path(path).read_text())
    if arms is not None:
        keep = arms.split(",")
        missing = sorted(set(keep) - set(report["results"]))
        if missing:
            raise ValueError(f"{path} has no arm(s) {missing}; it has {sorted(report['results'])}")
        report["results"] = {k: v for k, v in report["results"].items() if k in keep}
    return report


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reports", nargs="+", help="JSON reports of one protocol; REPORT:ARM,ARM takes only those arms of it "
                   "(e.g. the classical arm of a run whose genaug arm a code change has since replaced)")
    p.add_argument("--out", type=Path, default=None, help="write the pooled JSON here (else print it)")
    a = p.parse_args(argv)
    report = pool([read_report(r) for r in a.reports])
    emit(report, format_table(report), a.out)
    return report


if __name__ == "__main__":
    main()
