"""Push-T data at the field's scale: expert pushes replayed with noise, mixed with exploration, collected without
rendering in worker processes; frames rendered from the states in a second pass, only where a pixel model needs them.

The published Push-T world models train on noisy replays of expert pushes (DINO-WM: 18,685 episodes replaying
expert trajectories "with various levels of noise"; LeWM and the state-input LeWM use that set). Here:

- Episodes come in **blocks** of ``1 + len(noise_levels)``. A block is an *expert block* with probability
  ``1 - explore_fraction``: the scripted :class:`~hf_jepa.envs.pusht_policy.PushTExpert` runs closed loop from
  gym-pusht's random start (``reset(seed=seed + first episode of the block)``), pushing the T to goal poses drawn
  over the table, and is written as an episode (noise 0); then its action sequence is **replayed open loop** from
  the same start once per noise level ``sigma``, each action plus ``sigma * N(0, I)`` (then projected onto the unit
  ball by the env), each replay an episode. Otherwise it is an *exploration block*: as many episodes of
  :class:`~hf_jepa.envs.pusht_policy.PushTExplorer`. Every episode's task text names its kind and noise
  (``"expert pusht noise 0.25"``, ``"explore pusht"``).
- The physics runs alone (``PushTGoalEnv.advance``, 0.2 ms a step against ~5 ms to render a 64 px frame), one
  block per task across ``workers`` processes; each block draws from ``np.random.default_rng([seed, block])``, so
  the data do not depend on the number of workers. The output is a LeRobot v3 dataset without video
  (``observation.state`` and ``action`` only): what a world model on states reads.
- :func:`render_trajectories` is the second pass: it renders each stored state (``PushTGoalEnv.render_state``) in
  worker processes and writes a full LeRobot v3 dataset (same rows, tasks, the ``observation.image`` video), which
  :class:`~hf_jepa.data.lerobot.LeRobotTrajectoryDataset` reads as any other.

Actions are the env's (relative to the agent: the PD target moves to ``agent + action_scale * a``, ``|a| <= 1``;
``action_scale = 100`` px, so the agent travels about ``40 * |a|`` px per step and the expert's pushes, at
``|a| = 0.5``, about 20 px per step). ``meta/info.json`` records this under ``"hf_jepa"`` (:func:`action_space_info`)
so that training and planning can refuse data in other units (:func:`check_action_space`).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from hf_jepa.data.lerobot import LeRobotWriter, episode_states
from hf_jepa.data.lerobot.meta import ACTION_KEY, column_2d, read_info, resolve_dataset_root

from .collect import CAMERA_KEY, CollectionSummary
from .pusht import ARENA_PX, PushTGoalEnv
from .pusht_policy import PushTExpert, PushTExplorer

__all__ = ["INFO_KEY", "action_space_info", "check_action_space", "collect_pusht_states", "render_trajectories"]

logger = logging.getLogger(__name__)

INFO_KEY = "hf_jepa"
"""The ``meta/info.json`` entry describing the actions and states of a dataset written here."""
NOISE_LEVELS = (0.1, 0.25, 0.5)
"""Default noise levels of the expert replays (the std of the Gaussian added to each unit-ball action)."""


def action_space_info(env: PushTGoalEnv, **extra: Any) -> dict[str, Any]:
    """The ``meta/info.json["hf_jepa"]`` record of Push-T data: relative actions in units of ``action_scale`` px,
    states that reset the env (the 5-D state), plus ``extra``."""
    return {"env": "pusht", "action": {"kind": "relative", "unit_px": float(env.config.action_scale)},
            "state": {"names": list(env.state_names), "resettable": True}, **extra}


def check_action_space(info: dict[str, Any], *, unit_px: float, where: str) -> None:
    """Refuse data whose actions are not relative actions of ``unit_px`` px per unit (when ``info`` says so).

    Args:
        info: a dataset's ``meta/info.json`` (datasets without an ``"hf_jepa"`` record pass).
        unit_px: the units the caller works in (a world model's or an env's ``action_scale``).
        where: what is checked, for the message.

    Raises:
        ValueError: naming both standardisations.
    """
    record = info.get(INFO_KEY, {}).get("action")
    if record is None:
        return
    if record.get("kind") != "relative" or not np.isclose(float(record.get("unit_px", np.nan)), unit_px):
        unit = float(record.get("unit_px", np.nan))
        raise ValueError(f"{where}: the data's actions are {record.get('kind')} with unit_px={unit:g} "
                         f"but relative actions with unit_px={unit_px:g} (the env's action_scale) are expected: "
                         "one action standardisation for data, training and planning")


# ---------------------------------------------------------------------------------------------- collection workers
_ENV: dict[str, PushTGoalEnv] = {}


def _env(image_size: int = 64) -> PushTGoalEnv:
    """This process's env (built once per worker)."""
    key = f"pusht{image_size}"
    if key not in _ENV:
        _ENV[key] = PushTGoalEnv(image_size=image_size, terminate_on_success=False)
    return _ENV[key]


