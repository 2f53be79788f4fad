"""The README's Python examples run as written (the default model, offline)."""
from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_examples_run(tmp_path, monkeypatch, capsys):
    blocks = python_blocks()
    assert len(blocks) >= 3, "the README lost its Python examples"
    monkeypatch.chdir(tmp_path)  # the Dataset example writes its latent cache into the working folder
    torch.set_num_threads(1)
    scope: dict = {}
    exec(compile(blocks[0], "README.md: Use it", "exec"), scope)
    assert "torch.Size([4, " in capsys.readouterr().out  # the printed batch shape
    assert scope["out"].shape == scope["face"].shape and (tmp_path / "faces.latents.safetensors").is_file()
    # the codes example builds its transforms over the first example's `base`
    exec(compile(blocks[2], "README.md: Pose and light", "exec"), scope)
    # the batch example needs a loader that yields indices and a GPU: its calls run on the CPU here
    code = blocks[1].replace(".cuda(non_blocking=True)", "")
    x = torch.stack([torch.from_numpy(f.copy()).permute(2, 0, 1) for f, _ in scope["base"]])
    scope["loader"] = [(x, torch.tensor([0, 1]), torch.arange(2))]
    exec(compile(code, "README.md: batch transform", "exec"), scope)
    assert torch.equal(scope["out"], scope["again"]) and scope["out"].dtype == torch.uint8
