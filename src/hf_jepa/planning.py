"""Goal-image planning with a world model: CEM and MPPI over action sequences, and an MPC loop.

The planners are generic over an *energy function*::

    EnergyFn = Callable[[Tensor (S, H, A)], Tensor (S,)]

which scores ``S`` candidate action sequences of horizon ``H`` and action size ``A`` in one
batched call (lower is better). With a JEPA world model the energy is a distance between the
latents predicted by rolling the candidates out from the current observation and the latent
of the goal image (:func:`latent_energy`: L1 as in V-JEPA 2-AC, MSE as in LeWM).

Contract of an energy function: ``S`` may differ between calls (``num_samples`` during the
search, ``1`` when the returned plan is scored at the end), it must not draw random numbers
from the planner's generator, and it may return ``nan`` / ``+-inf`` for a candidate (those are
ranked last).

Randomness comes only from the ``torch.Generator`` passed in: the same generator state gives
the same plan. Samples are drawn on ``generator.device`` in float32.

References (read, not copied):
    - V-JEPA 2 (Assran et al., 2025), ``notebooks/utils/mpc_utils.py`` and
      ``world_model_wrapper.py`` in facebookresearch/vjepa2: CEM with momentum on mean/std.
    - LeWM (Maes, Le Lidec et al., 2026) / DINO-WM, planners in galilai-group/stable-worldmodel.
    - EB-JEPA (facebookresearch/eb_jepa) ``eb_jepa/planning.py``: CEM / MPPI with an L2
      max-norm projection of each action (Two-Rooms).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

logger = logging.getLogger(__name__)

__all__ = [
    "CEMConfig",
    "EnergyFn",
    "Episode",
    "MPPIConfig",
    "PlanFn",
    "PlanResult",
    "cem",
    "latent_energy",
    "mppi",
    "project_actions",
    "run_mpc",
    "shift_plan",
]

EnergyFn = Callable[[Tensor], Tensor]
"""Scores candidate action sequences: ``(S, H, A) -> (S,)``, lower is better."""

PerDim = float | tuple[float, ...]
"""A scalar applied to every action dimension, or one value per dimension (length ``A``)."""


# ----------------------------------------------------------------------------------------------
# configs


def _fail(cls: str, name: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"{cls}.{name}={value!r} is invalid: expected {expected}.")


def _check_int(cls: str, name: str, value: Any, *, minimum: int) -> None:
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


@dataclass(frozen=True)
class CEMConfig:
    """Cross-entropy method over action sequences, validated at construction.

    Each iteration samples ``num_samples`` sequences ``a ~ N(mean, std)`` of shape ``(H, A)``,
    projects them into the action set (:func:`project_actions`), keeps the ``topk`` lowest
    energies (the elite) and moves the sampling distribution toward the elite with momentum
    (V-JEPA 2-AC convention: ``mean <- (1 - momentum_mean) * elite_mean + momentum_mean * mean``,
    likewise for ``std``; momentum 0 replaces the distribution by the elite statistics, as LeWM /
    DINO-WM). The plan is the final ``mean``, or with ``return_best`` the lowest-energy candidate seen.

    Attributes:
        horizon: ``H``, number of actions per candidate sequence.
        num_samples: ``S``, candidates per iteration.
        topk: elite size, ``1 <= topk <= num_samples``.
        iterations: CEM iterations (refits of the distribution).
        init_std: initial sampling std, a float or one value per action dimension (0 freezes a dim).
        momentum_mean: weight of the previous mean in the update, in ``[0, 1)``.
        momentum_std: weight of the previous std in the update, in ``[0, 1)``.
        min_std: floor on the std after each update (keeps exploring); 0 disables it.
        action_low: lower action bound, a float or one per dimension (``-inf`` for none).
        action_high: upper action bound, a float or one per dimension (``inf`` for none).
        max_norm: if set, each action (one step, all dimensions) is projected onto the L2 ball of
            this radius before the box clamp (EB-JEPA's Two-Rooms ``max_norms``).
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
        seed: seed for :meth:`make_generator`; the planners themselves use the generator they are given.
    """

    horizon: int = 5
    num_samples: int = 300
    topk: int = 30
    iterations: int = 30
    init_std: PerDim = 1.0
    momentum_mean: float = 0.0
    momentum_std: float = 0.0
    min_std: float = 0.0
    noise_beta: float = 0.0
    keep_elites: int = 0
    return_best: bool = False
    action_low: PerDim = -1.0
    action_high: PerDim = 1.0
    max_norm: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        c = type(self).__name__
        _check_int(c, "horizon", self.horizon, minimum=1)
        _check_int(c, "num_samples", self.num_samples, minimum=1)
        _check_int(c, "topk", self.topk, minimum=1)
        if self.topk > self.num_samples:
            raise _fail(c, "topk", self.topk, f"1 <= topk <= num_samples={self.num_samples}")
        _check_int(c, "keep_elites", self.keep_elites, minimum=0)
        if self.keep_elites > self.topk:
            raise _fail(c, "keep_elites", self.keep_elites, f"0 <= keep_elites <= topk={self.topk}")
        if not isinstance(self.return_best, bool):
            raise _fail(c, "return_best", self.return_best, "a bool")
        _check_int(c, "iterations", self.iterations, minimum=1)
        _check_float(c, "momentum_mean", self.momentum_mean, low=0.0, high=1.0, high_open=True)
        _check_float(c, "momentum_std", self.momentum_std, low=0.0, high=1.0, high_open=True)
        _check_float(c, "min_std", self.min_std, low=0.0, high=math.inf, high_open=True)
        _check_float(c, "noise_beta", self.noise_beta, low=0.0, high=4.0)
        object.__setattr__(
            self, "init_std", _normalize_per_dim(c, "init_std", self.init_std, low=0.0, high=math.inf, high_open=True)
        )
        for name in ("action_low", "action_high"):
            object.__setattr__(
                self, name, _normalize_per_dim(c, name, getattr(self, name), low=-math.inf, high=math.inf)
            )
        _check_bounds(c, self, ("init_std", "action_low", "action_high"))
        _check_max_norm(c, self.max_norm)
        _check_int(c, "seed", self.seed, minimum=0)

    def replace(self, **changes: Any) -> CEMConfig:
        """Returns a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def make_generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        """A ``torch.Generator`` on ``device`` seeded with ``self.seed``."""
        return torch.Generator(device=device).manual_seed(self.seed)

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
            _check_int(cls.__name__, "action_dim", action_dim, minimum=1)
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
        ``PlanConfig(horizon=5, ...)``).

        ``var_scale=1`` is used there as the initial std; the elite mean/std replace the
        distribution each step (momentum 0); actions are not clipped (they live in a
        standardized space), so the bounds are infinite. ``overrides`` replace any field.
        """
        settings: dict[str, Any] = dict(
            horizon=5,
            num_samples=300,
            topk=30,
            iterations=30,
            init_std=1.0,
            momentum_mean=0.0,
            momentum_std=0.0,
            min_std=0.0,
            action_low=-math.inf,
            action_high=math.inf,
            max_norm=None,
        )
        settings.update(overrides)
        return cls(**settings)


@dataclass(frozen=True)
class MPPIConfig:
    """Model predictive path integral control over action sequences, validated at construction.

    Each iteration samples ``a = mean + noise_std * eps`` (``eps ~ N(0, I)``, fixed noise, as in
    classic MPPI), projects them into the action set, and sets the mean to the average of the
    candidates weighted by ``softmax(-(E - min E) / temperature)``. The weighted mean of projected
    candidates stays in the (convex) action set.

    Attributes:
        horizon: ``H``, number of actions per candidate sequence.
        num_samples: ``S``, candidates per iteration.
        iterations: number of reweighting iterations.
        temperature: softmax temperature ``> 0`` in energy units (small -> greedy, large -> uniform).
        noise_std: sampling std, a float or one value per action dimension.
        action_low / action_high: box bounds, float or per dimension (``+-inf`` for none).
        max_norm: optional L2 radius of each action step (see :func:`project_actions`).
        seed: seed for :meth:`make_generator`.
    """

    horizon: int = 5
    num_samples: int = 300
    iterations: int = 10
    temperature: float = 0.1
    noise_std: PerDim = 0.5
    action_low: PerDim = -1.0
    action_high: PerDim = 1.0
    max_norm: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        c = type(self).__name__
        _check_int(c, "horizon", self.horizon, minimum=1)
        _check_int(c, "num_samples", self.num_samples, minimum=1)
        _check_int(c, "iterations", self.iterations, minimum=1)
        _check_float(c, "temperature", self.temperature, low=0.0, high=math.inf, low_open=True, high_open=True)
        object.__setattr__(
            self,
            "noise_std",
            _normalize_per_dim(c, "noise_std", self.noise_std, low=0.0, high=math.inf, high_open=True),
        )
        for name in ("action_low", "action_high"):
            object.__setattr__(
                self, name, _normalize_per_dim(c, name, getattr(self, name), low=-math.inf, high=math.inf)
            )
        _check_bounds(c, self, ("noise_std", "action_low", "action_high"))
        _check_max_norm(c, self.max_norm)
        _check_int(c, "seed", self.seed, minimum=0)

    def replace(self, **changes: Any) -> MPPIConfig:
        """Returns a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def make_generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        """A ``torch.Generator`` on ``device`` seeded with ``self.seed``."""
        return torch.Generator(device=device).manual_seed(self.seed)


