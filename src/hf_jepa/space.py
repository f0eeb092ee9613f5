"""The Gradio Space: patch-feature PCA, probe classification and goal-image planning in Two-Rooms.

`spaces/app.py` only calls :func:`build_demo`; everything it shows is computed here so it can be tested without a
browser. Models come from local folders or Hub ids named by environment variables (defaults: what `make demo`
leaves)::

    HF_JEPA_ENCODER       V-JEPA 2 / I-JEPA encoder (or a folder holding one)      outputs/demo/digits/pretrain/encoder
    HF_JEPA_PROBE_MODEL   VideoJepaForVideoClassification / ImageJepaForImageClassification
                                                                                   outputs/demo/digits/probe/classifier
    HF_JEPA_WORLD_MODEL   JepaWorldModel (V-JEPA 2-AC)                                 outputs/demo/world_model
    HF_JEPA_SUBGOAL_DATASET  the world model's LeRobot training data, or the subgoal_graph.safetensors that
                             train_world_model.py --save_subgoal_graph wrote; planning then aims at subgoals
                             along the data's shortest path (hf_jepa.subgoals); 'none': at the goal
                             (unset: the world model's saved graph, local or on the Hub, if any, else the goal)

The Features and Probe tabs say what their model was trained on, from what the pretraining and probe scripts
recorded in its model card (`hf_jepa.hub.read_card_metadata`), and offer clips of the built-in
`textured_moving_digits` test split as examples (generated on first use, nothing downloaded).

A missing model never crashes the app: its tab says how to make it. Inputs are validated (file type, size, image
pixels, video length) and every failure reaches the UI as a short `gr.Error` message. Endpoints are named
(`/features`, `/probe`, `/plan`) for `gradio_client`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from hf_jepa.data.transforms import EvalTransform
from hf_jepa.envs.two_rooms import TwoRoomsEnv
from hf_jepa.planning import CEMConfig, Episode, run_mpc
from hf_jepa.planning_eval import planner_config
from hf_jepa.subgoals import GRAPH_FILENAME, LatentSubgoalGraph, subgoal_graph_from
from hf_jepa.wm_adaptation import ADAPT_STEPS
from hf_jepa.wm_planner import WorldModelPlanner

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "FeatureResult",
    "InputError",
    "ModelUnavailable",
    "PlanOutput",
    "SpaceConfig",
    "build_demo",
    "classify",
    "clear_model_cache",
    "describe_model",
    "example_clips",
    "extract_patch_features",
    "features_panel",
    "load_model",
    "load_subgoal_graph",
    "model_status",
    "pca_rgb",
    "plan_in_two_rooms",
    "read_media",
    "render_arena",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
ENV_ENCODER, ENV_PROBE, ENV_WORLD_MODEL = "HF_JEPA_ENCODER", "HF_JEPA_PROBE_MODEL", "HF_JEPA_WORLD_MODEL"
ENV_SUBGOALS = "HF_JEPA_SUBGOAL_DATASET"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
_MAKE_HINT = {
    "encoder": "Run `make demo` to train one (it writes outputs/demo/digits/pretrain/encoder), or set "
               "HF_JEPA_ENCODER to a folder or Hub id of a V-JEPA 2 / I-JEPA model.",
    "probe": "Run `make demo` to train one (it writes outputs/demo/digits/probe/classifier; or `scripts/probe.py` "
             "on your own encoder), or set HF_JEPA_PROBE_MODEL to a folder or Hub id of a "
             "VideoJepaForVideoClassification / ImageJepaForImageClassification model.",
    "world model": "Run `make demo` to train one (it writes outputs/demo/world_model), or set "
                   "HF_JEPA_WORLD_MODEL to a folder or Hub id of a JepaWorldModel.",
}


class InputError(ValueError):
    """An upload or a parameter the app cannot use; the message is shown to the user as it is."""


class ModelUnavailable(RuntimeError):
    """A model folder / Hub id that is missing or does not load; the message says how to make one."""


# ---------------------------------------------------------------------------------------------------------------
# configuration


def _default_path(relative: str) -> str:
    """`relative` under the working directory, else under the repository root (editable installs), else as is."""
    if Path(relative).exists():
        return relative
    root = Path(__file__).resolve().parents[2]
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
            (`hf_jepa.subgoals`; the graph is built or read once, on the first plan). None: the graph saved with
            the world model (its folder or Hub repo), if any (`subgoal_source`); 'none': at the goal.
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


# ---------------------------------------------------------------------------------------------------------------
# models


_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


def clear_model_cache() -> None:
    """Forget loaded models (tests; or after replacing a folder)."""
    with _MODELS_LOCK:
        _MODELS.clear()


def _check_source(source: str, what: str) -> str:
    """A local folder with config.json, or something shaped like a Hub id; else ModelUnavailable."""
    path = Path(source).expanduser()
    if (path / "config.json").is_file():
        return str(path)
    if path.exists():
        raise ModelUnavailable(f"No {what} at `{source}`: the folder has no config.json. {_MAKE_HINT[what]}")
    if _HUB_ID.fullmatch(source) and not source.startswith(("outputs/", "./", "../")):
        return source
    raise ModelUnavailable(f"No {what} found at `{source}`. {_MAKE_HINT[what]}")


def model_status(source: str, what: str) -> tuple[bool, str]:
    """(available, Markdown line) for a model source, without loading it."""
    try:
        resolved = _check_source(source, what)
    except ModelUnavailable as err:
        return False, f"**Model missing.** {err}"
    kind = "folder" if Path(resolved).exists() else "Hub repo"
    return True, f"Model: `{source}` ({kind})."


def _model_class(architecture: str) -> type | None:
    from hf_jepa.modeling import modeling_easy_ijepa, modeling_easy_vjepa2, modeling_easy_vjepa2_ac

    for module in (modeling_easy_vjepa2_ac, modeling_easy_vjepa2, modeling_easy_ijepa):
        cls = getattr(module, architecture, None)
        if isinstance(cls, type):
            return cls
    return None


def load_model(source: str, what: str) -> nn.Module:
    """Load (once per source, then cached) the model a folder / Hub id holds, in eval mode, on CPU.

    The class is the config's first `architectures` entry looked up in hf_jepa's modeling modules (so encoders,
    pretraining models, classifiers and world models all load as what they were saved as); other architectures
    go through `AutoModel`.

    Raises:
        ModelUnavailable: the source is missing or does not load (message with how to make one).
    """
    resolved = _check_source(source, what)

    def build() -> nn.Module:
        from transformers import AutoConfig, AutoModel

        import hf_jepa  # noqa: F401  (registers our model types)

        config = AutoConfig.from_pretrained(resolved)
        archs = getattr(config, "architectures", None) or []
        cls = _model_class(archs[0]) if archs else None
        return (cls or AutoModel).from_pretrained(resolved).eval()

    return _load_once(resolved, f"{what} from {resolved}", build,
                      lambda err: f"Could not load the {what} from `{source}`: {err}. {_MAKE_HINT[what]}")


def _load_once(key: str, what: str, build: Callable[[], Any], message: Callable[[Exception], str]) -> Any:
    """`build()` once per `key` (then cached), timed and logged; any failure -> ModelUnavailable(message(err))."""
    with _MODELS_LOCK:
        if key not in _MODELS:
            start = time.perf_counter()
            try:
                _MODELS[key] = build()
            except Exception as err:  # noqa: BLE001  (any loading failure becomes a message in the UI)
                logger.exception("loading %s failed", what)
                raise ModelUnavailable(message(err)) from err
            logger.info("loaded %s (%s) in %.1fs", what, type(_MODELS[key]).__name__, time.perf_counter() - start)
        return _MODELS[key]


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


def load_subgoal_graph(dataset: str, model: nn.Module) -> LatentSubgoalGraph:
    """The subgoal graph of `dataset`'s frames encoded by `model`, or read from a saved graph file (built or read
    once per source and model, then cached).

    Raises:
        ModelUnavailable: the dataset is missing or does not read (message naming HF_JEPA_SUBGOAL_DATASET).
    """
    return _load_once(f"subgoals:{dataset}:{id(model)}", f"subgoal graph of {dataset}",
                      lambda: subgoal_graph_from(dataset, model, show_progress=False),
                      lambda err: f"Could not build subgoals from `{dataset}` ({ENV_SUBGOALS}): {err}. Point it at "
                                  f"the world model's LeRobot training data or its subgoal_graph.safetensors, or set "
                                  f"it to `none` to plan toward the goal.")


# ---------------------------------------------------------------------------------------------------------------
# what a model was trained on


def _model_file(source: str, filename: str) -> Path | None:
    """`filename` of a local model folder or Hub repo (downloaded once, or read from the HF cache offline), or None
    when it has none."""
    if Path(source).is_dir():
        path = Path(source) / filename
        return path if path.is_file() else None
    return _hub_file(source, filename)


@functools.lru_cache(maxsize=32)
def _hub_file(source: str, filename: str) -> Path | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(source, filename))
    except (EntryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, ValueError) as err:  # ValueError: bad id
        logger.info("no %s for %s (%s)", filename, source, type(err).__name__)
        return None


def _family(source: str) -> str | None:
    """The family name (V-JEPA 2, I-JEPA, ...) of a model folder / Hub id from its config.json."""
    from hf_jepa.hub import FAMILIES

    path = _model_file(source, "config.json")
    try:
        model_type = json.loads(path.read_text()).get("model_type") if path is not None else None
    except (OSError, ValueError):
        return None
    family = FAMILIES.get(model_type)
    return family.name if family is not None else None


def _pretraining_text(training: dict[str, Any], family: str | None, verb: str = "pretrained") -> str:
    """'V-JEPA 2 tiny, pretrained 300 steps on `data` (objective meta)' from a card's recorded training."""
    model = " ".join(str(x) for x in (family or "encoder", training.get("preset")) if x)
    overrides = training.get("config_overrides") or {}
    if overrides:
        model += f" ({', '.join(f'{k}={v}' for k, v in overrides.items())})"
    steps = training.get("steps")
    text = f"{model}, {verb}" + (f" {steps} steps" if steps is not None else "")
    if training.get("dataset"):
        text += f" on `{training['dataset']}`"
    return text + (f" (objective {training['objective']})" if training.get("objective") else "")


