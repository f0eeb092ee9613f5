"""Models of the Space: loaded once per source (local folder or Hub id) and cached, their availability, what
their model cards say they were trained on, the world model's subgoal graph, and the state latents of a world model
trained with perfect perception (`train_world_model.py --latents state`)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from hf_jepa.data.state_latents import STATE_LATENTS_FILE, StateLatents, load_state_latents
from hf_jepa.planning.subgoals import LatentSubgoalGraph, subgoal_graph_from
from hf_jepa.space.config import ENV_SUBGOALS, HubFileUnavailable, ModelUnavailable
from hf_jepa.space.hub_files import clear_hub_cache, hub_file

logger = logging.getLogger(__name__)

__all__ = ["clear_model_cache", "describe_model", "load_model", "load_model_state_latents", "load_subgoal_graph",
           "model_file", "model_status", "reads_states"]

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
_MAKE_HINT = {
    "encoder": "Run `make demo` to train one (it writes outputs/demo/pretrain/encoder), or set "
               "HF_JEPA_ENCODER to a folder or Hub id of a V-JEPA 2 / I-JEPA model.",
    "probe": "Run `make demo` to train one (it writes outputs/demo/probe/classifier; or `scripts/probe.py` "
             "on your own encoder), or set HF_JEPA_PROBE_MODEL to a folder or Hub id of a "
             "VideoJepaForVideoClassification / ImageJepaForImageClassification model.",
    "world model": "Run `make demo` to train one (it writes outputs/demo/world_model), or set "
                   "HF_JEPA_WORLD_MODEL to a folder or Hub id of a JepaWorldModel.",
    "Push-T world model": "Run `python scripts/demo.py --env pusht` to train one (it writes its state world "
                          "model to outputs/demo_pusht/state_world_model_run/final), or set HF_JEPA_PUSHT_WORLD_MODEL "
                          "(SpaceConfig.pusht_world_model) to a folder or Hub id of a JepaWorldModel with state_dim 5 "
                          "and action_dim 2.",
}


_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


def clear_model_cache() -> None:
    """Forget loaded models and the Hub files found or known absent (tests; or after replacing a folder / repo)."""
    with _MODELS_LOCK:
        _MODELS.clear()
    clear_hub_cache()


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
    from hf_jepa.modeling import (
        modeling_easy_ijepa,
        modeling_easy_vjepa2,
        modeling_easy_vjepa2_1,
        modeling_easy_vjepa2_ac,
    )

    for module in (modeling_easy_vjepa2_ac, modeling_easy_vjepa2_1, modeling_easy_vjepa2, modeling_easy_ijepa):
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


def reads_states(model: nn.Module) -> bool:
    """Whether `model` is a world model of perfect perception (`train_world_model.py --latents state`): its encoder
    is the placeholder of one token per frame (a 1 x 1 frame grid, `image_size == patch_size`), never run."""
    encoder = getattr(getattr(model, "config", None), "encoder_config", None)
    image, patch = getattr(encoder, "image_size", None), getattr(encoder, "patch_size", None)
    return isinstance(image, int) and isinstance(patch, int) and patch > 0 and image // patch == 1


def load_model_state_latents(source: str, what: str, model: nn.Module) -> tuple[StateLatents, dict[str, Any]] | None:
    """The latent map and record (`load_state_latents`) of the world model at `source` when it was trained with
    perfect perception (its folder or Hub repo holds `state_latents.json`), else None: the model encodes images.

    A local folder is read directly; a Hub repo's file comes through `hub_file` (found / absent remembered). The
    parsed file is cached per source. When the Hub file cannot be had now (`HubFileUnavailable`: a transient error,
    or offline and not in the cache), a model that encodes images (`reads_states(model)` false) plans from images
    (logged; the next call asks the Hub again) and a model of one token per frame is refused.

    Args:
        source: the world model's local folder or Hub id (as given to `load_model`).
        what: the model's name in messages ("Push-T world model").
        model: the loaded world model (`load_model(source, what)`).

    Raises:
        ModelUnavailable: the source is missing; `state_latents.json` does not read; or a world model of one token
            per frame whose `state_latents.json` could not be fetched now (the message says why).
    """
    resolved = _check_source(source, what)
    if Path(resolved).is_dir():
        folder = resolved
    else:
        try:
            path = hub_file(resolved, STATE_LATENTS_FILE)
        except HubFileUnavailable as err:
            if reads_states(model):
                raise ModelUnavailable(
                    f"The {what} `{source}` reads states (one token per frame, no image encoder), so planning needs "
                    f"its {STATE_LATENTS_FILE}, which could not be had now: {err}") from err
            logger.warning("planning with the %s %s from images: %s", what, source, err)
            return None
        if path is None:
            return None
        folder = str(path.parent)
    return _load_once(f"state_latents:{folder}", f"state latents of the {what} from {source}",
                      lambda: load_state_latents(folder),
                      lambda err: f"Could not read {STATE_LATENTS_FILE} of the {what} `{source}`: {err}. Expected "
                                  f"what train_world_model.py --latents state writes beside the weights.")


def model_file(source: str, filename: str) -> Path | None:
    """`filename` of a local model folder or Hub repo (downloaded once, or read from the HF cache offline), or None
    when it has none, or when it cannot be fetched now (logged by `hub_file`; the next call tries again)."""
    if Path(source).is_dir():
        path = Path(source) / filename
        return path if path.is_file() else None
    try:
        return hub_file(source, filename)
    except HubFileUnavailable:
        return None


def _family(source: str) -> str | None:
    """The family name (V-JEPA 2, I-JEPA, ...) of a model folder / Hub id from its config.json."""
    from hf_jepa.hub import FAMILIES

    path = model_file(source, "config.json")
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
    card = model_file(source, "README.md")
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
