"""Two-Rooms: goal-conditioned point-agent navigation from top-down RGB images.

In the manner of PLDM (Sobal et al., 2025) / EB-JEPA's ``DotWall``: a square arena split by a
vertical wall with one door; a point agent drawn as a bright disk; continuous 2-D moves.

Coordinates (the *state* convention)
------------------------------------
``state = (x, y)`` in **world units in [0, 1]**, float32, independent of the image size:
``x`` grows to the right (image column), ``y`` grows downwards (image row). Pixel ``(row i, col j)``
of an ``S x S`` image covers ``[j/S, (j+1)/S) x [i/S, (i+1)/S)``, so ``state * S`` is the agent's
position in continuous pixel units and ``floor(state * S)`` the pixel it is drawn in.

Default geometry (``TwoRoomsConfig()``; at 64 px one world unit = 64 px)
------------------------------------------------------------------------
- outer border wall: 0.0625 thick (4 px) on every side -> interior ``[0.0625, 0.9375]^2``
- middle wall: ``x in [0.46875, 0.53125]`` (4 px wide, centred at 0.5)
- door: gap in the middle wall at ``y in [0.25, 0.4375]`` (12 px, centred at 0.34375)
- agent: disk of radius 0.03125 (2 px); the *centre* is confined to
  left room ``x in [0.09375, 0.4375]``, right room ``x in [0.5625, 0.90625]``, ``y in [0.09375, 0.90625]``,
  and passes the wall only with ``y in [0.28125, 0.40625]`` (the door minus the radius)
- actions: ``Box(-1, 1, (2,))``; an action is projected onto the unit L2 ball and scaled by
  ``max_norm = 0.03`` (1.9 px), so one step moves at most 0.03: crossing one room (0.34) takes
  ~12 steps, corner to corner through the door ~35
- success: ``||state - goal_state||_2 < success_radius = 0.05`` (3.2 px); ``max_episode_steps = 100``

Dynamics: a move is split into sub-steps of at most ``substep`` world units; in each sub-step the
x-part then the y-part is applied and any part that would enter a wall is stopped at the wall
surface (the agent slides along walls; the door lets it through). Fully deterministic: the only
randomness is the start/goal sampling in :meth:`TwoRoomsEnv.reset`, drawn from the env's seeded
``np_random``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from .config import resolve_env_config, unit_ball_action

logger = logging.getLogger(__name__)

Color = tuple[int, int, int]


@dataclass(frozen=True)
class TwoRoomsConfig:
    """Geometry, dynamics and rendering of :class:`TwoRoomsEnv`. All lengths in world units ([0, 1]).

    Validated at construction: errors name the field, its value and what was expected.
    """

    image_size: int = 64
    """Side of the square RGB observation, pixels."""
    border_width: float = 0.0625
    """Thickness of the outer wall."""
    wall_center_x: float = 0.5
    """x of the centre of the dividing wall."""
    wall_width: float = 0.0625
    """Thickness of the dividing wall."""
    door_center_y: float = 0.34375
    """y of the centre of the door (gap in the dividing wall)."""
    door_width: float = 0.1875
    """Height of the door gap; must exceed ``2 * agent_radius``."""
    agent_radius: float = 0.03125
    """Radius of the agent disk; the agent's centre keeps this distance from every wall."""
    max_norm: float = 0.03
    """Largest displacement per step (L2), reached by a unit-norm action."""
    substep: float = 0.005
    """Collision resolution: largest sub-move; must be below the wall and border thickness."""
    success_radius: float = 0.05
    """Success when the L2 distance between state and goal state is below this."""
    max_episode_steps: int = 100
    """Episodes are truncated after this many steps."""
    other_room_goal_prob: float = 1.0
    """Probability that a sampled goal lies in the other room than the start (PLDM: always)."""
    min_goal_distance: float = 0.1
    """Sampled goals are at least this far from the start."""
    terminate_on_success: bool = True
    """End the episode (``terminated=True``) on success; data collection sets this to False."""
    floor_color: Color = (0, 0, 0)
    wall_color: Color = (120, 120, 140)
    agent_color: Color = (255, 230, 60)
    agent_glow: float = 0.25
    """Std (world units) of a soft halo drawn on the floor around the agent at ``glow_strength`` opacity; 0 disables it.
    PLDM / EB-JEPA draw the agent as a Gaussian dot; a wider halo makes image (and latent) distances grow
    smoothly with the distance between positions instead of saturating once two disks stop overlapping."""
    glow_strength: float = 0.8
    """Peak opacity of the halo, in [0, 1]."""

    def __post_init__(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise ValueError(f"TwoRoomsConfig.{name}={getattr(self, name)!r} is invalid: expected {expected}")

        if not isinstance(self.image_size, int) or self.image_size < 16:
            fail("image_size", "an int >= 16")
        for name in ("border_width", "wall_width", "agent_radius", "max_norm", "substep", "success_radius"):
            if not (isinstance(getattr(self, name), (int, float)) and getattr(self, name) > 0):
                fail(name, "a positive float")
        if not 0 < self.border_width < 0.25:
            fail("border_width", "in (0, 0.25)")
        half = self.wall_width / 2
        inner_lo, inner_hi = self.border_width, 1.0 - self.border_width
        room = 2 * self.agent_radius + 1e-6
        if not (inner_lo + room <= self.wall_center_x - half and self.wall_center_x + half + room <= inner_hi):
            fail(
                "wall_center_x",
                f"a wall leaving room for the agent on both sides of the interior [{inner_lo}, {inner_hi}]",
            )
        if self.door_width <= 2 * self.agent_radius:
            fail("door_width", f"> 2 * agent_radius = {2 * self.agent_radius}")
        if not (
            inner_lo <= self.door_center_y - self.door_width / 2
            and self.door_center_y + self.door_width / 2 <= inner_hi
        ):
            fail("door_center_y", f"a door [y - door_width/2, y + door_width/2] inside [{inner_lo}, {inner_hi}]")
        if self.substep >= min(self.wall_width, self.border_width):
            fail("substep", f"< min(wall_width, border_width) = {min(self.wall_width, self.border_width)}")
        if not isinstance(self.max_episode_steps, int) or self.max_episode_steps < 1:
            fail("max_episode_steps", "an int >= 1")
        if not 0.0 <= self.other_room_goal_prob <= 1.0:
            fail("other_room_goal_prob", "a probability in [0, 1]")
        if not 0.0 <= self.min_goal_distance < 0.5:
            fail("min_goal_distance", "in [0, 0.5)")
        if not (isinstance(self.agent_glow, (int, float)) and 0.0 <= self.agent_glow <= 0.5):
            fail("agent_glow", "a float in [0, 0.5] (0 disables the halo)")
        if not (isinstance(self.glow_strength, (int, float)) and 0.0 <= self.glow_strength <= 1.0):
            fail("glow_strength", "a float in [0, 1]")
        for name in ("floor_color", "wall_color", "agent_color"):
            c = getattr(self, name)
            if len(c) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in c):
                fail(name, "an RGB triple of ints in [0, 255]")

    # ---- derived geometry (agent-centre coordinates) ----
    @property
    def center_bounds(self) -> tuple[float, float]:
        """(lo, hi): the agent centre stays in ``[lo, hi]`` on both axes (outer walls minus radius)."""
        return self.border_width + self.agent_radius, 1.0 - self.border_width - self.agent_radius

    @property
    def wall_slab(self) -> tuple[float, float]:
        """(x_lo, x_hi): the dividing wall inflated by the agent radius; the centre is never strictly
        inside it unless its y is within :attr:`door_span`."""
        half = self.wall_width / 2
        return self.wall_center_x - half - self.agent_radius, self.wall_center_x + half + self.agent_radius

    @property
    def door_span(self) -> tuple[float, float]:
        """(y_lo, y_hi): the y range in which the agent centre passes the door."""
        half = self.door_width / 2
        return self.door_center_y - half + self.agent_radius, self.door_center_y + half - self.agent_radius

    def room_box(self, room: int) -> tuple[float, float, float, float]:
        """Agent-centre box ``(x_lo, x_hi, y_lo, y_hi)`` of room 0 (left) or 1 (right)."""
        lo, hi = self.center_bounds
        slab_lo, slab_hi = self.wall_slab
        return (lo, slab_lo, lo, hi) if room == 0 else (slab_hi, hi, lo, hi)


