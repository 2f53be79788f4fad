"""Model bundles: a folder with ``config.json`` (rebuilds the networks) and ``model.safetensors``.

``save_bundle`` / ``load_bundle`` (also ``Bundle.save_pretrained`` / ``Bundle.from_pretrained``).
Loading never unpickles anything; a corrupt, truncated or mismatched bundle raises
:class:`BundleError` naming the file and what is wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..device import resolve_device
from ..io import read_versioned_json, sha256_file, write_json_atomic, write_safetensors
from ..models.config import NetConfig
from ..models.latent import LatentSpec
from ..models.nets import Generator, Predictor
from ..models.registry import build_generator, build_predictor

FORMAT = "genaug-bundle"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
DEFAULT_DIR = Path(__file__).parents[1] / "default"
# bundles shipped inside the package, loadable by name
NAMED_BUNDLES = {"default": DEFAULT_DIR}


def gain_for(edit_gain: float | dict[str, float], spec: LatentSpec, code: int, value: float, default: float = 1.0) -> float:
    """The entry of a per-edit runtime table (``edit_gain``, ``edit_shift``, ``edit_regenerate``: one number, or
    ``{"*": g, "code": g, "code=value": g}``, the most specific key winning) for setting code
    ``code`` to ``value``; ``default`` where the table names neither the edit nor ``"*"``."""
    if not isinstance(edit_gain, dict):
        return float(edit_gain)
    name = spec.codes[code].name
    keys = ([f"{name}={int(value)}"] if spec.is_categorical(code) else []) + [name, "*"]
    return float(next((edit_gain[k] for k in keys if k in edit_gain), default))


class BundleError(ValueError):
    """A bundle that cannot be loaded: missing, corrupt, truncated or mismatched."""


def transfer_weights(direction: torch.Tensor, entry: dict[str, float], net) -> torch.Tensor:
    """(noise_dim,) weights of one ``edit_transfer`` entry for one code's (k, noise_dim) direction
    table: ``entry["content"]`` / ``entry["detail"]`` on the cells of the content / detail map whose
    direction energy (spread of the category means) is at or above the ``entry["quantile"]`` quantile,
    0 elsewhere (CPU float32)."""
    from ..models.editnets import content_shape, detail_shape

    t = direction.detach().float().cpu()
    energy = (t - t.mean(0)).pow(2).sum(0)
    parts, start = [], 0
    for shape, key in ((content_shape(net), "content"), (detail_shape(net), "detail")):
        size = shape[0] * shape[1] * shape[2]
        if size:
            e = energy[start : start + size].reshape(shape).sum(0)
            cell = (e >= torch.quantile(e.flatten(), float(entry.get("quantile", 0.0)))).float()
            parts.append((float(entry.get(key, 0.0)) * cell).expand(shape).flatten())
        start += size
    return torch.cat(parts)


@dataclass
class Bundle:
    """A controllable generator, its latent predictor and everything needed to use them."""

    spec: LatentSpec
    net: NetConfig
    generator: Generator
    predictor: Predictor
    framing: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    name: str = "unnamed"
    path: str | None = None
    runtime: dict[str, Any] = field(default_factory=dict)  # measured runtime defaults, e.g. {"refine_steps": 0}
    # categorical code name -> (k, noise_dim) mean latent content of real faces in each category
    directions: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"dcgan"`` (generator from noise + latent predictor) or ``"edit"`` (encoder + generator)."""
        return self.net.kind

    @property
    def can_sample(self) -> bool:
        """Whether random latents give faces. The edit kind's latent holds a content map taken from
        a real face, so it has no prior to sample from: it edits faces, it does not invent them."""
        return self.kind != "edit"

    @property
    def edit_gain(self) -> float | dict[str, float]:
        """Latent-space scale of a full edit (``strength=1``), measured per bundle: how far along (or
        past) the way to the new code value an edit goes for the attribute to show on real faces.
        One number for every edit, or ``{"*": default, "code": gain, "code=value": gain}`` (the most
        specific key wins; default 1), since codes and directions differ. See :meth:`gain_of`."""
        return self.runtime.get("edit_gain", 1.0)

    def gain_of(self, code: int, value: float) -> float:
        """The gain of the edit that sets code ``code`` (index) to ``value`` (a category or a value)."""
        return gain_for(self.edit_gain, self.spec, code, value)

    @property
    def edit_shift(self) -> float | dict[str, float]:
        """How far a full categorical edit also moves the latent content along the code's
        :attr:`directions` (from the mean content of the face's category towards that of the new
        one; 0, the default, leaves the content alone). Same table form as :attr:`edit_gain`."""
        return self.runtime.get("edit_shift", 0.0)

    def shift_of(self, code: int, value: float) -> float:
        """The content shift of the edit that sets code ``code`` to ``value`` (0 without directions)."""
        if self.spec.codes[code].name not in self.directions:
            return 0.0
        return gain_for(self.edit_shift, self.spec, code, value, default=0.0)

    @property
    def edit_regenerate(self) -> float | dict[str, float]:
        """Local regeneration per edit, same table form as :attr:`edit_gain` (0, the default, is off):
        in ``delta`` mode, where an edit changes the face by more than this (mean absolute change
        over channels on the [-1, 1] scale, smoothed), the photo's own residual (what the generator
        does not draw) is dropped as well, so what a removal takes away — glasses rims, a smile —
        does not survive from the photo. See :func:`genaug.engine.render.render`."""
        return self.runtime.get("edit_regenerate", 0.0)

    def regenerate_of(self, code: int, value: float) -> float:
        """The local-regeneration threshold of the edit that sets code ``code`` to ``value`` (0 = off)."""
        return gain_for(self.edit_regenerate, self.spec, code, value, default=0.0)

    @property
    def edit_transfer(self) -> dict[str, dict[str, float]]:
        """Selective transfer per categorical edit, ``{"code=value" or "code": {"quantile": q,
        "content": w, "detail": w}}``: after the code and shift move, the content / detail map inside
        the region where the code's direction acts (cells whose direction energy is at or above its
        ``q`` quantile) is pulled ``w`` of the way (1 = replaced) to the new category's mean, so the
        face's own traces of the old category (glasses rims the detail skip copies) do not survive
        the edit. It acts also when the encoder already puts the face in the new category (the shift
        is then zero): an explicit ``glasses=0`` still clears rims the encoder missed (it misses them
        on about one glasses face in seven). Edits the table does not name transfer nothing. See
        :meth:`transfer_table`."""
        return self.runtime.get("edit_transfer", {})

    def transfer_table(self) -> dict[tuple[int, int], torch.Tensor]:
        """``(code index, new category) -> (noise_dim,)`` transfer weights in [0, 1] (what
        :func:`genaug.engine.edits.apply_edits` takes as ``transfer``), from :attr:`edit_transfer` and the
        :attr:`directions`; empty for edits without an entry or a direction."""
        out = {}
        for name, t in self.directions.items():
            ci = self.spec.code_index(name)
            for v in range(len(t)):
                entry = self.transfer_of(ci, v)
                if entry:
                    out[(ci, v)] = transfer_weights(t, entry, self.net)
        return out

    def transfer_of(self, code: int, value: int) -> dict[str, float] | None:
        """The :attr:`edit_transfer` entry of the edit that sets code ``code`` to category ``value``
        (``"code=value"`` before ``"code"``), or None."""
        name = self.spec.codes[code].name
        return next((self.edit_transfer[k] for k in (f"{name}={int(value)}", name) if k in self.edit_transfer), None)

    def direction_table(self) -> dict[int, torch.Tensor]:
        """:attr:`directions` keyed by code index (what :func:`genaug.engine.edits.apply_edits` takes)."""
        return {self.spec.code_index(name): t for name, t in self.directions.items()}

    def check_runtime(self) -> None:
        """Raise :class:`BundleError` for a runtime section or directions that do not fit this bundle's codes."""
        known = {"*", *self.spec.code_names}
        known |= {f"{c.name}={v}" for i, c in enumerate(self.spec.codes) if self.spec.is_categorical(i) for v in range(c.k)}
        for table, positive in (("edit_gain", True), ("edit_shift", False), ("edit_regenerate", False)):
            g = self.runtime.get(table, 1.0 if positive else 0.0)
            for key, val in (g.items() if isinstance(g, dict) else [("*", g)]):
                if key not in known:
                    raise BundleError(f"runtime {table} names {key!r}, which is not '*', a code or CODE=CATEGORY of "
                                      f"this bundle (codes: {self.spec.code_names})")
                ok = not isinstance(val, bool) and isinstance(val, (int, float)) and 0 <= val < float("inf")
                if not ok or (positive and val == 0):
                    raise BundleError(f"runtime {table}[{key!r}] must be a {'positive' if positive else 'non-negative'} "
                                      f"number, got {val!r}")
        transfer = self.runtime.get("edit_transfer", {})
        if not isinstance(transfer, dict):
            raise BundleError(f"runtime edit_transfer must be a table {{'code=value': {{...}}}}, got {transfer!r}")
        for key, entry in transfer.items():
            if key == "*" or key not in known:
                raise BundleError(f"runtime edit_transfer names {key!r}, which is not a code or CODE=CATEGORY of this bundle")
            if self.kind != "edit" or key.split("=")[0] not in self.directions:
                raise BundleError(f"runtime edit_transfer[{key!r}] needs an edit-kind bundle with a direction for that code")
            bad = not isinstance(entry, dict) or set(entry) - {"quantile", "content", "detail"} or not all(
                not isinstance(w, bool) and isinstance(w, (int, float)) and 0 <= w <= 1 for w in entry.values())
            if bad:
                raise BundleError(f"runtime edit_transfer[{key!r}] must hold 'quantile', 'content' and 'detail' in [0, 1], got {entry!r}")
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
        """Short content hash of the weights and config: names this exact model."""
        return self.training.get("weights_sha256", "")[:16] or "unsaved"

    def to(self, device: str | torch.device) -> "Bundle":
        dev = resolve_device(device)
        self.generator.to(dev).eval()
        self.predictor.to(dev).eval()
        self.directions = {k: v.to(dev, torch.float32) for k, v in self.directions.items()}
        return self

    def config(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "kind": self.kind,
            "can_sample": self.can_sample,
            "runtime": self.runtime,
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
    bundle.check_runtime()
    out = Path(path)
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


def _bundle_dir(path: str | Path) -> Path:
    if str(path) in NAMED_BUNDLES:
        folder = NAMED_BUNDLES[str(path)]
        if not (folder / CONFIG_NAME).exists():
            raise BundleError(f"the {path!r} bundle is missing from the installed package ({folder})")
        return folder
    p = Path(path).expanduser()
    if p.is_file():
        p = p.parent
    if not p.exists():
        raise FileNotFoundError(f"bundle not found: {p} (give a bundle folder or a shipped name: {sorted(NAMED_BUNDLES)})")
    if not (p / CONFIG_NAME).is_file():
        raise BundleError(f"{p} is not a genaug bundle: {CONFIG_NAME} is missing")
    return p


def read_config(path: str | Path) -> dict[str, Any]:
    """The parsed, validated ``config.json`` of a bundle (without loading weights)."""
    cfg_path = _bundle_dir(path) / CONFIG_NAME
    cfg = read_versioned_json(cfg_path, FORMAT, FORMAT_VERSION, BundleError, "genaug bundle")
    for key in ("latent", "network", "weights"):
        if key not in cfg:
            raise BundleError(f"{cfg_path}: missing required key {key!r}")
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
    bundle = Bundle.create(
        spec, net, framing=cfg.get("framing"), training={**cfg.get("training", {}), "weights_sha256": digest},
        name=cfg.get("name", folder.name), path=str(folder), runtime=dict(cfg.get("runtime") or {}),
        directions={k[len("directions."):]: v.float() for k, v in tensors.items() if k.startswith("directions.")},
    )
    bundle.check_runtime()
    for prefix, module in (("generator", bundle.generator), ("predictor", bundle.predictor)):
        _load_into(module, prefix, tensors, weights)
    return bundle.to(device)


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
