"""The batch path's colour margin (:func:`genaug.engine.batch_edits.colour_margin`) on the host runs numpy's arithmetic
(fewer tensor operations per call), on a device torch's: the same operations, the same bits."""
import warnings

import numpy as np
import torch

import genaug.engine.batch_edits as batch_edits
from genaug.engine.batch_edits import colour_margin


def _case(n: int = 64, dim: int = 13, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    change = torch.randn(n, dim, generator=g) * 0.05
    at = torch.randint(0, dim, (n, 1), generator=g)
    change.scatter_(1, at[:8], 0.0)  # a value at the face's own: the tie's side
    change[8, at[8, 0]] = float("nan")  # a face's own value unknown: left as drawn
    rate = torch.rand(n, 1, generator=g) + 0.1
    least = torch.where(torch.rand(n, 1, generator=g) < 0.2, 0.0, 0.02)  # some rows without a margin
    low = -1 - torch.rand(n, 1, generator=g)
    high = 1 + torch.rand(n, 1, generator=g)
    low[10:14], high[14:18] = -0.001, 0.001  # ranges a side does not fit
    tie = (torch.rand(n, 1, generator=g) < 0.5).float()
    margin = torch.cat([least, tie, low, high], 1)
    return change, rate, {"margin_at": at, "margin": margin}, torch.randn(n, generator=g)


def test_host_and_device_texts_give_the_same_bits(monkeypatch):
    change, rate, plan, target = _case()
    host_change = change.clone()
    host_target = colour_margin(host_change, rate, plan, target)
    monkeypatch.setattr(batch_edits, "_on_host", lambda t: False)  # torch's operations, as on a device
    device_change = change.clone()
    device_target = colour_margin(device_change, rate, plan, target)
    assert torch.equal(host_change.nan_to_num(7.0), device_change.nan_to_num(7.0))
    assert torch.equal(host_target, device_target)
    moved = (host_change - change).abs().sum(1) > 0
    assert 0 < int(moved.sum()) < len(change)  # (some rows moved out, some not)
    assert host_target.dtype == torch.float32


def test_the_margin_on_the_host_makes_fewer_operations():
    from torch.profiler import ProfilerActivity, profile

    change, rate, plan, target = _case()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        colour_margin(change, rate, plan, target)
    ops = [e for e in prof.events() if e.cpu_parent is None and e.name.startswith("aten::")]
    assert len(ops) <= 3, [e.name for e in ops]


def test_a_rate_of_0_is_no_move_without_numpys_warnings(monkeypatch):
    # BatchFaceAug(strength=0) on the host: "RuntimeWarning: divide by zero encountered in divide" (an error under
    # -W error or np.seterr(all="raise")), where torch's operations divide silently
    change, rate, plan, target = _case()
    rate[:16] = 0.0  # strength 0 (some rows also without a margin: 0 / 0)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        host_change = change.clone()
        host_target = colour_margin(host_change, rate, plan, target)
    monkeypatch.setattr(batch_edits, "_on_host", lambda t: False)
    device_change = change.clone()
    device_target = colour_margin(device_change, rate, plan, target)
    assert torch.equal(host_change.nan_to_num(7.0), device_change.nan_to_num(7.0)) and torch.equal(host_target, device_target)
    assert torch.equal(host_change[:16].nan_to_num(7.0), change[:16].nan_to_num(7.0))  # no move at a rate of 0
