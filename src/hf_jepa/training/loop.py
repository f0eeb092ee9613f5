"""The shared training loop: epochs of streamed batches -> ``train_step``, logging, checkpoints, exact resume.

Scripts build the model / optimizer / scheduler, ``accelerator.prepare`` them, then call ``fit``.
The dataloader is *not* prepared: the data is streamed and already sharded per process.

Resume is exact: ``accelerator.save_state`` stores model (EMA target included), optimizer,
scheduler, RNG states and a small ``TrainingState`` (step, epoch, batches consumed in the epoch,
skipped-sample count); on resume the epoch's iterable is re-created by ``dataloader_factory(epoch)``
and the consumed batches are skipped. For that to give the same batches, ``dataloader_factory``
must be deterministic in ``epoch`` (seed its shuffling / DataLoader generator from (seed, epoch)),
and any randomness applied to a batch in the training process should come from ``prepare_batch``
with a generator seeded by its ``step`` argument.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.scheduler import AcceleratedScheduler
from accelerate.utils import send_to_device, set_seed
from torch import nn
from tqdm.auto import tqdm

from .checkpoints import (
    CHECKPOINT_PREFIX,
    PARTIAL_SUFFIX,
    checkpoint_problem,
    fault_point,
    find_latest_checkpoint,
    remove_partial_checkpoints,
    rotate_checkpoints,
    write_manifest,
)
from .monitors import Monitor, monitored_loss
from .rank_logging import get_logger
from .state import (
    TrainingState,
    custom_checkpoint_file,
    register_training_state,
    registered_for_checkpointing,
    rng_restore,
    rng_snapshot,
)
from .step import ComputeLoss, StepOutput, train_step

__all__ = ["LoopConfig", "LoopResult", "fit"]

logger = get_logger(__name__)  # main process only under accelerate launch



@dataclass
class LoopConfig:
    """Settings of ``fit``, validated at construction.

    Attributes:
        output_dir: run folder: ``metrics.jsonl`` and ``checkpoints/step_{N}`` go here.
        max_steps: optimizer steps to train for (total, counting steps done before a resume).
        checkpointing_steps: save a checkpoint every this many optimizer steps (and always at the end);
            None: only at the end.
        log_every: log metrics every this many optimizer steps (and at the last step).
        resume_from_checkpoint: None (fresh start), ``"latest"`` (newest ``output_dir/checkpoints/step_*``;
            a fresh start if there is none), or the path of a checkpoint folder.
        max_grad_norm: clip the gradient norm to this; None: no clipping.
        seed: seeds Python / NumPy / torch at the start of ``fit`` (per process, ``device_specific``);
            a resume then restores the checkpoint's RNG states.
        checkpoints_total_limit: keep at most this many ``step_*`` folders (oldest deleted); None: keep all.
        stop_on_nonfinite_loss: raise ``FloatingPointError`` at the first NaN / inf micro-batch loss (Meta's V-JEPA 2
            ``assert not np.isnan(loss)``); False: log a warning at the next log step and go on.
    """

    output_dir: str | Path
    max_steps: int
    checkpointing_steps: int | None = None
    log_every: int = 10
    resume_from_checkpoint: str | Path | None = None
    max_grad_norm: float | None = 1.0
    seed: int = 0
    checkpoints_total_limit: int | None = None
    stop_on_nonfinite_loss: bool = False

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got max_steps={self.max_steps}")
        if self.checkpointing_steps is not None and self.checkpointing_steps < 1:
            raise ValueError(
                f"checkpointing_steps must be >= 1 or None, got checkpointing_steps={self.checkpointing_steps}"
            )
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1, got log_every={self.log_every}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got max_grad_norm={self.max_grad_norm}")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise ValueError(
                "checkpoints_total_limit must be >= 1 or None, "
                f"got checkpoints_total_limit={self.checkpoints_total_limit}"
            )
        if isinstance(self.resume_from_checkpoint, str) and self.resume_from_checkpoint == "":
            raise ValueError("resume_from_checkpoint must be None, 'latest' or a path, got resume_from_checkpoint=''")
        if self.resume_from_checkpoint is not None and self.resume_from_checkpoint != "latest":
            self.resume_from_checkpoint = Path(self.resume_from_checkpoint)

    @property
    def checkpoint_dir(self) -> Path:
        """``output_dir / "checkpoints"``."""
        return Path(self.output_dir) / "checkpoints"


@dataclass
class LoopResult:
    """What ``fit`` ended with.

    Attributes:
        global_step: optimizer steps done (== ``max_steps`` unless the data ran dry).
        epoch: the epoch in progress when training stopped.
        last_metrics: the last logged metrics (after a resume with nothing left to train: the checkpoint step's row,
            on the main process).
        skipped_samples: corrupt samples skipped by the data pipelines, summed over processes.
        last_checkpoint: folder of the last checkpoint saved, or None.
    """

    global_step: int
    epoch: int
    last_metrics: dict[str, float] = field(default_factory=dict)
    skipped_samples: int = 0
    last_checkpoint: Path | None = None


def _resolve_resume(config: LoopConfig) -> Path | None:
    if config.resume_from_checkpoint is None:
        return None
    if config.resume_from_checkpoint == "latest":
        path = find_latest_checkpoint(config.checkpoint_dir)
        if path is None:
            logger.warning(
                "resume_from_checkpoint='latest' but no checkpoint in %s: starting fresh", config.checkpoint_dir
            )
        return path
    path = Path(config.resume_from_checkpoint)
    if not path.is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint={str(path)!r} is not a folder")
    if (problem := checkpoint_problem(path)) is not None:
        raise ValueError(f"resume_from_checkpoint={str(path)!r} is not a complete checkpoint: {problem}; "
                         "pass 'latest' to take the newest complete one")
    return path


def _batch_size(batch: Mapping[str, Any]) -> int:
    """Leading dim of the first tensor in the batch (0 if none)."""
    for value in batch.values():
        if isinstance(value, torch.Tensor) and value.ndim > 0:
            return int(value.shape[0])
    return 0


def _current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def _current_weight_decay(optimizer: torch.optim.Optimizer) -> float | None:
    """Weight decay of the first decaying param group (None when every group is exempt)."""
    for group in optimizer.param_groups:
        if not group.get("no_weight_decay", False) and group.get("weight_decay", 0.0) is not None:
            return float(group.get("weight_decay", 0.0))
    return None


class _Window:
    """Running sums between two log steps (per process)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.loss_sum = 0.0
        self.micro_batches = 0
        self.samples = 0
        self.log_sums: dict[str, float] = {}
        self.log_counts: dict[str, int] = {}
        self.start = time.perf_counter()

    def add(self, out: StepOutput, samples: int) -> None:
        self.loss_sum += out.loss
        self.micro_batches += 1
        self.samples += samples
        for key, value in out.logs.items():
            self.log_sums[key] = self.log_sums.get(key, 0.0) + value
            self.log_counts[key] = self.log_counts.get(key, 0) + 1


