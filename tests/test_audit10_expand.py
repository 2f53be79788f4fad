"""A tenth user audit (2026-12-05), the offline expansion's labels as an ImageFolder / h5py user reads them (each test
failed before its fix)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torchvision

from conftest import noise_pngs
from genaug.expand import ExpandError, HDF5FaceDataset
from genaug.expand.sources import FolderSource, HDF5Source


def test_an_empty_class_folder_keeps_its_label_as_imagefolder_numbers_it(tmp_path):
    # a class folder without images was dropped: the classes after it got labels one lower than torchvision's
    # ImageFolder gives them (allow_empty=True), so the expanded file's labels disagreed with the user's own loader
    root = tmp_path / "people"
    noise_pngs(root / "ann", n=1), (root / "bob").mkdir(), noise_pngs(root / "cy", n=1)
    with pytest.warns(UserWarning, match=r"\['bob'\] hold no images"):
        src = FolderSource(root)
    theirs = torchvision.datasets.ImageFolder(str(root), allow_empty=True)
    assert src.class_names == theirs.classes
    assert [src.label(i) for i in range(len(src))] == [t for _, t in theirs.samples] == [0, 2]


def _h5(path, **datasets):
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((3, 8, 8, 3), np.uint8)
        for k, v in datasets.items():
            f[k] = np.asarray(v)
    return path


def test_label_and_labels_are_read_alike_by_the_source_and_the_dataset(tmp_path):
    # HDF5Source read 'labels' first and HDF5FaceDataset 'label' first: one file gave the expansion one set of labels
    # and the Dataset another
    same = _h5(tmp_path / "same.h5", label=[0, 1, 2], labels=[0, 1, 2])
    assert [HDF5Source(same).label(i) for i in range(3)] == [HDF5FaceDataset(same)[i][1] for i in range(3)] == [0, 1, 2]
    other = _h5(tmp_path / "other.h5", label=[0, 1, 2], labels=[2, 1, 0])
    with pytest.raises(ExpandError, match="both 'label' and 'labels'"):
        HDF5Source(other)
    with pytest.raises(ValueError, match="both 'label' and 'labels'"):
        HDF5FaceDataset(other)
    one = _h5(tmp_path / "one.h5", labels=[4, 5, 6])
    assert [HDF5Source(one).label(i) for i in range(3)] == [HDF5FaceDataset(one)[i][1] for i in range(3)] == [4, 5, 6]
