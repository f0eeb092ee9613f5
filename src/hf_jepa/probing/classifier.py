"""A trained probe as a transformers classifier folder: the model, its model card and the confusion-matrix plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from hf_jepa.data.labels import LabelInfo
from hf_jepa.hub import CARD_METADATA_KEY
from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaForImageClassification
from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForVideoClassification
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
    cls = VideoJepaForVideoClassification if encoder.modality == "video" else ImageJepaForImageClassification
    model = cls(config)
    model.target_encoder.load_state_dict(encoder.model.state_dict())
    model.probe.load_state_dict(probe.state_dict())
    return model.eval()


def probe_model_card(
    *,
    model_name: str,
    base_model: str,
    dataset: str,
    label_column: str,
    probe_type: str,
    modality: str,
    metrics: ProbeMetrics,
    settings: dict[str, Any],
    encoder_training: dict[str, Any] | None = None,
) -> Any:
    """A `huggingface_hub.ModelCard` whose metadata (`model-index`) holds the top-1 / top-5 test accuracies.

    The YAML metadata also records, under `hf_jepa` (`hf_jepa.hub.read_card_metadata`), the probe (`probe`: type,
    dataset, label column, evaluation split, top-1 / top-5, samples, epochs) and its frozen encoder (`encoder`: the
    model it was given and `encoder_training`, what that encoder's own card recorded about its pretraining).
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    task = "video-classification" if modality == "video" else "image-classification"
    split = settings.get("eval_split", "test")
    results = [EvalResult(task_type=task, dataset_type=dataset, dataset_name=dataset, dataset_split=split,
                          metric_type=f"top{k}_accuracy", metric_name=f"top-{k} accuracy", metric_value=value)
               for k, value in ((1, metrics.top1), (5, metrics.top5))]
    is_hub_id = not Path(base_model).exists() and not base_model.startswith(("random:", "pixels"))
    base = base_model if is_hub_id else None  # only a Hub id is a valid `base_model`
    recorded = {
        "probe": {"type": probe_type, "dataset": dataset, "label_column": label_column, "split": split,
                  "top1": metrics.top1, "top5": metrics.top5, "num_samples": metrics.num_samples,
                  "epochs": settings.get("epochs")},
        "encoder": {"model": base_model, **({"training": dict(encoder_training)} if encoder_training else {})},
    }
    data = ModelCardData(model_name=model_name, library_name="transformers", pipeline_tag=task,
                         tags=["jepa", "probe", "hf_jepa"], base_model=base, eval_results=results,
                         **{CARD_METADATA_KEY: recorded})
    lines = "\n".join(f"| {k} | {v} |" for k, v in settings.items())
    content = f"""---
{data.to_yaml()}
---

# {model_name}

A frozen JEPA encoder (`{base_model}`) with a trained **{probe_type} probe** on `{label_column}` of `{dataset}`,
made with `hf_jepa` (`scripts/probe.py`).

| split | top-1 | top-5 | samples |
| --- | --- | --- | --- |
| {split} | {metrics.top1:.4f} | {metrics.top5:.4f} | {metrics.num_samples} |

```python
import hf_jepa  # or trust_remote_code=True without it
from transformers import pipeline
classifier = pipeline("{task}", model="path/to/this/folder")
```

## Settings

| setting | value |
| --- | --- |
{lines}
"""
    return ModelCard(content)


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