# ----------------------------------------------------------------------------------------------
# planners


@dataclass
class PlanResult:
    """The output of a planner.

    Attributes:
        actions: ``(H, A)`` the plan: the final CEM mean (mean of the elite, with momentum) or the
            final MPPI weighted mean, on the generator's device.
        energy_history: per iteration, the mean energy of the CEM elite / the softmax-weighted
            mean energy of the MPPI samples (``len == iterations``).
        final_energy: energy of ``actions`` itself (one extra ``energy_fn`` call with ``S = 1``).
    """

    actions: Tensor
    energy_history: list[float]
    final_energy: float


def _per_dim(value: PerDim, action_dim: int, name: str, device: torch.device) -> Tensor:
    """``value`` as a float32 tensor of shape ``(A,)``."""
    if isinstance(value, tuple) and len(value) != action_dim:
        raise ValueError(f"{name} has {len(value)} values but action_dim={action_dim}: expected one per dimension.")
    return torch.as_tensor(value, dtype=torch.float32, device=device).expand(action_dim).clone()


def project_actions(actions: Tensor, low: Tensor, high: Tensor, max_norm: float | None = None) -> Tensor:
    """Projects actions into the action set.

    Args:
        actions: ``(..., A)``.
        low, high: ``(A,)`` box bounds (may be infinite).
        max_norm: if set, each action vector (last dim) whose L2 norm exceeds it is first scaled
            down to norm ``max_norm``; the box clamp is applied after, so the box always holds and
            the norm bound holds exactly whenever the box contains the origin.

    Returns:
        ``(..., A)`` projected actions.
    """
    if max_norm is not None:
        norm = actions.norm(dim=-1, keepdim=True)  # (..., 1)
        actions = actions * (max_norm / norm.clamp_min(max_norm))
    return torch.maximum(torch.minimum(actions, high), low)


