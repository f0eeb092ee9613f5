"""Writing trajectories in the LeRobot v3.0 layout: :class:`LeRobotWriter` and the mp4 encoder it uses."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torchcodec.encoders import VideoEncoder

from hf_jepa.modeling.validation import check_positive

from . import meta
from .stats import RunningStats, image_stats

logger = logging.getLogger(__name__)


def encode_video(
    frames: np.ndarray, path: str | Path, *, fps: int, codec: str = "libx264", crf: int = 18, gop: int = 10
) -> None:
    """Encode ``uint8 (N, H, W, 3)`` RGB frames to an mp4 at ``fps``.

    Encoded with torchcodec's ``VideoEncoder`` (torchcodec's own FFmpeg libraries). ``yuv420p`` for even sizes
    (``yuv444p`` otherwise); ``gop`` frames between keyframes keeps seeking to an episode cheap.
    """
    frames = np.ascontiguousarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"encode_video frames {frames.dtype} {frames.shape} are invalid: expected uint8 (N, H, W, 3)")
    _, h, w, _ = frames.shape
    pix_fmt = "yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor = torch.from_numpy(frames).permute(0, 3, 1, 2)  # (N, H, W, 3) -> (N, 3, H, W)
    VideoEncoder(tensor, frame_rate=fps).to_file(
        str(path), codec=codec, pixel_format=pix_fmt, crf=crf, extra_options={"g": gop}
    )


def _fixed_list(values: np.ndarray) -> pa.FixedSizeListArray:
    """``(N, D)`` -> arrow ``fixed_size_list<D>`` (LeRobot's ``Sequence(length=D)``)."""
    values = np.ascontiguousarray(values)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


class LeRobotWriter:
    """Write trajectories in the LeRobot v3.0 layout (see the :mod:`hf_jepa.data.lerobot` docstring).

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
        self.stats: dict[str, RunningStats] = {}
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
            frames: ``{camera_key: uint8 (T, H, W, 3)}``, e.g. ``{"observation.image": ...}``; ``{}`` for a
                state-only dataset (no video; frames can be rendered from the states in a second pass).
            states: ``(T, S)`` -> ``observation.state``.
            actions: ``(T, A)``, ``actions[t]`` taken at frame t (moves frame t to t + 1); ``(T - 1, A)`` is
                accepted and padded with one zero action at the end.
            task: natural-language task; indexed in ``meta/tasks.parquet``.

        Returns:
            the episode index.
        """
        if self._finalized:
            raise RuntimeError("LeRobotWriter.add_episode after finalize()")
        frames = {k: np.asarray(v) for k, v in frames.items()}  # {}: a state-only dataset (no video)
        if self.episodes and bool(frames) != bool(self.camera_shapes):
            raise ValueError(f"add_episode frames keys {sorted(frames)} differ from the first episode's "
                             f"{sorted(self.camera_shapes or {})}: every episode has the same cameras (or none)")
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
            meta.STATE_KEY: states,
            meta.ACTION_KEY: actions,
            "timestamp": (frame_index / self.fps).astype(np.float32),
            "frame_index": frame_index,
            "episode_index": np.full(t, ep, np.int64),
            "index": self.total_frames + frame_index,
            "task_index": np.full(t, task_index, np.int64),
        }
        ep_stats = {k: RunningStats() for k in columns}
        for k, v in columns.items():
            ep_stats[k].update(v.reshape(t, -1))
        for k, v in frames.items():
            ep_stats[k] = image_stats(v)
        for k, st in ep_stats.items():
            self.stats.setdefault(k, RunningStats()).merge(st)
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
        path = self.root / meta.DATA_PATH.format(chunk_index=chunk, file_index=file)
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
                self.root / meta.VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file),
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
        feats[meta.STATE_KEY] = {"dtype": "float32", "shape": [len(self.state_names)], "names": self.state_names}
        feats[meta.ACTION_KEY] = {"dtype": "float32", "shape": [len(self.action_names)], "names": self.action_names}
        feats.update(meta.DEFAULT_FEATURES)
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
            "codebase_version": meta.CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": len(self.episodes),
            "total_frames": self.total_frames,
            "total_tasks": len(self.tasks),
            "chunks_size": self.chunks_size,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200,
            "fps": self.fps,
            "splits": {"train": f"0:{len(self.episodes)}"},
            "data_path": meta.DATA_PATH,
            "video_path": meta.VIDEO_PATH if self.camera_shapes else None,
            "features": self._features(),
        }
        (self.root / "meta").mkdir(parents=True, exist_ok=True)
        (self.root / meta.INFO_PATH).write_text(json.dumps(info, indent=4))
        stats = {k: st.to_dict() for k, st in self.stats.items()}
        (self.root / meta.STATS_PATH).write_text(json.dumps(stats, indent=4))
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
        pq.write_table(task_table, self.root / meta.TASKS_PATH)
        for ep in self.episodes:
            ep.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        ep_path = self.root / meta.EPISODES_PATH.format(chunk_index=0, file_index=0)
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
