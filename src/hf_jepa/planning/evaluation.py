"""Goal-image planning evaluation: N MPC episodes of a world model on a goal env, their metrics, a GIF and an
energy plot. `scripts/evaluate_planning.py` is the command-line front end; the Space and `make demo` call it too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from hf_jepa.envs import BUILTIN_ENVS, make_goal_env
from hf_jepa.metrics import load_metric, result_file_name, save_results, write_after_results
from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel
from hf_jepa.planning.adaptation import ADAPT_LR, ADAPT_STEPS
from hf_jepa.planning.configs import CEMConfig, MPPIConfig, planner_defaults
from hf_jepa.planning.dataset_goals import GoalTask
from hf_jepa.planning.mpc import Episode, run_mpc
from hf_jepa.planning.subgoals import LatentSubgoalGraph
from hf_jepa.planning.world_model_planner import WorldModelPlanner
from hf_jepa.plotting import pyplot, save_figure, save_gif

logger = logging.getLogger(__name__)


def planner_config(model: JepaWorldModel, kind: Literal["cem", "mppi"] = "cem", *, env: str | None = None,
                   **overrides: Any) -> CEMConfig | MPPIConfig:
    """Planner settings in the model's action units: a planned action is the sum of `frame_skip` env actions, so
    its bounds are +-frame_skip per dimension and its L2 norm at most frame_skip (the env's unit ball, k times);
    with the model's `action_reduce` "concat" it is the k env actions side by side, each in the env's unit ball
    (bounds +-1, `norm_groups` k).

    The sizes default to ``planner_defaults(kind, env)`` (``WORLD_MODEL_PLANNER_DEFAULTS``, the Two-Rooms recipe,
    with ``ENV_PLANNER_RECIPES[env]`` applied: Push-T's); the CEM elite is clamped to `num_samples` and the carried
    elites to the elite. ``init_std_scale`` (CEM) sets the first sampling std as a fraction of the bound (1 unless
    a recipe or override says otherwise). Meta's reference budget for comparison: `horizon=5, iterations=30,
    noise_beta=0.0, keep_elites=0, return_best=False`.
    """
    if model.config.action_reduce == "concat":
        k = 1.0  # each part is one env action
        bounds = {"action_low": -k, "action_high": k, "max_norm": k, "norm_groups": model.config.frame_skip}
    else:
        k = float(model.config.frame_skip)
        bounds = {"action_low": -k, "action_high": k, "max_norm": k}
    short = {gym_id: name for name, gym_id in BUILTIN_ENVS.items()}.get(env or "", env)  # a gymnasium id -> its name
    settings = {**planner_defaults(kind, short), **overrides}
    scale = settings.pop("init_std_scale", 1.0)
    if kind == "cem":
        if not (isinstance(scale, (int, float)) and scale > 0):
            raise ValueError(f"init_std_scale={scale!r}: expected a positive float (a fraction of the bound {k:g})")
        settings["topk"] = min(settings["topk"], settings["num_samples"])  # an elite within the samples
        settings["keep_elites"] = min(settings["keep_elites"], settings["topk"])  # carried elites within the elite
        return CEMConfig(**{"init_std": scale * k, "min_std": 0.05 * k, **bounds, **settings})
    return MPPIConfig(**{"noise_std": 0.5 * k, **bounds, **settings})


@dataclass
class PlanningEvaluation:
    """The outcome of `evaluate_planning`.

    Attributes:
        results: JSON-ready metrics: success_rate, episodes, successes, mean_final_distance, seconds_per_action
            (planning time per env step), seconds_per_plan, mean_steps, other-room and same-room success rates
            where the env reports rooms, the planner settings, the evaluation settings, `final` (the mean over
            episodes of each scalar of the last info: Push-T's coverage, position / angle errors, both success
            flags), `success_at_start_rate` (episodes whose start already met the success criterion: they count
            as successes without a step), `protocol` (with dataset tasks) and `per_episode` (one record per
            episode: reset seed, success, success_at_start, steps, final distance, other room, start and goal
            states, the last info's scalars, the dataset task).
        episodes: the `Episode`s, in order (frames, actions, energies per replan).
        goals: the goal image of each episode, uint8 (H, W, 3).
        other_room: per episode, whether the goal was in the other room (None where the env has no rooms).
    """

    results: dict[str, Any]
    episodes: list[Episode] = field(default_factory=list)
    goals: list[np.ndarray] = field(default_factory=list)
    other_room: list[bool | None] = field(default_factory=list)


def _room_pair(env: Any, episode: Episode, goal_state: np.ndarray | None) -> bool | None:
    """True when the episode's goal lies in the other room than its start (Two-Rooms), else None."""
    room_of = getattr(env.unwrapped, "room_of", None)
    if room_of is None or goal_state is None or not episode.states:
        return None
    return room_of(episode.states[0]) != room_of(goal_state)


def _as_list(value: Any) -> list[float] | None:
    """A state as a JSON list of floats, or None."""
    return None if value is None else [float(v) for v in np.asarray(value, dtype=np.float64).ravel()]


def _episode_record(seed: int, episode: Episode, other_room: bool | None, goal_state: Any,
                    task: GoalTask | None = None) -> dict[str, Any]:
    """One episode's JSON record: what a reader needs to find and replay a failure (`reset(seed=seed)`, with the
    task's start and goal as reset options when the episode came from a dataset)."""
    record = {
        "seed": seed, "success": bool(episode.success), "steps": len(episode.actions),
        "final_distance": None if episode.final_distance is None else float(episode.final_distance),
        "other_room": other_room, "start": _as_list(episode.states[0]) if episode.states else None,
        "goal": _as_list(goal_state), "final": dict(episode.final_info),
        "success_at_start": bool(episode.start_info.get("success", False)),
    }
    if task is not None:
        record.update(task.record())
    return record


def _final_means(episodes: list[Episode]) -> dict[str, float]:
    """Mean over episodes of each scalar entry of the last info that every episode reports (flags as rates)."""
    keys = set.intersection(*(set(e.final_info) for e in episodes)) if episodes else set()
    return {k: float(np.mean([float(e.final_info[k]) for e in episodes])) for k in sorted(keys)}


def check_model_fits_env(model: JepaWorldModel, env: Any, name: str) -> dict[str, Any]:
    """Reset ``env`` once and check its state and action widths against the world model's; returns that info.

    Raises:
        ValueError: naming both widths when ``info["state"]`` or the action space differs from the model's
            ``state_dim`` / ``action_dim`` (the widths of the data it was trained on).
    """
    _, info = env.reset(seed=0)
    state_width = int(np.size(info["state"])) if "state" in info else None
    action_width = int(np.prod(env.action_space.shape))
    config = model.config
    env_action_dim = config.env_action_dim
    if state_width != config.state_dim or action_width != env_action_dim:
        per_step = (f" ({config.frame_skip} env actions of width {env_action_dim} side by side)"
                    if env_action_dim != config.action_dim else "")
        raise ValueError(
            f"the world model takes states of width state_dim={config.state_dim} and actions of width "
            f"action_dim={config.action_dim}{per_step} (its training data's observation.state and action), but "
            f"env {name!r} "
            f"has states of width {state_width} and actions of width {action_width}: plan with a world model "
            f"trained on data of {name!r} (e.g. scripts/collect_trajectories.py --env {name})")
    return info


def evaluate_planning(
    model: JepaWorldModel,
    *,
    env: str = "two_rooms",
    episodes: int = 50,
    seed: int = 0,
    config: CEMConfig | MPPIConfig | None = None,
    energy: Literal["l1", "mse"] = "l1",
    reduction: Literal["last", "ramp", "mean"] = "ramp",
    max_steps: int = 100,
    replan_every: int = 1,
    context_frames: int = 1,
    adapt_steps: int = ADAPT_STEPS,
    adapt_lr: float = ADAPT_LR,
    subgoals: LatentSubgoalGraph | None = None,
    env_kwargs: dict[str, Any] | None = None,
    tasks: list[GoalTask] | None = None,
    device: str | torch.device = "cpu",
    show_progress: bool = True,
    state_encoder: Any = None,
) -> PlanningEvaluation:
    """Run `episodes` MPC episodes (env reset seeds seed, seed+1, ...) and measure them.

    With `tasks` (`hf_jepa.planning.dataset_goals.sample_dataset_goals`: LeWM's protocol), episode i starts at
    `tasks[i].start` toward the goal image of `tasks[i].goal` (reset options), one episode per task (`episodes` is
    then `len(tasks)`), and `max_steps` is the step budget (LeWM: twice the goal offset).

    Each control cycle plans H model steps from the current image toward the goal image, then executes the first
    planned action as `frame_skip` env steps (MPC); `replan_every` > 1 executes more of the plan open loop.

    Args:
        model: the world model (its `frame_skip` sets how many env steps one planned action spans).
        env: 'two_rooms' or a gymnasium id (see `hf_jepa.envs.make_goal_env`).
        config: planner settings in model action units (default `planner_config(model)`).
        energy / reduction: see `WorldModelPlanner`.
        max_steps: env steps per episode at most.
        context_frames: observed frames each rollout starts from (see `WorldModelPlanner`); > 1 needs
            replan_every=1.
        adapt_steps / adapt_lr: test-time adaptation of the predictor on each episode's observed transitions
            (see `WorldModelPlanner`; 0 = the frozen model, as Meta plans; the Two-Rooms recipe takes 10 steps);
            needs replan_every=1. Every episode starts from the trained weights; `model` itself is not changed.
        subgoals: plan toward waypoints along a graph of dataset frames (see `WorldModelPlanner`; None: the goal).
        env_kwargs: passed to `make_goal_env` (e.g. {"other_room_goal_prob": 0.5}).
        tasks: start and goal states per episode (see above); their width must be the env's state width.
        state_encoder: perfect perception, ``state -> (1, 1, D)`` latents (see `WorldModelPlanner`).

    Raises:
        ValueError: the env's state or action width differs from the model's (`check_model_fits_env`), or the
            tasks' states differ in width from the env's.
    """
    if tasks is not None:
        if not tasks:
            raise ValueError("tasks is empty: expected at least one GoalTask")
        episodes = len(tasks)
    if episodes < 1:
        raise ValueError(f"episodes={episodes}: expected >= 1")
    if replan_every != 1 and (context_frames > 1 or adapt_steps):
        raise ValueError(f"context_frames={context_frames} > 1 or adapt_steps={adapt_steps} > 0 needs replan_every=1 "
                         f"(the history and the adaptation see one planned action per frame), got "
                         f"replan_every={replan_every}")
    env_kwargs = dict(env_kwargs or {})
    if "image_size" not in env_kwargs:
        env_kwargs["image_size"] = model.config.encoder_config.image_size
    goal_env = make_goal_env(env, **env_kwargs)
    first = check_model_fits_env(model, goal_env, env)
    if tasks is not None and np.size(tasks[0].start) != np.size(first["state"]):
        raise ValueError(f"the dataset's states have width {np.size(tasks[0].start)} but env {env!r} has states of "
                         f"width {np.size(first['state'])}: start and goal states must be the env's state")
    config = config or planner_config(model)
    k = int(model.config.frame_skip)
    planner = WorldModelPlanner(model, config, energy=energy, reduction=reduction, context_frames=context_frames,
                                adapt_steps=adapt_steps, adapt_lr=adapt_lr, subgoals=subgoals, device=device,
                                state_encoder=state_encoder)
    out = PlanningEvaluation(results={})
    rooms, per_episode = out.other_room, []
    plan_seconds, env_steps, replans = 0.0, 0, 0
    start = time.perf_counter()
    bar = tqdm(range(episodes), desc="planning episodes", disable=not show_progress)
    for i in bar:
        planner.reset()
        task = tasks[i] if tasks is not None else None
        episode = run_mpc(goal_env, planner.plan_fn(seed=seed + i, action_repeat=k), max_steps=max_steps,
                          execute_actions=k, replan_every=replan_every, seed=seed + i,
                          options=task.options() if task is not None else None)
        goal_state = getattr(goal_env.unwrapped, "goal_state", None)  # (S,) when the env exposes it
        rooms.append(_room_pair(goal_env, episode, goal_state))
        per_episode.append(_episode_record(seed + i, episode, rooms[-1], goal_state, task))
        out.episodes.append(episode)
        out.goals.append(np.asarray(episode.goal))
        plan_seconds += episode.seconds_per_action * len(episode.actions)
        env_steps += len(episode.actions)
        replans += episode.num_replans
        bar.set_postfix(success=f"{np.mean([e.success for e in out.episodes]):.2f}")
    success = np.array([e.success for e in out.episodes], dtype=bool)
    results: dict[str, Any] = {
        **load_metric("planning_success").compute(  # success_rate, successes, episodes, mean_final_distance
            successes=success.tolist(),
            final_distances=[None if e.final_distance is None else float(e.final_distance) for e in out.episodes]),
        "seconds_per_action": plan_seconds / max(env_steps, 1),
        "seconds_per_plan": plan_seconds / max(replans, 1),
        "mean_steps": env_steps / episodes,
        "wall_seconds": time.perf_counter() - start,
        "env": env, "seed": seed, "max_steps": max_steps, "frame_skip": k, "replan_every": replan_every,
        "context_frames": context_frames, "adapt_steps": adapt_steps, "adapt_lr": adapt_lr,
        "energy": energy, "reduction": reduction, "device": str(device),
        "latents": "state" if state_encoder is not None else "encoder",
        "planner": {"kind": type(config).__name__, **dataclasses.asdict(config)},
        "subgoals": dataclasses.asdict(subgoals.config) if subgoals is not None else None,
        "final": _final_means(out.episodes),
        "success_at_start_rate": float(np.mean([bool(e.start_info.get("success", False)) for e in out.episodes])),
    }
    if tasks is not None:
        offsets = sorted({t.goal_frame - t.start_frame for t in tasks})
        skipped = list(getattr(tasks, "skipped", []))  # draws the env refused (`GoalTasks.skipped`)
        results["protocol"] = {"kind": "dataset_goals", "goal_offset": offsets[0] if len(offsets) == 1 else offsets,
                               "eval_budget": max_steps, "skipped_tasks": len(skipped), "skipped": skipped}
    if all(r is not None for r in rooms):
        other = np.array(rooms, dtype=bool)
        results["other_room_fraction"] = float(other.mean())
        results["success_rate_other_room"] = float(success[other].mean()) if other.any() else None
        results["success_rate_same_room"] = float(success[~other].mean()) if (~other).any() else None
    results["per_episode"] = per_episode
    out.results = results
    logger.info("planning: success %.2f over %d episodes, %.3f s/action", results["success_rate"], episodes,
                results["seconds_per_action"])
    return out


def save_episode_gif(episode: Episode, goal: np.ndarray, path: str | Path, *, scale: int = 4, fps: int = 10) -> Path:
    """A GIF of an episode: each frame (H, W, 3) beside the goal image, upscaled `scale` times (nearest)."""
    if not episode.frames:
        raise ValueError("episode has no frames to animate")
    gap = np.full((goal.shape[0], 2, 3), 255, np.uint8)  # white separator, (H, 2, 3)
    frames = [np.concatenate([f, gap, goal], axis=1).repeat(scale, 0).repeat(scale, 1)  # (sH, s(2W+2), 3)
              for f in episode.frames]
    return save_gif(frames, path, fps=fps, hold_frames=fps)  # hold the last frame for a second


def plot_energy(episode: Episode, path: str | Path, *, title: str | None = None) -> Path:
    """Energy over the planning iterations of each replan of an episode (one line per replan, early ones light)."""
    plt = pyplot()

    if not episode.energies:
        raise ValueError("episode has no planning energies to plot")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    cmap = plt.get_cmap("viridis")
    n = len(episode.energies)
    for i, hist in enumerate(episode.energies):
        ax.plot(range(1, len(hist) + 1), hist, color=cmap(i / max(n - 1, 1)), lw=1)
    ax.set(xlabel="planner iteration", ylabel="elite energy", title="energy per replan (light = later)")
    ax2.plot(range(1, n + 1), [h[-1] for h in episode.energies], marker="o", ms=3)
    ax2.set(xlabel="replan (control cycle)", ylabel="final elite energy",
            title="energy to the target (goal or subgoal)")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def write_evaluation(evaluation: PlanningEvaluation, json_path: str | Path, out_dir: str | Path | None = None,
                     **info: Any) -> dict[str, Any]:
    """Write an evaluation's outputs: first the JSON (``evaluation.results``, ``info`` and the per-episode records),
    then, in ``out_dir`` (default: beside the JSON), ``planning_episode.gif`` (the episode ``pick_episode`` chooses,
    beside its goal) and ``planning_energy.png`` (their paths added to the JSON) and evaluate's
    ``result-<time>.json`` (``evaluate.save`` of the scalar results). Returns the JSON's content.

    Raises:
        OutputsIncomplete: an output after the JSON failed (named, with the JSON's path); the others are written.
    """
    json_path = Path(json_path)
    out = Path(out_dir) if out_dir is not None else json_path.parent
    shown = pick_episode(evaluation)
    episode = evaluation.episodes[shown]
    results = {**evaluation.results, **info, "gif": None, "energy_plot": None, "shown_episode": shown}

    def write_json() -> None:
        json_path.write_text(json.dumps(results, indent=2))

    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_json()

    def gif() -> None:
        results["gif"] = str(save_episode_gif(episode, evaluation.goals[shown], out / "planning_episode.gif"))
        write_json()

    def plot() -> None:
        title = f"episode {shown}: {'success' if episode.success else 'failure'}"
        results["energy_plot"] = str(plot_energy(episode, out / "planning_energy.png", title=title))
        write_json()

    write_after_results(json_path, [
        ("episode GIF", gif), ("energy plot", plot),
        ("evaluate's results file", lambda: save_results(out, evaluation.results, filename=result_file_name(),
                                                         **info))])
    return results


def pick_episode(evaluation: PlanningEvaluation) -> int:
    """Index of the episode to show: the longest successful other-room episode if any, else the longest success,
    else the first."""
    eps, other = evaluation.episodes, evaluation.other_room
    for wanted in (lambda i: eps[i].success and other[i], lambda i: eps[i].success):
        found = [i for i in range(len(eps)) if wanted(i)]
        if found:
            return max(found, key=lambda i: len(eps[i].actions))
    return 0


__all__ = ["PlanningEvaluation", "check_model_fits_env", "evaluate_planning", "pick_episode", "planner_config",
           "plot_energy", "save_episode_gif", "write_evaluation"]
