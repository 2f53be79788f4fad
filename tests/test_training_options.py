"""Training command lines as a user meets them: a bad option is refused by name before any work, a
run resumes whatever spelling of its paths the same command uses (or after the run folder moved),
and a corrupt checkpoint is one clear error."""
from __future__ import annotations

import pytest
import torch

from genaug.training.data import FaceData, split_holdout
from genaug.training.detail import DetailConfig
from genaug.training.edit_loop import EditTrainConfig
@pytest.mark.parametrize("option, value, message", [
    ("steps", -5, "--steps must be >= 1, got -5"), ("steps", 0, "--steps must be >= 1, got 0"),
    ("batch_size", 1, "--batch-size must be >= 2, got 1"), ("minutes", -1.0, "--minutes must be >= 0, got -1"),
    ("holdout", -3, "--holdout must be >= 0, got -3"), ("limit", -1, "--limit must be >= 0, got -1"),
    ("balance", 2.0, r"--balance must be in \[0, 1\], got 2"), ("eval_every", -1, "--eval-every must be >= 0"),
])
def test_edit_kind_names_the_bad_option(option, value, message):
    with pytest.raises(ValueError, match=message):
        EditTrainConfig("faces", "run", **{option: value})


def test_detail_kind_names_the_bad_option():
    with pytest.raises(ValueError, match="--steps must be >= 1, got -2"):
        DetailConfig("default", "faces", "run", steps=-2)
    with pytest.raises(ValueError, match="--holdout must be >= 0, got -1"):
        DetailConfig("default", "faces", "run", holdout=-1)


def test_a_negative_holdout_is_refused_not_read_as_a_slice():
    """``perm[-3:]`` would have trained on 3 faces and held out all the others."""
    data = FaceData(torch.zeros(20, 3, 8, 8, dtype=torch.uint8), [f"{i}.png" for i in range(20)])
    train, held = split_holdout(data, 3)
    assert (len(train), len(held)) == (17, 3)
    with pytest.raises(ValueError, match="--holdout must be >= 0, got -3"):
        split_holdout(data, -3)
