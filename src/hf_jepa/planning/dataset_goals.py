"""Start and goal states from held-out trajectories: the published Push-T protocol of LeWM (lucas-maes/le-wm
``eval.py`` on stable-worldmodel's ``World.evaluate``; ``config/eval/pusht.yaml``).

A *task* is a (episode, frame t) of a dataset: the env is reset to the state at frame t (``start``) and the goal
image is rendered from the state at frame ``t + goal_offset`` of the same episode (``goal``), so the goal is
reachable in ``goal_offset`` steps of the data's own policy. The frames t are drawn uniformly without replacement
among all ``(episode, t)`` with ``t + goal_offset`` inside the episode, with ``np.random.default_rng(seed)``, and
sorted, as LeWM does. LeWM's Push-T settings: ``goal_offset = 25`` env steps, a budget of ``2 * goal_offset = 50``
env steps per episode (``eval_budget``), 50 episodes.

Envs take the task through ``reset(options={"start": ..., "goal": ...})`` (Push-T and Two-Rooms do), so the
dataset's ``observation.state`` must be the env's state (Push-T: the 5-D state our collection writes; the Hub's
``lerobot/pusht`` stores the 2-D agent position only and cannot start an episode).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hf_jepa.data.lerobot import STATE_KEY, episode_states

GOAL_OFFSET = 25
"""LeWM's ``goal_offset_steps`` (env steps between the start and the goal frame)."""


def default_budget(goal_offset: int) -> int:
    """LeWM's ``eval_budget`` for a goal offset: twice the steps the data took (25 -> 50)."""
    return 2 * goal_offset


@dataclass(frozen=True)
class GoalTask:
    """One evaluation episode: start at ``start``, reach ``goal`` (states of the env, from the dataset).

    Attributes:
        episode_index: the dataset episode.
        start_frame / goal_frame: their frame indices (``goal_frame = start_frame + goal_offset``).
        start / goal: float32 (S,) states at those frames.
    """

    episode_index: int
    start_frame: int
    goal_frame: int
    start: np.ndarray
    goal: np.ndarray

    def options(self) -> dict[str, Any]:
        """``env.reset(options=...)``."""
        return {"start": self.start.copy(), "goal": self.goal.copy()}

    def record(self) -> dict[str, Any]:
        """JSON-ready description (states as lists)."""
        return {"dataset_episode": self.episode_index, "start_frame": self.start_frame, "goal_frame": self.goal_frame,
                "dataset_start": [float(v) for v in self.start], "dataset_goal": [float(v) for v in self.goal]}


def sample_dataset_goals(dataset: str | Path, *, goal_offset: int = GOAL_OFFSET, episodes: int = 50, seed: int = 0,
                         state_key: str = STATE_KEY) -> list[GoalTask]:
    """``episodes`` tasks from a LeRobot v3 dataset (folder or Hub id), as LeWM samples them (module docstring).

    Raises:
        ValueError: ``goal_offset`` or ``episodes`` below 1, or fewer valid (episode, t) pairs than ``episodes``
            (the message gives the count and the longest episode).
    """
    if not isinstance(goal_offset, int) or goal_offset < 1:
        raise ValueError(f"goal_offset={goal_offset!r} is invalid: expected an int >= 1")
    if not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes={episodes!r} is invalid: expected an int >= 1")
    states = episode_states(dataset, state_key=state_key)
    valid = [(e, t) for e, s in sorted(states.items()) for t in range(len(s) - goal_offset)]
    if len(valid) < episodes:
        longest = max((len(s) for s in states.values()), default=0)
        raise ValueError(f"{dataset}: {len(valid)} (episode, frame) starts have a goal {goal_offset} frames later "
                         f"(longest episode: {longest} frames), fewer than episodes={episodes}: lower --goal_offset "
                         "or --episodes, or collect longer episodes")
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(valid), size=episodes, replace=False))
    tasks = []
    for i in picked.tolist():
        e, t = valid[i]
        tasks.append(GoalTask(episode_index=e, start_frame=t, goal_frame=t + goal_offset,
                              start=states[e][t].copy(), goal=states[e][t + goal_offset].copy()))
    return tasks
