"""The project's metrics as local `evaluate` modules, loaded offline from this package.

    from hf_jepa.metrics import load_metric, save_results
    accuracy = load_metric("probe_accuracy")
    accuracy.compute(predictions=logits.tolist(), references=labels.tolist())   # {"top1": ..., "top5": ...}
    load_metric("planning_success").compute(successes=[True, False], final_distances=[0.1, 0.9])
    save_results("runs/probe", {"top1": 0.9}, model="runs/enc/encoder")        # evaluate.save: result-*.json

Each module is a folder holding ``<name>.py`` with one ``evaluate.Metric``, the layout ``evaluate.load`` reads from a
local path, so nothing is fetched from the Hub (``evaluate.load("accuracy")`` would be, and fails offline).

    probe_accuracy/     top-k accuracy of class scores (probes)
    planning_success/   success rate and final distance over planning episodes
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

__all__ = ["METRICS", "METRICS_DIR", "load_metric", "save_results"]

METRICS_DIR = Path(__file__).resolve().parent
METRICS = ("probe_accuracy", "planning_success")


@functools.cache
def load_metric(name: str) -> Any:
    """``evaluate.load`` of the local module ``name`` (one of ``METRICS``); cached per process."""
    import evaluate

    if name not in METRICS:
        raise ValueError(f"name={name!r}: expected one of {list(METRICS)}")
    return evaluate.load(str(METRICS_DIR / name))


def save_results(folder: str | Path, results: dict[str, Any], **info: Any) -> Path:
    """``evaluate.save`` the numeric / text entries of ``results`` and ``info`` into ``folder``
    (``result-<timestamp>.json``, with evaluate's run metadata: time, git commit, Python and package versions).

    Returns the written file.
    """
    import evaluate

    scalars = {k: v for k, v in {**results, **info}.items() if isinstance(v, (int, float, str, bool)) or v is None}
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(evaluate.save(str(folder), **scalars))
