"""genaug demo's --out, --images and --generated: a folder or a picture file, refused before the work, never
written over one of its inputs."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from conftest import noise_pngs
from genaug.cli import main

torch.set_num_threads(1)


def test_demo_out_may_be_a_folder_and_a_bad_extension_is_named(tiny_bundle_path, tmp_path, capsys, monkeypatch):
    # --out FOLDER (as augment's --out) failed after the work with "unknown file extension: "; --out x.txt likewise
    import genaug.cli.demo as demo

    monkeypatch.setattr(demo, "face_panel", lambda *a, **k: Image.new("RGB", (8, 8)))  # the sweeps are not the point
    run = ["demo", "--bundle", str(tiny_bundle_path), "--refine-steps", "0", "--generated", "0", "--max-faces", "1",
           "--device", "cpu"]
    assert main([*run, "--out", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("genaug demo: error: --out") and "'.txt'" in err, err
    assert main([*run, "--out", str(tmp_path)]) == 0
    assert Image.open(tmp_path / "genaug_demo.png").size[0] > 0


def test_demo_out_may_name_a_folder_that_does_not_exist_yet(tiny_bundle_path, tmp_path):
    # `genaug demo --out results` (its help: "a folder: genaug_demo.png in it") refused a folder not made yet:
    # "give a picture file (.png, .jpg, ...) or a folder, not 'no extension'"
    from genaug.cli.main import main

    out = tmp_path / "results"
    assert main(["demo", "--bundle", str(tiny_bundle_path), "--out", str(out), "--refine-steps", "0", "--device", "cpu"]) == 0
    assert (out / "genaug_demo.png").is_file()


def test_demo_refuses_an_out_below_a_file_before_the_work(tmp_path, monkeypatch, capsys):
    """`genaug demo --out some_file/x.png` failed only after loading the model and rendering every sweep."""
    import genaug.cli.demo as demo

    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    monkeypatch.setattr(demo, "_demo_faces", lambda *a: pytest.fail("the work started"))
    assert demo.main(["--out", str(blocker / "sub" / "x.png")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


def test_demo_does_not_write_its_picture_over_one_of_the_images(tmp_path, tiny_bundle_path, capsys):
    # `genaug demo --images me.jpg --out me.jpg` replaced the user's photo with the demo picture
    photo = noise_pngs(tmp_path / "me", (40, 40, 3), n=1) / "0.png"
    before = photo.read_bytes()
    assert main(["demo", "--images", str(photo), "--out", str(photo), "--bundle", str(tiny_bundle_path), "--device", "cpu"]) == 1
    assert photo.read_bytes() == before and "is one of the --images" in capsys.readouterr().err


def test_demo_refuses_generated_faces_from_an_edit_model(tmp_path, capsys):
    """``genaug demo --generated 3`` with the default (edit-kind) bundle wrote a picture without any generated face and
    said nothing: an edit model cannot invent faces, so the option was dropped silently. An explicit count is now
    refused by name (the default, and ``--generated 0``, still show the real faces only)."""
    from genaug.cli.main import main

    out = tmp_path / "demo.png"
    assert main(["demo", "--generated", "3", "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "--generated 3:" in err and "cannot generate random ones" in err
    assert not out.exists()
    from genaug.cli.demo import build_parser

    assert "only for bundles that can generate faces" in " ".join(build_parser().format_help().split())


def test_the_reconstruction_of_a_dim_photo_is_shown_at_its_exposure(monkeypatch):
    # a dim face is inverted lifted to a normal exposure: its reconstruction was shown as bright as the lifted face
    # beside the dim photo ("input / recon"), as though the model had drawn it so
    import numpy as np

    import genaug
    import genaug.cli.demo as demo
    from genaug.engine.exposure import lift

    engine = genaug.Engine(device="cpu", framing="full", refine_steps=0)
    photo = (np.random.default_rng(0).integers(60, 200, (64, 64, 3)) * 0.3).astype(np.uint8)
    shown = []
    monkeypatch.setattr(demo, "demo_codes", lambda bundle: [0])  # (the sweeps are not the point)
    monkeypatch.setattr(engine, "augment", lambda images, edits: (images, None))
    monkeypatch.setattr(demo, "to_pil", lambda t: shown.append(t.detach().cpu()) or Image.new("RGB", (8, 8)))
    demo.face_panel(engine, photo, "dim")
    x = engine.frame([photo])[0]
    lifted = float(lift(x, low=-1.0).mean() - x.mean())
    assert lifted > 0.2 and abs(float(shown[-1].mean() - x.mean())) < 0.25 * lifted
