"""``--codes`` with an empty entry (``glasses,,smile``, a trailing comma) is a usage error naming it, as the library
refuses a code ``""``; it was dropped silently."""
from __future__ import annotations

import pytest

import genaug
from genaug.cli import main


@pytest.mark.parametrize("cmd", ["expand", "augment"])
@pytest.mark.parametrize("codes,entry", [("glasses,,smile", "entry 2 of 3"), ("smile,", "entry 2 of 2"), (", smile", "entry 1 of 2")])
def test_an_empty_entry_in_codes_is_refused_naming_it(noise_faces, tmp_path, capsys, cmd, codes, entry):
    out = tmp_path / ("o.h5" if cmd == "expand" else "out")
    argv = [cmd, str(noise_faces), str(out)] if cmd == "expand" else [cmd, str(noise_faces), "--out", str(out)]
    assert main([*argv, "--codes", codes, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"genaug {cmd}: error: --codes {codes!r}") and f"{entry} is empty" in err, err
    assert not out.exists()


def test_the_library_refuses_an_empty_code_too():
    with pytest.raises(ValueError, match="unknown code ''"):
        genaug.GenerativeFaceAug(codes=["glasses", "", "smile"], device="cpu")
    with pytest.raises(ValueError, match="unknown code ''"):
        genaug.GenerativeAugDataset([], codes=["glasses", "", "smile"], progress=False)
