"""Meta's V-JEPA 2-AC data conventions (facebookresearch/vjepa2 app/vjepa_droid/droid.py and transforms.py), for
training a world model the way Meta trained on DROID: actions computed from consecutive states, frames sampled at a
frame rate, and a centre crop of the frames.

- `state_delta_actions`: ``"pose"`` (Meta's `poses_to_diffs`: position delta, the relative rotation
  ``R_{t+1} R_t^T`` as extrinsic xyz Euler angles, gripper delta, for 7-D states ``[x, y, z, rx, ry, rz, gripper]``)
  or ``"linear"`` (every state dimension's difference, for states that are positions).
- `fps_frame_skip`: Meta's DROID loader samples every ``ceil(video fps / fps)``-th frame (15 fps at 4 fps -> 4).
- `CenterCropTransform`: Meta's DROID recipe draws a RandomResizedCrop with area scale 1.777 (> 1), which always
  falls back to torchvision's central crop: the widest centred crop whose aspect is inside the allowed range
  (0.75, 1.35), resized to ``size x size``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from hf_jepa.data.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["ACTION_SOURCES", "CenterCropTransform", "euler_xyz_to_matrix", "fps_frame_skip", "matrix_to_euler_xyz",
           "state_delta_actions"]

#: `--actions` choices of the world-model script: the dataset's action column (summed over each frame skip),
#: differences of consecutive states, or Meta's DROID pose differences.
ACTION_SOURCES = ("dataset", "state_delta", "pose_delta")


def euler_xyz_to_matrix(angles: Tensor) -> Tensor:
    """(..., 3) extrinsic xyz Euler angles (radians; scipy's ``Rotation.from_euler("xyz", ...)``) -> (..., 3, 3)
    rotation matrices ``Rz(c) @ Ry(b) @ Rx(a)``."""
    a, b, c = angles.unbind(-1)
    ca, sa, cb, sb, cc, sc = a.cos(), a.sin(), b.cos(), b.sin(), c.cos(), c.sin()
    rows = [cb * cc, sa * sb * cc - ca * sc, ca * sb * cc + sa * sc,
            cb * sc, sa * sb * sc + ca * cc, ca * sb * sc - sa * cc,
            -sb, sa * cb, ca * cb]
    return torch.stack(rows, -1).unflatten(-1, (3, 3))  # (..., 9) -> (..., 3, 3)


def matrix_to_euler_xyz(matrix: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) extrinsic xyz Euler angles (scipy's ``as_euler("xyz")`` away from
    gimbal lock: the middle angle in [-pi/2, pi/2])."""
    b = torch.asin((-matrix[..., 2, 0]).clamp(-1.0, 1.0))
    a = torch.atan2(matrix[..., 2, 1], matrix[..., 2, 2])
    c = torch.atan2(matrix[..., 1, 0], matrix[..., 0, 0])
    return torch.stack([a, b, c], -1)


def state_delta_actions(states: Tensor, layout: Literal["pose", "linear"] = "pose") -> Tensor:
    """Actions from consecutive states of a window: ``actions[..., t, :]`` moves ``states[..., t]`` to
    ``states[..., t + 1]``; the last row (no next state) is zeros, as the window's unused last action.

    Args:
        states: (..., T, S) float states; for ``layout="pose"`` S = 7: position xyz, extrinsic xyz Euler angles,
            gripper (Meta's DROID ``cartesian_position`` + ``gripper_position``).
        layout: ``"pose"``: Meta's ``poses_to_diffs`` (position delta, relative rotation ``R_{t+1} R_t^T`` as
            Euler angles, gripper delta); ``"linear"``: ``states[t + 1] - states[t]`` in every dimension.

    Returns:
        (..., T, S) actions (S = 7 for ``"pose"``).
    """
    if states.dim() < 2 or states.shape[-2] < 2:
        raise ValueError(f"states shape {tuple(states.shape)}: expected (..., T, S) with T >= 2")
    states = states.float()
    if layout == "linear":
        deltas = states[..., 1:, :] - states[..., :-1, :]  # (..., T-1, S)
    elif layout == "pose":
        if states.shape[-1] != 7:
            raise ValueError(f"states width {states.shape[-1]}: expected 7 (xyz, Euler xyz, gripper) for "
                             "layout='pose'; use layout='linear' (--actions state_delta) for other states")
        rot = euler_xyz_to_matrix(states[..., 3:6])  # (..., T, 3, 3)
        relative = rot[..., 1:, :, :] @ rot[..., :-1, :, :].transpose(-1, -2)  # R_{t+1} R_t^T, (..., T-1, 3, 3)
        deltas = torch.cat([states[..., 1:, :3] - states[..., :-1, :3], matrix_to_euler_xyz(relative),
                            states[..., 1:, 6:] - states[..., :-1, 6:]], dim=-1)  # (..., T-1, 7)
    else:
        raise ValueError(f"layout={layout!r}: expected 'pose' or 'linear'")
    return torch.cat([deltas, torch.zeros_like(deltas[..., :1, :])], dim=-2)  # (..., T, S)


def fps_frame_skip(dataset_fps: float, fps: float) -> int:
    """Meta's DROID frame step ``ceil(dataset_fps / fps)`` (15 Hz at 4 fps -> every 4th frame).

    Raises:
        ValueError: `fps` is not positive or exceeds the dataset's rate (it cannot provide it).
    """
    if not fps > 0:
        raise ValueError(f"fps={fps}: expected > 0")
    if fps > dataset_fps:
        raise ValueError(f"fps={fps:g}: the dataset runs at {dataset_fps:g} fps and cannot provide {fps:g} fps; "
                         "expected fps <= the dataset's rate")
    return int(math.ceil(dataset_fps / fps))


@dataclass(frozen=True)
class CenterCropTransform:
    """uint8 (..., C, H, W) -> float32 (..., C, size, size): the centred crop of the widest aspect ratio inside
    `aspect_ratio` (w / h; the whole frame when its ratio is inside), bilinear antialiased resize to a square,
    normalize. Meta's DROID frames (RandomResizedCrop scale 1.777, ratio (0.75, 1.35): always this fallback).
    Deterministic; `generator` is accepted and ignored (interchangeable with the other transforms)."""

    size: int
    aspect_ratio: tuple[float, float] = (0.75, 1.35)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def crop_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, h, w) of the crop, as torchvision's RandomResizedCrop fallback."""
        ratio = width / height
        low, high = self.aspect_ratio
        if ratio < low:
            w, h = width, int(round(width / low))
        elif ratio > high:
            h, w = height, int(round(height * high))
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        top, left, h, w = self.crop_box(x.shape[-2], x.shape[-1])
        x = x[..., top:top + h, left:left + w]  # (..., C, h, w)
        lead = x.shape[:-3]
        flat = x.reshape(-1, *x.shape[-3:]).float()  # (N, C, h, w)
        flat = F.interpolate(flat, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(self.mean).view(1, -1, 1, 1) * 255.0
        std = torch.tensor(self.std).view(1, -1, 1, 1) * 255.0
        return ((flat - mean) / std).reshape(*lead, *flat.shape[-3:])  # (..., C, size, size)
