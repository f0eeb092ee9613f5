"""Logging in the training paths: accelerate's multi-process logger, so that under `accelerate launch` a line such as
"saved checkpoint ..." is written once, by the main process, not once per rank.

`get_logger(name)` is `accelerate.logging.get_logger(name)` (a `MultiProcessAdapter`: main process only by default,
`main_process_only=False` on a call that matters per rank, messages prefixed `[RANK i]`), with one difference: before
any `Accelerator` exists (a checkpoint helper called on its own, the launch checks that run before the Accelerator
is built) accelerate's adapter raises a RuntimeError; this one then logs through the plain logger, on the process
whose launcher `RANK` is 0 only (every process for `main_process_only=False`).
"""

from __future__ import annotations

import os
from typing import Any

from accelerate.logging import MultiProcessAdapter
from accelerate.logging import get_logger as accelerate_logger
from accelerate.state import is_initialized

__all__ = ["get_logger"]


class _TrainingLogger(MultiProcessAdapter):
    """accelerate's `MultiProcessAdapter`, usable before an `Accelerator` exists (see the module docstring)."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if is_initialized():  # an Accelerator exists: accelerate decides which process writes
            super().log(level, msg, *args, **kwargs)
            return
        main_process_only = kwargs.pop("main_process_only", True)
        kwargs.pop("in_order", None)
        if main_process_only and int(os.environ.get("RANK", "0")) != 0:
            return
        if self.isEnabledFor(level):
            kwargs.setdefault("stacklevel", 2)
            self.logger.log(level, msg, *args, **kwargs)


def get_logger(name: str) -> _TrainingLogger:
    """The training paths' logger for module `name`: the logger accelerate's `get_logger` sets up (its level from
    `ACCELERATE_LOG_LEVEL` when set), in the adapter above."""
    return _TrainingLogger(accelerate_logger(name).logger, {})