def _truncate_metrics(path: Path, step: int) -> dict[str, float]:
    """Drop metric lines logged after ``step`` (by a run that died after its last checkpoint) and a torn last line
    (a run killed while writing it); returns the row logged at ``step`` ({} if none)."""
    if not path.exists():
        return {}
    kept, last = [], {}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            logger.warning("dropping an unreadable line of %s (a run killed while writing it?): %r", path, line[:80])
            continue
        if row.get("step", 0) <= step:
            kept.append(line)
            last = row if row.get("step") == step else last
    path.write_text("".join(line + "\n" for line in kept))
    return last


def fit(
    config: LoopConfig,
    *,
    accelerator: Accelerator,
    model: nn.Module,
    dataloader_factory: Callable[[int], Iterable[dict[str, Any]]],
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler | AcceleratedScheduler | None,
    compute_loss: ComputeLoss,
    prepare_batch: Callable[[dict[str, Any], int], dict[str, Any]] | None = None,
    ema_schedule: Callable[[int], float] | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
    monitors: Sequence[Monitor] = (),
) -> LoopResult:
    """Train ``model`` for ``config.max_steps`` optimizer steps over epochs of ``dataloader_factory(epoch)``.

    Per batch: pop ``"skipped_samples"`` (the number of corrupt samples the data pipeline skipped while
    producing *this batch*; they are summed per epoch and over processes), ``prepare_batch(batch, step)`` with
    ``step`` the index of the batch since the start of training (micro-batches, so unique under
    gradient accumulation), move it to ``accelerator.device``, then ``train_step`` with
    ``ema_momentum=ema_schedule(global_step)``. Every ``log_every`` optimizer steps: metrics averaged
    over the window and the processes go to ``output_dir/metrics.jsonl`` (main process), the tqdm bar,
    ``accelerator.log`` (trackers the caller set up with ``init_trackers``) and ``on_log`` (called on
    every process with the same dict). Checkpoints: ``accelerator.save_state(output_dir/checkpoints/step_{N})``.

    ``monitors`` (e.g. collapse statistics, an online probe; see ``hf_jepa.training.monitors``) see every
    micro-batch after the loss (``Monitor.observe``: outputs, model inputs and the batch before ``prepare_batch``;
    their logs are averaged like ``compute_loss``'s) and add metrics at each log step (``Monitor.summarize``); a
    ``stateful`` one is saved with the checkpoints and restored on resume.

    With several processes, an epoch ends for all as soon as one process's iterable is exhausted
    (one tiny all-reduce per batch), so collective ops never hang on uneven shards.

    Args:
        config: loop settings.
        accelerator: the Accelerator (gradient accumulation, mixed precision, trackers).
        model: prepared model; ``model(**batch)`` returns a ``ModelOutput``; with EMA it has
            ``encoder`` and ``target_encoder``.
        dataloader_factory: ``epoch -> iterable of dict batches`` (CPU tensors), fresh for each call,
            deterministic in ``epoch``; not passed through ``accelerator.prepare``.
        optimizer: prepared optimizer.
        lr_scheduler: scheduler stepped once per optimizer step (prepare it, or it is registered for
            checkpointing here), or None.
        compute_loss: ``(outputs, batch) -> (loss, logs)``; ``logs`` keys must be the same every call. One with a
            ``set_step(step)`` method (e.g. ``DenseHierarchicalLoss``) is told the optimizer step before each step.
        prepare_batch: optional ``(batch, step) -> batch`` run in the training process before the
            move to the device (e.g. masks from a generator seeded by (seed, step)).
        ema_schedule: optimizer step -> EMA momentum (e.g. ``partial(ema_momentum, total_steps=...)``);
            None: no EMA update.
        on_log: optional callback given the metrics dict at each log step.
        monitors: run beside the loss on every micro-batch and at each log step (see above).

    Returns:
        LoopResult with the final step, epoch, last metrics, skipped count and last checkpoint.
    """
    if accelerator.project_configuration.automatic_checkpoint_naming:
        raise ValueError(
            "fit names checkpoints itself (output_dir/checkpoints/step_N): build the Accelerator without "
            "ProjectConfiguration(automatic_checkpoint_naming=True)"
        )
    if accelerator.is_main_process:
        Path(config.output_dir).mkdir(parents=True, exist_ok=True)
    set_seed(config.seed, device_specific=True)
    state = register_training_state(accelerator)
    _register_stateful(accelerator, lr_scheduler, monitors)
    run = _Run(config, accelerator, model, optimizer, lr_scheduler, compute_loss, prepare_batch, ema_schedule,
               on_log, list(monitors), state)
    run.resume()
    return run.train(dataloader_factory)


