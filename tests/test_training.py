"""Training: every model kind / objective trains a few steps on tiny networks and writes a usable
bundle; runs resume from their checkpoint; the command lines list their options."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genaug.bundle import load_bundle
from genaug.models.nets import init_weights
from genaug.models.registry import build_generator
from genaug.training.distributed import fingerprint
from genaug.training.gan import GanKind
from genaug.training.loop import TrainConfig, train

from conftest import CELEBA64, need

TINY = dict(
    image_size=32, g_width=8, d_width=8, e_width=8, noise_dim=8, categorical="3", continuous="1",
    batch_size=8, steps=3, predictor_steps=2, holdout=4, limit=16, log_every=1, sample_every=1000,
    checkpoint_every=1000, device="cpu",
)


def config(data, out, **settings) -> TrainConfig:
    """A training config from option names, as the command line gives them."""
    return TrainConfig.from_flat(data=str(data), out=str(out), **settings)


def write_faces(root: Path, n: int = 12, attributes: bool = True) -> Path:
    """A tiny synthetic 'face' folder (40x40 PNGs: a bright box on a shaded ground) + attributes.csv."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = ["filename,celeba_identity,Eyeglasses,Smiling"]
    for i in range(n):
        a = np.full((40, 40, 3), 40 + 15 * i, np.uint8)
        a[10:30, 12:28] = rng.integers(120, 255, 3)
        Image.fromarray(a).save(root / "images" / f"{i:04d}.png")
        rows.append(f"{i:04d}.png,{i},{1 if i % 2 else -1},{1 if i % 3 else -1}")
    if attributes:
        (root / "attributes.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    return write_faces(tmp_path_factory.mktemp("faces"))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def read_log(out: Path) -> list[dict]:
    return [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines() if ln.strip()]


def check_run(out: Path, cfg: TrainConfig) -> None:
    """Finite losses at every logged step, grids, metrics and a loadable bundle that generates."""
    log = read_log(out)
    assert [r["step"] for r in log] == list(range(1, cfg.schedule.steps + cfg.schedule.predictor_steps + 1))
    for rec in log:
        for k, v in rec.items():
            if isinstance(v, float):
                assert math.isfinite(v), f"step {rec['step']}: {k} = {v}"
    assert {r["phase"] for r in log} == {"gan", "predictor"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {f"q_acc_{c.name}" for c in cfg.spec().categorical} | {"heldout_mse", "heldout_msssim"}
    assert all(math.isfinite(v) for v in metrics.values())
    assert (out / "samples" / f"step_{cfg.schedule.steps:07d}.png").is_file()
    assert {p.name for p in (out / "sweeps").glob("*.png")} == {f"{c.name}.png" for c in cfg.spec().codes}
    b = load_bundle(out / "bundle")
    assert b.spec == cfg.spec() and b.training["steps"] == cfg.schedule.steps + cfg.schedule.predictor_steps
    lat = b.spec.sample(4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        img = b.generator(lat)
        rec = b.predictor(img)
    assert img.shape == (4, 3, 32, 32) and torch.isfinite(img).all() and img.abs().max() <= 1
    assert rec.shape == lat.shape and torch.isfinite(rec).all()


def test_infogan_trains_on_synthetic_folder(faces, tmp_path, capsys):
    cfg = config(str(faces), str(tmp_path / "run"), **TINY)
    bundle = train(cfg)
    check_run(tmp_path / "run", cfg)
    assert bundle is not None and "wrote bundle" in capsys.readouterr().out
    torch.manual_seed(cfg.seed)  # the trainer's initial generator, rebuilt: training moved it
    g0 = build_generator(cfg.spec(), cfg.network)
    init_weights(g0)
    assert not torch.equal(fingerprint(g0), fingerprint(bundle.generator))
    assert torch.equal(fingerprint(bundle.generator), fingerprint(load_bundle(tmp_path / "run" / "bundle").generator))


VARIANTS = {
    "infogan": {},
    "began": {"kind": "began"},
    "noise_head": {"noise_head": True, "lambda_noise": 0.5},
    "hinge": {"adv_loss": "hinge"},
    "wgan": {"adv_loss": "wgan"},
    "lsgan": {"adv_loss": "lsgan"},
    "minimax+diffaug": {"adv_loss": "minimax", "diffaug": "color,translation,cutout"},
    "instance_noise": {"instance_noise": 0.2, "instance_noise_steps": 2},
    "attribute_bound": {"categorical": "glasses:2:Eyeglasses,3", "continuous": "smile:Smiling"},
}


@pytest.mark.data
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variants_train_on_real_faces(variant, tmp_path):
    data = need(CELEBA64)
    cfg = config(str(data), str(tmp_path / variant), **{**TINY, **VARIANTS[variant]})
    train(cfg)
    check_run(tmp_path / variant, cfg)
    log = read_log(tmp_path / variant)
    if variant == "began":
        assert "k_t" in log[0] and "M_global" in log[0]
    if variant == "noise_head":
        assert log[0]["noise_rec"] > 0
    if variant == "instance_noise":
        assert log[0]["instance_noise"] > 0 and log[2]["instance_noise"] == 0
    if variant == "attribute_bound":
        assert "attr" in log[0]
        assert load_bundle(tmp_path / variant / "bundle").spec.codes[0].attribute == "Eyeglasses"


def test_attribute_bound_code_on_synthetic_folder(faces, tmp_path):
    cfg = config(str(faces), str(tmp_path / "run"), **{**TINY, **VARIANTS["attribute_bound"]})
    train(cfg)
    check_run(tmp_path / "run", cfg)
    assert "attr" in read_log(tmp_path / "run")[0]


def test_unknown_settings_fail_clearly(faces, tmp_path):
    for bad, match in [({"adv_loss": "bogus"}, "adversarial loss 'bogus'"), ({"kind": "vae"}, "model kind 'vae'"),
                       ({"diffaug": "blur"}, "DiffAugment"), ({"predictor_loss": "lpipz"}, "lpipz"),
                       ({"image_size": 48}, "power of two"), ({"categorical": "a:2,a:3"}, "unique")]:
        with pytest.raises(ValueError, match=match):
            config(str(faces), str(tmp_path), **bad)
    with pytest.raises(ValueError, match="no attributes.csv"):
        train(config(str(write_faces(tmp_path / "plain", attributes=False)), str(tmp_path / "r"),
                          **{**TINY, "categorical": "g:2:Eyeglasses"}))


def test_resume_continues_from_the_checkpoint(faces, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    first = config(str(faces), str(out), **{**TINY, "checkpoint_every": 2})
    b1 = train(first)
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 5
    capsys.readouterr()
    # same settings, longer predictor phase: continues at step 5, G (frozen after the GAN phase) is kept
    more = config(str(faces), str(out), **{**TINY, "checkpoint_every": 2, "predictor_steps": 4})
    calls = {"gan_step": 0, "predictor_step": 0}
    for name in calls:
        def counted(self, step, _orig=getattr(GanKind, name), _name=name):
            calls[_name] += 1
            return _orig(self, step)
        monkeypatch.setattr(GanKind, name, counted)
    b2 = train(more)
    assert calls == {"gan_step": 0, "predictor_step": 2}  # only steps 6 and 7 ran
    assert f"resuming {out} at step 5" in capsys.readouterr().out
    assert [r["step"] for r in read_log(out)] == list(range(1, 8))
    assert b2.training["steps"] == 7 and torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 7
    assert torch.equal(fingerprint(b1.generator), fingerprint(b2.generator))
    assert not torch.equal(fingerprint(b1.predictor), fingerprint(b2.predictor))
    # log lines written after the last checkpoint (an interrupted run) are dropped on resume
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps({"step": 8, "phase": "predictor"}) + "\n")
    train(config(str(faces), str(out), **{**TINY, "checkpoint_every": 2, "predictor_steps": 5}))
    assert [r["step"] for r in read_log(out)] == list(range(1, 9))
    # a different setting refuses to resume, unless told to start over
    with pytest.raises(ValueError, match=r"different settings \(\['lr_g'\]\)"):
        train(config(str(faces), str(out), **{**TINY, "lr_g": 1e-3}))
    capsys.readouterr()
    train(config(str(faces), str(out), **{**TINY, "lr_g": 1e-3, "overwrite": True}))
    assert "resuming" not in capsys.readouterr().out
    assert [r["step"] for r in read_log(out)] == list(range(1, 6))
    assert json.loads((out / "train_config.json").read_text())["lr_g"] == 1e-3


def test_fingerprint_sees_any_change():
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    a = fingerprint(m)
    with torch.no_grad():
        w = m[0].weight
        w[0, 0], w[0, 1] = w[0, 1].item(), w[0, 0].item()  # a permutation keeps the plain sum
    b = fingerprint(m)
    m[1].running_mean += 1e-3
    assert not torch.equal(a, b) and not torch.equal(b, fingerprint(m))


def test_cli_help_lists_the_options():
    out = subprocess.run([sys.executable, "-m", "genaug.training", "--help"], capture_output=True, text=True, check=True).stdout
    for flag in ("--kind", "--adv-loss", "--noise-head", "--diffaug", "--instance-noise", "--steps",
                 "--predictor-steps", "--categorical", "--overwrite", "--lambda-info"):
        assert flag in out


def test_genaug_train_help(capsys):
    from genaug.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: genaug train") and "--adv-loss" in out and "--began-gamma" in out


def test_sweep_grid_parsing():
    from genaug.training.grid import combinations, parse_grid, run_name

    assert parse_grid("adv_loss=ns,hinge") == ("adv_loss", ["ns", "hinge"])
    assert parse_grid("lambda-info=0.5,1") == ("lambda_info", [0.5, 1.0])
    assert parse_grid("noise_head=true,0") == ("noise_head", [True, False])
    assert parse_grid("diffaug=color,cutout|") == ("diffaug", ["color,cutout", ""])
    for bad, match in [("adv_loss", "KEY=V1"), ("lr=1", "unknown training option 'lr'"), ("out=a,b", "unknown"),
                       ("steps=ten", "invalid literal"), ("half=maybe", "not a boolean")]:
        with pytest.raises(ValueError, match=match):
            parse_grid(bad)
    grid = combinations([parse_grid("adv_loss=ns,hinge"), parse_grid("lambda_info=0.5,1")])
    assert len(grid) == 4 and grid[1] == {"adv_loss": "ns", "lambda_info": 1.0}
    assert run_name(grid[1]) == "adv_loss-ns_lambda_info-1.0"
    assert run_name({"diffaug": "color,cutout"}) == "diffaug-color+cutout"
    with pytest.raises(ValueError, match="more than one"):
        combinations([parse_grid("steps=1"), parse_grid("steps=2")])


def test_sweep_runs_every_combination_and_skips_finished(tmp_path, capsys):
    from genaug.training.grid import main

    data = write_faces(tmp_path / "faces", attributes=False)
    out = tmp_path / "sweep"
    tiny = ["--image-size", "32", "--g-width", "8", "--d-width", "8", "--e-width", "8", "--noise-dim", "8",
            "--categorical", "3", "--continuous", "1", "--batch-size", "8", "--holdout", "4", "--device", "cpu",
            "--steps", "2", "--predictor-steps", "1", "--log-every", "1"]
    argv = [str(data), str(out), *tiny, "--grid", "adv_loss=ns,hinge", "--grid", "categorical=3|g:2:Eyeglasses"]
    assert main(argv) == 1  # the attribute-bound code has no attributes.csv: recorded as failed, the rest ran
    lines = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["name"], r["status"]) for r in lines] == [
        ("adv_loss-ns_categorical-3", "done"), ("adv_loss-ns_categorical-g+2+Eyeglasses", "failed"),
        ("adv_loss-hinge_categorical-3", "done"), ("adv_loss-hinge_categorical-g+2+Eyeglasses", "failed"),
    ]
    assert "attributes.csv" in lines[1]["error"]
    done = [r for r in lines if r["status"] == "done"]
    for r in done:
        assert set(r["metrics"]) == {"q_acc_c0", "heldout_mse", "heldout_msssim"}
        assert r["metrics"] == json.loads((Path(r["out"]) / "metrics.json").read_text())
        assert json.loads((Path(r["out"]) / "train_config.json").read_text())["adv_loss"] == r["settings"]["adv_loss"]
    table = capsys.readouterr().out
    assert "run" in table and "q_acc_c0" in table and "adv_loss-hinge_categorical-3" in table
    # re-running skips the finished runs (their logs are untouched)
    before = {r["name"]: (Path(r["out"]) / "log.jsonl").stat().st_mtime_ns for r in done}
    main([str(data), str(out), *tiny, "--grid", "adv_loss=ns,hinge", "--grid", "categorical=3"])
    again = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in again] == ["skipped", "skipped"]
    assert [r["metrics"] for r in again] == [r["metrics"] for r in done]
    assert before == {r["name"]: (Path(r["out"]) / "log.jsonl").stat().st_mtime_ns for r in done}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augmentation_on_gpu_with_the_loops_cpu_generator():
    from genaug.training.infogan import InfoGANObjective, ObjectiveConfig

    x = torch.zeros(4, 3, 32, 32, device="cuda")
    obj = InfoGANObjective(TrainConfig("x", "y").spec(), None, None, ObjectiveConfig(diffaug="color,translation,cutout"), {})
    y = obj._d_in(x, 0.1, torch.Generator().manual_seed(0))
    assert y.device.type == "cuda" and y.std() > 0
