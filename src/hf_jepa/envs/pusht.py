"""Push-T (Chi et al., 2023, through huggingface/gym-pusht) as a goal-image planning env.

A circular agent (radius 15 px) pushes a T-shaped block on a 512 x 512 px table walled at 5 and 506 px. The
physics, the PD controller (10 Hz control, 10 sub-steps of 10 ms) and the drawing are gym-pusht's; this module adds
the goal-image contract of :mod:`hf_jepa.envs.goal_wrapper` (the same keys as Two-Rooms), exact resets to any state,
goal images rendered from any state, and relative actions.

State (``info["state"]``, float32 (5,); the ``observation.state`` column written by collection, and the world
model's ``state`` input when it is trained on that data)
-----------------------------------------------------------------------------------------------------------------
``(agent_x, agent_y, block_x, block_y, block_angle)``: positions in **arena units**, gym-pusht's pixels / 512, so
``[0, 1]`` spans the table, x to the right, y downwards (image column and row, as in Two-Rooms); ``block_x,
block_y`` is the block body's origin (gym-pusht's ``block.position``: the middle of the T's top edge), the angle is
in radians wrapped to ``[-pi, pi)``. It is gym-pusht's ``obs_type="state"`` vector divided by 512 (angle wrapped
instead of taken modulo 2 pi). Velocities are not part of it: a reset to a state starts at rest. The block pose in
it is information a camera-only robot would not have; a world model trained on this data sees it as proprioception.

Actions (relative, ``Box(-1, 1, (2,))``)
------------------------------------------
An action ``a`` is projected onto the unit L2 ball and moves the PD controller's target to
``agent_position + action_scale * a`` (100 px by default, stable-worldmodel's ``PushT-v1`` scale), clipped so the
agent's centre stays inside the walls (gym-pusht's agent is kinematic: walls do not stop it). At steady state the
agent moves about 0.4 of that offset per step (up to ~40 px). Relative actions with a bounded norm are what the
planners assume (``planner_config``: a planned action is the sum of ``frame_skip``
env actions, inside ``frame_skip`` times the unit ball) and what CEM searches well: a plan's actions stay near zero
mean, whatever the agent's position, instead of absolute targets that must all be re-found after each move.
gym-pusht's own absolute targets (the Hub's ``lerobot/pusht`` actions) convert as ``(target - agent) / action_scale``.

Goal, distance, success
-----------------------
- ``reset(options={"start": state, "goal": state})`` starts exactly at ``start`` (at rest) and renders the goal image
  from ``goal`` (the agent is drawn too). Without ``start``: gym-pusht's random start (agent in [50, 450] px, block
  in [100, 400] px, uniform angle). Without ``goal``: gym-pusht's task, the block on the green target
  ``goal_block_pose`` (256, 256 px, pi/4), with the agent at a random place clear of it.
- The green target T is drawn in every image at gym-pusht's fixed pose, as in the Hub's data; the episode's goal is
  the goal image, and everything below is measured against the goal state.
- ``info["coverage"]``: the fraction of the goal T's area covered by the block (gym-pusht's coverage, against the
  goal pose). ``info["distance"]``: the mean distance between the T's 8 corners at the current and the goal pose,
  arena units (0 iff the poses match; it grows with both position and angle errors). ``info["position_error"]``
  (block origin, arena units) and ``info["angle_error"]`` (radians, in [0, pi]) are its two parts.
- ``info["success"]`` follows ``success_criterion``: ``"coverage"`` (default, gym-pusht's: coverage above
  ``coverage_threshold = 0.95``) or ``"pose"`` (stable-worldmodel's and LeWM's: the L2 norm of the agent and block
  position errors, in px, below 20 and the angle error below pi/9). Both flags are in every info
  (``success_coverage``, ``success_pose``).
- ``info["contact"]``: the agent's disk touches the block (gap of at most 1 px) after the step.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from .config import resolve_env_config, unit_ball_action

ARENA_PX = 512.0
"""Side of gym-pusht's table in pixels: one arena unit."""
WALLS_PX = (7.0, 504.0)
"""Inner faces of gym-pusht's walls (segments at 5 and 506 px, radius 2)."""
AGENT_RADIUS_PX = 15.0
"""gym-pusht's agent radius."""
STATE_NAMES = ("agent_x", "agent_y", "block_x", "block_y", "block_angle")


