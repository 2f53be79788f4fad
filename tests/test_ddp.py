"""Data-parallel training under torchrun: 2 CPU processes (gloo) train, checkpoint, resume and
write one bundle; the replicas stay identical (the loop checks a weight fingerprint across ranks
at every checkpoint and stops the run if they differ)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genaug.bundle import load_bundle

from test_training import read_log, write_faces

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")

ARGS = [
    "--image-size", "32", "--g-width", "8", "--d-width", "8", "--e-width", "8", "--noise-dim", "8",
    "--categorical", "3", "--continuous", "1", "--batch-size", "8", "--steps", "4", "--holdout", "4",
    "--log-every", "1", "--checkpoint-every", "2", "--sample-every", "1000", "--device", "cpu",
]


def torchrun(target: list[str], args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH: a script target runs with its own folder on sys.path; this checkout's genaug, not an installed one
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENAUG_CACHE": str(tmp_path / "cache"), "NO_ALBUMENTATIONS_UPDATE": "1",
           "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *target, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def test_two_ranks_train_in_sync_and_resume(tmp_path):
    data, out = write_faces(tmp_path / "faces"), tmp_path / "run"
    r = torchrun(["-m", "genaug.training"], [str(data), str(out), *ARGS, "--kind", "began", "--predictor-steps", "2"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("wrote bundle") == 1  # rank 0 alone writes
    sync = [x for x in read_log(out) if x["phase"] == "sync"]
    assert [(x["step"], x["world"], x["rank_spread"]) for x in sync] == [(2, 2, 0.0), (4, 2, 0.0), (6, 2, 0.0)]
    b1 = load_bundle(out / "bundle")
    assert b1.training["steps"] == 6

    # the same command with a longer predictor phase resumes at step 6 on both ranks
    r = torchrun(["-m", "genaug.training"], [str(data), str(out), *ARGS, "--kind", "began", "--predictor-steps", "4"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resuming {out} at step 6" in r.stdout
    log = read_log(out)
    assert [x["step"] for x in log if x["phase"] != "sync"] == list(range(1, 9))
    assert [(x["step"], x["rank_spread"]) for x in log if x["phase"] == "sync"][-1] == (8, 0.0)
    b2 = load_bundle(out / "bundle")
    assert b2.training["steps"] == 8
    g1, g2 = b1.generator.state_dict(), b2.generator.state_dict()
    assert all(torch.equal(g1[k], g2[k]) for k in g1)  # G is frozen in the predictor phase: it was kept
    assert json.loads((out / "metrics.json").read_text()).keys() >= {"q_acc_c0", "heldout_mse"}


def test_divergence_is_detected(tmp_path):
    """Negative control: with gradient averaging switched off the ranks (different batches) drift
    apart and the sync check stops the run."""
    script = tmp_path / "no_average.py"
    script.write_text(
        "import genaug.training.distributed as D\nD.average_gradients = lambda module, world: None\n"
        "from genaug.training.cli import main\nmain()\n"
    )
    data = write_faces(tmp_path / "faces")
    r = torchrun([str(script)], [str(data), str(tmp_path / "run"), *ARGS, "--kind", "infogan", "--predictor-steps", "0"], tmp_path)
    assert r.returncode != 0
    assert "data-parallel replicas diverged at step 2" in r.stderr + r.stdout, r.stderr[-3000:]
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
