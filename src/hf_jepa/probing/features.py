"""Frozen features of a data set split: extracted once with the eval transform, optionally cached to disk."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from hf_jepa.data._stream import DecodingStream
from hf_jepa.data.transforms import EvalTransform
from hf_jepa.probing.encoder import FrozenEncoder
from hf_jepa.processing import IMAGE_EVAL_CROP_FRACTION, VIDEO_EVAL_CROP_FRACTION, eval_transform

__all__ = ["FeatureSplit", "extract_split", "feature_stream", "feature_transform"]

logger = logging.getLogger(__name__)

#: Part of the feature cache key: bumped when `EvalTransform`'s arithmetic changes, so older cached features are
#: recomputed (2: the short side and crop offsets floored, as transformers' processors).
TRANSFORM_VERSION = 2


@dataclass
class FeatureSplit:
    """Frozen features of one split.

    Attributes:
        features: (M, N, D) float tensor (CPU).
        raw_labels: the M label values as read from the dataset (ints or strings).
        skipped_samples: samples the data pipeline could not decode (skipped, counted).
        seconds: extraction time (0 when read from the cache).
    """

    features: Tensor
    raw_labels: list[Any]
    skipped_samples: int = 0
    seconds: float = 0.0

    def __len__(self) -> int:
        return int(self.features.shape[0])


def feature_transform(encoder: FrozenEncoder) -> EvalTransform:
    """The one evaluation transform features are extracted with: the model's `eval_transform`, which the processor
    saved beside its classifier computes too; for 'pixels', the same geometry at the baseline's size."""
    if encoder.model is not None:
        return eval_transform(encoder.model)
    crop = VIDEO_EVAL_CROP_FRACTION if encoder.modality == "video" else IMAGE_EVAL_CROP_FRACTION
    return EvalTransform(encoder.image_size, crop_fraction=crop, mean=tuple(encoder.mean), std=tuple(encoder.std))


def feature_stream(encoder: FrozenEncoder, dataset: str, split: str, label_column: str, *,
                   frame_step: int) -> DecodingStream:
    """The split's decoded samples in order (no shuffle, no flip), transformed by `feature_transform(encoder)`: video
    the centred clip of `num_frames` frames `frame_step` apart."""
    from hf_jepa.data import ImageConfig, VideoClipConfig, load_image_dataset, load_video_dataset

    transform = feature_transform(encoder)
    common = dict(crop_size=transform.size, mean=transform.mean, std=transform.std, label_columns=(label_column,),
                  train=False, horizontal_flip=False, eval_crop_fraction=transform.crop_fraction)
    if encoder.modality == "video":
        clip = VideoClipConfig(frames_per_clip=encoder.num_frames, frame_step=frame_step, **common)
        return load_video_dataset(dataset, split, clip_config=clip, shuffle_buffer=0)
    return load_image_dataset(dataset, split, shuffle_buffer=0, image_config=ImageConfig(**common))


def _loader(encoder: FrozenEncoder, dataset: str, split: str, label_column: str, *, batch_size: int,
            frame_step: int, num_workers: int) -> Iterable[dict[str, Any]]:
    from hf_jepa.data import dataloader

    stream = feature_stream(encoder, dataset, split, label_column, frame_step=frame_step)
    return dataloader(stream, batch_size=batch_size, num_workers=min(num_workers, stream.num_shards))


