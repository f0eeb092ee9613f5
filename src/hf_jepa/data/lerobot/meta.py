"""The LeRobot v3.0 layout: path templates and feature keys, resolving a dataset's folder, reading its metadata.

:func:`resolve_dataset_root` turns a local folder or a Hub dataset repo id into a folder, :func:`read_info` reads
``meta/info.json`` with errors naming the file, :func:`column_2d` reads a parquet list column as ``(N, D)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

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


def read_info(root: Path) -> dict[str, Any]:
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


def column_2d(table: pa.Table, name: str) -> np.ndarray:
    """A list / fixed-size-list (or scalar) column -> ``(N, D)`` numpy."""
    col = table.column(name).combine_chunks()
    n = len(col)
    if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) or pa.types.is_large_list(col.type):
        flat = np.asarray(col.flatten().to_numpy(zero_copy_only=False))
        return flat.reshape(n, -1)
    return np.asarray(col.to_numpy(zero_copy_only=False)).reshape(n, 1)
