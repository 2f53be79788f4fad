"""``host_array`` (the batch path's ~20 host reads a call): a host tensor lent to numpy by its DLPack capsule, sharing
its memory and writable, with no tensor operation; what the capsule cannot carry takes the slower routes."""
import numpy as np
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from genaug.engine.latent_table import host_array


@pytest.mark.parametrize("t", [torch.arange(6.0).view(2, 3), torch.arange(5), torch.tensor([True, False]),
                               torch.arange(12.0).view(4, 3)[:, 1], torch.zeros(0), torch.ones(3, dtype=torch.float16)])
def test_lent_arrays_share_the_tensors_memory_and_write_through(t):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        a = host_array(t)
    assert not [e.name for e in prof.events() if e.name.startswith("aten::")]
    assert a.dtype == t.numpy().dtype and a.shape == tuple(t.shape) and np.array_equal(a, t.numpy())
    assert a.flags.writeable and (t.numel() == 0 or np.shares_memory(a, t.numpy()))
    if t.numel():
        a[(0,) * a.ndim] = 1
        assert t[(0,) * t.ndim] == 1


def test_what_the_capsule_cannot_carry_takes_the_slower_routes():
    g = torch.ones(2, requires_grad=True)
    assert np.array_equal(host_array(g), [1.0, 1.0])  # (detached)
    with pytest.raises(TypeError):
        host_array(torch.ones(2, dtype=torch.bfloat16))  # numpy has no bfloat16, as before


def test_conjugate_and_negative_views_are_read_as_their_values():
    # DLPack lends a view's memory as it is: a negative view (the imaginary part of a conjugate) was read with the wrong
    # sign, and a conjugate view raised from Tensor.numpy()
    z = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64)
    neg, conj = z.conj().imag, z.conj()
    assert neg.is_neg() and conj.is_conj()
    assert np.array_equal(host_array(neg), [-2.0, 4.0])
    assert np.array_equal(host_array(conj), [1 - 2j, 3 + 4j])
