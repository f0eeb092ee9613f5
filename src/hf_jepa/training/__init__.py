"""hf_jepa.training: losses, EMA, schedules, optimizer, the Accelerate train step and the shared loop."""

from .ema import ema_momentum, ema_update
from .loop import LoopConfig, LoopResult, TrainingState, find_latest_checkpoint, fit
from .losses import jepa_l1_loss, jepa_smooth_l1_loss, sigreg_loss
from .objectives import pretraining_loss, world_model_loss
from .optim import DEFAULT_NO_WEIGHT_DECAY_NAMES, build_optimizer, split_weight_decay_params
from .schedules import build_lr_scheduler, warmup_constant_decay, warmup_cosine
from .step import ComputeLoss, StepOutput, train_step

__all__ = [
    "DEFAULT_NO_WEIGHT_DECAY_NAMES",
    "ComputeLoss",
    "LoopConfig",
    "LoopResult",
    "StepOutput",
    "TrainingState",
    "build_lr_scheduler",
    "build_optimizer",
    "ema_momentum",
    "ema_update",
    "find_latest_checkpoint",
    "fit",
    "jepa_l1_loss",
    "jepa_smooth_l1_loss",
    "pretraining_loss",
    "sigreg_loss",
    "split_weight_decay_params",
    "train_step",
    "warmup_constant_decay",
    "warmup_cosine",
    "world_model_loss",
]
