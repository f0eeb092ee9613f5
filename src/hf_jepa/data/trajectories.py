"""Trajectory data for JEPA training: LeRobot v3 episodes as pretraining clips, and a latent cache for the
world model.

- `lerobot_clips`: windows of frames from a LeRobot dataset, shuffled through a buffer (the reader yields the
  windows of one episode after another), transformed like any other pretraining clip.
- `LatentEpisodeCache`: the frozen encoder's latents of every frame of this rank's episodes, computed once, with
  states and actions; `batches(epoch)` cuts (latents, states, actions) windows with a frame skip from memory.
  The encoder is frozen and world-model frames are not augmented, so caching is exact and removes the encoder
  from every training step.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset
from tqdm.auto import tqdm

from hf_jepa.modeling.validation import check_positive

from .lerobot import LeRobotTrajectoryDataset

logger = logging.getLogger(__name__)


def is_lerobot_dataset(name_or_path: str) -> bool:
    """True for a local folder in the LeRobot v3 layout (it has meta/info.json)."""
    info = Path(name_or_path) / "meta" / "info.json"
    return info.is_file() and str(json.loads(info.read_text()).get("codebase_version", "")).startswith("v3")


class ShuffleBuffer(IterableDataset):
    """Shuffle a stream through a buffer of `size` items (seeded per epoch; deterministic per worker)."""

    def __init__(self, source: Iterable[dict[str, Any]], size: int, seed: int) -> None:
        check_positive(size=size)
        self.source, self.size, self.seed = source, size, seed

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        rng = random.Random(self.seed * 7919 + (info.id if info else 0))
        buffer: list[dict[str, Any]] = []
        for item in self.source:
            if len(buffer) < self.size:
                buffer.append(item)
                continue
            i = rng.randrange(self.size)
            yield buffer[i]
            buffer[i] = item
        rng.shuffle(buffer)
        yield from buffer


class _ClipStream(IterableDataset):
    """LeRobot windows -> {"pixel_values_videos": (T, C, H, W) float, "skipped_samples": int}."""

    def __init__(self, reader: LeRobotTrajectoryDataset, transform: Callable[..., Tensor], seed: int) -> None:
        self.reader, self.transform, self.seed = reader, transform, seed

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        gen = torch.Generator().manual_seed(self.seed * 1009 + (info.id if info else 0))
        skipped = self.reader.num_skipped_episodes
        for item in self.reader:
            now = self.reader.num_skipped_episodes
            yield {"pixel_values_videos": self.transform(item["frames"], gen), "skipped_samples": now - skipped}
            skipped = now


def lerobot_clips(path: str, *, frames_per_clip: int, frame_step: int, transform: Callable[..., Tensor],
                  rank: int, world_size: int, seed: int, epoch: int, camera_key: str | None = None,
                  buffer_size: int = 512) -> IterableDataset:
    """Pretraining clips (T frames, every `frame_step`-th) from a LeRobot dataset, shuffled, sharded by episode."""
    reader = LeRobotTrajectoryDataset(path, frames_per_window=frames_per_clip, frame_skip=frame_step,
                                      camera_key=camera_key, rank=rank, world_size=world_size, seed=seed,
                                      stride=max(1, frames_per_clip // 2))
    reader.set_epoch(epoch)
    return ShuffleBuffer(_ClipStream(reader, transform, seed + epoch), buffer_size, seed + epoch)


class LatentEpisodeCache:
    """Encoder latents, states and actions of every frame of this rank's episodes, kept in memory.

    Attributes:
        latents: list per episode of (L, N, D) float16 latents (layer-normed as the world model's `encode`).
        states: list of (L, S) float32; actions: list of (L, A) float32 (actions[t] moves frame t to t+1).
    """

    def __init__(self, latents: list[Tensor], states: list[Tensor], actions: list[Tensor]) -> None:
        self.latents, self.states, self.actions = latents, states, actions

    @classmethod
    @torch.no_grad()
    def build(cls, path: str, encode: Callable[[Tensor], Tensor], transform: Callable[..., Tensor], *,
              rank: int = 0, world_size: int = 1, camera_key: str | None = None, batch_size: int = 256,
              show_progress: bool = True) -> LatentEpisodeCache:
        """Read every frame once (in order) and encode it.

        Args:
            path: LeRobot v3 folder or Hub id.
            encode: frames (B, 1, C, H, W) float -> (B, N, D) latents (e.g. `JepaWorldModel.encode`).
            transform: uint8 (T, C, H, W) -> float (T, C, S, S) (the world model's frame transform).
        """
        reader = LeRobotTrajectoryDataset(path, frames_per_window=1, camera_key=camera_key, rank=rank,
                                          world_size=world_size, shuffle=False)
        per_ep: dict[int, dict[str, list]] = {}
        pending: list[tuple[int, Tensor]] = []

        def flush() -> None:
            frames = torch.stack([f for _, f in pending])[:, None]  # (B, 1, C, S, S)
            z = encode(frames).to(torch.float16)  # (B, N, D)
            for (ep, _), zi in zip(pending, z, strict=True):
                per_ep[ep]["latents"].append(zi)
            pending.clear()

        bar = tqdm(total=reader.expected_num_windows(), desc="encode frames", disable=not show_progress)
        for item in reader:
            ep = int(item["episode_index"])
            rec = per_ep.setdefault(ep, {"latents": [], "states": [], "actions": []})
            rec["states"].append(torch.as_tensor(item["states"][0]))
            rec["actions"].append(torch.as_tensor(item["actions"][0]))
            pending.append((ep, transform(item["frames"])[0]))
            if len(pending) >= batch_size:
                flush()
            bar.update(1)
        if pending:
            flush()
        bar.close()
        if reader.num_skipped_episodes:
            logger.warning("skipped %d undecodable episodes", reader.num_skipped_episodes)
        eps = sorted(per_ep)
        return cls([torch.stack(per_ep[e]["latents"]) for e in eps],
                   [torch.stack(per_ep[e]["states"]).float() for e in eps],
                   [torch.stack(per_ep[e]["actions"]).float() for e in eps])

    def windows(self, frames_per_window: int, frame_skip: int) -> list[tuple[int, int]]:
        """All (episode, start) pairs with `frames_per_window` frames `frame_skip` rows apart."""
        span = frames_per_window * frame_skip
        return [(e, t) for e, z in enumerate(self.latents) for t in range(0, z.shape[0] - span + 1)]

    def window(self, episode: int, start: int, frames_per_window: int, frame_skip: int,
               action_reduce: str = "sum") -> dict[str, Tensor]:
        """latents (T*N, D) float32, states (T, S), actions (T, A) summed over each skip (the last is unused), or
        (T, k*A) with ``action_reduce="concat"`` (the k env actions of a model step side by side)."""
        rows = torch.arange(frames_per_window) * frame_skip + start  # (T,)
        z = self.latents[episode][rows].float().flatten(0, 1)  # (T, N, D) -> (T*N, D)
        acts = self.actions[episode][start:start + frames_per_window * frame_skip]  # (T*k, A)
        acts = acts.view(frames_per_window, frame_skip, -1)  # (T, k, A)
        acts = acts.sum(1) if action_reduce == "sum" else acts.flatten(1)  # (T, A) or (T, k*A)
        return {"latents": z, "states": self.states[episode][rows], "actions": acts}

    def batches(self, epoch: int, *, batch_size: int, frames_per_window: int, frame_skip: int,
                seed: int, action_reduce: str = "sum") -> Iterator[dict[str, Any]]:
        """One epoch of shuffled window batches (deterministic in (seed, epoch)); drops the last partial batch."""
        index = self.windows(frames_per_window, frame_skip)
        if len(index) < batch_size:
            raise ValueError(f"only {len(index)} windows of {frames_per_window} frames x skip {frame_skip}: "
                             f"fewer than batch_size={batch_size}; collect longer or more episodes")
        order = torch.randperm(len(index), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        for b in range(len(index) // batch_size):
            items = [self.window(*index[i], frames_per_window, frame_skip, action_reduce)
                     for i in order[b * batch_size:(b + 1) * batch_size].tolist()]
            batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
            batch["skipped_samples"] = 0
            yield batch


def as_dataloader(dataset: IterableDataset, batch_size: int, num_workers: int) -> DataLoader:
    """Batches of dict samples (tensors stacked, `skipped_samples` summed), the last partial batch dropped."""

    def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
        out = {k: torch.stack([s[k] for s in samples]) for k in samples[0] if k != "skipped_samples"}
        out["skipped_samples"] = int(sum(s.get("skipped_samples", 0) for s in samples))
        return out

    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate, drop_last=True)


__all__ = ["LatentEpisodeCache", "ShuffleBuffer", "as_dataloader", "is_lerobot_dataset", "lerobot_clips"]
