"""The processes and threads genaug runs in: the distributed environment that ``torchrun`` sets (rank, world size and
local rank), DataLoader workers' seeds and notices (:func:`say_once`), and :class:`Turns`, the lock threads sharing one
object take in turn."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def launched(self) -> bool:
        """True under torchrun with more than one process (a rendezvous address is set)."""
        return self.world > 1 and "MASTER_ADDR" in os.environ


def dist_env() -> DistEnv:
    """``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` from the environment (defaults: one process)."""
    env = os.environ
    return DistEnv(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def init_distributed(backend: str | None = None, timeout_s: float | None = None) -> Any:
    """``torch.distributed``, initialised once, under torchrun with several processes; else None.
    ``backend`` defaults to NCCL when CUDA is available, else gloo."""
    if not dist_env().launched:
        return None
    import datetime

    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        kw = {"timeout": datetime.timedelta(seconds=timeout_s)} if timeout_s else {}
        dist.init_process_group(backend, **kw)
    return dist


def rank_device(device: str, distributed: bool) -> str:
    """``"auto"`` under several processes with CUDA -> this process's GPU (``LOCAL_RANK``)."""
    import torch

    if device == "auto" and distributed and torch.cuda.is_available():
        return f"cuda:{dist_env().local_rank % torch.cuda.device_count()}"
    return device


def worker_tag() -> tuple[int, int] | None:
    """This DataLoader worker's mark, ``(pid, worker seed)`` (None outside workers): what :func:`mix_worker_seed` has
    done its mixing under. A transform seeded inside a worker (``worker_init_fn``) takes this mark too, so its seed is
    used as given, not mixed again."""
    import torch

    info = torch.utils.data.get_worker_info()
    return None if info is None else (os.getpid(), int(info.seed))


def mix_worker_seed(generator: Any, tag: Any) -> Any:
    """In a DataLoader worker, re-seed ``generator`` (a CPU ``torch.Generator``) once per worker from its own
    state and the worker's seed, so forked workers (which start with identical copies) draw differently and a
    seeded DataLoader repeats; returns the tag to pass next time (unchanged outside workers, and where ``tag`` is
    already this worker's: mixed, or seeded in it)."""
    import torch

    here = worker_tag()
    if here is None or tag == here:
        return tag
    generator.manual_seed((int(torch.randint(2**62, (), generator=generator)) ^ here[1]) % 2**62)
    return here


def mix_rank_seed(generator: Any, tag: Any) -> Any:
    """Under torchrun with several processes (``RANK`` / ``WORLD_SIZE``), re-seed ``generator`` (a CPU ``torch.Generator``)
    once per process of rank > 0 from its own state and the rank, so ranks given one seed draw differently (as
    :func:`mix_worker_seed` does for DataLoader workers; rank 0 keeps the stream of a run in one process); returns the
    tag to pass next time (unchanged in one process and on rank 0)."""
    import torch

    env = dist_env()
    if env.world <= 1 or env.rank == 0 or tag == (os.getpid(), env.rank):
        return tag
    generator.manual_seed((int(torch.randint(2**62, (), generator=generator)) ^ (env.rank * 0x9E3779B97F4A7C15)) % 2**62)
    return (os.getpid(), env.rank)


SAID_ENV = "GENAUG_SAID"  # "PID:key,key" (keys URL-quoted): the notices process PID gave, for the DataLoader workers it starts
_said: set[str] = set()  # the notices given in this process


def _said_by_parent() -> set[str]:
    """The notices this process's parent gave before starting it (:data:`SAID_ENV`, marked by that parent's pid: a
    mark inherited from further up - another program that ran this one - is not the parent's)."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    pid, _, keys = os.environ.get(SAID_ENV, "").partition(":")
    return {unquote(k) for k in keys.split(",") if k} if parent is not None and pid == str(parent.pid) else set()


def say_once(key: str) -> bool:
    """True where the notice ``key`` (a warning) is to be given now: once per process, and inside DataLoader workers
    (spawned ones start afresh each epoch, forked ones copy this process's state) only where the process that started
    them has not given it before (it marks :data:`SAID_ENV` with its pid, which they inherit) and only in worker 0, so
    a loop sees it once, not once per worker per epoch; a user who never calls genaug in the main process (an
    albumentations pipeline run only by the workers) still sees it, once per epoch unless the workers persist, as does
    another program the main process runs (its own workers' parent is that program)."""
    import torch

    info = torch.utils.data.get_worker_info()
    if key in _said or (info is not None and (info.id != 0 or key in _said_by_parent())):
        return False
    _said.add(key)
    if info is None:
        os.environ[SAID_ENV] = f"{os.getpid()}:{','.join(quote(k, safe='') for k in sorted(_said))}"  # (a key's commas escaped)
    return True


class Turns:
    """A re-entrant lock that threads sharing one object (a transform's work buffers, dlib's detector) take in turn;
    a forked process (a DataLoader worker forked while another thread held it) gets a fresh one, not a copy held by a
    thread it does not have. Pickled (deepcopy, spawned workers) as a fresh one."""

    def __init__(self) -> None:
        self._pid, self._lock = os.getpid(), threading.RLock()

    def __enter__(self) -> None:
        if self._pid != os.getpid():
            self._pid, self._lock = os.getpid(), threading.RLock()
        self._lock.acquire()

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()

    def __reduce__(self) -> tuple:
        return (Turns, ())
