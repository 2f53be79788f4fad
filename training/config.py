"""The training configuration: one nested dataclass with a section per concern — latent layout,
network (:class:`genaug.models.nets.NetConfig` itself), objective, predictor, schedule and data options.

The command line and ``OUT/train_config.json`` use a flat view: every section field is one option
under its own name (predictor fields prefixed ``predictor_``), so ``--lr-g`` sets
``schedule.lr_g`` and ``--predictor-loss`` sets ``predictor.loss``.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from genaug.models.config import NetConfig
from genaug.models.latent import LatentSpec
from genaug.models.recon import parse_mix

from .augment import parse_policy
from .infogan import ObjectiveConfig
from .losses import ADV_LOSSES
from .predictor import PredictorConfig

MODEL_KINDS = ("infogan", "began")


@dataclass
class LatentConfig:
    noise_dim: int = 64
    categorical: str = "10"
    continuous: str = "2"


@dataclass
class ScheduleConfig:
    batch_size: int = 64
    steps: int = 10000
    predictor_steps: int = 2000
    d_steps: int = 1
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lr_e: float = 5e-4  # the latent predictor's learning rate
    beta1: float = 0.5
    lr_decay_start: float = 1.0
    ema: float = 0.999
    instance_noise: float = 0.0
    instance_noise_steps: int = 0
    instance_noise_power: float = 1.0
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 250

    def validate(self) -> None:
        for name in ("batch_size", "steps", "d_steps", "log_every", "sample_every", "checkpoint_every", "lr_g", "lr_d", "lr_e"):
            check_above(self, name, 0)
        check_at_least(self, {"predictor_steps": 0, "instance_noise": 0, "instance_noise_steps": 0, "ema": 0,
                              "beta1": 0, "lr_decay_start": 0, "instance_noise_power": 0})
        if self.ema >= 1:  # 1 would export the untrained generator, > 1 diverges
            raise ValueError(f"--ema must be in [0, 1) (0 = no averaging), got {self.ema:g}")
        if self.beta1 >= 1:
            raise ValueError(f"--beta1 must be in [0, 1), got {self.beta1:g}")


@dataclass
class DataOptions:
    attributes: str = "auto"
    holdout: int = 256
    limit: int = 0
    framing: str = "celeba"


def _network() -> NetConfig:
    return NetConfig(g_width=32, d_width=32, e_width=32)


# section name -> prefix of its fields in the flat view; fields the loop sets itself are left out
SECTIONS = {"latent": "", "network": "", "objective": "", "predictor": "predictor_", "schedule": "", "options": ""}
DERIVED = {("network", "kind"), ("network", "discriminator")}


@dataclass
class TrainConfig:
    """Everything a run needs; saved (flat) to ``OUT/train_config.json``."""

    data: str
    out: str
    kind: str = "infogan"
    latent: LatentConfig = field(default_factory=LatentConfig)
    network: NetConfig = field(default_factory=_network)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    options: DataOptions = field(default_factory=DataOptions)
    seed: int = 0
    device: str = "auto"
    name: str = "custom"
    half: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        # fail at once on a bad setting, not at the first step
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; choose one of {MODEL_KINDS}")
        if self.objective.adv_loss not in ADV_LOSSES:
            raise ValueError(f"unknown adversarial loss {self.objective.adv_loss!r}; choose from {ADV_LOSSES}")
        if self.objective.adv_loss == "wgan":
            self.network.spectral_norm = True  # Wasserstein needs a Lipschitz critic
        self.network = dataclasses.replace(self.network, kind="dcgan",
                                           discriminator="began" if self.kind == "began" else "infogan")
        self.schedule.validate()
        for name in ("holdout", "limit"):
            if getattr(self.options, name) < 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self.options, name)}")
        if self.latent.noise_dim <= 0:
            raise ValueError(f"--noise-dim must be > 0, got {self.latent.noise_dim}")
        check_at_least(self.objective, {"lambda_info": 0, "lambda_cont": 0, "lambda_noise": 0, "lambda_attr": 0,
                                        "began_gamma": 0, "began_lambda_k": 0})
        check_at_least(self.predictor, {"real_weight": 0, "latent_weight": 0}, prefix="predictor_")
        parse_policy(self.objective.diffaug)
        parse_mix(self.predictor.loss)
        self.spec()

    def spec(self) -> LatentSpec:
        return parse_codes(self.latent.noise_dim, self.latent.categorical, self.latent.continuous)

    # ----------------------------------------------------------- flat view
    def flat(self) -> dict[str, Any]:
        """Every setting under its option name (what train_config.json and the grid use)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in SECTIONS}
        for section, prefix in SECTIONS.items():
            for f in fields(getattr(self, section)):
                if (section, f.name) not in DERIVED:
                    out[prefix + f.name] = getattr(getattr(self, section), f.name)
        return out

    @classmethod
    def from_flat(cls, **settings: Any) -> "TrainConfig":
        """Build from option names (``data``, ``out``, ``lr_g``, ``predictor_loss``, ...)."""
        where = option_sections()
        unknown = set(settings) - set(where)
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}")
        top = {k: v for k, v in settings.items() if where[k] is None}
        parts: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
        for k, v in settings.items():
            if where[k] is not None:
                parts[where[k]][k[len(SECTIONS[where[k]]):]] = v
        defaults = cls("", "")
        sections = {s: dataclasses.replace(getattr(defaults, s), **kv) for s, kv in parts.items()}
        return cls(**top, **sections)

    def replace(self, **settings: Any) -> "TrainConfig":
        return TrainConfig.from_flat(**{**self.flat(), **settings})


