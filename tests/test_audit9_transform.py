"""A ninth user audit (the albumentations transform and ``genaug augment``): each test failed before its fix."""
from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest

import genaug
from genaug.cli.augment import output_stems


def test_augment_names_inputs_whose_names_differ_only_in_case_or_suffix_apart(tmp_path):
    # a.jpg + a.JPG both became "a_jpg", and b.png's "b_png" met b_png.jpg's own stem: five inputs, three outputs
    # ("wrote 5 augmented images"), the others overwritten
    files = [tmp_path / n for n in ("a.jpg", "a.JPG", "b.jpg", "b.png", "b_png.jpg", "sub/c.png")]
    names = output_stems(files, tmp_path)
    assert len({n.as_posix().lower() for n in names.values()}) == len(files), names
    assert names[tmp_path / "b.jpg"] == Path("b_jpg") and names[tmp_path / "sub/c.png"] == Path("sub/c")