def shift_plan(actions: Tensor, steps: int = 1, fill: Literal["zeros", "last"] = "zeros") -> Tensor:
    """Warm start for the next MPC replan: drops the ``steps`` executed actions and pads the end.

    Args:
        actions: ``(H, A)`` the previous plan.
        steps: number of actions executed since it was made.
        fill: pad with zeros or by repeating the last action.

    Returns:
        ``(H, A)`` to pass as ``init_mean``.
    """
    if actions.ndim != 2:
        raise ValueError(f"actions must be (H, A), got shape {tuple(actions.shape)}")
    h = actions.shape[0]
    steps = min(max(int(steps), 0), h)
    kept = actions[steps:]  # (H - steps, A)
    if fill == "zeros":
        pad = actions.new_zeros(steps, actions.shape[1])
    elif fill == "last":
        pad = actions[-1:].expand(steps, -1)
    else:
        raise ValueError(f"fill={fill!r} is invalid: expected 'zeros' or 'last'.")
    return torch.cat([kept, pad], dim=0)


def _initial_mean(init_mean: Tensor | None, horizon: int, action_dim: int, low: Tensor, high: Tensor) -> Tensor:
    """``(H, A)`` starting mean: ``init_mean`` (truncated, or zero-padded at the end) or zeros, in bounds."""
    device = low.device
    mean = torch.zeros(horizon, action_dim, device=device)
    if init_mean is not None:
        init_mean = torch.as_tensor(init_mean).detach().to(device=device, dtype=torch.float32)
        if init_mean.ndim != 2 or init_mean.shape[1] != action_dim:
            raise ValueError(f"init_mean must be (H, A={action_dim}), got shape {tuple(init_mean.shape)}")
        n = min(horizon, init_mean.shape[0])
        mean[:n] = init_mean[:n]
    return torch.maximum(torch.minimum(mean, high), low)


