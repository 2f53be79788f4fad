"""The latent layout ``[z | categorical one-hots | continuous codes]`` shared by every network.

A :class:`LatentSpec` says how long the noise part is and which codes follow it. Codes are
addressed by name (``"smile"``) or by global index (``0`` or ``"c0"``): categorical codes come
first, then continuous ones, in the order given.
"""
from __future__ import annotations

import operator

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class CategoricalCode:
    """A code with ``k`` categories, stored one-hot (or as probabilities after inversion)."""

    name: str
    k: int
    attribute: str | None = None  # dataset attribute bound to category 1 (binary attributes, k=2)
    description: str = ""
    identity_safe: bool = True  # may random augmentation move it? (False: changes who someone looks like)
    random: bool = True  # in the random set (codes=None)? False: moved only when named (e.g. its drawn version looks generated)

    def __post_init__(self) -> None:
        _check_flags(self)
        if self.k < 2:
            raise ValueError(f"categorical code {self.name!r}: k must be >= 2, got {self.k}")


@dataclass(frozen=True)
class ContinuousCode:
    """A code drawn uniformly from ``[low, high]``."""

    name: str
    low: float = -1.0
    high: float = 1.0
    attribute: str | None = None  # bound attribute: +1 maps to ``high``, -1 to ``low``
    description: str = ""
    identity_safe: bool = True
    random: bool = True

    def __post_init__(self) -> None:
        _check_flags(self)
        if not self.low < self.high:
            raise ValueError(f"continuous code {self.name!r}: need low < high, got [{self.low}, {self.high}]")


Code = CategoricalCode | ContinuousCode


def _check_flags(code: Code) -> None:
    """``identity_safe`` / ``random`` must be true or false (a hand-edited ``"random": "no"`` is truthy)."""
    for flag in ("identity_safe", "random"):
        if not isinstance(getattr(code, flag), bool):
            raise ValueError(f"code {code.name!r}: {flag} must be true or false, got {getattr(code, flag)!r}")


@dataclass
class LatentParts:
    """A latent split into its parts (all batched along dim 0)."""

    z: Tensor  # (N, noise_dim)
    categorical: list[Tensor]  # each (N, k): one-hot or probabilities
    continuous: Tensor  # (N, n_continuous)


