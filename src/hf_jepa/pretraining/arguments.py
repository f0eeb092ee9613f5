"""`PretrainArguments` (the flags of `scripts/pretrain.py`, validated at construction), the per-family defaults,
and the model config they build."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2_1 import VideoJepa21Config
from hf_jepa.training.runner import RunArguments, parse_config_overrides

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