def _evaluate(energy_fn: EnergyFn, candidates: Tensor) -> Tensor:
    """Calls ``energy_fn`` on ``(S, H, A)``; returns ``(S,)`` float32 on the candidates' device, nan/-inf -> +inf."""
    energies = energy_fn(candidates)
    if not isinstance(energies, Tensor):
        raise TypeError(f"energy_fn must return a Tensor of shape (S,), got {type(energies).__name__}")
    s = candidates.shape[0]
    if energies.shape != (s,):
        raise ValueError(f"energy_fn returned shape {tuple(energies.shape)} for {s} candidates: expected ({s},)")
    energies = energies.detach().to(device=candidates.device, dtype=torch.float32)
    return torch.where(torch.isfinite(energies), energies, math.inf)


def colored_noise(shape: tuple[int, int, int], beta: float, generator: torch.Generator) -> Tensor:
    """Gaussian noise (S, H, A) with power spectrum ``1/f^beta`` along H and unit variance per entry (iCEM).

    ``beta=0`` returns ``torch.randn(shape)`` exactly (same draws). Otherwise white noise is filtered in the
    frequency domain (rfft over H, amplitudes times ``f^(-beta/2)`` with ``f >= 1/H``, irfft) and divided by the
    filter's exact per-entry standard deviation.
    """
    s, h, a = shape
    device = generator.device
    if beta == 0.0 or h == 1:
        return torch.randn(s, h, a, generator=generator, device=device)
    white = torch.randn(s, a, h, generator=generator, device=device)  # (S, A, H): filter along the last dim
    freqs = torch.fft.rfftfreq(h, device=device).clamp_min(1.0 / h)  # (H//2+1,)
    scale = freqs ** (-beta / 2.0)  # (H//2+1,)
    noise = torch.fft.irfft(torch.fft.rfft(white, dim=-1) * scale, n=h, dim=-1)  # (S, A, H)
    k = torch.arange(h, device=device)
    var = scale[torch.minimum(k, h - k)].square().mean()  # per-entry variance of the circular filter
    return (noise / var.sqrt()).transpose(1, 2)  # (S, A, H) -> (S, H, A)


