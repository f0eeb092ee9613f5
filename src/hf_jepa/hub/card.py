"""The model card of a saved folder: YAML metadata (tags, datasets, model-index, what our scripts recorded) and a
Markdown body (usage, model, training, evaluation, citation), built from the folder's config and weights.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .folder import FAMILIES, architecture, check_model_folder, remote_code_files

logger = logging.getLogger(__name__)

PROCESSOR_FILES: tuple[str, ...] = ("preprocessor_config.json", "video_preprocessor_config.json",
                                    "processor_config.json")
CARD_METADATA_KEY = "hf_jepa"
"""The model card's YAML metadata key under which our scripts record how a model was made: ``training``
(pretraining: dataset, steps, preset, objective, ...), ``probe`` and ``encoder`` (probes); read back with
:func:`read_card_metadata`."""

_CLASSIFICATION_TASKS = {"ForVideoClassification": "video-classification",
                         "ForImageClassification": "image-classification"}


def count_parameters(folder: str | Path) -> int | None:
    """Number of parameters in ``model.safetensors`` (read from the header; None if not available)."""
    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        return None
    from safetensors import safe_open

    total = 0
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 (safe_open is not a Mapping)
            n = 1
            for dim in f.get_slice(key).get_shape():
                n *= int(dim)
            total += n
    return total


def _human(n: int) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def _pipeline_tag(config: Mapping[str, Any]) -> str:
    arch = architecture(config)
    for suffix, task in _CLASSIFICATION_TASKS.items():
        if arch.endswith(suffix):
            return task
    return FAMILIES[config["model_type"]].pipeline_tag


def _eval_results(metrics: Mapping[str, Any], config: Mapping[str, Any],
                  default_dataset: str | None) -> list[EvalResult]:
    """Normalized ``metrics`` -> model-index entries.

    A value is a number, or a dict ``{"value": x, "dataset": "org/name", "dataset_name": "...", "split": "..."}``.
    Names starting with ``probe_`` are classification results (``probe_accuracy`` -> metric ``accuracy``), names
    starting with ``planning_`` are goal-image planning results (``planning_success_rate`` -> ``success_rate``).
    """
    results = []
    probe_task = ("image-classification" if config.get("model_type") == "easy_ijepa" else "video-classification")
    for name, spec in _normalize_metrics(metrics).items():
        if name.startswith("probe_"):
            task, task_name, metric = probe_task, "Probe on frozen features", name[len("probe_"):]
        elif name.startswith("planning_"):
            task, task_name, metric = "robotics", "Goal-image planning (MPC)", name[len("planning_"):]
        else:
            task, task_name, metric = "other", None, name
        dataset = spec.get("dataset") or default_dataset or "hf_jepa/builtin"
        results.append(EvalResult(
            task_type=task, task_name=task_name, dataset_type=dataset,
            dataset_name=spec.get("dataset_name", dataset), dataset_split=spec.get("split"),
            metric_type=metric, metric_name=metric.replace("_", " "), metric_value=spec["value"],
        ))
    return results


def _normalize_metrics(metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Keep numeric metrics (``{"name": 0.8}`` or ``{"name": {"value": 0.8, ...}}``); others are logged and skipped,
    so a whole evaluation summary (with lists, paths, ...) can be passed as it is."""
    out = {}
    for name, raw in metrics.items():
        spec = dict(raw) if isinstance(raw, Mapping) else {"value": raw}
        value = spec.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            logger.warning("metrics[%r]=%r is not a number (or a dict with a numeric 'value'): left out", name, raw)
            continue
        out[name] = spec
    return out


