"""A trained probe as a transformers classifier folder: the model, its model card and the confusion-matrix plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from hf_jepa.data.labels import LabelInfo
from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaForImageClassification
from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForVideoClassification
from hf_jepa.modeling.modeling_easy_vjepa2_1 import VideoJepa21ForVideoClassification, VideoJepa21Model
from hf_jepa.plotting import pyplot, save_figure
from hf_jepa.probing.encoder import FrozenEncoder
from hf_jepa.probing.probe import ProbeMetrics, classifier_config

__all__ = ["build_classifier", "plot_confusion_matrix", "probe_model_card"]


def build_classifier(
    encoder: FrozenEncoder, probe: nn.Module, labels: LabelInfo, probe_type: str, *,
    num_self_attention_layers: int = 0,
) -> VideoJepaForVideoClassification | ImageJepaForImageClassification:
    """`VideoJepaForVideoClassification` / `ImageJepaForImageClassification` holding `encoder` and a trained probe."""
    if encoder.model is None:
        raise ValueError("the 'pixels' baseline has no encoder: there is no classifier model to build")
    config = classifier_config(encoder.model.config, probe_type, labels, num_self_attention_layers)
    if isinstance(encoder.model, VideoJepa21Model):  # videos or images: one classifier class
        cls = VideoJepa21ForVideoClassification
    else:
        cls = VideoJepaForVideoClassification if encoder.modality == "video" else ImageJepaForImageClassification
    model = cls(config)
    model.target_encoder.load_state_dict(encoder.model.state_dict())
    model.probe.load_state_dict(probe.state_dict())
    return model.eval()


def probe_model_card(
    folder: str | Path,
    *,
    base_model: str,
    dataset: str,
    label_column: str,
    probe_type: str,
    metrics: ProbeMetrics,
    settings: dict[str, Any],
    encoder_training: dict[str, Any] | None = None,
    repo_id: str | None = None,
) -> Any:
    """The model card of a saved probe classifier folder (``hf_jepa.hub.build_model_card``): the top-1 / top-5 test
    accuracies in its ``model-index``, the probe settings as a table.

    The YAML metadata also records, under ``hf_jepa`` (``hf_jepa.hub.read_card_metadata``), the probe (``probe``:
    type, dataset, label column, evaluation split, top-1 / top-5, samples, epochs) and its frozen encoder
    (``encoder``: the model it was given and ``encoder_training``, what that encoder's own card recorded about its
    pretraining).
    """
    from hf_jepa.hub import build_model_card

    split = settings.get("eval_split", "test")
    is_hub_id = not Path(base_model).exists() and not base_model.startswith(("random:", "pixels"))
    recorded = {
        "probe": {"type": probe_type, "dataset": dataset, "label_column": label_column, "split": split,
                  "top1": metrics.top1, "top5": metrics.top5, "num_samples": metrics.num_samples,
                  "epochs": settings.get("epochs")},
        "encoder": {"model": base_model, **({"training": dict(encoder_training)} if encoder_training else {})},
    }
    result = {"dataset": dataset, "dataset_name": dataset, "split": split}
    return build_model_card(
        folder, repo_id=repo_id, datasets=[dataset] if "/" in dataset and not Path(dataset).exists() else None,
        metrics={"probe_top1_accuracy": {"value": metrics.top1, **result},
                 "probe_top5_accuracy": {"value": metrics.top5, **result}},
        base_model=base_model if is_hub_id else None,  # only a Hub id is a valid `base_model`
        tags=["probe"], metadata=recorded, sections={"Probe": settings},
        description=(f"A frozen JEPA encoder (`{base_model}`) with a trained **{probe_type} probe** on "
                     f"`{label_column}` of `{dataset}` ({metrics.num_samples} {split} samples: top-1 "
                     f"{metrics.top1:.4f}, top-5 {metrics.top5:.4f}), made with `hf_jepa` (`scripts/probe.py`)."),
    )


def plot_confusion_matrix(matrix: np.ndarray, names: Sequence[str], path: str | Path, *, title: str = "") -> Path:
    """Save a (C, C) confusion matrix (rows true, columns predicted) as a PNG with row-normalised colours."""
    plt = pyplot()

    matrix = np.asarray(matrix)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(names))
    ax.set_xticks(ticks, labels=names, rotation=90 if max(map(len, names), default=1) > 3 else 0)
    ax.set_yticks(ticks, labels=names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(names) <= 30:
        for i in ticks:
            for j in ticks:
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return save_figure(fig, path)
