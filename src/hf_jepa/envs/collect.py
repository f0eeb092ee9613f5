"""Record exploration episodes of an env as a LeRobot v3 dataset (frames, ``observation.state``, ``action``).

Each episode: ``reset(seed=seed + episode)``, then ``steps_per_episode`` steps of the env's exploration policy
(Two-Rooms: random waypoints through the door, see :mod:`hf_jepa.envs.exploration`; Push-T: contact-seeking pushes,
see :mod:`hf_jepa.envs.pusht_policy`; any other gymnasium id: correlated random actions). An episode stores
T = steps + 1 frames (fewer if the env ends early) and T actions: ``action[t]`` moves frame t to t + 1, the last one
is the policy's action at the last frame (not executed). Episodes do not end on success. The state and action names
and the robot type in ``meta/info.json`` are the env's ``state_names``, ``action_names`` and ``robot_type``
attributes where it has them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hf_jepa.data.lerobot import LeRobotWriter

from .exploration import make_exploration_policy
from .goal_wrapper import BUILTIN_ENVS, make_goal_env
from .two_rooms import TwoRoomsEnv

__all__ = ["CAMERA_KEY", "CollectionSummary", "collect_trajectories"]

logger = logging.getLogger(__name__)

CAMERA_KEY = "observation.image"


@dataclass
class CollectionSummary:
    """What ``collect_trajectories`` wrote.

    Attributes:
        root: the dataset folder.
        episodes: episodes written.
        frames: frames written over all episodes.
        seconds: wall time.
        door_crossings: Two-Rooms only: door crossings per episode (else empty).
        both_rooms: Two-Rooms only: episodes that visit both rooms.
        episode_stats: per statistic, one value per episode, from the env's ``episode_statistics(states, infos)``
            where it has one (Push-T: contact_fraction, block_displacement, block_path, block_rotation); else empty.
    """

    root: Path
    episodes: int
    frames: int
    seconds: float
    door_crossings: list[int] = field(default_factory=list)
    both_rooms: int = 0
    episode_stats: dict[str, list[float]] = field(default_factory=dict)


def collect_trajectories(env_id: str, output_dir: str | Path, *, episodes: int = 100, steps_per_episode: int = 100,
                         seed: int = 0, image_size: int = 64, fps: int = 10, episodes_per_file: int = 50,
                         policy_kwargs: dict[str, Any] | None = None, task: str | None = None,
                         overwrite: bool = False) -> CollectionSummary:
    """Run the exploration policy of ``env_id`` for ``episodes`` episodes and write them to ``output_dir``.

    Args:
        env_id: ``"two_rooms"``, ``"pusht"`` or a gymnasium id with ``rgb_array`` rendering (see ``make_goal_env``).
        output_dir: dataset folder (LeRobot v3 layout); must not exist unless ``overwrite``.
        episodes, steps_per_episode: how many episodes, and env steps in each (>= 1).
        seed: episode ``i`` resets with ``seed + i``; the policy's generator is seeded with ``seed``.
        image_size: frames are (image_size, image_size, 3) uint8.
        fps: frame rate stored in the dataset (timestamps, video).
        episodes_per_file: episodes per parquet / mp4 file.
        policy_kwargs: keyword arguments of the env's exploration policy (Two-Rooms: door_prob, goal_prob,
            wall_prob, door_edge_prob; Push-T: push_prob, goal_prob, push_steps, push_spread, ...).
        task: task text stored with every episode (default ``"explore <env_id>"``).
        overwrite: replace an existing ``output_dir``.
    """
    for name, value in (("episodes", episodes), ("steps_per_episode", steps_per_episode)):
        if value < 1:
            raise ValueError(f"{name}={value}: expected >= 1")
    builtin = env_id in BUILTIN_ENVS or env_id in BUILTIN_ENVS.values()
    env_kwargs = {"max_episode_steps": steps_per_episode} if builtin else {}
    env = make_goal_env(env_id, image_size=image_size, terminate_on_success=False, **env_kwargs)
    base = env.unwrapped
    two_rooms = isinstance(base, TwoRoomsEnv)
    statistics = getattr(base, "episode_statistics", None)
    policy = make_exploration_policy(env, np.random.default_rng(seed), **(policy_kwargs or {}))
    names = {key: list(getattr(base, key)) if getattr(base, key, None) is not None else None
             for key in ("state_names", "action_names")}
    writer = LeRobotWriter(output_dir, fps=fps, **names, robot_type=getattr(base, "robot_type", env_id),
                           episodes_per_file=episodes_per_file, overwrite=overwrite)
    task = task or f"explore {env_id}"
    summary = CollectionSummary(root=Path(output_dir), episodes=episodes, frames=0, seconds=0.0)
    start = time.perf_counter()
    for ep in tqdm(range(episodes), desc="episodes", unit="ep"):
        obs, info = env.reset(seed=seed + ep)
        policy.reset(info)
        frames, states, actions, infos = [obs], [info["state"]], [], []
        for _ in range(steps_per_episode):
            action = policy(obs, info)
            obs, _, terminated, truncated, info = env.step(action)
            actions.append(action)
            frames.append(obs)
            states.append(info["state"])
            if statistics is not None:
                infos.append({k: v for k, v in info.items() if np.ndim(v) == 0})  # scalars only: no images kept
            if terminated or truncated:
                break
        actions.append(policy(obs, info))  # chosen at the last frame, not executed
        states_arr = np.stack(states)  # (T, state_dim)
        writer.add_episode({CAMERA_KEY: np.stack(frames)}, states_arr, np.stack(actions), task=task)
        summary.frames += len(frames)
        if two_rooms:
            rooms = [base.room_of(s) for s in states_arr]
            summary.door_crossings.append(int(np.count_nonzero(np.diff(rooms))))
            summary.both_rooms += len(set(rooms)) == 2
        if statistics is not None:
            for name, value in statistics(states_arr, infos).items():
                summary.episode_stats.setdefault(name, []).append(float(value))
    summary.root = writer.finalize()
    summary.seconds = time.perf_counter() - start
    logger.info("wrote %s: %d episodes, %d frames in %.1f s", summary.root, episodes, summary.frames, summary.seconds)
    return summary