def describe_model(source: str, what: str) -> str:
    """One Markdown sentence saying what a model was trained on, from what the scripts recorded in its model card
    (`hf_jepa.hub.read_card_metadata`), or "" when the card records nothing (or the model is missing).

    what="encoder": "Trained: V-JEPA 2 tiny, pretrained 300 steps on `builtin:textured_moving_digits` (objective
    meta)." what="probe": "Trained: attentive probe on `digit` of `builtin:textured_moving_digits`, top-1 57.5% on
    its test split (480 samples); its frozen encoder: V-JEPA 2 tiny, pretrained 300 steps on ...". Cards written
    before the scripts recorded this fall back to the card's standard `datasets` / `model-index` metadata.
    """
    from huggingface_hub import ModelCard

    from hf_jepa.hub import read_card_metadata

    try:
        _check_source(source, what)
    except ModelUnavailable:
        return ""
    card = _model_file(source, "README.md")
    if card is None:
        return ""
    recorded = read_card_metadata(card)
    family = _family(source)
    if what == "probe" and (probe := recorded.get("probe")):
        text = f"{probe.get('type', 'a')} probe on `{probe.get('label_column')}` of `{probe.get('dataset')}`"
        if probe.get("top1") is not None:
            text += f", top-1 {100 * probe['top1']:.1f}% on its {probe.get('split', 'test')} split"
            text += f" ({probe['num_samples']} samples)" if probe.get("num_samples") else ""
        encoder = recorded.get("encoder") or {}
        if encoder.get("training"):
            text += f"; its frozen encoder: {_pretraining_text(encoder['training'], family)}"
        elif encoder.get("model"):
            text += f"; its frozen encoder: `{encoder['model']}`"
        return f"Trained: {text}."
    training = recorded.get("training") or (recorded.get("encoder") or {}).get("training")  # encoder or classifier
    if training:
        verb = "trained" if what == "world model" else "pretrained"
        return f"Trained: {_pretraining_text(training, family, verb)}."
    try:  # older cards: the standard metadata
        data = ModelCard.load(card).data
    except Exception:  # noqa: BLE001
        return ""
    results = [r for r in (data.eval_results or []) if r.metric_type == "top1_accuracy"]
    if results:
        r = results[0]
        return f"Trained: probe with top-1 {100 * r.metric_value:.1f}% on `{r.dataset_name}` ({r.dataset_split})."
    if data.datasets:
        return f"Trained: {family or 'model'} trained on {', '.join(f'`{d}`' for d in data.datasets)}."
    return ""