def _register_stateful(accelerator: Accelerator, lr_scheduler: Any, monitors: Sequence[Monitor]) -> None:
    """Register an unprepared scheduler and the stateful monitors for checkpointing (once per accelerator)."""
    custom = registered_for_checkpointing(accelerator)
    if lr_scheduler is not None and not isinstance(lr_scheduler, AcceleratedScheduler):
        if not any(obj is lr_scheduler for obj in custom):
            logger.info("lr_scheduler was not prepared: registering it for checkpointing")
            accelerator.register_for_checkpointing(lr_scheduler)
    for monitor in monitors:
        if monitor.stateful and not any(obj is monitor for obj in custom):
            accelerator.register_for_checkpointing(monitor)


class _Run:
    """One call of ``fit``: resume, then epochs of micro-batches with logging and checkpoints, in named steps."""

    def __init__(self, config: LoopConfig, accelerator: Accelerator, model: nn.Module,
                 optimizer: torch.optim.Optimizer, lr_scheduler: Any, compute_loss: ComputeLoss,
                 prepare_batch: Callable[[dict[str, Any], int], dict[str, Any]] | None,
                 ema_schedule: Callable[[int], float] | None, on_log: Callable[[dict[str, float]], None] | None,
                 monitors: list[Monitor], state: TrainingState) -> None:
        self.config, self.accelerator, self.model = config, accelerator, model
        self.optimizer, self.lr_scheduler, self.compute_loss = optimizer, lr_scheduler, compute_loss
        self.prepare_batch, self.ema_schedule = prepare_batch, ema_schedule
        self.on_log, self.monitors = on_log, monitors
        self.state = state
        self.metrics_path = Path(config.output_dir) / "metrics.jsonl"
        self.multi_process = accelerator.num_processes > 1
        self.window = _Window()
        self.last_metrics: dict[str, float] = {}
        self.last_grad_norm: float | None = None
        self.update_weight_decay: float | None = None
        self.last_checkpoint: Path | None = None
        self.last_saved_step = -1
        self.epoch_skipped_local = 0  # this process, current epoch's iterable
        self.progress: Any = None

    # ------------------------------------------------------------------ resume

    def resume(self) -> None:
        """Remove unfinished checkpoints, then load the one ``config.resume_from_checkpoint`` names (if any)."""
        accelerator, state = self.accelerator, self.state
        if accelerator.is_main_process:
            remove_partial_checkpoints(self.config.checkpoint_dir)
        path = _resolve_resume(self.config)
        if path is not None:
            custom = registered_for_checkpointing(accelerator)
            missing = [type(obj).__name__ for i, obj in enumerate(custom)
                       if not custom_checkpoint_file(path, i).exists()]
            if missing:
                raise ValueError(
                    f"resume_from_checkpoint={str(path)!r} holds no saved state for {missing}: it was written by a "
                    "run with other settings (e.g. without the online probe); resume with that run's settings"
                )
            accelerator.load_state(str(path))
            self.last_checkpoint, self.last_saved_step = path, state.global_step
            logger.info("resumed from %s at step %d (epoch %d, %d batches into it)", path, state.global_step,
                        state.epoch, state.batches_in_epoch)
            if accelerator.is_main_process:
                self.last_metrics = _truncate_metrics(self.metrics_path, state.global_step)
        accelerator.wait_for_everyone()

    # ------------------------------------------------------------------ collectives, checkpoints, metrics

    def reduce_sum(self, values: list[float]) -> list[float]:
        if not self.multi_process:
            return values
        dtype = torch.float32 if self.accelerator.device.type == "mps" else torch.float64  # MPS has no float64
        tensor = torch.tensor(values, dtype=dtype, device=self.accelerator.device)
        return self.accelerator.reduce(tensor, reduction="sum").tolist()

    def save_checkpoint(self) -> Path:
        """``save_state`` into ``step_N.partial``, manifest, rename to ``step_N``, then rotate (see checkpoints)."""
        accelerator, step = self.accelerator, self.state.global_step
        path = self.config.checkpoint_dir / f"{CHECKPOINT_PREFIX}{step}"
        partial = path.with_name(path.name + PARTIAL_SUFFIX)
        accelerator.save_state(str(partial))
        accelerator.wait_for_everyone()
        fault_point("in_save", step)
        if accelerator.is_main_process:
            write_manifest(partial, step)
            if path.exists():
                shutil.rmtree(path)
            partial.rename(path)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process and self.config.checkpoints_total_limit is not None:
            rotate_checkpoints(self.config.checkpoint_dir, self.config.checkpoints_total_limit)
        self.last_saved_step, self.last_checkpoint = step, path
        logger.info("saved checkpoint %s", path)
        return path

    def log_metrics(self, lr: float) -> dict[str, float]:
        """Average the window over processes; write metrics.jsonl, the bar, the trackers and ``on_log``."""
        window, state, accelerator = self.window, self.state, self.accelerator
        keys = sorted(window.log_sums)
        sums = self.reduce_sum(
            [window.loss_sum, window.micro_batches, window.samples, self.epoch_skipped_local]
            + [window.log_sums[k] for k in keys]
            + [window.log_counts[k] for k in keys]
        )
        loss_sum, micro_batches, samples, epoch_skipped = sums[:4]
        log_sums, log_counts = sums[4 : 4 + len(keys)], sums[4 + len(keys) :]
        elapsed = max(time.perf_counter() - window.start, 1e-9)
        metrics: dict[str, float] = {
            "step": state.global_step,
            "epoch": state.epoch,
            "loss": loss_sum / max(micro_batches, 1),
            "lr": lr,
            "samples_per_second": samples / elapsed,
            "skipped_samples": state.skipped_before_epoch + int(epoch_skipped),
        }
        if self.update_weight_decay is not None:  # the weight decay of the update just done, as `lr`
            metrics["weight_decay"] = self.update_weight_decay
        if self.last_grad_norm is not None:
            metrics["grad_norm"] = self.last_grad_norm
        for key, value, count in zip(keys, log_sums, log_counts, strict=True):
            metrics.setdefault(key, value / max(count, 1))
        for monitor in self.monitors:
            metrics.update(monitor.summarize(metrics, accelerator=accelerator, model=self.model))
        if accelerator.is_main_process:
            with self.metrics_path.open("a") as f:
                f.write(json.dumps(metrics) + "\n")
            self.progress.set_postfix(
                loss=f"{metrics['loss']:.4f}", lr=f"{lr:.2e}", samples_s=f"{metrics['samples_per_second']:.1f}"
            )
            if not math.isfinite(metrics["loss"]):
                logger.warning("non-finite loss %s at step %d", metrics["loss"], state.global_step)
        accelerator.log(metrics, step=state.global_step)
        if self.on_log is not None:
            self.on_log(metrics)
        window.reset()
        return metrics

    # ------------------------------------------------------------------ epochs and steps

    def open_epoch(self, dataloader_factory: Callable[[int], Iterable[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
        """A fresh iterable for the current epoch, fast-forwarded past the batches a resumed run already consumed,
        without disturbing the RNG streams restored from the checkpoint."""
        state = self.state
        snapshot = rng_snapshot()
        iterator = iter(dataloader_factory(state.epoch))
        self.epoch_skipped_local = 0
        for i in range(state.batches_in_epoch):
            batch = next(iterator, None)
            if batch is None:
                raise RuntimeError(
                    f"resume: epoch {state.epoch} has only {i} batches but the checkpoint consumed "
                    f"{state.batches_in_epoch}; is dataloader_factory deterministic in epoch?"
                )
            self.epoch_skipped_local += int(batch.get("skipped_samples", 0))
        rng_restore(snapshot)
        if state.batches_in_epoch:
            logger.info("skipped %d consumed batches of epoch %d", state.batches_in_epoch, state.epoch)
        return iterator

    def next_batch(self, iterator: Iterator[dict[str, Any]]) -> dict[str, Any] | None:
        """The next batch, or None when any process's iterable is exhausted (every process ends the epoch)."""
        batch = next(iterator, None)
        if self.multi_process:
            flag = torch.tensor([1.0 if batch is None else 0.0], device=self.accelerator.device)
            if self.accelerator.reduce(flag, reduction="sum").item() > 0:
                return None
        return batch

    def micro_step(self, batch: dict[str, Any]) -> None:
        """One micro-batch through ``train_step``; on an optimizer step: log, checkpoint, advance the bar."""
        state, config = self.state, self.config
        state.batches_in_epoch += 1
        batch_index = state.batches_seen
        state.batches_seen += 1
        skipped = batch.pop("skipped_samples", None)
        if skipped is not None:
            self.epoch_skipped_local += int(skipped)
        samples = _batch_size(batch)
        raw_batch = dict(batch)  # what monitors see: untouched by a prepare_batch that edits in place
        if self.prepare_batch is not None:
            batch = self.prepare_batch(batch, batch_index)
        batch = send_to_device(batch, self.accelerator.device, non_blocking=True)
        lr = _current_lr(self.optimizer)
        self.update_weight_decay = _current_weight_decay(self.optimizer)
        momentum = self.ema_schedule(state.global_step) if self.ema_schedule is not None else None
        if hasattr(self.compute_loss, "set_step"):  # step-aware objectives (V-JEPA 2.1's context-loss ramp)
            self.compute_loss.set_step(state.global_step)
        out = train_step(self.accelerator, self.model, batch, self.optimizer, self.lr_scheduler,
                         compute_loss=monitored_loss(self.compute_loss, self.monitors, raw_batch),
                         max_grad_norm=config.max_grad_norm, ema_momentum=momentum)
        if config.stop_on_nonfinite_loss and not math.isfinite(out.loss):
            raise FloatingPointError(f"loss={out.loss} at step {state.global_step}: stopping (stop_on_nonfinite_loss); "
                                     f"resume from the last checkpoint ({self.last_checkpoint}) with a lower lr")
        self.window.add(out, samples)
        if not out.synced:
            return
        self.last_grad_norm = out.grad_norm
        state.global_step += 1
        self.progress.update(1)
        if state.global_step % config.log_every == 0 or state.global_step == config.max_steps:
            self.last_metrics = self.log_metrics(lr)
        if config.checkpointing_steps and state.global_step % config.checkpointing_steps == 0:
            self.save_checkpoint()
            self.window.start = time.perf_counter()  # keep checkpoint time out of throughput
        fault_point("after_step", state.global_step)

    def close_epoch(self, batches_this_call: int) -> None:
        """The epoch's iterable is exhausted: sum its skipped samples over processes and move to the next."""
        state = self.state
        if batches_this_call == 0 and state.batches_in_epoch == 0:
            raise RuntimeError(f"dataloader_factory({state.epoch}) yielded no batch")
        state.skipped_before_epoch += int(self.reduce_sum([float(self.epoch_skipped_local)])[0])
        self.epoch_skipped_local = 0
        logger.info("epoch %d done at step %d", state.epoch, state.global_step)
        state.epoch += 1
        state.batches_in_epoch = 0

    def train(self, dataloader_factory: Callable[[int], Iterable[dict[str, Any]]]) -> LoopResult:
        """Epochs until ``max_steps``, a final checkpoint, and the result."""
        state, config = self.state, self.config
        self.model.train()
        self.progress = tqdm(total=config.max_steps, initial=state.global_step, desc="train",
                             disable=not self.accelerator.is_main_process, dynamic_ncols=True)
        try:
            while state.global_step < config.max_steps:
                iterator = self.open_epoch(dataloader_factory)
                batches_this_call = 0
                while state.global_step < config.max_steps and (batch := self.next_batch(iterator)) is not None:
                    batches_this_call += 1
                    self.micro_step(batch)
                if state.global_step >= config.max_steps:
                    break
                self.close_epoch(batches_this_call)
            if self.last_saved_step != state.global_step:
                self.save_checkpoint()
        finally:
            self.progress.close()
        total_skipped = state.skipped_before_epoch + int(self.reduce_sum([float(self.epoch_skipped_local)])[0])
        return LoopResult(global_step=state.global_step, epoch=state.epoch, last_metrics=self.last_metrics,
                          skipped_samples=total_skipped, last_checkpoint=self.last_checkpoint)
