"""Trajectories in the LeRobot v3.0 layout: a writer and a windowed reader (no ``lerobot`` install needed).

Layout (``codebase_version: "v3.0"``, what :class:`LeRobotWriter` writes and :class:`LeRobotTrajectoryDataset` reads)::

    meta/info.json                     fps, features, totals, path templates, splits
    meta/stats.json                    per-feature min / max / mean / std / count
    meta/tasks.parquet                 task (index) -> task_index
    meta/episodes/chunk-000/file-000.parquet
                                       one row per episode: episode_index, tasks, length,
                                       data/{chunk,file}_index, dataset_{from,to}_index,
                                       videos/<key>/{chunk_index,file_index,from_timestamp,to_timestamp},
                                       stats/<feature>/<stat>
    data/chunk-{chunk:03d}/file-{file:03d}.parquet
                                       one row per frame: observation.state, action, timestamp,
                                       frame_index, episode_index, index, task_index
    videos/<key>/chunk-{chunk:03d}/file-{file:03d}.mp4
                                       the frames of several episodes, concatenated; episode e occupies
                                       [from_timestamp, to_timestamp) of its file

Several episodes share a file (``episodes_per_file``); ``chunks_size`` files make a chunk directory.

Action convention (LeRobot's): row ``t`` holds the observation at ``t`` and the action taken there, so
``action[t]`` moves ``frame[t]`` to ``frame[t + 1]``. The last row's action was chosen at the last frame;
its outcome is not recorded.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
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

logger = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
STATE_KEY = "observation.state"
ACTION_KEY = "action"
DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


# --------------------------------------------------------------------------- video encoding
def encode_video(
    frames: np.ndarray, path: str | Path, *, fps: int, codec: str = "libx264", crf: int = 18, gop: int = 10
) -> None:
    """Encode ``uint8 (N, H, W, 3)`` RGB frames to an mp4 at ``fps``.

    Uses torchcodec's ``VideoEncoder`` when available, else an ``ffmpeg`` subprocess. ``yuv420p`` for even
    sizes (``yuv444p`` otherwise); ``gop`` frames between keyframes keeps seeking to an episode cheap.
    """
    frames = np.ascontiguousarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"encode_video frames {frames.dtype} {frames.shape} are invalid: expected uint8 (N, H, W, 3)")
    n, h, w, _ = frames.shape
    pix_fmt = "yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from torchcodec.encoders import VideoEncoder
    except ImportError:
        VideoEncoder = None  # noqa: N806
    if VideoEncoder is not None:
        tensor = torch.from_numpy(frames).permute(0, 3, 1, 2)  # (N, 3, H, W)
        VideoEncoder(tensor, frame_rate=fps).to_file(
            str(path), codec=codec, pixel_format=pix_fmt, crf=crf, extra_options={"g": gop}
        )
        return
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("encode_video needs torchcodec.encoders or an ffmpeg binary on PATH")
    cmd = [
        ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
        "-r", str(fps), "-i", "-", "-c:v", codec, "-pix_fmt", pix_fmt, "-crf", str(crf), "-g", str(gop), str(path),
    ]  # fmt: skip
    subprocess.run(cmd, input=frames.tobytes(), check=True)


# --------------------------------------------------------------------------- stats
class _RunningStats:
    """min / max / mean / std / count over axis 0 of arrays ``(N, *shape)`` (float64 accumulators)."""

    def __init__(self) -> None:
        self.count = 0
        self.sum: np.ndarray | None = None
        self.sumsq: np.ndarray | None = None
        self.min: np.ndarray | None = None
        self.max: np.ndarray | None = None

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        s, ss, mn, mx = x.sum(0), (x * x).sum(0), x.min(0), x.max(0)
        if self.sum is None:
            self.sum, self.sumsq, self.min, self.max = s, ss, mn, mx
        else:
            self.sum, self.sumsq = self.sum + s, self.sumsq + ss
            self.min, self.max = np.minimum(self.min, mn), np.maximum(self.max, mx)
        self.count += x.shape[0]

    def merge(self, other: _RunningStats) -> None:
        if other.sum is None:
            return
        if self.sum is None:
            self.sum, self.sumsq, self.min, self.max = other.sum, other.sumsq, other.min, other.max
        else:
            self.sum, self.sumsq = self.sum + other.sum, self.sumsq + other.sumsq
            self.min, self.max = np.minimum(self.min, other.min), np.maximum(self.max, other.max)
        self.count += other.count

    def to_dict(self) -> dict[str, Any]:
        mean = self.sum / self.count
        std = np.sqrt(np.maximum(self.sumsq / self.count - mean * mean, 0.0))
        return {
            "min": self.min.tolist(),
            "max": self.max.tolist(),
            "mean": mean.tolist(),
            "std": std.tolist(),
            "count": [self.count],
        }


def _image_stats(frames: np.ndarray) -> _RunningStats:
    """Per-channel stats of ``uint8 (T, H, W, 3)`` in [0, 1], shaped (3, 1, 1) like LeRobot's; count = T frames."""
    t = frames.shape[0]
    x = frames.reshape(-1, 3)  # (T*H*W, 3) uint8
    pixels_per_frame = x.shape[0] / t
    hist = np.stack([np.bincount(x[:, c], minlength=256) for c in range(3)]).astype(np.float64)  # (3, 256), exact
    levels = np.arange(256, dtype=np.float64) / 255.0
    nonzero = hist > 0
    st = _RunningStats()
    st.count = t
    # sums over frames of per-frame means, so that mean = sum / count
    st.sum = (hist @ levels / pixels_per_frame).reshape(3, 1, 1)
    st.sumsq = (hist @ levels**2 / pixels_per_frame).reshape(3, 1, 1)
    st.min = levels[nonzero.argmax(1)].reshape(3, 1, 1)
    st.max = levels[255 - nonzero[:, ::-1].argmax(1)].reshape(3, 1, 1)
    return st


