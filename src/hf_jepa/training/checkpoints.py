"""Checkpoint folders that survive hard kills: atomic writes, a manifest, damage detection, safe rotation.

A checkpoint is ``checkpoints/step_{N}``, written by ``accelerator.save_state`` into ``step_{N}.partial`` and
renamed when every process has finished and the manifest (``checkpoint.json``: step and the size of every file)
is written. A run killed at any point therefore leaves either a complete ``step_{N}`` or a ``.partial`` folder
that nothing reads (and the next run removes). A ``step_{N}`` folder whose files disagree with its manifest
(truncated, deleted, or no manifest at all) is *damaged*: ``find_latest_checkpoint`` reports it by name and
falls back to the previous complete one. Rotation runs only after the new checkpoint is complete and only
counts complete checkpoints, so the last good one is never deleted first.

``atomic_folder`` gives any other output folder (e.g. ``final/``) the same write-then-rename guarantee.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .rank_logging import get_logger

__all__ = [
    "CHECKPOINT_PREFIX",
    "MANIFEST_NAME",
    "atomic_folder",
    "checkpoint_problem",
    "complete_checkpoints",
    "fault_point",
    "find_latest_checkpoint",
    "load_phase_checkpoint",
    "remove_partial_checkpoints",
    "resolve_phase_checkpoint",
    "rotate_checkpoints",
    "write_manifest",
]

logger = get_logger(__name__)  # main process only under accelerate launch

CHECKPOINT_PREFIX = "step_"
MANIFEST_NAME = "checkpoint.json"
PARTIAL_SUFFIX = ".partial"
_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")
FAULT_ENV = "HF_JEPA_KILL_AT"
FAULT_RANK_ENV = "HF_JEPA_KILL_RANK"


def fault_point(name: str, step: int | None = None) -> None:
    """Kill this process with SIGKILL if ``$HF_JEPA_KILL_AT`` names this point (fault-injection for tests).

    ``HF_JEPA_KILL_AT`` holds comma-separated points, ``name`` or ``name:step`` (e.g. ``after_step:3``,
    ``in_save:4``, ``in_final``); ``HF_JEPA_KILL_RANK``, if set, limits the kill to that process rank. Without the
    variable this is a dictionary lookup.
    """
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    rank = os.environ.get(FAULT_RANK_ENV)
    if rank is not None and rank != os.environ.get("RANK", "0"):
        return
    here = {name} if step is None else {name, f"{name}:{step}"}
    if here & {p.strip() for p in wanted.split(",")}:
        logger.warning("fault injection: SIGKILL at %s", f"{name}:{step}" if step is not None else name,
                       main_process_only=False)  # the killed rank says so, whichever it is
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


def _files(folder: Path) -> dict[str, int]:
    """Relative path -> size in bytes of every file under ``folder`` except the manifest."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }


def write_manifest(folder: str | Path, step: int) -> Path:
    """Write ``folder/checkpoint.json`` (the step and every file's size), flushed to disk; returns its path."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    with path.open("w") as f:
        json.dump({"step": step, "files": _files(folder)}, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    return path


def checkpoint_problem(folder: str | Path) -> str | None:
    """Why ``folder`` is not a complete checkpoint (a sentence naming the file), or None if it is complete."""
    folder = Path(folder)
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return f"no {MANIFEST_NAME} (the save did not finish)"
    try:
        expected = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{MANIFEST_NAME} is unreadable ({err})"
    found = _files(folder)
    for name, size in expected.items():
        if name not in found:
            return f"{name} is missing"
        if found[name] != size:
            return f"{name} has {found[name]} bytes, the manifest says {size}"
    return None


def _step_folders(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    if not checkpoint_dir.is_dir():
        return []
    return sorted(
        (int(m.group(1)), p) for p in checkpoint_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT_RE.match(p.name))
    )


def complete_checkpoints(checkpoint_dir: str | Path, *, warn: bool = False) -> list[tuple[int, Path]]:
    """(step, folder) of every complete ``step_{N}`` folder in ``checkpoint_dir``, oldest first.

    With ``warn``, each damaged folder is logged (WARNING) by name with what is wrong with it.
    """
    complete = []
    for step, folder in _step_folders(Path(checkpoint_dir)):
        problem = checkpoint_problem(folder)
        if problem is None:
            complete.append((step, folder))
        elif warn:
            logger.warning("checkpoint %s is damaged and is skipped: %s", folder, problem)
    return complete


def find_latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """Newest complete ``step_{N}`` folder (largest N) in ``checkpoint_dir``, or None.

    Damaged folders are reported (WARNING, by name) and skipped in favour of the previous complete one.
    """
    complete = complete_checkpoints(checkpoint_dir, warn=True)
    return complete[-1][1] if complete else None


def remove_partial_checkpoints(checkpoint_dir: str | Path) -> list[Path]:
    """Delete the ``*.partial`` folders a killed run left in ``checkpoint_dir``; returns what was removed."""
    checkpoint_dir = Path(checkpoint_dir)
    removed = sorted(checkpoint_dir.glob(f"*{PARTIAL_SUFFIX}")) if checkpoint_dir.is_dir() else []
    for folder in removed:
        logger.warning("removing %s: an unfinished checkpoint of an interrupted run", folder)
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def rotate_checkpoints(checkpoint_dir: str | Path, keep: int) -> list[Path]:
    """Delete the oldest complete checkpoints beyond the newest ``keep``; damaged ones older than the newest
    complete one go too. Returns the deleted folders. Run it only after the new checkpoint is complete."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got keep={keep}")
    complete = complete_checkpoints(checkpoint_dir)
    doomed = [folder for _, folder in complete[: max(0, len(complete) - keep)]]
    if complete:
        newest = complete[-1][0]
        done = {folder for _, folder in complete}
        doomed += [folder for step, folder in _step_folders(Path(checkpoint_dir))
                   if step < newest and folder not in done]
    for folder in doomed:
        logger.info("removing old checkpoint %s", folder)
        shutil.rmtree(folder, ignore_errors=True)
    return doomed


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Write a folder atomically: yields ``path.partial`` to write into; on success it replaces ``path``.

    If the block raises or the process dies, ``path`` keeps its previous content (or stays absent).
    """
    path = Path(path)
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    old = path.with_name(path.name + ".old")
    if old.exists() and not path.exists():  # a kill between the two renames below: the old content is complete
        old.rename(path)
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        path.rename(old)
        partial.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        partial.rename(path)


#: Files of an `accelerator.save_state` folder (one model, one optimizer, no FSDP) that a next phase loads.
MODEL_STATE_FILES = ("model.safetensors", "pytorch_model.bin")
OPTIMIZER_STATE_FILE = "optimizer.bin"


def resolve_phase_checkpoint(path: str | Path) -> Path:
    """The checkpoint folder a second training phase starts from: `path` itself when it holds optimizer state, else
    the newest complete `path/checkpoints/step_N` (a run's output_dir).

    Raises:
        FileNotFoundError: `path` is not a folder.
        ValueError: neither `path` nor a checkpoint under it holds optimizer state (e.g. an `output_dir/final` or
            `encoder` folder, which hold weights only), or the checkpoint is damaged.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"init_from_checkpoint={str(path)!r}: not a folder")
    if not (folder / OPTIMIZER_STATE_FILE).exists():
        latest = find_latest_checkpoint(folder / "checkpoints")
        if latest is None:
            raise ValueError(
                f"init_from_checkpoint={str(path)!r}: no optimizer state ({OPTIMIZER_STATE_FILE}) in it nor a "
                "checkpoints/step_N under it: expected a pretraining run's output_dir or one of its "
                "checkpoints/step_N folders (final/ and encoder/ hold weights only; a cool-down continues the "
                "optimizer state, as Meta's)")
        folder = latest
    if (problem := checkpoint_problem(folder)) is not None and (folder / MANIFEST_NAME).exists():
        raise ValueError(f"init_from_checkpoint={str(folder)!r} is damaged: {problem}")
    if not (folder / OPTIMIZER_STATE_FILE).exists():
        raise ValueError(f"init_from_checkpoint={str(folder)!r}: no optimizer state ({OPTIMIZER_STATE_FILE}); "
                         "expected an unsharded accelerate checkpoint (FSDP checkpoints are not supported here)")
    return folder


def load_phase_checkpoint(path: str | Path, model: Any, optimizer: Any) -> Path:
    """Load a previous phase's model weights (EMA target included) and optimizer state (Adam moments and step
    counts) into a freshly built, not yet prepared `model` / `optimizer`: Meta's cool-down (`anneal_ckpt`). The
    loop state, lr scheduler and RNG are not loaded: the new phase starts at step 0 with its own schedules.
    The groups' lr / weight decay are reset to the new optimizer's (the new schedules set them anyway).

    Returns the checkpoint folder read (see `resolve_phase_checkpoint`).

    Raises:
        ValueError: no optimizer state (see `resolve_phase_checkpoint`), or weights / parameter groups that do not
            fit the model (another architecture).
    """
    import torch

    folder = resolve_phase_checkpoint(path)
    weights = next((folder / name for name in MODEL_STATE_FILES if (folder / name).exists()), None)
    if weights is None:
        raise ValueError(f"init_from_checkpoint={str(folder)!r}: no model weights ({' or '.join(MODEL_STATE_FILES)})")
    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(weights))
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"init_from_checkpoint={str(folder)!r}: its weights do not fit the model built from these "
                         f"arguments: {str(err).splitlines()[0]}") from err
    opt_state = torch.load(folder / OPTIMIZER_STATE_FILE, map_location="cpu", weights_only=False)
    fresh = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    try:
        optimizer.load_state_dict(opt_state)
    except ValueError as err:
        raise ValueError(f"init_from_checkpoint={str(folder)!r}: its optimizer state does not fit this model's "
                         f"parameter groups: {err}") from err
    for group, settings in zip(optimizer.param_groups, fresh, strict=True):
        group.update(settings)
    logger.info("next phase: loaded weights and optimizer state of %s", folder)
    return folder
