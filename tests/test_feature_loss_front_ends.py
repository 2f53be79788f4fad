"""The 'feature' refinement loss needs a feature network, which only ``genaug.Engine(feature_net=...)`` takes: the
Dataset and ``genaug expand`` refuse it up front (the transform does: tests/test_transform_args.py), not at the first
inversion - inside a DataLoader worker, or after an expansion has started its parts."""
from __future__ import annotations

import numpy as np
import pytest

import genaug
from genaug.cli import main
from genaug.expand import ExpandError, expand_to_hdf5


@pytest.mark.parametrize("loss", ["feature", "mse+0.5*feature"])
def test_expand_refuses_a_feature_loss_before_any_work(noise_faces, tmp_path, capsys, loss):
    # genaug expand ... --refine-loss feature --refine-steps 2 read the images, made OUT.parts and inverted the first
    # batch, then failed with exit 1: "the 'feature' reconstruction loss needs a feature_net"
    with pytest.raises(ExpandError, match="feature network"):
        expand_to_hdf5(noise_faces, tmp_path / "o.h5", 1, refine_loss=loss, refine_steps=2, device="cpu", progress=False)
    assert not (tmp_path / "o.h5.parts").exists()
    out = tmp_path / "c.h5"
    assert main(["expand", str(noise_faces), str(out), "--refine-loss", loss, "--refine-steps", "2", "--quiet"]) == 2
    assert "--refine-loss" in capsys.readouterr().err and not (tmp_path / "c.h5.parts").exists()


def test_the_dataset_refuses_a_feature_loss_when_built():
    # with lazy=True it was accepted, then failed at the first item (in a DataLoader worker) with "needs a feature_net"
    with pytest.raises(ValueError, match="feature network"):
        genaug.GenerativeAugDataset([np.zeros((64, 64, 3), np.uint8)], variants=1, refine_loss="feature", refine_steps=2,
                                    device="cpu", lazy=True, progress=False)
