"""What every training script does around `fit`: build the Accelerator from the run's flags, `prepare` the
model / optimizer / scheduler, run the loop, and hand back the unwrapped model on every process."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn

from .loop import LoopConfig, LoopResult, fit


def build_accelerator(args: Any, project_name: str) -> Accelerator:
    """Accelerator from `args.gradient_accumulation_steps`, `mixed_precision`, `report_to`, `output_dir`."""
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=args.output_dir,
    )
    if args.report_to != "none":
        config = {k: v for k, v in dataclasses.asdict(args).items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers(project_name, config=config)
    return accelerator


def run_fit(args: Any, accelerator: Accelerator, setup: Any) -> tuple[nn.Module, LoopResult]:
    """`prepare` setup.model/optimizer/lr_scheduler, `fit` with the run's loop flags, return (unwrapped model, result).

    `setup` carries model, optimizer, lr_scheduler, dataloader_factory, compute_loss, prepare_batch and optionally
    ema_schedule; `args` carries output_dir, max_steps, checkpointing_steps, log_every, resume_from_checkpoint,
    max_grad_norm, seed and checkpoints_total_limit.
    """
    model, optimizer, scheduler = accelerator.prepare(setup.model, setup.optimizer, setup.lr_scheduler)
    loop = LoopConfig(
        output_dir=args.output_dir, max_steps=args.max_steps, checkpointing_steps=args.checkpointing_steps,
        log_every=args.log_every, resume_from_checkpoint=args.resume_from_checkpoint,
        max_grad_norm=args.max_grad_norm, seed=args.seed, checkpoints_total_limit=args.checkpoints_total_limit,
    )
    result = fit(loop, accelerator=accelerator, model=model, dataloader_factory=setup.dataloader_factory,
                 optimizer=optimizer, lr_scheduler=scheduler, compute_loss=setup.compute_loss,
                 prepare_batch=setup.prepare_batch, ema_schedule=getattr(setup, "ema_schedule", None))
    accelerator.wait_for_everyone()
    return accelerator.unwrap_model(model), result


def full_state_dict(accelerator: Accelerator, model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole state dict of `model` (the unwrapped model `run_fit` returns), for `save_pretrained(state_dict=...)`.

    A collective: call it on every process. Under FSDP the shards are gathered and the full weights land on the main
    process (other processes may get an empty or partial dict); otherwise it is `model.state_dict()`.
    """
    prepared = next((m for m in getattr(accelerator, "_models", []) if accelerator.unwrap_model(m) is model), model)
    return accelerator.get_state_dict(prepared)


def parse_flags(dataclass_type: type, argv: list[str]) -> Any:
    """Parse flags, or a single YAML / JSON file holding them, into `dataclass_type` (HfArgumentParser)."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclass_type)
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        return parser.parse_yaml_file(argv[0])[0]
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])[0]
    return parser.parse_args_into_dataclasses(argv)[0]