def parse_codes(noise_dim: int, categorical: str, continuous: str) -> LatentSpec:
    """:meth:`LatentSpec.parse` of ``--categorical`` / ``--continuous``, with a mistyped item named with its
    option (``--categorical 'glasses:two:Eyeglasses': K must be a whole number, got 'two'``) instead of
    int()'s message, an item with more parts or a number where a name belongs refused instead of kept."""
    for item in (x.strip() for x in categorical.split(",") if x.strip()):
        bits = item.split(":")
        if len(bits) > 3 or not all(b.strip() for b in bits):
            raise ValueError(f"--categorical {item!r}: expected K, NAME:K or NAME:K:ATTRIBUTE (e.g. glasses:2:Eyeglasses)")
        k = bits[0] if len(bits) == 1 else bits[1]
        if not k.strip().isdigit():
            raise ValueError(f"--categorical {item!r}: K must be a whole number, got {k!r}")
    items = [x.strip() for x in continuous.split(",") if x.strip()]
    if not (len(items) == 1 and items[0].isdigit()):
        for item in items:
            bits = item.split(":")
            if len(bits) > 2 or not all(b.strip() for b in bits) or _is_number(bits[0]):
                raise ValueError(f"--continuous {item!r}: expected a count or a comma list of NAME or NAME:ATTRIBUTE "
                                 "(e.g. '3' or 'tone,light')")
    return LatentSpec.parse(noise_dim, categorical, continuous)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def option_sections() -> dict[str, str | None]:
    """option name -> its section (None for top-level settings)."""
    defaults = TrainConfig("", "")
    out: dict[str, str | None] = {f.name: None for f in fields(TrainConfig) if f.name not in SECTIONS}
    for section, prefix in SECTIONS.items():
        for f in fields(getattr(defaults, section)):
            if (section, f.name) not in DERIVED:
                out[prefix + f.name] = section
    return out


def option_fields() -> list[tuple[str, Any, Any]]:
    """(option name, type, default) of every option, in declaration order."""
    defaults = TrainConfig("", "").flat()
    types = {f.name: f.type for f in fields(TrainConfig)}
    for section in SECTIONS:
        types.update({SECTIONS[section] + f.name: f.type for f in fields(getattr(TrainConfig("", ""), section))})
    return [(name, types[name], defaults[name]) for name in defaults]


def check_at_least(cfg: Any, minimums: dict[str, float], prefix: str = "") -> None:
    """Raise ``ValueError`` naming the first option of ``cfg`` below its minimum (``--steps must be
    >= 1, got -5``) or not a finite number (NaN passes every comparison), so a bad value is refused before any
    work, one option at a time. ``prefix``: the options' prefix in the flat view (``predictor_``)."""
    for name, low in minimums.items():
        value = _finite(cfg, name, prefix)
        if value < low:
            raise ValueError(f"--{(prefix + name).replace('_', '-')} must be >= {low:g}, got {value:g}")


