"""Labelled clips cut from planar-agent trajectories (LeRobot v3 with a 2-D ``observation.state`` (x, y) in [0, 1],
y growing downwards, e.g. Two-Rooms), as a clip classification dataset for probes.

    write_trajectory_clips({"train": "outputs/demo/two_rooms", "test": "outputs/demo/two_rooms_heldout"},
                           "outputs/demo/probe_clips")
    # then: scripts/probe.py --dataset_name outputs/demo/probe_clips --label_column heading --frame_step 1

Each clip is ``frames_per_clip`` frames taken every ``frame_step`` env steps (stored as consecutive frames, so a
reader takes all of them: ``--frame_step 1``), ``clips_per_episode`` windows spread over each episode. Labels, from
the states of the clip's first and last frame:

- ``heading``: the direction of the net displacement in 8 sectors of 45 degrees, named as the built-in moving digits'
  directions (0 right, 1 up-right, 2 up, ..., 7 down-right; screen coordinates). Clips that move less than
  ``min_displacement`` (the agent pressed against a wall) have no heading, and clips moving within
  ``angle_margin`` degrees of the border between two sectors have no clear one: both are left out.
- ``room``: which side of ``wall_x`` the agent ends in (0 left, 1 right).

Each split comes from its own dataset (the test split from episodes collected with another seed: clips the encoder
never saw in pretraining). The folder has the built-in sets' layout (``README.md`` naming the splits,
``data/<split>-00000-of-00001.parquet``, ``generation.json``) and loads with ``datasets.load_dataset(folder)``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hf_jepa.modeling.validation import check_positive

from .builtin import _encode_mp4

logger = logging.getLogger(__name__)

__all__ = ["HEADING_NAMES", "ROOM_NAMES", "heading_of", "write_trajectory_clips"]

HEADING_NAMES = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")
ROOM_NAMES = ("left", "right")

_CARD = """---
configs:
- config_name: default
  data_files:
{files}
task_categories:
- video-classification
---

# Labelled trajectory clips (hf_jepa.data.trajectory_clips)

{frames} frames every {step} env steps, {per_episode} clips per episode; labels `heading` (8 directions of the net
displacement; clips moving less than {min_disp} or within {margin} degrees of a border between headings left out) and
`room` (left / right of x = {wall_x}).
Sources: {sources}. Rows: {counts}.
"""


def heading_of(displacement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heading sector ids (M,) in [0, 8) of (M, 2) displacements (dx, dy) in screen coordinates (y downwards):
    0 right, 2 up, 4 left, 6 down; each sector spans 45 degrees around its direction. Also (M,) the angle in
    degrees to the nearest border between sectors (22.5: straight along a direction, 0: on a border)."""
    angle = np.degrees(np.arctan2(-displacement[:, 1], displacement[:, 0]))  # counter-clockwise on screen
    sector = np.round(angle / 45.0)
    return sector.astype(np.int64) % 8, 22.5 - np.abs(angle - 45.0 * sector)


def _features() -> Any:
    import datasets

    return datasets.Features({
        "id": datasets.Value("string"),
        "video": datasets.Video(),
        "heading": datasets.ClassLabel(names=list(HEADING_NAMES)),
        "room": datasets.ClassLabel(names=list(ROOM_NAMES)),
        "displacement": datasets.Value("float32"),
        "episode_index": datasets.Value("int64"),
        "frame_index": datasets.Value("int64"),
    })


def _split_rows(source: str, split: str, *, frames_per_clip: int, frame_step: int, clips_per_episode: int,
                min_displacement: float, angle_margin: float, wall_x: float) -> tuple[list[dict[str, Any]], int]:
    """Rows of one split from one LeRobot dataset; also the number of windows left out (moving too little or
    along a border between headings)."""
    from .lerobot import LeRobotTrajectoryDataset

    reader = LeRobotTrajectoryDataset(source, frames_per_window=frames_per_clip, frame_skip=frame_step, stride=1,
                                      shuffle=False)
    lengths = {ep: int(m["length"]) for ep, m in reader.episodes_meta.items()}
    rows, still, last_episode, taken = [], 0, None, []
    for item in reader:  # every window of each episode in order (stride 1): keep clips_per_episode evenly spread
        ep = item["episode_index"]
        if ep != last_episode:
            last_episode = ep
            windows = max(0, lengths[ep] - frames_per_clip * frame_step + 1)
            taken = set(np.linspace(0, windows - 1, num=min(clips_per_episode, windows)).round().astype(int).tolist())
        start = int(item["frame_index"][0])
        if start not in taken:
            continue
        states = item["states"].numpy()  # (T, 2)
        move = states[-1] - states[0]  # (2,)
        distance = float(np.linalg.norm(move))
        heading, margin = heading_of(move[None])
        if distance < min_displacement or margin[0] < angle_margin:
            still += 1
            continue
        frames = item["frames"][:, :3].contiguous()  # (T, 3, H, W) uint8
        rows.append({"id": f"{split}-ep{ep:05d}-f{start:04d}", "video": {"bytes": _encode_mp4(frames), "path": None},
                     "heading": int(heading[0]), "room": int(states[-1, 0] >= wall_x),
                     "displacement": distance, "episode_index": int(ep), "frame_index": start})
    return rows, still


