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
``lerobot/pusht`` stores the 2-D agent position only and cannot start an episode: ``state_dim`` names that mismatch).
Given ``check_state`` (the env's own check, e.g. ``PushTGoalEnv.check_state``), a drawn task whose start or goal the
env refuses is skipped and replaced by another draw; the skipped tasks are counted and named in
``GoalTasks.skipped``, never a crash in the middle of an evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hf_jepa.data.lerobot import STATE_KEY, episode_states

logger = logging.getLogger(__name__)

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


class GoalTasks(list):
    """A list of :class:`GoalTask` with the draws that were skipped.

    Attributes:
        skipped: one line per skipped draw: ``"episode E frames t -> t + k: <the env's error>"``.
    """

    skipped: list[str]

    def __init__(self, tasks: list[GoalTask] = (), skipped: list[str] | None = None) -> None:
        super().__init__(tasks)
        self.skipped = list(skipped or [])


@dataclass(frozen=True)
class _Draw:
    """A drawn (episode, t) with the reason it cannot be used ('' when it can)."""

    task: GoalTask
    reason: str = field(default="")


def sample_dataset_goals(dataset: str | Path, *, goal_offset: int = GOAL_OFFSET, episodes: int = 50, seed: int = 0,
                         state_key: str = STATE_KEY, check_state: Callable[[np.ndarray, str], object] | None = None,
                         state_dim: int | None = None) -> GoalTasks:
    """``episodes`` tasks from a LeRobot v3 dataset (folder or Hub id), as LeWM samples them (module docstring).

    Args:
        check_state: ``check_state(state, name)`` raising ValueError for a state the env cannot reset to (the env's
            own check); a task whose start or goal it refuses is skipped (named in ``.skipped``) and another draw
            takes its place. None: every task is kept.
        state_dim: the env's state width; a dataset whose states have another width cannot start an episode.

    Raises:
        ValueError: ``goal_offset`` or ``episodes`` below 1; the dataset's state width differs from ``state_dim``
            (e.g. the Hub's ``lerobot/pusht``: the agent position only); fewer usable (episode, t) pairs than
            ``episodes`` (the message gives the count, the longest episode and the skipped draws).
    """
    if not isinstance(goal_offset, int) or goal_offset < 1:
        raise ValueError(f"goal_offset={goal_offset!r} is invalid: expected an int >= 1")
    if not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes={episodes!r} is invalid: expected an int >= 1")
    states = episode_states(dataset, state_key=state_key)
    width = next((int(s.shape[1]) for s in states.values()), None)
    if state_dim is not None and width is not None and width != state_dim:
        raise ValueError(f"{dataset}: its {state_key} has {width} values per frame but the env's states have "
                         f"{state_dim}: this dataset's states cannot reset the env (the Hub's lerobot/pusht keeps the "
                         "agent position only); evaluate on data collected in the env "
                         "(scripts/collect_trajectories.py)")
    valid = [(e, t) for e, s in sorted(states.items()) for t in range(len(s) - goal_offset)]
    if len(valid) < episodes:
        longest = max((len(s) for s in states.values()), default=0)
        raise ValueError(f"{dataset}: {len(valid)} (episode, frame) starts have a goal {goal_offset} frames later "
                         f"(longest episode: {longest} frames), fewer than episodes={episodes}: lower --goal_offset "
                         "or --episodes, or collect longer episodes")

    def draw(i: int) -> _Draw:
        e, t = valid[i]
        task = GoalTask(episode_index=e, start_frame=t, goal_frame=t + goal_offset,
                        start=states[e][t].copy(), goal=states[e][t + goal_offset].copy())
        if check_state is not None:
            for name, value in (("start", task.start), ("goal", task.goal)):
                try:
                    check_state(value, name)
                except ValueError as err:
                    return _Draw(task, f"episode {e} frames {t} -> {t + goal_offset}: {err}")
        return _Draw(task)

    rng = np.random.default_rng(seed)
    picked = rng.choice(len(valid), size=episodes, replace=False)  # LeWM's draw; replacements follow it
    draws = [draw(i) for i in picked.tolist()]
    kept = [d.task for d in draws if not d.reason]
    skipped = [d.reason for d in draws if d.reason]
    if skipped:
        rest = np.setdiff1d(np.arange(len(valid)), picked)
        for i in rng.permutation(rest).tolist():
            if len(kept) == episodes:
                break
            d = draw(i)
            if d.reason:
                skipped.append(d.reason)
            else:
                kept.append(d.task)
        for reason in skipped:
            logger.warning("skipping the dataset task %s", reason)
        if len(kept) < episodes:
            raise ValueError(f"{dataset}: only {len(kept)} (episode, frame) tasks the env accepts, fewer than "
                             f"episodes={episodes}; {len(skipped)} skipped, the first: {skipped[0]}")
    kept.sort(key=lambda task: (task.episode_index, task.start_frame))
    return GoalTasks(kept, skipped)