def check_above(cfg: Any, name: str, low: float) -> None:
    """As :func:`check_at_least`, for an option that must be above ``low`` (a learning rate above 0)."""
    if _finite(cfg, name) <= low:
        raise ValueError(f"--{name.replace('_', '-')} must be > {low:g}, got {getattr(cfg, name):g}")


def _finite(cfg: Any, name: str, prefix: str = "") -> Any:
    value = getattr(cfg, name)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"--{(prefix + name).replace('_', '-')} must be a finite number, got {value}")
    return value


def finite_float(text: str) -> float:
    """argparse's type of a float option: ``nan``, ``inf`` and ``1e999`` are refused as argparse's own errors."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


@dataclass(kw_only=True)
class RunOptions:
    """The run options the edit and detail kinds share (one learning rate, held-out faces, the run folder's cadence,
    device, bundle), checked as a kind's config is built; each kind's dataclass adds its own after its positional
    ones, and sets its own ``steps`` and ``name``. Keyword-only, so a kind's own fields keep their positions."""

    steps: int = 20000
    minutes: float = 0.0  # wall-clock budget of this invocation (0 = none)
    batch_size: int = 32
    lr: float = 2e-4
    holdout: int = 256
    log_every: int = 50
    eval_every: int = 500
    checkpoint_every: int = 250
    threads: int = 0
    seed: int = 0
    device: str = "auto"
    name: str = ""  # bundle name ("": the kind's own, e.g. detail: the source bundle's name + "-detail")
    half: bool = False
    overwrite: bool = False  # start the run folder again (its checkpoint and bundle removed)

    def __post_init__(self) -> None:
        check_at_least(self, {"steps": 1, "batch_size": 2, "minutes": 0, "holdout": 0, "log_every": 0, "eval_every": 0,
                              "checkpoint_every": 0, "threads": 0})
        check_above(self, "lr", 0)


NET_HELP = {  # the help of the network options the infogan and edit kinds share
    "image_size": "model resolution (a power of two: 32, 64, 128)", "channels": "3 (RGB) or 1 (grayscale)",
    "e_width": "encoder channels at full resolution", "g_width": "generator channels at full resolution",
    "d_width": "discriminator channels at full resolution",
}
RUN_HELP = {  # the help of the run options the edit and detail kinds share (each kind adds its own)
    "steps": "training steps in all (a resumed run continues to this count)",
    "minutes": "wall-clock budget of this invocation (0 = none); checkpoint + bundle are written when it ends",
    "batch_size": "faces per step", "log_every": "steps between log.jsonl lines",
    "checkpoint_every": "steps between checkpoints (a run also checkpoints when it stops)",
    "device": "auto, cpu, cuda or cuda:N",
}


def dataclass_options(cls: type) -> list[tuple[str, Any, Any]]:
    """(option name, type, default) of every field of a flat config dataclass (no default: None): a kind's own options
    first, then the :class:`RunOptions` it shares."""
    shared = {f.name for f in fields(RunOptions)} if issubclass(cls, RunOptions) else set()
    return [(f.name, f.type, None if f.default is MISSING else f.default)
            for f in sorted(fields(cls), key=lambda f: f.name in shared)]


def add_options(p: argparse.ArgumentParser, options: list[tuple[str, Any, Any]], helps: dict[str, str],
                positional: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """One command-line option per (name, type, default): ``--name-with-dashes``, booleans as
    ``--x/--no-x``; names in ``positional`` become positional arguments. Every option's help ends
    with its default (whatever the parser's formatter; argparse lists an option without help text
    with no word at all)."""
    for name, typ, default in options:
        if name in positional:
            p.add_argument(name, help=helps.get(name))
            continue
        if typ in (bool, "bool"):
            action = p.add_argument("--" + name.replace("_", "-"), action=argparse.BooleanOptionalAction,
                                    default=default, help=helps.get(name))
        else:
            cast = {"int": int, "float": finite_float}.get(typ if isinstance(typ, str) else typ.__name__, str)
            action = p.add_argument("--" + name.replace("_", "-"), type=cast, default=default, help=helps.get(name))
        if "%(default)" not in (action.help or ""):
            action.help = f"{action.help or ''} (default: %(default)s)".lstrip()
    return p
