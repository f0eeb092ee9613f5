"""Streamed video clips for V-JEPA 2: ``datasets`` (streaming, sharded) + torchcodec decoding.

>>> ds = load_video_dataset("builtin:moving_digits", "train", rank=0, world_size=1,
...                         clip_config=VideoClipConfig(label_columns=("digit",)))
>>> loader = dataloader(ds, batch_size=8, num_workers=2)
>>> batch = next(iter(loader))  # pixel_values_videos (8, 8, 3, 64, 64), digit (8,), skipped_samples int

Sharding is done here (``split_dataset_by_node`` + per-worker shards): do not also wrap the
DataLoader with ``accelerator.prepare``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import datasets
import torch
from torch.utils.data import DataLoader

from ._stream import DecodingStream, SampleDecodeError, collate, media_source, open_stream
from .transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform, TrainTransform

__all__ = [
    "VideoClipConfig",
    "collate_clips",
    "dataloader",
    "decode_clip",
    "load_video_dataset",
    "sample_clip_indices",
]


def _check_range(owner: str, name: str, value: tuple[float, float], low: float, high: float | None) -> None:
    if len(value) != 2 or not value[0] <= value[1] or value[0] <= low or (high is not None and value[1] > high):
        bound = f"({low}, {high}]" if high is not None else f"> {low}"
        raise ValueError(f"{owner}.{name} must be an ordered pair (lo <= hi) in {bound}, got {value!r}")


@dataclass(frozen=True)
class VideoClipConfig:
    """How to cut, augment and normalize one clip per video.

    Attributes:
        frames_per_clip: frames T in a clip.
        frame_step: take every ``frame_step``-th source frame (ignored when ``fps`` is set).
        fps: if set, sample at this rate: step = round(source fps / fps), at least 1.
        crop_size: output H = W.
        random_resized_scale: area fraction range of the random crop (V-JEPA 2: (0.3, 1.0)).
        random_resized_aspect_ratio: w/h range of the random crop (V-JEPA 2: (0.75, 1.35)).
        horizontal_flip: flip the whole clip with p = 0.5 (turn off for direction-sensitive labels,
            e.g. ``direction`` of the built-in moving digits).
        mean, std: per-channel normalization (ImageNet by default).
        video_column: column holding the video (``Video`` feature, bytes or path).
        label_columns: columns copied to every sample (e.g. ``("digit", "direction")``).
        id_column: column naming a sample in logs (None: the video path, else the stream index).
        train: True = random start + random resized crop + flip; False = centered clip + resize /
            center-crop (``EvalTransform``).
        eval_crop_fraction: eval resizes the short side to ``crop_size / eval_crop_fraction``.
    """

    frames_per_clip: int = 8
    frame_step: int = 2
    fps: float | None = None
    crop_size: int = 64
    random_resized_scale: tuple[float, float] = (0.3, 1.0)
    random_resized_aspect_ratio: tuple[float, float] = (0.75, 1.35)
    horizontal_flip: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    video_column: str = "video"
    label_columns: tuple[str, ...] = ()
    id_column: str | None = None
    train: bool = True
    eval_crop_fraction: float = 0.875

    def __post_init__(self) -> None:
        name = type(self).__name__
        if self.frames_per_clip < 1:
            raise ValueError(f"{name}.frames_per_clip must be >= 1, got {self.frames_per_clip}")
        if self.frame_step < 1:
            raise ValueError(f"{name}.frame_step must be >= 1, got {self.frame_step}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"{name}.fps must be > 0 or None, got {self.fps}")
        if self.crop_size < 1:
            raise ValueError(f"{name}.crop_size must be >= 1, got {self.crop_size}")
        _check_range(name, "random_resized_scale", self.random_resized_scale, 0.0, 1.0)
        _check_range(name, "random_resized_aspect_ratio", self.random_resized_aspect_ratio, 0.0, None)
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"{name}.mean/std must be 3 values with std > 0, got {self.mean!r} / {self.std!r}")
        if not self.video_column:
            raise ValueError(f"{name}.video_column must be a column name, got {self.video_column!r}")
        if isinstance(self.label_columns, str):
            raise ValueError(f"{name}.label_columns must be a tuple of names, got the string {self.label_columns!r}")
        object.__setattr__(self, "label_columns", tuple(self.label_columns))
        if self.video_column in self.label_columns:
            raise ValueError(f"{name}.label_columns must not contain video_column={self.video_column!r}")
        if not 0 < self.eval_crop_fraction <= 1:
            raise ValueError(f"{name}.eval_crop_fraction must be in (0, 1], got {self.eval_crop_fraction}")

    def transform(self) -> TrainTransform | EvalTransform:
        """The clip transform: uint8 ``(T, C, H, W)`` -> float32 ``(T, C, crop_size, crop_size)``."""
        if self.train:
            return TrainTransform(
                size=self.crop_size,
                scale=self.random_resized_scale,
                ratio=self.random_resized_aspect_ratio,
                hflip_prob=0.5 if self.horizontal_flip else 0.0,
                mean=self.mean,
                std=self.std,
            )
        return EvalTransform(size=self.crop_size, crop_fraction=self.eval_crop_fraction, mean=self.mean, std=self.std)


def sample_clip_indices(
    num_frames: int,
    frames_per_clip: int,
    frame_step: int,
    *,
    generator: torch.Generator | None,
) -> list[int]:
    """Frame indices ``start + k * frame_step`` for k < frames_per_clip.

    ``start`` is uniform over the valid range (``generator`` given) or centered (``generator=None``).
    Raises ``SampleDecodeError`` when the video has fewer than ``(T - 1) * step + 1`` frames.
    """
    span = (frames_per_clip - 1) * frame_step + 1
    if num_frames < span:
        raise SampleDecodeError(
            f"too short: {num_frames} frames < {span} needed ({frames_per_clip} frames, step {frame_step})"
        )
    slack = num_frames - span
    if generator is None:
        start = slack // 2
    else:
        start = int(torch.randint(0, slack + 1, (1,), generator=generator))
    return [start + k * frame_step for k in range(frames_per_clip)]


def decode_clip(
    source: Any,
    config: VideoClipConfig,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Decode one clip with torchcodec (``seek_mode="approximate"``) -> uint8 ``(T, C, H, W)``.

    ``source``: a ``{"bytes", "path"}`` dict (``Video(decode=False)``), raw bytes, or a path / URL.
    ``generator=None`` takes the centered clip. Raises on corrupt / too-short input.
    """
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(media_source(source), seek_mode="approximate", dimension_order="NCHW")
    meta = decoder.metadata
    num_frames = meta.num_frames if meta.num_frames is not None else len(decoder)
    step = config.frame_step
    if config.fps is not None:
        if not meta.average_fps:
            raise SampleDecodeError("fps sampling requested but the video has no frame rate")
        step = max(1, round(meta.average_fps / config.fps))
    indices = sample_clip_indices(num_frames, config.frames_per_clip, step, generator=generator)
    frames = decoder.get_frames_at(indices=indices).data  # (T, C, H, W) uint8
    if frames.shape[0] != config.frames_per_clip:
        raise SampleDecodeError(f"decoded {frames.shape[0]} frames, expected {config.frames_per_clip}")
    return frames