def _usage(config: Mapping[str, Any], repo_id: str) -> str:
    model_type, arch = config["model_type"], architecture(config)
    auto = "AutoModel"
    for suffix in _CLASSIFICATION_TASKS:
        if arch.endswith(suffix):
            auto = f"AutoModel{suffix}"
    if model_type == "easy_vjepa2_ac":
        example = (
            "frame = torch.randn(1, 1, 3, size, size)               # (B, T0=1, C, H, W)\n"
            "actions = torch.zeros(1, 4, model.config.action_dim)  # (B, H=4, A)\n"
            "state = torch.zeros(1, 1, model.config.state_dim)     # (B, T0, S)\n"
            "with torch.no_grad():\n"
            "    latents = model.encode(frame)                      # (B, N, D)\n"
            "    future = model.rollout(latents, actions, state)    # (B, 4*N, D) latents of the next 4 frames\n"
        )
        size = "model.config.encoder_config.image_size"
    elif model_type == "easy_vjepa2":
        example = ("video = torch.randn(1, model.config.num_frames, 3, size, size)  # (B, T, C, H, W)\n"
                   "with torch.no_grad():\n    out = model(video)\n")
        size = "model.config.image_size"
    elif model_type == "easy_vjepa2_1":
        example = ("video = torch.randn(1, model.config.num_frames, 3, size, size)  # (B, T, C, H, W)\n"
                   "image = torch.randn(1, 3, size, size)                            # (B, C, H, W): an image\n"
                   "with torch.no_grad():\n    out = model(video)\n"
                   "    levels = model(video, output_hierarchical_states=True).hierarchical_states  # (B, N, 4*D)\n"
                   "    image_out = model(pixel_values=image)\n")
        size = "model.config.image_size"
    else:
        example = "image = torch.randn(1, 3, size, size)\nwith torch.no_grad():\n    out = model(image)\n"
        size = "model.config.image_size"
    planning = ""
    if model_type == "easy_vjepa2_ac":
        planning = (
            "\nPlan toward a goal image in the built-in Two-Rooms environment (needs `hf_jepa`):\n\n```python\n"
            "import gymnasium as gym\n"
            "import hf_jepa.envs  # registers hf_jepa/TwoRooms-v0\n"
            "from hf_jepa.planning import CEMConfig, WorldModelPlanner, run_mpc\n\n"
            "planner = WorldModelPlanner(model, config=CEMConfig(horizon=5, num_samples=300, topk=30, iterations=10))\n"
            "episode = run_mpc(gym.make(\"hf_jepa/TwoRooms-v0\"), planner.plan_fn(), max_steps=100, seed=0)\n"
            "print(episode.success, episode.final_distance)\n```\n"
        )
    return (
        "```python\nimport torch\nimport hf_jepa  # registers the model types with transformers' Auto classes\n"
        f"from transformers import {auto}\n\n"
        f"model = {auto}.from_pretrained(\"{repo_id}\").eval()\n"
        f"# without hf_jepa installed: {auto}.from_pretrained(\"{repo_id}\", trust_remote_code=True)\n"
        f"size = {size}\n{example}```\n{planning}"
    )


def _config_rows(config: Mapping[str, Any], num_params: int | None) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [("architecture", architecture(config) or "-"), ("model_type", config["model_type"])]
    if num_params is not None:
        rows.append(("parameters", f"{_human(num_params)} ({num_params:,})"))
    enc = config.get("encoder_config") if config["model_type"] == "easy_vjepa2_ac" else config
    enc = enc or {}
    for key in ("image_size", "patch_size", "tubelet_size", "num_frames", "hidden_size", "num_hidden_layers",
                "num_attention_heads"):
        if key in enc:
            prefix = "encoder " if enc is not config else ""
            rows.append((prefix + key, enc[key]))
    for key in ("hierarchical_layers", "interpolate_rope", "predictor_hidden_size", "predictor_num_hidden_layers",
                "predictor_num_attention_heads", "predictor_num_levels", "predictor_output_size", "action_dim",
                "state_dim", "max_steps", "num_labels"):
        if key in config:
            rows.append((key, config[key]))
    if "id2label" in config and architecture(config).endswith(tuple(_CLASSIFICATION_TASKS)):
        rows.append(("labels", ", ".join(str(v) for v in list(config["id2label"].values())[:20])))
    return rows


