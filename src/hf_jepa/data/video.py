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
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import datasets
import torch
from torch.utils.data import DataLoader

from hf_jepa.modeling.validation import check_positive, check_positive_float

from ._media import MediaConfig, stream_media
from ._stream import DecodingStream, SampleDecodeError, collate, media_source

__all__ = [
    "VideoClipConfig",
    "collate_clips",
    "dataloader",
    "decode_clip",
    "fps_frame_step",
    "load_video_dataset",
    "sample_clip_indices",
]


@dataclass(frozen=True, kw_only=True)
class VideoClipConfig(MediaConfig):
    """How to cut, augment and normalize one clip per video: the ``MediaConfig`` fields (random crop aspect ratio
    (0.75, 1.35), as V-JEPA 2; the flip applies to the whole clip: turn it off for direction-sensitive labels, e.g.
    ``direction`` of the built-in moving digits), the video column and the clip sampling.

    Attributes:
        frames_per_clip: frames T in a clip.
        frame_step: take every ``frame_step``-th source frame (ignored when ``fps`` is set).
        fps: if set, sample at this rate: step = ceil(source fps) // fps (Meta's V-JEPA 2 loader); a video slower
            than ``fps`` is a bad sample.
        video_column: column holding the video (``Video`` feature, bytes or path).
    """

    media_column_field: ClassVar[str] = "video_column"

    frames_per_clip: int = 8
    frame_step: int = 2
    fps: float | None = None
    random_resized_aspect_ratio: tuple[float, float] = (0.75, 1.35)
    video_column: str = "video"

    def __post_init__(self) -> None:
        check_positive(frames_per_clip=self.frames_per_clip, frame_step=self.frame_step)
        if self.fps is not None:
            check_positive_float(fps=self.fps)
        super().__post_init__()


def fps_frame_step(video_fps: float | None, fps: float) -> int:
    """Frame step that samples a video of `video_fps` at `fps`, as Meta's V-JEPA 2 loader:
    ``ceil(video_fps) // fps`` (30 fps at 4 fps -> every 7th frame, a 16-frame clip spans ~3.5 s).

    Raises:
        SampleDecodeError: the video has no frame rate, or runs slower than `fps` (it cannot provide it).
    """
    if not video_fps:
        raise SampleDecodeError(f"fps={fps}: the video has no frame rate to sample it at")
    step = int(math.ceil(video_fps) // fps)
    if step < 1:
        raise SampleDecodeError(f"fps={fps}: the video runs at {video_fps:g} fps and cannot provide {fps:g} fps; "
                                "expected fps <= the video's rate (or pass --fps 0 and a --frame_step)")
    return step


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
    step = config.frame_step if config.fps is None else fps_frame_step(meta.average_fps, config.fps)
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
    return stream_media(name_or_path, split, config, pixel_key="pixel_values_videos",
                        decode=functools.partial(_decode_for_stream, config=config), streaming=streaming, rank=rank,
                        world_size=world_size, seed=seed, shuffle_buffer=shuffle_buffer, cache_dir=cache_dir)


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
    check_positive(batch_size=batch_size)
    if not (isinstance(num_workers, int) and num_workers >= 0):
        raise ValueError(f"num_workers={num_workers!r}: expected an integer >= 0")
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
