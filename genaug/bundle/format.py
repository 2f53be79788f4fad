"""Model bundles: a folder with ``config.json`` (rebuilds the networks) and ``model.safetensors``.

``save_bundle`` / ``load_bundle`` (also ``Bundle.save_pretrained`` / ``Bundle.from_pretrained``).
Loading never unpickles anything; a corrupt, truncated or mismatched bundle raises
:class:`BundleError` naming the file and what is wrong.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..device import module_on, resolve_device
from ..io import check_path, read_versioned_json, sha256_file, write_json_atomic, write_safetensors
from ..models.config import NetConfig
from ..models.latent import LatentSpec
from ..models.nets import Generator, Predictor
from ..models.registry import build_generator, build_predictor
from .recipe import LEGACY_TABLES, EditRecipe, Transfer, edit_key, model_identity, parse_recipes, transfer_weights

FORMAT = "genaug-bundle"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DEFAULT_DIR = Path(__file__).parents[1] / "default"
# bundles shipped inside the package, loadable by name
NAMED_BUNDLES = {"default": DEFAULT_DIR}


class BundleError(ValueError):
    """A bundle that cannot be loaded: missing, corrupt, truncated or mismatched."""


@dataclass(repr=False)
class Bundle:
    """A controllable generator, its encoder (image -> latent; ``predictor``, the latent predictor
    of the ``dcgan`` kind) and everything needed to use them: latent layout, directions, edit recipes."""

    spec: LatentSpec
    net: NetConfig
    generator: Generator
    predictor: Predictor  # the encoder (the name is kept: it is the weights' prefix in model.safetensors)
    framing: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    name: str = "unnamed"
    path: str | None = None
    runtime: dict[str, Any] = field(default_factory=dict)  # measured runtime defaults, e.g. {"refine_steps": 0}
    # categorical code name -> (k, noise_dim) mean latent content of real faces in each category
    directions: dict[str, torch.Tensor] = field(default_factory=dict)
    # edit key ("code=value" or "code") -> how that edit acts (complete after __post_init__)
    recipes: dict[str, EditRecipe] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"dcgan"`` (generator from noise + latent predictor) or ``"edit"`` (encoder + generator)."""
        return self.net.kind

    @property
    def can_sample(self) -> bool:
        """Whether random latents give faces. The edit kind's latent holds a content map taken from
        a real face, so it has no prior to sample from: it edits faces, it does not invent them."""
        return self.kind != "edit"

    def __post_init__(self) -> None:
        """Complete the recipes (format-1 runtime tables are read into them and leave the runtime)."""
        legacy = {k: v for k, v in self.runtime.items() if k in LEGACY_TABLES}
        try:
            self.recipes = parse_recipes(self.spec, runtime=legacy, base=self.recipes)
        except ValueError as e:
            raise BundleError(str(e)) from None
        self.runtime = {k: v for k, v in self.runtime.items() if k not in LEGACY_TABLES}
        self._transfer_cache: dict[tuple[int, int, Transfer], torch.Tensor] = {}

    def __repr__(self) -> str:
        """One line (the generated one printed both networks, every tensor and the calibration grid: 22 kB)."""
        size = f"{self.net.image_size}x{self.net.image_size}"
        return (f"Bundle(name={self.name!r}, kind={self.kind!r}, image_size={size!r}, codes={self.spec.code_names}, "
                f"path={self.path!r})")

    def recipe(self, code: int, value: float) -> EditRecipe:
        """The recipe of the edit that sets code ``code`` (index) to ``value`` (a category or a
        value); a code without a direction has no content shift or transfer."""
        r = self.recipes[edit_key(self.spec, code, value)]
        if self.spec.codes[code].name in self.directions:
            return r
        return replace(r, shift=0.0, transfer=None) if r.shift or r.transfer else r

    def with_recipes(self, table: dict[str, Any]) -> "Bundle":
        """A copy whose recipes are these, over the current ones (``table`` as in ``edit_recipes``,
        may be partial: ``{"glasses=1": {"shift": 2.0}, "*": {"gain": 1.5}}``)."""
        try:
            recipes = parse_recipes(self.spec, table, base=self.recipes)
        except ValueError as e:
            raise BundleError(str(e)) from None
        return replace(self, recipes=recipes)

    def transfer_weights(self, code: int, value: int, transfer: Transfer) -> torch.Tensor:
        """(noise_dim,) weights of ``transfer`` for the edit setting ``code`` to category ``value``
        (see :func:`genaug.bundle.recipe.transfer_weights`; cached)."""
        key = (code, int(value), transfer)
        if key not in self._transfer_cache:
            direction = self.directions[self.spec.codes[code].name]
            self._transfer_cache[key] = transfer_weights(direction, transfer, self.net)
        return self._transfer_cache[key]

    def direction_table(self) -> dict[int, torch.Tensor]:
        """:attr:`directions` keyed by code index (what :func:`genaug.engine.edits.apply_edits` takes)."""
        return {self.spec.code_index(name): t for name, t in self.directions.items()}

    def check_runtime(self) -> None:
        """Raise :class:`BundleError` for recipes or directions that do not fit this bundle's codes."""
        for key, r in self.recipes.items():
            if r.transfer is not None and (self.kind != "edit" or key.split("=")[0] not in self.directions):
                raise BundleError(f"edit recipe {key!r}: a transfer needs an edit-kind bundle with a direction for that code")
        for name, t in self.directions.items():
            i = self.spec.code_names.index(name) if name in self.spec.code_names else -1
            if i < 0 or not self.spec.is_categorical(i):
                raise BundleError(f"directions.{name}: not a categorical code of this bundle (codes: {self.spec.code_names})")
            want = (self.spec.codes[i].k, self.spec.noise_dim)
            if tuple(t.shape) != want or not t.is_floating_point() or not torch.isfinite(t).all():
                raise BundleError(f"directions.{name}: expected finite floats of shape {want}, got {tuple(t.shape)} {t.dtype}")

    @property
    def default_refine_steps(self) -> int:
        """Inversion refinement steps the engine uses unless told otherwise."""
        return int(self.runtime.get("refine_steps", 0 if self.kind == "edit" else 20))

    @classmethod
    def create(cls, spec: LatentSpec, net: NetConfig, **kw: Any) -> "Bundle":
        """Freshly initialised networks (for training or tests)."""
        return cls(spec, net, build_generator(spec, net), build_predictor(spec, net), **kw)

    @property
    def image_size(self) -> int:
        return self.net.image_size

    @property
    def channels(self) -> int:
        return self.net.channels

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def identity(self) -> str:
        """Short content hash of the weights and the edit recipes: names this exact model (a
        re-calibrated bundle is a new one). With every recipe at its defaults, the weights' hash."""
        return model_identity(self.training.get("weights_sha256", ""), self.recipes)

    def to(self, device: str | torch.device) -> "Bundle":
        """Move this bundle's networks (float32, eval mode) and directions to ``device`` in place; returns it."""
        dev = resolve_device(device)
        self.generator.to(dev, torch.float32).eval()  # float32 even under torch.set_default_dtype(torch.float64)
        self.predictor.to(dev, torch.float32).eval()
        self.directions = {k: v.to(dev, torch.float32) for k, v in self.directions.items()}
        return self

    def on(self, device: str | torch.device) -> "Bundle":
        """This bundle on ``device`` (float32, eval mode) without changing it: itself where it already is so, else a
        copy there. :class:`genaug.Engine` takes a caller's bundle this way; :meth:`to` moves in place."""
        dev = resolve_device(device)
        nets = [module_on(m, dev, torch.float32) for m in (self.generator, self.predictor)]
        directions = {k: v.to(dev, torch.float32) for k, v in self.directions.items()}
        if nets[0] is self.generator and nets[1] is self.predictor and all(directions[k] is v for k, v in self.directions.items()):
            return self
        return replace(self, generator=nets[0], predictor=nets[1], directions=directions)

    def config(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "kind": self.kind,
            "can_sample": self.can_sample,
            "runtime": self.runtime,
            "edit_recipes": {k: r.to_dict() for k, r in self.recipes.items()},
            "latent": self.spec.to_dict(),
            "network": self.net.to_dict(),
            "image": {"size": self.image_size, "channels": self.channels, "range": [-1.0, 1.0], "layout": "NCHW"},
            "framing": self.framing,
            "directions": sorted(self.directions),  # codes with a content direction (tensors directions.<code>)
            "training": {k: v for k, v in self.training.items() if k != "weights_sha256"},
        }

    def save_pretrained(self, path: str | Path, half: bool = False) -> Path:
        return save_bundle(self, path, half=half)

    @classmethod
    def from_pretrained(cls, path: str | Path = "default", device: str | torch.device = "cpu") -> "Bundle":
        return load_bundle(path, device=device)


