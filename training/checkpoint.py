"""A run folder's resumable state, shared by every training run (:mod:`genaug.training.loop`,
:mod:`genaug.training.edit_loop`): the settings check on resume, ``checkpoint.pt`` (written atomically,
read with ``weights_only=True`` so loading never executes code), the JSON-lines log and its
truncation back to the checkpoint's step, and the EMA update of averaged networks."""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genaug.io import atomic_write, write_text_atomic


def check_resumable(cfg_file: Path, settings: dict[str, Any], resumable: set[str], remedy: str,
                    defaults: dict[str, Any] | None = None) -> None:
    """Raise if ``settings`` differ from the run saved in ``cfg_file`` in a key outside ``resumable``;
    ``remedy`` says what other settings need (e.g. ``"another folder"``). A key the saved run lacks
    (a setting added later) counts as its value in ``defaults``. ``out`` (the run folder itself,
    which may have been moved) is not compared, and a path spelt another way (``faces`` and
    ``./faces``, relative or absolute) is the same setting when both spellings name one existing file."""
    saved = {**(defaults or {}), **json.loads(Path(cfg_file).read_text())}
    diff = sorted(k for k, v in settings.items() if k not in resumable and k != "out" and not _same(saved.get(k), v))
    if diff and "kind" in diff:  # every other setting differs too: the kinds say it
        resume = f" (resume it with --kind {saved['kind']})" if saved.get("kind") else ""  # `genaug train`'s default was infogan
        raise ValueError(f"{Path(cfg_file).parent} holds a run of kind {saved.get('kind')!r}, not {settings.get('kind')!r}"
                         f"{resume}; another kind needs {remedy}")
    if diff:
        was = "; ".join(f"{k} was {saved.get(k)!r}, now {settings[k]!r}" for k in diff) if len(diff) <= 4 else ""
        raise ValueError(f"{Path(cfg_file).parent} holds a run with different settings ({diff}){': ' + was if was else ''}; "
                         f"other settings need {remedy}")


FACES_FILE = "faces.json"  # a run folder's record of its faces and held-out split (genaug.training.data.faces_record)


def check_same_faces(faces_file: Path, now: dict[str, Any], data: str, remedy: str) -> None:
    """Raise if the faces a resumed run loaded (``now``, a :func:`genaug.training.data.faces_record`) are not those
    recorded in ``faces_file`` when it started: faces added, removed or renamed reshuffle the held-out split, so
    faces it trained on would be held out and its held-out metrics contaminated."""
    then = json.loads(Path(faces_file).read_text())
    if then.get("files_sha256") != now["files_sha256"]:
        n0, n1 = then.get("faces"), now["faces"]
        other = "" if n0 != n1 else ", other files"
        raise ValueError(f"{data} changed since this run started ({n0} faces then, {n1} now{other}): resume on the "
                         f"same faces (the held-out split depends on them), or start {remedy}")
    if then.get("holdout") is not None and then["holdout"] != now["holdout"]:
        raise ValueError(f"{data}: this run's held-out faces are split otherwise now (by another genaug version?): "
                         f"resume with the version that started it, or start {remedy}")


def _same(saved: Any, now: Any) -> bool:
    """Equal settings, or two existing paths that resolve to the same file or folder."""
    if saved == now:
        return True
    if not (isinstance(saved, str) and isinstance(now, str) and saved and now):
        return False
    a, b = Path(saved).expanduser(), Path(now).expanduser()
    return a.exists() and b.exists() and a.resolve() == b.resolve()


def state_dicts(parts: dict[str, Any]) -> dict[str, Any]:
    """``name -> state_dict()`` of networks/optimizers (the checkpoint's entries)."""
    return {k: p.state_dict() for k, p in parts.items()}


def load_state_dicts(parts: dict[str, Any], state: dict[str, Any]) -> None:
    for k, p in parts.items():
        p.load_state_dict(state[k])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` all or nothing (a crash mid-write leaves the old checkpoint)."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """Read a checkpoint as plain tensors and containers (``weights_only``: never runs code). A file
    that is not one (truncated, corrupt, or holding objects other than tensors) is a ``ValueError``
    naming it, not torch's traceback."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0]
        raise ValueError(f"{path}: not a readable checkpoint ({first[:160]}); delete it (or start the run "
                         "in another folder) to train from the start") from None


def append_log(log: Path, record: dict[str, Any]) -> None:
    with open(log, "a") as f:
        f.write(json.dumps(record) + "\n")


def truncate_log(log: Path, step: int) -> list[dict[str, Any]]:
    """Drop log lines written after ``step`` (an interrupted run logs past its checkpoint) and a line
    that does not parse (torn by a kill or a full disk mid-write); returns the records kept."""
    if not log.exists():
        return []
    kept: list[tuple[str, dict[str, Any]]] = []
    for ln in log.read_text().splitlines():
        try:
            rec = json.loads(ln) if ln.strip() else None
        except ValueError:
            print(f"warning: {log}: dropped an unreadable line (cut off when the run was killed?): {ln[:80]!r}")
            continue
        if isinstance(rec, dict) and rec.get("step", 0) <= step:
            kept.append((ln, rec))
    write_text_atomic(log, "".join(ln + "\n" for ln, _ in kept))
    return [rec for _, rec in kept]


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """``ema <- beta * ema + (1 - beta) * model`` for parameters; buffers are copied."""
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p, 1 - beta)
    for be, b in zip(ema.buffers(), model.buffers()):
        be.copy_(b)