@dataclass(frozen=True)
class PushTConfig:
    """Rendering, actions and success of :class:`PushTGoalEnv`; lengths in arena units (px / 512).

    Validated at construction: errors name the field, its value and what was expected.
    """

    image_size: int = 64
    """Side of the square RGB observation, pixels (gym-pusht draws 512 px and resizes, as for the Hub's 96 px)."""
    action_scale: float = 100.0
    """Pixels between the agent and the PD target for a unit-norm action."""
    success_criterion: Literal["coverage", "pose"] = "coverage"
    """What ``info["success"]`` reports (module docstring)."""
    coverage_threshold: float = 0.95
    """Coverage above which the ``coverage`` criterion succeeds (gym-pusht: 0.95)."""
    pose_position_tolerance: float = 20.0 / ARENA_PX
    """``pose`` criterion: bound on the L2 norm of the agent and block position errors (20 px)."""
    pose_angle_tolerance: float = math.pi / 9
    """``pose`` criterion: bound on the block angle error, radians."""
    goal_block_pose: tuple[float, float, float] = (0.5, 0.5, math.pi / 4)
    """Block pose of the default goal: gym-pusht's green target (256, 256 px, pi/4)."""
    max_episode_steps: int = 300
    """Episodes are truncated after this many steps (gym-pusht's registration: 300)."""
    terminate_on_success: bool = True
    """End the episode on success; data collection sets this to False."""

    def __post_init__(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise ValueError(f"PushTConfig.{name}={getattr(self, name)!r} is invalid: expected {expected}")

        if not isinstance(self.image_size, int) or self.image_size < 16:
            fail("image_size", "an int >= 16")
        if not (isinstance(self.action_scale, (int, float)) and 0 < self.action_scale <= ARENA_PX):
            fail("action_scale", f"a float in (0, {ARENA_PX:g}] (pixels)")
        if self.success_criterion not in ("coverage", "pose"):
            fail("success_criterion", "'coverage' or 'pose'")
        if not (isinstance(self.coverage_threshold, (int, float)) and 0 < self.coverage_threshold <= 1):
            fail("coverage_threshold", "a float in (0, 1]")
        for name in ("pose_position_tolerance", "pose_angle_tolerance"):
            if not (isinstance(getattr(self, name), (int, float)) and getattr(self, name) > 0):
                fail(name, "a positive float")
        if len(self.goal_block_pose) != 3 or not all(np.isfinite(self.goal_block_pose)):
            fail("goal_block_pose", "(x, y, angle): 3 finite floats")
        if not isinstance(self.max_episode_steps, int) or self.max_episode_steps < 1:
            fail("max_episode_steps", "an int >= 1")


def wrap_angle(theta: float | np.ndarray) -> float | np.ndarray:
    """Radians wrapped to ``[-pi, pi)``."""
    return (np.asarray(theta) + np.pi) % (2 * np.pi) - np.pi


def _simulator(image_size: int) -> Any:
    """gym-pusht's env (``obs_type="state"``), drawing shapes only: gym-pusht also draws the contact points of the
    last physics step in red, which a state alone cannot reproduce (a goal image rendered from a state would then
    differ from the observation of that same state)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless, and without pygame's import banner
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame
    import pymunk
    import pymunk.pygame_util
    from gym_pusht.envs.pusht import PushTEnv
    from gym_pusht.envs.pymunk_override import DrawOptions

    class ShapesOnlyPushT(PushTEnv):
        def _draw(self) -> Any:
            screen = pygame.Surface((int(ARENA_PX), int(ARENA_PX)))
            screen.fill((255, 255, 255))
            options = DrawOptions(screen)
            options.flags = pymunk.SpaceDebugDrawOptions.DRAW_SHAPES
            goal_body = self.get_goal_pose_body(self.goal_pose)  # the green target T, as gym-pusht draws it
            for shape in self.block.shapes:
                points = [pymunk.pygame_util.to_pygame(goal_body.local_to_world(v), screen)
                          for v in shape.get_vertices()]
                pygame.draw.polygon(screen, pygame.Color("LightGreen"), points + points[:1])
            self.space.debug_draw(options)
            return screen

    return ShapesOnlyPushT(obs_type="state", render_mode="rgb_array", observation_width=image_size,
                           observation_height=image_size)


T_CORNERS_PX = np.array([[-60.0, 0.0], [60.0, 0.0], [60.0, 30.0], [-60.0, 30.0],
                         [-15.0, 30.0], [15.0, 30.0], [15.0, 120.0], [-15.0, 120.0]])
"""gym-pusht's T in the block's frame, px: the bar's 4 corners then the stem's (``PushTGoalEnv.corners``' order)."""


class PushTGoalEnv(gym.Env):
    """Push-T with image observations, goal images from states and relative actions (see module docstring).

    - observation: ``uint8 (H, W, 3)``, ``H = W = config.image_size``
    - action: ``float32 (2,)`` in ``[-1, 1]``, projected onto the unit L2 ball; the PD target is
      ``agent + action_scale * action`` (px)
    - reward: ``-distance`` (planners ignore it)
    - info: ``state (5,)``, ``goal_state (5,)``, ``goal`` (uint8 image), ``distance``, ``coverage``,
      ``position_error``, ``angle_error``, ``success``, ``success_coverage``, ``success_pose``, ``contact``
    - terminated on success (``config.terminate_on_success``); truncated after ``config.max_episode_steps``

    Args:
        config: ``None`` means ``PushTConfig()``.
        render_mode: only ``"rgb_array"``.
        **overrides: any :class:`PushTConfig` field, e.g. ``gymnasium.make("hf_jepa/PushT-v0", image_size=96)``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    state_names = STATE_NAMES
    action_names = ("dx", "dy")
    robot_type = "pusht"

    def __init__(self, config: PushTConfig | None = None, *, render_mode: str | None = "rgb_array",
                 **overrides: Any):
        super().__init__()
        config = resolve_env_config("PushTGoalEnv", PushTConfig, config, overrides, render_mode)
        self.config, self.render_mode = config, render_mode
        s = config.image_size
        self.sim = _simulator(s)
        self.observation_space = gym.spaces.Box(0, 255, shape=(s, s, 3), dtype=np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.sim.reset(seed=0)  # builds the pymunk space; every reset rebuilds it
        # the T's corners in the block's frame, px: (8, 2) (two rectangles of 4), and its outline (a polygon of 8
        # vertices: the union taken once here, where the shared edge is exact)
        from shapely.geometry import Polygon
        from shapely.ops import unary_union

        # pymunk keeps a body's shapes in a set (no fixed order), so the corner order comes from T_CORNERS_PX; the
        # simulator's two rectangles must be the same T
        sim_rects = sorted(sorted(tuple(v) for v in shape.get_vertices()) for shape in self.sim.block.shapes)
        if sim_rects != sorted(sorted(map(tuple, T_CORNERS_PX[i:i + 4].tolist())) for i in (0, 4)):
            raise RuntimeError(f"the simulator's T {sim_rects} is not T_CORNERS_PX {T_CORNERS_PX.tolist()}")
        self._corners = T_CORNERS_PX.copy()
        outline = unary_union([Polygon(self._corners[:4]), Polygon(self._corners[4:])])
        self._outline = np.asarray(outline.exterior.coords)[:-1]  # (8, 2)
        self._t_area = float(outline.area)
        self._goal_state = np.zeros(5, dtype=np.float64)
        self._goal_image = np.zeros((s, s, 3), dtype=np.uint8)
        self._steps = 0

    # ------------------------------------------------------------------ geometry (px)
    @staticmethod
    def _transform(points: np.ndarray, pose_px: np.ndarray) -> np.ndarray:
        c, s = math.cos(float(pose_px[2])), math.sin(float(pose_px[2]))
        return points @ np.array([[c, -s], [s, c]]).T + np.asarray(pose_px[:2], dtype=np.float64)

    def corners(self, pose_px: np.ndarray) -> np.ndarray:
        """The T's 8 corners ``(8, 2)`` px (gym-pusht's keypoints) at block pose ``(x, y, angle)`` (x, y in px)."""
        return self._transform(self._corners, pose_px)

    def polygon(self, pose_px: np.ndarray) -> Any:
        """The T at block pose ``(x, y, angle)`` (x, y in px) as a shapely Polygon."""
        from shapely.geometry import Polygon

        return Polygon(self._transform(self._outline, pose_px))

    @staticmethod
    def _block_px(state: np.ndarray) -> np.ndarray:
        """Block pose ``(x_px, y_px, angle)`` of a state in arena units."""
        return np.array([state[2] * ARENA_PX, state[3] * ARENA_PX, state[4]], dtype=np.float64)

    def coverage(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """Fraction of the goal T's area covered by the block (gym-pusht's coverage, against ``goal_state``)."""
        goal = self.polygon(self._block_px(goal_state))
        return float(goal.intersection(self.polygon(self._block_px(state))).area / self._t_area)

    def pose_errors(self, state: np.ndarray, goal_state: np.ndarray) -> tuple[float, float, float]:
        """``(mean corner distance, block position error, angle error)``: arena units, arena units, radians."""
        a, b = self._block_px(state), self._block_px(goal_state)
        corner = float(np.linalg.norm(self.corners(a) - self.corners(b), axis=1).mean()) / ARENA_PX
        position = float(np.linalg.norm(a[:2] - b[:2])) / ARENA_PX
        angle = float(abs(wrap_angle(a[2] - b[2])))
        return corner, position, angle

    def in_contact(self) -> bool:
        """Whether the agent's disk touches the block (gap of at most 1 px)."""
        from shapely.geometry import Point

        gap = self.polygon(self._block_px(self._read_state())).distance(Point(*self.sim.agent.position))
        return bool(gap <= AGENT_RADIUS_PX + 1.0)

    @property
    def block_bounds(self) -> tuple[float, float]:
        """``(low, high)`` arena units bounding the block's origin on both axes: where the physics can put it.

        The origin (the middle of the T's top edge) lies on the T, and the agent, kept inside the walls, can press
        the T against a wall and partly through it (gym-pusht's agent is kinematic: it pushes with unbounded force).
        A push needs contact, so some point of the T stays inside the walls; the origin is then at most the T's
        reach (the largest distance from the origin to a corner, 121 px) beyond a wall's inner face:
        ``[(7 - 121) / 512, (504 + 121) / 512] = [-0.2225, 1.2206]``. Collected data holds ``block_x = 1.045``
        (the T against the right wall)."""
        reach = float(np.linalg.norm(self._corners, axis=1).max())
        return (WALLS_PX[0] - reach) / ARENA_PX, (WALLS_PX[1] + reach) / ARENA_PX

    def check_state(self, value: Any, name: str = "state") -> np.ndarray:
        """``value`` as a float64 (5,) state; a ValueError naming it and the expected ranges otherwise.

        Accepts every state the physics produces (the block bounded by :attr:`block_bounds`, not by the table)."""
        arr = np.array(value, dtype=np.float64).reshape(-1)  # a copy: the caller's array is never changed
        lo, hi = WALLS_PX[0] / ARENA_PX, WALLS_PX[1] / ARENA_PX
        b_lo, b_hi = self.block_bounds
        expected = (f"expected (agent_x, agent_y, block_x, block_y, block_angle) with the agent's position in "
                    f"[{lo:.4f}, {hi:.4f}] (inside the walls, arena units: px / 512), the block's origin in "
                    f"[{b_lo:.4f}, {b_hi:.4f}] (where a push can put it: a wall's inner face +- the T's reach) and a "
                    "finite angle in radians")
        if arr.shape != (5,) or not np.all(np.isfinite(arr)):
            raise ValueError(f"PushTGoalEnv {name}={value!r} is invalid: {expected}")
        bounds = ((lo, hi), (lo, hi), (b_lo, b_hi), (b_lo, b_hi))
        outside = [f"{n}={arr[i]:.4g}" for i, (n, (a, b)) in enumerate(zip(STATE_NAMES[:4], bounds, strict=True))
                   if not a <= arr[i] <= b]
        if outside:
            raise ValueError(f"PushTGoalEnv {name}={value!r} is outside the arena ({', '.join(outside)}): {expected}")
        return arr

    # ------------------------------------------------------------------ simulator state
    def _read_state(self) -> np.ndarray:
        agent, block = self.sim.agent.position, self.sim.block.position
        return np.array([agent[0] / ARENA_PX, agent[1] / ARENA_PX, block[0] / ARENA_PX, block[1] / ARENA_PX,
                         float(wrap_angle(self.sim.block.angle))], dtype=np.float64)

    def _write_state(self, state: np.ndarray) -> None:
        """Place agent and block exactly (the angle before the position: pymunk rotates about the block's centre of
        gravity, so the reverse order moves the origin), at rest; shapes re-indexed so drawing sees them."""
        agent, block = self.sim.agent, self.sim.block
        agent.position = (float(state[0] * ARENA_PX), float(state[1] * ARENA_PX))
        agent.velocity = (0.0, 0.0)
        block.angle = float(state[4])
        block.position = (float(state[2] * ARENA_PX), float(state[3] * ARENA_PX))
        block.velocity, block.angular_velocity = (0.0, 0.0), 0.0
        for body in (agent, block):
            self.sim.space.reindex_shapes_for_body(body)

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """The image ``uint8 (H, W, 3)`` of ``state (5,)``; the env's own state is restored afterwards."""
        state = self.check_state(state)
        agent, block = self.sim.agent, self.sim.block
        saved = (tuple(agent.position), tuple(agent.velocity), block.angle, tuple(block.position),
                 tuple(block.velocity), block.angular_velocity)
        self._write_state(state)
        image = np.asarray(self.sim._render(), dtype=np.uint8).copy()
        agent.position, agent.velocity = saved[0], saved[1]
        block.angle, block.position = saved[2], saved[3]
        block.velocity, block.angular_velocity = saved[4], saved[5]
        for body in (agent, block):
            self.sim.space.reindex_shapes_for_body(body)
        return image

    def render(self) -> np.ndarray:
        """The current observation, ``uint8 (H, W, 3)``."""
        return np.asarray(self.sim._render(), dtype=np.uint8).copy()

    # ------------------------------------------------------------------ gym API
    @property
    def state(self) -> np.ndarray:
        """Current state, float32 (5,) (module docstring)."""
        return self._read_state().astype(np.float32)

    @property
    def goal_state(self) -> np.ndarray:
        """Current goal state, float32 (5,)."""
        return self._goal_state.astype(np.float32)

    def _default_goal(self) -> np.ndarray:
        """gym-pusht's target pose for the block; the agent uniform in [50, 450] px, clear of the goal T."""
        x, y, angle = self.config.goal_block_pose
        goal = np.array([0.0, 0.0, x, y, angle])
        from shapely.geometry import Point

        target = self.polygon(self._block_px(goal))
        for _ in range(1000):
            goal[:2] = self.np_random.uniform(50.0, 450.0, size=2) / ARENA_PX
            if target.distance(Point(*(goal[:2] * ARENA_PX))) > AGENT_RADIUS_PX + 5.0:
                break
        return goal

    def _info(self) -> dict[str, Any]:
        cfg = self.config
        state = self._read_state()
        coverage = self.coverage(state, self._goal_state)
        distance, position_error, angle_error = self.pose_errors(state, self._goal_state)
        positions = np.linalg.norm(state[:4] - self._goal_state[:4])
        success_pose = bool(positions < cfg.pose_position_tolerance and angle_error < cfg.pose_angle_tolerance)
        success_coverage = bool(coverage > cfg.coverage_threshold)
        return {
            "state": state.astype(np.float32),
            "goal_state": self.goal_state,
            "goal": self._goal_image.copy(),
            "distance": distance,
            "coverage": coverage,
            "position_error": position_error,
            "angle_error": angle_error,
            "success": success_coverage if cfg.success_criterion == "coverage" else success_pose,
            "success_coverage": success_coverage,
            "success_pose": success_pose,
            "contact": self.in_contact(),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start at ``options["start"]`` (or gym-pusht's random start) toward ``options["goal"]`` (or gym-pusht's
        target); both are (5,) states in arena units. Returns ``(obs uint8 (H, W, 3), info)``."""
        super().reset(seed=seed)
        options = options or {}
        unknown = sorted(set(options) - {"start", "goal"})
        if unknown:
            raise ValueError(f"PushTGoalEnv.reset got unknown options {unknown}: expected 'start' and/or 'goal'")
        start = self.check_state(options["start"], "options['start']") if options.get("start") is not None else None
        goal = self.check_state(options["goal"], "options['goal']") if options.get("goal") is not None else None
        self.sim.reset(seed=seed)  # a fresh pymunk space at gym-pusht's random start (seeded with `seed`)
        if start is not None:
            self._write_state(start)
        self._goal_state = goal if goal is not None else self._default_goal()
        self._goal_state[4] = float(wrap_angle(self._goal_state[4]))
        self._goal_image = self.render_state(self._goal_state)
        self._steps = 0
        return self.render(), self._info()

    def snapshot(self) -> tuple[float, ...]:
        """The simulator's physical state: ``(agent x, y, vx, vy, block x, y, angle, vx, vy, angular velocity)``
        (px, px/s, rad, rad/s), what :meth:`restore` puts back; the 5-D state leaves the velocities out."""
        agent, block = self.sim.agent, self.sim.block
        return (*agent.position, *agent.velocity, *block.position, float(block.angle), *block.velocity,
                float(block.angular_velocity))

    def restore(self, snapshot: tuple[float, ...]) -> None:
        """Put back a :meth:`snapshot` (of this env or another instance); the goal and step count are unchanged."""
        if len(snapshot) != 10 or not np.all(np.isfinite(snapshot)):
            raise ValueError(f"PushTGoalEnv snapshot={snapshot!r} is invalid: expected the 10 finite floats of "
                             "PushTGoalEnv.snapshot()")
        ax, ay, avx, avy, bx, by, angle, bvx, bvy, omega = (float(v) for v in snapshot)
        agent, block = self.sim.agent, self.sim.block
        agent.position, agent.velocity = (ax, ay), (avx, avy)
        block.angle = angle  # before the position, as in _write_state
        block.position, block.velocity, block.angular_velocity = (bx, by), (bvx, bvy), omega
        for body in (agent, block):
            self.sim.space.reindex_shapes_for_body(body)

    def advance(self, action: np.ndarray) -> np.ndarray:
        """The physics of one :meth:`step` without rendering or measuring (a simulator for planning); returns
        the (5,) state. The PD target is ``agent + action_scale * action`` (px; the action projected onto the unit
        ball), clipped so the agent's centre stays inside the walls; gym-pusht's PD loop runs its sub-steps."""
        a = unit_ball_action(action, "PushTGoalEnv")
        lo, hi = WALLS_PX[0] + AGENT_RADIUS_PX, WALLS_PX[1] - AGENT_RADIUS_PX
        sim = self.sim
        target = np.clip(np.asarray(sim.agent.position) + self.config.action_scale * a, lo, hi)
        for _ in range(int(1 / (sim.dt * sim.control_hz))):  # gym-pusht's PushTEnv.step, without its reward / obs
            velocity = np.asarray(sim.agent.velocity)
            acceleration = sim.k_p * (target - np.asarray(sim.agent.position)) - sim.k_v * velocity
            sim.agent.velocity = tuple(velocity + acceleration * sim.dt)
            sim.space.step(sim.dt)
        return self._read_state()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Move the PD target to ``agent + action_scale * action`` (px; the action projected onto the unit ball)."""
        self.advance(action)
        self._steps += 1
        info = self._info()
        terminated = bool(info["success"] and self.config.terminate_on_success)
        truncated = self._steps >= self.config.max_episode_steps
        return self.render(), -info["distance"], terminated, truncated, info

    def episode_statistics(self, states: np.ndarray, infos: list[dict[str, Any]]) -> dict[str, float]:
        """What an exploration episode did to the block: ``contact_fraction`` (steps ending in contact),
        ``block_displacement`` (start to end, px), ``block_path`` (summed per-step moves, px) and
        ``block_rotation`` (summed absolute turns, degrees). ``states (T, 5)``; ``infos``: the T - 1 step infos."""
        xy = np.asarray(states, dtype=np.float64)[:, 2:4] * ARENA_PX
        turns = np.abs(wrap_angle(np.diff(np.asarray(states, dtype=np.float64)[:, 4])))
        return {
            "contact_fraction": float(np.mean([bool(i.get("contact", False)) for i in infos])) if infos else 0.0,
            "block_displacement": float(np.linalg.norm(xy[-1] - xy[0])),
            "block_path": float(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum()),
            "block_rotation": float(np.degrees(turns.sum())),
        }


KEYPOINT_WIDTH = 24
"""Width of :func:`keypoint_latents`: agent (2) + the T's 8 corners (16), zero-padded to 24."""


def keypoint_latents(states: np.ndarray) -> np.ndarray:
    """Push-T states ``(..., 5)`` -> ``(..., 24)`` float32 latents of perfect perception: the agent's position and
    the T's 8 corners (arena units), centred on the table and scaled by 4 (``(x - 0.5) * 4``), zero-padded to 24.

    Unlike the raw state, the corners carry the block's angle without its wrap-around at +-pi, and distances between
    latents follow the pose error (the env's ``distance`` is the mean corner distance)."""
    s = np.asarray(states, dtype=np.float64)
    if s.shape[-1] != 5:
        raise ValueError(f"keypoint_latents states shape {s.shape} is invalid: expected (..., 5) Push-T states")
    c, si = np.cos(s[..., 4:5]), np.sin(s[..., 4:5])  # (..., 1)
    x = T_CORNERS_PX[:, 0] * c - T_CORNERS_PX[:, 1] * si + s[..., 2:3] * ARENA_PX  # (..., 8) px
    y = T_CORNERS_PX[:, 0] * si + T_CORNERS_PX[:, 1] * c + s[..., 3:4] * ARENA_PX
    corners = np.stack([x, y], axis=-1).reshape(*s.shape[:-1], 16) / ARENA_PX  # (..., 8, 2) -> (..., 16)
    out = np.zeros((*s.shape[:-1], KEYPOINT_WIDTH), dtype=np.float32)
    out[..., :18] = (np.concatenate([s[..., :2], corners], axis=-1) - 0.5) * 4.0
    return out
