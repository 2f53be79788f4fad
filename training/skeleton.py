"""The one training skeleton every kind runs on: a :class:`Run` owns the run folder and the loop
around a kind's steps.

A run folder holds ``train_config.json`` (the settings; a resumed run must match it outside the
resumable ones), ``checkpoint.pt`` (every ``checkpoint_every`` steps and when the run stops),
``faces.json`` (how many faces the run loaded, a hash of their file names and
the held-out faces' names: a resume on other faces is refused, since they reshuffle the held-out split),
``log.jsonl`` (one JSON line per logged step, cut back to the checkpoint's step on resume, so a
resumed run never logs a step twice), ``.lock`` (held while a run uses the folder: a second run on
the same folder is refused, not interleaved) and whatever the kind's evaluation and export write.
The same command resumes. SIGTERM / SIGINT finish the current step, checkpoint and end the run
cleanly; so does the wall-clock budget (``minutes``).

A kind implements :class:`Kind`: ``parts()`` (what the checkpoint holds), ``train_step(step)``
(one update, returns its losses), ``evaluate(step)`` (periodic: held-out metrics, grids; its
dict is logged as ``{"step", "eval"}``) and ``export(step)`` (the final bundle or weights).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import torch
from tqdm.auto import tqdm

from genaug.io import write_json_atomic

try:
    import fcntl  # POSIX; elsewhere a run folder is not locked
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from .checkpoint import (FACES_FILE, append_log, check_resumable, check_same_faces, load_checkpoint, load_state_dicts,
                         save_checkpoint, state_dicts, truncate_log)


class Kind(Protocol):
    """What a model kind gives the skeleton. Optional hooks: ``extra_state(collective)`` /
    ``load_extra_state(state)`` (checkpoint entries beyond ``parts``), ``log_extra(step)`` (metrics
    added to a log line), ``finished()`` (a kind's own end, e.g. a CPU-time budget over all
    invocations) and ``progress_keys`` (log keys shown on the progress bar)."""

    def parts(self) -> dict[str, Any]:
        """name -> object with ``state_dict()`` / ``load_state_dict()`` (networks, optimizers, RNGs)."""

    def train_step(self, step: int) -> dict[str, Any]:
        """One update at ``step`` (0-based); returns its losses (tensors or floats)."""

    def evaluate(self, step: int) -> dict[str, Any] | None:
        """Periodic evaluation after ``step`` steps; the dict (if any) is logged."""

    def export(self, step: int) -> Any:
        """Write the final result after ``step`` steps and return it."""


class RngState:
    """A ``torch.Generator`` as a checkpoint part (its state tensor)."""

    def __init__(self, gen: torch.Generator):
        self.gen = gen

    def state_dict(self) -> torch.Tensor:
        return self.gen.get_state()

    def load_state_dict(self, state: torch.Tensor) -> None:
        self.gen.set_state(state.cpu())  # the checkpoint was mapped to the training device


@dataclass
class RunPlan:
    """How a run is driven; ``settings`` are saved to ``train_config.json``."""

    out: Path
    steps: int  # 0 = no step limit (the kind's ``finished()`` or the budget ends the run)
    settings: dict[str, Any]
    resumable: set[str]
    log_every: int = 50
    checkpoint_every: int = 250
    eval_every: int = 0  # 0 = evaluate only at the end
    minutes: float = 0.0  # wall-clock budget of this invocation (0 = none)
    remedy: str = "another folder"  # what a run with other settings needs
    defaults: dict[str, Any] | None = None  # value of a setting an older saved run lacks
    overwrite: bool = False  # start again even if a checkpoint exists
    marks: set[int] = field(default_factory=set)  # steps that always log, evaluate and checkpoint (phase ends)
    finish_on_stop: bool = True  # evaluate + export when stopped by a signal (else only checkpoint)
    desc: str = "train"
    main: bool = True  # this process writes the folder (rank 0)
    log_time_key: str = "t"
    log_digits: int | None = 4  # losses rounded in the log (None = as given)
    checkpoint_name: str = "checkpoint.pt"
    faces: dict[str, Any] | None = None  # faces + held-out split (data.faces_record): faces.json, checked on resume

    def __post_init__(self) -> None:
        if Path(self.out).exists() and not Path(self.out).is_dir():  # refused before the data loads
            raise ValueError(f"run folder {self.out} is a file; give a folder (it holds checkpoint.pt, log.jsonl, bundle/)")


class FolderLock:
    """Holds a run folder: an OS lock on ``OUT/.lock``, released by :meth:`release` or when the process dies. A
    second run on the same folder would interleave checkpoints and log lines, so it is refused. A kind takes it
    first (:meth:`released_on_error`), before its faces load and its networks build, so a busy folder is said at
    once; the :class:`Run` it hands the lock to releases it when the run ends. ``main=False`` (ranks > 0 of a
    distributed run) holds nothing."""

    def __init__(self, out: str | Path, main: bool = True):
        self.out, self.main = Path(out), main
        self.fd: int | None = None
        self.created = False  # the folder did not exist before this lock (removed again if nothing else lands in it)

    def acquire(self) -> "FolderLock":
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"run folder {self.out} is a file; give a folder (it holds checkpoint.pt, log.jsonl, "
                             "bundle/)")
        if not self.main or self.fd is not None or fcntl is None:
            return self
        self.created = self.created or not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise BlockingIOError(f"another training run is using {self.out}; wait for it to end (or stop it: it "
                                  "checkpoints on SIGTERM), or give another folder") from None
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = None

    def __del__(self) -> None:
        self.release()

    @contextmanager
    def released_on_error(self) -> Iterator["FolderLock"]:
        """Acquire; on an error inside the block release (and remove a folder this lock created that holds
        nothing else), then re-raise. Without an error the lock stays held (the run releases it)."""
        self.acquire()
        try:
            yield self
        except BaseException:
            if self.fd is not None and self.created and [p.name for p in self.out.iterdir()] == [".lock"]:
                (self.out / ".lock").unlink(missing_ok=True)  # while still held: no other run locks the old file
                self.release()
                with suppress(OSError):
                    self.out.rmdir()
            self.release()
            raise


class Run:
    """Drives ``kind`` through ``plan``: resume, steps, logs, evaluation, checkpoints, export."""

    def __init__(self, kind: Kind, plan: RunPlan, device: torch.device | str = "cpu", lock: FolderLock | None = None):
        self.kind, self.plan, self.device = kind, plan, torch.device(device)
        self.out, self.step, self.last_eval = Path(plan.out), 0, -1
        self.ckpt, self.log_file = self.out / plan.checkpoint_name, self.out / "log.jsonl"
        self.stopped_by: str | None = None
        self.saved_at = -1  # step of the last checkpoint this invocation wrote (or resumed from)
        self.logged_eval = -1  # step whose evaluation log.jsonl already holds (from the invocation that checkpointed it)
        # the folder's ``.lock``: a kind takes it before its faces load and networks build, and hands it over
        self.folder_lock = lock if lock is not None else FolderLock(self.out, plan.main)

    # ------------------------------------------------------------ lock
    @property
    def lock(self) -> int | None:
        """Descriptor of the folder's ``.lock`` while this run holds it."""
        return self.folder_lock.fd

    def acquire(self) -> None:
        """Hold the run folder (see :class:`FolderLock`; a kind that took it before its data loaded passed it in)."""
        self.folder_lock.acquire()

    def release(self) -> None:
        self.folder_lock.release()

    def __del__(self) -> None:
        self.release()

    # ------------------------------------------------------------ folder
    def resume(self) -> int:
        """Check the settings against the saved run and load its checkpoint (or start the folder afresh)."""
        self.acquire()
        try:
            return self._resume()
        except BaseException:
            self.release()
            raise

    def _resume(self) -> int:
        plan, cfg_file, faces_file = self.plan, self.out / "train_config.json", self.out / FACES_FILE
        if self.ckpt.exists() and not plan.overwrite:
            if cfg_file.exists():
                as_saved = json.loads(json.dumps(plan.settings))  # tuples compare as the lists JSON holds
                check_resumable(cfg_file, as_saved, plan.resumable, plan.remedy, plan.defaults)
            if plan.faces is not None and faces_file.exists():  # a run saved before faces.json: resumed as it is
                check_same_faces(faces_file, plan.faces, plan.settings.get("data", "the faces folder"), plan.remedy)
            state = load_checkpoint(self.ckpt, self.device)
            if "step" not in state:
                raise ValueError(f"{self.ckpt} was written by an older genaug (no step count); resume it with that "
                                 "version or start again in another folder")
            try:
                load_state_dicts(self.kind.parts(), state)
                if hasattr(self.kind, "load_extra_state"):
                    self.kind.load_extra_state(state)
            except (KeyError, RuntimeError, ValueError, IndexError) as e:  # another kind's parts or other shapes
                why = f"it has no {e.args[0]!r}" if isinstance(e, KeyError) and e.args else \
                    (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
                raise ValueError(f"{self.ckpt} does not fit this run (written by another kind or with other networks: "
                                 f"{why}); other settings need {plan.remedy}") from None
            self.step = int(state["step"])
            self.saved_at = self.step  # the checkpoint holds this step: nothing new to save until a step runs
            if plan.main:
                kept = truncate_log(self.log_file, self.step)
                # the step was evaluated before the checkpoint's invocation ended: a resumed run still evaluates at
                # its end (last_eval stays -1; a kind's export may need it), but a rerun of a finished command does not
                # log that step's evaluation twice
                if any(r.get("step") == self.step and "eval" in r for r in kept):
                    self.logged_eval = self.step
                print(f"resuming {self.out} at step {self.step}")
        elif plan.main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.log_file.unlink(missing_ok=True)
            # starting again: the old run's checkpoint and outputs go too (a kill before the new run's first
            # checkpoint would otherwise resume the old weights under the new settings)
            if plan.overwrite:
                self.ckpt.unlink(missing_ok=True)
                for old in ("bundle", "samples", "sweeps", "snapshots"):
                    if (self.out / old).is_dir():
                        shutil.rmtree(self.out / old)
                (self.out / "metrics.json").unlink(missing_ok=True)
        if plan.main:
            write_json_atomic(cfg_file, plan.settings)
            if plan.faces is not None:
                write_json_atomic(faces_file, plan.faces)
        return self.step

    def save_checkpoint(self, collective: bool = True) -> None:
        """Write ``checkpoint.pt`` (all or nothing). ``collective=False`` when ranks may not all be here."""
        extra = self.kind.extra_state(collective) if hasattr(self.kind, "extra_state") else {}
        if self.plan.main:
            save_checkpoint(self.ckpt, {**state_dicts(self.kind.parts()), **extra, "step": torch.tensor(self.step)})
        self.saved_at = self.step

    def log(self, record: dict[str, Any]) -> None:
        if self.plan.main:
            append_log(self.log_file, record)

    # --------------------------------------------------------------- run
    def _log_step(self, losses: dict[str, Any], bar: Any, t0: float) -> None:
        extra = self.kind.log_extra(self.step) if hasattr(self.kind, "log_extra") else {}
        rec = {"step": self.step, self.plan.log_time_key: round(time.time() - t0, 1),
               **{k: self._number(v) for k, v in losses.items()}, **extra}
        self.log(rec)
        shown = getattr(self.kind, "progress_keys", ())
        bar.set_postfix({k: f"{v:.3g}" for k, v in rec.items() if k in shown and not isinstance(v, str)}, refresh=False)

    def _number(self, v: Any) -> Any:
        if isinstance(v, str):
            return v
        v = float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
        return v if self.plan.log_digits is None else round(v, self.plan.log_digits)

    def _evaluate(self) -> None:
        if self.plan.main:
            result = self.kind.evaluate(self.step)
            if result and self.step != self.logged_eval:
                self.log({"step": self.step, "eval": result})
        self.last_eval = self.step

    def _due(self, every: int) -> bool:
        return (every > 0 and self.step % every == 0) or self.step in self.plan.marks

    def run(self) -> Any:
        """Train until ``steps``, the budget or a signal; checkpoint; evaluate and export (see ``finish_on_stop``)."""
        plan, t0 = self.plan, time.time()
        self.acquire()
        try:
            return self._run(plan, t0)
        finally:
            self.release()

    def _run(self, plan: RunPlan, t0: float) -> Any:
        restore = self._catch_signals()
        bar = tqdm(total=plan.steps or None, initial=self.step, desc=plan.desc, unit="step", disable=not plan.main,
                   mininterval=10, dynamic_ncols=True)
        try:
            while (not plan.steps or self.step < plan.steps) and not self.stopped_by:
                if plan.minutes and time.time() - t0 > plan.minutes * 60:
                    self.stopped_by = "budget"
                    break
                if hasattr(self.kind, "finished") and self.kind.finished():
                    break
                losses = self.kind.train_step(self.step)
                self.step += 1
                bar.update(1)
                if self._due(plan.log_every):
                    self._log_step(losses, bar, t0)
                if self._due(plan.checkpoint_every):
                    self.save_checkpoint()
                if self._due(plan.eval_every):
                    self._evaluate()
        finally:
            bar.close()
            restore()
        signalled = self.stopped_by not in (None, "budget")
        if self.saved_at != self.step:
            self.save_checkpoint(collective=not signalled)
        if signalled and plan.main:
            print(f"stopped by {self.stopped_by} at step {self.step}: checkpoint saved; the same command resumes")
        elif self.stopped_by == "budget" and plan.main:
            print(f"wall-clock budget of {plan.minutes:g} minutes spent at step {self.step}: checkpoint saved; "
                  "the same command resumes")
        if signalled and not plan.finish_on_stop:
            return None
        if self.last_eval != self.step:
            self._evaluate()
        return self.kind.export(self.step)

    def _catch_signals(self) -> Any:
        """SIGTERM / SIGINT end the run after the current step; returns what restores the old handlers."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        names = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}
        old = {s: signal.signal(s, lambda s, _f: setattr(self, "stopped_by", names[s])) for s in names}
        return lambda: [signal.signal(s, h) for s, h in old.items()]
