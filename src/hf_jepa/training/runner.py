"""What every training script does around `fit`: build the Accelerator from the run's flags, `prepare` the
model / optimizer / scheduler, run the loop, and hand back the unwrapped model on every process."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from torch import nn

from .loop import LoopConfig, LoopResult, fit

logger = logging.getLogger(__name__)


@dataclass
class RunArguments:
    """The flags every training script shares (loop, optimizer, checkpoints, precision, tracking).

    A script's argument dataclass subclasses it, adds its own flags and may redeclare a field to change its
    default; `__post_init__` validates these, the subclass calls it and checks the rest.
    """

    output_dir: str = "runs/train"
    max_steps: int = 2000
    per_device_train_batch_size: int = 16
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-4
    start_lr: float = 1e-5
    final_lr: float = 1e-6
    warmup_steps: int = 100
    weight_decay: float = 0.04
    max_grad_norm: float | None = 1.0
    seed: int = 0
    log_every: int = 10
    checkpointing_steps: int | None = 500
    checkpoints_total_limit: int | None = 2
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "'latest' or a checkpoint path"})
    mixed_precision: Literal["no", "bf16", "fp16"] = field(
        default="no", metadata={"help": "'no' (fp32; right for CPUs without bf16 units) or bf16 on GPU"})
    report_to: Literal["none", "tensorboard", "trackio"] = "none"

    def __post_init__(self) -> None:
        for name in ("max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: expected >= 1")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate={self.learning_rate}: expected > 0")


def parse_config_overrides(text: str) -> dict[str, Any]:
    """`--config_overrides` JSON -> dict; a clear error for invalid JSON or a non-object."""
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"config_overrides={text!r} is not valid JSON: {err}") from err
    if not isinstance(overrides, dict):
        raise ValueError(f"config_overrides must be a JSON object, got {type(overrides).__name__}")
    return overrides


def build_accelerator(args: Any, project_name: str) -> Accelerator:
    """Accelerator from `args.gradient_accumulation_steps`, `mixed_precision`, `report_to`, `output_dir`."""
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=args.output_dir,
    )
    check_launch(accelerator)
    if args.report_to != "none":
        config = {k: v for k, v in dataclasses.asdict(args).items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers(project_name, config=config)
    return accelerator


def check_launch(accelerator: Accelerator) -> None:
    """Refuse a launch whose processes do not form one run; warn when FSDP was asked for but is not active.

    `accelerate launch` with an FSDP or multi-GPU config on a machine without GPUs starts ``WORLD_SIZE`` processes
    that each set up a single-process run: every one would train alone and overwrite the others' checkpoints.
    With ``use_cpu: true`` the processes form a gloo data-parallel run, but Accelerate enables FSDP on GPUs
    only, so an FSDP config trains unsharded there.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes != launched:
        raise RuntimeError(
            f"the launcher started WORLD_SIZE={launched} processes but Accelerate set up "
            f"num_processes={accelerator.num_processes} (distributed_type={accelerator.distributed_type.value}): "
            "each process would train alone and overwrite the others' checkpoints. Expected a GPU per process, or "
            "on a machine without GPUs `use_cpu: true` in the Accelerate config (or ACCELERATE_USE_CPU=1)"
        )
    fsdp_asked = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if fsdp_asked and accelerator.distributed_type != DistributedType.FSDP:
        logger.warning(
            "the Accelerate config asks for FSDP but the run is %s: Accelerate enables FSDP on GPUs only, so the "
            "model is replicated on every process (data parallel, unsharded checkpoints)",
            accelerator.distributed_type.value,
        )


def run_fit(args: Any, accelerator: Accelerator, setup: Any) -> tuple[nn.Module, LoopResult]:
    """`prepare` setup.model/optimizer/lr_scheduler, `fit` with the run's loop flags, return (unwrapped model, result).

    `setup` carries model, optimizer, lr_scheduler, dataloader_factory, compute_loss, prepare_batch and optionally
    ema_schedule and monitors; `args` carries output_dir, max_steps, checkpointing_steps, log_every,
    resume_from_checkpoint, max_grad_norm, seed and checkpoints_total_limit.
    """
    model, optimizer, scheduler = accelerator.prepare(setup.model, setup.optimizer, setup.lr_scheduler)
    loop = LoopConfig(
        output_dir=args.output_dir, max_steps=args.max_steps, checkpointing_steps=args.checkpointing_steps,
        log_every=args.log_every, resume_from_checkpoint=args.resume_from_checkpoint,
        max_grad_norm=args.max_grad_norm, seed=args.seed, checkpoints_total_limit=args.checkpoints_total_limit,
    )
    result = fit(loop, accelerator=accelerator, model=model, dataloader_factory=setup.dataloader_factory,
                 optimizer=optimizer, lr_scheduler=scheduler, compute_loss=setup.compute_loss,
                 prepare_batch=setup.prepare_batch, ema_schedule=getattr(setup, "ema_schedule", None),
                 monitors=getattr(setup, "monitors", ()))
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
