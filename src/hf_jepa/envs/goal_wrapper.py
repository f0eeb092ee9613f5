"""Plug any gymnasium env with ``rgb_array`` rendering and a ``Box`` action space into collection and planning.

The contract shared by every env that the data collector and the planners use (Two-Rooms has it natively):

- ``obs``: ``uint8 (H, W, 3)`` image
- ``info["state"]``: float32 (S,) low-dimensional state (for probes, metrics, and the ``observation.state`` column)
- ``info["goal"]``: ``uint8 (H, W, 3)`` goal image; ``info["goal_state"]``: float32 (S,)
- ``info["distance"]``: float, distance from state to goal state; ``info["success"]``: ``distance < success_radius``

:class:`GoalImageEnv` adds it to an env that lacks it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

logger = logging.getLogger(__name__)

StateFn = Callable[[gym.Env, Any, dict], np.ndarray]
"""``state_fn(env, obs, info) -> float32 (S,)``: the low-dimensional state after a reset/step."""
GoalFn = Callable[[gym.Env, np.random.Generator], tuple[np.ndarray, np.ndarray]]
"""``goal_fn(env, rng) -> (goal image uint8 (H, W, 3), goal state (S,))``, called right after ``reset``."""
DistanceFn = Callable[[np.ndarray, np.ndarray], float]
"""``distance_fn(state (S,), goal_state (S,)) -> float``."""


def resize_image(image: np.ndarray, size: int | None) -> np.ndarray:
    """Resize ``uint8 (H, W, 3)`` to ``uint8 (size, size, 3)``, bilinear + antialias (None / same size: unchanged)."""
    if size is None or image.shape[:2] == (size, size):
        return image
    import torch  # lazy: the envs themselves need only numpy + gymnasium
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()  # (1, 3, H, W)
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()  # (size, size, 3)


def default_state_fn(env: gym.Env, obs: Any, info: dict) -> np.ndarray:
    """``info["state"]`` if present, else a 1-D vector observation, else ``obs["state" | "agent_pos" | "proprio"]``."""
    if "state" in info:
        return np.asarray(info["state"], dtype=np.float32).reshape(-1)
    if isinstance(obs, np.ndarray) and obs.ndim == 1:
        return obs.astype(np.float32)
    if isinstance(obs, dict):
        for key in ("state", "agent_pos", "proprio"):
            if key in obs:
                return np.asarray(obs[key], dtype=np.float32).reshape(-1)
    raise ValueError(
        f"cannot infer a state for {type(env.unwrapped).__name__}: obs is {type(obs).__name__} "
        "and info has no 'state'; pass state_fn=lambda env, obs, info: ..."
    )


def l2_distance(state: np.ndarray, goal_state: np.ndarray) -> float:
    """Euclidean distance between two states (S,)."""
    return float(np.linalg.norm(np.asarray(state, np.float64) - np.asarray(goal_state, np.float64)))


class RandomRolloutGoal:
    """A reachable goal for any deep-copyable env: run ``num_steps`` uniform random actions on a copy.

    The copy is taken right after ``reset``, so the goal is reachable from the start by construction
    and the real env is untouched. Requires a finite ``Box`` action space.

    Args:
        num_steps: random steps from the start to the goal.
        state_fn: how to read the state from the copy (default :func:`default_state_fn`).
    """

    def __init__(self, num_steps: int = 20, *, state_fn: StateFn = default_state_fn):
        if not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"RandomRolloutGoal num_steps={num_steps!r} is invalid: expected an int >= 1")
        self.num_steps = num_steps
        self.state_fn = state_fn

    def __call__(self, env: gym.Env, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Returns ``(goal image uint8 (H, W, 3), goal state (S,))``."""
        try:
            sim = copy.deepcopy(env)
        except Exception as e:  # noqa: BLE001 - report which env cannot be copied
            raise TypeError(f"RandomRolloutGoal needs a deep-copyable env; {type(env.unwrapped).__name__}: {e}") from e
        space = sim.action_space
        obs, info = None, {}
        for _ in range(self.num_steps):
            action = rng.uniform(space.low, space.high).astype(space.dtype)
            obs, _, terminated, truncated, info = sim.step(action)
            if terminated or truncated:
                break
        if obs is None:
            raise RuntimeError("RandomRolloutGoal made no step")
        return np.asarray(sim.render()), self.state_fn(sim, obs, info)


