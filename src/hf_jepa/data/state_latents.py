"""World models with perfect perception: each frame's latent computed from its true state instead of an encoder.

``scripts/train_world_model.py --latents state`` trains the same V-JEPA 2-AC predictor (teacher forcing + rollout)
on one token per frame: Push-T's :func:`~hf_jepa.envs.pusht.keypoint_latents` (the agent and the T's 8 corners)
for 5-D Push-T states, the standardised state itself otherwise. It separates dynamics from perception: a planner
given this model plans toward the goal *state*'s latent. The model folder carries ``state_latents.json``
(:func:`save_state_latents`): the latent kind, its width, the data's action standardisation and the frame skip,
read back by :func:`load_state_latents` so planning uses the same latents and refuses another action unit.

The encoder inside the saved :class:`~hf_jepa.modeling.modeling_easy_vjepa2_ac.JepaWorldModel` is a placeholder of
the latent width with a 1 x 1 frame grid (the AC predictor's config is built from it); it is never run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hf_jepa.data.lerobot import STATE_KEY, episode_states
from hf_jepa.data.lerobot.meta import ACTION_KEY, column_2d, read_info, resolve_dataset_root
from hf_jepa.data.trajectories import LatentEpisodeCache
from hf_jepa.envs.pusht import KEYPOINT_WIDTH, STATE_NAMES, keypoint_latents
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig

__all__ = ["STATE_LATENTS_FILE", "StateLatents", "load_state_latents", "save_state_latents", "state_latent_cache"]

logger = logging.getLogger(__name__)

STATE_LATENTS_FILE = "state_latents.json"


class StateLatents:
    """States ``(..., S)`` -> latents ``(..., D)``: Push-T keypoints (``kind="pusht_keypoints"``, D = 24) or the
    standardised state (``kind="standardized"``, ``(s - mean) / std``, D = S rounded up to an even width)."""

    def __init__(self, kind: str, *, state_dim: int, mean: list[float] | None = None,
                 std: list[float] | None = None) -> None:
        if kind not in ("pusht_keypoints", "standardized"):
            raise ValueError(f"StateLatents kind={kind!r} is invalid: expected 'pusht_keypoints' or 'standardized'")
        if kind == "pusht_keypoints" and state_dim != 5:
            raise ValueError(f"StateLatents kind='pusht_keypoints' needs Push-T's 5-D states, state_dim={state_dim}")
        self.kind, self.state_dim = kind, state_dim
        self.mean = np.asarray(mean if mean is not None else np.zeros(state_dim), dtype=np.float64)
        self.std = np.asarray(std if std is not None else np.ones(state_dim), dtype=np.float64)
        self.width = KEYPOINT_WIDTH if kind == "pusht_keypoints" else state_dim + state_dim % 2

    @classmethod
    def for_dataset(cls, names: list[str] | None, states: list[np.ndarray]) -> StateLatents:
        """Keypoints for Push-T's state names, else standardisation with the data's mean and std."""
        dim = int(states[0].shape[1])
        if names is not None and tuple(names) == STATE_NAMES:
            return cls("pusht_keypoints", state_dim=dim)
        flat = np.concatenate(states)
        return cls("standardized", state_dim=dim, mean=flat.mean(0).tolist(), std=(flat.std(0) + 1e-6).tolist())

    def __call__(self, states: np.ndarray) -> np.ndarray:
        s = np.asarray(states, dtype=np.float64)
        if s.shape[-1] != self.state_dim:
            raise ValueError(f"StateLatents states shape {s.shape} is invalid: expected (..., {self.state_dim})")
        if self.kind == "pusht_keypoints":
            return keypoint_latents(s)
        out = np.zeros((*s.shape[:-1], self.width), dtype=np.float32)
        out[..., : self.state_dim] = (s - self.mean) / self.std
        return out

    def tensor(self, state: Any) -> Tensor:
        """One state ``(S,)`` -> ``(1, 1, D)`` latents, the shape ``JepaWorldModel.encode`` gives one frame."""
        return torch.from_numpy(self(np.asarray(state, dtype=np.float64).reshape(-1)))[None, None]

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, "state_dim": self.state_dim, "width": self.width,
                "mean": self.mean.tolist(), "std": self.std.tolist()}


def placeholder_encoder_config(width: int) -> VideoJepaConfig:
    """An encoder config of hidden width ``width`` whose frame grid is 1 x 1 (one token per frame)."""
    return VideoJepaConfig.from_preset("tiny", image_size=64, patch_size=64, hidden_size=width, num_hidden_layers=1,
                                       intermediate_size=2 * width, num_attention_heads=1)


def state_latent_cache(dataset: str, *, max_episodes: int | None = None,
                       ) -> tuple[LatentEpisodeCache, StateLatents, dict[str, Any]]:
    """Every episode's state latents ``(L, 1, D)``, states ``(L, S)`` and actions ``(L, A)`` of a LeRobot v3 dataset
    (its data parquet files only: no video), the latent map and the dataset's meta/info.json.

    ``max_episodes``: only the first N episodes (by index); None: all."""
    root = resolve_dataset_root(dataset, allow_patterns=["meta/*", "meta/**", "data/**"])
    info = read_info(root)
    states = episode_states(root)
    import pyarrow.parquet as pq

    table = pq.read_table(sorted((root / "data").glob("**/*.parquet")),
                          columns=["episode_index", "frame_index", ACTION_KEY])
    ep = table.column("episode_index").to_numpy()
    order = np.lexsort((table.column("frame_index").to_numpy(), ep))
    actions_all = column_2d(table, ACTION_KEY).astype(np.float32)[order]
    bounds = np.flatnonzero(np.diff(ep[order])) + 1
    actions = dict(zip((int(e[0]) for e in np.split(ep[order], bounds)), np.split(actions_all, bounds), strict=True))
    check_relative_actions(info, actions, dataset)
    names = info["features"].get(STATE_KEY, {}).get("names")
    eps = sorted(states)[:max_episodes]
    latents = StateLatents.for_dataset(names if isinstance(names, list) else None, [states[e] for e in eps])
    cache = LatentEpisodeCache([torch.from_numpy(latents(states[e]))[:, None] for e in eps],  # (L, 1, D) each
                               [torch.from_numpy(states[e]) for e in eps],
                               [torch.from_numpy(actions[e]) for e in eps])
    return cache, latents, info


def check_relative_actions(info: dict[str, Any], actions: dict[int, np.ndarray], dataset: str) -> None:
    """Data whose meta/info.json declares relative unit-ball actions (``info["hf_jepa"]["action"]["kind"] ==
    "relative"``) must hold no action of norm above 1: a larger one is an absolute target mixed in (e.g. rows of
    the Hub's lerobot/pusht, targets in [0, 512] px). A ValueError names the first such episode and value."""
    record = info.get("hf_jepa", {}).get("action") or {}
    if record.get("kind") != "relative":
        return
    for e, a in sorted(actions.items()):
        norms = np.linalg.norm(a, axis=-1)
        if norms.size and float(norms.max()) > 1.0 + 1e-4:
            raise ValueError(f"dataset {dataset!r}: episode {e} holds an action of norm {float(norms.max()):.4g} "
                             "but meta/info.json declares relative actions (norm <= 1, unit_px="
                             f"{record.get('unit_px')}): absolute targets mixed with relative actions; convert them "
                             "with (target - agent) / unit_px")


def save_state_latents(folder: str | Path, latents: StateLatents, **extra: Any) -> Path:
    """Write ``folder/state_latents.json`` (the latent map and ``extra``: the data's action record, frame skip)."""
    path = Path(folder) / STATE_LATENTS_FILE
    path.write_text(json.dumps({**latents.record(), **extra}, indent=2))
    return path


def load_state_latents(folder: str | Path) -> tuple[StateLatents, dict[str, Any]] | None:
    """The latent map and record a ``--latents state`` world model folder carries; None for encoder models."""
    path = Path(folder) / STATE_LATENTS_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return StateLatents(record["kind"], state_dim=int(record["state_dim"]), mean=record.get("mean"),
                        std=record.get("std")), record


def state_encoder(latents: StateLatents) -> Callable[[Any], Tensor]:
    """``state (S,) -> (1, 1, D)`` latents: what a planner encodes instead of an image."""
    return latents.tensor