def _fixed_list(values: np.ndarray) -> pa.FixedSizeListArray:
    """``(N, D)`` -> arrow ``fixed_size_list<D>`` (LeRobot's ``Sequence(length=D)``)."""
    values = np.ascontiguousarray(values)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


# --------------------------------------------------------------------------- writer
class LeRobotWriter:
    """Write trajectories in the LeRobot v3.0 layout (see module docstring).

    Args:
        root: output folder (created). Must be empty unless ``overwrite`` (then its data/, videos/, meta/ go).
        fps: frames per second of the recordings (``timestamp = frame_index / fps``).
        state_names: names of the ``observation.state`` dims (its size S); None: inferred as ``state_0..``.
        action_names: names of the ``action`` dims (its size A); None: inferred as ``action_0..``.
        robot_type: free text stored in info.json.
        episodes_per_file: episodes per data parquet / video file (LeRobot rolls over by size; we by count).
        chunks_size: files per ``chunk-XXX`` directory.
        codec, crf, gop: video encoding (H.264 by default; ``crf`` lower = better quality).
        overwrite: replace an existing dataset in ``root``.

    Usage::

        with LeRobotWriter("out", fps=10) as w:
            w.add_episode({"observation.image": frames}, states, actions, task="reach the goal")
    """

    def __init__(
        self,
        root: str | Path,
        *,
        fps: int,
        state_names: Sequence[str] | None = None,
        action_names: Sequence[str] | None = None,
        robot_type: str | None = None,
        episodes_per_file: int = 50,
        chunks_size: int = 1000,
        codec: str = "libx264",
        crf: int = 18,
        gop: int = 10,
        overwrite: bool = False,
    ):
        check_positive(fps=fps, episodes_per_file=episodes_per_file, chunks_size=chunks_size)
        self.root = Path(root)
        if self.root.exists() and any(self.root.iterdir()):
            if not overwrite:
                raise FileExistsError(f"LeRobotWriter root={str(self.root)!r} is not empty; pass overwrite=True")
            for sub in ("data", "videos", "meta"):
                shutil.rmtree(self.root / sub, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.fps, self.robot_type = fps, robot_type
        self.state_names = list(state_names) if state_names is not None else None
        self.action_names = list(action_names) if action_names is not None else None
        self.episodes_per_file, self.chunks_size = episodes_per_file, chunks_size
        self.codec, self.crf, self.gop = codec, crf, gop
        self.camera_shapes: dict[str, tuple[int, int, int]] | None = None
        self.tasks: dict[str, int] = {}
        self.episodes: list[dict[str, Any]] = []
        self.stats: dict[str, _RunningStats] = {}
        self.total_frames = 0
        self._buffer: list[dict[str, Any]] = []
        self._file_counter = 0
        self._finalized = False

    def __enter__(self) -> LeRobotWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.finalize()

    def _check_features(self, frames: Mapping[str, np.ndarray], states: np.ndarray, actions: np.ndarray) -> None:
        shapes = {k: tuple(v.shape[1:]) for k, v in frames.items()}
        if self.camera_shapes is None:
            self.camera_shapes = shapes
        elif shapes != self.camera_shapes:
            raise ValueError(f"add_episode frames shapes {shapes} differ from the first episode's {self.camera_shapes}")
        for attr, arr, prefix in (("state_names", states, "state"), ("action_names", actions, "action")):
            names = getattr(self, attr)
            if names is None:
                setattr(self, attr, [f"{prefix}_{i}" for i in range(arr.shape[1])])
            elif len(names) != arr.shape[1]:
                raise ValueError(f"add_episode {prefix}s have {arr.shape[1]} dims, expected len({attr}) = {len(names)}")

    def add_episode(
        self,
        frames: Mapping[str, np.ndarray],
        states: np.ndarray,
        actions: np.ndarray,
        *,
        task: str = "",
    ) -> int:
        """Buffer one episode; files are written every ``episodes_per_file`` episodes.

        Args:
            frames: ``{camera_key: uint8 (T, H, W, 3)}``, e.g. ``{"observation.image": ...}``.
            states: ``(T, S)`` -> ``observation.state``.
            actions: ``(T, A)``, ``actions[t]`` taken at frame t (moves frame t to t + 1); ``(T - 1, A)`` is
                accepted and padded with one zero action at the end.
            task: natural-language task; indexed in ``meta/tasks.parquet``.

        Returns:
            the episode index.
        """
        if self._finalized:
            raise RuntimeError("LeRobotWriter.add_episode after finalize()")
        if not frames:
            raise ValueError("add_episode frames is empty: expected at least one camera {key: uint8 (T, H, W, 3)}")
        frames = {k: np.asarray(v) for k, v in frames.items()}
        states = np.asarray(states, dtype=np.float32)
        actions = np.asarray(actions, dtype=np.float32)
        t = states.shape[0] if states.ndim == 2 else -1
        if t < 1:
            raise ValueError(f"add_episode states shape {states.shape} is invalid: expected (T, S) with T >= 1")
        for key, v in frames.items():
            if v.dtype != np.uint8 or v.ndim != 4 or v.shape[0] != t or v.shape[-1] != 3:
                raise ValueError(
                    f"add_episode frames[{key!r}] {v.dtype} {v.shape} is invalid: expected uint8 ({t}, H, W, 3)"
                )
        if actions.ndim != 2 or actions.shape[0] not in (t, t - 1):
            raise ValueError(f"add_episode actions shape {actions.shape} is invalid: expected ({t}, A) or ({t - 1}, A)")
        if actions.shape[0] == t - 1:
            actions = np.concatenate([actions, np.zeros((1, actions.shape[1]), np.float32)])
        self._check_features(frames, states, actions)
        ep = len(self.episodes)
        task_index = self.tasks.setdefault(task, len(self.tasks))
        frame_index = np.arange(t, dtype=np.int64)
        columns = {
            STATE_KEY: states,
            ACTION_KEY: actions,
            "timestamp": (frame_index / self.fps).astype(np.float32),
            "frame_index": frame_index,
            "episode_index": np.full(t, ep, np.int64),
            "index": self.total_frames + frame_index,
            "task_index": np.full(t, task_index, np.int64),
        }
        ep_stats = {k: _RunningStats() for k in columns}
        for k, v in columns.items():
            ep_stats[k].update(v.reshape(t, -1))
        for k, v in frames.items():
            ep_stats[k] = _image_stats(v)
        for k, st in ep_stats.items():
            self.stats.setdefault(k, _RunningStats()).merge(st)
        self.episodes.append(
            {
                "episode_index": ep,
                "tasks": [task],
                "length": t,
                "dataset_from_index": self.total_frames,
                "dataset_to_index": self.total_frames + t,
                **{f"stats/{k}/{s}": v for k, st in ep_stats.items() for s, v in st.to_dict().items()},
            }
        )
        self._buffer.append({"columns": columns, "frames": frames})
        self.total_frames += t
        if len(self._buffer) >= self.episodes_per_file:
            self._flush()
        return ep

    def _flush(self) -> None:
        if not self._buffer:
            return
        chunk, file = divmod(self._file_counter, self.chunks_size)
        self._file_counter += 1
        first_ep = len(self.episodes) - len(self._buffer)
        cols = {k: np.concatenate([b["columns"][k] for b in self._buffer]) for k in self._buffer[0]["columns"]}
        arrays = {k: _fixed_list(v) if v.ndim == 2 else pa.array(v) for k, v in cols.items()}
        path = self.root / DATA_PATH.format(chunk_index=chunk, file_index=file)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(arrays), path, compression="snappy")
        for key in self.camera_shapes or {}:
            offset = 0
            for i, b in enumerate(self._buffer):
                n = b["frames"][key].shape[0]
                self.episodes[first_ep + i].update(
                    {
                        f"videos/{key}/chunk_index": chunk,
                        f"videos/{key}/file_index": file,
                        f"videos/{key}/from_timestamp": offset / self.fps,
                        f"videos/{key}/to_timestamp": (offset + n) / self.fps,
                    }
                )
                offset += n
            video = np.concatenate([b["frames"][key] for b in self._buffer])  # (N, H, W, 3)
            encode_video(
                video,
                self.root / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file),
                fps=self.fps,
                codec=self.codec,
                crf=self.crf,
                gop=self.gop,
            )
        for i in range(len(self._buffer)):
            self.episodes[first_ep + i].update({"data/chunk_index": chunk, "data/file_index": file})
        logger.debug("wrote %s (%d episodes)", path, len(self._buffer))
        self._buffer = []

    def _features(self) -> dict[str, Any]:
        feats: dict[str, Any] = {}
        codec = {"libx264": "h264", "libsvtav1": "av1", "libaom-av1": "av1", "libx265": "hevc"}.get(
            self.codec, self.codec
        )
        for key, (h, w, c) in (self.camera_shapes or {}).items():
            feats[key] = {
                "dtype": "video",
                "shape": [h, w, c],
                "names": ["height", "width", "channels"],
                "info": {
                    "video.height": h,
                    "video.width": w,
                    "video.codec": codec,
                    "video.pix_fmt": "yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p",
                    "video.is_depth_map": False,
                    "video.fps": self.fps,
                    "video.channels": c,
                    "has_audio": False,
                },
            }
        feats[STATE_KEY] = {"dtype": "float32", "shape": [len(self.state_names)], "names": self.state_names}
        feats[ACTION_KEY] = {"dtype": "float32", "shape": [len(self.action_names)], "names": self.action_names}
        feats.update(DEFAULT_FEATURES)
        return feats

    def finalize(self) -> Path:
        """Write the last files and all metadata (info, stats, tasks, episodes, README). Returns ``root``."""
        if self._finalized:
            return self.root
        if not self.episodes:
            raise RuntimeError("LeRobotWriter.finalize with no episode: call add_episode first")
        self._flush()
        self._finalized = True
        n_files = self._file_counter
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": len(self.episodes),
            "total_frames": self.total_frames,
            "total_tasks": len(self.tasks),
            "chunks_size": self.chunks_size,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200,
            "fps": self.fps,
            "splits": {"train": f"0:{len(self.episodes)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.camera_shapes else None,
            "features": self._features(),
        }
        (self.root / "meta").mkdir(parents=True, exist_ok=True)
        (self.root / INFO_PATH).write_text(json.dumps(info, indent=4))
        (self.root / STATS_PATH).write_text(json.dumps({k: st.to_dict() for k, st in self.stats.items()}, indent=4))
        tasks = sorted(self.tasks.items(), key=lambda kv: kv[1])
        # pandas-compatible: LeRobot reads it with pd.read_parquet and expects the task string as the index
        task_table = pa.table(
            {"task_index": pa.array([i for _, i in tasks], pa.int64()), "task": [t for t, _ in tasks]}
        )
        pandas_meta = {
            "index_columns": ["task"],
            "column_indexes": [],
            "columns": [
                {
                    "name": "task_index",
                    "field_name": "task_index",
                    "pandas_type": "int64",
                    "numpy_type": "int64",
                    "metadata": None,
                },
                {
                    "name": "task",
                    "field_name": "task",
                    "pandas_type": "unicode",
                    "numpy_type": "object",
                    "metadata": None,
                },
            ],
            "pandas_version": "2.0.0",
        }
        task_table = task_table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
        pq.write_table(task_table, self.root / TASKS_PATH)
        for ep in self.episodes:
            ep.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        ep_path = self.root / EPISODES_PATH.format(chunk_index=0, file_index=0)
        ep_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(self.episodes), ep_path)
        (self.root / "README.md").write_text(
            "---\nlicense: mit\ntask_categories:\n- robotics\ntags:\n- LeRobot\n- hf_jepa\n"
            "configs:\n- config_name: default\n  data_files: data/*/*.parquet\n---\n\n"
            f"LeRobot v3.0 dataset written by `hf_jepa.data.lerobot.LeRobotWriter`: {len(self.episodes)} episodes, "
            f"{self.total_frames} frames at {self.fps} fps in {n_files} file(s).\n"
        )
        logger.info("wrote %d episodes / %d frames to %s", len(self.episodes), self.total_frames, self.root)
        return self.root


