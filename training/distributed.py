"""Data-parallel helpers for training under ``torchrun`` (gloo on CPU, NCCL on GPUs).

Every rank holds full replicas of the networks (broadcast from rank 0 at start) and draws its own
batches. After each backward pass the gradients are averaged in one flattened all-reduce per
network and the float buffers (BatchNorm running statistics, spectral-norm vectors) are averaged
too, so the replicas stay bit-identical. We do this by hand rather than with
``DistributedDataParallel`` because D is run several times per step (real, fake, and frozen inside
G's step), which DDP's reducer handles only with ``find_unused_parameters``/static-graph
workarounds; explicit averaging is a dozen lines and obviously correct. :func:`check_sync`
compares a fingerprint of all weights across ranks and stops the run if they drifted apart.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from genaug.device import resolve_device
from genaug.distenv import DistEnv, dist_env, init_distributed


def setup(device: str) -> tuple[DistEnv, torch.device]:
    """This process's rank/world and device (its own GPU under torchrun); joins the process group."""
    env = dist_env()
    if env.world > 1:
        init_distributed()
    dev = resolve_device(device)
    if dev.type == "cuda" and env.world > 1:
        dev = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(dev)
    return env, dev


def single_process(kind: str) -> None:
    """Refuse to run a kind that trains in one process under ``torchrun`` with several processes
    (each would train its own copy into the same run folder)."""
    if dist_env().world > 1:
        raise ValueError(f"the {kind} kind trains in one process: run it without torchrun (torchrun's data-parallel "
                         "training is for --kind infogan and began)")


def broadcast_from_rank0(module: nn.Module, world: int) -> None:
    if world > 1:
        for t in module.state_dict().values():
            dist.broadcast(t, 0)


def all_reduce_mean(tensors: list[torch.Tensor], world: int) -> None:
    """Average ``tensors`` in place across ranks with one flattened all-reduce."""
    if world == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world
    for t, v in zip(tensors, flat.split([t.numel() for t in tensors])):
        t.copy_(v.view_as(t))


def average_gradients(module: nn.Module, world: int) -> None:
    """Average the gradients of ``module`` across ranks (data-parallel step)."""
    all_reduce_mean([p.grad for p in module.parameters() if p.grad is not None], world)


@torch.no_grad()
def average_buffers(module: nn.Module, world: int) -> None:
    """Average float buffers (BatchNorm running stats, spectral-norm vectors) across ranks."""
    all_reduce_mean([b for b in module.buffers() if b.is_floating_point()], world)


@torch.no_grad()
def fingerprint(*modules: nn.Module) -> torch.Tensor:
    """One float64 checksum per module over its whole state (parameters and buffers)."""
    out = []
    for m in modules:
        acc = torch.zeros((), dtype=torch.float64)
        for i, t in enumerate(m.state_dict().values()):
            acc += (t.detach().double().cpu() * (1 + (torch.arange(t.numel()).view_as(t) % 7) / 7)).sum() * (i + 1)
        out.append(acc)
    return torch.stack(out)


def check_sync(modules: list[nn.Module], extra: list[float], world: int, device: torch.device, step: int) -> float:
    """Largest difference across ranks of the weight fingerprints (and ``extra`` scalars); 0 means
    the replicas are identical. Raises if they drifted apart. Collective: every rank calls it."""
    if world == 1:
        return 0.0
    fp = torch.cat([fingerprint(*modules), torch.tensor(extra, dtype=torch.float64)]).to(device)
    gathered = [torch.zeros_like(fp) for _ in range(world)]
    dist.all_gather(gathered, fp)
    allfp = torch.stack(gathered).cpu()
    spread = (allfp.max(0).values - allfp.min(0).values).max().item()
    if spread > 1e-6 * (1 + fp.abs().max().item()):
        raise RuntimeError(f"data-parallel replicas diverged at step {step}: fingerprints {allfp.tolist()}")
    return spread


def gather_objects(obj: object, world: int) -> list[object]:
    """``[obj of rank 0, obj of rank 1, ...]`` (collective); ``[obj]`` in a single process."""
    if world == 1:
        return [obj]
    gathered: list[object] = [None] * world
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def shutdown(world: int) -> None:
    if world > 1 and dist.is_initialized():
        dist.destroy_process_group()
