"""The one way every benchmark ends: print its table, then write (``--out``) or print its JSON;
where results go by default, and how a protocol whose inputs are missing skips."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

RESULTS = Path(__file__).resolve().parent / "results"


def emit(report: dict[str, Any], table: str, out: str | Path | None) -> None:
    print(table)
    text = json.dumps(report, indent=1)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
        print(f"wrote {out}")
    else:
        print(text)


def bundle_name(bundle: str) -> str:
    """The bundle's configured name (file-name safe), read without loading weights."""
    from genaug.bundle import read_config

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(read_config(bundle).get("name") or Path(bundle).name))


def default_out(protocol: str, bundle: str, quick: bool) -> Path | None:
    """``benchmarks/results/<protocol>_<bundle name>.json`` for full runs; quick runs print only."""
    return None if quick else RESULTS / f"{protocol}_{bundle_name(bundle)}.json"


def skip(protocol: str, reason: str, out: str | Path | None) -> dict[str, Any]:
    """Report (and write) that ``protocol`` did not run and why."""
    report = {"benchmark": protocol, "skipped": reason}
    emit(report, f"{protocol}: skipped: {reason}", out)
    return report


def run_protocol(protocol: str, run: Callable[[], dict[str, Any]], format_table: Callable[[dict], str],
                 out: str | Path | None) -> dict[str, Any]:
    """Run a protocol: its report printed as a table and written to ``out`` as JSON, or a skip
    report naming the reason when its faces are missing (:class:`benchmarks.faces.MissingInput`)."""
    from benchmarks.faces import MissingInput

    try:
        report = run()
    except MissingInput as e:
        return skip(protocol, str(e), out)
    emit(report, format_table(report), out)
    return report