# ---------------------------------------------------------------------------------------------------------------
# example clips

EXAMPLE_DATASET = "textured_moving_digits"
DIRECTION_NAMES = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")  # data.builtin


def example_clips(count: int = 3, out_dir: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """The first `count` clips of the built-in `textured_moving_digits` test split as mp4 files, with labels:
    [(path, "digit 6 moving up-left"), ...].

    The clips come from a small variant of the data set (`count` test clips, one training clip; the test split's
    clips do not depend on the number of training clips), generated by `hf_jepa.data.builtin` on first use into its
    cache; the mp4 bytes are written to `out_dir` (default: a folder in the temp dir) unless already there.
    """
    import pyarrow.parquet as pq

    from hf_jepa.data.builtin import builtin_dataset_path

    if count < 1:
        return []
    folder = builtin_dataset_path(EXAMPLE_DATASET, num_train=1, num_test=count, num_shards=1)
    out = Path(out_dir) if out_dir is not None else Path(tempfile.gettempdir()) / "hf_jepa_space_examples"
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for shard in sorted((folder / "data").glob("test-*.parquet")):
        for row in pq.read_table(shard, columns=["id", "video", "digit", "direction"]).to_pylist():
            direction = DIRECTION_NAMES[row["direction"]]
            path = out / f"{EXAMPLE_DATASET}-{row['id']}-digit{row['digit']}-{direction}.mp4"
            if not path.is_file():
                path.write_bytes(row["video"]["bytes"])
            clips.append((str(path), f"digit {row['digit']} moving {direction}"))
    return clips[:count]


def _examples(config: SpaceConfig) -> list[tuple[str, str]]:
    """`example_clips(config.examples)`, or none (logged) when they cannot be made: the app runs without them."""
    try:
        return example_clips(config.examples)
    except Exception:  # noqa: BLE001
        logger.exception("could not make the example clips; the Features and Probe tabs have none")
        return []


# ---------------------------------------------------------------------------------------------------------------
# inputs


def _check_upload(path: str | os.PathLike | None, config: SpaceConfig) -> tuple[Path, str]:
    if path is None or str(path) == "":
        raise InputError("Upload an image or a short video first.")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"The upload `{path.name}` could not be read; try again.")
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
        raise InputError(
            f"Unsupported file type `{ext or path.name}`: upload an image ({', '.join(IMAGE_EXTENSIONS)}) "
            f"or a video ({', '.join(VIDEO_EXTENSIONS)})."
        )
    size_mb = path.stat().st_size / 2**20
    if size_mb > config.max_upload_mb:
        raise InputError(f"The file is {size_mb:.1f} MB: the limit is {config.max_upload_mb:g} MB.")
    return path, ("image" if ext in IMAGE_EXTENSIONS else "video")


def read_media(path: str | os.PathLike | None, config: SpaceConfig, *, num_frames: int = 16) -> tuple[Tensor, str]:
    """An uploaded image or video -> (uint8 frames (T, 3, H, W), "image" | "video").

    Images give T = 1 (the first frame of an animated GIF). Videos give `num_frames` frames spread uniformly over
    the whole clip (fewer if the clip is shorter).

    Raises:
        InputError: unsupported type, too large, too long, or not decodable.
    """
    path, kind = _check_upload(path, config)
    if kind == "image":
        try:
            with Image.open(path) as img:
                if img.width * img.height > config.max_image_pixels:
                    raise InputError(f"The image is {img.width}x{img.height}: the limit is "
                                     f"{config.max_image_pixels:,} pixels.")
                rgb = np.asarray(img.convert("RGB"))  # (H, W, 3) uint8
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001
            raise InputError(f"`{path.name}` is not a readable image ({type(err).__name__}).") from err
        return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None], "image"  # (1, 3, H, W)
    try:
        from torchcodec.decoders import VideoDecoder

        decoder = VideoDecoder(str(path), seek_mode="approximate", dimension_order="NCHW")
        meta = decoder.metadata
        total = meta.num_frames if meta.num_frames is not None else len(decoder)
        duration = meta.duration_seconds
    except Exception as err:  # noqa: BLE001
        raise InputError(f"`{path.name}` is not a readable video ({type(err).__name__}).") from err
    if duration is not None and duration > config.max_video_seconds:
        raise InputError(f"The video is {duration:.1f} s long: the limit is {config.max_video_seconds:g} s.")
    if not total:
        raise InputError(f"`{path.name}` has no frames.")
    indices = np.linspace(0, total - 1, num=min(num_frames, total)).round().astype(int).tolist()
    try:
        frames = decoder.get_frames_at(indices=indices).data  # (T, 3, H, W) uint8
    except Exception as err:  # noqa: BLE001
        raise InputError(f"`{path.name}` could not be decoded ({type(err).__name__}).") from err
    if frames.shape[0] < num_frames:  # short clip: repeat the last frame
        frames = torch.cat([frames, frames[-1:].expand(num_frames - frames.shape[0], -1, -1, -1)])
    return frames, "video"


