"""The run configs of the edit and detail kinds share their run options (:class:`genaug.training.config.RunOptions`);
their saved form (``asdict``: ``train_config.json``, a bundle's ``training.config``) and defaults stay as they were, so
old run folders resume and old bundles load."""
import json
from dataclasses import asdict

import pytest

from genaug.bundle import load_bundle
from genaug.bundle.format import DEFAULT_DIR
from genaug.training.detail import DetailConfig
from genaug.training.edit_loop import EditTrainConfig

EDIT = {  # asdict(EditTrainConfig("faces", "run")) before the shared run options
    "data": "faces", "out": "run", "image_size": 64, "channels": 3, "content_channels": 32, "detail_channels": 0,
    "categorical": "glasses:2:Eyeglasses,smile:2:Smiling,mouth:2:Mouth_Slightly_Open,bangs:2:Bangs,male:2:Male",
    "continuous": "3", "identity_unsafe": "male", "e_width": 32, "g_width": 32, "d_width": 32, "batch_size": 32,
    "balance": 0.0, "steps": 100000, "minutes": 0.0, "lr": 0.0002, "beta1": 0.5, "ema": 0.999, "adv_loss": "ns",
    "lambda_rec": 10.0, "lambda_cls": 2.0, "lambda_cls_d": 1.0, "lambda_cycle": 5.0, "lambda_enc": 1.0,
    "edit_space": "generated", "lambda_identity": 0.0, "identity_judge": "student", "d_augment": False, "init_from": "",
    "d_warmup": 0, "attributes": "auto", "holdout": 256, "limit": 0, "log_every": 50, "eval_every": 500,
    "checkpoint_every": 250, "threads": 0, "seed": 0, "device": "auto", "name": "edit", "half": False,
    "snapshots": False, "overwrite": False,
}
DETAIL = {  # asdict(DetailConfig("default", "faces", "run")) before
    "bundle": "default", "data": "faces", "out": "run", "channels": 16, "steps": 20000, "minutes": 0.0, "batch_size": 32,
    "lr": 0.0002, "lambda_edit": 2.0, "holdout": 256, "log_every": 50, "eval_every": 500, "checkpoint_every": 250,
    "threads": 0, "seed": 0, "device": "auto", "name": "", "half": False, "overwrite": False,
}


def test_each_configs_saved_form_and_defaults_are_unchanged():
    assert asdict(EditTrainConfig("faces", "run")) == EDIT
    assert asdict(DetailConfig("default", "faces", "run")) == DETAIL
    assert EditTrainConfig("faces", "run", 16).image_size == 16  # the kind's own options still positional after data, out
    assert DetailConfig("default", "faces", "run", 8).channels == 8


def test_the_shipped_default_loads_and_its_saved_configs_build_again():
    bundle = load_bundle("default")
    training = json.loads((DEFAULT_DIR / "config.json").read_text())["training"]
    assert bundle.kind == training["kind"] == "edit"
    saved = training["config"]
    assert {k: v for k, v in asdict(EditTrainConfig(**saved)).items() if k in saved} == saved
    detail = training["detail"]["config"]
    assert {k: v for k, v in asdict(DetailConfig(**detail)).items() if k in detail} == detail


@pytest.mark.parametrize("make, option, value, message", [
    (lambda **kw: EditTrainConfig("faces", "run", **kw), "steps", 0, "--steps must be >= 1, got 0"),
    (lambda **kw: DetailConfig("default", "faces", "run", **kw), "batch_size", 1, "--batch-size must be >= 2, got 1"),
    (lambda **kw: EditTrainConfig("faces", "run", **kw), "lr", 0.0, "--lr must be > 0, got 0"),
    (lambda **kw: DetailConfig("default", "faces", "run", **kw), "threads", -1, "--threads must be >= 0, got -1"),
    (lambda **kw: EditTrainConfig("faces", "run", **kw), "d_warmup", -1, "--d-warmup must be >= 0, got -1"),
])
def test_the_shared_and_the_kinds_own_options_are_checked(make, option, value, message):
    with pytest.raises(ValueError, match=message):
        make(**{option: value})
