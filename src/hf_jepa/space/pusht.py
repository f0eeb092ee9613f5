"""Goal-image planning in Push-T for the Space: a state's picture (the env's goal-image rendering, with the goal's
outline drawn on top), and one MPC episode of a world model from a start state to a goal state (GIF, goal image,
summary, energies). A world model trained with perfect perception (`train_world_model.py --latents state`, its
folder holding `state_latents.json`) plans from the true states instead: each state's latents are computed from it
(`hf_jepa.data.state_latents`) and the planner aims at the goal state's.

States are Push-T's ``(agent_x, agent_y, block_x, block_y, block_angle)``: positions in arena units (gym-pusht's
pixels / 512, x to the right, y downwards), the angle in radians (`hf_jepa.envs.pusht`).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from torch import nn

from hf_jepa.data.state_latents import STATE_LATENTS_FILE, StateLatents
from hf_jepa.envs import make_goal_env
from hf_jepa.envs.pusht import AGENT_RADIUS_PX, ARENA_PX, STATE_NAMES, PushTGoalEnv
from hf_jepa.envs.pusht_data import INFO_KEY, check_action_space
from hf_jepa.planning.adaptation import ADAPT_STEPS
from hf_jepa.planning.configs import CEMConfig
from hf_jepa.plotting import save_gif
from hf_jepa.space.config import ENV_PUSHT_WORLD_MODEL, InputError, ModelUnavailable, SpaceConfig
from hf_jepa.space.episode import plan_episode
from hf_jepa.space.models import model_status, reads_states
from hf_jepa.space.two_rooms import TRAIL_COLOR, PlanOutput

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_GOAL", "DEFAULT_START", "PUSHT_ACTION_DIM", "PUSHT_STATE_DIM", "PushTPlanOutput",
           "check_pusht_state", "from_sliders", "plan_in_pusht", "pusht_scene", "pusht_status", "random_pusht_task",
           "render_pusht", "to_sliders"]

PUSHT_STATE_DIM, PUSHT_ACTION_DIM = len(STATE_NAMES), 2
GOAL_OUTLINE = (230, 110, 20)  # the goal pose's T and agent, drawn over a frame
DEFAULT_START = (0.2, 0.25, 0.4, 0.45, 0.0)
"""The Plan tab's first start: the block left of and above gym-pusht's target, upright."""
DEFAULT_GOAL = (0.25, 0.8, 0.5, 0.5, math.pi / 4)
"""The Plan tab's first goal: the block on gym-pusht's green target (256, 256 px, 45 degrees)."""

_ENVS: dict[int, tuple[PushTGoalEnv, threading.Lock]] = {}
_ENVS_LOCK = threading.Lock()


def _display_env(size: int) -> tuple[PushTGoalEnv, threading.Lock]:
    """One Push-T env per image size (built once: pygame and pymunk), with the lock its renders take (rendering
    moves the simulator's bodies and puts them back)."""
    with _ENVS_LOCK:
        if size not in _ENVS:
            _ENVS[size] = (PushTGoalEnv(image_size=size), threading.Lock())
        return _ENVS[size]


def check_pusht_state(state: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    """`state` as a float64 (5,) Push-T state if agent and block are inside the arena and the angle is finite.

    Raises:
        InputError (a ValueError): the env's own message (`PushTGoalEnv.check_state`), naming `name`, the fields
            outside the arena with their values, and the expected ranges.
    """
    env, _ = _display_env(64)
    try:
        return env.check_state(state, name)
    except ValueError as err:
        raise InputError(str(err)) from err


def to_sliders(start: Sequence[float] = DEFAULT_START, goal: Sequence[float] = DEFAULT_GOAL) -> list[float]:
    """Two (5,) states -> the Plan tab's 10 slider values: start then goal, each agent x, agent y, block x, block y
    (rounded to 3 decimals) and the block angle in degrees (1 decimal)."""
    return [round(math.degrees(float(v)), 1) if i % 5 == 4 else round(float(v), 3)
            for i, v in enumerate([*start, *goal])]


def from_sliders(values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The Plan tab's 10 slider values (`to_sliders`) -> (start, goal), float64 (5,) states with angles in radians
    (not checked: `check_pusht_state`)."""
    states = np.asarray(values, dtype=np.float64).reshape(2, 5).copy()
    states[:, 4] = np.radians(states[:, 4])
    return states[0], states[1]


def random_pusht_task(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """gym-pusht's random start (agent in [50, 450] px, block in [100, 400] px, any angle) and its task's goal (the
    block on the green target, the agent at a random place clear of it), seeded: two float64 (5,) states."""
    env, lock = _display_env(64)
    with lock:
        _, info = env.reset(seed=int(seed))
    return info["state"].astype(np.float64), info["goal_state"].astype(np.float64)


def pusht_status(config: SpaceConfig) -> tuple[bool, str]:
    """(available, Markdown line) for the Push-T world model, without loading it; when none is configured the line
    names `SpaceConfig.pusht_world_model` and its environment variable."""
    try:
        source = config.pusht_source()
    except ModelUnavailable as err:
        return False, f"**Model missing.** {err}"
    return model_status(source, "Push-T world model")


def render_pusht(state: Sequence[float] | np.ndarray, *, size: int) -> np.ndarray:
    """The picture of `state` (5,) as the env renders goal images (`PushTGoalEnv.render_state`): uint8
    (size, size, 3); the light-green T is gym-pusht's fixed target, drawn in every image.

    Raises:
        InputError: `state` is not a Push-T state inside the arena (`check_pusht_state`).
    """
    state = check_pusht_state(state, "state")
    env, lock = _display_env(int(size))
    with lock:
        return env.render_state(state)


def pusht_scene(state: Sequence[float] | np.ndarray, goal: Sequence[float] | np.ndarray | None, *, size: int,
                trail: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """`render_pusht(state)` with the goal's T and agent outlined in orange and the agent's path as dots: uint8
    (size, size, 3). `goal`: a (5,) state or None (no outline); `trail`: (5,) states whose agent positions are drawn.
    """
    image = Image.fromarray(render_pusht(state, size=size))
    draw = ImageDraw.Draw(image)
    scale = size / ARENA_PX
    dot = max(1.0, AGENT_RADIUS_PX * scale * 0.25)
    for s in trail or []:
        x, y = float(s[0]) * size, float(s[1]) * size
        draw.ellipse((x - dot, y - dot, x + dot, y + dot), fill=TRAIL_COLOR)
    if goal is not None:
        goal = check_pusht_state(goal, "goal")
        env, _ = _display_env(int(size))
        outline = np.asarray(env.polygon(np.array([goal[2] * ARENA_PX, goal[3] * ARENA_PX, goal[4]])).exterior.coords)
        width = max(1, round(size / 160))
        draw.line([tuple(p) for p in outline * scale], fill=GOAL_OUTLINE, width=width, joint="curve")  # (9, 2) closed
        r, x, y = AGENT_RADIUS_PX * scale, float(goal[0]) * size, float(goal[1]) * size
        draw.ellipse((x - r, y - r, x + r, y + r), outline=GOAL_OUTLINE, width=width)
    return np.asarray(image)


@dataclass
class PushTPlanOutput(PlanOutput):
    """What the Plan tab shows for Push-T: `PlanOutput` (GIF, goal image, summary, energy per replan, and in
    `distances` the mean distance between the block's T corners and the goal's after each env step, arena units),
    and the final measures.

    Attributes:
        success_pose: the final agent and block positions within 20 px of the goal and the angle within 20 degrees
            (stable-worldmodel's / LeWM's criterion; the episode ends when it holds).
        success_coverage: the block covers more than 95% of the goal T (gym-pusht's criterion).
        coverage: the fraction of the goal T covered by the block at the end.
        position_error: final distance between the block's origin and the goal's, arena units.
        angle_error: final block angle error, radians in [0, pi].
    """

    success_pose: bool = False
    success_coverage: bool = False
    coverage: float = 0.0
    position_error: float = float("nan")
    angle_error: float = float("nan")


def _check_widths(model: nn.Module) -> None:
    """ModelUnavailable unless `model` is a JepaWorldModel taking Push-T's 5-D states and 2-D env actions (summed
    over a model step, or `frame_skip` of them side by side)."""
    from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel

    if not isinstance(model, JepaWorldModel):
        raise ModelUnavailable(f"The Push-T world model is a {type(model).__name__}, not a JepaWorldModel.")
    state_dim, action_dim = int(model.config.state_dim), int(model.config.action_dim)
    if (state_dim, int(model.config.env_action_dim)) != (PUSHT_STATE_DIM, PUSHT_ACTION_DIM):
        raise ModelUnavailable(
            f"Push-T needs a world model with state_dim={PUSHT_STATE_DIM} ({', '.join(STATE_NAMES)}) and action_dim="
            f"{PUSHT_ACTION_DIM} (dx, dy); this one has state_dim={state_dim} and action_dim={action_dim}. Set "
            f"{ENV_PUSHT_WORLD_MODEL} to a world model trained on Push-T data (scripts/demo.py --env pusht).")


def _state_encoder(model: nn.Module, state_latents: tuple[StateLatents, dict[str, Any]] | None,
                   env: PushTGoalEnv) -> Callable[[Any], Any] | None:
    """`StateLatents.tensor` (a state (5,) -> its latents (1, 1, D)) of a world model trained with perfect perception,
    or None for a world model that encodes images.

    Raises:
        ModelUnavailable: a model of one token per frame without state latents, state latents of other than Push-T's
            5-D states or of another width than the model's, or actions in other units than the env's
            `action_scale` (each message names the value and what is expected).
    """
    if state_latents is None:
        if reads_states(model):
            raise ModelUnavailable(
                f"The Push-T world model reads states (one token per frame, no image encoder) but no state latents "
                f"were given: its folder or Hub repo needs the {STATE_LATENTS_FILE} that train_world_model.py "
                f"--latents state writes beside the weights.")
        return None
    latents, record = state_latents
    if latents.state_dim != PUSHT_STATE_DIM:
        raise ModelUnavailable(f"The Push-T world model's {STATE_LATENTS_FILE} has state_dim={latents.state_dim}: "
                               f"expected {PUSHT_STATE_DIM} ({', '.join(STATE_NAMES)}).")
    width = int(model.config.encoder_config.hidden_size)
    if latents.width != width:
        raise ModelUnavailable(f"The Push-T world model's {STATE_LATENTS_FILE} gives latents of width "
                               f"{latents.width} ({latents.kind}): expected the model's latent width {width}.")
    if record.get("action"):
        try:
            check_action_space({INFO_KEY: {"action": record["action"]}}, unit_px=float(env.config.action_scale),
                               where="the Push-T world model planned in the Space's Push-T")
        except ValueError as err:
            raise ModelUnavailable(str(err)) from err
    return latents.tensor


def _aim(state_latents: tuple[StateLatents, dict[str, Any]] | None) -> str:
    """The summary's last sentence: what the planner aimed at."""
    if state_latents is None:
        return "Aimed at the goal image."
    latents = state_latents[0]
    what = ("the agent and the T's 8 corners" if latents.kind == "pusht_keypoints"
            else "the standardised state")
    return (f"Aimed at the goal state with perfect perception: the true state as the latent (state latents "
            f"`{latents.kind}` from {STATE_LATENTS_FILE}: {what}, {latents.width}-D), no image encoder.")


def plan_in_pusht(
    model: nn.Module,
    start_state: Sequence[float] | np.ndarray,
    goal_state: Sequence[float] | np.ndarray,
    *,
    cem: CEMConfig,
    max_steps: int,
    seed: int = 0,
    adapt_steps: int = ADAPT_STEPS,
    display_size: int = 320,
    out_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
    state_latents: tuple[StateLatents, dict[str, Any]] | None = None,
) -> PushTPlanOutput:
    """Run MPC with a world model from `start_state` toward the goal image of `goal_state` in Push-T (or, for a
    world model trained with perfect perception, toward the goal state's latents); write the GIF and goal PNG.

    The env renders at the model's image size (`encoder_config.image_size`) and succeeds on pose (the episode ends
    there); the GIF re-renders each visited state at `display_size` with the goal's outline and the agent's path.

    Args:
        model: a `JepaWorldModel` with state_dim 5 and action_dim 2 (trained on Push-T data).
        start_state, goal_state: (5,) `(agent_x, agent_y, block_x, block_y, block_angle)`, positions in arena
            units inside the walls, the angle in radians (validated).
        cem: the planner config in model action units (`hf_jepa.planning.evaluation.planner_config`); each planned
            action runs as the model's `frame_skip` env steps.
        max_steps: env steps at most (the episode also ends on success).
        seed: seeds the env reset and the planner's generator.
        adapt_steps: test-time adaptation steps per executed action (`WorldModelPlanner`; on a copy of `model`).
        display_size: side of the GIF / goal image.
        out_dir: where the files go (default: a new temporary folder).
        progress: called as `progress(step, max_steps)` before each replan.
        state_latents: the latent map and record of a world model trained with `--latents state`
            (`hf_jepa.space.models.load_model_state_latents`): the planner then encodes each true state `(5,)` as
            latents `(1, 1, D)` instead of the image and aims at the goal state's (None: a model that encodes
            images, planning toward the goal image).

    Raises:
        ModelUnavailable: `model` is not a JepaWorldModel of Push-T's widths (the message names both widths); it
            reads states but `state_latents` is None; `state_latents` do not fit the model or the env (state width,
            latent width, action units).
        InputError (a ValueError): a state outside the arena or not finite (the message names the field, its value
            and the expected range).
    """
    _check_widths(model)
    start, goal = check_pusht_state(start_state, "start"), check_pusht_state(goal_state, "goal")
    env = make_goal_env("pusht", image_size=int(model.config.encoder_config.image_size), success_criterion="pose",
                        max_episode_steps=max(int(max_steps), 1))
    state_encoder = _state_encoder(model, state_latents, env.unwrapped)
    episode, seconds, out = plan_episode(model, env, cem=cem, max_steps=max_steps, seed=seed, adapt_steps=adapt_steps,
                                         options={"start": start, "goal": goal}, progress=progress, out_dir=out_dir,
                                         prefix="hf_jepa_plan_pusht_", state_encoder=state_encoder)
    states = [np.asarray(s, dtype=np.float64) for s in episode.states]  # T + 1 of (5,)
    frames = [pusht_scene(s, goal, size=display_size, trail=states[:i + 1]) for i, s in enumerate(states)]
    gif = save_gif(frames, out / "trajectory.gif", fps=1000 / 120, hold_frames=5)
    goal_png = out / "goal.png"
    Image.fromarray(render_pusht(goal, size=display_size)).save(goal_png)
    pusht_env: PushTGoalEnv = env.unwrapped
    distances = [pusht_env.pose_errors(s, goal)[0] for s in states]
    energies = [float(h[-1]) for h in episode.energies if h]
    final = episode.final_info
    result = PushTPlanOutput(
        episode=episode, trajectory_gif=str(gif), goal_png=str(goal_png), summary="", energies=energies,
        distances=distances, success_pose=bool(final.get("success_pose", False)),
        success_coverage=bool(final.get("success_coverage", False)), coverage=float(final.get("coverage", 0.0)),
        position_error=float(final.get("position_error", float("nan"))),
        angle_error=float(final.get("angle_error", float("nan"))))
    verdict = "**Reached the goal pose**" if result.success_pose else "**Did not reach the goal pose**"
    result.summary = (
        f"{verdict} in {len(episode.actions)} steps (limit {max_steps}); coverage success "
        f"{'yes' if result.success_coverage else 'no'} ({100 * result.coverage:.1f}% of the goal T covered, success "
        f"above {100 * pusht_env.config.coverage_threshold:g}%). Final block position error "
        f"{result.position_error:.3f} (arena units, {result.position_error * ARENA_PX:.1f} px), angle error "
        f"{np.degrees(result.angle_error):.1f} deg. Planning {episode.seconds_per_action:.2f} s per action, "
        f"{seconds:.1f} s in all. {_aim(state_latents)}")
    logger.info("push-t plan %s -> %s (%s): success_pose=%s coverage=%.3f steps=%d position_error=%.3f "
                "angle_error=%.3f", np.round(start, 3), np.round(goal, 3),
                "goal image" if state_latents is None else "goal state", result.success_pose, result.coverage,
                len(episode.actions), result.position_error, result.angle_error)
    return result
