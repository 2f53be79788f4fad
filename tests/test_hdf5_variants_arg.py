"""``HDF5FaceDataset(variants=...)`` takes variant numbers only: ``True`` was read as variant 1 (a file's first
variant alone, silently), ``1.0`` as 1, as no other argument of genaug's front ends reads them."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from genaug import HDF5FaceDataset


@pytest.fixture
def expanded(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((6, 16, 16, 3), np.uint8)
        f["label"] = np.zeros(6, np.int64)
        f["variant"] = np.array([0, 1, 2, 0, 1, 2], np.int16)
    return path


@pytest.mark.parametrize("variants", [True, [True], [1, True], 1.0, [0, 2.0], np.array([True])])
def test_variants_that_are_not_whole_numbers_are_refused(expanded, variants):
    with pytest.raises(ValueError, match="variants must be whole numbers"):
        HDF5FaceDataset(expanded, variants=variants)


@pytest.mark.parametrize("variants, n", [(0, 2), ([1, 2], 4), ((2,), 2), (np.array([0, 1]), 4), ({0, 2}, 4), ([np.int64(1)], 2)])
def test_variant_numbers_select_their_records(expanded, variants, n):
    assert len(HDF5FaceDataset(expanded, variants=variants)) == n
