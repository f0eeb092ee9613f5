"""Goal-image planning in Two-Rooms for the Space: the arena picture, one MPC episode of the world model from a
start to a goal (GIF, goal image, summary) and its energy figure."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from torch import nn

from hf_jepa.envs.two_rooms import TwoRoomsEnv
from hf_jepa.planning.adaptation import ADAPT_STEPS
from hf_jepa.planning.configs import CEMConfig
from hf_jepa.planning.mpc import Episode
from hf_jepa.planning.subgoals import LatentSubgoalGraph
from hf_jepa.plotting import save_gif
from hf_jepa.space.config import InputError, ModelUnavailable
from hf_jepa.space.episode import plan_episode
from hf_jepa.space.media import upscale

logger = logging.getLogger(__name__)

__all__ = ["PlanOutput", "check_position", "energy_figure", "plan_in_two_rooms", "render_arena"]

GOAL_COLOR = (40, 220, 120)
TRAIL_COLOR = (90, 170, 255)


def _disk_mask(size: int, center: tuple[float, float], radius: float, width: float | None = None) -> np.ndarray:
    """(size, size) bool: a disk (or a ring of `width`) at `center` (x, y) in world units, radius in pixels."""
    c = (np.arange(size) + 0.5)
    dist = np.hypot(c[None, :] - center[0] * size, c[:, None] - center[1] * size)
    return dist <= radius if width is None else (dist <= radius) & (dist >= radius - width)


def render_arena(env: TwoRoomsEnv, agent: np.ndarray, goal: np.ndarray, *, size: int,
                 trail: list[np.ndarray] | None = None, base: np.ndarray | None = None) -> np.ndarray:
    """The arena at `size` px with the agent at `agent`, a green goal ring at `goal` and an optional trail.

    `base`: an already rendered (H, W, 3) observation to draw on (else `env.render_state(agent)`).
    """
    frame = upscale(base if base is not None else env.render_state(agent), size).copy()
    scale = size / env.config.image_size
    radius = env.config.agent_radius * env.config.image_size * scale
    for p in trail or []:
        frame[_disk_mask(size, (float(p[0]), float(p[1])), max(1.5, radius * 0.25))] = TRAIL_COLOR
    frame[_disk_mask(size, (float(goal[0]), float(goal[1])), radius * 1.6, width=max(2.0, radius * 0.45))] = (
        GOAL_COLOR)
    return frame


@dataclass
class PlanOutput:
    """What the Plan tab shows.

    Attributes:
        episode: the MPC episode.
        trajectory_gif: animated GIF of the episode (arena, goal ring, trail).
        goal_png: the goal image the planner was given (upscaled).
        summary: Markdown: success, final distance, steps, planning time.
    """

    episode: Episode
    trajectory_gif: str
    goal_png: str
    summary: str
    energies: list[float] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)


class _FixedStartGoal:
    """A TwoRoomsEnv whose `reset` always uses the given start and goal (run_mpc resets without options)."""

    def __init__(self, env: TwoRoomsEnv, start: np.ndarray, goal: np.ndarray) -> None:
        self.env, self.start, self.goal = env, start, goal

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        return self.env.reset(seed=seed, options={"start": self.start, "goal": self.goal})

    def step(self, action: np.ndarray) -> tuple:
        return self.env.step(action)

    def render(self) -> np.ndarray:
        return self.env.render()


def check_position(env: TwoRoomsEnv, xy: tuple[float, float], name: str) -> np.ndarray:
    """(x, y) in world units if the agent can stand there, else InputError naming the position."""
    p = np.asarray(xy, dtype=np.float64).reshape(-1)
    if p.shape != (2,) or not np.all(np.isfinite(p)) or not env.is_free(p):
        raise InputError(f"The {name} ({p[0]:.2f}, {p[1]:.2f}) is inside a wall or outside the rooms: pick a spot "
                         "on the black floor.")
    return p


def plan_in_two_rooms(
    model: nn.Module,
    start: tuple[float, float],
    goal: tuple[float, float],
    *,
    cem: CEMConfig,
    max_steps: int,
    seed: int = 0,
    adapt_steps: int = ADAPT_STEPS,
    subgoals: LatentSubgoalGraph | None = None,
    display_size: int = 320,
    out_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PlanOutput:
    """Run MPC with a world model from `start` to `goal` (world units) in Two-Rooms; write the GIF and goal PNG.

    Args:
        model: a `JepaWorldModel` with 2-D actions and states.
        start, goal: (x, y) in [0, 1] world units (validated: free positions).
        cem: the planner config in model action units (`hf_jepa.planning.evaluation.planner_config`); each planned
            action runs as the model's `frame_skip` env steps.
        max_steps: MPC steps (the episode also ends on success).
        seed: seeds the planner's generator.
        adapt_steps: test-time adaptation steps per executed action (`WorldModelPlanner`; on a copy of `model`).
        subgoals: plan toward subgoals of this graph of `model`'s training frames (None: toward the goal).
        display_size: side of the GIF / goal image.
        out_dir: where the files go (default: a new temporary folder).
        progress: called as `progress(step, max_steps)` before each replan.
    """
    from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel

    if not isinstance(model, JepaWorldModel):
        raise ModelUnavailable(f"The world model is a {type(model).__name__}, not a JepaWorldModel.")
    if model.config.action_dim != 2 or model.config.state_dim != 2:
        raise ModelUnavailable(f"Two-Rooms needs 2-D actions and states; the world model has action_dim="
                               f"{model.config.action_dim}, state_dim={model.config.state_dim}.")
    env = TwoRoomsEnv(max_episode_steps=max(max_steps, 1))
    start_p, goal_p = check_position(env, start, "start"), check_position(env, goal, "goal")
    episode, seconds, out = plan_episode(model, _FixedStartGoal(env, start_p, goal_p), cem=cem, max_steps=max_steps,
                                         seed=seed, adapt_steps=adapt_steps, subgoals=subgoals, progress=progress,
                                         out_dir=out_dir)
    frames = [render_arena(env, s, goal_p, size=display_size, trail=list(episode.states[:i + 1]), base=f)
              for i, (f, s) in enumerate(zip(episode.frames, episode.states, strict=True))]
    gif = save_gif(frames, out / "trajectory.gif", fps=1000 / 120, hold_frames=5)
    goal_png = out / "goal.png"
    Image.fromarray(upscale(env.render_state(goal_p), display_size)).save(goal_png)
    energies = [float(h[-1]) for h in episode.energies if h]
    distances = [float(np.linalg.norm(np.asarray(s, dtype=np.float64) - goal_p)) for s in episode.states]
    verdict = "**Reached the goal**" if episode.success else "**Did not reach the goal**"
    summary = (f"{verdict} in {len(episode.actions)} steps (limit {max_steps}). Final distance "
               f"{distances[-1]:.3f} (success below {env.config.success_radius:g}). Planning "
               f"{episode.seconds_per_action:.2f} s per action, {seconds:.1f} s in all. "
               + (f"Aimed at subgoals on the training data's shortest path ({subgoals.nodes.shape[0]} frames)."
                  if subgoals is not None else "Aimed at the goal image."))
    logger.info("plan %s -> %s: success=%s steps=%d final_distance=%.3f", start_p, goal_p, episode.success,
                len(episode.actions), distances[-1])
    return PlanOutput(episode=episode, trajectory_gif=str(gif), goal_png=str(goal_png), summary=summary,
                      energies=energies, distances=distances)


def energy_figure(energies: list[float], distances: list[float], steps_per_plan: int = 1,
                  distance_label: str = "distance to goal") -> Any:
    """A matplotlib Figure: planner energy at each replan (every `steps_per_plan` env steps) and the distance to
    the goal after each env step (named `distance_label`), on one env-step axis."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6, 3.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    replans = [i * steps_per_plan for i in range(len(energies))]  # env step of each replan
    ax.plot(replans, energies, color="#e8590c", marker="o", ms=3, label="energy of the chosen plan")
    ax.set_xlabel("env step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("energy (latent L1)", color="#e8590c")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(range(len(distances)), distances, color="#1c7ed6", ls="--", label=distance_label)
    twin.set_ylabel(distance_label, color="#1c7ed6")
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right", fontsize=8)
    return fig
