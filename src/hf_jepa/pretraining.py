"""The self-supervised pretraining recipe: arguments, model, masks, streamed data, objective, optimizer.

`scripts/pretrain.py` parses `PretrainArguments` and calls `build_pretraining`, then the shared `fit` loop.
Masks are drawn in the training process from a generator seeded by (seed, step, process), so a resumed run
draws exactly the masks the uninterrupted run would have.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from hf_jepa.data.images import ImageConfig, load_image_dataset
from hf_jepa.data.trajectories import as_dataloader, is_lerobot_dataset, lerobot_clips
from hf_jepa.data.transforms import TrainTransform
from hf_jepa.data.video import VideoClipConfig, dataloader, load_video_dataset
from hf_jepa.masks import MultiBlockMaskGenerator2D, MultiBlockMaskGenerator3D
from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaForPreTraining
from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForPreTraining
from hf_jepa.training import (
    build_lr_scheduler,
    build_optimizer,
    ema_momentum,
    pretraining_loss,
    warmup_constant_decay,
    warmup_cosine,
)
from hf_jepa.training.runner import RunArguments, parse_config_overrides
from hf_jepa.training.step import ComputeLoss

logger = logging.getLogger(__name__)

DEFAULT_DATASETS = {"ijepa": "builtin:moving_digit_frames", "vjepa2": "builtin:moving_digits"}
# Meta's EMA target momentum (start, end) per family: I-JEPA's configs ramp 0.996 -> 1 over the run, V-JEPA 2's
# (configs/train/*/pretrain-*.yaml, `ema: [0.99925, 0.99925]`) keep it constant.
DEFAULT_EMA = {"ijepa": (0.996, 1.0), "vjepa2": (0.99925, 0.99925)}


@dataclass
class PretrainArguments(RunArguments):
    """Flags of `scripts/pretrain.py` (also readable from a YAML / JSON file)."""

    model_type: Literal["ijepa", "vjepa2"] = field(default="vjepa2", metadata={"help": "model family"})
    preset: str = field(default="tiny", metadata={"help": "size preset (tiny, small, vit_l, ...)"})
    config_overrides: str = field(default="{}", metadata={"help": "JSON dict of model config fields"})
    dataset_name: str | None = field(default=None, metadata={
        "help": "Hub id, local folder (video/image files, parquet shards, or a LeRobot v3 dataset), or "
                "builtin:<name>; default the built-in moving digits (videos or frames)"})
    split: str = "train"
    video_column: str = "video"
    image_column: str = "image"
    camera_key: str | None = field(default=None, metadata={"help": "LeRobot datasets: video key (default first)"})
    frames_per_clip: int | None = field(default=None, metadata={"help": "default: the preset's num_frames"})
    frame_step: int = 1
    decay_steps: int | None = field(
        default=None, metadata={"help": "V-JEPA 2 cool-down length in steps (default: a tenth of max_steps)"}
    )
    max_grad_norm: float | None = 10.0
    ema_start: float | None = field(default=None, metadata={
        "help": "EMA target momentum at step 0 (default: Meta's, I-JEPA 0.996, V-JEPA 2 0.99925)"})
    ema_end: float | None = field(default=None, metadata={
        "help": "EMA target momentum at max_steps, linear in between (default: Meta's, I-JEPA 1.0, V-JEPA 2 0.99925)"})
    objective: Literal["meta", "sigreg"] = "meta"
    sigreg_weight: float = 0.05
    num_workers: int = 0
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frame_step < 1:
            raise ValueError(f"frame_step={self.frame_step}: expected >= 1")
        if self.model_type not in DEFAULT_DATASETS:
            raise ValueError(f"model_type={self.model_type!r}: expected 'ijepa' or 'vjepa2'")
        if self.objective not in ("meta", "sigreg"):
            raise ValueError(f"objective={self.objective!r}: expected 'meta' or 'sigreg'")
        parse_config_overrides(self.config_overrides)
        self.dataset_name = self.dataset_name or DEFAULT_DATASETS[self.model_type]
        if self.objective == "sigreg":
            given = {name: getattr(self, name) for name in ("ema_start", "ema_end") if getattr(self, name) is not None}
            if given:
                raise ValueError(f"{given}: objective='sigreg' trains without an EMA target; drop the EMA flags "
                                 "or use objective='meta'")
            return
        start, end = DEFAULT_EMA[self.model_type]
        self.ema_start = start if self.ema_start is None else self.ema_start
        self.ema_end = end if self.ema_end is None else self.ema_end
        for name in ("ema_start", "ema_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)}: expected a momentum in [0, 1]")


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


def build_model_config(args: PretrainArguments) -> ImageJepaConfig | VideoJepaConfig:
    """The model config from the preset, the overrides, the clip length and the objective."""
    overrides = parse_config_overrides(args.config_overrides)
    overrides["use_ema_target"] = args.objective == "meta"
    if args.model_type == "ijepa":
        return ImageJepaConfig.from_preset(args.preset, **overrides)
    if args.frames_per_clip is not None:
        overrides.setdefault("num_frames", args.frames_per_clip)
    return VideoJepaConfig.from_preset(args.preset, **overrides)


def mask_sampler(config: ImageJepaConfig | VideoJepaConfig, seed: int, process_index: int
                 ) -> Callable[[dict[str, Any], int], dict[str, Any]]:
    """`prepare_batch(batch, step)` adding `context_mask` / `target_mask` drawn from a (seed, step, rank) generator."""
    if isinstance(config, ImageJepaConfig):
        generator2d = MultiBlockMaskGenerator2D(config.grid_size)
    else:
        generator3d = MultiBlockMaskGenerator3D(config.grid)

    def prepare(batch: dict[str, Any], step: int) -> dict[str, Any]:
        key = next(k for k in ("pixel_values", "pixel_values_videos") if k in batch)
        size = batch[key].shape[0]
        gen = torch.Generator().manual_seed(((seed * 1_000_003 + step) * 1_009 + process_index) % (2**63))
        if isinstance(config, ImageJepaConfig):
            masks = generator2d(size, generator=gen)
            extra = {"context_mask": masks.context[0], "target_mask": masks.targets}  # (B, K), (P, B, M)
        else:
            pairs = generator3d(size, generator=gen)
            extra = {"context_mask": [p.context for p in pairs], "target_mask": [p.target for p in pairs]}
        keep = {k: v for k, v in batch.items() if k == key}  # labels are not model inputs
        return {**keep, **extra}

    return prepare


def data_factory(args: PretrainArguments, config: ImageJepaConfig | VideoJepaConfig, *, rank: int,
                 world_size: int) -> Callable[[int], DataLoader]:
    """`factory(epoch)`: a fresh DataLoader over this rank's shards, reshuffled deterministically per epoch."""

    def factory(epoch: int) -> DataLoader:
        if args.model_type == "vjepa2" and is_lerobot_dataset(args.dataset_name):
            transform = TrainTransform(size=config.image_size, scale=(0.8, 1.0), ratio=(0.9, 1.1), hflip_prob=0.0,
                                       mean=tuple(config.image_mean), std=tuple(config.image_std))
            clips = lerobot_clips(args.dataset_name, frames_per_clip=config.num_frames, frame_step=args.frame_step,
                                  transform=transform, rank=rank, world_size=world_size, seed=args.seed,
                                  epoch=epoch, camera_key=args.camera_key)
            return as_dataloader(clips, args.per_device_train_batch_size, args.num_workers)
        if args.model_type == "ijepa":
            image_config = ImageConfig(crop_size=config.image_size, image_column=args.image_column,
                                       mean=tuple(config.image_mean), std=tuple(config.image_std))
            stream = load_image_dataset(args.dataset_name, args.split, rank=rank, world_size=world_size,
                                        seed=args.seed, image_config=image_config)
        else:
            clip_config = VideoClipConfig(frames_per_clip=config.num_frames, frame_step=args.frame_step,
                                          crop_size=config.image_size, video_column=args.video_column,
                                          mean=tuple(config.image_mean), std=tuple(config.image_std))
            stream = load_video_dataset(args.dataset_name, args.split, rank=rank, world_size=world_size,
                                        seed=args.seed, clip_config=clip_config)
        stream.set_epoch(epoch)
        return dataloader(stream, args.per_device_train_batch_size, args.num_workers, drop_last=True)

    return factory


