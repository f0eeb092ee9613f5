"""Reading LeRobot v3 trajectories: windows of (frames, states, actions) for training, and states alone.

:class:`LeRobotTrajectoryDataset` skips an episode whose files are missing or disagree with ``meta/episodes``,
counting and logging it; :func:`episode_states` reads the ``observation.state`` column without any video.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch.utils.data import IterableDataset, get_worker_info

from hf_jepa.modeling.validation import check_choice, check_positive

from .meta import ACTION_KEY, STATE_KEY, column_2d, read_info, resolve_dataset_root

logger = logging.getLogger(__name__)


class _EpisodeError(ValueError):
    """An episode that cannot be read as meta/episodes describes it (the message names the episode or its file)."""


def _check_not_failed(path: Path, cache: dict[str, Any]) -> None:
    if path in cache.get("failed", {}):
        raise _EpisodeError(cache["failed"][path])


def _remember_failure(path: Path, cache: dict[str, Any], message: str) -> NoReturn:
    """Record that ``path`` failed (other episodes in it skip without reading it again) and raise."""
    cache.setdefault("failed", {})[path] = message
    raise _EpisodeError(message)


def episode_states(
    repo_id_or_path: str | Path,
    *,
    state_key: str = STATE_KEY,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
) -> dict[int, np.ndarray]:
    """Every episode's ``state_key`` column, ``{episode_index: float32 (L, S)}`` in ``frame_index`` order, read from
    the data parquet files alone (no video; from the Hub only ``meta/`` and ``data/`` are fetched).

    A missing column is a ValueError naming the features the dataset has.
    """
    is_local = Path(repo_id_or_path).expanduser().exists()
    patterns = None if is_local else ["meta/*", "meta/**", "data/**"]
    root = resolve_dataset_root(repo_id_or_path, revision=revision, cache_dir=cache_dir, allow_patterns=patterns)
    info = read_info(root)
    if state_key not in info["features"]:
        raise ValueError(f"{repo_id_or_path}: {state_key!r} is not a feature; features: {sorted(info['features'])}")
    files = sorted((root / "data").glob("**/*.parquet"))
    if not files:
        raise FileNotFoundError(f"{root}: no data/**/*.parquet")
    episodes, frames, states = [], [], []
    for f in files:
        try:
            table = pq.read_table(f, columns=["episode_index", "frame_index", state_key])
        except (OSError, pa.ArrowException) as e:
            raise ValueError(f"{f}: cannot read {state_key!r} ({type(e).__name__}: {e})") from e
        episodes.append(table.column("episode_index").to_numpy())
        frames.append(table.column("frame_index").to_numpy())
        states.append(column_2d(table, state_key).astype(np.float32))
    ep, fr, st = np.concatenate(episodes), np.concatenate(frames), np.concatenate(states)
    order = np.lexsort((fr, ep))  # by episode, then frame
    ep, st = ep[order], st[order]
    bounds = np.flatnonzero(np.diff(ep)) + 1
    return {int(e[0]): s for e, s in zip(np.split(ep, bounds), np.split(st, bounds), strict=True)}


class LeRobotTrajectoryDataset(IterableDataset):
    """Windows of (frames, states, actions) from a LeRobot v3 dataset, local folder or Hub repo id.

    Each item::

        {"frames": uint8 or float32 (T, C, H, W),      # T = frames_per_window, frame i = row t0 + i * frame_skip
         "states": float32 (T, S),                     # observation.state at the same rows ((T, 0) if state_key=None)
         "actions": float32 (T, A) ((T, k*A) for "concat"),
         "episode_index": int, "frame_index": int64 (T,)}

    Action convention: ``actions[i]`` moves ``frames[i]`` to ``frames[i + 1]``; with ``frame_skip = k`` it
    reduces the ``k`` actions of rows ``t0 + i*k .. t0 + (i+1)*k - 1`` by ``action_reduce``: ``"sum"``
    (default: the net displacement for delta actions), ``"mean"``, ``"first"``, or ``"concat"`` (``(T, k*A)``).
    ``actions[T-1]`` is the action taken at the last frame (its outcome lies outside the window); use
    ``actions[:-1]`` for the ``T - 1`` transitions. A window needs ``T * k`` rows, so an episode of length
    ``L`` gives ``floor((L - T*k) / stride) + 1`` windows (none when ``L < T*k``).

    Sharding: the selected episodes (``episodes`` or ``split``) are sorted, then split ``[rank::world_size]``
    and again across DataLoader workers; do not also wrap it with ``split_dataset_by_node``.
    With a Hub repo id only ``meta/`` and this rank's data/video files are fetched.

    An episode whose data parquet or video file is missing or unreadable, or whose rows disagree with
    meta/episodes (row count != ``length``, ``frame_index`` not ``0 .. length - 1``), is skipped: a WARNING names
    the episode and the file, and it is counted in ``num_skipped_episodes``, ``skipped_episodes`` and
    ``skip_reasons`` (episode -> message) (per process; with DataLoader workers each worker keeps its own count).
    A file that failed once is not read again for the other episodes it holds. Unreadable metadata (meta/info.json,
    meta/episodes) is an error at construction.

    Args:
        repo_id_or_path: local folder or Hub dataset id ``org/name``.
        frames_per_window: T.
        frame_skip: k, rows between consecutive frames of a window.
        camera_key: video feature to read; None: the first video feature.
        image_size: resize frames to ``(s, s)`` or ``(h, w)`` (bilinear, antialiased); None keeps the size.
        episodes: explicit episode indices; ``split``: a key of info.json ``splits`` (``"start:end"``).
        rank, world_size: this process's shard.
        seed: shuffling seed (episode order and window order per epoch; see :meth:`set_epoch`).
        shuffle: shuffle episodes and the windows within each episode.
        stride: rows between consecutive window starts in an episode.
        action_reduce: see above.
        to_float: frames as float32 in [0, 1] instead of uint8.
        state_key, action_key: column names (``state_key=None`` for datasets without a state).
        absolute_action_unit: the actions are absolute targets in the state's first two coordinates' units (the
            Hub's ``lerobot/pusht``: PD targets in [0, 512] px, the state the agent's position in px); each becomes
            the relative action ``(target - agent) / absolute_action_unit`` before the skip reduction (Push-T's
            env actions: ``absolute_action_unit = action_scale = 100`` px). Refused for data whose meta/info.json
            declares relative actions (``info["hf_jepa"]["action"]``). None: actions as stored.
        revision, cache_dir: for Hub resolution.

    ``state_resettable`` (attribute): whether meta/info.json says the states reset the env they came from (data
    written by ``hf_jepa.envs``); False for other data, e.g. the Hub's agent-only Push-T states, which can train a
    world model but cannot start an evaluation episode.
    """

    def __init__(
        self,
        repo_id_or_path: str | Path,
        *,
        frames_per_window: int,
        frame_skip: int = 1,
        camera_key: str | None = None,
        image_size: int | tuple[int, int] | None = None,
        episodes: Sequence[int] | None = None,
        split: str | None = None,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        stride: int = 1,
        action_reduce: Literal["sum", "mean", "first", "concat"] = "sum",
        to_float: bool = False,
        state_key: str | None = STATE_KEY,
        action_key: str = ACTION_KEY,
        absolute_action_unit: float | None = None,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
    ):
        super().__init__()
        check_positive(frames_per_window=frames_per_window, frame_skip=frame_skip, stride=stride, world_size=world_size)
        if not (isinstance(rank, int) and 0 <= rank < world_size):
            raise ValueError(f"rank={rank!r}: expected an integer in [0, world_size={world_size})")
        check_choice("action_reduce", action_reduce, ("sum", "mean", "first", "concat"))
        if episodes is not None and split is not None:
            raise ValueError(f"episodes={episodes!r}, split={split!r}: expected episodes or split, not both")
        self.frames_per_window, self.frame_skip, self.stride = frames_per_window, frame_skip, stride
        self.rank, self.world_size, self.seed, self.shuffle = rank, world_size, seed, shuffle
        self.action_reduce, self.to_float = action_reduce, to_float
        self.state_key, self.action_key = state_key, action_key
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.image_size = image_size
        self.epoch = 0
        self.num_skipped_episodes = 0
        self.skipped_episodes: list[int] = []
        self.skip_reasons: dict[int, str] = {}

        is_local = Path(repo_id_or_path).expanduser().exists()
        hub = dict(revision=revision, cache_dir=cache_dir)
        root = resolve_dataset_root(repo_id_or_path, **hub, allow_patterns=None if is_local else ["meta/*", "meta/**"])
        self.info: dict[str, Any] = read_info(root)
        version = str(self.info.get("codebase_version", ""))
        if not version.startswith("v3"):
            raise ValueError(
                f"{repo_id_or_path}: codebase_version={version!r} is unsupported: expected a LeRobot v3.x dataset"
            )
        self.fps = float(self.info["fps"])
        record = self.info.get("hf_jepa", {})
        self.state_resettable = bool(record.get("state", {}).get("resettable", False))
        if absolute_action_unit is not None:
            declared = record.get("action", {}).get("kind")
            if declared is not None and declared != "absolute":
                raise ValueError(f"absolute_action_unit={absolute_action_unit!r}: {repo_id_or_path}'s meta/info.json "
                                 f"declares {declared} actions; converting them as absolute targets would mix "
                                 "absolute and relative actions")
            if not (isinstance(absolute_action_unit, (int, float)) and absolute_action_unit > 0):
                raise ValueError(f"absolute_action_unit={absolute_action_unit!r}: expected a positive float")
            if state_key is None:
                raise ValueError("absolute_action_unit needs state_key: relative actions are target - state")
        self.absolute_action_unit = absolute_action_unit
        features = self.info["features"]
        video_keys = [k for k, f in features.items() if f.get("dtype") == "video"]
        if camera_key is None:
            if not video_keys:
                raise ValueError(f"{repo_id_or_path} has no video feature; features: {sorted(features)}")
            camera_key = video_keys[0]
        check_choice("camera_key", camera_key, tuple(video_keys))
        for name, key in (("state_key", state_key), ("action_key", action_key)):
            if key is not None:
                check_choice(name, key, tuple(sorted(features)))
        self.camera_key = camera_key
        self.episodes_meta = self._load_episodes(root)

        n_total = len(self.episodes_meta)
        if episodes is not None:
            selected = sorted({int(e) for e in episodes})
            missing = [e for e in selected if e not in self.episodes_meta]
            if missing:
                raise ValueError(f"episodes={missing!r}: expected episodes of the dataset ({n_total} episodes)")
        elif split is not None:
            splits = self.info.get("splits", {})
            check_choice("split", split, tuple(sorted(splits)))
            a, b = (int(v) for v in str(splits[split]).split(":"))
            selected = [e for e in sorted(self.episodes_meta) if a <= e < b]
        else:
            selected = sorted(self.episodes_meta)
        self.shard_episodes: list[int] = selected[rank::world_size]
        if not self.shard_episodes:
            logger.warning("rank %d/%d got no episode (%d selected)", rank, world_size, len(selected))

        if not is_local:  # fetch only this shard's files
            patterns = set()
            for e in self.shard_episodes:
                m = self.episodes_meta[e]
                patterns.add(
                    self.info["data_path"].format(chunk_index=m["data/chunk_index"], file_index=m["data/file_index"])
                )
                patterns.add(self._video_rel_path(m))
            root = resolve_dataset_root(repo_id_or_path, **hub, allow_patterns=sorted(patterns))
        self.root = root

    # ---- metadata
    def _load_episodes(self, root: Path) -> dict[int, dict[str, Any]]:
        files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise FileNotFoundError(f"{root}: no meta/episodes/chunk-*/file-*.parquet")
        key = self.camera_key
        wanted = [
            "episode_index", "length", "data/chunk_index", "data/file_index", f"videos/{key}/chunk_index",
            f"videos/{key}/file_index", f"videos/{key}/from_timestamp", f"videos/{key}/to_timestamp",
        ]  # fmt: skip
        out: dict[int, dict[str, Any]] = {}
        for f in files:
            try:
                names = set(pq.read_schema(f).names)
            except (OSError, pa.ArrowException) as e:
                raise ValueError(f"{f}: cannot read the episodes metadata parquet ({type(e).__name__}: {e})") from e
            missing = [c for c in wanted if c not in names]
            if missing:
                raise ValueError(f"{f}: episodes metadata lacks columns {missing}")
            try:
                rows = pq.read_table(f, columns=wanted).to_pylist()
            except (OSError, pa.ArrowException) as e:
                raise ValueError(f"{f}: cannot read the episodes metadata parquet ({type(e).__name__}: {e})") from e
            for row in rows:
                out[int(row["episode_index"])] = row
        return out

    def _video_rel_path(self, m: Mapping[str, Any]) -> str:
        key = self.camera_key
        return self.info["video_path"].format(
            video_key=key, chunk_index=m[f"videos/{key}/chunk_index"], file_index=m[f"videos/{key}/file_index"]
        )

    def windows_in_episode(self, length: int) -> int:
        """Number of windows an episode of ``length`` rows yields."""
        span = self.frames_per_window * self.frame_skip
        return 0 if length < span else (length - span) // self.stride + 1

    def expected_num_windows(self) -> int:
        """Windows this rank yields over one epoch if no episode is skipped (from metadata; decodes nothing)."""
        return sum(self.windows_in_episode(int(self.episodes_meta[e]["length"])) for e in self.shard_episodes)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle differently for each epoch (same ``seed`` + ``epoch`` -> same order)."""
        self.epoch = epoch

    # ---- loading
    def _load_data(self, ep: int, cache: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.episodes_meta[ep]
        rel = self.info["data_path"].format(chunk_index=m["data/chunk_index"], file_index=m["data/file_index"])
        path = self.root / rel
        if cache.get("data_path") != path:
            _check_not_failed(path, cache)
            cols = ["episode_index", "frame_index", self.action_key] + ([self.state_key] if self.state_key else [])
            try:
                table = pq.read_table(path, columns=cols)
            except (OSError, pa.ArrowException) as e:
                _remember_failure(path, cache, f"data file {rel} cannot be read ({type(e).__name__}: {e})")
            cache["data_path"] = path
            cache["data"] = {
                "episode_index": table.column("episode_index").to_numpy(),
                "frame_index": table.column("frame_index").to_numpy(),
                "action": column_2d(table, self.action_key).astype(np.float32),
                "state": column_2d(table, self.state_key).astype(np.float32) if self.state_key else None,
            }
        d = cache["data"]
        rows = np.nonzero(d["episode_index"] == ep)[0]
        rows = rows[np.argsort(d["frame_index"][rows], kind="stable")]
        length = int(m["length"])
        if len(rows) != length:
            raise _EpisodeError(f"meta/episodes gives length={length}, data file {rel} has {len(rows)} rows for it")
        if not np.array_equal(d["frame_index"][rows], np.arange(length)):
            raise _EpisodeError(
                f"frame_index in data file {rel} is not 0 .. {length - 1} (length={length} in meta/episodes)"
            )
        states = d["state"][rows] if d["state"] is not None else np.zeros((len(rows), 0), np.float32)
        actions = d["action"][rows]
        if self.absolute_action_unit is not None:  # absolute targets -> (target - agent) / unit, (L, A)
            a = actions.shape[1]
            actions = (actions - states[:, :a]) / np.float32(self.absolute_action_unit)
        return d["frame_index"][rows], states, actions

    def _decode(self, ep: int, frame_rows: np.ndarray, cache: dict[str, Any]) -> torch.Tensor:
        """Frames ``uint8 (N, C, H, W)`` at episode rows ``frame_rows``."""
        from torchcodec.decoders import VideoDecoder

        m = self.episodes_meta[ep]
        rel = self._video_rel_path(m)
        path = self.root / rel
        if cache.get("video_path") != path:
            cache["video_path"], cache["decoder"] = None, None
            _check_not_failed(path, cache)
            if not path.is_file():
                _remember_failure(path, cache, f"video file {rel} is missing")
            try:
                cache["decoder"] = VideoDecoder(str(path), seek_mode="approximate")
            except Exception as e:  # noqa: BLE001 - torchcodec raises RuntimeError / ValueError for unreadable files
                _remember_failure(path, cache, f"video file {rel} cannot be opened ({type(e).__name__}: {e})")
            cache["video_path"] = path
        decoder = cache["decoder"]
        meta = decoder.metadata
        video_fps = float(meta.average_fps or self.fps)
        n_frames = int(meta.num_frames or 0) or None
        ts = float(m[f"videos/{self.camera_key}/from_timestamp"]) + frame_rows / self.fps
        idx = np.rint(ts * video_fps).astype(np.int64)
        if n_frames is not None:
            if idx.max() >= n_frames + 1:
                raise ValueError(f"episode {ep} needs video frame {int(idx.max())}, {path.name} has {n_frames}")
            idx = np.clip(idx, 0, n_frames - 1)
        return decoder.get_frames_at(indices=idx.tolist()).data  # (N, C, H, W) uint8

    def _reduce(self, a: np.ndarray) -> np.ndarray:
        """``(T, k, A)`` -> ``(T, A)`` or ``(T, k*A)``."""
        if self.action_reduce == "sum":
            return a.sum(1)
        if self.action_reduce == "mean":
            return a.mean(1)
        if self.action_reduce == "first":
            return a[:, 0]
        return a.reshape(a.shape[0], -1)

    def _prepare_episode(self, ep: int, cache: dict[str, Any]) -> dict[str, Any] | None:
        """Read one episode's rows and decode the frames its windows need (None: too short)."""
        frame_index, states, actions = self._load_data(ep, cache)
        n_win = self.windows_in_episode(len(frame_index))
        if n_win == 0:
            return None
        starts = np.arange(n_win) * self.stride  # (W,)
        offsets = np.arange(self.frames_per_window) * self.frame_skip  # (T,)
        needed = np.unique((starts[:, None] + offsets[None]).reshape(-1))  # rows to decode, (N,)
        frames = self._decode(ep, frame_index[needed], cache)  # (N, C, H, W) uint8
        if self.image_size is not None and tuple(frames.shape[-2:]) != tuple(self.image_size):
            frames = F.interpolate(
                frames.float(), size=self.image_size, mode="bilinear", antialias=True, align_corners=False
            )
            frames = frames.round().clamp(0, 255).to(torch.uint8)
        # per-window gathers run in numpy: torch's intra-op thread pool costs ms per tiny op on a busy CPU
        frames = np.ascontiguousarray(frames.numpy())
        lookup = np.full(len(frame_index), -1, dtype=np.int64)
        lookup[needed] = np.arange(len(needed))  # episode row -> position in `frames`
        return {"frame_index": frame_index, "states": states, "actions": actions, "frames": frames,
                "starts": starts, "offsets": offsets, "lookup": lookup}  # fmt: skip

    def _windows(self, ep: int, d: dict[str, Any], rng: np.random.Generator) -> Iterator[dict[str, Any]]:
        t_, k = self.frames_per_window, self.frame_skip
        starts = d["starts"]
        order = rng.permutation(len(starts)) if self.shuffle else np.arange(len(starts))
        for w in order:
            rows = starts[w] + d["offsets"]  # (T,)
            act = d["actions"][starts[w] : starts[w] + t_ * k].reshape(t_, k, -1)  # (T, k, A)
            frames = d["frames"][d["lookup"][rows]]  # (T, C, H, W) uint8
            yield {
                "frames": torch.from_numpy(frames.astype(np.float32) / 255.0 if self.to_float else frames),
                "states": torch.from_numpy(np.ascontiguousarray(d["states"][rows])),
                "actions": torch.from_numpy(np.ascontiguousarray(self._reduce(act), dtype=np.float32)),
                "episode_index": int(ep),
                "frame_index": torch.from_numpy(d["frame_index"][rows].astype(np.int64)),
            }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        eps = list(self.shard_episodes)
        worker = get_worker_info()
        if worker is not None:
            eps = eps[worker.id :: worker.num_workers]
        wid = worker.id if worker is not None else 0
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, wid])
        if self.shuffle:
            eps = [eps[i] for i in rng.permutation(len(eps))]
        cache: dict[str, Any] = {}
        for ep in eps:
            try:
                prepared = self._prepare_episode(ep, cache)
            except Exception as e:  # noqa: BLE001 - a corrupt sample is skipped, counted and logged
                cache.pop("video_path", None)
                reason = str(e) if isinstance(e, _EpisodeError) else f"{type(e).__name__}: {e}"
                self.num_skipped_episodes += 1
                self.skipped_episodes.append(ep)
                self.skip_reasons[ep] = reason
                logger.warning(
                    "skipping episode %d of %s: %s; %d skipped so far", ep, self.root, reason, self.num_skipped_episodes
                )
                continue
            if prepared is not None:
                yield from self._windows(ep, prepared, rng)

    def __repr__(self) -> str:
        return (
            f"LeRobotTrajectoryDataset(root={str(self.root)!r}, camera_key={self.camera_key!r}, "
            f"T={self.frames_per_window}, "
            f"frame_skip={self.frame_skip}, episodes={len(self.shard_episodes)} (rank {self.rank}/{self.world_size}), "
            f"windows~{self.expected_num_windows()})"
        )