class TwoRoomsEnv(gym.Env):
    """Goal-conditioned Two-Rooms navigation; observations are RGB images.

    - observation: ``uint8 (H, W, 3)`` top-down image, ``H = W = config.image_size``
    - action: ``float32 (2,)`` in ``[-1, 1]``; projected to the unit L2 ball; displacement ``= max_norm * action``
    - reward: ``-distance`` to the goal after the step (dense; planners ignore it)
    - ``reset`` info: ``state (2,)``, ``goal_state (2,)``, ``goal`` (uint8 image with the agent at the goal),
      ``distance``, ``success``; ``step`` info: ``state``, ``goal_state``, ``goal``, ``distance``, ``success``
    - terminated on success (``config.terminate_on_success``); truncated after ``config.max_episode_steps``

    Args:
        config: the geometry; ``None`` means ``TwoRoomsConfig()``.
        render_mode: only ``"rgb_array"`` (``render()`` returns the current observation).
        **overrides: any :class:`TwoRoomsConfig` field, e.g. ``gymnasium.make("hf_jepa/TwoRooms-v0", image_size=128)``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    state_names = ("x", "y")
    action_names = ("dx", "dy")
    robot_type = "point_agent"

    def __init__(
        self, config: TwoRoomsConfig | None = None, *, render_mode: str | None = "rgb_array", **overrides: Any
    ):
        super().__init__()
        config = resolve_env_config("TwoRoomsEnv", TwoRoomsConfig, config, overrides, render_mode)
        self.config = config
        self.render_mode = render_mode
        s = config.image_size
        self.observation_space = gym.spaces.Box(0, 255, shape=(s, s, 3), dtype=np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._background = self._render_background()
        self._floor = np.all(self._background == np.asarray(self.config.floor_color, np.float32), axis=-1)  # (S, S)
        # pixel-centre coordinates in world units, for drawing the agent: (S,)
        self._pix = (np.arange(s, dtype=np.float64) + 0.5) / s
        self._state = np.zeros(2, dtype=np.float64)
        self._goal_state = np.zeros(2, dtype=np.float64)
        self._goal_image = self._background.copy()
        self._steps = 0

    # ------------------------------------------------------------------ geometry
    def is_free(self, state: np.ndarray) -> bool:
        """Whether an agent centre ``state (2,)`` is a legal position (inside a room or in the door)."""
        x, y = float(state[0]), float(state[1])
        lo, hi = self.config.center_bounds
        if not (lo <= x <= hi and lo <= y <= hi):
            return False
        slab_lo, slab_hi = self.config.wall_slab
        door_lo, door_hi = self.config.door_span
        return not (slab_lo < x < slab_hi) or door_lo <= y <= door_hi

    def room_of(self, state: np.ndarray) -> int:
        """0 for the left room, 1 for the right room (the door counts as the side of its centre)."""
        return int(float(state[0]) >= self.config.wall_center_x)

    def move(self, state: np.ndarray, displacement: np.ndarray) -> np.ndarray:
        """Pure dynamics: the state ``(2,)`` reached from ``state`` by ``displacement (2,)`` (world units)."""
        cfg = self.config
        lo, hi = cfg.center_bounds
        slab_lo, slab_hi = cfg.wall_slab
        door_lo, door_hi = cfg.door_span
        x, y = float(state[0]), float(state[1])
        d = np.asarray(displacement, dtype=np.float64)
        n_sub = max(1, math.ceil(float(np.linalg.norm(d)) / cfg.substep))
        dx, dy = float(d[0]) / n_sub, float(d[1]) / n_sub
        for _ in range(n_sub):
            nx = min(max(x + dx, lo), hi)
            if not door_lo <= y <= door_hi:  # outside the door the wall blocks x-motion
                if x <= slab_lo < nx:
                    nx = slab_lo
                elif nx < slab_hi <= x:
                    nx = slab_hi
            ny = min(max(y + dy, lo), hi)
            if slab_lo < nx < slab_hi:  # inside the door passage: y stays within the door
                ny = min(max(ny, door_lo), door_hi)
            x, y = nx, ny
        return np.array([x, y], dtype=np.float64)

    def sample_state(self, room: int | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
        """A uniform agent position ``(2,)`` float64 in ``room`` (0 left, 1 right; None: either)."""
        rng = rng if rng is not None else self.np_random
        room = int(rng.integers(2)) if room is None else room
        x_lo, x_hi, y_lo, y_hi = self.config.room_box(room)
        return np.array([rng.uniform(x_lo, x_hi), rng.uniform(y_lo, y_hi)], dtype=np.float64)

    # ------------------------------------------------------------------ rendering
    def _render_background(self) -> np.ndarray:
        cfg = self.config
        s = cfg.image_size
        c = (np.arange(s) + 0.5) / s  # pixel centres, (S,)
        yy, xx = np.meshgrid(c, c, indexing="ij")  # (S, S) each: row -> y, col -> x
        outer = (
            (xx < cfg.border_width)
            | (xx > 1 - cfg.border_width)
            | (yy < cfg.border_width)
            | (yy > 1 - cfg.border_width)
        )
        half = cfg.wall_width / 2
        in_wall = np.abs(xx - cfg.wall_center_x) < half
        in_door = np.abs(yy - cfg.door_center_y) < cfg.door_width / 2
        walls = outer | (in_wall & ~in_door)
        img = np.empty((s, s, 3), dtype=np.float32)
        img[:] = np.asarray(cfg.floor_color, dtype=np.float32)
        img[walls] = np.asarray(cfg.wall_color, dtype=np.float32)
        return img

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """The image ``uint8 (H, W, 3)`` with the agent at ``state (2,)``; does not change the env."""
        cfg = self.config
        s = cfg.image_size
        r_px = cfg.agent_radius * s
        dx = (self._pix - float(state[0])) * s  # (S,) column offsets in pixels
        dy = (self._pix - float(state[1])) * s  # (S,) row offsets in pixels
        dist = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)  # (S, S)
        alpha = np.clip(r_px + 0.5 - dist, 0.0, 1.0)  # anti-aliased coverage, (S, S)
        if cfg.agent_glow > 0:
            halo = cfg.glow_strength * np.exp(-0.5 * (dist / (cfg.agent_glow * s)) ** 2)  # (S, S)
            halo = np.where(self._floor, halo, 0.0)  # walls stay crisp
            alpha = np.maximum(alpha, halo)
        alpha = alpha[..., None]  # (S, S, 1)
        img = self._background * (1 - alpha) + np.asarray(cfg.agent_color, dtype=np.float32) * alpha
        return np.round(img).astype(np.uint8)

    def render(self) -> np.ndarray:
        """The current observation, ``uint8 (H, W, 3)``."""
        return self.render_state(self._state)

    # ------------------------------------------------------------------ gym API
    @property
    def state(self) -> np.ndarray:
        """Current agent position, float32 (2,), world units (see module docstring)."""
        return self._state.astype(np.float32)

    @property
    def goal_state(self) -> np.ndarray:
        """Current goal position, float32 (2,), world units."""
        return self._goal_state.astype(np.float32)

    def _check_option(self, name: str, value: Any) -> np.ndarray:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
        if arr.shape != (2,) or not np.all(np.isfinite(arr)) or not self.is_free(arr):
            raise ValueError(
                f"TwoRoomsEnv.reset options[{name!r}]={value!r} is invalid: expected a free (x, y) in world units, "
                f"e.g. inside {self.config.room_box(0)} (x_lo, x_hi, y_lo, y_hi) or {self.config.room_box(1)}"
            )
        return arr

    def _info(self) -> dict[str, Any]:
        distance = float(np.linalg.norm(self._state - self._goal_state))
        return {
            "state": self.state,
            "goal_state": self.goal_state,
            "goal": self._goal_image.copy(),  # fresh per call (gymnasium: infos must not share objects)
            "distance": distance,
            "success": distance < self.config.success_radius,
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Sample (or take from ``options``) a start and a goal.

        Args:
            seed: seeds ``np_random`` (gymnasium convention); the same seed gives the same episode.
            options: optional ``{"start": (x, y), "goal": (x, y)}`` in world units; either may be omitted.

        Returns:
            ``(obs uint8 (H, W, 3), info)`` with ``info["goal"]`` the goal image ``uint8 (H, W, 3)``.
        """
        super().reset(seed=seed)
        options = options or {}
        unknown = sorted(set(options) - {"start", "goal"})
        if unknown:
            raise ValueError(f"TwoRoomsEnv.reset got unknown options {unknown}: expected 'start' and/or 'goal'")
        rng = self.np_random
        start = self._check_option("start", options["start"]) if options.get("start") is not None else None
        goal = self._check_option("goal", options["goal"]) if options.get("goal") is not None else None
        if start is None:
            start = self.sample_state(None if goal is None else self._sample_room_near(goal), rng)
        if goal is None:
            room = 1 - self.room_of(start) if rng.random() < self.config.other_room_goal_prob else self.room_of(start)
            for _ in range(1000):
                goal = self.sample_state(room, rng)
                if np.linalg.norm(goal - start) >= self.config.min_goal_distance:
                    break
        self._state, self._goal_state = start, goal
        self._goal_image = self.render_state(goal)
        self._steps = 0
        return self.render(), self._info()

    def _sample_room_near(self, goal: np.ndarray) -> int:
        """Room for a start sampled given a fixed goal (respecting ``other_room_goal_prob``)."""
        other = self.np_random.random() < self.config.other_room_goal_prob
        return 1 - self.room_of(goal) if other else self.room_of(goal)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Move by ``max_norm * action`` (action ``(2,)``, projected onto the unit L2 ball); walls block."""
        a = unit_ball_action(action, "TwoRoomsEnv")
        self._state = self.move(self._state, a * self.config.max_norm)
        self._steps += 1
        info = self._info()
        terminated = bool(info["success"] and self.config.terminate_on_success)
        truncated = self._steps >= self.config.max_episode_steps
        return self.render(), -info["distance"], terminated, truncated, info
