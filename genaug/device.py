"""Device selection shared by every front end; genaug's own torch settings (dtype, default device, autocast, inference
mode) around its work, and a caller's network on a device without moving it."""
from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator

import torch


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; anything else is passed to torch, and a device this machine
    lacks (``"cuda"`` without CUDA, ``"mps"`` off a Mac, ``"meta"``) is a ValueError naming it."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N' ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available")
    if dev.type == "meta":
        raise ValueError(f"device {str(device)!r} holds no data: use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type not in ("cpu", "cuda"):
        try:  # mps / xpu in a build or on a machine without them (a CUDA probe would start CUDA, e.g. in a forked worker)
            torch.empty(0, device=dev)
        except (RuntimeError, AssertionError):  # (torch's message for mps lists every backend)
            raise ValueError(f"device {str(device)!r} is not available in this PyTorch build or on this machine: use "
                             "'auto' or 'cpu'") from None
    return dev


@contextlib.contextmanager
def torch_defaults() -> Iterator[None]:
    """genaug's own torch settings inside, whatever a training script set around the call, restored after: the
    float32 default dtype (tensors made without a dtype match the float32 networks, and seeded draws repeat: a float64
    ``torch.rand`` draws other numbers), the CPU as default device (host draws, generators and tables: under
    ``torch.set_default_device("cuda")`` or ``"meta"`` too; the networks' device is the engine's), autocast off
    (the networks run in their own precision inside a mixed-precision step) and inference mode off (a refinement's
    gradients, and tensors kept across calls, which an inference tensor would break outside it). Free when nothing is set.
    The default dtype is the process's, not a thread's: while genaug works under a script's float64 default, the
    script's other threads see float32 (the device, autocast and inference mode are per thread)."""
    with contextlib.ExitStack() as stack:
        if torch.get_default_dtype() != torch.float32:
            was = torch.get_default_dtype()
            torch.set_default_dtype(torch.float32)
            stack.callback(torch.set_default_dtype, was)
        if _device_mode_possible():
            stack.enter_context(torch.device("cpu"))
        for kind in ("cpu", "cuda"):
            if _autocast_on(kind):
                stack.enter_context(torch.autocast(kind, enabled=False))
        if torch.is_inference_mode_enabled():
            stack.enter_context(torch.inference_mode(False))
        yield


_threads = threading.local()  # per thread: genaug's calls inside one_cpu_thread now (depth), and the count before


@contextlib.contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """The networks' passes on ``device`` (the CPU: one intra-op thread inside; other devices: nothing changes): a
    float32 matrix product's sums depend on the CPU thread count (the generator's output moved by up to 9e-7 between
    1 and 2-16 threads at odd row counts, one level of an 8-bit photo on 4 of 80 Dataset items), so a DataLoader
    worker (one thread) would not render an item as a main process with several does. torch's count (OpenMP, MKL) is
    the calling thread's: each thread that calls genaug sets its own on the outermost call and restores it after, so
    threads calling genaug at once each run on one thread, and other threads keep theirs (but torch gives a thread, at
    its first torch work, the count set last anywhere: one started meanwhile, or one that set its count but has not
    run torch work yet, starts with one)."""
    if device.type != "cpu":
        yield
        return
    depth = getattr(_threads, "depth", 0)
    if depth == 0:
        _threads.was = torch.get_num_threads()
        if _threads.was != 1:
            torch.set_num_threads(1)
    _threads.depth = depth + 1
    try:
        yield
    finally:
        _threads.depth = depth
        if depth == 0 and _threads.was != 1:
            torch.set_num_threads(_threads.was)


def _device_mode_possible() -> bool:
    """Whether a default device may be set (``torch.set_default_device`` or ``with torch.device(...)``: a mode on the
    torch-function stack; a cheap test for every call): then genaug's work runs under a CPU device mode of its own,
    whatever torch version reports the default (``torch.get_default_device`` read only the global setting on some)."""
    modes = getattr(torch._C, "_len_torch_function_stack", None)
    return modes is None or modes() > 0


def _autocast_on(kind: str) -> bool:
    try:
        return torch.is_autocast_enabled(kind)  # (torch >= 2.4)
    except TypeError:
        return torch.is_autocast_cpu_enabled() if kind == "cpu" else torch.is_autocast_enabled()


def canonical_device(device: str | torch.device) -> torch.device:
    """``device`` as its tensors report it, so that two names of one device compare equal: ``"cpu:0"`` -> ``cpu``,
    ``"cuda"`` -> ``cuda:N`` (the current CUDA device; ``cuda:0`` without CUDA), ``"mps"`` -> ``mps:0``."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.index is None:
        cuda = dev.type == "cuda" and torch.cuda.is_available()
        return torch.device(dev.type, torch.cuda.current_device() if cuda else 0)
    return dev


def module_on(net: torch.nn.Module, device: str | torch.device, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """``net`` in eval mode on ``device`` (its floating tensors in ``dtype`` when given) without changing the caller's
    module: ``net`` itself when it already is so, else an eval-mode copy there (``nn.Module.to`` and ``.eval()`` act in
    place, and a library must not move or switch a network it was lent)."""
    dev = canonical_device(device)  # "cuda" -> "cuda:0", as the tensors report it
    tensors = [*net.parameters(), *net.buffers()]
    ready = (not any(m.training for m in net.modules()) and all(t.device == dev for t in tensors)
             and (dtype is None or all(t.dtype == dtype for t in tensors if t.is_floating_point())))
    if ready:
        return net
    moved = copy.deepcopy(net).to(dev) if dtype is None else copy.deepcopy(net).to(dev, dtype)
    return moved.eval()
