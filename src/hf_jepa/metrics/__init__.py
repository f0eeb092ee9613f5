"""The project's metrics as local `evaluate` modules, loaded offline from this package.

    from hf_jepa.metrics import load_metric, save_results
    accuracy = load_metric("probe_accuracy")
    accuracy.compute(predictions=logits.tolist(), references=labels.tolist())   # {"top1": ..., "top5": ...}
    load_metric("planning_success").compute(successes=[True, False], final_distances=[0.1, 0.9])
    save_results("runs/probe", {"top1": 0.9}, model="runs/enc/encoder")        # evaluate.save: result-<time>.json
    write_after_results("runs/probe/results.json", [("confusion matrix", plot), ...])   # after the results file

Each module is a folder holding ``<name>.py`` with one ``evaluate.Metric``, the layout ``evaluate.load`` reads from a
local path, so nothing is fetched from the Hub (``evaluate.load("accuracy")`` would be, and fails offline).

Jobs write their results file first, then everything that can still fail (plots, GIFs, model folders, evaluate's
file) through ``write_after_results``: a failure there names what failed and where the results are, and loses nothing.

    probe_accuracy/     top-k accuracy of class scores (probes)
    planning_success/   success rate and final distance over planning episodes
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["METRICS", "METRICS_DIR", "OutputsIncomplete", "load_metric", "result_file_name", "save_results",
           "write_after_results"]

logger = logging.getLogger(__name__)

METRICS_DIR = Path(__file__).resolve().parent
METRICS = ("probe_accuracy", "planning_success")


@functools.cache
def load_metric(name: str) -> Any:
    """``evaluate.load`` of the local module ``name`` (one of ``METRICS``); cached per process."""
    import evaluate

    if name not in METRICS:
        raise ValueError(f"name={name!r}: expected one of {list(METRICS)}")
    return evaluate.load(str(METRICS_DIR / name))


def result_file_name(now: datetime | None = None) -> str:
    """evaluate's own name for a results file, ``result-%Y_%m_%d-%H_%M_%S.json``, at ``now`` (default: now)."""
    return f"result-{(now or datetime.now()):%Y_%m_%d-%H_%M_%S}.json"


def save_results(folder: str | Path, results: dict[str, Any], *, filename: str | None = None, **info: Any) -> Path:
    """``evaluate.save`` the numeric / text entries of ``results`` and ``info`` into ``folder / filename`` (default
    ``result_file_name()``; ``-1``, ``-2``, ... before the suffix if that file exists), with evaluate's run metadata
    (time, git commit, Python and package versions).

    ``evaluate.save`` is always given a file name: given a folder it decides by the path's suffix, so a folder named
    ``runs/v1.2`` or ``exp.lr3e-4`` would be opened as a file (IsADirectoryError).

    Returns the written file.
    """
    import evaluate

    if filename is not None and (not filename.endswith(".json") or Path(filename).name != filename):
        raise ValueError(f"filename={filename!r}: expected a file name ending in .json, without folders")
    scalars = {k: v for k, v in {**results, **info}.items() if isinstance(v, (int, float, str, bool)) or v is None}
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    path = out / (filename or result_file_name())
    if filename is None:
        stem, n = path.stem, 1
        while path.exists():
            path, n = out / f"{stem}-{n}.json", n + 1
    return Path(evaluate.save(str(path), **scalars))


class OutputsIncomplete(RuntimeError):
    """A job's results file was written, then some output after it failed; the message names the results file and
    every failed output (each also logged with its traceback). ``failed``: output name -> one-line reason."""

    def __init__(self, results_path: str | Path, failed: dict[str, str]) -> None:
        self.results_path, self.failed = Path(results_path), failed
        reasons = "; ".join(f"{name} ({reason})" for name, reason in failed.items())
        super().__init__(f"the results are saved in {self.results_path}, but {len(failed)} output(s) after them "
                         f"failed: {reasons}")


def write_after_results(results_path: str | Path, steps: Sequence[tuple[str, Callable[[], Any]]]) -> dict[str, Any]:
    """Run a job's remaining outputs after its results file is written: each ``(name, step)`` runs even when an
    earlier one failed (a failure is logged with its traceback), so one broken output loses no other.

    Returns:
        name -> the return value of each step (all succeeded).

    Raises:
        OutputsIncomplete: some steps failed; it names the results file (kept) and each failed step with its error.
    """
    done: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for name, step in steps:
        try:
            done[name] = step()
        except Exception as err:  # noqa: BLE001  (named in OutputsIncomplete; the other outputs still run)
            logger.exception("%s failed after the results were saved in %s", name, results_path)
            failed[name] = f"{type(err).__name__}: {err}"
    if failed:
        raise OutputsIncomplete(results_path, failed)
    return done