def _decode_for_stream(source: Any, generator: torch.Generator, *, config: VideoClipConfig) -> torch.Tensor:
    return decode_clip(source, config, generator if config.train else None)


def load_video_dataset(
    name_or_path: str = "builtin:moving_digits",
    split: str = "train",
    *,
    streaming: bool = True,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
    clip_config: VideoClipConfig | None = None,
    shuffle_buffer: int = 256,
    cache_dir: str | None = None,
) -> DecodingStream:
    """Stream one split of a video dataset as clips, sharded for this rank.

    Args:
        name_or_path: a Hub dataset id, a local folder (parquet shards, or a videofolder with an
            optional metadata.csv), or a built-in name (``"builtin:moving_digits"``).
        split: split name (``"train"``, ``"test"``, ...).
        streaming: stream rows (True) or index the split first and re-shard it (False).
        rank, world_size: this process and the number of processes; each rank gets a disjoint part
            (n_shards / world_size shards when divisible, else 1 row in world_size).
        seed: shuffle seed (must be equal on all ranks) and augmentation seed.
        clip_config: clip sampling / transform settings (default ``VideoClipConfig()``).
        shuffle_buffer: ``datasets`` shuffle buffer size (0 = no shuffling: file order).
        cache_dir: ``datasets`` cache folder (for Hub downloads / folder indexing).

    Returns:
        A torch ``IterableDataset`` yielding ``{"pixel_values_videos": FloatTensor (T, C, H, W),
        **labels, "skipped_samples": int}``; has ``set_epoch(epoch)``. Batch it with
        ``dataloader`` / ``collate_clips``.
    """
    config = clip_config or VideoClipConfig()
    keep = config.label_columns + ((config.id_column,) if config.id_column else ())
    stream = open_stream(
        name_or_path,
        split,
        media_column=config.video_column,
        keep_columns=keep,
        streaming=streaming,
        rank=rank,
        world_size=world_size,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        cache_dir=cache_dir,
    )
    return DecodingStream(
        stream,
        pixel_key="pixel_values_videos",
        media_column=config.video_column,
        label_columns=config.label_columns,
        id_column=config.id_column,
        decode=functools.partial(_decode_for_stream, config=config),
        transform=config.transform(),
        seed=seed,
        rank=rank,
    )


def collate_clips(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch clip samples.

    Returns ``{"pixel_values_videos": FloatTensor (B, T, C, H, W), <label>: LongTensor / FloatTensor (B,)
    or list, "skipped_samples": int}`` (skipped samples summed over the batch).
    """
    return collate(samples, "pixel_values_videos")


def dataloader(
    dataset: DecodingStream | datasets.IterableDataset,
    batch_size: int,
    num_workers: int = 0,
    *,
    drop_last: bool = False,
    pin_memory: bool = False,
    persistent_workers: bool = False,
) -> DataLoader:
    """A DataLoader over a stream from ``load_video_dataset`` / ``load_image_dataset``.

    Picks ``collate_clips`` or ``collate_images`` from the stream. Use ``num_workers <=
    dataset.num_shards`` (extra workers get no shards). With ``drop_last=True`` the
    ``skipped_samples`` of the dropped tail are not reported. Do not pass the result through
    ``accelerator.prepare``: the stream is already sharded per rank.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    pixel_key = getattr(dataset, "pixel_key", "pixel_values_videos")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=functools.partial(collate, pixel_key=pixel_key),
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and num_workers > 0,
    )
