"""The pretraining data: a fresh, deterministically reshuffled DataLoader per epoch over this rank's shards
(videos, images, LeRobot clips, or V-JEPA 2.1's interleaved videos and images), and the fps check before training."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from torch.utils.data import DataLoader

from hf_jepa.data.images import ImageConfig, load_image_dataset
from hf_jepa.data.trajectories import as_dataloader, is_lerobot_dataset, lerobot_clips
from hf_jepa.data.transforms import TrainTransform
from hf_jepa.data.video import VideoClipConfig, dataloader, load_video_dataset
from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.pretraining.arguments import VIDEO_FAMILIES, PretrainArguments


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
