"""What a checkpoint restores besides model / optimizer / scheduler: the loop's position (``TrainingState``,
registered with ``accelerator.register_for_checkpointing``) and, around a resumed run's fast-forward, the RNG
streams (snapshot and restore)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator

__all__ = ["TrainingState", "register_training_state", "rng_restore", "rng_snapshot"]


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
    for obj in getattr(accelerator, "_custom_objects", []):
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
