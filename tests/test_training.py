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
    out = subprocess.run([sys.executable, "-m", "genaug.training", "--kind", "infogan", "--help"], capture_output=True, text=True, check=True).stdout
    for flag in ("--kind", "--adv-loss", "--noise-head", "--diffaug", "--instance-noise", "--steps",
                 "--predictor-steps", "--categorical", "--overwrite", "--lambda-info"):
        assert flag in out


def test_genaug_train_help(capsys):
    from genaug.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--kind", "infogan", "--help"])
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


def linked_faces(root: Path, n: int) -> Path:
    """The first ``n`` faces of celeba_train_64 (+ its attributes.csv) as links in ``root``: a small real set."""
    data = need(CELEBA64)
    (root / "images").mkdir(parents=True)
    for f in sorted((data / "images").iterdir())[:n]:
        (root / "images" / f.name).symlink_to(f)
    lines = (data / "attributes.csv").read_text().splitlines()
    (root / "attributes.csv").write_text("\n".join(lines[: n + 1]) + "\n")  # rows follow the sorted file names
    return root


class ToyKind:
    """A skeleton kind fitting y = 3x with one weight; can send itself SIGTERM at a chosen step."""

    def __init__(self, out: Path, steps: int, kill_at: int = -1, **plan):
        from genaug.training.skeleton import RngState, Run, RunPlan

        self.w = torch.nn.Linear(1, 1, bias=False)
        self.opt = torch.optim.SGD(self.w.parameters(), lr=0.1)
        self.gen = torch.Generator().manual_seed(0)
        self.kill_at, self.evals, self.exports = kill_at, [], []
        self.parts = lambda: {"w": self.w, "opt": self.opt, "gen": RngState(self.gen)}
        settings = {"lr": 0.1, "steps": steps}
        self.runner = Run(self, RunPlan(out, steps, settings, {"steps"}, log_every=1, checkpoint_every=4, eval_every=5,
                                        **plan))
        self.runner.resume()

    def train_step(self, step: int) -> dict:
        if step == self.kill_at:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGTERM)  # arrives during the step: the step finishes, then the run stops
        x = torch.randn(16, 1, generator=self.gen)
        loss = (self.w(x) - 3 * x).pow(2).mean()
        self.opt.zero_grad(), loss.backward(), self.opt.step()
        return {"loss": loss.detach()}

    def evaluate(self, step: int) -> dict:
        self.evals.append(step)
        return {"w": self.w.weight.item()}

    def export(self, step: int) -> float:
        self.exports.append(step)
        return self.w.weight.item()


def test_skeleton_stops_on_sigterm_and_resumes_without_duplicate_log_lines(tmp_path, capsys):
    out = tmp_path / "run"
    a = ToyKind(out, steps=12, kill_at=6)
    a.runner.run()
    assert a.runner.step == 7 and a.runner.stopped_by == "SIGTERM"
    assert "stopped by SIGTERM at step 7" in capsys.readouterr().out
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 7  # checkpointed at the stop, not at 4
    assert a.evals == [5, 7] and a.exports == [7]  # periodic evaluation, then the final one and the export
    b = ToyKind(out, steps=12)
    assert b.runner.step == 7 and torch.equal(b.w.weight, a.w.weight)
    assert torch.equal(b.gen.get_state(), a.gen.get_state())  # the data stream continues where it stopped
    w = b.runner.run()
    log = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == list(range(1, 13))  # every step logged once across both invocations
    assert [r["step"] for r in log if "eval" in r] == [5, 7, 10, 12]
    assert abs(w - 3) < 0.3 and log[-2]["loss"] < log[0]["loss"]  # it learned
    # a changed setting outside the resumable ones refuses; a tiny budget stops at once with a checkpoint
    with pytest.raises(ValueError, match=r"different settings \(\['lr'\]\)"):
        from genaug.training.skeleton import Run, RunPlan

        Run(b, RunPlan(out, 12, {"lr": 0.2, "steps": 12}, {"steps"})).resume()
    c = ToyKind(out, steps=20, minutes=1e-9)
    c.runner.run()
    assert c.runner.stopped_by == "budget" and c.runner.step == 12 and c.exports == [12]


def test_train_dispatches_every_kind_through_the_registry(capsys):
    from genaug.training.cli import KINDS, main

    assert {"edit", "infogan", "began", "detail"} <= set(KINDS)
    for kind, flag in (("edit", "--lambda-cycle"), ("infogan", "--lambda-info"), ("detail", "--lambda-edit")):
        with pytest.raises(SystemExit) as e:
            main(["--kind", kind, "--help"])
        assert e.value.code == 0 and flag in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--kind", "vae", "x", "y"])
    assert "invalid choice: 'vae'" in capsys.readouterr().err