# --------------------------------------------------------------------------- reader
def _is_repo_id(s: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", s) is not None


def resolve_dataset_root(
    repo_id_or_path: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    allow_patterns: Sequence[str] | None = None,
) -> Path:
    """A local folder as is; otherwise a Hub dataset repo id resolved by ``huggingface_hub.snapshot_download``.

    Offline (``HF_HUB_OFFLINE=1``) this returns the cached snapshot (``$HF_HUB_CACHE/datasets--org--name``).
    """
    p = Path(repo_id_or_path).expanduser()
    if p.exists():
        return p
    if not _is_repo_id(str(repo_id_or_path)):
        raise FileNotFoundError(f"{repo_id_or_path!r} is neither an existing folder nor a Hub repo id 'org/name'")
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(
            str(repo_id_or_path),
            repo_type="dataset",
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=list(allow_patterns) if allow_patterns is not None else None,
        )
    )


def _read_info(root: Path) -> dict[str, Any]:
    """meta/info.json, with an error naming the file and what is wrong when it is missing, not JSON, or lacks keys."""
    path = root / INFO_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: expected a LeRobot v3 dataset folder (meta/info.json)")
    try:
        info = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from e
    if not isinstance(info, dict):
        raise ValueError(f"{path} holds a {type(info).__name__}: expected a JSON object")
    missing = [k for k in ("fps", "features", "data_path") if k not in info]
    if missing:
        raise ValueError(f"{path} lacks keys {missing}")
    return info