def _run(env: PushTGoalEnv, seed: int, policy: Any, steps: int,
         replay: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One episode without rendering: ``(states (T, 5), actions (T, 2))``, ``T = steps + 1``, ``actions[t]`` moving
    state t to t + 1 (the last one chosen at the last state, not executed). ``replay (steps + 1, 2)``: executed
    instead of the policy's actions."""
    _, info = env.reset(seed=seed)
    if policy is not None:
        policy.reset(info)
    state = info["state"].astype(np.float64)
    goal = info["goal_state"]
    states, actions = [state], []
    for t in range(steps + 1):
        a = replay[t] if replay is not None else policy(None, {"state": state, "goal_state": goal})
        actions.append(np.asarray(a, dtype=np.float32))
        if t < steps:
            state = env.advance(a)
            states.append(state)
    return np.stack(states).astype(np.float32), np.stack(actions)


def _block(task: tuple[int, int, int, int, float, tuple[float, ...]]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The episodes of block ``b``: ``[(task text, states (T, 5), actions (T, 2)), ...]``."""
    seed, b, first, count, explore_fraction, levels = task
    env = _env()
    rng = np.random.default_rng([seed, b])
    out = []
    if rng.random() < explore_fraction:
        explorer = PushTExplorer(env, rng)
        for i in range(count):
            out.append(("explore pusht", *_run(env, seed + first + i, explorer, _STEPS[0])))
        return out
    expert = PushTExpert(env, rng)
    states, actions = _run(env, seed + first, expert, _STEPS[0])
    out.append(("expert pusht noise 0", states, actions))
    for sigma in levels[: count - 1]:
        noisy = actions + sigma * rng.standard_normal(actions.shape).astype(np.float32)
        noisy /= np.maximum(1.0, np.linalg.norm(noisy, axis=1, keepdims=True))  # the env's unit-ball projection
        out.append((f"expert pusht noise {sigma:g}", *_run(env, seed + first, None, _STEPS[0], replay=noisy)))
    return out


_STEPS = [100]  # steps per episode, set in each worker by _init


def _init(steps: int) -> None:
    _STEPS[0] = steps


def _pool_map(fn: Any, tasks: Sequence[Any], workers: int, init_args: tuple) -> Iterator[Any]:
    """``fn`` over ``tasks`` in order, in ``workers`` forked processes (in this process when ``workers == 1``)."""
    if workers == 1:
        _init(*init_args)
        yield from map(fn, tasks)
        return
    with multiprocessing.get_context("fork").Pool(workers, initializer=_init, initargs=init_args) as pool:
        yield from pool.imap(fn, tasks, chunksize=1)


def collect_pusht_states(output_dir: str | Path, *, episodes: int = 1000, steps_per_episode: int = 100,
                         seed: int = 0, workers: int = 1, explore_fraction: float = 0.2,
                         noise_levels: Sequence[float] = NOISE_LEVELS, episodes_per_file: int = 500,
                         fps: int = 10, overwrite: bool = False) -> CollectionSummary:
    """Expert replays mixed with exploration (module docstring), states and actions only, in the LeRobot v3 layout.

    Args:
        output_dir: dataset folder; must not exist unless ``overwrite``.
        episodes, steps_per_episode: episodes written, env steps in each (an episode stores steps + 1 rows).
        seed: block ``b`` draws from ``default_rng([seed, b])``; its episodes reset with ``seed + episode``.
        workers: processes (the result does not depend on it).
        explore_fraction: probability that a block is exploration.
        noise_levels: the replays' noise stds (each >= 0); a block holds ``1 + len(noise_levels)`` episodes.
        episodes_per_file, fps: as :class:`~hf_jepa.data.lerobot.LeRobotWriter`.

    Returns:
        the summary (``episode_stats``: per episode ``block_displacement`` px and ``expert`` 1 / 0).
    """
    for name, value, low in (("episodes", episodes, 1), ("steps_per_episode", steps_per_episode, 1),
                             ("workers", workers, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"collect_pusht_states {name}={value!r} is invalid: expected an int >= {low}")
    if not 0.0 <= explore_fraction <= 1.0:
        raise ValueError(f"collect_pusht_states explore_fraction={explore_fraction!r} is invalid: expected a "
                         "probability in [0, 1]")
    levels = tuple(float(v) for v in noise_levels)
    if any(not (np.isfinite(v) and v >= 0) for v in levels):
        raise ValueError(f"collect_pusht_states noise_levels={noise_levels!r} is invalid: expected stds >= 0")
    env = _env()
    size = 1 + len(levels)
    tasks = [(seed, b, b * size, min(size, episodes - b * size), explore_fraction, levels)
             for b in range(-(-episodes // size))]  # ceil(episodes / size) blocks
    writer = LeRobotWriter(output_dir, fps=fps, state_names=list(env.state_names),
                           action_names=list(env.action_names), robot_type=env.robot_type,
                           episodes_per_file=episodes_per_file, overwrite=overwrite)
    summary = CollectionSummary(root=Path(output_dir), episodes=episodes, frames=0, seconds=0.0)
    start = time.perf_counter()
    for block in _pool_map(_block, tasks, workers, (steps_per_episode,)):
        for task, states, actions in block:
            writer.add_episode({}, states, actions, task=task)
            summary.frames += len(states)
            moved = float(np.linalg.norm(states[-1, 2:4] - states[0, 2:4]) * ARENA_PX)
            summary.episode_stats.setdefault("block_displacement", []).append(moved)
            summary.episode_stats.setdefault("expert", []).append(float(task.startswith("expert")))
    summary.root = writer.finalize()
    summary.seconds = time.perf_counter() - start
    _annotate(summary.root, action_space_info(env, rendered=False, steps_per_episode=steps_per_episode,
                                              explore_fraction=explore_fraction, noise_levels=list(levels),
                                              seed=seed))
    logger.info("wrote %s: %d episodes, %d rows in %.1f s (%.0f episodes/min, %d workers)", summary.root,
                episodes, summary.frames, summary.seconds, 60 * episodes / summary.seconds, workers)
    return summary


def _annotate(root: Path, record: dict[str, Any]) -> None:
    """Add ``record`` to ``root/meta/info.json`` under :data:`INFO_KEY`."""
    path = root / "meta" / "info.json"
    info = json.loads(path.read_text())
    info[INFO_KEY] = record
    path.write_text(json.dumps(info, indent=4))


# ---------------------------------------------------------------------------------------------- the render pass
def _render(task: tuple[int, np.ndarray]) -> np.ndarray:
    """``(image_size, states (T, 5))`` -> frames ``uint8 (T, H, W, 3)``."""
    image_size, states = task
    env = _env(image_size)
    return np.stack([env.render_state(s) for s in states])


def render_trajectories(source: str | Path, output_dir: str | Path, *, image_size: int = 64, workers: int = 1,
                        episodes: Sequence[int] | None = None, episodes_per_file: int = 50,
                        overwrite: bool = False) -> CollectionSummary:
    """The second pass: a LeRobot v3 dataset of the same rows as ``source`` (a Push-T dataset of 5-D states), with
    each state's frame rendered as ``observation.image``.

    Args:
        source: a dataset folder written by :func:`collect_pusht_states` (or any with Push-T's 5-D states).
        output_dir: the rendered dataset's folder.
        image_size: frame side, px.
        workers: rendering processes.
        episodes: only these source episodes (renumbered from 0 in order); None: all.
    """
    root = resolve_dataset_root(source)
    info = read_info(root)
    states = episode_states(root)
    width = next(iter(states.values())).shape[1] if states else 0
    if width != 5:
        raise ValueError(f"render_trajectories source={str(source)!r} has states of width {width}: expected Push-T's "
                         "5-D states (agent x, y, block x, y, angle), the only ones a frame can be rendered from")
    picked = sorted(states) if episodes is None else [int(e) for e in episodes]
    missing = [e for e in picked if e not in states]
    if missing:
        raise ValueError(f"render_trajectories episodes={missing!r}: not in {source} ({len(states)} episodes)")
    actions, tasks = _actions_and_tasks(root)
    env = _env(image_size)
    writer = LeRobotWriter(output_dir, fps=int(info["fps"]), state_names=list(env.state_names),
                           action_names=list(env.action_names), robot_type=env.robot_type,
                           episodes_per_file=episodes_per_file, overwrite=overwrite)
    summary = CollectionSummary(root=Path(output_dir), episodes=len(picked), frames=0, seconds=0.0)
    start = time.perf_counter()
    jobs = [(image_size, states[e]) for e in picked]
    for e, frames in zip(picked, _pool_map(_render, jobs, workers, (1,)), strict=True):
        writer.add_episode({CAMERA_KEY: frames}, states[e], actions[e], task=tasks.get(e, ""))
        summary.frames += len(frames)
    summary.root = writer.finalize()
    summary.seconds = time.perf_counter() - start
    record = dict(info.get(INFO_KEY) or action_space_info(env))
    _annotate(summary.root, {**record, "rendered": True, "rendered_from": str(source), "image_size": image_size})
    return summary


def _actions_and_tasks(root: Path) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Every episode's ``action`` rows ``(L, A)`` in frame order and its task text."""
    files = sorted((root / "data").glob("**/*.parquet"))
    table = pq.read_table(files, columns=["episode_index", "frame_index", ACTION_KEY, "task_index"])
    ep = table.column("episode_index").to_numpy()
    order = np.lexsort((table.column("frame_index").to_numpy(), ep))
    values = column_2d(table, ACTION_KEY).astype(np.float32)[order]
    ep, task_index = ep[order], table.column("task_index").to_numpy()[order]
    bounds = np.flatnonzero(np.diff(ep)) + 1
    names = {}
    tasks_path = root / "meta" / "tasks.parquet"
    if tasks_path.is_file():
        t = pq.read_table(tasks_path).to_pandas()
        names = {int(i): str(name) for name, i in zip(t.index, t["task_index"], strict=True)}
    actions = {int(e[0]): a for e, a in zip(np.split(ep, bounds), np.split(values, bounds), strict=True)}
    tasks = {int(e[0]): names.get(int(k[0]), "") for e, k in zip(np.split(ep, bounds), np.split(task_index, bounds),
                                                                    strict=True)}
    return actions, tasks