@torch.no_grad()
def cem(
    energy_fn: EnergyFn,
    config: CEMConfig,
    *,
    action_dim: int,
    generator: torch.Generator,
    init_mean: Tensor | None = None,
) -> PlanResult:
    """Plans with the cross-entropy method (see :class:`CEMConfig` for the update rule).

    Args:
        energy_fn: ``(S, H, A) -> (S,)`` batched energy, lower is better.
        config: search settings.
        action_dim: ``A``.
        generator: the only source of randomness; samples are drawn on ``generator.device``.
        init_mean: optional ``(H', A)`` warm start (e.g. :func:`shift_plan` of the previous plan);
            rows beyond ``H`` are dropped, missing rows are zeros. It is projected into the box.

    Returns:
        :class:`PlanResult` with ``actions`` ``(H, A)``.
    """
    _check_int("cem", "action_dim", action_dim, minimum=1)
    device = generator.device
    h, s, k = config.horizon, config.num_samples, config.topk
    low = _per_dim(config.action_low, action_dim, "action_low", device)  # (A,)
    high = _per_dim(config.action_high, action_dim, "action_high", device)  # (A,)
    mean = _initial_mean(init_mean, h, action_dim, low, high)  # (H, A)
    std = _per_dim(config.init_std, action_dim, "init_std", device).expand(h, action_dim).clone()  # (H, A)
    history: list[Tensor] = []  # () per iteration
    kept = torch.empty(0, h, action_dim, device=device)  # (E, H, A) elites carried over, E <= keep_elites
    kept_energy = torch.empty(0, device=device)  # (E,) their energies (not recomputed: the energy is deterministic)
    best, best_energy = mean, math.inf
    for it in range(config.iterations):
        noise = colored_noise((s, h, action_dim), config.noise_beta, generator)  # (S, H, A)
        # the full (S, H, A) draw keeps the random stream independent of keep_elites; E rows are left unused
        fresh = project_actions(mean + std * noise[: s - kept.shape[0]], low, high, config.max_norm)  # (S-E, H, A)
        candidates = torch.cat([kept, fresh])  # (S, H, A)
        energies = torch.cat([kept_energy, _evaluate(energy_fn, fresh)])  # (S,)
        elite_energy, elite_idx = torch.topk(energies, k, largest=False)  # (K,), (K,) ascending
        elite = candidates[elite_idx]  # (K, H, A)
        if config.keep_elites:
            kept, kept_energy = elite[: config.keep_elites], elite_energy[: config.keep_elites]
        if config.return_best and float(elite_energy[0]) < best_energy:
            best, best_energy = elite[0], float(elite_energy[0])
        elite_mean = elite.mean(dim=0)  # (H, A)
        elite_std = elite.std(dim=0, correction=1 if k > 1 else 0)  # (H, A)
        mean = (1.0 - config.momentum_mean) * elite_mean + config.momentum_mean * mean
        std = (1.0 - config.momentum_std) * elite_std + config.momentum_std * std
        if config.min_std > 0:
            std = std.clamp_min(config.min_std)
        history.append(elite_energy.mean())  # kept on device: one sync at the end, not one per iteration
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "cem iter %d/%d: elite energy %.6g, best %.6g, mean std %.4g",
                it + 1,
                config.iterations,
                history[-1].item(),
                elite_energy[0].item(),
                std.mean().item(),
            )
    if config.return_best:
        return PlanResult(actions=best, energy_history=torch.stack(history).tolist(), final_energy=best_energy)
    # the momentum mean of in-set points is in the set when 0 is inside it; project to be sure
    mean = project_actions(mean, low, high, config.max_norm)
    final_energy = _evaluate(energy_fn, mean[None]).item()
    return PlanResult(actions=mean, energy_history=torch.stack(history).tolist(), final_energy=final_energy)


@torch.no_grad()
def mppi(
    energy_fn: EnergyFn,
    config: MPPIConfig,
    *,
    action_dim: int,
    generator: torch.Generator,
    init_mean: Tensor | None = None,
) -> PlanResult:
    """Plans with MPPI (see :class:`MPPIConfig` for the update rule).

    Args:
        energy_fn: ``(S, H, A) -> (S,)`` batched energy, lower is better.
        config: search settings.
        action_dim: ``A``.
        generator: the only source of randomness; samples are drawn on ``generator.device``.
        init_mean: optional ``(H', A)`` warm start, as for :func:`cem`.

    Returns:
        :class:`PlanResult` with ``actions`` ``(H, A)``.
    """
    _check_int("mppi", "action_dim", action_dim, minimum=1)
    device = generator.device
    h, s = config.horizon, config.num_samples
    low = _per_dim(config.action_low, action_dim, "action_low", device)  # (A,)
    high = _per_dim(config.action_high, action_dim, "action_high", device)  # (A,)
    noise_std = _per_dim(config.noise_std, action_dim, "noise_std", device)  # (A,)
    mean = _initial_mean(init_mean, h, action_dim, low, high)  # (H, A)
    history: list[Tensor] = []  # () per iteration
    for it in range(config.iterations):
        noise = torch.randn(s, h, action_dim, generator=generator, device=device)  # (S, H, A)
        candidates = project_actions(mean + noise_std * noise, low, high, config.max_norm)  # (S, H, A)
        energies = _evaluate(energy_fn, candidates)  # (S,)
        # without host syncs: non-finite energies get weight 0; if none is finite the mean is kept
        finite = torch.isfinite(energies)  # (S,)
        any_finite = finite.any()  # () bool
        shifted = energies - energies.min()  # (S,), >= 0 where finite (min is inf only if none is finite)
        logits = torch.where(finite, -shifted / config.temperature, -math.inf)  # (S,)
        weights = torch.softmax(torch.where(any_finite, logits, 0.0), dim=0)  # (S,)
        new_mean = (weights[:, None, None] * candidates).sum(dim=0)  # (H, A)
        mean = torch.where(any_finite, new_mean, mean)
        weighted = (weights * torch.where(finite, energies, 0.0)).sum()
        history.append(torch.where(any_finite, weighted, math.inf))
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "mppi iter %d/%d: weighted energy %.6g, best %.6g, ESS %.1f",
                it + 1,
                config.iterations,
                history[-1].item(),
                energies.min().item(),
                1.0 / weights.square().sum().item(),
            )
    mean = project_actions(mean, low, high, config.max_norm)
    final_energy = _evaluate(energy_fn, mean[None]).item()
    return PlanResult(actions=mean, energy_history=torch.stack(history).tolist(), final_energy=final_energy)


