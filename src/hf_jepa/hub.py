"""Hub publishing: model cards generated from a saved folder, validation of the remote code, and uploads.

A folder written by ``save_pretrained`` for one of our models holds ``config.json`` (with ``auto_map``), the weights
and the modeling files (``configuration_*.py``, ``modeling_*.py`` and their relative imports), so it loads with
``AutoModel.from_pretrained(repo_id)`` where ``hf_jepa`` is imported and with ``trust_remote_code=True`` where it is
not. This module adds the model card and pushes the folder as it is::

    from hf_jepa.hub import write_model_card, upload_folder_to_hub
    write_model_card("outputs/demo/world_model", metrics={"planning_success_rate": 0.8}, training={"steps": 2000})
    upload_folder_to_hub("outputs/demo/world_model", "easy-jepa/vjepa2-ac", dry_run=True)   # lists the files
    upload_folder_to_hub("outputs/demo/world_model", "easy-jepa/vjepa2-ac")                 # one commit

Uploads go through ``HfApi.create_repo`` + ``HfApi.upload_folder`` (one commit): transformers' ``push_to_hub``
would write its own README.md over the card.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData
from huggingface_hub.utils import filter_repo_objects

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_IGNORE_PATTERNS",
    "CARD_METADATA_KEY",
    "FAMILIES",
    "Family",
    "HubFolderError",
    "UploadFile",
    "build_model_card",
    "check_model_folder",
    "count_parameters",
    "list_upload_files",
    "read_card_metadata",
    "remote_code_files",
    "upload_folder_to_hub",
    "write_model_card",
]

DEFAULT_IGNORE_PATTERNS: tuple[str, ...] = (
    ".git/*", "*/.git/*", "__pycache__/*", "*/__pycache__/*", "*.pyc", ".cache/*", "*/.cache/*",
    "checkpoints/*", "checkpoint-*/*", "*.lock", ".DS_Store",
)
"""Never uploaded: VCS and cache folders, byte code, training checkpoints (accelerate state)."""

WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                                 "pytorch_model.bin.index.json")
PROCESSOR_FILES: tuple[str, ...] = ("preprocessor_config.json", "video_preprocessor_config.json",
                                    "processor_config.json")
CARD_METADATA_KEY = "hf_jepa"
"""The model card's YAML metadata key under which our scripts record how a model was made: ``training``
(pretraining: dataset, steps, preset, objective, ...), ``probe`` and ``encoder`` (probes); read back with
:func:`read_card_metadata`."""


@dataclass(frozen=True)
class Family:
    """What a model card says about one of our model families."""

    name: str
    """Display name, e.g. 'V-JEPA 2-AC'."""
    paper: str
    """arXiv id of the paper."""
    tags: tuple[str, ...]
    """Hub tags (besides the common ones)."""
    pipeline_tag: str
    """Hub pipeline tag of the base model (classifiers use their own task)."""
    summary: str
    """One paragraph for the card."""


FAMILIES: dict[str, Family] = {
    "easy_ijepa": Family(
        name="I-JEPA", paper="2301.08243", tags=("i-jepa", "image", "self-supervised-learning"),
        pipeline_tag="image-feature-extraction",
        summary="An image Joint-Embedding Predictive Architecture: a ViT context encoder and a predictor trained to "
                "predict the latents (from an EMA target encoder) of masked image blocks."),
    "easy_vjepa2": Family(
        name="V-JEPA 2", paper="2506.09985", tags=("v-jepa-2", "video", "self-supervised-learning"),
        pipeline_tag="video-classification",
        summary="A video Joint-Embedding Predictive Architecture: a ViT over 2x16x16 tubelets with 3-D RoPE whose "
                "predictor fills in the latents of masked spatio-temporal blocks."),
    "easy_vjepa2_ac": Family(
        name="V-JEPA 2-AC", paper="2506.09985", tags=("v-jepa-2", "v-jepa-2-ac", "world-model", "planning", "robotics"),
        pipeline_tag="robotics",
        summary="An action-conditioned world model: a frozen V-JEPA 2 encoder embeds each frame and a block-causal "
                "predictor, given actions and states, predicts the latents of the next frames. Plans toward a goal "
                "image by minimising the L1 energy between predicted and goal latents (CEM / MPPI, MPC)."),
}
"""Our model families by ``model_type``."""

_CLASSIFICATION_TASKS = {"ForVideoClassification": "video-classification",
                         "ForImageClassification": "image-classification"}
_RELATIVE_IMPORT = re.compile(r"^\s*from\s+\.([A-Za-z_][A-Za-z0-9_]*)\s+import\s", re.MULTILINE)


class HubFolderError(ValueError):
    """A folder that is not one of our saved models (or lacks its remote code / weights)."""


@dataclass(frozen=True)
class UploadFile:
    """One file of an upload: its path in the repo and its size in bytes."""

    path: str
    size: int


# ---------------------------------------------------------------------------------------------------------------
# validation


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not folder.is_dir():
        raise HubFolderError(f"{folder}: not a folder; expected a save_pretrained folder of an hf_jepa model")
    if not path.is_file():
        raise HubFolderError(f"{folder}: no config.json; expected a save_pretrained folder of an hf_jepa model")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise HubFolderError(f"{path}: not valid JSON ({err})") from err


def remote_code_files(folder: str | Path, config: Mapping[str, Any] | None = None) -> list[str]:
    """The modeling files ``auto_map`` needs, with their relative imports (``from .x import y``), sorted.

    Raises:
        HubFolderError: a file named by ``auto_map`` or imported by one of them is missing.
    """
    folder = Path(folder)
    config = dict(config) if config is not None else _read_config(folder)
    auto_map = config.get("auto_map") or {}
    if not auto_map:
        raise HubFolderError(f"{folder}/config.json has no auto_map: it would not load with trust_remote_code=True")
    pending: list[str] = []
    for reference in auto_map.values():
        for ref in reference if isinstance(reference, (list, tuple)) else [reference]:
            if ref:
                module = ref.split("--")[-1].rsplit(".", 1)[0]  # "repo--module.Class" or "module.Class"
                pending.append(f"{module}.py")
    found: set[str] = set()
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = folder / name
        if not path.is_file():
            raise HubFolderError(
                f"{folder}: remote-code file {name} is missing (needed by auto_map or a relative import); "
                "save the model with save_pretrained from hf_jepa so the modeling files are copied beside the weights"
            )
        found.add(name)
        pending.extend(f"{m}.py" for m in _RELATIVE_IMPORT.findall(path.read_text()))
    return sorted(found)


def check_model_folder(folder: str | Path) -> dict[str, Any]:
    """Validate a folder to publish and return its config.

    Checks: ``config.json`` with one of our ``model_type`` s (:data:`FAMILIES`), weights, and the remote-code files.

    Raises:
        HubFolderError: with what is missing and how to make it.
    """
    folder = Path(folder)
    config = _read_config(folder)
    model_type = config.get("model_type")
    if model_type not in FAMILIES:
        raise HubFolderError(
            f"{folder}/config.json has model_type={model_type!r}: expected one of {sorted(FAMILIES)} (hf_jepa models)"
        )
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise HubFolderError(f"{folder}: no weights (expected one of {list(WEIGHT_FILES)})")
    remote_code_files(folder, config)
    return config


# ---------------------------------------------------------------------------------------------------------------
# model card


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


def _architecture(config: Mapping[str, Any]) -> str:
    archs = config.get("architectures") or []
    return str(archs[0]) if archs else ""


def _pipeline_tag(config: Mapping[str, Any]) -> str:
    arch = _architecture(config)
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
    model_type, arch = config["model_type"], _architecture(config)
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
    rows: list[tuple[str, Any]] = [("architecture", _architecture(config) or "-"), ("model_type", config["model_type"])]
    if num_params is not None:
        rows.append(("parameters", f"{_human(num_params)} ({num_params:,})"))
    enc = config.get("encoder_config") if config["model_type"] == "easy_vjepa2_ac" else config
    enc = enc or {}
    for key in ("image_size", "patch_size", "tubelet_size", "num_frames", "hidden_size", "num_hidden_layers",
                "num_attention_heads"):
        if key in enc:
            prefix = "encoder " if enc is not config else ""
            rows.append((prefix + key, enc[key]))
    for key in ("predictor_hidden_size", "predictor_num_hidden_layers", "predictor_num_attention_heads",
                "action_dim", "state_dim", "max_steps", "num_labels"):
        if key in config:
            rows.append((key, config[key]))
    if "id2label" in config and _architecture(config).endswith(tuple(_CLASSIFICATION_TASKS)):
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


# ---------------------------------------------------------------------------------------------------------------
# upload


def list_upload_files(folder: str | Path, *, ignore_patterns: Sequence[str] = DEFAULT_IGNORE_PATTERNS
                      ) -> list[UploadFile]:
    """The files ``upload_folder`` would send (relative POSIX paths, sizes), sorted by path."""
    folder = Path(folder)
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    kept = filter_repo_objects(paths, ignore_patterns=list(ignore_patterns))
    return [UploadFile(path=p, size=(folder / p).stat().st_size) for p in kept]


def upload_folder_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    commit_message: str | None = None,
    api: HfApi | None = None,
    require_card: bool = True,
    ignore_patterns: Sequence[str] = DEFAULT_IGNORE_PATTERNS,
) -> list[UploadFile]:
    """Push a saved hf_jepa model folder to the Hub in one commit (or, with ``dry_run``, only list it).

    Args:
        folder: a ``save_pretrained`` folder (validated: config with our model_type, weights, remote code).
        repo_id: ``org/name``.
        private: create the repo private (only when it does not exist yet).
        revision: branch to commit to (created from main if missing); None for main.
        dry_run: do not touch the Hub; log and return the files that would be uploaded.
        commit_message: defaults to "Upload <architecture> with hf_jepa".
        api: the ``HfApi`` to use (tests pass a fake); default ``HfApi()`` (token from the environment / login).
        require_card: fail if ``README.md`` is missing (write it with :func:`write_model_card` first).
        ignore_patterns: files never uploaded.

    Returns:
        The uploaded (or, in a dry run, to-be-uploaded) files with their sizes.
    """
    folder = Path(folder)
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", repo_id or ""):
        raise ValueError(f"repo_id={repo_id!r}: expected 'org/name'")
    config = check_model_folder(folder)
    if require_card and not (folder / "README.md").is_file():
        raise HubFolderError(f"{folder}: no README.md model card; write one with hf_jepa.hub.write_model_card")
    files = list_upload_files(folder, ignore_patterns=ignore_patterns)
    total = sum(f.size for f in files)
    where = f"{repo_id}@{revision or 'main'}"
    if dry_run:
        logger.info("dry run: would upload %d files (%s bytes) to %s", len(files), f"{total:,}", where)
        for f in files:
            logger.info("  %10s  %s", f"{f.size:,}", f.path)
        return files
    api = api or HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    message = commit_message or f"Upload {_architecture(config) or config['model_type']} with hf_jepa"
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model", revision=revision,
                      commit_message=message, ignore_patterns=list(ignore_patterns))
    logger.info("uploaded %d files (%s bytes) to %s", len(files), f"{total:,}", where)
    return files
