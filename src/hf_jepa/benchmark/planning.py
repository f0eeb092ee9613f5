"""Planning benchmark: one CEM plan with the tiny world model, KV-cached rollouts vs recomputing the history."""

from __future__ import annotations

import logging
from typing import Any

import torch

from hf_jepa.benchmark.timing import time_interleaved

logger = logging.getLogger(__name__)

__all__ = ["planning_benchmark"]


def planning_benchmark(*, horizon: int, num_samples: int, topk: int, iterations: int, device: torch.device | str,
                       repeats: int, context_frames: int = 1, seed: int = 0) -> dict[str, float]:
    """One CEM plan (= one planned MPC action) with the tiny world model: KV-cached rollouts vs recomputing the
    whole history per rollout step (Meta's planning code); same settings, same generator seed.

    With `context_frames` T0 > 1 each rollout starts from the last T0 observed frames (an MPC history, filled by
    T0 - 1 earlier plans): the cached planner runs the shared history once per candidate batch, the recomputing one
    for every sample at every rollout step.

    Raises:
        AssertionError: the two plans differ (beyond 1e-4).

    Returns:
        dict with seconds per planned action of both, `speedup` and the max difference of the chosen actions.
    """
    import numpy as np

    from hf_jepa.modeling.configuration_easy_vjepa2_ac import JepaWorldModelConfig
    from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel
    from hf_jepa.planning.configs import CEMConfig
    from hf_jepa.planning.world_model_planner import WorldModelPlanner

    torch.manual_seed(seed)
    cfg = JepaWorldModelConfig.from_preset("tiny", max_steps=max(16, horizon + 1))
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

    def plan(name: str) -> Any:
        return planners[name].plan(obs, goal, state, generator=cem_cfg.make_generator(device), goal_latents=goal_z)

    for _ in range(context_frames - 1):  # fill the observed history (same plans in both: same generator seed)
        plan("kv_cache"), plan("recompute")
    cached, full = plan("kv_cache"), plan("recompute")
    diff = float((cached.actions - full.actions).abs().max())
    if not diff <= 1e-4:
        raise AssertionError(f"planning horizon {horizon}: KV-cached and recomputed plans differ by {diff}")
    t = time_interleaved({n: (lambda n=n: plan(n)) for n in planners}, device=device, warmup=1, repeats=repeats)
    out = {"horizon": horizon, "context_frames": context_frames, "num_samples": num_samples, "iterations": iterations,
           "kv_cache_s_per_action": t["kv_cache"].median_s, "recompute_s_per_action": t["recompute"].median_s,
           "speedup": t["recompute"].median_s / t["kv_cache"].median_s, "max_action_diff": diff}
    logger.info("planning H=%d T0=%d: kv %.3g s, recompute %.3g s per action (%.2fx)", horizon, context_frames,
                out["kv_cache_s_per_action"], out["recompute_s_per_action"], out["speedup"])
    return out
