"""Hyper-parameter grids: ``python -m genaug.training.grid DATA OUT --grid "adv_loss=ns,hinge"
--grid "lambda_info=0.5,1" --steps 200 [any training option]``.

Every combination of the grids runs in turn into ``OUT/<run-name>`` (a run's name lists its grid
settings, e.g. ``adv_loss-hinge_lambda_info-0.5``) with the other options shared. Re-running the
same command skips finished runs (those with ``metrics.json``) and resumes an interrupted one from
its checkpoint. Results go to ``OUT/results.jsonl`` (one JSON line per run: name, settings,
status, final metrics) and a table is printed.

Exit status, as ``genaug train``'s: 0 every run done; 1 a run failed (or the grid could not start); 2 a usage error
(a bad --grid or option value); 130 Ctrl-C (the run's checkpoint saved: the same command resumes). SIGTERM stops the
grid as Ctrl-C does, with status 0 (a scheduler's stop, checkpointed as asked).
"""
from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genaug.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, plain_doc, run_guarded, stop_status
from genaug.io import write_text_atomic

from .cli import build_parser
from .config import TrainConfig, option_fields
from .loop import Trainer

_TYPES = {name: typ if isinstance(typ, str) else typ.__name__ for name, typ, _ in option_fields()}
FIXED = ("data", "out")  # set by the grid itself
PROG = "python -m genaug.training.grid"


def _cast(key: str, text: str) -> Any:
    kind = _TYPES[key]
    if kind == "bool":
        if text.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ValueError(f"--grid {key}: {text!r} is not a boolean")
        return text.lower() in ("1", "true", "yes", "on")
    return {"int": int, "float": float}.get(kind, str)(text)


def parse_grid(spec: str) -> tuple[str, list[Any]]:
    """``"key=v1,v2"`` -> (key, [typed values]). Values with commas of their own (``diffaug``,
    ``categorical``) separate alternatives with ``|`` instead: ``diffaug=color,cutout|translation``."""
    key, sep, values = spec.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not values.strip():
        raise ValueError(f"--grid {spec!r}: expected KEY=V1,V2,...")
    if key not in _TYPES or key in FIXED:
        raise ValueError(f"--grid {spec!r}: unknown training option {key!r} (see python -m genaug.training --help)")
    parts = values.split("|") if "|" in values else values.split(",")
    try:
        return key, [_cast(key, p.strip()) for p in parts]
    except ValueError as e:
        raise ValueError(f"--grid {spec!r}: {e}") from None


def run_name(settings: dict[str, Any]) -> str:
    """A folder name for one combination, e.g. ``adv_loss-hinge_lambda_info-0.5``."""
    name = "_".join(f"{k}-{v}" for k, v in settings.items()) or "base"
    return re.sub(r"[^A-Za-z0-9._+-]+", "+", name)


@dataclass
class RunResult:
    name: str
    settings: dict[str, Any]
    status: str  # "done" (ran now), "skipped" (finished before), "failed" or "interrupted"
    out: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    stopped_by: str | None = None  # an interrupted run's signal: "SIGINT" (Ctrl-C) or "SIGTERM"


def combinations(grids: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    keys = [k for k, _ in grids]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a key appears in more than one --grid: {keys}")
    return [dict(zip(keys, vals)) for vals in itertools.product(*(v for _, v in grids))]


def run_grid(base: TrainConfig, grids: list[tuple[str, list[Any]]], keep_going: bool = True) -> list[RunResult]:
    """Run every combination of ``grids`` over ``base`` (``base.out`` is the grid folder)."""
    root = Path(base.out)
    root.mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    combos = combinations(grids)
    for i, settings in enumerate(combos, 1):
        name = run_name(settings)
        out = root / name
        metrics_file = out / "metrics.json"
        print(f"[{i}/{len(combos)}] {name}", flush=True)
        if metrics_file.exists() and (out / "bundle" / "config.json").exists():
            results.append(RunResult(name, settings, "skipped", str(out), json.loads(metrics_file.read_text())))
        else:
            try:
                trainer = Trainer(base.replace(out=str(out), name=f"{base.name}-{name}", **settings))
                if trainer.train() is None:  # stopped by a signal (checkpoint saved): the grid stops too, the same command resumes
                    results.append(RunResult(name, settings, "interrupted", str(out), stopped_by=trainer.runner.stopped_by))
                    write_results(root / "results.jsonl", results)
                    print(f"grid interrupted at {name}: the same command resumes it", flush=True)
                    return results
                results.append(RunResult(name, settings, "done", str(out), json.loads(metrics_file.read_text())))
            except Exception as e:  # noqa: BLE001 - one bad combination must not stop the grid
                if not keep_going:
                    raise
                traceback.print_exc()
                results.append(RunResult(name, settings, "failed", str(out), error=f"{type(e).__name__}: {e}"))
        write_results(root / "results.jsonl", results)
    return results


def write_results(path: Path, results: list[RunResult]) -> None:
    write_text_atomic(path, "".join(json.dumps(r.__dict__) + "\n" for r in results))


def format_table(results: list[RunResult]) -> str:
    """A plain-text table: run, status and every metric (4 significant digits)."""
    metric_keys = sorted({k for r in results for k in r.metrics}, key=lambda k: (not k.startswith("q_acc"), k))
    head = ["run", "status", *metric_keys]
    rows = [[r.name, r.status, *(f"{r.metrics[k]:.4g}" if k in r.metrics else "-" for k in metric_keys)] for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


def build_grid_parser() -> argparse.ArgumentParser:
    p = build_parser(argparse.ArgumentParser(prog=PROG, description=plain_doc(__doc__.split("\n\n")[0])))
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a training option and its values to try (repeatable; the grids multiply)")
    p.add_argument("--stop-on-error", action="store_true", help="stop at the first failed run (default: record it and go on)")
    return p


def main(argv: list[str] | None = None) -> int:
    """The exit status of the module docs: a bad --grid or option value is one line on stderr and 2 (before any run
    starts); a grid folder that cannot be made, one line and 1; Ctrl-C, one line (outside a run's steps) and 130."""
    args = vars(build_grid_parser().parse_args(argv))
    stop = args.pop("stop_on_error")
    try:
        grids = [parse_grid(g) for g in args.pop("grid")]
        base = TrainConfig.from_flat(**args)
        combinations(grids)
    except ValueError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USAGE

    def run(_: None) -> int:
        results = run_grid(base, grids, keep_going=not stop)
        print(format_table(results))
        print(f"results: {Path(args['out']) / 'results.jsonl'}")
        stopped_by = results[-1].stopped_by if results else None  # (only the last run can be interrupted)
        return stop_status(stopped_by) or (EXIT_FAILED if any(r.status == "failed" for r in results) else EXIT_OK)

    try:
        return run_guarded(PROG, run, None)
    except KeyboardInterrupt:  # outside a run's steps (its faces loading, say): one line, not a traceback
        print(f"{PROG}: interrupted (finished runs are kept: the same command resumes)", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
