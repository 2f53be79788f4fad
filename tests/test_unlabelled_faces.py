"""Faces without attribute labels (another face set) train alongside labelled ones: an empty cell in
attributes.csv is an unknown label, and bound codes learn only from the faces that have one."""
from __future__ import annotations

import torch

from genaug.training.data import load_faces
from genaug.training.edit import EditObjective, d_step, g_step
from genaug.training.edit_loop import main as edit_main
from test_edit_model import tiny_edit_nets
from test_training import read_log, write_faces
from test_training_options import EDIT_TINY


def _blank_labels(root, rows):
    """Empty the Eyeglasses and Smiling cells of the given data rows of root/attributes.csv."""
    lines = (root / "attributes.csv").read_text().splitlines()
    for r in rows:
        name, ident, *_ = lines[1 + r].split(",")
        lines[1 + r] = f"{name},{ident},,"
    (root / "attributes.csv").write_text("\n".join(lines) + "\n")


def test_empty_cells_read_as_unknown_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path / "cache"))
    root = write_faces(tmp_path / "faces", n=6)
    _blank_labels(root, [1, 4])
    data = load_faces(root, 16)
    assert data.attribute_names == ["Eyeglasses", "Smiling"]
    assert data.attributes[:, 0].tolist() == [-1, 0, -1, 1, 0, 1]  # 0/1 encodings elsewhere still read as -1/+1


def test_unlabelled_rows_do_not_reach_the_bound_code_losses():
    layout, E, G, D = tiny_edit_nets()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    attrs = torch.tensor([[1, -1, 1], [0, 0, 0], [-1, 1, -1], [0, 0, 0]], dtype=torch.float)
    known = layout.label_known(attrs)
    assert known[0].tolist() == [True, False, True, False]
    assert layout.label_known(attrs.abs() + 1) is None  # every row labelled: the plain path
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    torch.manual_seed(0)
    _, own, edited, target, log = g_step(EditObjective(), layout, E, G, D, x, attrs, gen())
    raw = E.forward_raw(x)[:, layout.spec.noise_dim :]
    # labelled rows carry their labels, unlabelled ones E's own estimate
    assert torch.equal(own[[0, 2], 0:2].argmax(1), torch.tensor([1, 0]))
    assert torch.allclose(own[[1, 3], 0:2], raw[[1, 3], 0:2].softmax(1), atol=1e-6)
    # the real-face code loss of D: flipping the "label" of an unlabelled row changes nothing
    base = layout.code_loss(raw, own, "bound", known)
    flipped = own.clone()
    flipped[[1, 3], 0:2] = flipped[[1, 3], 0:2].flip(1)
    assert torch.allclose(layout.code_loss(raw, flipped, "bound", known), base)
    assert not torch.allclose(layout.code_loss(raw, flipped, "bound"), layout.code_loss(raw, own, "bound"))
    loss_d, log_d = d_step(EditObjective(), layout, D, x, own, edited.detach(), target, None, known)
    assert torch.isfinite(loss_d)


def test_a_run_on_partly_labelled_faces_trains_and_evaluates(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path / "cache"))
    root = write_faces(tmp_path / "faces", n=12)
    _blank_labels(root, range(6, 12))
    args = [a for a in EDIT_TINY]
    args[args.index("--eval-every") + 1] = "2"
    assert edit_main([str(root), str(tmp_path / "run"), *args, "--steps", "2", "--balance", "0.5"]) == 0
    log = read_log(tmp_path / "run")
    assert [r["step"] for r in log if "eval" not in r] == [1, 2]
    assert all(torch.isfinite(torch.tensor(v)) for r in log if "eval" not in r for k, v in r.items()
               if isinstance(v, float))
    assert (tmp_path / "run" / "bundle" / "config.json").exists()
