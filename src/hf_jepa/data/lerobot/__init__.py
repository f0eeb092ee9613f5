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

Modules: :mod:`.meta` (path templates, feature keys, resolving a folder or Hub repo, meta/info.json),
:mod:`.stats` (meta/stats.json accumulators), :mod:`.writer` (:class:`LeRobotWriter`, :func:`encode_video`),
:mod:`.reader` (:class:`LeRobotTrajectoryDataset`, :func:`episode_states`).
"""

from .meta import (
    ACTION_KEY,
    CODEBASE_VERSION,
    DATA_PATH,
    DEFAULT_FEATURES,
    EPISODES_PATH,
    INFO_PATH,
    STATE_KEY,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    resolve_dataset_root,
)
from .reader import LeRobotTrajectoryDataset, episode_states
from .writer import LeRobotWriter, encode_video

__all__ = [
    "ACTION_KEY",
    "CODEBASE_VERSION",
    "DATA_PATH",
    "DEFAULT_FEATURES",
    "EPISODES_PATH",
    "INFO_PATH",
    "STATE_KEY",
    "STATS_PATH",
    "TASKS_PATH",
    "VIDEO_PATH",
    "LeRobotTrajectoryDataset",
    "LeRobotWriter",
    "encode_video",
    "episode_states",
    "resolve_dataset_root",
]
