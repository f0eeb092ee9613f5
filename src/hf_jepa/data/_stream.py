"""Shared streaming machinery for the video and image pipelines.

Pipeline (per process):

    datasets.IterableDataset of *undecoded* rows (media column cast to ``decode=False``)
      -> .select_columns(media, labels, id)     read only what is needed
      -> .shuffle(seed, buffer)                 same seed on every rank: shard order agrees
      -> split_dataset_by_node(rank, world)     each rank gets n_shards / world_size shards
      -> DecodingStream (torch IterableDataset) decode + transform here, so a rank / worker
                                                only ever decodes its own share

Inside a DataLoader worker, iterating the wrapped ``datasets.IterableDataset`` makes ``datasets``
hand that worker its own shards (``n_shards >= num_workers`` for every worker to get data).

Sharding happens here, once. Do NOT also pass the DataLoader through ``accelerator.prepare``
(it would shard a second time and drop data); move batches to the device yourself.

Skipped samples: a corrupt / undecodable / too-short sample is logged (``logging.warning`` with its
id) and counted. Each yielded sample carries ``skipped_samples``: the number of samples that were
skipped in that worker since the previously yielded sample (the last sample of a worker also
absorbs trailing skips). Summing the field over every yielded sample therefore gives the exact
total, whatever the number of workers -- ``collate`` sums it per batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import datasets
import torch
from datasets.distributed import split_dataset_by_node

from hf_jepa.modeling.validation import check_positive

logger = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
# Folder-style builders (videofolder / imagefolder) stream as ONE shard; above this many rows we
# re-index them with ``to_iterable_dataset(num_shards=...)`` instead.
DEFAULT_NUM_SHARDS = 64
# A run of this many consecutive failures means something systematic (wrong column, no FFmpeg):
# raise instead of silently skipping a whole dataset.
MAX_CONSECUTIVE_SKIPS = 512


class SampleDecodeError(RuntimeError):
    """A sample that cannot be used (corrupt, undecodable, too short): it is skipped and counted."""


def resolve_source(name_or_path: str) -> str:
    """Map ``"builtin:<name>"`` (or a bare built-in name that is not a local path) to its folder."""
    from .builtin import BUILTIN_DATASETS, builtin_dataset_path

    if name_or_path.startswith(BUILTIN_PREFIX):
        return str(builtin_dataset_path(name_or_path[len(BUILTIN_PREFIX) :]))
    if name_or_path in BUILTIN_DATASETS and not Path(name_or_path).exists():
        return str(builtin_dataset_path(name_or_path))
    return name_or_path


def _undecoded(ds: datasets.Dataset | datasets.IterableDataset, column: str):
    """Cast a ``Video`` / ``Image`` column to ``decode=False`` so rows carry ``{"bytes", "path"}``."""
    features = ds.features
    if features is None or column not in features:
        return ds
    feature = features[column]
    if isinstance(feature, (datasets.Video, datasets.Image)) and feature.decode:
        ds = ds.cast_column(column, type(feature)(decode=False))
    return ds


def _balanced_num_shards(num_rows: int, world_size: int) -> int:
    """Shards for ``to_iterable_dataset``: <= rows, <= DEFAULT_NUM_SHARDS, multiple of world_size if possible."""
    n = max(1, min(num_rows, DEFAULT_NUM_SHARDS))
    if n >= world_size:
        n -= n % world_size
    return n


def open_stream(
    name_or_path: str,
    split: str,
    *,
    media_column: str,
    keep_columns: tuple[str, ...],
    streaming: bool,
    rank: int,
    world_size: int,
    seed: int,
    shuffle_buffer: int,
    cache_dir: str | None,
) -> datasets.IterableDataset:
    """Open ``split`` of a Hub id / local folder / built-in name as a sharded stream of undecoded rows."""
    check_positive(world_size=world_size)
    if not (isinstance(rank, int) and 0 <= rank < world_size):
        raise ValueError(f"rank={rank!r}: expected an integer in [0, world_size={world_size})")
    if not (isinstance(shuffle_buffer, int) and shuffle_buffer >= 0):
        raise ValueError(f"shuffle_buffer={shuffle_buffer!r}: expected an integer >= 0")
    source = resolve_source(name_or_path)
    ds: datasets.IterableDataset
    if streaming:
        ds = datasets.load_dataset(source, split=split, streaming=True, cache_dir=cache_dir)
        if ds.num_shards == 1 and Path(source).is_dir():
            # local videofolder / imagefolder / single file: index it (paths only, nothing decoded)
            # and re-shard so ranks and workers each get their own part.
            logger.info("%s streams as a single shard; re-indexing it as a sharded iterable dataset", source)
            streaming = False
    if not streaming:
        table = datasets.load_dataset(source, split=split, cache_dir=cache_dir)
        table = _undecoded(table, media_column)
        ds = table.to_iterable_dataset(num_shards=_balanced_num_shards(len(table), world_size))
    ds = _undecoded(ds, media_column)
    if ds.features is not None:
        missing = [c for c in (media_column, *keep_columns) if c not in ds.features]
        if missing:
            raise KeyError(f"{source} split {split!r} has no column(s) {missing}; columns: {list(ds.features)}")
        ds = ds.select_columns(list(dict.fromkeys((media_column, *keep_columns))))
    if ds.num_shards % world_size != 0:
        logger.warning(
            "%s: %d shards is not a multiple of world_size=%d: every rank reads all rows and keeps 1 in %d "
            "(correct, but each rank downloads the whole split)",
            source,
            ds.num_shards,
            world_size,
            world_size,
        )
    if shuffle_buffer > 0:
        ds = ds.shuffle(seed=seed, buffer_size=shuffle_buffer)  # same seed on all ranks
    if world_size > 1:
        ds = split_dataset_by_node(ds, rank=rank, world_size=world_size)
    return ds


def media_source(value: Any) -> str | bytes:
    """A media cell (``{"bytes", "path"}`` dict, raw bytes, or a path) -> bytes or a local path."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        value = value.get("path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str) and value:
        if os.path.exists(value):
            return value
        from datasets.utils.file_utils import xopen  # hf://, https:// (with the user's token)

        with xopen(value, "rb") as f:
            return f.read()
    raise SampleDecodeError(f"empty or unsupported media cell of type {type(value).__name__}")


