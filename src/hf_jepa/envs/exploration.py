"""Exploration policies that collect world-model training data.

A world model only learns the transitions it sees: the data must cover both rooms and go through
the door often (a uniform random walk almost never finds a 12-px door). Two policies here, and Push-T's
contact-seeking :class:`~hf_jepa.envs.pusht_policy.PushTExplorer` (:func:`make_exploration_policy` picks by env):

- :class:`TwoRoomsExplorer` (Two-Rooms): **random waypoints with noisy heading**. The agent heads for
  a waypoint with a heading perturbed by von Mises noise (concentration ``kappa``; PLDM/EB-JEPA use
  von Mises direction changes too) at a speed drawn once per plan, uniform in ``[min_speed, 1]``, for every
  kind of plan. A per-step speed would average out over a world-model step (10 env steps: summed action norms
  all near the mean speed), and a speed that depends on the plan kind teaches the model the speed, not the wall:
  when wall pushes alone ran at full speed, the trained model predicted every full-speed move as blocked (no door
  crossing) and every slower push through the wall (measured by nearest-neighbour decoding of its rollouts). When a
  waypoint is reached (or after ``waypoint_timeout`` steps) a new plan is drawn:

  - with probability ``door_prob``: three waypoints -- the door entrance on the agent's side, the door
    exit on the other side, then a uniform point in the other room (a crossing),
  - with probability ``goal_prob``: the episode goal (``info["goal_state"]``), through the door if it is
    in the other room (goal-directed steps),
  - with probability ``wall_prob``: a uniform point in the other room *without* the door detour, for at most
    ``wall_timeout`` steps: the agent walks into the dividing wall and pushes/slides along
    it for several model steps in a row. A world
    model that never sees blocked pushes predicts the agent through the wall, and a planner exploits it.
    A fraction ``door_edge_prob`` of these plans first walk to the wall just beside the door (0.03-0.2 above or
    below the passable span), then push diagonally into the other room *away* from the door: the agent slides
    along the wall and stays blocked. They target the failure planning hits most (a model that learned "next to
    the door, a push crosses" predicts such diagonal pushes through the wall). Half of the wall pushes by
    default: with plan speeds independent of the plan kind, they took the 50-episode Two-Rooms evaluation from
    88% to 92% (while wall pushes alone ran at full speed, they did not help: the model read the speed),
  - otherwise: a uniform point in the agent's current room (local wandering, wall bumps included).

  With ``door_prob=0.5`` a 100-step episode crosses the door ~1.5 times on average (see the
  collection script's summary) and visits both rooms in most episodes.
- :class:`CorrelatedRandomPolicy` (any ``Box`` action space): an Ornstein-Uhlenbeck-like correlated random
  walk in normalised action space, ``a_t = rho * a_{t-1} + sqrt(1 - rho^2) * eps_t``, clipped to the Box.

Both are callables ``policy(obs, info) -> action`` with ``policy.reset(info)`` at episode start, seeded
through their ``np.random.Generator``: the same seed gives the same actions.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from .pusht import PushTGoalEnv
from .pusht_policy import PushTExplorer
from .two_rooms import TwoRoomsEnv

logger = logging.getLogger(__name__)


class ExplorationPolicy(Protocol):
    """``reset(info)`` at episode start, then ``policy(obs, info) -> action (A,)`` each step."""

    def reset(self, info: dict[str, Any]) -> None: ...

    def __call__(self, obs: Any, info: dict[str, Any]) -> np.ndarray: ...


class CorrelatedRandomPolicy:
    """Correlated random actions for any ``Box`` action space (finite bounds).

    Args:
        action_space: the env's Box action space.
        rng: the generator (seed it for reproducible data).
        rho: correlation between consecutive actions in [0, 1) (0: i.i.d. uniform-ish noise).
        scale: std of the normalised action (before clipping to [-1, 1]).
    """

    def __init__(self, action_space: gym.spaces.Box, rng: np.random.Generator, *, rho: float = 0.8, scale: float = 0.6):
        if not isinstance(action_space, gym.spaces.Box) or not np.all(np.isfinite(action_space.low)):
            raise ValueError(f"CorrelatedRandomPolicy action_space={action_space!r} is invalid: expected a bounded Box")
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"CorrelatedRandomPolicy rho={rho!r} is invalid: expected a float in [0, 1)")
        self.space, self.rng, self.rho, self.scale = action_space, rng, rho, scale
        self._a = np.zeros(action_space.shape, dtype=np.float64)

    def reset(self, info: dict[str, Any]) -> None:
        """Draw the first action afresh."""
        self._a = self.rng.normal(0.0, self.scale, size=self.space.shape)

    def __call__(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        """Next action, shape of the action space, within its bounds."""
        eps = self.rng.normal(0.0, self.scale, size=self.space.shape)
        self._a = self.rho * self._a + np.sqrt(1 - self.rho**2) * eps
        unit = np.clip(self._a, -1.0, 1.0)
        low, high = self.space.low.astype(np.float64), self.space.high.astype(np.float64)
        return (low + (unit + 1.0) * 0.5 * (high - low)).astype(self.space.dtype)


class TwoRoomsExplorer:
    """Random-waypoint exploration for :class:`TwoRoomsEnv` (see module docstring).

    Args:
        env: the Two-Rooms env (wrappers allowed).
        rng: the generator.
        door_prob: probability that a new plan crosses the door.
        goal_prob: probability that a new plan heads for the episode goal.
        wall_prob: probability that a new plan pushes straight into the dividing wall (blocked moves).
        kappa: von Mises concentration of the heading noise (larger: straighter).
        min_speed: smallest plan speed (action norm; the largest is 1).
        waypoint_timeout: steps before an unreached waypoint plan is dropped.
        wall_timeout: steps a wall-pushing plan lasts (per waypoint).
        door_edge_prob: fraction of the wall-pushing plans that push beside the door, sliding away from it.
    """

    def __init__(
        self,
        env: gym.Env,
        rng: np.random.Generator,
        *,
        door_prob: float = 0.5,
        goal_prob: float = 0.0,
        wall_prob: float = 0.25,
        kappa: float = 4.0,
        min_speed: float = 0.4,
        waypoint_timeout: int = 40,
        wall_timeout: int = 40,
        door_edge_prob: float = 0.5,
    ):
        base = env.unwrapped
        if not isinstance(base, TwoRoomsEnv):
            raise ValueError(f"TwoRoomsExplorer env={type(base).__name__} is invalid: expected a TwoRoomsEnv")
        for name, p in (("door_prob", door_prob), ("goal_prob", goal_prob), ("wall_prob", wall_prob),
                        ("door_edge_prob", door_edge_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"TwoRoomsExplorer {name}={p!r} is invalid: expected a probability in [0, 1]")
        if door_prob + goal_prob + wall_prob > 1.0:
            raise ValueError(f"TwoRoomsExplorer door_prob + goal_prob + wall_prob = "
                             f"{door_prob + goal_prob + wall_prob} is invalid: expected <= 1")
        for name, steps in (("waypoint_timeout", waypoint_timeout), ("wall_timeout", wall_timeout)):
            if not isinstance(steps, int) or steps < 1:
                raise ValueError(f"TwoRoomsExplorer {name}={steps!r} is invalid: expected an int >= 1")
        if not 0.0 < min_speed <= 1.0:
            raise ValueError(f"TwoRoomsExplorer min_speed={min_speed!r} is invalid: expected a float in (0, 1]")
        self.env, self.cfg, self.rng = base, base.config, rng
        self.door_prob, self.goal_prob, self.wall_prob, self.kappa = door_prob, goal_prob, wall_prob, kappa
        self.min_speed, self.waypoint_timeout, self.wall_timeout = min_speed, waypoint_timeout, wall_timeout
        self.door_edge_prob = door_edge_prob
        self._plan: list[np.ndarray] = []
        self._age = 0
        self._pushing = False  # the current plan pushes into the wall (`wall_timeout`)
        self._speed = 1.0  # the current plan's speed, in [min_speed, 1]

    def _door_crossing(self, state: np.ndarray, final: np.ndarray | None) -> list[np.ndarray]:
        slab_lo, slab_hi = self.cfg.wall_slab
        door_lo, door_hi = self.cfg.door_span
        y = self.rng.uniform(door_lo, door_hi)
        margin = self.cfg.max_norm
        room = self.env.room_of(state)
        entry = np.array([slab_lo - margin if room == 0 else slab_hi + margin, y])
        exit_ = np.array([slab_hi + margin if room == 0 else slab_lo - margin, y])
        final = self.env.sample_state(1 - room, self.rng) if final is None else final
        return [entry, exit_, final]

    def _door_edge_push(self, state: np.ndarray, target: np.ndarray) -> list[np.ndarray]:
        """Waypoints: beside the door on the agent's side of the wall, then `target` moved to the far side of that
        point from the door (so the push slides along the wall away from the door, blocked)."""
        slab_lo, slab_hi = self.cfg.wall_slab
        door_lo, door_hi = self.cfg.door_span
        lo, hi = self.cfg.center_bounds
        above = self.rng.random() < 0.5  # beside the door's upper (smaller y) or lower end
        offset = self.rng.uniform(0.03, 0.2)
        y = max(lo, door_lo - offset) if above else min(hi, door_hi + offset)
        margin = self.cfg.max_norm
        x = slab_lo - margin if self.env.room_of(state) == 0 else slab_hi + margin
        target = np.array([target[0], self.rng.uniform(lo, y) if above else self.rng.uniform(y, hi)])
        return [np.array([x, y]), target]

    def _new_plan(self, state: np.ndarray, info: dict[str, Any]) -> list[np.ndarray]:
        u = self.rng.random()
        self._speed = self.rng.uniform(self.min_speed, 1.0)  # independent of the plan kind (module docstring)
        self._pushing = u >= 1.0 - self.wall_prob
        if self._pushing:  # straight at the other room: blocked by the wall
            target = self.env.sample_state(1 - self.env.room_of(state), self.rng)
            # draw only when enabled: with door_edge_prob=0 the random stream (and the data) is what it was without
            edge = self.door_edge_prob > 0 and self.rng.random() < self.door_edge_prob
            return self._door_edge_push(state, target) if edge else [target]
        if u < self.door_prob:
            return self._door_crossing(state, None)
        if u < self.door_prob + self.goal_prob and "goal_state" in info:
            goal = np.asarray(info["goal_state"], dtype=np.float64)
            if self.env.room_of(goal) != self.env.room_of(state):
                return self._door_crossing(state, goal)
            return [goal]
        return [self.env.sample_state(self.env.room_of(state), self.rng)]

    def reset(self, info: dict[str, Any]) -> None:
        """Forget the current plan."""
        self._plan, self._age = [], 0

    def __call__(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        """Next action float32 (2,), L2 norm <= 1 (in ``[min_speed, 1]`` away from waypoints)."""
        state = np.asarray(info["state"], dtype=np.float64)
        while self._plan and np.linalg.norm(self._plan[0] - state) < self.cfg.max_norm:
            self._plan.pop(0)
            self._age = 0
        timeout = self.wall_timeout if self._pushing else self.waypoint_timeout
        if not self._plan or self._age >= timeout:
            self._plan, self._age = self._new_plan(state, info), 0
        self._age += 1
        delta = self._plan[0] - state
        heading = np.arctan2(delta[1], delta[0]) + self.rng.vonmises(0.0, self.kappa)
        # slow down near the waypoint so it is reached rather than circled
        speed = min(self._speed, float(np.linalg.norm(delta)) / self.cfg.max_norm + 0.2)
        return (speed * np.array([np.cos(heading), np.sin(heading)])).astype(np.float32)


def make_exploration_policy(env: gym.Env, rng: np.random.Generator, **kwargs: Any) -> ExplorationPolicy:
    """:class:`TwoRoomsExplorer` for Two-Rooms, :class:`~hf_jepa.envs.pusht_policy.PushTExplorer` for Push-T, else
    :class:`CorrelatedRandomPolicy`; ``kwargs`` go to the policy."""
    if isinstance(env.unwrapped, TwoRoomsEnv):
        return TwoRoomsExplorer(env, rng, **kwargs)
    if isinstance(env.unwrapped, PushTGoalEnv):
        return PushTExplorer(env, rng, **kwargs)
    return CorrelatedRandomPolicy(env.action_space, rng, **kwargs)
