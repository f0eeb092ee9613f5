"""Validated settings of the planners: `CEMConfig` (with Meta's V-JEPA 2-AC and LeWM presets) and `MPPIConfig`.

Every field is checked at construction; an error names the class, the field and the value. A per-dimension field
(`PerDim`) is a float applied to every action dimension or one value per dimension.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["CEMConfig", "MPPIConfig", "PerDim", "check_int"]

PerDim = float | tuple[float, ...]
"""A scalar applied to every action dimension, or one value per dimension (length ``A``)."""


# ----------------------------------------------------------------------------------------------
# validation helpers


def _fail(cls: str, name: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"{cls}.{name}={value!r} is invalid: expected {expected}.")


def check_int(cls: str, name: str, value: Any, *, minimum: int) -> None:
    """Raises a ValueError naming ``cls.name`` and ``value`` unless it is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(cls, name, value, f"an int >= {minimum}")


def _check_float(
    cls: str, name: str, value: Any, *, low: float, high: float, low_open: bool = False, high_open: bool = False
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise _fail(cls, name, value, f"a float in {lo}{low}, {high}{hi}")


def _normalize_per_dim(cls: str, name: str, value: Any, *, low: float, high: float, high_open: bool = False) -> PerDim:
    """Checks a scalar-or-per-dimension field and returns it as ``float`` or ``tuple[float, ...]``."""
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            raise _fail(cls, name, value, "a float or a non-empty sequence of floats")
        for i, v in enumerate(value):
            _check_float(cls, f"{name}[{i}]", v, low=low, high=high, high_open=high_open)
        return tuple(float(v) for v in value)
    _check_float(cls, name, value, low=low, high=high, high_open=high_open)
    return float(value)


def _per_dim_len(value: PerDim) -> int | None:
    return len(value) if isinstance(value, tuple) else None


def _check_bounds(cls: str, config: Any, per_dim_fields: Sequence[str]) -> None:
    """Checks ``action_low <= action_high`` and that per-dimension fields agree in length."""
    lengths = {n: _per_dim_len(getattr(config, n)) for n in per_dim_fields}
    sized = {n: k for n, k in lengths.items() if k is not None}
    if len(set(sized.values())) > 1:
        raise ValueError(
            f"{cls}: per-dimension fields have different lengths {sized}: expected one value per action dimension."
        )
    a = int(next(iter(sized.values()), 1))
    low = np.broadcast_to(np.asarray(config.action_low, dtype=np.float64), (a,))
    high = np.broadcast_to(np.asarray(config.action_high, dtype=np.float64), (a,))
    if np.any(low > high):
        raise _fail(cls, "action_low", config.action_low, f"action_low <= action_high={config.action_high!r}")


def _check_max_norm(cls: str, value: Any) -> None:
    if value is not None:
        _check_float(cls, "max_norm", value, low=0.0, high=math.inf, low_open=True, high_open=True)


# ----------------------------------------------------------------------------------------------
# configs


@dataclass(frozen=True)
class _SearchConfig:
    """What CEM and MPPI share: sequence length, sample count, iterations, the action set and the seed.

    Attributes:
        horizon: ``H``, number of actions per candidate sequence.
        num_samples: ``S``, candidates per iteration.
        iterations: search iterations.
        action_low: lower action bound, a float or one per dimension (``-inf`` for none).
        action_high: upper action bound, a float or one per dimension (``inf`` for none).
        max_norm: if set, each action (one step, all dimensions) is projected onto the L2 ball of
            this radius before the box clamp (EB-JEPA's Two-Rooms ``max_norms``).
        norm_groups: ``max_norm`` bounds each of this many equal consecutive parts of an action instead (an
            action made of k env actions side by side: k), 1 for the whole action.
        seed: seed for :meth:`make_generator`; the planners themselves use the generator they are given.
    """

    horizon: int = 5
    num_samples: int = 300
    iterations: int = 10
    action_low: PerDim = -1.0
    action_high: PerDim = 1.0
    max_norm: float | None = None
    norm_groups: int = 1
    seed: int = 0

    def _check_search(self, std_field: str) -> None:
        """Validate the shared fields (``std_field``: the per-dimension sampling std checked with the bounds)."""
        c = type(self).__name__
        for name in ("horizon", "num_samples", "iterations"):
            check_int(c, name, getattr(self, name), minimum=1)
        object.__setattr__(
            self, std_field, _normalize_per_dim(c, std_field, getattr(self, std_field), low=0.0, high=math.inf,
                                                high_open=True)
        )
        for name in ("action_low", "action_high"):
            object.__setattr__(
                self, name, _normalize_per_dim(c, name, getattr(self, name), low=-math.inf, high=math.inf)
            )
        _check_bounds(c, self, (std_field, "action_low", "action_high"))
        _check_max_norm(c, self.max_norm)
        check_int(c, "norm_groups", self.norm_groups, minimum=1)
        dims = np.size(self.action_low)
        if dims > 1 and dims % self.norm_groups:
            raise _fail(c, "norm_groups", self.norm_groups, f"a divisor of the action width {dims}")
        check_int(c, "seed", self.seed, minimum=0)

    def replace(self, **changes: Any) -> Any:
        """Returns a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def make_generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        """A ``torch.Generator`` on ``device`` seeded with ``self.seed``."""
        return torch.Generator(device=device).manual_seed(self.seed)


@dataclass(frozen=True)
class CEMConfig(_SearchConfig):
    """Cross-entropy method over action sequences, validated at construction.

    Each iteration samples ``num_samples`` sequences ``a ~ N(mean, std)`` of shape ``(H, A)``,
    projects them into the action set (:func:`project_actions`), keeps the ``topk`` lowest
    energies (the elite) and moves the sampling distribution toward the elite with momentum
    (V-JEPA 2-AC convention: ``mean <- (1 - momentum_mean) * elite_mean + momentum_mean * mean``,
    likewise for ``std``; momentum 0 replaces the distribution by the elite statistics, as LeWM /
    DINO-WM). The plan is the final ``mean``, or with ``return_best`` the lowest-energy candidate seen.

    Attributes (and those of ``_SearchConfig``: horizon, num_samples, bounds, max_norm, seed):
        topk: elite size, ``1 <= topk <= num_samples``.
        iterations: CEM iterations (refits of the distribution; 30).
        init_std: initial sampling std, a float or one value per action dimension (0 freezes a dim).
        momentum_mean: weight of the previous mean in the update, in ``[0, 1)``.
        momentum_std: weight of the previous std in the update, in ``[0, 1)``.
        min_std: floor on the std after each update (keeps exploring); 0 disables it.
        noise_beta: exponent of the sampling noise's power spectrum along the horizon, ``1/f^beta``
            (iCEM, Pinneri et al. 2020): 0 is white noise (Meta, LeWM); 2 gives smooth, persistent candidate
            sequences that explore far (detours) instead of jittering in place. Unit variance either way.
        keep_elites: number of the previous iteration's elites carried into the next iteration's candidates
            (iCEM's elite memory), ``0 <= keep_elites <= topk``; they replace as many fresh samples, so the
            cost per iteration is unchanged. A rare good sequence (a detour the Gaussian seldom draws) then
            stays in the elite until something better is found instead of being averaged away.
        return_best: return the lowest-energy candidate of the whole search instead of the final mean (iCEM
            executes the best sequence): when the elite is multi-modal (a detour vs. a push into a wall) the mean
            of the modes can be worse than either.
    """

    iterations: int = 30
    topk: int = 30
    init_std: PerDim = 1.0
    momentum_mean: float = 0.0
    momentum_std: float = 0.0
    min_std: float = 0.0
    noise_beta: float = 0.0
    keep_elites: int = 0
    return_best: bool = False

    def __post_init__(self) -> None:
        c = type(self).__name__
        self._check_search("init_std")
        check_int(c, "topk", self.topk, minimum=1)
        if self.topk > self.num_samples:
            raise _fail(c, "topk", self.topk, f"1 <= topk <= num_samples={self.num_samples}")
        check_int(c, "keep_elites", self.keep_elites, minimum=0)
        if self.keep_elites > self.topk:
            raise _fail(c, "keep_elites", self.keep_elites, f"0 <= keep_elites <= topk={self.topk}")
        if not isinstance(self.return_best, bool):
            raise _fail(c, "return_best", self.return_best, "a bool")
        _check_float(c, "momentum_mean", self.momentum_mean, low=0.0, high=1.0, high_open=True)
        _check_float(c, "momentum_std", self.momentum_std, low=0.0, high=1.0, high_open=True)
        _check_float(c, "min_std", self.min_std, low=0.0, high=math.inf, high_open=True)
        _check_float(c, "noise_beta", self.noise_beta, low=0.0, high=4.0)

    @classmethod
    def meta_vjepa2_ac(cls, action_dim: int = 7, **overrides: Any) -> CEMConfig:
        """V-JEPA 2-AC settings (facebookresearch/vjepa2, ``notebooks/utils/world_model_wrapper.py``).

        ``rollout=2`` -> horizon 2, ``samples=400``, ``topk=10``, ``cem_steps=10``,
        ``momentum_mean=0.15``, ``momentum_std=0.15``, ``maxnorm=0.05``. In Meta's ``cem``
        (``mpc_utils.py``) ``maxnorm`` is a per-coordinate clip of the xyz deltas to ``[-0.05, 0.05]``
        (a box, not an L2 ball) and the xyz sampling std starts at ``maxnorm``; the gripper is
        clipped to ``[-0.75, 0.75]`` with initial std 1 and the three rotation deltas are fixed at 0.

        With ``action_dim=7`` (DROID layout ``[dx, dy, dz, droll, dpitch, dyaw, gripper]``) those
        per-dimension bounds are reproduced (rotation dims: ``low = high = 0``, std 0). For any other
        ``action_dim`` every dimension gets the xyz treatment: box ``[-0.05, 0.05]``, std 0.05.
        ``max_norm`` stays ``None`` (Meta has no L2 projection). ``overrides`` replace any field.
        """
        maxnorm = 0.05
        if action_dim == 7:
            low: PerDim = (-maxnorm,) * 3 + (0.0,) * 3 + (-0.75,)
            high: PerDim = (maxnorm,) * 3 + (0.0,) * 3 + (0.75,)
            std: PerDim = (maxnorm,) * 3 + (0.0,) * 3 + (1.0,)
        else:
            check_int(cls.__name__, "action_dim", action_dim, minimum=1)
            low, high, std = -maxnorm, maxnorm, maxnorm
        settings: dict[str, Any] = dict(
            horizon=2,
            num_samples=400,
            topk=10,
            iterations=10,
            init_std=std,
            momentum_mean=0.15,
            momentum_std=0.15,
            min_std=0.0,
            action_low=low,
            action_high=high,
            max_norm=None,
        )
        settings.update(overrides)
        return cls(**settings)

    @classmethod
    def lewm(cls, **overrides: Any) -> CEMConfig:
        """LeWM / DINO-WM settings (galilai-group/stable-worldmodel ``solver/cem.py`` defaults and
        its examples: ``CEMSolver(num_samples=300, var_scale=1.0, n_steps=30, topk=30)`` with
        ``PlanConfig(horizon=5, ...)``): this class's defaults, without action bounds.

        ``var_scale=1`` is used there as the initial std; the elite mean/std replace the
        distribution each step (momentum 0); actions are not clipped (they live in a
        standardized space), so the bounds are infinite. ``overrides`` replace any field.
        """
        return cls(**{"action_low": -math.inf, "action_high": math.inf, **overrides})


#: The world-model planner's settings (``hf_jepa.planning.evaluation.planner_config``, the scripts' and the Space's
#: defaults): the Two-Rooms recipe. H = 6 model steps (60 env steps at the demo's frame_skip 10: a detour through
#: the door fits), 300 samples x 10 iterations (warm-started between replans), an elite of 30 and, for CEM, iCEM's
#: colored noise (beta 2), elite memory (10) and best-sequence execution. Bounds come from the model's frame_skip.
WORLD_MODEL_PLANNER_DEFAULTS: dict[str, dict[str, Any]] = {
    "cem": {"horizon": 6, "num_samples": 300, "topk": 30, "iterations": 10, "noise_beta": 2.0, "keep_elites": 10,
            "return_best": True},
    "mppi": {"horizon": 6, "num_samples": 300, "iterations": 10},
}

#: Per-env changes to the CEM settings above (``planner_config(..., env=...)``, the scripts' and the Space's defaults).
#: Push-T needs fine control (success within 20 px where one unit action moves the PD target 100 px): CEM's first
#: sampling std is a quarter of the planned action's bound (``init_std_scale``) with 16 refits of 128 samples, H = 5
#: (LeWM's). Planning with gym-pusht's own simulator in place of a model, over 20 held-out goals 25 steps ahead,
#: 8 refits of 64 samples reach 100% pose success where the Two-Rooms settings (std = the bound) reach 35%; with a
#: learned state world model (perfect perception, expert-like data) 128 x 16 plans 82% of 50 held-out goals where
#: 64 x 8 plans 72% (88% over 100 goals with a second set; docs/experiments/pusht_planning.md).
ENV_PLANNER_RECIPES: dict[str, dict[str, Any]] = {
    "pusht": {"horizon": 5, "num_samples": 128, "topk": 6, "keep_elites": 6, "iterations": 16, "init_std_scale": 0.25},
}


def planner_defaults(kind: str, env: str | None = None) -> dict[str, Any]:
    """The planner settings of `kind` ('cem' or 'mppi'), with `env`'s CEM recipe applied (None: Two-Rooms')."""
    if kind not in WORLD_MODEL_PLANNER_DEFAULTS:
        raise ValueError(f"planner kind={kind!r}: expected 'cem' or 'mppi'")
    recipe = ENV_PLANNER_RECIPES.get(env or "", {}) if kind == "cem" else {}
    return {**WORLD_MODEL_PLANNER_DEFAULTS[kind], **recipe}


@dataclass(frozen=True)
class MPPIConfig(_SearchConfig):
    """Model predictive path integral control over action sequences, validated at construction.

    Each iteration samples ``a = mean + noise_std * eps`` (``eps ~ N(0, I)``, fixed noise, as in
    classic MPPI), projects them into the action set, and sets the mean to the average of the
    candidates weighted by ``softmax(-(E - min E) / temperature)``. The weighted mean of projected
    candidates stays in the (convex) action set.

    Attributes (and those of ``_SearchConfig``: horizon, num_samples, iterations (reweightings; 10), bounds, seed):
        temperature: softmax temperature ``> 0`` in energy units (small -> greedy, large -> uniform).
        noise_std: sampling std, a float or one value per action dimension.
    """

    temperature: float = 0.1
    noise_std: PerDim = 0.5

    def __post_init__(self) -> None:
        self._check_search("noise_std")
        _check_float(type(self).__name__, "temperature", self.temperature, low=0.0, high=math.inf, low_open=True,
                     high_open=True)