def sample_id(row: dict[str, Any], media_column: str, id_column: str | None, index: int) -> str:
    """A human-readable id for logs: the id column, else the media path, else the stream index."""
    if id_column is not None and id_column in row:
        return str(row[id_column])
    cell = row.get(media_column)
    if isinstance(cell, dict) and cell.get("path"):
        return str(cell["path"])
    if isinstance(cell, str):
        return cell
    return f"#{index}"


class DecodingStream(torch.utils.data.IterableDataset):
    """A torch ``IterableDataset`` that decodes + transforms rows of a sharded ``datasets`` stream.

    Yields ``{pixel_key: FloatTensor, **labels, "skipped_samples": int}``. See the module docstring
    for the ``skipped_samples`` contract. ``set_epoch(epoch)`` reshuffles (shards + buffer) and
    reseeds the augmentations.
    """

    def __init__(
        self,
        stream: datasets.IterableDataset,
        *,
        pixel_key: str,
        media_column: str,
        label_columns: tuple[str, ...],
        id_column: str | None,
        decode: Callable[[Any, torch.Generator], torch.Tensor],
        transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
        seed: int,
        rank: int,
    ) -> None:
        super().__init__()
        self.stream = stream
        self.pixel_key = pixel_key
        self.media_column = media_column
        self.label_columns = label_columns
        self.id_column = id_column
        self.decode = decode
        self.transform = transform
        self.seed = seed
        self.rank = rank
        self.epoch = 0

    @property
    def num_shards(self) -> int:
        """Shards of this rank's stream; use ``num_workers <= num_shards``."""
        return self.stream.num_shards

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (call before iterating; the DataLoader re-pickles on each ``iter``)."""
        self.epoch = epoch
        self.stream.set_epoch(epoch)

    def _generator(self) -> torch.Generator:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        mixed = (self.seed * 1_000_003 + self.epoch * 10_007 + self.rank * 101 + worker) % (2**63 - 1)
        return torch.Generator().manual_seed(mixed)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if torch.utils.data.get_worker_info() is not None:  # DataLoader workers already run 1 torch thread
            yield from self._iter_samples()
            return
        # In the main process, per-sample ops are tiny: intra-op threads only add sync overhead
        # (2x+ slower on small CPUs). Drop to 1 thread while producing a sample, restore before yielding.
        threads = torch.get_num_threads()
        samples = self._iter_samples()
        while True:
            torch.set_num_threads(1)
            try:
                sample = next(samples, None)
            finally:
                torch.set_num_threads(threads)
            if sample is None:
                return
            yield sample

    def _iter_samples(self) -> Iterator[dict[str, Any]]:
        generator = self._generator()
        held: dict[str, Any] | None = None
        skipped = 0  # skips since `held` was decoded (or since the start if nothing is held yet)
        consecutive = 0
        for index, row in enumerate(self.stream):
            try:
                raw = self.decode(row[self.media_column], generator)
            except Exception as err:  # any decoder failure is a bad sample
                skipped += 1
                consecutive += 1
                logger.warning(
                    "skipping sample %s (rank %d): %s: %s",
                    sample_id(row, self.media_column, self.id_column, index),
                    self.rank,
                    type(err).__name__,
                    str(err).splitlines()[0][:300] if str(err) else "",
                )
                if consecutive >= MAX_CONSECUTIVE_SKIPS:
                    raise RuntimeError(
                        f"{consecutive} consecutive samples failed to decode (last: {err!r}); "
                        f"check the column {self.media_column!r} and that FFmpeg is installed"
                    ) from err
                continue
            consecutive = 0
            sample = {self.pixel_key: self.transform(raw, generator)}
            sample.update({c: row[c] for c in self.label_columns})
            if held is not None:
                held["skipped_samples"] = skipped
                skipped = 0
                yield held
            held = sample
        if held is not None:
            held["skipped_samples"] = skipped
            yield held
        elif skipped:
            logger.warning("rank %d: all %d samples of this worker's shards were skipped", self.rank, skipped)


def collate(samples: list[dict[str, Any]], pixel_key: str) -> dict[str, Any]:
    """Stack ``pixel_key`` tensors ``(...)`` -> ``(B, ...)``; numeric labels -> tensors ``(B,)``, others lists;
    ``skipped_samples`` -> int (sum over the batch)."""
    if not samples:
        raise ValueError("collate got an empty list of samples")
    batch: dict[str, Any] = {pixel_key: torch.stack([s[pixel_key] for s in samples])}  # (B, ...)
    for key in samples[0]:
        if key in (pixel_key, "skipped_samples"):
            continue
        values = [s[key] for s in samples]
        if all(isinstance(v, torch.Tensor) for v in values):
            batch[key] = torch.stack(values)
        elif all(isinstance(v, (bool, int)) for v in values):
            batch[key] = torch.tensor(values, dtype=torch.long)  # (B,)
        elif all(isinstance(v, (bool, int, float)) for v in values):
            batch[key] = torch.tensor(values, dtype=torch.float32)  # (B,)
        else:
            batch[key] = values
    batch["skipped_samples"] = int(sum(int(s.get("skipped_samples", 0)) for s in samples))
    return batch
