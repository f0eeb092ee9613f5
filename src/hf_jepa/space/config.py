"""The Space's settings (`SpaceConfig`: model sources from environment variables, input and planning limits) and
the two errors every tab turns into a short message."""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_jepa.planning.subgoals import GRAPH_FILENAME

logger = logging.getLogger(__name__)

__all__ = [
    "ENV_ENCODER",
    "ENV_PROBE",
    "ENV_SUBGOALS",
    "ENV_WORLD_MODEL",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "InputError",
    "ModelUnavailable",
    "SpaceConfig",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
ENV_ENCODER, ENV_PROBE, ENV_WORLD_MODEL = "HF_JEPA_ENCODER", "HF_JEPA_PROBE_MODEL", "HF_JEPA_WORLD_MODEL"
ENV_SUBGOALS = "HF_JEPA_SUBGOAL_DATASET"


class InputError(ValueError):
    """An upload or a parameter the app cannot use; the message is shown to the user as it is."""


class ModelUnavailable(RuntimeError):
    """A model folder / Hub id that is missing or does not load; the message says how to make one."""


def _default_path(relative: str) -> str:
    """`relative` under the working directory, else under the repository root (editable installs), else as is."""
    if Path(relative).exists():
        return relative
    root = Path(__file__).resolve().parents[3]
    return str(root / relative) if (root / relative).exists() else relative


@dataclass
class SpaceConfig:
    """Where the models come from and the limits on inputs and planning.

    Attributes:
        encoder, probe_model, world_model: local folders or Hub ids (defaults: what `make demo` writes: the encoder
            pretrained on the built-in textured moving digits and its attentive probe on `digit`, the Two-Rooms
            world model).
        examples: built-in test clips offered as examples on the Features and Probe tabs (0: none).
        max_upload_mb: largest accepted upload.
        max_video_seconds: longest accepted video.
        max_image_pixels: largest accepted image (width * height).
        num_samples, iterations, horizon, max_steps: default planning budget (CEM samples, CEM iterations, plan
            length, MPC steps); the UI lets users change them within `max_plan_*`.
        max_plan_samples, max_plan_steps: upper limits of the planning sliders (and of the API).
        display_size: side of the arena / trajectory images in pixels.
        subgoal_dataset: the world model's training data (LeRobot folder or Hub id) or a saved subgoal graph
            (`*.safetensors`): plans aim at subgoals along the data's shortest path to the goal
            (`hf_jepa.planning.subgoals`; the graph is built or read once, on the first plan). None: the graph saved
            with the world model (its folder or Hub repo), if any (`subgoal_source`); 'none': at the goal.
    """

    encoder: str = "outputs/demo/digits/pretrain/encoder"
    probe_model: str = "outputs/demo/digits/probe/classifier"
    world_model: str = "outputs/demo/world_model"
    examples: int = 3
    max_upload_mb: float = 25.0
    max_video_seconds: float = 30.0
    max_image_pixels: int = 4096 * 4096
    num_samples: int = 300  # the evaluated recipe (docs/planning.md: 300 x 10, H = 6, an elite of a tenth)
    iterations: int = 10
    horizon: int = 6
    max_steps: int = 100
    max_plan_samples: int = 512
    max_plan_steps: int = 150
    display_size: int = 320
    subgoal_dataset: str | None = None

    def subgoal_source(self) -> str | None:
        """Where plans take their subgoals from: `subgoal_dataset` when set ('none': nowhere), else the
        `subgoal_graph.safetensors` of the world model (in its local folder, as `make demo` writes it, or in its
        Hub repo, as `push_to_hub.py` uploads that folder), else None (plans aim at the goal)."""
        if self.subgoal_dataset:
            return None if self.subgoal_dataset.lower() == "none" else self.subgoal_dataset
        if Path(self.world_model).is_dir():
            beside = Path(self.world_model) / GRAPH_FILENAME
            return str(beside) if beside.is_file() else None
        return _hub_subgoal_graph(self.world_model)

    @classmethod
    def from_env(cls, **overrides: Any) -> SpaceConfig:
        """Model sources from HF_JEPA_ENCODER / HF_JEPA_PROBE_MODEL / HF_JEPA_WORLD_MODEL (else `make demo`), the
        subgoal data from HF_JEPA_SUBGOAL_DATASET (else none)."""
        values: dict[str, Any] = {
            "encoder": os.environ.get(ENV_ENCODER) or _default_path(cls.encoder),
            "probe_model": os.environ.get(ENV_PROBE) or _default_path(cls.probe_model),
            "world_model": os.environ.get(ENV_WORLD_MODEL) or _default_path(cls.world_model),
            "subgoal_dataset": os.environ.get(ENV_SUBGOALS) or None,
        }
        values.update(overrides)
        return cls(**values)


@functools.lru_cache(maxsize=8)
def _hub_subgoal_graph(repo_id: str) -> str | None:
    """Local path of `repo_id`'s subgoal_graph.safetensors (downloaded once, or read from the HF cache offline), or
    None when the repo has none or the id is not a Hub repo."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    try:
        return hf_hub_download(repo_id, GRAPH_FILENAME)
    except (EntryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, ValueError) as err:  # ValueError: bad id
        logger.info("no subgoal graph in %s (%s): plans aim at the goal", repo_id, type(err).__name__)
        return None