def _denormalize(x: Tensor, mean: list[float], std: list[float]) -> np.ndarray:
    """float (..., 3, H, W) normalised -> uint8 (..., H, W, 3)."""
    m = torch.tensor(mean).view(3, 1, 1)
    s = torch.tensor(std).view(3, 1, 1)
    return ((x * s + m).clamp(0, 1) * 255).round().byte().movedim(-3, -1).numpy()


# ---------------------------------------------------------------------------------------------------------------
# features


@dataclass
class FeatureResult:
    """Patch features of an input and what the encoder saw.

    Attributes:
        tokens: (T', H', W', D) patch features (T' = 1 for images).
        frames: (T', S, S, 3) uint8 model inputs, one per feature time step (the first frame of each tubelet).
    """

    tokens: Tensor
    frames: np.ndarray


def _encoder_of(model: nn.Module) -> nn.Module:
    from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaModel
    from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaModel

    if isinstance(model, (ImageJepaModel, VideoJepaModel)):
        return model
    for name in ("target_encoder", "encoder"):  # pretraining / classification (EMA target first) / world model
        sub = getattr(model, name, None)
        if isinstance(sub, (ImageJepaModel, VideoJepaModel)):
            return sub
    raise ModelUnavailable(f"{type(model).__name__} has no I-JEPA / V-JEPA 2 encoder to take features from.")


