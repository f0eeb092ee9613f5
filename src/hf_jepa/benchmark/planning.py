"""Planning benchmark: one CEM plan with the tiny world model, KV-cached rollouts vs recomputing the history; the
rollouts and energies of the same candidates checked equal first."""

from __future__ import annotations

import logging
from typing import Any

import torch

from hf_jepa.benchmark.timing import time_interleaved

logger = logging.getLogger(__name__)

__all__ = ["PLAN_AGREEMENT", "ROLLOUT_TOLERANCE", "planning_benchmark"]


ROLLOUT_TOLERANCE = 1e-4  # max |cached - recomputed| / max |recomputed| of rollout latents and energies (fp32)
PLAN_AGREEMENT = 1e-4  # plans whose actions differ by at most this count as the same plan


def _relative_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (b's scale; 0 when both are 0)."""
    scale = float(b.abs().max())
    return float((a - b).abs().max()) / scale if scale > 0 else float((a - b).abs().max())


def planning_benchmark(*, horizon: int, num_samples: int, topk: int, iterations: int, device: torch.device | str,
                       repeats: int, context_frames: int = 1, seed: int = 0,
                       tolerance: float = ROLLOUT_TOLERANCE) -> dict[str, float]:
    """One CEM plan (= one planned MPC action) with the tiny world model: KV-cached rollouts vs recomputing the
    whole history per rollout step (Meta's planning code); same settings, same generator seed.

    With `context_frames` T0 > 1 each rollout starts from the last T0 observed frames (an MPC history, filled by
    T0 - 1 earlier plans): the cached planner runs the shared history once per candidate batch, the recomputing one
    for every sample at every rollout step.

    What must be equal is checked before anything is timed: the rollout latents and the energies of the same
    `num_samples` candidate action sequences (drawn once, from a T0-frame context with T0 - 1 executed actions),
    cached vs recomputed, to `tolerance` relative to the recomputed values' largest magnitude. The two CEM plans
    are compared and reported (`max_action_diff`, `plans_agree`), not required equal: float differences of 1e-7
    between the two computations can turn a near-tie of the elite selection into a different plan.

    Raises:
        AssertionError: the rollouts or energies differ beyond `tolerance`; the message names horizon, context
            frames and both differences.

    Returns:
        dict with seconds per planned action of both, `speedup`, the rollout / energy differences and the tolerance,
        and the plans' max action difference and final-energy difference.
    """
    import numpy as np

    from hf_jepa.modeling.configuration_easy_vjepa2_ac import JepaWorldModelConfig
    from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel
    from hf_jepa.planning.configs import CEMConfig
    from hf_jepa.planning.world_model_planner import WorldModelPlanner

    torch.manual_seed(seed)
    cfg = JepaWorldModelConfig.from_preset("tiny", max_steps=max(16, horizon + context_frames))
    model = JepaWorldModel(cfg).eval()
    cem_cfg = CEMConfig(horizon=horizon, num_samples=num_samples, topk=topk, iterations=iterations,
                        init_std=0.5, momentum_mean=0.15, momentum_std=0.15)
    rng = np.random.default_rng(seed)
    size = cfg.encoder_config.image_size
    obs, goal = (rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(2))
    state = np.zeros(cfg.state_dim, dtype=np.float32)
    planners = {name: WorldModelPlanner(model, cem_cfg, use_cache=cache, warm_start=False,
                                        context_frames=context_frames, device=device)
                for name, cache in (("kv_cache", True), ("recompute", False))}
    goal_z = planners["kv_cache"].encode(goal)
    where = f"planning horizon {horizon}, context {context_frames} frame(s)"

    # 1. the same candidates through both rollouts: latents and energies must agree
    gen = torch.Generator().manual_seed(seed)
    frames = rng.integers(0, 256, (context_frames, size, size, 3), dtype=np.uint8)  # T0 observed frames
    context = torch.cat([planners["kv_cache"].encode(f) for f in frames], dim=1)  # T0 x (1, N, D) -> (1, T0*N, D)
    states = torch.rand(context_frames, cfg.state_dim, generator=gen).to(device)  # (T0, S)
    past = (torch.rand(context_frames - 1, cfg.action_dim, generator=gen) * 2 - 1).to(device)  # (T0-1, A)
    candidates = torch.rand(num_samples, horizon, cfg.action_dim, generator=gen) * 2 - 1  # (S, H, A) in [-1, 1]
    full = torch.cat([past[None].expand(num_samples, -1, -1), candidates.to(device)], dim=1)  # (S, T0-1+H, A)
    with torch.no_grad():
        rollouts = {name: model.rollout(context.expand(num_samples, -1, -1), full,
                                        states[None].expand(num_samples, -1, -1), use_cache=name == "kv_cache",
                                        shared_prefix=context_frames - 1).float().cpu()  # (S, H*N, D)
                    for name in planners}
    energies = {name: p.energy_fn(context, states, goal_z, past if context_frames > 1 else None)(candidates)
                for name, p in planners.items()}  # (S,)
    rollout_diff = _relative_diff(rollouts["kv_cache"], rollouts["recompute"])
    energy_diff = _relative_diff(energies["kv_cache"], energies["recompute"])
    if not (rollout_diff <= tolerance and energy_diff <= tolerance):
        raise AssertionError(
            f"{where}: KV-cached and recomputed rollouts of the same {num_samples} candidate action sequences "
            f"differ: latents by {rollout_diff:.3g}, energies by {energy_diff:.3g} (max relative difference; "
            f"tolerance {tolerance:g})")

    # 2. the plans themselves: reported, not required equal (a near-tie of the elite selection may flip)
    def plan(name: str) -> Any:
        return planners[name].plan(obs, goal, state, generator=cem_cfg.make_generator(device), goal_latents=goal_z)

    for _ in range(context_frames - 1):  # fill the observed history (same plans in both: same generator seed)
        plan("kv_cache"), plan("recompute")
    cached, recomputed = plan("kv_cache"), plan("recompute")
    action_diff = float((cached.actions - recomputed.actions).abs().max())
    energy_gap = abs(cached.final_energy - recomputed.final_energy) / max(abs(recomputed.final_energy), 1e-12)
    if action_diff > PLAN_AGREEMENT:
        logger.warning("%s: the KV-cached and recomputed CEM plans differ (max action difference %.3g, final "
                       "energies %.6g vs %.6g) although their rollouts agree to %.2g: a near-tie in the elite "
                       "selection", where, action_diff, cached.final_energy, recomputed.final_energy, rollout_diff)
    t = time_interleaved({n: (lambda n=n: plan(n)) for n in planners}, device=device, warmup=1, repeats=repeats)
    out = {"horizon": horizon, "context_frames": context_frames, "num_samples": num_samples, "iterations": iterations,
           "kv_cache_s_per_action": t["kv_cache"].median_s, "recompute_s_per_action": t["recompute"].median_s,
           "speedup": t["recompute"].median_s / t["kv_cache"].median_s,
           "rollout_max_rel_diff": rollout_diff, "energy_max_rel_diff": energy_diff, "tolerance": tolerance,
           "max_action_diff": action_diff, "plans_agree": action_diff <= PLAN_AGREEMENT,
           "plan_final_energy_rel_diff": energy_gap}
    logger.info("planning H=%d T0=%d: kv %.3g s, recompute %.3g s per action (%.2fx); rollouts agree to %.2g, "
                "energies to %.2g, plans differ by %.3g", horizon, context_frames, out["kv_cache_s_per_action"],
                out["recompute_s_per_action"], out["speedup"], rollout_diff, energy_diff, action_diff)
    return out
