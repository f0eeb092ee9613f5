"""One MPC episode of a world model for the Space's Plan views (Two-Rooms, Push-T), with progress reports."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from hf_jepa.planning.configs import CEMConfig
from hf_jepa.planning.mpc import Episode, run_mpc
from hf_jepa.planning.subgoals import LatentSubgoalGraph
from hf_jepa.planning.world_model_planner import WorldModelPlanner


def plan_episode(model: nn.Module, env: Any, *, cem: CEMConfig, max_steps: int, seed: int, adapt_steps: int,
                 subgoals: LatentSubgoalGraph | None = None, options: dict[str, Any] | None = None,
                 progress: Callable[[int, int], None] | None = None, out_dir: str | os.PathLike | None = None,
                 prefix: str = "hf_jepa_plan_", state_encoder: Callable[[Any], Tensor] | None = None,
                 ) -> tuple[Episode, float, Path]:
    """Run MPC with `model` on `env` (a goal env: the goal image in the reset info) for at most `max_steps` env steps.

    Each planned action runs as the model's `frame_skip` env steps (`WorldModelPlanner.plan_fn`'s action repeat);
    `progress(step, max_steps)` is called before each replan. `state_encoder` (perfect perception, a world model
    trained with `--latents state`): a state `(S,)` -> its latents `(1, 1, D)`; the planner then encodes the env's
    true state instead of the image and aims at `info["goal_state"]`'s latents (None: it encodes the images).
    Returns the episode, its wall time in seconds and the output folder (`out_dir`, created, or a new temporary
    folder named with `prefix`).
    """
    k = int(model.config.frame_skip)  # env steps per planned action
    planner = WorldModelPlanner(model, config=cem, reduction="ramp", adapt_steps=adapt_steps, subgoals=subgoals,
                                state_encoder=state_encoder)
    inner = planner.plan_fn(seed=seed, action_repeat=k)
    calls = {"n": 0}

    def plan_fn(observation: Any, goal_image: Any, info: Any) -> Any:
        if progress is not None:
            progress(min(calls["n"] * k, max_steps), max_steps)
        calls["n"] += 1
        return inner(observation, goal_image, info)

    start_time = time.perf_counter()
    episode = run_mpc(env, plan_fn, max_steps=max_steps, seed=seed, execute_actions=k, options=options)
    seconds = time.perf_counter() - start_time
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix=prefix))
    out.mkdir(parents=True, exist_ok=True)
    return episode, seconds, out
