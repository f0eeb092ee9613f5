"""What a saved model folder of ours is: its family (``model_type``), ``config.json``, weights and remote code.

:func:`check_model_folder` validates a folder before a card is written or it is pushed; :func:`remote_code_files`
follows ``auto_map`` and the relative imports of the modeling files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                                 "pytorch_model.bin.index.json")


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
    "easy_vjepa2_1": Family(
        name="V-JEPA 2.1", paper="2506.09985", tags=("v-jepa-2", "v-jepa-2.1", "video", "image",
                                                    "self-supervised-learning"),
        pipeline_tag="video-classification",
        summary="V-JEPA 2.1: a ViT over 2x16x16 video tubelets or 16x16 image patches (its own patch embedding and "
                "modality embedding) with interleaved 3-D RoPE, LayerNorms at four depths giving a hierarchical "
                "(4-level) representation, and a predictor trained on masked and context tokens (dense loss)."),
    "easy_vjepa2_ac": Family(
        name="V-JEPA 2-AC", paper="2506.09985", tags=("v-jepa-2", "v-jepa-2-ac", "world-model", "planning", "robotics"),
        pipeline_tag="robotics",
        summary="An action-conditioned world model: a frozen V-JEPA 2 encoder embeds each frame and a block-causal "
                "predictor, given actions and states, predicts the latents of the next frames. Plans toward a goal "
                "image by minimising the L1 energy between predicted and goal latents (CEM / MPPI, MPC)."),
}
"""Our model families by ``model_type``."""

_RELATIVE_IMPORT = re.compile(r"^\s*from\s+\.([A-Za-z_][A-Za-z0-9_]*)\s+import\s", re.MULTILINE)


class HubFolderError(ValueError):
    """A folder that is not one of our saved models (or lacks its remote code / weights)."""


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


def architecture(config: Mapping[str, Any]) -> str:
    """The first of ``config["architectures"]`` (the saved class name), or "" when none is recorded."""
    archs = config.get("architectures") or []
    return str(archs[0]) if archs else ""
