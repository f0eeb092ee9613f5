"""Model-predictive control: the episode loop that plans, executes and replans on a gymnasium-style env."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hf_jepa.planning.configs import check_int
from hf_jepa.planning.search import PlanResult

logger = logging.getLogger(__name__)

__all__ = ["Episode", "PlanFn", "run_mpc"]

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
        final_info: the scalar entries (numbers and flags) of the last ``info``, e.g. Push-T's ``coverage``.
        start_info: the same of the ``reset`` info (a start that already succeeds shows here).
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
    final_info: dict[str, float | bool] = field(default_factory=dict)
    start_info: dict[str, float | bool] = field(default_factory=dict)


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
    options: dict[str, Any] | None = None,
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
        options: passed to ``env.reset(options=...)`` (e.g. ``{"start": state, "goal": state}``).

    Returns:
        The :class:`Episode`. Stops on ``terminated``, ``truncated`` or after ``max_steps`` steps.
    """
    check_int("run_mpc", "max_steps", max_steps, minimum=1)
    check_int("run_mpc", "execute_actions", execute_actions, minimum=1)
    check_int("run_mpc", "replan_every", replan_every, minimum=1)
    obs, info = env.reset(seed=seed, options=options)
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
        episode.final_info = {k: v.item() if isinstance(v, np.generic) else v for k, v in info.items()
                              if isinstance(v, (bool, int, float, np.bool_, np.number))}

    record(obs, info)
    episode.start_info = dict(episode.final_info)
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
