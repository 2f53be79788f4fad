"""Device names as a user gives them: a device this machine lacks is one clear ValueError (a usage error on the
command line), and a ``torch.device`` is taken where a name is."""
from __future__ import annotations

import albumentations as A
import pytest
import torch

import genaug
from genaug.cli import main
from genaug.device import resolve_device


@pytest.mark.parametrize("name", ["mps", "xpu", "meta"])
def test_a_device_this_machine_lacks_is_a_clear_error(name):
    if name != "meta" and getattr(getattr(torch.backends, name, None) or getattr(torch, name, None), "is_available",
                                  lambda: False)():
        pytest.skip(f"this machine has {name}")
    with pytest.raises(ValueError, match=f"device '{name}'"):
        resolve_device(name)


def test_the_cli_refuses_a_missing_device_in_one_line(tmp_path, capsys):
    if torch.backends.mps.is_available():
        pytest.skip("this machine has mps")
    assert main(["augment", str(tmp_path), "--out", str(tmp_path / "out"), "--device", "mps"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("genaug augment: error: device 'mps'")


def test_the_transform_takes_a_torch_device_and_serialises_its_name():
    aug = genaug.GenerativeFaceAug(device=torch.device("cpu"), p=1.0)
    assert aug.device == "cpu" and A.to_dict(aug)["transform"]["device"] == "cpu"
    assert A.from_dict(A.to_dict(aug)).device == "cpu"