def build_pretraining(args: PretrainArguments, accelerator: Accelerator) -> PretrainingSetup:
    """Model, data, masks, objective, AdamW (no decay on biases/norms) and the schedules of one run.

    The model is initialized from `args.seed` (the same weights on every process).
    """
    config = build_model_config(args)
    model_cls = ImageJepaForPreTraining if args.model_type == "ijepa" else VideoJepaForPreTraining
    set_seed(args.seed)  # the initialization depends on --seed alone, not on what ran before in this process
    model = model_cls(config)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("%s (%s preset): %.2fM trainable parameters", model_cls.__name__, args.preset, n_params / 1e6)
    optimizer = build_optimizer(model, lr=args.learning_rate, weight_decay=args.weight_decay)
    warmup = min(args.warmup_steps, max(args.max_steps - 1, 0))
    if args.model_type == "ijepa":
        def lr_fn(step: int) -> float:
            return warmup_cosine(step, warmup_steps=warmup, total_steps=args.max_steps, start_lr=args.start_lr,
                                 peak_lr=args.learning_rate, final_lr=args.final_lr)
    else:
        decay = args.decay_steps if args.decay_steps is not None else max(args.max_steps // 10, 1)
        decay = min(decay, args.max_steps - warmup)

        def lr_fn(step: int) -> float:
            return warmup_constant_decay(step, warmup_steps=warmup, total_steps=args.max_steps, decay_steps=decay,
                                         start_lr=args.start_lr, peak_lr=args.learning_rate, final_lr=args.final_lr)
    scheduler = build_lr_scheduler(optimizer, lr_fn, peak_lr=args.learning_rate)
    ema = None
    if args.objective == "meta":
        def ema(step: int) -> float:
            return ema_momentum(step, total_steps=args.max_steps, start=args.ema_start, end=args.ema_end)
    return PretrainingSetup(
        model=model, optimizer=optimizer, lr_scheduler=scheduler,
        dataloader_factory=data_factory(args, config, rank=accelerator.process_index,
                                        world_size=accelerator.num_processes),
        prepare_batch=mask_sampler(config, args.seed, accelerator.process_index),
        compute_loss=pretraining_loss(args.model_type, args.objective, sigreg_weight=args.sigreg_weight),
        ema_schedule=ema,
    )