class GoalImageEnv(gym.Wrapper):
    """Give any ``rgb_array`` + ``Box``-action env the goal-image contract (see module docstring).

    Args:
        env: the env; must have ``render_mode == "rgb_array"`` and a ``Box`` action space.
        goal_fn: ``goal_fn(env, rng) -> (goal image, goal state)`` called after each reset; ``None``
            reads ``info["goal"]`` and ``info["goal_state"]`` from the wrapped env's reset info.
        state_fn: ``state_fn(env, obs, info) -> (S,)``; default :func:`default_state_fn`.
        distance_fn: ``distance_fn(state, goal_state) -> float``; default L2.
        success_radius: success when ``distance < success_radius``.
        image_size: resize observation and goal images to ``(image_size, image_size)``; None keeps the render size.
        terminate_on_success: end the episode on success.

    ``reset(seed=s)`` seeds both the wrapped env and the goal RNG: same seed, same start and goal.
    The original observation is kept in ``info["raw_obs"]``.
    """

    def __init__(
        self,
        env: gym.Env,
        *,
        goal_fn: GoalFn | None = None,
        state_fn: StateFn = default_state_fn,
        distance_fn: DistanceFn = l2_distance,
        success_radius: float,
        image_size: int | None = None,
        terminate_on_success: bool = True,
    ):
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError(f"GoalImageEnv env.render_mode={env.render_mode!r} is invalid: expected 'rgb_array'")
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"GoalImageEnv env.action_space={env.action_space!r} is invalid: expected a gymnasium Box")
        if not success_radius > 0:
            raise ValueError(f"GoalImageEnv success_radius={success_radius!r} is invalid: expected a positive float")
        if image_size is not None and (not isinstance(image_size, int) or image_size < 8):
            raise ValueError(f"GoalImageEnv image_size={image_size!r} is invalid: expected an int >= 8 or None")
        self.goal_fn = goal_fn
        self.state_fn = state_fn
        self.distance_fn = distance_fn
        self.success_radius = float(success_radius)
        self.image_size = image_size
        self.terminate_on_success = terminate_on_success
        self._goal_rng: np.random.Generator | None = None
        self._goal_image: np.ndarray | None = None
        self._goal_state: np.ndarray | None = None
        if image_size is not None:
            shape = (image_size, image_size, 3)
        else:  # probe the render size once
            env.reset()
            shape = np.asarray(env.render()).shape
        self.observation_space = gym.spaces.Box(0, 255, shape=shape, dtype=np.uint8)

    def _image(self) -> np.ndarray:
        return resize_image(np.asarray(self.env.render(), dtype=np.uint8), self.image_size)

    def _contract(self, obs: Any, info: dict) -> dict:
        state = self.state_fn(self.env, obs, info)
        distance = float(self.distance_fn(state, self._goal_state))
        out = dict(info)
        out.update(
            raw_obs=obs,
            state=np.asarray(state, dtype=np.float32),
            goal=self._goal_image.copy(),
            goal_state=self._goal_state.copy(),
            distance=distance,
            success=distance < self.success_radius,
        )
        return out

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Reset the env and draw a goal. Returns ``(image uint8 (H, W, 3), info)`` with the contract keys."""
        obs, info = self.env.reset(seed=seed, options=options)
        if seed is not None:
            self._goal_rng = np.random.default_rng(seed)
        elif self._goal_rng is None:
            self._goal_rng = np.random.default_rng()
        if self.goal_fn is None:
            if "goal" not in info or "goal_state" not in info:
                raise KeyError(
                    f"{type(self.env.unwrapped).__name__}.reset info has no 'goal'/'goal_state'; "
                    "pass goal_fn=RandomRolloutGoal(...) or your own goal_fn"
                )
            goal_image, goal_state = info["goal"], info["goal_state"]
        else:
            goal_image, goal_state = self.goal_fn(self.env, self._goal_rng)
        self._goal_image = resize_image(np.asarray(goal_image, dtype=np.uint8), self.image_size)
        self._goal_state = np.asarray(goal_state, dtype=np.float32).reshape(-1)
        return self._image(), self._contract(obs, info)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Step the env. Returns ``(image uint8 (H, W, 3), reward, terminated, truncated, info)``."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = self._contract(obs, info)
        terminated = bool(terminated or (self.terminate_on_success and info["success"]))
        return self._image(), float(reward), terminated, bool(truncated), info

    def render(self) -> np.ndarray:
        """Current image, ``uint8 (H, W, 3)`` (resized to ``image_size`` if set)."""
        return self._image()


BUILTIN_ENVS = {"two_rooms": "hf_jepa/TwoRooms-v0", "pusht": "hf_jepa/PushT-v0"}
"""Short names of the built-in goal envs -> their gymnasium ids (either spelling works in :func:`make_goal_env`)."""


def check_env_name(name: str) -> str:
    """``name`` if :func:`make_goal_env` can build it (a built-in short name or id, or a registered gymnasium id),
    else a ValueError listing the built-in names and the ``hf_jepa/`` ids."""
    if name in BUILTIN_ENVS or name in BUILTIN_ENVS.values() or name in gym.registry:
        return name
    ours = sorted(k for k in gym.registry if k.startswith("hf_jepa/"))
    raise ValueError(f"env={name!r} is unknown: expected one of the built-in envs {sorted(BUILTIN_ENVS)}, "
                     f"an hf_jepa id {ours}, or a registered gymnasium id with rgb_array rendering "
                     "(import its package first)")


def make_goal_env(
    name: str,
    *,
    image_size: int | None = 64,
    success_radius: float | None = None,
    goal_steps: int = 20,
    terminate_on_success: bool = True,
    **kwargs: Any,
) -> gym.Env:
    """Build an env with the goal-image contract.

    Args:
        name: ``"two_rooms"`` or ``"pusht"`` (built in, native contract; their ids ``hf_jepa/TwoRooms-v0`` and
            ``hf_jepa/PushT-v0`` too) or any gymnasium id (e.g. ``"hf_jepa/TwoLinkArm-v0"``, ``"Pendulum-v1"``), made
            with ``render_mode="rgb_array"`` and wrapped in :class:`GoalImageEnv`; its goal comes from ``info`` when
            the env provides one, else from :class:`RandomRolloutGoal` (``goal_steps``). Anything else is a
            ValueError listing the known names (:func:`check_env_name`).
        image_size: observation side in pixels (the built-in envs render natively at this size).
        success_radius: for wrapped envs (default 0.1 in the env's state units); Two-Rooms: its config's; Push-T
            has none (its success is a coverage or pose criterion: ``success_criterion`` and its fields).
        terminate_on_success: end episodes on success (data collection turns this off).
        **kwargs: passed to the env constructor (config fields of the built-in envs) / ``gymnasium.make``.
    """
    check_env_name(name)
    if name in ("two_rooms", BUILTIN_ENVS["two_rooms"]):
        from .two_rooms import TwoRoomsEnv

        if image_size is not None:
            kwargs["image_size"] = image_size
        if success_radius is not None:
            kwargs["success_radius"] = success_radius
        return TwoRoomsEnv(terminate_on_success=terminate_on_success, **kwargs)
    if name in ("pusht", BUILTIN_ENVS["pusht"]):
        from .pusht import PushTGoalEnv

        if success_radius is not None:
            raise ValueError(f"make_goal_env('pusht') success_radius={success_radius!r} is invalid: Push-T succeeds "
                             "by coverage or pose (pass success_criterion='coverage'|'pose', coverage_threshold, "
                             "pose_position_tolerance, pose_angle_tolerance)")
        if image_size is not None:
            kwargs["image_size"] = image_size
        return PushTGoalEnv(terminate_on_success=terminate_on_success, **kwargs)
    env = gym.make(name, render_mode="rgb_array", **kwargs)
    _, info = env.reset(seed=0)
    goal_fn = None if ("goal" in info and "goal_state" in info) else RandomRolloutGoal(goal_steps)
    return GoalImageEnv(
        env,
        goal_fn=goal_fn,
        success_radius=0.1 if success_radius is None else success_radius,
        image_size=image_size,
        terminate_on_success=terminate_on_success,
    )
