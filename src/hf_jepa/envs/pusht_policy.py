"""Scripted exploration for Push-T: the agent seeks out the block and pushes it, in varied ways.

A world model learns the block's dynamics only from steps where the agent touches it; a random walk on the 512 px
table rarely does. :class:`PushTExplorer` draws plans, each a few legs (move to a waypoint, or push along a
direction for some steps), at a speed drawn once per plan, uniform in ``[min_speed, max_speed]`` (as in Two-Rooms: the
speed must not reveal the plan kind). A new plan is:

- with probability ``push_prob``, a **contact push**: a point on the T's outline (the nearest to the agent of
  ``candidates`` uniform ones); the agent goes around
  the block (waypoints on a circle clear of it, so the approach itself does not push) to just outside that point,
  then pushes through it for ``push_steps`` steps along the inward normal turned by up to ``push_spread`` radians
  (off-normal pushes turn the block);
- with probability ``goal_prob``, a **goal-directed push**: the same, from the side of the block facing away from
  the goal's block position, pushing toward it (``info["goal_state"]``);
- otherwise **random motion**: a uniform waypoint on the table (it bumps into the block at times).

The heading of every step carries von Mises noise (concentration ``kappa``). The policy is a callable
``policy(obs, info) -> action`` with ``reset(info)``, seeded through its ``np.random.Generator``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from .pusht import AGENT_RADIUS_PX, ARENA_PX, WALLS_PX, PushTGoalEnv


class PushTExplorer:
    """Contact-seeking exploration for :class:`PushTGoalEnv` (see module docstring).

    Args:
        env: the Push-T env (wrappers allowed).
        rng: the generator.
        push_prob: probability that a plan pushes the block from a random point of its outline.
        goal_prob: probability that a plan pushes the block toward the episode goal's block position.
        candidates: a random push starts from the outline point nearest to the agent among this many uniform ones
            (1: anywhere on the outline; more: less walking between pushes).
        push_steps: (low, high) steps of a push, drawn uniformly (inclusive).
        push_spread: largest angle between a push and the inward normal at its contact point, radians.
        kappa: von Mises concentration of the heading noise (larger: straighter).
        min_speed: smallest plan speed (action norm).
        max_speed: largest plan speed (action norm, at most 1: ``action_scale`` px between agent and PD target).
        waypoint_timeout: steps before an unreached waypoint is given up.
    """

    def __init__(
        self,
        env: gym.Env,
        rng: np.random.Generator,
        *,
        push_prob: float = 0.7,
        goal_prob: float = 0.15,
        candidates: int = 3,
        push_steps: tuple[int, int] = (3, 12),
        push_spread: float = np.pi / 3,
        kappa: float = 8.0,
        min_speed: float = 0.3,
        max_speed: float = 1.0,
        waypoint_timeout: int = 30,
    ):
        base = env.unwrapped
        if not isinstance(base, PushTGoalEnv):
            raise ValueError(f"PushTExplorer env={type(base).__name__} is invalid: expected a PushTGoalEnv")
        for name, p in (("push_prob", push_prob), ("goal_prob", goal_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"PushTExplorer {name}={p!r} is invalid: expected a probability in [0, 1]")
        if push_prob + goal_prob > 1.0:
            raise ValueError(f"PushTExplorer push_prob + goal_prob = {push_prob + goal_prob} is invalid: "
                             "expected <= 1")
        if not (len(push_steps) == 2 and all(isinstance(v, int) for v in push_steps)
                and 1 <= push_steps[0] <= push_steps[1]):
            raise ValueError(f"PushTExplorer push_steps={push_steps!r} is invalid: expected (low, high) ints with "
                             "1 <= low <= high")
        if not isinstance(candidates, int) or candidates < 1:
            raise ValueError(f"PushTExplorer candidates={candidates!r} is invalid: expected an int >= 1")
        if not 0.0 <= push_spread <= np.pi / 2:
            raise ValueError(f"PushTExplorer push_spread={push_spread!r} is invalid: expected a float in [0, pi/2]")
        if not 0.0 < min_speed <= 1.0:
            raise ValueError(f"PushTExplorer min_speed={min_speed!r} is invalid: expected a float in (0, 1]")
        if not min_speed <= max_speed <= 1.0:
            raise ValueError(f"PushTExplorer max_speed={max_speed!r} is invalid: expected a float in "
                             f"[min_speed={min_speed!r}, 1]")
        if not isinstance(waypoint_timeout, int) or waypoint_timeout < 1:
            raise ValueError(f"PushTExplorer waypoint_timeout={waypoint_timeout!r} is invalid: expected an int >= 1")
        self.env, self.rng = base, rng
        self.push_prob, self.goal_prob, self.candidates = push_prob, goal_prob, candidates
        self.push_steps, self.push_spread = push_steps, push_spread
        self.kappa, self.waypoint_timeout = kappa, waypoint_timeout
        self.min_speed, self.max_speed = min_speed, max_speed
        self.scale = float(base.config.action_scale)
        self._legs: list[tuple[str, np.ndarray, int]] = []  # ("go", waypoint px, timeout) / ("push", unit dir, steps)
        self._age = 0
        self._speed = 1.0
        self._lo, self._hi = WALLS_PX[0] + AGENT_RADIUS_PX + 3.0, WALLS_PX[1] - AGENT_RADIUS_PX - 3.0

    # ------------------------------------------------------------------ geometry (px)
    def _outline(self, state: np.ndarray) -> np.ndarray:
        """The T's outline at the state's block pose, counter-clockwise (positive signed area), ``(8, 2)`` px."""
        from shapely.geometry.polygon import orient

        polygon = orient(self.env.polygon(self.env._block_px(state)), 1.0)
        return np.asarray(polygon.exterior.coords)[:-1]

    def _contact_points(self, state: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` uniform points on the outline ``(n, 2)`` and their outward unit normals ``(n, 2)``."""
        verts = self._outline(state)
        edges = np.roll(verts, -1, axis=0) - verts  # (E, 2)
        lengths = np.linalg.norm(edges, axis=1)
        idx = self.rng.choice(len(edges), size=n, p=lengths / lengths.sum())
        t = self.rng.uniform(0.05, 0.95, size=(n, 1))
        points = verts[idx] + t * edges[idx]
        normals = np.stack([edges[idx, 1], -edges[idx, 0]], axis=1) / lengths[idx, None]  # outward for CCW
        return points, normals

    def _around(self, state: np.ndarray, agent: np.ndarray, target: np.ndarray) -> list[np.ndarray]:
        """Waypoints from ``agent`` to ``target`` around the block (on a circle clear of it) when the straight way
        passes through the block; none otherwise."""
        from shapely.geometry import LineString

        block = self.env.polygon(self.env._block_px(state))
        if not LineString([agent, target]).intersects(block.buffer(AGENT_RADIUS_PX + 2.0)):
            return []
        center = np.asarray(block.centroid.coords[0])
        radius = float(np.linalg.norm(self._outline(state) - center, axis=1).max()) + AGENT_RADIUS_PX + 12.0
        a0 = np.arctan2(*(agent - center)[::-1])
        a1 = np.arctan2(*(target - center)[::-1])
        turn = (a1 - a0 + np.pi) % (2 * np.pi) - np.pi  # the shorter way round
        n = max(1, int(np.ceil(abs(turn) / (np.pi / 4))))
        return [np.clip(center + radius * np.array([np.cos(a), np.sin(a)]), self._lo, self._hi)
                for a in a0 + turn * np.arange(n + 1) / n]

    # ------------------------------------------------------------------ plans
    def _push_plan(self, state: np.ndarray, agent: np.ndarray, goal_px: np.ndarray | None) -> list:
        points, normals = self._contact_points(state, 32 if goal_px is not None else self.candidates)
        if goal_px is not None:  # the contact whose inward normal points most toward the goal's block position
            to_goal = goal_px - state[2:4] * ARENA_PX
            direction = to_goal / max(float(np.linalg.norm(to_goal)), 1e-6)
            i = int(np.argmax(-normals @ direction))
            push = direction
        else:  # the nearest of `candidates` uniform outline points (1: uniform)
            i = int(np.argmin(np.linalg.norm(points - agent, axis=1)))
            turn = self.rng.uniform(-self.push_spread, self.push_spread)
            c, s = np.cos(turn), np.sin(turn)
            push = np.array([[c, -s], [s, c]]) @ -normals[i]
        approach = np.clip(points[i] + normals[i] * (AGENT_RADIUS_PX + 4.0), self._lo, self._hi)
        steps = int(self.rng.integers(self.push_steps[0], self.push_steps[1] + 1))
        legs = [("around", w, self.waypoint_timeout) for w in self._around(state, agent, approach)]
        return legs + [("go", approach, self.waypoint_timeout), ("push", push, steps)]

    def _new_plan(self, state: np.ndarray, info: dict[str, Any]) -> list:
        self._speed = self.rng.uniform(self.min_speed, self.max_speed)  # independent of the plan kind
        agent = state[:2] * ARENA_PX
        u = self.rng.random()
        if u < self.push_prob:
            return self._push_plan(state, agent, None)
        if u < self.push_prob + self.goal_prob and "goal_state" in info:
            goal_px = np.asarray(info["goal_state"], dtype=np.float64)[2:4] * ARENA_PX
            if np.linalg.norm(goal_px - state[2:4] * ARENA_PX) > 5.0:
                return self._push_plan(state, agent, goal_px)
        return [("go", self.rng.uniform(self._lo, self._hi, size=2), self.waypoint_timeout)]

    def reset(self, info: dict[str, Any]) -> None:
        """Forget the current plan."""
        self._legs, self._age = [], 0

    def __call__(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        """Next action float32 (2,), L2 norm <= 1."""
        state = np.asarray(info["state"], dtype=np.float64)
        agent = state[:2] * ARENA_PX
        while self._legs:
            kind, target, limit = self._legs[0]
            reach = {"go": 6.0, "around": 20.0}.get(kind)  # px; detour waypoints need not be met closely
            done = self._age >= limit or (reach is not None and np.linalg.norm(target - agent) < reach)
            if not done:
                break
            self._legs.pop(0)
            self._age = 0
        if not self._legs:
            self._legs, self._age = self._new_plan(state, info), 0
        kind, target, _ = self._legs[0]
        self._age += 1
        if kind == "push":
            action = self._speed * target
        else:  # toward the waypoint ("go" / "around"); the PD target lands on it once it is within reach
            delta = (target - agent) / self.scale
            norm = float(np.linalg.norm(delta))
            action = delta if norm <= self._speed else delta * (self._speed / norm)
        turn = self.rng.vonmises(0.0, self.kappa)
        c, s = np.cos(turn), np.sin(turn)
        return (np.array([[c, -s], [s, c]]) @ action).astype(np.float32)