class _EpisodeError(ValueError):
    """An episode that cannot be read as meta/episodes describes it (the message names the episode or its file)."""


def _check_not_failed(path: Path, cache: dict[str, Any]) -> None:
    if path in cache.get("failed", {}):
        raise _EpisodeError(cache["failed"][path])


def _remember_failure(path: Path, cache: dict[str, Any], message: str) -> NoReturn:
    """Record that ``path`` failed (other episodes in it skip without reading it again) and raise."""
    cache.setdefault("failed", {})[path] = message
    raise _EpisodeError(message)


def _column_2d(table: pa.Table, name: str) -> np.ndarray:
    """A list / fixed-size-list (or scalar) column -> ``(N, D)`` numpy."""
    col = table.column(name).combine_chunks()
    n = len(col)
    if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) or pa.types.is_large_list(col.type):
        flat = np.asarray(col.flatten().to_numpy(zero_copy_only=False))
        return flat.reshape(n, -1)
    return np.asarray(col.to_numpy(zero_copy_only=False)).reshape(n, 1)


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
    info = _read_info(root)
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
        states.append(_column_2d(table, state_key).astype(np.float32))
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
        revision, cache_dir: for Hub resolution.
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
        self.info: dict[str, Any] = _read_info(root)
        version = str(self.info.get("codebase_version", ""))
        if not version.startswith("v3"):
            raise ValueError(
                f"{repo_id_or_path}: codebase_version={version!r} is unsupported: expected a LeRobot v3.x dataset"
            )
        self.fps = float(self.info["fps"])
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
                "action": _column_2d(table, self.action_key).astype(np.float32),
                "state": _column_2d(table, self.state_key).astype(np.float32) if self.state_key else None,
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
        return d["frame_index"][rows], states, d["action"][rows]

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
