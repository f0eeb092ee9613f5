"""hf_jepa.data: streamed video / image pipelines (datasets + torchcodec) and built-in datasets.

Video (V-JEPA 2)::

    ds = load_video_dataset("builtin:moving_digits", "train", rank=rank, world_size=world_size,
                            clip_config=VideoClipConfig(frames_per_clip=8, label_columns=("digit",)))
    loader = dataloader(ds, batch_size=32, num_workers=4)  # NOT accelerator.prepare(loader)
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        for batch in loader: ...  # pixel_values_videos (B, T, C, H, W), digit (B,), skipped_samples int

Images (I-JEPA): ``load_image_dataset`` / ``collate_images`` with ``pixel_values (B, C, H, W)``.
Trajectories in the LeRobot v3 layout live in ``hf_jepa.data.lerobot``.
"""

from .builtin import BUILTIN_DATASETS, builtin_dataset_path, generate_builtin_dataset, save_frame_strip
from .images import ImageConfig, collate_images, decode_image, load_image_dataset
from .transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform, TrainTransform, frame_transform, normalize
from .video import VideoClipConfig, collate_clips, dataloader, decode_clip, load_video_dataset, sample_clip_indices

__all__ = [
    "BUILTIN_DATASETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "EvalTransform",
    "ImageConfig",
    "TrainTransform",
    "VideoClipConfig",
    "builtin_dataset_path",
    "collate_clips",
    "collate_images",
    "dataloader",
    "decode_clip",
    "decode_image",
    "frame_transform",
    "generate_builtin_dataset",
    "load_image_dataset",
    "load_video_dataset",
    "normalize",
    "sample_clip_indices",
    "save_frame_strip",
]
