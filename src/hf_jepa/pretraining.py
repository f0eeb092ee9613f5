"""The self-supervised pretraining recipe: arguments, model, masks, streamed data, objective, optimizer.

`scripts/pretrain.py` parses `PretrainArguments` and calls `build_pretraining`, then the shared `fit` loop.
Masks are drawn in the training process from a generator seeded by (seed, step, process), so a resumed run
draws exactly the masks the uninterrupted run would have.

Every run carries the collapse monitors (`CollapseMonitor`: effective rank, constant-predictor baseline, target
spread) and, with `--probe_label_column`, an online linear probe on the target encoder's mean-pooled features,
evaluated on a held-out split (`online_probe`); both log into metrics.jsonl.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from torch import Tensor, nn
from torch.utils.data import DataLoader

from hf_jepa.data.images import ImageConfig, load_image_dataset
from hf_jepa.data.labels import LabelColumnError, LabelInfo, inspect_label_column
from hf_jepa.data.trajectories import as_dataloader, is_lerobot_dataset, lerobot_clips
from hf_jepa.data.transforms import TrainTransform
from hf_jepa.data.video import VideoClipConfig, dataloader, load_video_dataset
from hf_jepa.masks import (
    MultiBlockMaskConfig2D,
    MultiBlockMaskConfig3D,
    MultiBlockMaskGenerator2D,
    MultiBlockMaskGenerator3D,
)
from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2_1 import VideoJepa21Config
from hf_jepa.modeling.layers import init_jepa_weights
from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaForPreTraining
from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForPreTraining
from hf_jepa.modeling.modeling_easy_vjepa2_1 import VideoJepa21ForPreTraining
from hf_jepa.processing import IMAGE_EVAL_CROP_FRACTION, VIDEO_EVAL_CROP_FRACTION
from hf_jepa.training import (
    DEFAULT_NO_WEIGHT_DECAY_NAMES,
    HyperParamScheduler,
    build_optimizer,
    build_schedules,
    pretraining_loss,
)
from hf_jepa.training.checkpoints import atomic_folder, fault_point, load_phase_checkpoint
from hf_jepa.training.loop import LoopResult
from hf_jepa.training.monitors import CollapseMonitor, Monitor
from hf_jepa.training.objectives import PREDICTION_LOSSES, DenseHierarchicalLoss
from hf_jepa.training.online_probe import OnlineProbe
from hf_jepa.training.rank_logging import get_logger
from hf_jepa.training.runner import RunArguments, full_state_dict, parse_config_overrides
from hf_jepa.training.step import ComputeLoss

logger = get_logger(__name__)  # main process only under accelerate launch

DEFAULT_DATASETS = {"ijepa": "builtin:textured_digits", "vjepa2": "builtin:textured_moving_digits",
                    "vjepa2_1": "builtin:textured_moving_digits"}
VIDEO_FAMILIES = ("vjepa2", "vjepa2_1")
# The objective when --objective is not given: SIGReg for the CPU-sized presets, which train on small data for a few
# thousand steps (Meta's EMA objective collapses there: its targets become a per-position constant, see the
# collapse monitors); Meta's objective for Meta's own model sizes.
SMALL_DATA_PRESETS = ("tiny", "small")
# Meta's EMA target momentum (start, end) per family: I-JEPA's configs ramp 0.996 -> 1 over the run, V-JEPA 2's
# (configs/train/*/pretrain-*.yaml, `ema: [0.99925, 0.99925]`) keep it constant.
DEFAULT_EMA = {"ijepa": (0.996, 1.0), "vjepa2": (0.99925, 0.99925), "vjepa2_1": (0.99925, 0.99925)}
# Meta's V-JEPA 2 clip sampling: 16 frames at 4 fps (configs/train/*/pretrain-256px-16f.yaml, `fps: 4`).
META_FPS = 4.0


@dataclass
class PretrainArguments(RunArguments):
    """Flags of `scripts/pretrain.py` (also readable from a YAML / JSON file)."""

    model_type: Literal["ijepa", "vjepa2", "vjepa2_1"] = field(default="vjepa2", metadata={"help": "model family"})
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
    fps: float | None = field(default=None, metadata={
        "help": "sample video clips at this frame rate (Meta: 4, frame step ceil(video fps) // fps); default 4 for "
                "Meta's sizes, --frame_step for the tiny and small presets; 0: use --frame_step. A video slower "
                "than this is an error before training (the first video) and a skipped sample after"})
    frame_step: int = field(default=1, metadata={"help": "every frame_step-th frame, when --fps is 0 / unset"})
    init_from_checkpoint: str | None = field(default=None, metadata={
        "help": "start a second phase (Meta's cool-down) from a run's output_dir (its newest checkpoint) or a "
                "checkpoint folder: model weights AND optimizer state; schedules and step start at 0"})
    meta_init: bool = field(default=False, metadata={
        "help": "I-JEPA: Meta's init_model, which re-initialises every Linear / LayerNorm after the constructor's "
                "1/sqrt(2 * layer) rescale (so Meta's I-JEPA runs have none); default: keep the rescale"})
    meta_compatible_masks: bool = field(default=False, metadata={
        "help": "I-JEPA: Meta's mask collator with its quirks (hf_jepa.masks); default: our fixed sampler"})
    weight_decay_mask_tokens: bool = field(default=False, metadata={
        "help": "decay the predictor's mask tokens like Meta (its split exempts only biases and 1-D tensors); "
                "default: exempt them"})
    ema_start: float | None = field(default=None, metadata={
        "help": "EMA target momentum at step 0 (default: Meta's, I-JEPA 0.996, V-JEPA 2 0.99925)"})
    ema_end: float | None = field(default=None, metadata={
        "help": "EMA target momentum at max_steps, linear in between (default: Meta's, I-JEPA 1.0, V-JEPA 2 0.99925)"})
    objective: Literal["meta", "sigreg"] | None = field(default=None, metadata={
        "help": "meta (EMA target, Meta's losses) or sigreg (LeJEPA's SIGReg, no EMA); default sigreg for the tiny "
                "and small presets, meta for Meta's sizes"})
    sigreg_weight: float = 0.05
    num_workers: int = 0
    gradient_checkpointing: bool = False
    probe_label_column: str | None = field(default=None, metadata={
        "help": "train an online linear probe on this label column beside pretraining (mean-pooled target-encoder "
                "features, detached); logs online_probe_loss and online_probe_top1 (on --probe_split)"})
    probe_split: str = field(default="test", metadata={
        "help": "held-out split of the same dataset the online probe's accuracy is measured on"})
    probe_eval_samples: int = field(default=32, metadata={
        "help": "held-out samples read once (kept in float16) and encoded at every log step; each costs about half "
                "a training sample's step, so the probe adds ~0.5 x this / (log_every x batch) to the run time"})
    probe_lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate of the online probe"})
    image_dataset_name: str | None = field(default=None, metadata={
        "help": "vjepa2_1: also train on the images of this dataset (its --image_column), as images (T = 1, the "
                "image patch embedding); one batch in --image_batch_every is an image batch"})
    image_batch_every: int = field(default=2, metadata={
        "help": "vjepa2_1 with --image_dataset_name: every n-th batch is an image batch (2: half, as Meta's "
                "img_rank_ratio 0.5 puts half the ranks on images)"})
    context_loss_weight: float = field(default=0.5, metadata={
        "help": "vjepa2_1: weight of the dense context loss after its ramp (Meta: 0.5)"})
    context_loss_ramp: str = field(default="15000,30000", metadata={
        "help": "vjepa2_1: 'start,end' optimizer steps of the context-loss weight's linear ramp (Meta: 15000,30000)"})
    context_distance_weighting: bool = field(default=True, metadata={
        "help": "vjepa2_1: weight context tokens by 1/sqrt(distance to the nearest target token) (Meta: on)"})

    def default_lr_schedule(self) -> str:
        """I-JEPA: warmup + cosine (Meta's); V-JEPA 2: warmup, constant, linear decay over the last tenth."""
        return "warmup_cosine" if self.model_type == "ijepa" else "warmup_stable_decay"

    def context_ramp(self) -> tuple[int, int]:
        """`--context_loss_ramp` as (start, end) steps."""
        parts = self.context_loss_ramp.split(",")
        try:
            start, end = (int(p) for p in parts)
        except ValueError:
            start = end = None
        if start is None or len(parts) != 2 or not 0 <= start < end:
            raise ValueError(f"context_loss_ramp={self.context_loss_ramp!r}: expected 'start,end' steps with "
                             "0 <= start < end")
        return start, end

    def _check_vjepa2_1(self) -> None:
        self.context_ramp()
        if not self.context_loss_weight >= 0:
            raise ValueError(f"context_loss_weight={self.context_loss_weight}: expected >= 0")
        if self.image_batch_every < 1:
            raise ValueError(f"image_batch_every={self.image_batch_every}: expected >= 1")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frame_step < 1:
            raise ValueError(f"frame_step={self.frame_step}: expected >= 1")
        if self.model_type not in DEFAULT_DATASETS:
            raise ValueError(f"model_type={self.model_type!r}: expected one of {sorted(DEFAULT_DATASETS)}")
        if self.model_type == "vjepa2_1":
            self._check_vjepa2_1()
        elif self.image_dataset_name is not None:
            raise ValueError(f"image_dataset_name={self.image_dataset_name!r}: expected model_type='vjepa2_1' (the "
                             "family that trains on images and videos together)")
        if self.fps is None:
            self.fps = 0.0 if self.preset in SMALL_DATA_PRESETS or self.model_type == "ijepa" else META_FPS
        if self.fps < 0:
            raise ValueError(f"fps={self.fps}: expected > 0, or 0 to sample every --frame_step-th frame")
        if self.meta_init and self.model_type != "ijepa":
            raise ValueError("meta_init=True: expected model_type='ijepa' (Meta's V-JEPA 2 keeps the depth rescale, "
                             "as ours)")
        if self.meta_compatible_masks and self.model_type != "ijepa":
            raise ValueError("meta_compatible_masks=True: expected model_type='ijepa' (the I-JEPA collator's quirks)")
        if self.objective is None:
            small = self.preset in SMALL_DATA_PRESETS and self.model_type != "vjepa2_1"
            self.objective = "sigreg" if small else "meta"
        if self.model_type == "vjepa2_1" and self.objective != "meta":
            raise ValueError(f"objective={self.objective!r}: expected 'meta' for model_type='vjepa2_1' (its dense "
                             "hierarchical objective with an EMA target)")
        if self.objective not in ("meta", "sigreg"):
            raise ValueError(f"objective={self.objective!r}: expected 'meta' or 'sigreg'")
        parse_config_overrides(self.config_overrides)
        self.dataset_name = self.dataset_name or DEFAULT_DATASETS[self.model_type]
        if self.probe_label_column is not None:
            if self.probe_eval_samples < 1:
                raise ValueError(f"probe_eval_samples={self.probe_eval_samples}: expected >= 1")
            if not self.probe_lr > 0:
                raise ValueError(f"probe_lr={self.probe_lr}: expected > 0")
            media = self.image_column if self.model_type == "ijepa" else self.video_column
            if self.probe_label_column in ("", media):
                raise ValueError(f"probe_label_column={self.probe_label_column!r}: expected a label column, not "
                                 f"the {'image' if self.model_type == 'ijepa' else 'video'} column")
        if self.objective == "sigreg":
            given = {name: getattr(self, name) for name in ("ema_start", "ema_end") if getattr(self, name) is not None}
            if given:
                raise ValueError(f"{given}: objective='sigreg' (the default for preset={self.preset!r}) trains "
                                 "without an EMA target; drop the EMA flags or use objective='meta'")
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
    monitors: list[Monitor] = field(default_factory=list)


def build_model_config(args: PretrainArguments) -> ImageJepaConfig | VideoJepaConfig:
    """The model config from the preset, the overrides, the clip length and the objective."""
    overrides = parse_config_overrides(args.config_overrides)
    overrides["use_ema_target"] = args.objective == "meta"
    if args.model_type == "ijepa":
        return ImageJepaConfig.from_preset(args.preset, **overrides)
    if args.frames_per_clip is not None:
        overrides.setdefault("num_frames", args.frames_per_clip)
    if args.model_type == "vjepa2_1":
        return VideoJepa21Config.from_preset(args.preset, **overrides)
    return VideoJepaConfig.from_preset(args.preset, **overrides)


def meta_mask_config_2d() -> MultiBlockMaskConfig2D:
    """I-JEPA's mask settings with Meta's collator quirks switched on (the `meta_compatible_masks` field of
    `MultiBlockMaskConfig2D`); a ValueError when this hf_jepa's masks have no such switch."""
    names = {f.name for f in dataclasses.fields(MultiBlockMaskConfig2D)}
    for name in ("meta_compatible_masks", "meta_compatible"):
        if name in names:
            return MultiBlockMaskConfig2D(**{name: True})
    raise ValueError("meta_compatible_masks=True: hf_jepa.masks.MultiBlockMaskConfig2D has no Meta-compatible "
                     "sampler switch in this version; pass --meta_compatible_masks false")


def mask_sampler(config: ImageJepaConfig | VideoJepaConfig, seed: int, process_index: int, *,
                 meta_compatible_masks: bool = False) -> Callable[[dict[str, Any], int], dict[str, Any]]:
    """`prepare_batch(batch, step)` adding `context_mask` / `target_mask` drawn from a (seed, step, rank) generator
    (I-JEPA with `meta_compatible_masks`: Meta's collator quirks, see `meta_mask_config_2d`)."""
    if isinstance(config, ImageJepaConfig):
        generator2d = MultiBlockMaskGenerator2D(config.grid_size,
                                                meta_mask_config_2d() if meta_compatible_masks else None)
    else:
        generator3d = MultiBlockMaskGenerator3D(config.grid, MultiBlockMaskConfig3D.for_grid(config.grid))
        image_grid = (1, *config.grid[1:])  # V-JEPA 2.1 image batches: one frame of tokens
        generator_image = MultiBlockMaskGenerator3D(image_grid, MultiBlockMaskConfig3D.for_grid(image_grid))

    def prepare(batch: dict[str, Any], step: int) -> dict[str, Any]:
        key = next(k for k in ("pixel_values", "pixel_values_videos") if k in batch)
        size = batch[key].shape[0]
        gen = torch.Generator().manual_seed(((seed * 1_000_003 + step) * 1_009 + process_index) % (2**63))
        if isinstance(config, ImageJepaConfig):
            masks = generator2d(size, generator=gen)
            extra = {"context_mask": masks.context[0], "target_mask": masks.targets}  # (B, K), (P, B, M)
        else:
            pairs = (generator_image if key == "pixel_values" else generator3d)(size, generator=gen)
            extra = {"context_mask": [p.context for p in pairs], "target_mask": [p.target for p in pairs]}
        keep = {k: v for k, v in batch.items() if k == key}  # labels are not model inputs
        return {**keep, **extra}

    return prepare


def data_factory(args: PretrainArguments, config: ImageJepaConfig | VideoJepaConfig, *, rank: int,
                 world_size: int) -> Callable[[int], DataLoader]:
    """`factory(epoch)`: a fresh DataLoader over this rank's shards, reshuffled deterministically per epoch."""

    labels = (args.probe_label_column,) if args.probe_label_column else ()  # kept for the online probe
    lerobot_step = args.frame_step
    if args.model_type in VIDEO_FAMILIES and args.fps and is_lerobot_dataset(args.dataset_name):
        import json

        from hf_jepa.data._stream import SampleDecodeError
        from hf_jepa.data.lerobot import resolve_dataset_root
        from hf_jepa.data.video import fps_frame_step

        info = json.loads((resolve_dataset_root(args.dataset_name, allow_patterns=["meta/*"]) / "meta" / "info.json")
                          .read_text())
        try:
            lerobot_step = fps_frame_step(float(info["fps"]), args.fps)
        except SampleDecodeError as err:
            raise ValueError(f"{err} (LeRobot dataset {args.dataset_name!r}, meta/info.json)") from None

    def factory(epoch: int) -> DataLoader:
        if args.model_type in VIDEO_FAMILIES and is_lerobot_dataset(args.dataset_name):
            transform = TrainTransform(size=config.image_size, scale=(0.8, 1.0), ratio=(0.9, 1.1), hflip_prob=0.0,
                                       mean=tuple(config.image_mean), std=tuple(config.image_std))
            clips = lerobot_clips(args.dataset_name, frames_per_clip=config.num_frames, frame_step=lerobot_step,
                                  transform=transform, rank=rank, world_size=world_size, seed=args.seed,
                                  epoch=epoch, camera_key=args.camera_key)
            return as_dataloader(clips, args.per_device_train_batch_size, args.num_workers)
        if args.model_type == "ijepa":
            # no horizontal flip, as Meta's I-JEPA configs (use_horizontal_flip: false)
            image_config = ImageConfig(crop_size=config.image_size, image_column=args.image_column,
                                       mean=tuple(config.image_mean), std=tuple(config.image_std),
                                       label_columns=labels, horizontal_flip=False)
            stream = load_image_dataset(args.dataset_name, args.split, rank=rank, world_size=world_size,
                                        seed=args.seed, image_config=image_config)
        else:
            clip_config = VideoClipConfig(frames_per_clip=config.num_frames, frame_step=args.frame_step,
                                          fps=args.fps or None,
                                          crop_size=config.image_size, video_column=args.video_column,
                                          mean=tuple(config.image_mean), std=tuple(config.image_std),
                                          label_columns=labels)
            stream = load_video_dataset(args.dataset_name, args.split, rank=rank, world_size=world_size,
                                        seed=args.seed, clip_config=clip_config)
        stream.set_epoch(epoch)
        loader = dataloader(stream, args.per_device_train_batch_size, args.num_workers, drop_last=True)
        if args.image_dataset_name is None:
            return loader
        image_config = ImageConfig(crop_size=config.image_size, image_column=args.image_column,
                                   mean=tuple(config.image_mean), std=tuple(config.image_std), horizontal_flip=False)
        images = load_image_dataset(args.image_dataset_name, args.split, rank=rank, world_size=world_size,
                                    seed=args.seed, image_config=image_config)
        images.set_epoch(epoch)
        return InterleavedBatches(loader, dataloader(images, args.per_device_train_batch_size, args.num_workers,
                                                     drop_last=True), every=args.image_batch_every)

    return factory


class InterleavedBatches:
    """Video batches with an image batch in every `every`-th place (V-JEPA 2.1 trains on both in one run); ends
    when either stream does. Deterministic, so a resumed run skipping n batches lands where it left off."""

    def __init__(self, videos: Iterable[dict[str, Any]], images: Iterable[dict[str, Any]], *, every: int) -> None:
        self.videos, self.images, self.every = videos, images, every

    def __iter__(self) -> Iterator[dict[str, Any]]:
        videos, images = iter(self.videos), iter(self.images)
        for i in itertools.count(1):
            try:
                yield next(images) if i % self.every == 0 else next(videos)
            except StopIteration:
                return


def check_video_fps(args: PretrainArguments) -> float | None:
    """With `--fps`, read the first video of the training split and check that it can provide that rate (Meta's
    step ceil(video fps) // fps >= 1); returns its frame rate (None when not checked: images, LeRobot data or no
    fps). Later videos that cannot are skipped and counted like any bad sample.

    Raises:
        ValueError: the first video runs slower than `--fps` or has no frame rate.
    """
    if args.model_type not in VIDEO_FAMILIES or not args.fps or is_lerobot_dataset(args.dataset_name):
        return None
    from torchcodec.decoders import VideoDecoder

    from hf_jepa.data._stream import SampleDecodeError, media_source
    from hf_jepa.data.video import fps_frame_step

    stream = load_video_dataset(args.dataset_name, args.split, shuffle_buffer=0,
                                clip_config=VideoClipConfig(video_column=args.video_column))
    row = next(iter(stream.stream), None)
    if row is None:
        return None
    rate = VideoDecoder(media_source(row[stream.media_column]), seek_mode="approximate").metadata.average_fps
    try:
        fps_frame_step(rate, args.fps)
    except SampleDecodeError as err:
        raise ValueError(f"{err} (the first video of {args.dataset_name!r}, split {args.split!r})") from None
    return rate


def collapse_monitor(args: PretrainArguments) -> CollapseMonitor:
    """The collapse monitors of a run: the objective's loss for the baseline; warnings only in the second half of the
    run (and after the lr warm-up), when the predictor has had time to beat the per-position constant."""
    if args.objective == "sigreg":
        hint = f"try a larger --sigreg_weight (now {args.sigreg_weight}) or a longer run"
    else:
        hint = "try --objective sigreg (Meta's EMA objective collapses at small scale) or a longer run"
    return CollapseMonitor(loss_fn=PREDICTION_LOSSES[args.model_type], hint=hint,
                           warn_after_steps=max(args.warmup_steps, args.max_steps // 2))


def pooled_target_features(model: nn.Module, pixels: Tensor) -> Tensor:
    """(B, D) features the online probe reads: the target encoder (the online encoder without an EMA target) in
    eval mode on `pixels` ((B, C, H, W) or (B, T, C, H, W)), layer-normed as the pretraining targets, mean over tokens.

    The same features as `outputs.target_states.mean(1)` of a training step, without the training-mode layers.
    """
    net = model.target_encoder if model.target_encoder is not None else model.encoder
    training = net.training
    net.eval()
    try:
        hidden = net(pixels).last_hidden_state.float()  # (B, N, D)
    finally:
        net.train(training)
    return F.layer_norm(hidden, (hidden.shape[-1],)).mean(1)  # (B, D)


def read_probe_split(args: PretrainArguments, config: ImageJepaConfig | VideoJepaConfig) -> tuple[Tensor, list[Any]]:
    """The online probe's held-out samples: up to `probe_eval_samples` of `probe_split`, in file order, with the
    eval transform (resize + center crop, as the probing script). Returns (M, ...) float16 inputs and M raw labels."""
    column = args.probe_label_column
    common = dict(crop_size=config.image_size, mean=tuple(config.image_mean), std=tuple(config.image_std),
                  label_columns=(column,), train=False, horizontal_flip=False)
    if args.model_type == "ijepa":
        stream = load_image_dataset(args.dataset_name, args.probe_split, shuffle_buffer=0, image_config=ImageConfig(
            image_column=args.image_column, eval_crop_fraction=IMAGE_EVAL_CROP_FRACTION, **common))
    else:
        stream = load_video_dataset(args.dataset_name, args.probe_split, shuffle_buffer=0, clip_config=VideoClipConfig(
            frames_per_clip=config.num_frames, frame_step=args.frame_step, fps=args.fps or None,
            video_column=args.video_column, eval_crop_fraction=VIDEO_EVAL_CROP_FRACTION, **common))
    pixel_key = "pixel_values" if args.model_type == "ijepa" else "pixel_values_videos"
    chunks: list[Tensor] = []
    values: list[Any] = []
    for batch in dataloader(stream, batch_size=min(64, args.probe_eval_samples)):
        keep = args.probe_eval_samples - len(values)
        labels = batch[column]
        values.extend((labels.tolist() if isinstance(labels, Tensor) else list(labels))[:keep])
        chunks.append(batch[pixel_key][:keep].to(torch.float16))
        if len(values) >= args.probe_eval_samples:
            break
    inputs = torch.cat(chunks) if chunks else torch.empty(0)
    return inputs, values


def _training_class_ids(labels: LabelInfo) -> Callable[[Any], Tensor]:
    """Raw training-batch labels -> (B,) long class ids of `labels`, -1 for a class the probe does not know."""
    if labels.kind == "str":
        index = {name: i for i, name in enumerate(labels.names)}
        return lambda values: torch.tensor([index.get(str(v), -1) for v in values], dtype=torch.long)
    num_classes = labels.num_labels

    def class_ids(values: Any) -> Tensor:
        ids = torch.as_tensor(values, dtype=torch.long)
        return torch.where((ids >= 0) & (ids < num_classes), ids, torch.full_like(ids, -1))

    return class_ids


def online_probe(args: PretrainArguments, config: ImageJepaConfig | VideoJepaConfig, accelerator: Accelerator
                 ) -> OnlineProbe:
    """The online probe of `--probe_label_column`, its held-out set read and checked (before any training step).

    The classes: the column's ClassLabel names, else those of the held-out samples (integers 0..max, or the
    distinct strings); training samples of another class are left out of the probe's updates.

    Raises:
        LabelColumnError: the column is missing from the training or held-out split (the message lists the
            columns), is not a class column, or the held-out samples hold fewer than two classes.
        ValueError: the held-out split is missing or empty, or the run cannot carry the probe (LeRobot data,
            FSDP, a global batch of one sample).
    """
    column, split = args.probe_label_column, args.probe_split
    if args.model_type in VIDEO_FAMILIES and is_lerobot_dataset(args.dataset_name):
        raise ValueError(f"probe_label_column={column!r}: LeRobot trajectory clips carry no label column; "
                         "drop --probe_label_column for LeRobot datasets")
    if accelerator.distributed_type == DistributedType.FSDP:
        raise ValueError(f"probe_label_column={column!r}: the online probe encodes its held-out samples with the "
                         "unwrapped target encoder, which FSDP shards; drop --probe_label_column under FSDP")
    if args.per_device_train_batch_size * accelerator.num_processes < 2:
        raise ValueError(f"per_device_train_batch_size={args.per_device_train_batch_size} on "
                         f"{accelerator.num_processes} process(es): the online probe normalises each batch's "
                         "features, expected a global batch of >= 2")
    labels = inspect_label_column(args.dataset_name, column, args.split)
    try:
        inspect_label_column(args.dataset_name, column, split)
    except LabelColumnError:
        raise
    except ValueError as err:  # datasets: "Bad split: ..."
        raise ValueError(f"probe_split={split!r} is not a split of {args.dataset_name}: {err}") from err
    try:
        inputs, values = read_probe_split(args, config)
    except ValueError as err:  # datasets, on an empty local split: 'Instruction "test" corresponds to no data!'
        raise ValueError(f"probe_split={split!r} of {args.dataset_name} yielded no sample ({err}): expected a "
                         "held-out split with labelled samples for the online probe") from err
    if not values:
        raise ValueError(f"probe_split={split!r} of {args.dataset_name} yielded no sample: expected a held-out split "
                         "with labelled samples for the online probe")
    eval_labels = labels.fit(values, split=split)  # (M,)
    classes = sorted(set(eval_labels.tolist()))
    if labels.num_labels < 2 or len(classes) < 2:
        raise LabelColumnError(
            f"probe_label_column={column!r} holds a single class ({labels.names[classes[0]]!r}) in the {len(values)} "
            f"samples of split {split!r} read for the online probe: expected at least 2 classes")
    logger.info("online probe: %r, %d classes, %d held-out samples of split %r", column, labels.num_labels,
                len(values), split)
    return OnlineProbe(feature_dim=config.hidden_size, num_classes=labels.num_labels, label_key=column,
                       eval_inputs=inputs, eval_labels=eval_labels, encode=pooled_target_features,
                       accelerator=accelerator, class_ids=_training_class_ids(labels), lr=args.probe_lr,
                       eval_batch_size=args.per_device_train_batch_size)


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


def save_pretraining_outputs(args: PretrainArguments, accelerator: Accelerator, model: nn.Module,
                             result: LoopResult) -> tuple[Path, Path]:
    """Write ``output_dir/final`` (the whole pretraining model) and ``output_dir/encoder`` (the encoder alone, with
    processor config and a model card recording the run); returns both folders. A collective: call it on every
    process (FSDP gathers the full weights onto the main process, which writes).

    "The encoder" is the EMA target encoder when the model has one (Meta's objective), else the online encoder
    (SIGReg). Each folder is written atomically: a run killed while saving leaves the previous folder (or none),
    never a half-written one, and ``--resume_from_checkpoint latest`` then finishes the save.
    """
    from hf_jepa.hub import write_model_card
    from hf_jepa.processing import save_processor

    state_dict = full_state_dict(accelerator, model)  # full weights on the main process
    out = Path(args.output_dir)
    if accelerator.is_main_process:
        prefix = "target_encoder." if model.target_encoder is not None else "encoder."
        encoder = model.target_encoder if model.target_encoder is not None else model.encoder
        encoder_state = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
        # save_pretrained empties the dict it is given. Without an EMA target (SIGReg) it also writes the online
        # encoder as target_encoder.*, which AutoModel loads.
        with atomic_folder(out / "final") as folder:
            model.save_pretrained(folder, state_dict=dict(state_dict))
            fault_point("in_final")
        training = {"dataset": args.dataset_name, "preset": args.preset, "objective": args.objective,
                    "steps": result.global_step,
                    "batch_size": args.per_device_train_batch_size * accelerator.num_processes
                    * args.gradient_accumulation_steps,
                    "final_loss": result.last_metrics.get("loss"), "skipped_samples": result.skipped_samples}
        if overrides := parse_config_overrides(args.config_overrides):
            training["config_overrides"] = overrides
        with atomic_folder(out / "encoder") as folder:
            encoder.save_pretrained(folder, state_dict=encoder_state)
            save_processor(encoder, folder)
            # also in the card's YAML metadata (hf_jepa.hub.read_card_metadata): the Space says what it shows
            write_model_card(folder, training=training)
        logger.info("step %d, %d skipped samples; saved %s and %s", result.global_step, result.skipped_samples,
                    out / "final", out / "encoder")
    accelerator.wait_for_everyone()
    return out / "final", out / "encoder"
