"""A tiny planar 2-link arm ("reacher"-like), the second toy env that exercises :class:`GoalImageEnv`.

Unlike Two-Rooms it follows the plain gymnasium contract: the observation is the joint-angle
vector, the image comes from ``render()``, and there is no goal in ``info``. Wrapped in
:class:`hf_jepa.envs.GoalImageEnv` it becomes an image-observation, goal-image env.

- state / observation: joint angles ``(theta1, theta2)`` float32 (2,), radians, wrapped to ``[-pi, pi)``
- action: ``Box(-1, 1, (2,))``, joint-angle increments ``max_delta * action`` (clipped per joint)
- render: ``uint8 (S, S, 3)``; the base sits at the image centre, links of length ``link_lengths``
  (world units, the image spans ``[0, 1]^2``, y downwards), a bright disk at the fingertip
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def _wrap(theta: np.ndarray) -> np.ndarray:
    return (theta + np.pi) % (2 * np.pi) - np.pi


class TwoLinkArmEnv(gym.Env):
    """Planar 2-link arm; observation = joint angles (2,), images via ``render()``.

    Args:
        image_size: side of the rendered image, pixels.
        link_lengths: the two link lengths in world units (the image spans [0, 1]).
        max_delta: largest joint increment per step, radians.
        max_episode_steps: truncation horizon.
        render_mode: ``"rgb_array"`` or None.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        *,
        image_size: int = 64,
        link_lengths: tuple[float, float] = (0.22, 0.18),
        max_delta: float = 0.15,
        max_episode_steps: int = 100,
        render_mode: str | None = "rgb_array",
    ):
        super().__init__()
        if not isinstance(image_size, int) or image_size < 16:
            raise ValueError(f"TwoLinkArmEnv image_size={image_size!r} is invalid: expected an int >= 16")
        if len(link_lengths) != 2 or not all(0 < v for v in link_lengths) or sum(link_lengths) >= 0.5:
            raise ValueError(
                f"TwoLinkArmEnv link_lengths={link_lengths!r} is invalid: expected 2 positive floats, sum < 0.5"
            )
        if not 0 < max_delta <= np.pi:
            raise ValueError(f"TwoLinkArmEnv max_delta={max_delta!r} is invalid: expected a float in (0, pi]")
        if not isinstance(max_episode_steps, int) or max_episode_steps < 1:
            raise ValueError(f"TwoLinkArmEnv max_episode_steps={max_episode_steps!r} is invalid: expected an int >= 1")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"TwoLinkArmEnv render_mode={render_mode!r} is invalid: expected 'rgb_array' or None")
        self.image_size = image_size
        self.link_lengths = (float(link_lengths[0]), float(link_lengths[1]))
        self.max_delta = float(max_delta)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-np.pi, np.pi, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        c = (np.arange(image_size) + 0.5) / image_size
        self._yy, self._xx = np.meshgrid(c, c, indexing="ij")  # (S, S) world coords of pixel centres
        self._theta = np.zeros(2, dtype=np.float64)
        self._steps = 0

    def joints(self, theta: np.ndarray) -> np.ndarray:
        """Base, elbow and fingertip positions ``(3, 2)`` in world units for angles ``theta (2,)``."""
        l1, l2 = self.link_lengths
        base = np.array([0.5, 0.5])
        elbow = base + l1 * np.array([np.cos(theta[0]), np.sin(theta[0])])
        tip = elbow + l2 * np.array([np.cos(theta[0] + theta[1]), np.sin(theta[0] + theta[1])])
        return np.stack([base, elbow, tip])

    def _segment_dist(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Distance of every pixel centre to the segment ``a-b``, (S, S)."""
        ab = b - a
        t = ((self._xx - a[0]) * ab[0] + (self._yy - a[1]) * ab[1]) / max(float(ab @ ab), 1e-12)
        t = np.clip(t, 0.0, 1.0)
        return np.hypot(self._xx - (a[0] + t * ab[0]), self._yy - (a[1] + t * ab[1]))

    def render_state(self, theta: np.ndarray) -> np.ndarray:
        """Image ``uint8 (S, S, 3)`` of the arm at angles ``theta (2,)``; does not change the env."""
        base, elbow, tip = self.joints(np.asarray(theta, dtype=np.float64))
        px = 1.0 / self.image_size
        img = np.zeros((self.image_size, self.image_size, 3), dtype=np.float32)
        img[:] = (20, 20, 30)
        links = np.minimum(self._segment_dist(base, elbow), self._segment_dist(elbow, tip))
        alpha = np.clip((1.5 * px - links) / px + 0.5, 0, 1)[..., None]
        img = img * (1 - alpha) + np.array([90, 160, 255], np.float32) * alpha
        tip_alpha = np.clip((2.5 * px - np.hypot(self._xx - tip[0], self._yy - tip[1])) / px + 0.5, 0, 1)[..., None]
        img = img * (1 - tip_alpha) + np.array([255, 90, 60], np.float32) * tip_alpha
        return np.round(img).astype(np.uint8)

    def render(self) -> np.ndarray:
        """Current image, ``uint8 (S, S, 3)``."""
        return self.render_state(self._theta)

    def _info(self) -> dict[str, Any]:
        return {"fingertip": self.joints(self._theta)[2].astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Uniform joint angles, or ``options={"state": (theta1, theta2)}``; returns ``(theta (2,), info)``."""
        super().reset(seed=seed)
        if options and options.get("state") is not None:
            self._theta = _wrap(np.asarray(options["state"], dtype=np.float64).reshape(2))
        else:
            self._theta = self.np_random.uniform(-np.pi, np.pi, size=2)
        self._steps = 0
        return self._theta.astype(np.float32), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Add ``max_delta * clip(action, -1, 1)`` to the joint angles."""
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        self._theta = _wrap(self._theta + self.max_delta * a)
        self._steps += 1
        return self._theta.astype(np.float32), 0.0, False, self._steps >= self.max_episode_steps, self._info()
