"""hf_jepa.training: losses, EMA, schedules, optimizer, the Accelerate train step, the shared loop, its monitors and
crash-safe checkpoints."""

from .checkpoints import atomic_folder, checkpoint_problem, find_latest_checkpoint
from .ema import ema_momentum, ema_update
from .loop import LoopConfig, LoopResult, fit
from .losses import jepa_l1_loss, jepa_smooth_l1_loss, sigreg_loss
from .monitors import CollapseMonitor, Monitor, constant_baseline_ratio, effective_rank, target_std
from .objectives import DenseHierarchicalLoss, context_loss_weight, pretraining_loss, world_model_loss
from .online_probe import OnlineProbe
from .optim import DEFAULT_NO_WEIGHT_DECAY_NAMES, build_optimizer, split_weight_decay_params
from .schedules import (
    HyperParamScheduler,
    Schedules,
    build_lr_scheduler,
    build_schedules,
    warmup_constant_decay,
    warmup_cosine,
)
from .state import TrainingState
from .step import ComputeLoss, StepOutput, train_step

__all__ = [
    "DEFAULT_NO_WEIGHT_DECAY_NAMES",
    "CollapseMonitor",
    "ComputeLoss",
    "LoopConfig",
    "LoopResult",
    "HyperParamScheduler",
    "Monitor",
    "OnlineProbe",
    "Schedules",
    "StepOutput",
    "TrainingState",
    "atomic_folder",
    "build_lr_scheduler",
    "build_optimizer",
    "build_schedules",
    "checkpoint_problem",
    "constant_baseline_ratio",
    "effective_rank",
    "ema_momentum",
    "ema_update",
    "find_latest_checkpoint",
    "fit",
    "jepa_l1_loss",
    "jepa_smooth_l1_loss",
    "pretraining_loss",
    "DenseHierarchicalLoss",
    "context_loss_weight",
    "sigreg_loss",
    "split_weight_decay_params",
    "target_std",
    "train_step",
    "warmup_constant_decay",
    "warmup_cosine",
    "world_model_loss",
]
