"""The Space's settings (`SpaceConfig`: model sources from environment variables, input, planning, queue and Hub
download limits); the errors every tab turns into a short message (`hf_jepa.space.errors`) are re-exported."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hf_jepa.planning.configs import WORLD_MODEL_PLANNER_DEFAULTS
from hf_jepa.planning.subgoals import GRAPH_FILENAME
from hf_jepa.space.errors import HubFileUnavailable, InputError, ModelUnavailable
from hf_jepa.space.hub_files import hub_file

__all__ = [
    "ENV_ENCODER",
    "ENV_PROBE",
    "ENV_PUSHT_WORLD_MODEL",
    "ENV_SUBGOALS",
    "ENV_WORLD_MODEL",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "HubFileUnavailable",
    "InputError",
    "ModelUnavailable",
    "SpaceConfig",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
ENV_ENCODER, ENV_PROBE, ENV_WORLD_MODEL = "HF_JEPA_ENCODER", "HF_JEPA_PROBE_MODEL", "HF_JEPA_WORLD_MODEL"
ENV_SUBGOALS = "HF_JEPA_SUBGOAL_DATASET"
ENV_PUSHT_WORLD_MODEL = "HF_JEPA_PUSHT_WORLD_MODEL"
# the state world model (perfect perception) `scripts/demo.py --env pusht` writes: its best Push-T planner
PUSHT_DEMO_WORLD_MODEL = "outputs/demo_pusht/state_world_model_run/final"


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
        encoder, probe_model, world_model: local folders or Hub ids (defaults: what `make demo` writes: the V-JEPA 2
            encoder pretrained on its Two-Rooms trajectories, the attentive probe on the agent's `heading` on that
            frozen encoder, the Two-Rooms world model).
        pusht_world_model: the Push-T world model of the Plan tab (state_dim 5, action_dim 2), a local folder or Hub
            id; one holding `state_latents.json` (`train_world_model.py --latents state`) plans from the true states.
            None: not configured (the Plan tab says to set HF_JEPA_PUSHT_WORLD_MODEL). `from_env` defaults it to the
            state world model `scripts/demo.py --env pusht` writes (`PUSHT_DEMO_WORLD_MODEL`) when that folder
            exists.
        examples: test clips offered as examples on the Features and Probe tabs (0: none): the first of the probe's
            test split (named by its results.json), else of the built-in textured moving digits.
        max_upload_mb: largest accepted upload (also gradio's upload limit, `launch_kwargs(config)`).
        max_video_seconds: longest accepted video.
        max_video_frames: most frames an accepted video may have (its header's count; only a few are decoded).
        max_image_pixels: largest accepted image (width * height), checked on the header before decoding.
        max_video_pixels: largest accepted video frame (width * height), checked on the header before decoding.
        num_samples, iterations, horizon, max_steps: default planning budget (CEM samples, CEM iterations, plan
            length, MPC steps); the UI lets users change them within `max_plan_*`.
        max_plan_samples, max_plan_steps: upper limits of the planning sliders (and of the API).
        display_size: side of the arena / trajectory images in pixels.
        max_queue_size: requests that may wait in the queue (all tabs together); one more is refused at once with
            gradio's "busy, try again" message instead of waiting without bound.
        plan_concurrency: plans computed at the same time (the rest wait in the queue).
        max_waiting_plans: plans that may wait (part of `max_queue_size`); one more is refused with "The planner is
            busy: ... Try again in a minute." so that long plans cannot fill the queue of the other tabs.
        encoder_concurrency: Features and Probe requests computed at the same time (one group for both tabs).
        max_sessions: browser / client sessions whose state gradio keeps (about 0.1 MB each here); the oldest is
            dropped beyond it (gradio's `state_session_capacity`, default 10000; the tabs keep no state of their own).
        cache_max_age_s: gradio's copies of uploads and results older than this are deleted (checked as often).
        subgoal_dataset: the world model's training data (LeRobot folder or Hub id) or a saved subgoal graph
            (`*.safetensors`): plans aim at subgoals along the data's shortest path to the goal
            (`hf_jepa.planning.subgoals`; the graph is built or read once, on the first plan). None: the graph saved
            with the world model (its folder or Hub repo), if any (`subgoal_source`); 'none': at the goal.
    """

    encoder: str = "outputs/demo/pretrain/encoder"
    probe_model: str = "outputs/demo/probe/classifier"
    world_model: str = "outputs/demo/world_model"
    pusht_world_model: str | None = None
    examples: int = 10
    max_upload_mb: float = 25.0
    max_video_seconds: float = 30.0
    max_video_frames: int = 1800  # 30 s at 60 fps
    max_image_pixels: int = 4096 * 4096
    max_video_pixels: int = 3840 * 2160  # 4K UHD
    num_samples: int = WORLD_MODEL_PLANNER_DEFAULTS["cem"]["num_samples"]  # the evaluated recipe (docs/planning.md)
    iterations: int = WORLD_MODEL_PLANNER_DEFAULTS["cem"]["iterations"]
    horizon: int = WORLD_MODEL_PLANNER_DEFAULTS["cem"]["horizon"]
    max_steps: int = 100
    max_plan_samples: int = 512
    max_plan_steps: int = 150
    display_size: int = 320
    subgoal_dataset: str | None = None
    max_queue_size: int = 16
    plan_concurrency: int = 1
    max_waiting_plans: int = 4
    encoder_concurrency: int = 2
    max_sessions: int = 1000
    cache_max_age_s: int = 3600

    def __post_init__(self) -> None:
        may_be_zero = ("examples",)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if value < 0 or (value == 0 and f.name not in may_be_zero):
                bound = ">= 0" if f.name in may_be_zero else "> 0"
                raise ValueError(f"SpaceConfig.{f.name}={value!r}: expected a number {bound}.")

    def subgoal_source(self) -> str | None:
        """Where plans take their subgoals from: `subgoal_dataset` when set ('none': nowhere), else the
        `subgoal_graph.safetensors` of the world model (in its local folder, as `make demo` writes it, or in its
        Hub repo, as `push_to_hub.py` uploads that folder), else None (plans aim at the goal).

        Raises:
            HubFileUnavailable: the Hub repo's graph could not be fetched now (after huggingface_hub's retries, or
                offline and not in the cache); the next call asks again.
        """
        if self.subgoal_dataset:
            return None if self.subgoal_dataset.lower() == "none" else self.subgoal_dataset
        if Path(self.world_model).is_dir():
            beside = Path(self.world_model) / GRAPH_FILENAME
            return str(beside) if beside.is_file() else None
        path = hub_file(self.world_model, GRAPH_FILENAME)
        return str(path) if path is not None else None

    def pusht_source(self) -> str:
        """The Push-T world model's source (`pusht_world_model`).

        Raises:
            ModelUnavailable: none is configured; the message names the field and the environment variable.
        """
        if not self.pusht_world_model:
            raise ModelUnavailable(
                f"No Push-T world model is configured: set {ENV_PUSHT_WORLD_MODEL} (SpaceConfig.pusht_world_model) "
                f"to a folder or Hub id of a JepaWorldModel trained on Push-T (state_dim 5, action_dim 2), e.g. "
                f"{PUSHT_DEMO_WORLD_MODEL} after `python scripts/demo.py --env pusht`.")
        return self.pusht_world_model

    @classmethod
    def from_env(cls, **overrides: Any) -> SpaceConfig:
        """Model sources from HF_JEPA_ENCODER / HF_JEPA_PROBE_MODEL / HF_JEPA_WORLD_MODEL (else `make demo`) and
        HF_JEPA_PUSHT_WORLD_MODEL (else `scripts/demo.py --env pusht`'s state world model if it exists, else none), the
        subgoal data from HF_JEPA_SUBGOAL_DATASET (else none)."""
        pusht_demo = _default_path(PUSHT_DEMO_WORLD_MODEL)
        values: dict[str, Any] = {
            "encoder": os.environ.get(ENV_ENCODER) or _default_path(cls.encoder),
            "probe_model": os.environ.get(ENV_PROBE) or _default_path(cls.probe_model),
            "world_model": os.environ.get(ENV_WORLD_MODEL) or _default_path(cls.world_model),
            "pusht_world_model": os.environ.get(ENV_PUSHT_WORLD_MODEL) or (
                pusht_demo if Path(pusht_demo).exists() else None),
            "subgoal_dataset": os.environ.get(ENV_SUBGOALS) or None,
        }
        values.update(overrides)
        return cls(**values)

