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

from .pusht import AGENT_RADIUS_PX, ARENA_PX, WALLS_PX, PushTGoalEnv, wrap_angle


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


class PushTExpert:
    """A scripted Push-T expert: it pushes the T toward a goal pose, re-approaching between pushes.

    Each plan picks, among ``candidates`` points of the T's outline (uniform by length) and pushes along the inward
    normal turned by ``-spread, 0, +spread``, the contact whose predicted effect best reduces the pose error. The
    prediction is quasi-static: a push of ``L`` px at point ``p`` along ``d`` moves the block by ``L * d`` and turns
    it by ``L * ((p - c) x d) / rho^2`` (``c`` the centre of gravity, ``rho`` the T's radius of gyration); the error
    combines the centre's offset (px) and ``rho`` times the angle error. The agent goes around the block to just
    outside the contact point (waypoints on a circle clear of it), then pushes through it for ``ceil(L / step_px)``
    steps at ``push_speed`` (the agent then moves about ``step_px`` px per step), then plans again.

    The goal pose is drawn over the table at ``reset`` (uniform centre in ``goal_margin`` .. ``512 - goal_margin``
    px, uniform angle) and drawn again once the block is within ``pose tolerance`` of it, so an episode pushes the
    T to one goal after another. ``goal_from_env=True`` takes ``info["goal_state"]`` instead (an evaluation
    episode's goal).

    Args:
        env: the Push-T env (wrappers allowed).
        rng: the generator (contact candidates, goals).
        candidates: outline points scored per plan.
        spread: angle between the inward normal and the side pushes, radians.
        push_speed: action norm while pushing.
        move_speed: action norm while approaching.
        step_px: the agent's travel per push step at ``push_speed`` (sets the push length in steps).
        max_push_px: the longest push.
        goal_margin: goals keep the block's centre this far from the table's edges, px.
        goal_from_env: push toward ``info["goal_state"]`` instead of drawn goals.
        waypoint_timeout: steps before an unreached waypoint is given up.
    """

    def __init__(self, env: gym.Env, rng: np.random.Generator, *, candidates: int = 24, spread: float = np.pi / 6,
                 push_speed: float = 0.5, move_speed: float = 0.8, step_px: float = 20.0, max_push_px: float = 60.0,
                 goal_margin: float = 130.0, goal_from_env: bool = False, waypoint_timeout: int = 25):
        base = env.unwrapped
        if not isinstance(base, PushTGoalEnv):
            raise ValueError(f"PushTExpert env={type(base).__name__} is invalid: expected a PushTGoalEnv")
        for name, value, high in (("push_speed", push_speed, 1.0), ("move_speed", move_speed, 1.0),
                                  ("spread", spread, np.pi / 2)):
            if not (isinstance(value, (int, float)) and 0.0 <= value <= high) or (name != "spread" and value == 0):
                raise ValueError(f"PushTExpert {name}={value!r} is invalid: expected a float in (0, {high:g}]")
        if not isinstance(candidates, int) or candidates < 1:
            raise ValueError(f"PushTExpert candidates={candidates!r} is invalid: expected an int >= 1")
        for name, value in (("step_px", step_px), ("max_push_px", max_push_px)):
            if not value > 0:
                raise ValueError(f"PushTExpert {name}={value!r} is invalid: expected a positive float (px)")
        if not 0.0 <= goal_margin < ARENA_PX / 2:
            raise ValueError(f"PushTExpert goal_margin={goal_margin!r} is invalid: expected a float in [0, 256) px")
        self.env, self.rng = base, rng
        self.candidates, self.spread = candidates, spread
        self.push_speed, self.move_speed, self.step_px, self.max_push_px = push_speed, move_speed, step_px, max_push_px
        self.goal_margin, self.goal_from_env, self.waypoint_timeout = goal_margin, goal_from_env, waypoint_timeout
        self.scale = float(base.config.action_scale)
        self._lo, self._hi = WALLS_PX[0] + AGENT_RADIUS_PX + 3.0, WALLS_PX[1] - AGENT_RADIUS_PX - 3.0
        outline = base._outline.copy()  # (8, 2) block frame, px
        signed = 0.5 * float(np.sum(outline[:, 0] * np.roll(outline[:, 1], -1) - np.roll(outline[:, 0], -1)
                                    * outline[:, 1]))
        self._local = outline if signed > 0 else outline[::-1].copy()  # counter-clockwise: outward normal (e_y, -e_x)
        self._cog = np.asarray(base.sim.block.center_of_gravity, dtype=np.float64)  # (2,) block frame
        self._rho = float(np.sqrt(np.mean(np.sum((self._local - self._cog) ** 2, axis=1))))  # gyration radius, px
        self._explorer = PushTExplorer(env, rng)  # reuses its detour waypoints around the block
        self.goal = np.zeros(3)
        self._legs: list[tuple[str, np.ndarray, int]] = []
        self._age = 0

    # ------------------------------------------------------------------ geometry (px)
    def _world(self, points: np.ndarray, pose: np.ndarray) -> np.ndarray:
        c, s = np.cos(pose[2]), np.sin(pose[2])
        return points @ np.array([[c, -s], [s, c]]).T + pose[:2]

    def _errors(self, pose: np.ndarray) -> tuple[np.ndarray, float]:
        """(2,) px from the block's centre of gravity to the goal's, and the angle error, radians."""
        centre = self._world(self._cog[None], pose)[0]
        goal_centre = self._world(self._cog[None], self.goal)[0]
        return goal_centre - centre, float(wrap_angle(self.goal[2] - pose[2]))

    def _draw_goal(self) -> None:
        m = self.goal_margin
        centre = self.rng.uniform(m, ARENA_PX - m, size=2)
        angle = self.rng.uniform(-np.pi, np.pi)
        c, s = np.cos(angle), np.sin(angle)
        self.goal = np.array([*(centre - np.array([[c, -s], [s, c]]) @ self._cog), angle])  # origin from the centre

    def reached(self, state: np.ndarray) -> bool:
        """Whether the block is at the goal pose within the env's pose tolerances."""
        pose = np.array([state[2] * ARENA_PX, state[3] * ARENA_PX, state[4]])
        cfg = self.env.config
        return bool(np.linalg.norm(pose[:2] - self.goal[:2]) < cfg.pose_position_tolerance * ARENA_PX
                    and abs(wrap_angle(pose[2] - self.goal[2])) < cfg.pose_angle_tolerance)

    # ------------------------------------------------------------------ plans
    def _plan(self, state: np.ndarray) -> list:
        pose = np.array([state[2] * ARENA_PX, state[3] * ARENA_PX, state[4]])
        agent = state[:2] * ARENA_PX
        error, angle_error = self._errors(pose)
        verts = self._world(self._local, pose)  # (8, 2) counter-clockwise in the block frame
        edges = np.roll(verts, -1, axis=0) - verts
        lengths = np.linalg.norm(edges, axis=1)
        idx = self.rng.choice(len(edges), size=self.candidates, p=lengths / lengths.sum())
        t = self.rng.uniform(0.1, 0.9, size=(self.candidates, 1))
        points = verts[idx] + t * edges[idx]  # (N, 2)
        normals = np.stack([edges[idx, 1], -edges[idx, 0]], axis=1) / lengths[idx, None]  # outward, (N, 2)
        turns = np.array([-self.spread, 0.0, self.spread])
        c, s = np.cos(turns), np.sin(turns)
        inward = -normals
        dirs = np.stack([inward[:, None, 0] * c - inward[:, None, 1] * s,
                         inward[:, None, 0] * s + inward[:, None, 1] * c], axis=-1)  # (N, 3, 2)
        centre = self._world(self._cog[None], pose)[0]
        arm = points - centre  # (N, 2)
        torque = arm[:, None, 0] * dirs[..., 1] - arm[:, None, 1] * dirs[..., 0]  # (N, 3) (p - c) x d per px
        size = float(np.hypot(np.linalg.norm(error), self._rho * angle_error))
        length = float(np.clip(size, self.step_px, self.max_push_px))
        moved = error - length * dirs  # (N, 3, 2) centre error after the push
        turned = angle_error - length * torque / self._rho**2  # (N, 3)
        cost = np.sum(moved**2, axis=-1) + (self._rho * turned) ** 2
        i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
        approach = np.clip(points[i] + normals[i] * (AGENT_RADIUS_PX + 5.0), self._lo, self._hi)
        steps = max(1, int(np.ceil(length / self.step_px)))
        legs = [("around", w, self.waypoint_timeout) for w in self._explorer._around(state, agent, approach)]
        return legs + [("go", approach, self.waypoint_timeout), ("push", dirs[i, j], steps)]

    def reset(self, info: dict[str, Any]) -> None:
        """Forget the plan; draw a goal pose (or take the env's, with ``goal_from_env``)."""
        self._legs, self._age = [], 0
        if self.goal_from_env:
            g = np.asarray(info["goal_state"], dtype=np.float64)
            self.goal = np.array([g[2] * ARENA_PX, g[3] * ARENA_PX, g[4]])
        else:
            self._draw_goal()

    def __call__(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        """Next action float32 (2,), L2 norm <= 1 (needs ``info["state"]`` only: no image)."""
        state = np.asarray(info["state"], dtype=np.float64)
        agent = state[:2] * ARENA_PX
        if not self.goal_from_env and self.reached(state):
            self._draw_goal()
            self._legs = []
        while self._legs:
            kind, target, limit = self._legs[0]
            reach = {"go": 6.0, "around": 20.0}.get(kind)
            if not (self._age >= limit or (reach is not None and np.linalg.norm(target - agent) < reach)):
                break
            self._legs.pop(0)
            self._age = 0
        if not self._legs:
            self._legs, self._age = self._plan(state), 0
        kind, target, _ = self._legs[0]
        self._age += 1
        if kind == "push":
            return (self.push_speed * target).astype(np.float32)
        delta = (target - agent) / self.scale
        norm = float(np.linalg.norm(delta))
        return (delta if norm <= self.move_speed else delta * (self.move_speed / norm)).astype(np.float32)
