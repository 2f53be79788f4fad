"""``BatchFaceAug``'s value check of float input (issue #32): a float32 / float64 batch is read by one integer
``aminmax`` of its bits (faster than the float one on a CPU); only a batch with a value outside [+0, 1] (-0.0, NaN,
ringing, a wrong scale) reads the float range, judged as before: clipped, refused, or passed as it is."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from genaug.engine.batch_inputs import check_batch
from genaug.images import needs_clipping

EDGES = [0.0, 1.0, 0.5, -0.0, 1.0000001, -1e-30, 1.005, -0.005, 1.5, -2.0, float("nan"), float("inf"), float("-inf")]


class _AminmaxInputs(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.dtypes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if "aminmax" in str(func):
            self.dtypes.append(args[0].dtype)
        return func(*args, **(kwargs or {}))


def _reference(x: torch.Tensor) -> tuple[torch.Tensor, bool] | str:
    """check_batch's outcome by the float range alone: the batch (clipped or as given), or 'refused'."""
    try:
        lo, hi = (float(v) for v in torch.aminmax(x.float()))
        return (x.clamp(0.0, 1.0) if needs_clipping(lo, hi, "batch") else x), True
    except ValueError:
        return "refused"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("value", EDGES)
def test_outcome_is_the_float_ranges(dtype, value):
    x = torch.full((2, 3, 40, 40), 0.25, dtype=dtype)
    x[1, 2, 5, 7] = value
    for batch in (x, x.contiguous(memory_format=torch.channels_last), x.transpose(2, 3)):
        want = _reference(batch)
        try:
            got = check_batch(batch, True, False)
        except ValueError:
            got = "refused"
        if want == "refused" or got == "refused":
            assert got == want, (value, dtype)
            continue
        assert got[1] and (got[0] is batch) == (want[0] is batch), (value, dtype)
        assert torch.equal(got[0], want[0])


def test_a_batch_within_range_is_read_by_its_bits_once():
    x = torch.rand(4, 3, 40, 40)
    for dtype, bits in ((torch.float32, torch.int32), (torch.float64, torch.int64)):
        with _AminmaxInputs() as seen:
            out, read = check_batch(x.to(dtype), True, False)
        assert read and seen.dtypes == [bits], seen.dtypes
    with _AminmaxInputs() as seen:
        check_batch(x * 1.005, True, False)  # ringing: clipped, by the float range after the bits
    assert seen.dtypes == [torch.int32, torch.float32]