def _table(rows: Sequence[tuple[str, Any]], header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def build_model_card(
    folder: str | Path,
    *,
    repo_id: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    license: str = "mit",
    datasets: str | Sequence[str] | None = None,
    base_model: str | Sequence[str] | None = None,
    tags: Sequence[str] = (),
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    sections: Mapping[str, Mapping[str, Any]] | None = None,
) -> ModelCard:
    """A model card for a saved folder, from its config, training metadata and evaluation results: the one card
    builder of the project (encoders, pretraining models, world models, probe classifiers).

    Args:
        folder: a ``save_pretrained`` folder of an hf_jepa model (validated with :func:`check_model_folder`).
        repo_id: the Hub id used in the usage snippet (default ``easy-jepa/<folder name>``).
        metrics: evaluation results for the ``model-index`` (see :func:`_eval_results`): e.g.
            ``{"probe_accuracy": 0.91, "planning_success_rate": {"value": 0.8, "dataset": "hf_jepa/two-rooms"}}``.
        training: free-form training metadata (steps, batch size, dataset, objective, ...), shown as a table and
            recorded in the YAML metadata (``hf_jepa: {training: ...}``, :func:`read_card_metadata`); its
            ``dataset`` / ``datasets`` entry fills the card's ``datasets`` when ``datasets`` is not given.
        license: SPDX-like license id for the card metadata.
        datasets: Hub dataset id(s) the model was trained on.
        base_model: Hub id(s) this model was fine-tuned or converted from.
        tags: extra tags.
        description: a paragraph placed under the title (default: the family summary).
        metadata: more entries recorded under ``hf_jepa`` in the YAML metadata (beside ``training``).
        sections: more Markdown sections, title -> {setting: value} table, after the evaluation.

    Returns:
        The ``huggingface_hub.ModelCard`` (YAML metadata + Markdown body).
    """
    folder = Path(folder)
    config = check_model_folder(folder)
    family = FAMILIES[config["model_type"]]
    repo_id = repo_id or f"easy-jepa/{folder.resolve().name}"
    training = dict(training or {})
    if datasets is None:
        datasets = training.get("datasets") or training.get("dataset")
    if isinstance(datasets, str):
        datasets = [datasets]
    all_tags = ["jepa", *family.tags, "hf_jepa", "custom_code", f"arxiv:{family.paper}", *tags]
    metrics = _normalize_metrics(metrics or {})
    eval_results = _eval_results(metrics, config, datasets[0] if datasets else None) if metrics else None
    model_name = repo_id.split("/")[-1]
    recorded = {**({"training": training} if training else {}), **dict(metadata or {})}
    data = ModelCardData(
        license=license, library_name="transformers", pipeline_tag=_pipeline_tag(config),
        tags=list(dict.fromkeys(all_tags)), datasets=list(datasets) if datasets else None,
        base_model=base_model if isinstance(base_model, str) or base_model is None else list(base_model),
        model_name=model_name, eval_results=eval_results,
        **({CARD_METADATA_KEY: recorded} if recorded else {}),
    )
    num_params = count_parameters(folder)
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    processor = [f for f in files if f in PROCESSOR_FILES]
    body = [
        f"# {model_name}\n",
        f"{description or family.summary}\n",
        f"{family.name} ([arXiv:{family.paper}](https://arxiv.org/abs/{family.paper})) as a `transformers` model "
        "from `hf_jepa`: the modeling code travels with the weights, so the "
        "model loads with the package installed or with `trust_remote_code=True` without it.\n",
        "## Usage\n", _usage(config, repo_id),
        "## Model\n", _table(_config_rows(config, num_params), ("field", "value")),
        f"Remote-code files: {', '.join(f'`{f}`' for f in remote_code_files(folder, config))}."
        + (f" Processor config: {', '.join(f'`{f}`' for f in processor)}." if processor else "") + "\n",
    ]
    if training:
        body += ["## Training\n", _table([(k, _fmt(v)) for k, v in training.items()], ("setting", "value"))]
    if metrics:
        rows = [(name, _fmt(spec["value"])) for name, spec in metrics.items()]
        body += ["## Evaluation\n", _table(rows, ("metric", "value"))]
    for title, table in (sections or {}).items():
        body += [f"## {title}\n", _table([(k, _fmt(v)) for k, v in table.items()], ("setting", "value"))]
    body += [
        "## Citation\n",
        "```bibtex\n@article{assran2025vjepa2,\n  title={V-JEPA 2: Self-Supervised Video Models Enable Understanding, "
        "Prediction and Planning},\n  author={Assran, Mido and others},\n  journal={arXiv preprint arXiv:2506.09985},"
        "\n  year={2025}\n}\n```\n" if family.paper == "2506.09985" else
        "```bibtex\n@inproceedings{assran2023ijepa,\n  title={Self-Supervised Learning from Images with a "
        "Joint-Embedding Predictive Architecture},\n  author={Assran, Mahmoud and others},\n  booktitle={CVPR},"
        "\n  year={2023}\n}\n```\n",
    ]
    content = f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body)
    return ModelCard(content)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, dict)):
        return f"`{json.dumps(value)}`"
    return str(value)


def write_model_card(
    folder: str | Path,
    *,
    metrics: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
    **kwargs: Any,
) -> Path:
    """Write ``README.md`` (the model card, see :func:`build_model_card`) into ``folder``; returns its path."""
    card = build_model_card(folder, metrics=metrics, training=training, repo_id=repo_id, **kwargs)
    path = Path(folder) / "README.md"
    card.save(path)
    logger.info("wrote model card %s", path)
    return path


def read_card_metadata(card: str | Path) -> dict[str, Any]:
    """What our scripts recorded in a model card (``README.md``, or a folder holding one) under
    :data:`CARD_METADATA_KEY` (e.g. ``{"training": {"dataset": ..., "steps": ...}}``); ``{}`` when the card is
    missing or records nothing."""
    path = Path(card)
    path = path / "README.md" if path.is_dir() else path
    if not path.is_file():
        return {}
    try:
        recorded = ModelCard.load(path).data.to_dict().get(CARD_METADATA_KEY)
    except Exception as err:  # noqa: BLE001  (a hand-edited card with broken YAML is no reason to fail)
        logger.warning("could not read the model card %s: %s", path, err)
        return {}
    return dict(recorded) if isinstance(recorded, Mapping) else {}