def save_bundle(bundle: Bundle, path: str | Path, half: bool = False) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into folder ``path``; returns the folder."""
    if not isinstance(bundle, Bundle):
        raise TypeError(f"bundle must be a genaug.Bundle (genaug.load_bundle(...)), got {type(bundle).__name__}")
    if Path(check_path(path, "path", "a folder to write the bundle into")).expanduser().is_file():  # (was mkdir's "[Errno 17] File exists")
        raise FileExistsError(f"cannot save a bundle into {path}: it is a file; a bundle is a folder (give a folder "
                              "path)")
    bundle.check_runtime()
    if str(path) in NAMED_BUNDLES:  # load_bundle("default") is the shipped bundle, not this folder
        raise ValueError(f"cannot save a bundle as {str(path)!r}: that name loads the bundle shipped with genaug; "
                         f"give another folder (e.g. './{path}_custom')")
    out = Path(path).expanduser()  # as load_bundle reads it: "~/models/x" is in the home folder, not ./~
    out.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (("generator", bundle.generator), ("predictor", bundle.predictor)):
        for k, v in module.state_dict().items():
            v = v.detach().cpu()
            if half and v.is_floating_point():
                v = v.half()
            tensors[f"{prefix}.{k}"] = v.contiguous()
    for k, v in bundle.directions.items():
        tensors[f"directions.{k}"] = v.detach().cpu().float().contiguous()
    weights = out / WEIGHTS_NAME
    write_safetensors(tensors, weights, {"format": FORMAT})
    cfg = bundle.config()
    cfg["weights"] = {"file": WEIGHTS_NAME, "dtype": "float16" if half else "float32", "sha256": sha256_file(weights)}
    write_json_atomic(out / CONFIG_NAME, cfg)
    bundle.training["weights_sha256"] = cfg["weights"]["sha256"]
    bundle.path = str(out)
    return out


def _bundle_arg(bundle: Any) -> str | os.PathLike:
    """``bundle`` (a name or folder) as given when a str or path; else a TypeError naming the argument."""
    return check_path(bundle, "bundle", "'default', a bundle folder or a genaug.Bundle")


def _bundle_dir(path: str | Path) -> Path:
    path = _bundle_arg(path)
    if str(path) in NAMED_BUNDLES:
        folder = NAMED_BUNDLES[str(path)]
        if not (folder / CONFIG_NAME).exists():
            raise BundleError(f"the {path!r} bundle is missing from the installed package ({folder})")
        return folder
    p = given = Path(path).expanduser()
    if p.is_file():  # a file of a bundle (its config.json or weights): its folder
        p = p.parent
    if not p.exists():
        raise FileNotFoundError(f"bundle not found: {p} (give a bundle folder or a shipped name: {sorted(NAMED_BUNDLES)})")
    if not (p / CONFIG_NAME).is_file():
        inner = p / "bundle"  # a training run folder holds its bundle in bundle/
        hint = f" (a training run folder? its bundle is {inner})" if (inner / CONFIG_NAME).is_file() else ""
        if given != p:
            raise BundleError(f"{given} is not a genaug bundle: give a bundle folder (its {CONFIG_NAME} and weights), "
                              f"not a file; {p} has no {CONFIG_NAME}")
        raise BundleError(f"{p} is not a genaug bundle: {CONFIG_NAME} is missing{hint}")
    return p


def read_config(path: str | Path) -> dict[str, Any]:
    """The parsed, validated ``config.json`` of a bundle (without loading weights)."""
    cfg_path = _bundle_dir(path) / CONFIG_NAME
    cfg = read_versioned_json(cfg_path, FORMAT, FORMAT_VERSION, BundleError, "genaug bundle")
    for key in ("latent", "network", "weights"):
        if key not in cfg:
            raise BundleError(f"{cfg_path}: missing required key {key!r}")
    for key in ("latent", "network", "weights", "runtime", "training", "edit_recipes", "framing", "image"):
        v = cfg.get(key)
        if not isinstance(v, dict) and not (v is None and key not in ("latent", "network", "weights")):
            raise BundleError(f"{cfg_path}: {key!r} must be an object ({{...}}), got {v!r}"[:300])
    steps = (cfg.get("runtime") or {}).get("refine_steps", 0)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise BundleError(f"{cfg_path}: runtime refine_steps must be a whole number >= 0, got {steps!r}")
    return cfg


def read_spec(path: str | Path) -> LatentSpec:
    """A bundle's :class:`LatentSpec` from its config alone (cheap: the weights file must exist
    but is not read)."""
    cfg = read_config(path)
    _weights_path(_bundle_dir(path), cfg["weights"])
    try:
        return LatentSpec.from_dict(cfg["latent"])
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{_bundle_dir(path) / CONFIG_NAME}: invalid latent config ({e})") from None


def bundle_path(bundle: Any) -> Any:
    """``bundle`` as a front end keeps it to load later (lazily, or from a saved pipeline): a :class:`Bundle` or a
    shipped name (``"default"``) as given, a folder as an absolute path string (``~`` expanded), so it loads from
    another working directory."""
    if isinstance(bundle, Bundle):
        return bundle
    name = os.fspath(_bundle_arg(bundle))
    return name if name in NAMED_BUNDLES else os.path.abspath(os.path.expanduser(name))


def load_bundle(path: str | Path = "default", device: str | torch.device = "cpu") -> Bundle:
    """Load a bundle folder (or ``"default"``, the model shipped with genaug) onto ``device``."""
    folder = _bundle_dir(path)
    cfg = read_config(folder)
    try:
        spec = LatentSpec.from_dict(cfg["latent"])
        net = NetConfig.from_dict(cfg["network"])
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{folder / CONFIG_NAME}: invalid latent/network config ({e})") from None
    weights, digest = _checked_weights(folder, cfg["weights"])
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise BundleError(f"{weights}: cannot read safetensors file ({e})") from None
    with torch.random.fork_rng(devices=[]):  # the nets' random init (overwritten below) leaves torch's global RNG alone
        bundle = Bundle.create(
            spec, net, framing=cfg.get("framing"), training={**cfg.get("training", {}), "weights_sha256": digest},
            name=cfg.get("name", folder.name), path=str(folder), runtime=dict(cfg.get("runtime") or {}),
            directions={k[len("directions."):]: v.float() for k, v in tensors.items() if k.startswith("directions.")},
            recipes=_read_recipes(spec, cfg, folder),
        )
    bundle.check_runtime()
    for prefix, module in (("generator", bundle.generator), ("predictor", bundle.predictor)):
        _load_into(module, prefix, tensors, weights)
    return bundle.to(device)


def _read_recipes(spec: LatentSpec, cfg: dict[str, Any], folder: Path) -> dict[str, EditRecipe]:
    table = cfg.get("edit_recipes") or {}
    if not isinstance(table, dict):
        raise BundleError(f"{folder / CONFIG_NAME}: 'edit_recipes' must be a table of code=value -> recipe, got {table!r}")
    try:
        return parse_recipes(spec, table)
    except ValueError as e:
        raise BundleError(f"{folder / CONFIG_NAME}: {e}") from None


def _weights_path(folder: Path, info: Any) -> Path:
    """The weights file named by ``config.json``: it must exist and lie inside the bundle folder
    (no absolute path, ``..`` or symlink leading out)."""
    cfg_path = folder / CONFIG_NAME
    if not isinstance(info, dict):
        raise BundleError(f"{cfg_path}: 'weights' must be an object with 'file' and 'sha256'")
    name = info.get("file", WEIGHTS_NAME)
    root = folder.resolve()
    weights = root / str(name)
    if not isinstance(name, str) or Path(name).is_absolute() or not weights.resolve().is_relative_to(root):
        raise BundleError(f"{cfg_path}: weights file {name!r} must be a path inside the bundle folder {root}")
    if not weights.is_file():
        raise BundleError(f"bundle weights missing: {weights}")
    return weights


def _checked_weights(folder: Path, info: Any) -> tuple[Path, str]:
    """The weights file (:func:`_weights_path`) and its sha256, which must match the recorded one.
    The record is required: ``save_bundle`` always writes it, so a config without one was edited or
    hand-made."""
    cfg_path = folder / CONFIG_NAME
    weights = _weights_path(folder, info)
    digest = sha256_file(weights)
    expected = info.get("sha256")
    if not expected:
        raise BundleError(f"{cfg_path}: no weights sha256 recorded (genaug always writes one); if you trust "
                          f"{weights.name}, add \"sha256\": \"{digest}\" to 'weights' or re-save the bundle")
    if digest != expected:
        raise BundleError(f"{weights}: checksum mismatch (file corrupt or truncated; expected sha256 {str(expected)[:12]}…)")
    return weights, digest


def _load_into(module: torch.nn.Module, prefix: str, tensors: dict[str, torch.Tensor], file: Path) -> None:
    own = module.state_dict()
    given = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    if missing or unexpected:
        raise BundleError(
            f"{file}: {prefix} weights do not match the config's architecture "
            f"(missing {missing[:5]}{'…' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'…' if len(unexpected) > 5 else ''})"
        )
    for k, v in given.items():
        if v.shape != own[k].shape:
            raise BundleError(f"{file}: {prefix}.{k} has shape {tuple(v.shape)}, the config expects {tuple(own[k].shape)}")
        given[k] = v.to(own[k].dtype)
    module.load_state_dict(given)
