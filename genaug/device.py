"""Device selection shared by every front end; the float32 default dtype genaug works in, and autocast off."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; anything else is passed to torch."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N' ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available")
    return dev


@contextlib.contextmanager
def float32_default() -> Iterator[None]:
    """torch's default dtype float32 inside (tensors made without a dtype match the float32 model), restored after:
    genaug keeps working under a user's ``torch.set_default_dtype(torch.float64)``."""
    was = torch.get_default_dtype()
    if was == torch.float32:
        yield
        return
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(was)


def no_autocast(device: torch.device) -> Any:
    """Autocast switched off on ``device`` (the networks and latent tables keep their own dtype)."""
    return torch.autocast(device.type, enabled=False) if device.type in ("cpu", "cuda") else contextlib.nullcontext()
