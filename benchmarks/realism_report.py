"""The realism report's tables and the merge of per-set runs (``benchmarks/realism.py``)."""
from __future__ import annotations

import json
from pathlib import Path

from benchmarks.stats import paired_difference


def judged(entry: dict) -> dict[str, dict]:
    """An arm's result per judge: ``{None: the first judge's}`` plus its ``judges``."""
    return {None: entry, **entry.get("judges", {})}


def paired_to_classical(arms: dict) -> dict:
    """``genaug - classical`` and ``few_shot - classical`` per seed, for every judge (others' keys end ``[judge]``)."""
    out = {}
    for a in ("genaug", "few_shot"):
        if a not in arms or "classical" not in arms:
            continue
        theirs = judged(arms["classical"])
        for d, e in judged(arms[a]).items():
            if d in theirs and e["n"] == theirs[d]["n"]:
                out[f"{a} - classical" + (f" [{d}]" if d else "")] = paired_difference(
                    [r["auc"] for r in e["runs"]], [r["auc"] for r in theirs[d]["runs"]])
    return out


def format_table(report: dict) -> str:
    cfg, d = report["config"], report["config"]["detector"]
    if list(cfg.get("detectors", ["cnn"])) != ["cnn"]:  # another judge than the CNN, or several
        return judges_table(report)
    lines = [f"realism: classifier two-sample test, ROC AUC of a CNN telling real from augmented photos of other people "
             f"(0.5 = indistinguishable), mean [95 % CI] over seeds; detector widths {d['widths']}, {d['epochs']} epochs; "
             f"genaug kwargs {cfg['genaug_kwargs'] or 'defaults'} (p=1)",
             "| set | arm | AUC | 95 % CI | seeds | test photos (real+aug) |", "| --- | --- | --- | --- | --- | --- |"]
    for name, r in report["results"].items():
        for arm, a in r["arms"].items():
            ci = "-" if a["ci95_low"] is None else f"[{a['ci95_low']:.3f}, {a['ci95_high']:.3f}]"
            lines.append(f"| {name} | {arm} | {a['mean']:.3f} | {ci} | {a['n']} | {sum(a['runs'][0]['test'])} |")
        for k, v in r["paired_differences"].items():
            ci = "-" if v["ci95_low"] is None else f"[{v['ci95_low']:+.3f}, {v['ci95_high']:+.3f}]"
            lines.append(f"| {name} | {k} (paired) | {v['mean']:+.3f} | {ci} | {v['n']} | |")
    lines.append(f"wall-clock {report['wall_s']:.0f}s, CPU {report['cpu_s']:.0f}s"
                 + (f"; PARTIAL (stopped early): {report['partial']}" if report.get("partial") else ""))
    return "\n".join(lines)


def judges_table(report: dict) -> str:
    """One column per judge: AUC mean [95 % CI]."""
    cfg = report["config"]
    dets = cfg["detectors"]
    lines = [f"realism, judges {', '.join(dets)}: ROC AUC telling real from augmented photos of other people (0.5 = "
             f"indistinguishable), mean [95 % CI] over seeds; cnn / residual widths {cfg['detector']['widths']}, "
             f"{cfg['detector']['epochs']} epochs (wide: twice both){'; face box at its own size' if cfg.get('native') else ''}; genaug "
             f"kwargs {cfg['genaug_kwargs'] or 'defaults'} (p=1)",
             "| set | arm | seeds | " + " | ".join(dets) + " |", "| --- | --- | --- |" + " --- |" * len(dets)]
    for name, r in report["results"].items():
        for arm, a in r["arms"].items():
            cells = []
            for d in dets:
                e = a if d == dets[0] else a.get("judges", {}).get(d)
                cells.append("-" if e is None else f"{e['mean']:.3f}" + (
                    "" if e["ci95_low"] is None else f" [{e['ci95_low']:.2f}, {e['ci95_high']:.2f}]"))
            lines.append(f"| {name} ({r['detector_px']} px) | {arm} | {a['n']} | " + " | ".join(cells) + " |")
        for k, v in r["paired_differences"].items():  # (each judge's own, named "... [judge]" but the first's)
            ci = "" if v["ci95_low"] is None else f" [{v['ci95_low']:+.2f}, {v['ci95_high']:+.2f}]"
            lines.append(f"| {name} | {k} (paired) | {v['n']} | {v['mean']:+.3f}{ci} |" + " |" * (len(dets) - 1))
    lines.append(f"wall-clock {report['wall_s']:.0f}s, CPU {report['cpu_s']:.0f}s"
                 + (f"; PARTIAL (stopped early): {report['partial']}" if report.get("partial") else ""))
    return "\n".join(lines)


def merge(paths: list[str]) -> dict:
    """One report from runs of the same settings on different sets or arms (one process each)."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    same = ("seeds", "code_seeds", "n", "bundle", "genaug_kwargs", "detector", "reference", "detectors", "native")
    before = {"reference": "pool", "detectors": ["cnn"], "native": False}  # reports made before these settings
    setting = lambda r, k: r["config"].get(k, before.get(k))  # noqa: E731
    for p, r in zip(paths, reports):
        if any(setting(r, k) != setting(reports[0], k) for k in same):
            raise ValueError(f"{p} was run with other settings ({same}) than {paths[0]}: cannot merge")
    results: dict[str, dict] = {}
    for r in reports:
        for name, res in r["results"].items():
            into = results.setdefault(name, {**res, "arms": {}, "paired_differences": {}})
            into["arms"].update(res["arms"])
            into["paired_differences"].update(res["paired_differences"])
    for res in results.values():  # pairs across processes: every arm of a set saw the same deals
        res["paired_differences"].update(paired_to_classical(res["arms"]))
    arms = list(dict.fromkeys(a for res in results.values() for a in res["arms"]))
    config = {**reports[0]["config"], "sets": list(results), "arms": arms}
    out = {"benchmark": "realism", "config": config, "arms": arms, "results": results, "merged_from": paths,
           "wall_s": max(r.get("wall_s", 0) for r in reports), "cpu_s": round(sum(r.get("cpu_s", 0) for r in reports), 1)}
    if any(r.get("partial") for r in reports):  # a run stopped early (<out>.partial): say so
        out["partial"] = [p for p, r in zip(paths, reports) if r.get("partial")]
    return out