@pytest.mark.data
def test_distill_kind_learns_real_faces_and_resumes_its_cpu_budget(tmp_path):
    """The student fine-tunes towards a teacher's descriptors of real faces (the shipped student as a
    fast stand-in for dlib); a second invocation continues the CPU-minute budget from the checkpoint."""
    from genaug.faces.identity import get_judge, student_available
    from genaug.training.data import load_faces
    from genaug.training.distill import DistillConfig, describe_faces, teacher_subset, train

    if not student_available():
        pytest.skip("no distilled student shipped to act as the teacher")
    src = linked_faces(tmp_path / "faces", 200)
    faces = load_faces(src, 64, 3)
    out = tmp_path / "run"
    out.mkdir()
    describe_faces(faces.images, teacher_subset(len(faces), 120, 0), out / "teacher.safetensors", "faces", 0,
                   judge=get_judge("student"))
    cfg = dict(out=str(out), data=str(src), batch_size=16, holdout=30)
    train(DistillConfig(**cfg, minutes=0.03))
    first = torch.load(out / "distill_checkpoint.pt", weights_only=True)["step"]
    train(DistillConfig(**cfg, minutes=0.08))
    log = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    evals = [r for r in log if "eval" in r]
    assert evals[0]["step"] == 0 and evals[0]["eval"]["init"] == "ridge head"
    assert evals[-1]["step"] > first > 0  # the second call continued from the first one's checkpoint
    assert [r["step"] for r in evals] == sorted({r["step"] for r in evals})  # no step logged twice
    assert evals[-1]["eval"]["descriptor_error"] < evals[0]["eval"]["descriptor_error"]  # it learned
    assert (out / "evaluator_student.safetensors").exists()


@pytest.mark.data
def test_evaluator_kind_learns_attributes_of_real_faces_and_resumes(tmp_path):
    from genaug.training.evaluators import EvaluatorTrainConfig, train_evaluator

    src = linked_faces(tmp_path / "faces", 400)
    cfg = dict(kind="attributes", data=str(src), out=str(tmp_path / "run"), batch_size=32, holdout=100, lr=3e-3,
               widths=(8, 16, 32, 64), embed_dim=32, minutes=5.0)
    train_evaluator(EvaluatorTrainConfig(**cfg, max_epochs=2))  # 300 train faces: 9 steps an epoch
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 18
    weights = train_evaluator(EvaluatorTrainConfig(**cfg, max_epochs=8))  # continues at epoch 2
    log = [json.loads(ln) for ln in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    evals = [(r["step"], r["eval"]) for r in log if "eval" in r]
    assert [s for s, _ in evals] == [9 * e for e in range(1, 9)]  # one validation per epoch, none twice
    assert evals[-1][1]["mean_auc"] > evals[0][1]["mean_auc"] + 0.05  # it learned (seeded: 0.51 -> 0.70)
    assert json.loads(weights.with_suffix(".json").read_text())["training"]["epochs"] == 8


@pytest.mark.data
def test_genaug_train_edit_stops_on_sigterm_and_the_same_command_resumes(tmp_path):
    """A real run through ``genaug train --kind edit``: SIGTERM -> checkpoint + bundle, exit 0; the
    same command (more steps) continues from the checkpoint and logs every step once."""
    import os
    import signal
    import time

    data, out = need(CELEBA64), tmp_path / "run"
    cmd = [sys.executable, "-m", "genaug", "train", "--kind", "edit", str(data), str(out), "--image-size", "32",
           "--content-channels", "4", "--e-width", "4", "--g-width", "4", "--d-width", "4", "--batch-size", "4",
           "--limit", "60", "--holdout", "8", "--categorical", "glasses:2:Eyeglasses", "--identity-unsafe", "", "--continuous", "1",
           "--log-every", "1", "--eval-every", "1000", "--checkpoint-every", "1000", "--threads", "1", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd + ["--steps", "100000"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "log.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not (log.exists() and len(log.read_text().splitlines()) >= 3):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr[-2000:]
    stopped = int(torch.load(out / "checkpoint.pt", weights_only=True)["step"])
    assert f"stopped by SIGTERM at step {stopped}" in stdout and stopped >= 3
    assert load_bundle(out / "bundle").training["steps"] == stopped
    done = subprocess.run(cmd + ["--steps", str(stopped + 3)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming {out} at step {stopped}" in done.stdout
    steps = [r["step"] for r in read_log(out) if "eval" not in r]
    assert steps == list(range(1, stopped + 4))  # every step once, across the stop
    assert load_bundle(out / "bundle").training["steps"] == stopped + 3


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_holds_it(tmp_path):
    out = tmp_path / "run"
    a = ToyKind(out, steps=4)  # resumed: holds the folder until its run ends
    with pytest.raises(OSError, match="another training run is using"):  # one line from `genaug train`
        ToyKind(out, steps=4)
    assert abs(a.runner.run()) > 0 and a.runner.lock is None  # released when the run ends
    b = ToyKind(out, steps=8)  # the folder is free again: the same command resumes
    assert b.runner.step == 4
    b.runner.run()
    assert b.runner.step == 8