# ----------------------------------------------------------------------------------------------
# energy


def latent_energy(pred: Tensor, goal: Tensor, *, kind: Literal["l1", "mse"] = "l1") -> Tensor:
    """Distance between predicted and goal latents, one value per candidate.

    ``l1``: mean absolute difference over tokens and channels (V-JEPA 2-AC, ``mpc_utils.l1`` on the
    flattened final frame). ``mse``: mean squared difference (LeWM / DINO-WM).

    Args:
        pred: ``(S, N, D)`` predicted latents (``N`` tokens of size ``D``); any ``(S, ...)`` works.
        goal: ``(N, D)`` shared by every candidate, or ``(S, N, D)``.
        kind: ``"l1"`` or ``"mse"``.

    Returns:
        ``(S,)`` energies (lower is closer to the goal).
    """
    if pred.ndim < 2:
        raise ValueError(f"pred must be (S, N, D), got shape {tuple(pred.shape)}")
    if goal.shape == pred.shape[1:]:
        goal = goal.unsqueeze(0)  # (1, N, D)
    elif goal.shape != pred.shape:
        raise ValueError(
            f"goal shape {tuple(goal.shape)} does not match pred {tuple(pred.shape)}: expected "
            f"{tuple(pred.shape[1:])} or {tuple(pred.shape)}"
        )
    diff = (pred - goal).flatten(1)  # (S, N*D)
    if kind == "l1":
        return diff.abs().mean(dim=1)
    if kind == "mse":
        return diff.square().mean(dim=1)
    raise ValueError(f"kind={kind!r} is invalid: expected 'l1' or 'mse'.")


# ----------------------------------------------------------------------------------------------
# MPC loop

PlanFn = Callable[[Any, Any, Mapping[str, Any]], PlanResult]
"""``plan_fn(observation, goal_observation, info) -> PlanResult``."""


@dataclass
class Episode:
    """One MPC episode.

    Attributes:
        frames: ``T + 1`` frames ``(H, W, 3)`` uint8 (reset, then after each step) from
            ``env.render()``, or the observation when it is such an image; empty if neither.
        actions: ``T`` executed actions, each ``(A,)`` float32.
        states: ``T + 1`` ``info["state"]`` values when the env reports them, else empty.
        energies: per replan, the planner's ``energy_history``.
        success: whether any step reported ``info["success"]`` / ``info["is_success"]`` true.
        final_distance: ``info["distance"]`` after the last step, if reported.
        seconds_per_action: planning wall time (``plan_fn`` calls) divided by executed actions.
        num_replans: number of ``plan_fn`` calls.
        terminated / truncated: how the env ended the episode (both false: ``max_steps`` reached).
        goal: the goal observation the plans aimed at (``info["goal"]`` from ``reset``).
    """

    frames: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    states: list[Any] = field(default_factory=list)
    energies: list[list[float]] = field(default_factory=list)
    success: bool = False
    final_distance: float | None = None
    seconds_per_action: float = 0.0
    num_replans: int = 0
    terminated: bool = False
    truncated: bool = False
    goal: Any = None