def write_trajectory_clips(
    sources: Mapping[str, str | os.PathLike],
    output_dir: str | os.PathLike,
    *,
    frames_per_clip: int = 8,
    frame_step: int = 2,
    clips_per_episode: int = 6,
    min_displacement: float = 0.08,
    angle_margin: float = 7.5,
    wall_x: float = 0.5,
    overwrite: bool = False,
) -> dict[str, int]:
    """Write labelled clips of each split's LeRobot dataset (``{split: path}``) into ``output_dir``.

    Args:
        sources: split name -> LeRobot v3 folder or Hub id (2-D ``observation.state`` (x, y) in [0, 1]).
        output_dir: the dataset folder (written into a temporary folder, then renamed: never half-written).
        frames_per_clip: frames T per clip (the probed encoder's ``num_frames``).
        frame_step: env steps between consecutive frames of a clip.
        clips_per_episode: windows per episode, spread evenly over it.
        min_displacement: clips whose agent moves less (world units) are left out (no heading).
        angle_margin: clips whose motion is within this many degrees of the border between two headings are left
            out (no clear heading; 0 keeps all).
        wall_x: x of the dividing wall (``room``: 0 left of it, 1 right).
        overwrite: replace an existing ``output_dir``; otherwise an existing one is a FileExistsError.

    Returns:
        Rows written per split.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_positive(frames_per_clip=frames_per_clip, frame_step=frame_step, clips_per_episode=clips_per_episode)
    if not sources:
        raise ValueError("sources={}: expected at least one split, e.g. {'train': path, 'test': path}")
    if not min_displacement >= 0:
        raise ValueError(f"min_displacement={min_displacement!r}: expected a number >= 0")
    if not 0 <= angle_margin < 22.5:
        raise ValueError(f"angle_margin={angle_margin!r}: expected degrees in [0, 22.5)")
    out = Path(output_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"output_dir={str(out)!r}: expected a new folder (or overwrite=True)")
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    features = _features()
    counts, left_out = {}, {}
    try:
        (tmp / "data").mkdir()
        for split, source in sources.items():
            rows, still = _split_rows(str(source), split, frames_per_clip=frames_per_clip, frame_step=frame_step,
                                      clips_per_episode=clips_per_episode, min_displacement=min_displacement,
                                      angle_margin=angle_margin, wall_x=wall_x)
            if not rows:
                raise ValueError(f"sources[{split!r}]={str(source)!r}: no clip has a clear heading (moving "
                                 f"{min_displacement} or more, {angle_margin} degrees or more from a border)")
            table = pa.Table.from_pylist([features.encode_example(r) for r in rows], schema=features.arrow_schema)
            pq.write_table(table, tmp / "data" / f"{split}-00000-of-00001.parquet")
            counts[split], left_out[split] = len(rows), still
            headings = np.bincount([r["heading"] for r in rows], minlength=len(HEADING_NAMES))
            logger.info("%s: %d clips from %s (%d left out: moving < %g or within %g deg of a border); headings %s",
                        split, len(rows), source, still, min_displacement, angle_margin, headings.tolist())
        files = "\n".join(f"  - split: {s}\n    path: data/{s}-*.parquet" for s in sources)
        (tmp / "README.md").write_text(_CARD.format(
            files=files, frames=frames_per_clip, step=frame_step, per_episode=clips_per_episode,
            min_disp=min_displacement, margin=angle_margin, wall_x=wall_x,
            sources=", ".join(f"{k}: `{v}`" for k, v in sources.items()),
            counts=", ".join(f"{k} {v}" for k, v in counts.items())))
        generation = {"sources": {k: str(v) for k, v in sources.items()}, "frames_per_clip": frames_per_clip,
                      "frame_step": frame_step, "clips_per_episode": clips_per_episode,
                      "min_displacement": min_displacement, "angle_margin": angle_margin,
                      "wall_x": wall_x, "rows": counts, "left_out": left_out,
                      "seconds": round(time.perf_counter() - start, 2)}
        (tmp / "generation.json").write_text(json.dumps(generation, indent=2))
        if out.exists():
            shutil.rmtree(out)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return counts
