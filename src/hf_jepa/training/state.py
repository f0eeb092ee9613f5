"""What a checkpoint restores besides model / optimizer / scheduler: the loop's position (``TrainingState``,
registered with ``accelerator.register_for_checkpointing``) and, around a resumed run's fast-forward, the RNG
streams (snapshot and restore)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import accelerate
import numpy as np
import torch
from accelerate import Accelerator

__all__ = ["TrainingState", "custom_checkpoint_file", "register_training_state", "registered_for_checkpointing",
           "rng_restore", "rng_snapshot"]


def registered_for_checkpointing(accelerator: Accelerator) -> list[Any]:
    """The objects `accelerator.register_for_checkpointing` holds, in registration order (object i is saved as
    `custom_checkpoint_file(dir, i)`).

    accelerate keeps them in its private `Accelerator._custom_objects` list, with no public accessor; a missing
    attribute raises here instead of reading as "nothing registered" (tests/test_training.py checks the attribute
    and the file naming against the installed accelerate).
    """
    try:
        return accelerator._custom_objects
    except AttributeError as err:
        raise RuntimeError(
            f"accelerate {accelerate.__version__}: Accelerator has no `_custom_objects` (the objects registered for "
            "checkpointing); hf_jepa reads it to resume. Install the accelerate version pyproject.toml pins."
        ) from err


def custom_checkpoint_file(checkpoint_dir: str | Path, index: int) -> Path:
    """Where `accelerator.save_state(checkpoint_dir)` writes the `index`-th registered object (accelerate's
    `custom_checkpoint_{index}.pkl`)."""
    return Path(checkpoint_dir) / f"custom_checkpoint_{index}.pkl"


@dataclass
class TrainingState:
    """Loop position, saved with ``accelerator.register_for_checkpointing``.

    Attributes:
        global_step: optimizer steps done.
        epoch: current epoch (argument of ``dataloader_factory``).
        batches_in_epoch: batches consumed from the current epoch's iterable (per process).
        batches_seen: batches consumed since the start of training (the ``step`` given to ``prepare_batch``).
        skipped_before_epoch: skipped samples reported in finished epochs, summed over processes.
    """

    global_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    batches_seen: int = 0
    skipped_before_epoch: int = 0

    def state_dict(self) -> dict[str, int]:
        """Plain-int state for ``accelerator.save_state``."""
        return {
            "global_step": self.global_step,
            "epoch": self.epoch,
            "batches_in_epoch": self.batches_in_epoch,
            "batches_seen": self.batches_seen,
            "skipped_before_epoch": self.skipped_before_epoch,
        }

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Restore from ``state_dict()``."""
        for key in self.state_dict():
            setattr(self, key, int(state[key]))


def register_training_state(accelerator: Accelerator) -> TrainingState:
    """One TrainingState per accelerator (re-used if ``fit`` runs twice with the same accelerator)."""
    for obj in registered_for_checkpointing(accelerator):
        if isinstance(obj, TrainingState):
            obj.load_state_dict(TrainingState().state_dict())
            return obj
    state = TrainingState()
    accelerator.register_for_checkpointing(state)
    return state


def rng_snapshot() -> dict[str, Any]:
    snap: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        snap["cuda"] = torch.cuda.get_rng_state_all()
    return snap


def rng_restore(snap: dict[str, Any]) -> None:
    random.setstate(snap["python"])
    np.random.set_state(snap["numpy"])
    torch.set_rng_state(snap["torch"])
    if "cuda" in snap:
        torch.cuda.set_rng_state_all(snap["cuda"])