@torch.no_grad()
def extract_patch_features(model: nn.Module, frames: Tensor, *, max_image_frames: int = 8) -> FeatureResult:
    """Patch features of uint8 frames (T, 3, H, W) from any of our models' encoder.

    V-JEPA 2 encoders take the clip (T is cut to a multiple of the tubelet; one image is repeated to a tubelet);
    I-JEPA encoders take each frame (at most `max_image_frames`, spread over the clip). Frames are resized (short
    side) and centre-cropped to the encoder's `image_size` and normalised with its mean / std.
    """
    encoder = _encoder_of(model)
    cfg = encoder.config
    transform = EvalTransform(cfg.image_size, crop_fraction=1.0, mean=tuple(cfg.image_mean), std=tuple(cfg.image_std))
    x = transform(frames.contiguous())  # (T, 3, S, S)
    side = cfg.image_size // cfg.patch_size
    tubelet = getattr(cfg, "tubelet_size", None)
    if tubelet is not None:  # V-JEPA 2: one clip
        if x.shape[0] < tubelet:
            x = torch.cat([x, x[-1:].expand(tubelet - x.shape[0], -1, -1, -1)])
        x = x[: x.shape[0] // tubelet * tubelet]  # (T, 3, S, S), T % tubelet == 0
        h = encoder(x[None]).last_hidden_state[0]  # (T/tubelet * side * side, D)
        tokens = h.reshape(x.shape[0] // tubelet, side, side, h.shape[-1])  # (T', H', W', D)
        shown = x[::tubelet]
    else:  # I-JEPA: frame by frame
        keep = np.linspace(0, x.shape[0] - 1, num=min(max_image_frames, x.shape[0])).round().astype(int)
        x = x[torch.as_tensor(keep)]
        h = encoder(x).last_hidden_state  # (T, side * side, D)
        tokens = h.reshape(x.shape[0], side, side, h.shape[-1])
        shown = x
    return FeatureResult(tokens=tokens.float(), frames=_denormalize(shown, cfg.image_mean, cfg.image_std))


def pca_rgb(tokens: Tensor) -> np.ndarray:
    """(..., D) features -> (..., 3) float in [0, 1]: the first 3 principal components (fitted on all tokens
    jointly, so colours agree across frames), each scaled by its 1st-99th percentile range."""
    flat = tokens.reshape(-1, tokens.shape[-1]).double()  # (N, D)
    flat = flat - flat.mean(0, keepdim=True)
    k = min(3, *flat.shape)
    _, _, v = torch.linalg.svd(flat, full_matrices=False)  # v: (min(N, D), D)
    proj = flat @ v[:k].T  # (N, k)
    if k < 3:
        proj = torch.cat([proj, proj.new_zeros(proj.shape[0], 3 - k)], dim=1)
    lo = torch.quantile(proj, 0.01, dim=0)
    hi = torch.quantile(proj, 0.99, dim=0)
    rgb = ((proj - lo) / (hi - lo).clamp_min(1e-8)).clamp(0, 1)  # (N, 3)
    return rgb.reshape(*tokens.shape[:-1], 3).float().numpy()


def _upscale(image: np.ndarray, size: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (size, size, 3) nearest-neighbour (PIL)."""
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.NEAREST))


def features_panel(result: FeatureResult, *, tile: int = 192, max_columns: int = 8, gap: int = 4) -> np.ndarray:
    """uint8 (H, W, 3) on white: an image and its PCA map side by side; for a clip, the input frames on the top row
    and their PCA maps below (at most `max_columns` time steps)."""
    maps = (pca_rgb(result.tokens) * 255).round().astype(np.uint8)  # (T', H', W', 3)
    n = min(len(maps), max_columns)
    cols = np.linspace(0, len(maps) - 1, num=n).round().astype(int)
    tiles = [(np.asarray(Image.fromarray(result.frames[t]).resize((tile, tile), Image.Resampling.BILINEAR)),
              _upscale(maps[t], tile)) for t in cols]
    if n == 1:  # one image: [input | PCA]
        panel = np.full((tile, 2 * tile + gap, 3), 255, dtype=np.uint8)
        panel[:, :tile], panel[:, tile + gap:] = tiles[0]
        return panel
    panel = np.full((2 * tile + gap, n * tile + (n - 1) * gap, 3), 255, dtype=np.uint8)
    for j, (frame, pca) in enumerate(tiles):
        x0 = j * (tile + gap)
        panel[:tile, x0:x0 + tile] = frame
        panel[tile + gap:, x0:x0 + tile] = pca
    return panel


# ---------------------------------------------------------------------------------------------------------------
# probe

try:  # the probing pipeline's eval geometry (224/256 centre crop for video, whole frame for images)
    from hf_jepa.processing import IMAGE_EVAL_CROP_FRACTION as _IMAGE_CROP
    from hf_jepa.processing import VIDEO_EVAL_CROP_FRACTION as _VIDEO_CROP
except ImportError:  # pragma: no cover
    _IMAGE_CROP, _VIDEO_CROP = 1.0, 224 / 256


@torch.no_grad()
def classify(model: nn.Module, frames: Tensor, *, top_k: int = 5) -> dict[str, float]:
    """Top-k class probabilities {label: p} of a classifier on uint8 frames (T, 3, H, W).

    Video classifiers get `num_frames` frames (an image is repeated into a static clip); image classifiers get the
    middle frame. Frames are resized and centre-cropped as the models' processors do (`hf_jepa.processing`:
    224/256 of the short side for video, the whole frame for images) to `image_size` and normalised with the
    config's mean / std.
    """
    cfg = model.config
    if not hasattr(cfg, "id2label") or getattr(cfg, "num_labels", 0) < 1:
        raise ModelUnavailable(f"{type(model).__name__} is not a classifier (no labels in its config).")
    is_video = getattr(cfg, "tubelet_size", None) is not None
    crop = _VIDEO_CROP if is_video else _IMAGE_CROP  # the geometry of the saved model's processor
    transform = EvalTransform(cfg.image_size, crop_fraction=crop, mean=tuple(cfg.image_mean), std=tuple(cfg.image_std))
    if is_video:
        t = cfg.num_frames
        idx = np.linspace(0, frames.shape[0] - 1, num=t).round().astype(int)
        x = transform(frames[torch.as_tensor(idx)].contiguous())[None]  # (1, T, 3, S, S)
        logits = model(pixel_values_videos=x).logits[0]
    else:
        x = transform(frames[frames.shape[0] // 2].contiguous())[None]  # (1, 3, S, S)
        logits = model(pixel_values=x).logits[0]
    probs = logits.float().softmax(-1)
    top = probs.topk(min(top_k, probs.numel()))
    return {str(cfg.id2label.get(int(i), str(int(i)))): float(p) for p, i in zip(top.values, top.indices,
                                                                                   strict=True)}


# ---------------------------------------------------------------------------------------------------------------
# planning in Two-Rooms


GOAL_COLOR = (40, 220, 120)
TRAIL_COLOR = (90, 170, 255)


def _disk_mask(size: int, center: tuple[float, float], radius: float, width: float | None = None) -> np.ndarray:
    """(size, size) bool: a disk (or a ring of `width`) at `center` (x, y) in world units, radius in pixels."""
    c = (np.arange(size) + 0.5)
    dist = np.hypot(c[None, :] - center[0] * size, c[:, None] - center[1] * size)
    return dist <= radius if width is None else (dist <= radius) & (dist >= radius - width)


def render_arena(env: TwoRoomsEnv, agent: np.ndarray, goal: np.ndarray, *, size: int,
                 trail: list[np.ndarray] | None = None, base: np.ndarray | None = None) -> np.ndarray:
    """The arena at `size` px with the agent at `agent`, a green goal ring at `goal` and an optional trail.

    `base`: an already rendered (H, W, 3) observation to draw on (else `env.render_state(agent)`).
    """
    frame = _upscale(base if base is not None else env.render_state(agent), size).copy()
    scale = size / env.config.image_size
    radius = env.config.agent_radius * env.config.image_size * scale
    for p in trail or []:
        frame[_disk_mask(size, (float(p[0]), float(p[1])), max(1.5, radius * 0.25))] = TRAIL_COLOR
    frame[_disk_mask(size, (float(goal[0]), float(goal[1])), radius * 1.6, width=max(2.0, radius * 0.45))] = (
        GOAL_COLOR)
    return frame


@dataclass
class PlanOutput:
    """What the Plan tab shows.

    Attributes:
        episode: the MPC episode.
        trajectory_gif: animated GIF of the episode (arena, goal ring, trail).
        goal_png: the goal image the planner was given (upscaled).
        summary: Markdown: success, final distance, steps, planning time.
    """

    episode: Episode
    trajectory_gif: str
    goal_png: str
    summary: str
    energies: list[float] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)


class _FixedStartGoal:
    """A TwoRoomsEnv whose `reset` always uses the given start and goal (run_mpc resets without options)."""

    def __init__(self, env: TwoRoomsEnv, start: np.ndarray, goal: np.ndarray) -> None:
        self.env, self.start, self.goal = env, start, goal

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        return self.env.reset(seed=seed, options={"start": self.start, "goal": self.goal})

    def step(self, action: np.ndarray) -> tuple:
        return self.env.step(action)

    def render(self) -> np.ndarray:
        return self.env.render()


def check_position(env: TwoRoomsEnv, xy: tuple[float, float], name: str) -> np.ndarray:
    """(x, y) in world units if the agent can stand there, else InputError naming the position."""
    p = np.asarray(xy, dtype=np.float64).reshape(-1)
    if p.shape != (2,) or not np.all(np.isfinite(p)) or not env.is_free(p):
        raise InputError(f"The {name} ({p[0]:.2f}, {p[1]:.2f}) is inside a wall or outside the rooms: pick a spot "
                         "on the black floor.")
    return p


def plan_in_two_rooms(
    model: nn.Module,
    start: tuple[float, float],
    goal: tuple[float, float],
    *,
    cem: CEMConfig,
    max_steps: int,
    seed: int = 0,
    adapt_steps: int = ADAPT_STEPS,
    subgoals: LatentSubgoalGraph | None = None,
    display_size: int = 320,
    out_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PlanOutput:
    """Run MPC with a world model from `start` to `goal` (world units) in Two-Rooms; write the GIF and goal PNG.

    Args:
        model: a `JepaWorldModel` with 2-D actions and states.
        start, goal: (x, y) in [0, 1] world units (validated: free positions).
        cem: the planner config in model action units (`hf_jepa.planning_eval.planner_config`); each planned
            action runs as the model's `frame_skip` env steps.
        max_steps: MPC steps (the episode also ends on success).
        seed: seeds the planner's generator.
        adapt_steps: test-time adaptation steps per executed action (`WorldModelPlanner`; on a copy of `model`).
        subgoals: plan toward subgoals of this graph of `model`'s training frames (None: toward the goal).
        display_size: side of the GIF / goal image.
        out_dir: where the files go (default: a new temporary folder).
        progress: called as `progress(step, max_steps)` before each replan.
    """
    from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel

    if not isinstance(model, JepaWorldModel):
        raise ModelUnavailable(f"The world model is a {type(model).__name__}, not a JepaWorldModel.")
    if model.config.action_dim != 2 or model.config.state_dim != 2:
        raise ModelUnavailable(f"Two-Rooms needs 2-D actions and states; the world model has action_dim="
                               f"{model.config.action_dim}, state_dim={model.config.state_dim}.")
    env = TwoRoomsEnv(max_episode_steps=max(max_steps, 1))
    start_p, goal_p = check_position(env, start, "start"), check_position(env, goal, "goal")
    k = int(model.config.frame_skip)  # env steps per planned action
    planner = WorldModelPlanner(model, config=cem, reduction="ramp", adapt_steps=adapt_steps, subgoals=subgoals)
    inner = planner.plan_fn(seed=seed, action_repeat=k)
    calls = {"n": 0}

    def plan_fn(observation: Any, goal_image: Any, info: Any) -> Any:
        if progress is not None:
            progress(min(calls["n"] * k, max_steps), max_steps)
        calls["n"] += 1
        return inner(observation, goal_image, info)

    start_time = time.perf_counter()
    episode = run_mpc(_FixedStartGoal(env, start_p, goal_p), plan_fn, max_steps=max_steps, seed=seed,
                      execute_actions=k)
    seconds = time.perf_counter() - start_time
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="hf_jepa_plan_"))
    out.mkdir(parents=True, exist_ok=True)
    frames = [render_arena(env, s, goal_p, size=display_size, trail=list(episode.states[:i + 1]), base=f)
              for i, (f, s) in enumerate(zip(episode.frames, episode.states, strict=True))]
    frames += [frames[-1]] * 5  # hold the last frame
    gif = out / "trajectory.gif"
    images = [Image.fromarray(f) for f in frames]
    images[0].save(gif, save_all=True, append_images=images[1:], duration=120, loop=0, optimize=False)
    goal_png = out / "goal.png"
    Image.fromarray(_upscale(env.render_state(goal_p), display_size)).save(goal_png)
    energies = [float(h[-1]) for h in episode.energies if h]
    distances = [float(np.linalg.norm(np.asarray(s, dtype=np.float64) - goal_p)) for s in episode.states]
    verdict = "**Reached the goal**" if episode.success else "**Did not reach the goal**"
    summary = (f"{verdict} in {len(episode.actions)} steps (limit {max_steps}). Final distance "
               f"{distances[-1]:.3f} (success below {env.config.success_radius:g}). Planning "
               f"{episode.seconds_per_action:.2f} s per action, {seconds:.1f} s in all. "
               + (f"Aimed at subgoals on the training data's shortest path ({subgoals.nodes.shape[0]} frames)."
                  if subgoals is not None else "Aimed at the goal image."))
    logger.info("plan %s -> %s: success=%s steps=%d final_distance=%.3f", start_p, goal_p, episode.success,
                len(episode.actions), distances[-1])
    return PlanOutput(episode=episode, trajectory_gif=str(gif), goal_png=str(goal_png), summary=summary,
                      energies=energies, distances=distances)


def energy_figure(energies: list[float], distances: list[float], steps_per_plan: int = 1) -> Any:
    """A matplotlib Figure: planner energy at each replan (every `steps_per_plan` env steps) and the distance to
    the goal after each env step, on one env-step axis."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6, 3.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    replans = [i * steps_per_plan for i in range(len(energies))]  # env step of each replan
    ax.plot(replans, energies, color="#e8590c", marker="o", ms=3, label="energy of the chosen plan")
    ax.set_xlabel("env step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("energy (latent L1)", color="#e8590c")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(range(len(distances)), distances, color="#1c7ed6", ls="--", label="distance to goal")
    twin.set_ylabel("distance to goal", color="#1c7ed6")
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right", fontsize=8)
    return fig


# ---------------------------------------------------------------------------------------------------------------
# the Blocks app


INTRO = """# hf_jepa: JEPA features, probes and planning
I-JEPA / V-JEPA 2 encoders and the V-JEPA 2-AC world model as `transformers` models.
**Features** shows what the encoder sees, **Probe** classifies a clip, **Plan** steers an agent to a goal image
by imagining futures in latent space."""

CSS = """
#intro {margin-bottom: 0.25rem}
.status {font-size: 0.9rem}
footer {display: none !important}
"""


def _error(err: Exception) -> Any:
    """The gr.Error for an exception: our messages as they are, anything else in one line (logged in full)."""
    if isinstance(err, (InputError, ModelUnavailable)):
        return gr.Error(str(err), print_exception=False)
    logger.exception("unexpected error in the Space")
    return gr.Error(f"Something went wrong ({type(err).__name__}: {err}).", print_exception=False)


def build_demo(config: SpaceConfig | None = None) -> Any:
    """The Gradio Blocks app with the Features, Probe and Plan tabs (named endpoints /features, /probe, /plan)."""
    config = config or SpaceConfig.from_env()
    media_types = list(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
    arena_env = TwoRoomsEnv()
    size = config.display_size
    examples = _examples(config)

    def status_of(source: str, what: str) -> str:  # the model line, then what it was trained on
        _, status = model_status(source, what)
        about = describe_model(source, what)
        return f"{status} {about}" if about else status

    def add_examples(target: Any, elem_id: str) -> None:
        if examples:
            gr.Examples([[path] for path, _ in examples], inputs=[target], example_labels=[x for _, x in examples],
                        label="Clips of the built-in textured moving digits (test split)", elem_id=elem_id)

    def features_fn(path: str | None) -> tuple[np.ndarray, str]:
        try:
            model = load_model(config.encoder, "encoder")
            encoder = _encoder_of(model)
            frames, kind = read_media(path, config, num_frames=getattr(encoder.config, "num_frames", 8))
            result = extract_patch_features(model, frames)
        except Exception as err:  # noqa: BLE001
            raise _error(err) from err
        t, h, w, d = result.tokens.shape
        text = (f"{kind.capitalize()} → {t} x {h} x {w} patch features of width {d} "
                f"({type(encoder).__name__}). Colours: first 3 principal components of the features.")
        return features_panel(result), text

    def probe_fn(path: str | None) -> tuple[dict[str, float], str]:
        try:
            model = load_model(config.probe_model, "probe")
            frames, kind = read_media(path, config, num_frames=getattr(model.config, "num_frames", 16))
            scores = classify(model, frames)
        except Exception as err:  # noqa: BLE001
            raise _error(err) from err
        return scores, f"{type(model).__name__} on the uploaded {kind}: top {len(scores)} classes."

    def plan_fn(sx: float, sy: float, gx: float, gy: float, max_steps: float, num_samples: float,
                iterations: float, horizon: float, seed: float,
                progress: gr.Progress = gr.Progress()) -> tuple[str, str, Any, str]:  # noqa: B008
        try:
            steps = int(max_steps)
            samples = int(num_samples)
            if not 1 <= steps <= config.max_plan_steps:
                raise InputError(f"MPC steps must be in [1, {config.max_plan_steps}], got {steps}.")
            if not 4 <= samples <= config.max_plan_samples:
                raise InputError(f"CEM samples must be in [4, {config.max_plan_samples}], got {samples}.")
            if not (1 <= int(iterations) <= 50 and 1 <= int(horizon) <= 16):
                raise InputError("CEM iterations must be in [1, 50] and the horizon in [1, 16].")
            model = load_model(config.world_model, "world model")
            cem = planner_config(model, "cem", horizon=int(horizon), num_samples=samples,
                                 topk=max(2, samples // 10), iterations=int(iterations), seed=int(seed))
            progress(0, desc="Encoding the start and goal images")

            def report(i: int, n: int) -> None:
                progress((i, n), desc=f"MPC step {i + 1} (at most {n})", unit="steps")

            source = config.subgoal_source()
            subgoals = load_subgoal_graph(source, model) if source else None
            out = plan_in_two_rooms(model, (sx, sy), (gx, gy), cem=cem, max_steps=steps, seed=int(seed),
                                    subgoals=subgoals, display_size=size, progress=report)
        except Exception as err:  # noqa: BLE001
            raise _error(err) from err
        return out.trajectory_gif, out.goal_png, energy_figure(out.energies, out.distances,
                                                                 int(model.config.frame_skip)), out.summary

    def picker(sx: float, sy: float, gx: float, gy: float) -> np.ndarray:
        return render_arena(arena_env, np.array([sx, sy]), np.array([gx, gy]), size=size)

    def on_click(target: str, sx: float, sy: float, gx: float, gy: float, evt: gr.SelectData) -> tuple:
        x, y = (evt.index[0] + 0.5) / size, (evt.index[1] + 0.5) / size
        if not arena_env.is_free(np.array([x, y])):
            gr.Warning("That spot is inside a wall: click on the black floor.")
            return sx, sy, gx, gy
        return (round(x, 3), round(y, 3), gx, gy) if target == "Start" else (sx, sy, round(x, 3), round(y, 3))

    def randomize(seed: float) -> tuple[float, float, float, float, int]:
        rng_seed = int(np.random.default_rng().integers(1_000_000))
        _, info = arena_env.reset(seed=rng_seed)
        s, g = arena_env.state, info["goal_state"]
        return round(float(s[0]), 3), round(float(s[1]), 3), round(float(g[0]), 3), round(float(g[1]), 3), rng_seed

    with gr.Blocks(title="hf_jepa: JEPA world model", analytics_enabled=False) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Tabs():
            with gr.Tab("Plan", id="plan"):
                ok, status = model_status(config.world_model, "world model")
                gr.Markdown(
                    "Pick a **start** and a **goal** (click the arena, use the sliders, or **Random**), then **Plan**. "
                    "The world model imagines where each candidate action sequence leads, in latent space, and "
                    "the agent takes the first action of the best one, then replans (MPC)."
                )
                gr.Markdown(status, elem_classes="status")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=340):
                        arena = gr.Image(picker(0.25, 0.7, 0.75, 0.7), label="Arena: click to place",
                                         interactive=False, height=size, width=size, elem_id="arena",
                                         buttons=[], format="png")
                        target = gr.Radio(["Start", "Goal"], value="Start", label="A click on the arena places the",
                                          elem_id="click-target")
                        with gr.Row():
                            sx = gr.Slider(0, 1, value=0.25, step=0.005, label="Start x", buttons=[])
                            sy = gr.Slider(0, 1, value=0.7, step=0.005, label="Start y", buttons=[])
                        with gr.Row():
                            gx = gr.Slider(0, 1, value=0.75, step=0.005, label="Goal x", buttons=[])
                            gy = gr.Slider(0, 1, value=0.7, step=0.005, label="Goal y", buttons=[])
                        with gr.Row():
                            random_btn = gr.Button("Random", elem_id="random-btn")
                            plan_btn = gr.Button("Plan ▶", variant="primary", elem_id="plan-btn",
                                                 interactive=ok)
                        with gr.Accordion("Planner settings", open=False):
                            steps = gr.Slider(1, config.max_plan_steps, value=config.max_steps, step=1,
                                              label="MPC steps (at most)")
                            samples = gr.Slider(4, config.max_plan_samples, value=config.num_samples, step=4,
                                                label="CEM samples")
                            iters = gr.Slider(1, 20, value=config.iterations, step=1, label="CEM iterations")
                            horizon = gr.Slider(1, 16, value=config.horizon, step=1, label="Horizon (actions)")
                            seed = gr.Number(0, precision=0, label="Seed")
                    with gr.Column(scale=3):
                        with gr.Row():
                            trajectory = gr.Image(label="Trajectory (MPC)", type="filepath", height=size,
                                                  elem_id="trajectory", interactive=False)
                            goal_img = gr.Image(label="Goal image given to the planner", type="filepath",
                                                height=size, elem_id="goal", interactive=False)
                        plan_summary = gr.Markdown(elem_id="plan-summary")
                        energy_plot = gr.Plot(label="Energy and distance to the goal", elem_id="energy")
                coords = [sx, sy, gx, gy]
                for slider in coords:
                    slider.change(picker, coords, arena, api_visibility="private", show_progress="hidden")
                arena.select(on_click, [target, *coords], coords, api_visibility="private")
                random_btn.click(randomize, [seed], [*coords, seed], api_visibility="private")
                plan_btn.click(plan_fn, [*coords, steps, samples, iters, horizon, seed],
                               [trajectory, goal_img, energy_plot, plan_summary], api_name="plan",
                               concurrency_limit=1)

            with gr.Tab("Features", id="features"):
                status = status_of(config.encoder, "encoder")
                gr.Markdown("Upload an **image** or a **short video** (at most "
                            f"{config.max_video_seconds:g} s, {config.max_upload_mb:g} MB)"
                            + (", or pick a built-in clip below" if examples else "") + ". Each patch feature of "
                            "the encoder is projected on its first 3 principal components, shown as RGB: patches "
                            "with similar colours have similar features.")
                gr.Markdown(status, elem_classes="status", elem_id="features-status")
                with gr.Row():
                    with gr.Column(scale=1):
                        feat_in = gr.File(label="Image or video", file_types=media_types, elem_id="features-in")
                        feat_btn = gr.Button("Show features", variant="primary", elem_id="features-btn")
                        add_examples(feat_in, "features-examples")
                    with gr.Column(scale=2):
                        feat_out = gr.Image(label="Input and the PCA of its patch features",
                                            format="png", interactive=False, elem_id="features-out")
                        feat_info = gr.Markdown()
                feat_btn.click(features_fn, [feat_in], [feat_out, feat_info], api_name="features")

            with gr.Tab("Probe", id="probe"):
                status = status_of(config.probe_model, "probe")
                gr.Markdown("Upload a clip or an image" + (" (or pick a built-in clip below)" if examples else "")
                            + "; a probe trained on the frozen encoder features classifies it (top 5).")
                gr.Markdown(status, elem_classes="status", elem_id="probe-status")
                with gr.Row():
                    with gr.Column(scale=1):
                        probe_in = gr.File(label="Image or video", file_types=media_types, elem_id="probe-in")
                        probe_btn = gr.Button("Classify", variant="primary", elem_id="probe-btn")
                        add_examples(probe_in, "probe-examples")
                    with gr.Column(scale=1):
                        probe_out = gr.Label(num_top_classes=5, label="Top-5 classes", elem_id="probe-out")
                        probe_info = gr.Markdown()
                probe_btn.click(probe_fn, [probe_in], [probe_out, probe_info], api_name="probe")
    demo.queue(default_concurrency_limit=2)
    return demo


def launch_kwargs() -> dict[str, Any]:
    """Keyword arguments for `demo.launch` (theme and CSS live there in Gradio 6)."""
    return {"theme": gr.themes.Soft(primary_hue="indigo"), "css": CSS, "footer_links": ["api"]}
