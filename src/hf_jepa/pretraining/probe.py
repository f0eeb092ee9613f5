"""The online linear probe of `--probe_label_column`: its held-out samples, read and checked before training, and
the target encoder's mean-pooled features it reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import DistributedType
from torch import Tensor, nn

from hf_jepa.data.images import ImageConfig, load_image_dataset
from hf_jepa.data.labels import LabelColumnError, LabelInfo, inspect_label_column
from hf_jepa.data.trajectories import is_lerobot_dataset
from hf_jepa.data.video import VideoClipConfig, dataloader, load_video_dataset
from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.pretraining.arguments import VIDEO_FAMILIES, PretrainArguments
from hf_jepa.processing import IMAGE_EVAL_CROP_FRACTION, VIDEO_EVAL_CROP_FRACTION
from hf_jepa.training.online_probe import OnlineProbe
from hf_jepa.training.rank_logging import get_logger

logger = get_logger(__name__)  # main process only under accelerate launch

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