def _cache_key(encoder: FrozenEncoder, dataset: str, split: str, label_column: str, settings: dict[str, Any]) -> str:
    weights = list(Path(encoder.name).glob("*.safetensors")) if Path(encoder.name).is_dir() else []
    stamp = sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in weights)
    payload = json.dumps({"model": os.path.abspath(encoder.name) if weights else encoder.name, "weights": stamp,
                          "dataset": dataset, "split": split, "label": label_column, "pixel_size": encoder.pixel_size,
                          **settings}, sort_keys=True, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


def _read_cache(folder: Path) -> FeatureSplit | None:
    from safetensors.torch import load_file

    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        return None
    meta = json.loads(meta_file.read_text())
    shards = [load_file(folder / name)["features"] for name in meta["shards"]]
    features = torch.cat(shards)  # (M, N, D)
    logger.info("read %d cached feature rows from %s", features.shape[0], folder)
    return FeatureSplit(features, meta["labels"], meta["skipped_samples"], 0.0)


def _write_cache(folder: Path, data: FeatureSplit, shard_rows: int) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    count = max(1, math.ceil(len(data) / shard_rows))
    for i in range(count):
        name = f"features-{i:05d}-of-{count:05d}.safetensors"
        save_file({"features": data.features[i * shard_rows:(i + 1) * shard_rows].contiguous()}, folder / name)
        names.append(name)
    meta = {"shards": names, "labels": data.raw_labels, "skipped_samples": data.skipped_samples,
            "shape": list(data.features.shape)}
    tmp = folder / "meta.json.tmp"
    tmp.write_text(json.dumps(meta))
    tmp.replace(folder / "meta.json")  # written last: a partial cache is never read
    logger.info("cached %d feature rows of shape %s in %s", len(data), tuple(data.features.shape[1:]), folder)


def extract_split(
    encoder: FrozenEncoder,
    dataset: str,
    split: str,
    *,
    label_column: str,
    batch_size: int = 32,
    frame_step: int = 2,
    max_samples: int | None = None,
    num_workers: int = 0,
    cache_dir: str | Path | None = None,
    feature_dtype: torch.dtype = torch.float32,
) -> FeatureSplit:
    """Frozen features (M, N, D) and raw labels of one split, in file order, with the eval transform.

    Args:
        encoder: from `load_frozen_encoder`.
        dataset: Hub id, local folder or built-in name (`builtin:moving_digits`, `builtin:moving_digit_frames`).
        split: split name.
        label_column: column copied as the label.
        batch_size: encoder batch size.
        frame_step: video frame step (frames per clip = the encoder's `num_frames`).
        max_samples: stop after this many samples (None: the whole split).
        num_workers: DataLoader workers for decoding.
        cache_dir: if set, features are stored there once (safetensors shards + meta.json, keyed by encoder,
            dataset, split and settings) and read back on the next call.
        feature_dtype: dtype the features are kept in (float16 halves memory / disk for large token sets).
    """
    settings = {"frame_step": frame_step, "max_samples": max_samples, "dtype": str(feature_dtype),
                "image_size": encoder.image_size, "num_frames": encoder.num_frames,
                "transform": repr(feature_transform(encoder)), "transform_version": TRANSFORM_VERSION}
    folder = None
    if cache_dir is not None:
        folder = Path(cache_dir) / _cache_key(encoder, dataset, split, label_column, settings) / split
        cached = _read_cache(folder)
        if cached is not None:
            return cached
    start = time.perf_counter()
    pixel_key = "pixel_values_videos" if encoder.modality == "video" else "pixel_values"
    chunks: list[Tensor] = []
    labels: list[Any] = []
    skipped = 0
    loader = _loader(encoder, dataset, split, label_column, batch_size=batch_size, frame_step=frame_step,
                     num_workers=num_workers)
    with tqdm(total=max_samples, desc=f"features {split}", unit="sample", dynamic_ncols=True) as bar:
        for batch in loader:
            skipped += int(batch.get("skipped_samples", 0))
            pixels = batch[pixel_key]
            values = batch[label_column]
            values = values.tolist() if isinstance(values, Tensor) else list(values)
            if max_samples is not None:
                keep = max_samples - len(labels)
                pixels, values = pixels[:keep], values[:keep]
            chunks.append(encoder.encode(pixels).to("cpu", feature_dtype))  # (b, N, D)
            labels.extend(values)
            bar.update(len(values))
            if max_samples is not None and len(labels) >= max_samples:
                break
    if not chunks:
        raise ValueError(f"{dataset} split {split!r} yielded no sample")
    data = FeatureSplit(torch.cat(chunks), labels, skipped, time.perf_counter() - start)  # (M, N, D)
    logger.info("extracted %s features of %d %s samples (%d skipped) in %.1f s", tuple(data.features.shape[1:]),
                len(data), split, skipped, data.seconds)
    if folder is not None:
        _write_cache(folder, data, shard_rows=max(1, (1 << 30) // max(1, data.features[0].nbytes)))
    return data
