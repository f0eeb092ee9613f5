"""What every training script does around `fit`: build the Accelerator from the run's flags, `prepare` the
model / optimizer / scheduler, run the loop, and hand back the unwrapped model on every process."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from torch import nn

from .loop import LoopConfig, LoopResult, fit
from .rank_logging import get_logger
from .schedules import check_schedule_args

logger = get_logger(__name__)  # main process only under accelerate launch


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
    warmup_steps: int | None = field(default=None, metadata={
        "help": "linear lr warmup in optimizer steps; default min(100, max_steps - 1). A warmup longer than the run "
                "is an error unless --allow_warmup_past_end"})
    lr_schedule: str | None = field(default=None, metadata={
        "help": "warmup_cosine | warmup_constant | warmup_stable_decay | linear_decay (Meta's WarmupCosineSchedule, "
                "the same held at learning_rate, WSDSchedule, LinearDecaySchedule); default: the script's "
                "(hf_jepa.training.schedules.build_schedules)"})
    schedule_steps: int | None = field(default=None, metadata={
        "help": "length of the lr / weight-decay / EMA schedules (Meta's int(ipe_scale * epochs * ipe), may exceed "
                "max_steps); default max_steps"})
    decay_steps: int | None = field(default=None, metadata={
        "help": "warmup_stable_decay: the final linear decay's length (Meta's anneal x ipe); default a tenth of "
                "schedule_steps"})
    schedule_offset: int = field(default=0, metadata={
        "help": "1: Meta's schedulers step before the update, so update k uses lr / weight decay f(k + 1); 0: f(k)"})
    allow_warmup_past_end: bool = field(default=False, metadata={
        "help": "accept a warmup longer than the run (Meta's V-JEPA 2 ViT-L/H pretraining configs end inside it)"})
    weight_decay: float = 0.04
    final_weight_decay: float | None = field(default=None, metadata={
        "help": "cosine weight-decay schedule weight_decay -> final_weight_decay over schedule_steps (Meta's "
                "CosineWDSchedule; I-JEPA 0.04 -> 0.4); none: constant"})
    max_grad_norm: float | None = field(default=None, metadata={
        "help": "clip the global gradient norm to this; none or 0: no clipping (the default, as Meta)"})
    global_batch_size: int | None = field(default=None, metadata={
        "help": "samples per optimizer update over all processes (Meta's batch_size x GPUs); sets "
                "gradient_accumulation_steps = global / (per_device_train_batch_size x processes), an error if it "
                "does not divide"})
    stop_on_nonfinite_loss: bool = field(default=False, metadata={
        "help": "stop at the first NaN / inf loss (Meta's V-JEPA 2 asserts it); default: warn and go on"})
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
        if self.max_grad_norm is not None and self.max_grad_norm < 0:
            raise ValueError(f"max_grad_norm={self.max_grad_norm}: expected > 0, or 0 / none for no clipping")
        if self.max_grad_norm == 0:
            self.max_grad_norm = None
        if self.warmup_steps is None:
            self.warmup_steps = min(100, max(self.max_steps - 1, 0))
        if self.lr_schedule is None:
            self.lr_schedule = self.default_lr_schedule()
        if self.global_batch_size is not None and self.global_batch_size < 1:
            raise ValueError(f"global_batch_size={self.global_batch_size}: expected >= 1 or none")
        check_schedule_args(self)

    def default_lr_schedule(self) -> str:
        """The lr schedule when --lr_schedule is not given (a script's arguments may override it)."""
        return "warmup_cosine"


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
    resolve_global_batch(args)
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


def resolve_global_batch(args: Any, num_processes: int | None = None) -> None:
    """With `args.global_batch_size` set, set `args.gradient_accumulation_steps` so that per-device batch x processes
    x accumulation equals it (the processes from `accelerate launch`'s WORLD_SIZE unless given); a ValueError naming
    the three numbers when it does not divide."""
    if getattr(args, "global_batch_size", None) is None:
        return
    processes = num_processes if num_processes is not None else int(os.environ.get("WORLD_SIZE", "1"))
    per_update = args.per_device_train_batch_size * processes
    if args.global_batch_size % per_update != 0:
        raise ValueError(
            f"global_batch_size={args.global_batch_size}: expected a multiple of per_device_train_batch_size="
            f"{args.per_device_train_batch_size} x {processes} process(es) = {per_update} (the rest is made up by "
            "gradient accumulation); change --per_device_train_batch_size or pass --global_batch_size none")
    args.gradient_accumulation_steps = args.global_batch_size // per_update
    logger.info("global batch %d = %d per device x %d process(es) x %d accumulation steps", args.global_batch_size,
                args.per_device_train_batch_size, processes, args.gradient_accumulation_steps)


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
        stop_on_nonfinite_loss=getattr(args, "stop_on_nonfinite_loss", False),
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


RECIPE_SUFFIXES = (".yaml", ".yml", ".json")


def read_recipe(path: str | os.PathLike[str], dataclass_type: type) -> dict[str, Any]:
    """The fields of a recipe file (YAML or JSON mapping of `dataclass_type` field -> value), checked by name.

    A mapping value of a `str` field (e.g. `config_overrides`) is written back as JSON.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a mapping, or a key that is no field (the message names it and the nearest field).
    """
    import difflib

    import yaml

    text = open(path).read()  # noqa: SIM115 (short read)
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"recipe={str(path)!r}: expected a mapping of {dataclass_type.__name__} fields, got "
                         f"{type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(dataclass_type) if f.init}
    for key in data:
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"{key}={data[key]!r} (in {path}): expected a field of {dataclass_type.__name__}, "
                             f"this key is unknown{hint}")
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and fields[key].type in (str, "str"):
            value = json.dumps(value)
        out[key] = value
    return out


def _accept_none(parser: Any, dataclass_type: type) -> None:
    """Let every optional field take `none` / `null` on the command line (e.g. `--max_grad_norm none`)."""
    optional = {f.name for f in dataclasses.fields(dataclass_type) if f.default is None}
    for action in parser._actions:  # argparse keeps its actions there; HfArgumentParser sets their types
        if action.dest in optional and action.type is not None and action.nargs is None:
            convert = action.type

            def parse(text: str, convert: Any = convert) -> Any:
                return None if str(text).lower() in ("none", "null") else convert(text)

            action.type = parse


def parse_flags(dataclass_type: type, argv: list[str]) -> Any:
    """Parse flags into `dataclass_type` (HfArgumentParser); a first argument ending in .yaml / .yml / .json is a
    recipe file whose fields become the defaults, and any flag after it overrides them:

        scripts/pretrain.py configs/meta/ijepa/in1k_vith14_ep300.yaml --max_steps 10 --output_dir runs/x

    Optional fields accept `none`. A recipe key that is no field is an error naming it and the nearest field.
    """
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclass_type)
    _accept_none(parser, dataclass_type)
    if argv and str(argv[0]).endswith(RECIPE_SUFFIXES):
        parser.set_defaults(**read_recipe(argv[0], dataclass_type))
        argv = list(argv[1:])
    return parser.parse_args_into_dataclasses(argv)[0]
