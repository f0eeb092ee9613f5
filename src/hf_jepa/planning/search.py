"""Search over action sequences: CEM and MPPI.

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

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from hf_jepa.planning.configs import CEMConfig, MPPIConfig, PerDim, check_int

logger = logging.getLogger(__name__)

__all__ = ["EnergyFn", "PlanResult", "cem", "colored_noise", "mppi", "project_actions", "shift_plan"]

EnergyFn = Callable[[Tensor], Tensor]
"""Scores candidate action sequences: ``(S, H, A) -> (S,)``, lower is better."""


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


def project_actions(actions: Tensor, low: Tensor, high: Tensor, max_norm: float | None = None,
                    norm_groups: int = 1) -> Tensor:
    """Projects actions into the action set.

    Args:
        actions: ``(..., A)``.
        low, high: ``(A,)`` box bounds (may be infinite).
        max_norm: if set, each action vector (last dim) whose L2 norm exceeds it is first scaled
            down to norm ``max_norm``; the box clamp is applied after, so the box always holds and
            the norm bound holds exactly whenever the box contains the origin.
        norm_groups: the norm bound applies to each of this many equal consecutive parts of an action
            (``A / norm_groups`` values each: k env actions side by side), 1 for the whole action.

    Returns:
        ``(..., A)`` projected actions.
    """
    if max_norm is not None:
        grouped = actions.unflatten(-1, (norm_groups, -1))  # (..., G, A/G)
        norm = grouped.norm(dim=-1, keepdim=True)  # (..., G, 1)
        actions = (grouped * (max_norm / norm.clamp_min(max_norm))).flatten(-2)  # (..., A)
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


def _search_start(name: str, config: CEMConfig | MPPIConfig, action_dim: int, init_mean: Tensor | None,
                  device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """The action box ``low``, ``high`` (A,) on ``device`` and the initial mean (H, A) of a search."""
    check_int(name, "action_dim", action_dim, minimum=1)
    low = _per_dim(config.action_low, action_dim, "action_low", device)  # (A,)
    high = _per_dim(config.action_high, action_dim, "action_high", device)  # (A,)
    return low, high, _initial_mean(init_mean, config.horizon, action_dim, low, high)


def _final_plan(energy_fn: EnergyFn, mean: Tensor, low: Tensor, high: Tensor, max_norm: float | None,
                history: list[Tensor], norm_groups: int = 1) -> PlanResult:
    """The search's mean (H, A), projected into the action set, as the plan, with its energy."""
    mean = project_actions(mean, low, high, max_norm, norm_groups)
    final_energy = _evaluate(energy_fn, mean[None]).item()
    return PlanResult(actions=mean, energy_history=torch.stack(history).tolist(), final_energy=final_energy)


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
    device = generator.device
    h, s, k = config.horizon, config.num_samples, config.topk
    low, high, mean = _search_start("cem", config, action_dim, init_mean, device)  # (A,), (A,), (H, A)
    std = _per_dim(config.init_std, action_dim, "init_std", device).expand(h, action_dim).clone()  # (H, A)
    history: list[Tensor] = []  # () per iteration
    kept = torch.empty(0, h, action_dim, device=device)  # (E, H, A) elites carried over, E <= keep_elites
    kept_energy = torch.empty(0, device=device)  # (E,) their energies (not recomputed: the energy is deterministic)
    best, best_energy = mean, math.inf
    for it in range(config.iterations):
        noise = colored_noise((s, h, action_dim), config.noise_beta, generator)  # (S, H, A)
        # the full (S, H, A) draw keeps the random stream independent of keep_elites; E rows are left unused
        fresh = project_actions(mean + std * noise[: s - kept.shape[0]], low, high, config.max_norm,
                                config.norm_groups)  # (S-E, H, A)
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
    return _final_plan(energy_fn, mean, low, high, config.max_norm, history,
                       config.norm_groups)


@torch.no_grad()
def mppi(
    energy_fn: EnergyFn,
    config: MPPIConfig,
    *,
    action_dim: int,
    generator: torch.Generator,
    init_mean: Tensor | None = None,
) -> PlanResult:
    """Plans with MPPI (see :class:`MPPIConfig` for the update rule); the arguments and the
    :class:`PlanResult` (``actions`` ``(H, A)``) are :func:`cem`'s, ``init_mean`` included.
    """
    device = generator.device
    h, s = config.horizon, config.num_samples
    low, high, mean = _search_start("mppi", config, action_dim, init_mean, device)  # (A,), (A,), (H, A)
    noise_std = _per_dim(config.noise_std, action_dim, "noise_std", device)  # (A,)
    history: list[Tensor] = []  # () per iteration
    for it in range(config.iterations):
        noise = torch.randn(s, h, action_dim, generator=generator, device=device)  # (S, H, A)
        candidates = project_actions(mean + noise_std * noise, low, high, config.max_norm,
                                     config.norm_groups)  # (S, H, A)
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
    return _final_plan(energy_fn, mean, low, high, config.max_norm, history,
                       config.norm_groups)