def _as_frame(image: Any) -> np.ndarray | None:
    """``image`` as ``(H, W, 3)`` uint8 if it is an RGB image (uint8, or float in [0, 1]), else None."""
    if image is None:
        return None
    if isinstance(image, Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[-1] != 3:
        return None
    if image.dtype == np.uint8:
        return image.copy()
    if np.issubdtype(image.dtype, np.floating):
        return (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return None


def _frame(env: Any, obs: Any) -> np.ndarray | None:
    try:
        rendered = env.render()
    except Exception as err:  # render modes vary; fall back to the observation
        logger.debug("env.render() failed (%s); using the observation as the frame", err)
        rendered = None
    frame = _as_frame(rendered)
    return frame if frame is not None else _as_frame(obs)


def _succeeded(info: Mapping[str, Any]) -> bool:
    return bool(info.get("success", False)) or bool(info.get("is_success", False))


def run_mpc(
    env: Any,
    plan_fn: PlanFn,
    *,
    max_steps: int,
    execute_actions: int = 1,
    replan_every: int = 1,
    seed: int | None = None,
) -> Episode:
    """Runs model-predictive control on a gymnasium-style env toward the goal it gives at reset.

    Env contract: ``reset(seed=...) -> (obs, info)`` with the goal image in ``info["goal"]``;
    ``step(a) -> (obs, reward, terminated, truncated, info)``; optional ``info["state"]``,
    ``info["success"]`` / ``info["is_success"]``, ``info["distance"]``; ``render()`` may return an
    ``(H, W, 3)`` uint8 frame.

    Control cycle: each cycle executes ``execute_actions`` consecutive actions. ``plan_fn`` is
    called on every ``replan_every``-th cycle; on the other cycles the next actions of the latest
    plan are executed open loop. So a plan must hold at least ``execute_actions * replan_every``
    actions. With the defaults (1, 1) this is classic receding-horizon MPC (V-JEPA 2-AC); LeWM's
    ``receding_horizon=H`` is ``execute_actions=H``.

    Args:
        env: the environment.
        plan_fn: ``(observation, goal_observation, info) -> PlanResult`` with ``actions (H, A)``.
        max_steps: maximum number of env steps.
        execute_actions: actions executed per control cycle.
        replan_every: control cycles per call to ``plan_fn``.
        seed: passed to ``env.reset(seed=...)``.

    Returns:
        The :class:`Episode`. Stops on ``terminated``, ``truncated`` or after ``max_steps`` steps.
    """
    _check_int("run_mpc", "max_steps", max_steps, minimum=1)
    _check_int("run_mpc", "execute_actions", execute_actions, minimum=1)
    _check_int("run_mpc", "replan_every", replan_every, minimum=1)
    obs, info = env.reset(seed=seed)
    if "goal" not in info:
        raise KeyError(f"run_mpc needs the goal observation in info['goal'] from env.reset(); got keys {sorted(info)}")
    goal = info["goal"]
    episode = Episode(goal=goal)

    def record(obs: Any, info: Mapping[str, Any]) -> None:
        frame = _frame(env, obs)
        if frame is not None:
            episode.frames.append(frame)
        if "state" in info:
            state = info["state"]
            episode.states.append(state.copy() if hasattr(state, "copy") else state)
        if "distance" in info:
            episode.final_distance = float(info["distance"])
        episode.success = episode.success or _succeeded(info)

    record(obs, info)
    plan: np.ndarray | None = None  # (H, A)
    cursor = 0  # index of the next plan action
    plan_seconds = 0.0
    cycle = 0
    steps = 0
    done = False
    while steps < max_steps and not done:
        if cycle % replan_every == 0:
            start = time.perf_counter()
            result = plan_fn(obs, goal, info)
            plan_seconds += time.perf_counter() - start
            plan = np.asarray(torch.as_tensor(result.actions).detach().cpu().float().numpy())
            if plan.ndim != 2:
                raise ValueError(f"plan_fn returned actions of shape {plan.shape}: expected (H, A)")
            needed = execute_actions * replan_every
            if plan.shape[0] < needed:
                raise ValueError(f"plan has {plan.shape[0]} actions but execute_actions * replan_every = {needed}")
            cursor = 0
            episode.energies.append(list(result.energy_history))
            episode.num_replans += 1
            logger.debug("replan %d at step %d: final energy %.6g", episode.num_replans, steps, result.final_energy)
        assert plan is not None
        for _ in range(execute_actions):
            action = plan[cursor].astype(np.float32)
            cursor += 1
            obs, _reward, terminated, truncated, info = env.step(action)
            episode.actions.append(action)
            steps += 1
            record(obs, info)
            if terminated or truncated:
                episode.terminated, episode.truncated = bool(terminated), bool(truncated)
                done = True
                break
            if steps >= max_steps:
                break
        cycle += 1
    episode.seconds_per_action = plan_seconds / max(len(episode.actions), 1)
    logger.info(
        "mpc episode: %d steps, %d replans, success=%s, final distance=%s, %.4f s/action",
        steps,
        episode.num_replans,
        episode.success,
        episode.final_distance,
        episode.seconds_per_action,
    )
    return episode