@dataclass
class LatentSpec:
    """Noise dimension plus the categorical and continuous codes that follow it."""

    noise_dim: int = 64
    categorical: list[CategoricalCode] = field(default_factory=list)
    continuous: list[ContinuousCode] = field(default_factory=list)
    # image-space controls (genaug.faces.controls: yaw, light, light_up) that random edits draw too
    random_controls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.categorical = [c if isinstance(c, CategoricalCode) else CategoricalCode(**c) for c in self.categorical]
        self.continuous = [c if isinstance(c, ContinuousCode) else ContinuousCode(**c) for c in self.continuous]
        if self.noise_dim < 0:
            raise ValueError(f"noise_dim must be >= 0, got {self.noise_dim}")
        names = self.code_names
        if len(set(names)) != len(names):
            raise ValueError(f"code names must be unique, got {names}")
        from ..faces.controls import CONTROL_NAMES

        self.random_controls = list(self.random_controls)
        bad = [c for c in self.random_controls if c not in CONTROL_NAMES or c in names]
        if bad or len(set(self.random_controls)) != len(self.random_controls):
            raise ValueError(f"random_controls must be distinct image-space controls {CONTROL_NAMES} (not code names), "
                             f"got {self.random_controls}")

    # ----------------------------------------------------------------- layout
    @property
    def codes(self) -> list[Code]:
        return [*self.categorical, *self.continuous]

    @property
    def code_names(self) -> list[str]:
        return [c.name for c in self.codes]

    @property
    def categorical_dim(self) -> int:
        return sum(c.k for c in self.categorical)

    @property
    def continuous_dim(self) -> int:
        return len(self.continuous)

    @property
    def code_dim(self) -> int:
        return self.categorical_dim + self.continuous_dim

    @property
    def dim(self) -> int:
        return self.noise_dim + self.code_dim

    @property
    def default_codes(self) -> list[int]:
        """Indices of the identity-safe latent codes in the random set (with :attr:`random_controls`:
        what random augmentation moves when ``codes=None``, :func:`genaug.engine.codes.default_codes`)."""
        return [i for i, c in enumerate(self.codes) if c.identity_safe and c.random]

    def code_slice(self, code: str | int) -> slice:
        """Columns of the full latent that hold ``code``."""
        i = self.code_index(code)
        if i < len(self.categorical):
            start = self.noise_dim + sum(c.k for c in self.categorical[:i])
            return slice(start, start + self.categorical[i].k)
        start = self.noise_dim + self.categorical_dim + (i - len(self.categorical))
        return slice(start, start + 1)

    def code_index(self, code: str | int) -> int:
        """Global index of a code given by name, ``"c<i>"`` or index."""
        n = len(self.codes)
        if isinstance(code, bool):
            raise TypeError("code must be a name or an index, not a bool")
        if not isinstance(code, (str, int)):
            try:  # a numpy or 0-d torch integer (codes from np.arange, np.random.choice) is an index
                code = operator.index(code)
            except TypeError:
                raise TypeError(f"code must be a name or an index, got {type(code).__name__} {code!r}") from None
        if isinstance(code, int):
            if not -n <= code < n:
                raise KeyError(f"code index {code} out of range: this latent has {n} codes {self.code_names} "
                               f"(indices 0 to {n - 1}; -{n} to -1 count from the end)")
            return code % n
        names = self.code_names
        if code in names:
            return names.index(code)
        if code.startswith("c") and code[1:].isdigit() and int(code[1:]) < n:
            return int(code[1:])
        for i, c in enumerate(self.codes):
            if c.attribute is not None and c.attribute.lower() == code.lower():
                return i
        raise KeyError(f"unknown code {code!r}; this latent has codes {names}")

    def code(self, code: str | int) -> Code:
        return self.codes[self.code_index(code)]

    def is_categorical(self, code: str | int) -> bool:
        return self.code_index(code) < len(self.categorical)

    # ------------------------------------------------------- sample/split/join
    def sample(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """Draw ``n`` latents: z ~ N(0, I), categories uniform (one-hot), continuous uniform."""
        device = torch.device(device) if device is not None else (generator.device if generator else None)
        z = torch.randn(n, self.noise_dim, generator=generator, device=device)
        cats = [
            torch.randint(0, c.k, (n,), generator=generator, device=device) for c in self.categorical
        ]
        lo = torch.tensor([c.low for c in self.continuous], device=device)
        hi = torch.tensor([c.high for c in self.continuous], device=device)
        cont = lo + (hi - lo) * torch.rand(n, self.continuous_dim, generator=generator, device=device)
        return self.join(z, cats, cont)

    def sample_indices(self, latent: Tensor) -> list[Tensor]:
        """Category index of each categorical code (argmax of its one-hot/probabilities)."""
        return [p.argmax(1) for p in self.split(latent).categorical]

    def split(self, latent: Tensor) -> LatentParts:
        if latent.ndim != 2 or latent.shape[1] != self.dim:
            raise ValueError(f"latent must have shape (N, {self.dim}), got {tuple(latent.shape)}")
        z = latent[:, : self.noise_dim]
        cats, start = [], self.noise_dim
        for c in self.categorical:
            cats.append(latent[:, start : start + c.k])
            start += c.k
        return LatentParts(z, cats, latent[:, start:])

    def join(self, z: Tensor, categorical: list[Tensor], continuous: Tensor) -> Tensor:
        """Inverse of :meth:`split`. Categorical parts may be indices (N,) or one-hot/probs (N, k)."""
        if len(categorical) != len(self.categorical):
            raise ValueError(f"expected {len(self.categorical)} categorical parts, got {len(categorical)}")
        parts = [z]
        for c, part in zip(self.categorical, categorical):
            if part.ndim == 1:
                part = torch.nn.functional.one_hot(part.long(), c.k).to(z.dtype)
            parts.append(part)
        parts.append(continuous.reshape(z.shape[0], self.continuous_dim).to(z.dtype))
        return torch.cat(parts, dim=1)

    def with_names(self, names: dict[str | int, str]) -> "LatentSpec":
        """A copy with codes renamed, e.g. after looking at what they control."""
        import dataclasses

        new = {self.code_index(k): v for k, v in names.items()}
        cats = [dataclasses.replace(c, name=new.get(i, c.name)) for i, c in enumerate(self.categorical)]
        off = len(self.categorical)
        conts = [dataclasses.replace(c, name=new.get(off + i, c.name)) for i, c in enumerate(self.continuous)]
        return LatentSpec(self.noise_dim, cats, conts)

    # ------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        return {
            "noise_dim": self.noise_dim,
            "categorical": [_code_dict(c) for c in self.categorical],
            "continuous": [_code_dict(c) for c in self.continuous],
            **({"random_controls": list(self.random_controls)} if self.random_controls else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LatentSpec":
        unknown = set(d) - {"noise_dim", "categorical", "continuous", "random_controls"}
        if unknown:  # a misspelt key (``random_control``) would otherwise be dropped without a word
            raise ValueError(f"unknown latent config keys {sorted(unknown)} (known: noise_dim, categorical, continuous, "
                             "random_controls)")
        return cls(int(d["noise_dim"]), list(d.get("categorical", [])), list(d.get("continuous", [])),
                   list(d.get("random_controls", [])))

    @classmethod
    def parse(cls, noise_dim: int, categorical: str = "", continuous: str = "") -> "LatentSpec":
        """Build from command-line strings.

        ``categorical``: comma list of ``k`` or ``name:k`` or ``name:k:Attribute``
        (e.g. ``"glasses:2:Eyeglasses,10"``); ``continuous``: comma list of ``name`` or
        ``name:Attribute`` or a bare count (``"3"``). Unnamed codes get ``c<i>``.
        """
        cats: list[CategoricalCode] = []
        for i, item in enumerate(x for x in categorical.split(",") if x.strip()):
            bits = item.strip().split(":")
            if len(bits) == 1:
                cats.append(CategoricalCode(f"c{i}", int(bits[0])))
            else:
                cats.append(CategoricalCode(bits[0], int(bits[1]), bits[2] if len(bits) > 2 else None))
        conts: list[ContinuousCode] = []
        items = [x.strip() for x in continuous.split(",") if x.strip()]
        if len(items) == 1 and items[0].isdigit():
            items = [""] * int(items[0])
        for j, item in enumerate(items):
            idx = len(cats) + j
            bits = item.split(":") if item else [f"c{idx}"]
            conts.append(ContinuousCode(bits[0] or f"c{idx}", attribute=bits[1] if len(bits) > 1 else None))
        return cls(noise_dim, cats, conts)


def _code_dict(code: Code) -> dict[str, Any]:
    """A code's fields; ``random`` only when False (bundles written before it keep their identity)."""
    d = asdict(code)
    if d["random"]:
        del d["random"]
    return d
