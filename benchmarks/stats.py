"""Paired statistics over seeds: mean, std and a 95 % t-interval of per-seed differences."""
from __future__ import annotations

import math

import numpy as np

# two-sided 95 % quantiles of Student's t (df 1..10), used when scipy is absent
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def t_quantile(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"a t-interval needs at least 2 values (df >= 1), got df={df}")
    try:
        from scipy.stats import t
    except ImportError:
        return _T975.get(df, 1.96 + 2.5 / df)  # beyond the table: within 0.01 of the exact value
    return float(t.ppf(0.975, df))


def mean_std(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}


def paired_difference(treated: list[float], control: list[float]) -> dict[str, float | None]:
    """Per-seed ``treated - control``: mean, std (ddof 1) and the 95 % t-interval of the mean
    (None with fewer than two seeds)."""
    if len(treated) != len(control) or not treated:
        raise ValueError(f"paired values need equal, non-zero lengths, got {len(treated)} and {len(control)}")
    d = np.asarray(treated, dtype=np.float64) - np.asarray(control, dtype=np.float64)
    out: dict[str, float | None] = {"mean": float(d.mean()), "std": None, "ci95_low": None, "ci95_high": None,
                                     "n": len(d), "per_seed": [float(x) for x in d]}
    if len(d) > 1:
        std = float(d.std(ddof=1))
        half = t_quantile(len(d) - 1) * std / math.sqrt(len(d))
        out.update(std=std, ci95_low=float(d.mean() - half), ci95_high=float(d.mean() + half))
    return out


def format_difference(d: dict, scale: float = 100.0, digits: int = 1) -> str:
    """'+1.2 ± 0.8 [-0.3, +2.7]' in points (``scale`` 100 turns fractions into percentage points)."""
    v = {k: None if d[k] is None else scale * d[k] for k in ("mean", "std", "ci95_low", "ci95_high")}
    if v["std"] is None:
        return f"{v['mean']:+.{digits}f} (1 seed)"
    return f"{v['mean']:+.{digits}f} ± {v['std']:.{digits}f} [{v['ci95_low']:+.{digits}f}, {v['ci95_high']:+.{digits}f}]"
