"""Data benchmark: decoded clips/s of the streamed video pipeline."""

from __future__ import annotations

import time

__all__ = ["data_benchmark"]


def data_benchmark(source: str, *, num_workers: int, batch_size: int, num_batches: int, frames: int = 8,
                   crop_size: int = 64) -> dict[str, float]:
    """Decoded clips/s of the streamed video pipeline (`load_video_dataset` + `dataloader`, train transform).

    The first batch (worker start-up, stream opening) is not timed; then `num_batches` batches are.
    """
    from hf_jepa.data import VideoClipConfig, dataloader, load_video_dataset

    ds = load_video_dataset(source, "train", clip_config=VideoClipConfig(frames_per_clip=frames, crop_size=crop_size),
                            shuffle_buffer=0)
    loader = iter(dataloader(ds, batch_size=batch_size, num_workers=num_workers))
    next(loader)
    clips, start = 0, time.perf_counter()
    for _ in range(num_batches):
        batch = next(loader, None)
        if batch is None:
            break
        clips += batch["pixel_values_videos"].shape[0]
    seconds = time.perf_counter() - start
    del loader
    return {"num_workers": num_workers, "clips": clips, "seconds": seconds, "clips_per_second": clips / seconds}
