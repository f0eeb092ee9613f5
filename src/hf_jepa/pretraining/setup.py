"""`build_pretraining`: model, data, masks, objective, AdamW, schedules and monitors of one run."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn

from hf_jepa.modeling.layers import init_jepa_weights
from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaForPreTraining
from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForPreTraining
from hf_jepa.modeling.modeling_easy_vjepa2_1 import VideoJepa21ForPreTraining
from hf_jepa.pretraining.arguments import PretrainArguments, build_model_config
from hf_jepa.pretraining.data import check_video_fps, data_factory
from hf_jepa.pretraining.masking import mask_sampler
from hf_jepa.pretraining.probe import online_probe
from hf_jepa.training import (
    DEFAULT_NO_WEIGHT_DECAY_NAMES,
    HyperParamScheduler,
    build_optimizer,
    build_schedules,
    pretraining_loss,
)
from hf_jepa.training.checkpoints import load_phase_checkpoint
from hf_jepa.training.monitors import CollapseMonitor, Monitor
from hf_jepa.training.objectives import PREDICTION_LOSSES, DenseHierarchicalLoss
from hf_jepa.training.rank_logging import get_logger
from hf_jepa.training.step import ComputeLoss

logger = get_logger(__name__)  # main process only under accelerate launch

@dataclass
class PretrainingSetup:
    """Everything `fit` needs besides the accelerator (model/optimizer/scheduler not yet `prepare`d)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler
    dataloader_factory: Callable[[int], Iterable[dict[str, Any]]]
    prepare_batch: Callable[[dict[str, Any], int], dict[str, Any]]
    compute_loss: ComputeLoss
    ema_schedule: Callable[[int], float] | None
    monitors: list[Monitor] = field(default_factory=list)


def collapse_monitor(args: PretrainArguments) -> CollapseMonitor:
    """The collapse monitors of a run: the objective's loss for the baseline; warnings only in the second half of the
    run (and after the lr warm-up), when the predictor has had time to beat the per-position constant."""
    if args.objective == "sigreg":
        hint = f"try a larger --sigreg_weight (now {args.sigreg_weight}) or a longer run"
    else:
        hint = "try --objective sigreg (Meta's EMA objective collapses at small scale) or a longer run"
    return CollapseMonitor(loss_fn=PREDICTION_LOSSES[args.model_type], hint=hint,
                           warn_after_steps=max(args.warmup_steps, args.max_steps // 2))


@torch.no_grad()
def meta_reinit(model: nn.Module, std: float = 0.02) -> None:
    """Meta's I-JEPA `init_model` (src/helper.py) after construction: every Linear gets trunc-normal(std) weights
    and zero biases, every LayerNorm unit weight and zero bias, in the encoder and the predictor. This undoes the
    constructor's 1/sqrt(2 * layer) rescale of the blocks' output projections, so Meta's I-JEPA runs train
    without it. The EMA target is then copied from the encoder again (as Meta's deepcopy after init_model)."""
    for part in (model.encoder, model.predictor):
        for module in part.modules():
            init_jepa_weights(module, std, conv=False)
    if model.target_encoder is not None:
        model.target_encoder.load_state_dict(model.encoder.state_dict())


def build_pretraining(args: PretrainArguments, accelerator: Accelerator) -> PretrainingSetup:
    """Model, data, masks, objective, AdamW (no decay on biases/norms), the schedules and the monitors of one run.

    The model is initialized from `args.seed` (the same weights on every process). With `--probe_label_column` the
    online probe's held-out set is read and checked here, before any training step.
    """
    config = build_model_config(args)
    check_video_fps(args)
    monitors: list[Monitor] = [collapse_monitor(args)]
    if args.probe_label_column is not None:
        monitors.append(online_probe(args, config, accelerator))
    model_cls = {"ijepa": ImageJepaForPreTraining, "vjepa2": VideoJepaForPreTraining,
                 "vjepa2_1": VideoJepa21ForPreTraining}[args.model_type]
    set_seed(args.seed)  # the initialization depends on --seed alone, not on what ran before in this process
    model = model_cls(config)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("%s (%s preset): %.2fM trainable parameters", model_cls.__name__, args.preset, n_params / 1e6)
    if args.meta_init:
        meta_reinit(model)
    no_decay = tuple(n for n in DEFAULT_NO_WEIGHT_DECAY_NAMES if not (args.weight_decay_mask_tokens
                                                                      and n == "mask_token"))
    optimizer = build_optimizer(model, lr=args.learning_rate, weight_decay=args.weight_decay,
                                no_weight_decay_names=no_decay)
    if args.init_from_checkpoint is not None:
        load_phase_checkpoint(args.init_from_checkpoint, model, optimizer)
    schedules = build_schedules(args)
    scheduler = HyperParamScheduler(optimizer, schedules)
    ema = schedules.momentum if args.objective == "meta" else None
    return PretrainingSetup(
        model=model, optimizer=optimizer, lr_scheduler=scheduler,
        dataloader_factory=data_factory(args, config, rank=accelerator.process_index,
                                        world_size=accelerator.num_processes),
        prepare_batch=mask_sampler(config, args.seed, accelerator.process_index,
                                   meta_compatible_masks=args.meta_compatible_masks),
        compute_loss=objective(args),
        ema_schedule=ema,
        monitors=monitors,
    )


def objective(args: PretrainArguments) -> ComputeLoss:
    """The run's loss: V-JEPA 2.1's dense hierarchical loss with the run's context-loss settings, else the family's
    `pretraining_loss`."""
    if args.model_type == "vjepa2_1":
        start, end = args.context_ramp()
        return DenseHierarchicalLoss(context_weight=args.context_loss_weight, ramp_start=start, ramp_end=end,
                                     distance_weighting=args.context_distance_weighting)
    return pretraining_loss(args.model_type, args.objective, sigreg_weight=args.sigreg_weight)
