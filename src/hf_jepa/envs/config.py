"""What every built-in environment checks: its settings at construction (a config dataclass, keyword overrides of
its fields, the render mode) and each planar action, with errors naming what was wrong."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import numpy as np

__all__ = ["resolve_env_config", "unit_ball_action"]

C = TypeVar("C")


def resolve_env_config(env_name: str, config_cls: type[C], config: C | None, overrides: dict[str, Any],
                       render_mode: str | None) -> C:
    """``config`` (default ``config_cls()``) with ``overrides`` applied; raises ValueError for a field
    ``config_cls`` does not have or a render mode other than ``"rgb_array"`` / None."""
    config = config or config_cls()
    if overrides:
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(config_cls)})
        if unknown:
            raise ValueError(f"{env_name} got unknown config fields {unknown}; expected fields of "
                             f"{config_cls.__name__}")
        config = dataclasses.replace(config, **overrides)
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"{env_name} render_mode={render_mode!r} is invalid: expected 'rgb_array' or None")
    return config


def unit_ball_action(action: Any, env_name: str) -> np.ndarray:
    """A planar action as float64 ``(2,)`` projected onto the unit L2 ball; ValueError unless 2 finite numbers."""
    a = np.asarray(action, dtype=np.float64).reshape(-1)
    if a.shape != (2,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{env_name}.step action={action!r} is invalid: expected 2 finite floats")
    norm = float(np.linalg.norm(a))
    return a / norm if norm > 1.0 else a
