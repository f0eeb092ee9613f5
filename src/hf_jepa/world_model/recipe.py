"""The world-model (V-JEPA 2-AC) training recipe: a frozen V-JEPA 2 encoder, an action-conditioned predictor
trained with Meta's teacher-forcing L1 + rollout L1 on windows of LeRobot-format trajectories.

Latents of every frame are computed once by the frozen encoder (`LatentEpisodeCache`), so a training step runs
only the predictor. `scripts/train_world_model.py` parses `WorldModelArguments`, calls `build_world_model_training`
and then the shared `fit` loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import AutoModel

from hf_jepa.data.lerobot import resolve_dataset_root
from hf_jepa.data.trajectories import LatentEpisodeCache
from hf_jepa.data.transforms import frame_transform
from hf_jepa.modeling.configuration_easy_vjepa2_ac import JepaWorldModelConfig
from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaModel
from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel
from hf_jepa.planning.subgoals import GRAPH_FILENAME, SubgoalConfig, dataset_latents, episode_nodes, save_graph
from hf_jepa.training import HyperParamScheduler, build_optimizer, build_schedules, world_model_loss
from hf_jepa.training.rank_logging import get_logger
from hf_jepa.training.runner import RunArguments, parse_config_overrides
from hf_jepa.training.step import ComputeLoss
from hf_jepa.world_model.droid import ACTION_SOURCES, CenterCropTransform, fps_frame_skip, state_delta_actions

logger = get_logger(__name__)  # main process only under accelerate launch


@dataclass
class WorldModelArguments(RunArguments):
    """Flags of `scripts/train_world_model.py` (also readable from a YAML / JSON file)."""

    encoder: str = field(default="outputs/demo/pretrain/encoder", metadata={
        "help": "V-JEPA 2 encoder: folder or Hub id of a VideoJepaModel or VideoJepaForPreTraining"})
    dataset_name: str = field(default="outputs/demo/two_rooms", metadata={"help": "LeRobot v3 folder or Hub id"})
    camera_key: str | None = None
    preset: str = field(default="tiny", metadata={"help": "predictor size preset (tiny, vit_g)"})
    config_overrides: str = field(default="{}", metadata={"help": "JSON dict of JepaWorldModelConfig fields"})
    frames_per_window: int = 4
    frame_skip: int = field(default=5, metadata={"help": "environment steps per predictor step"})
    auto_steps: int = field(default=2, metadata={"help": "rollout steps in the loss (Meta: 2)"})
    latents: Literal["encoder", "state"] = field(default="encoder", metadata={
        "help": "'encoder': each frame's latents from the frozen --encoder (pixels); 'state': perfect perception, "
                "one token per frame computed from its observation.state (Push-T: the agent and the T's 8 corners; "
                "hf_jepa.data.state_latents), no video read and --encoder unused"})
    action_reduce: Literal["sum", "concat"] = field(default="sum", metadata={
        "help": "a model step's action from its --frame_skip env actions: 'sum' (their net displacement, A values) "
                "or 'concat' (the k actions side by side, k*A values: Push-T with frame skip 5 -> 10-D)"})
    max_episodes: int | None = field(default=None, metadata={
        "help": "--latents state: train on the dataset's first N episodes (data-size curves); None: all"})
    state_mode: Literal["true", "hold", "zero"] = field(default="true", metadata={
        "help": "states fed to the predictor: 'true' (Meta), 'hold' (the window's first state, as a rollout "
                "without a state model sees it) or 'zero' (no proprioception)"})
    save_subgoal_graph: bool = field(default=False, metadata={
        "help": "also write output_dir/final/subgoal_graph.safetensors: the training frames' latents (every "
                "--subgoal_stride-th) for planning toward subgoals (hf_jepa.planning.subgoals) without the data"})
    subgoal_stride: int = field(default=SubgoalConfig.stride, metadata={"help": "dataset frames between graph nodes"})
    actions: str = field(default="dataset", metadata={
        "help": "'dataset': the action column summed over each frame skip; 'state_delta': differences of "
                "consecutive states; 'pose_delta': Meta's DROID actions from 7-D poses (position delta, relative "
                "rotation as Euler angles, gripper delta; hf_jepa.world_model.droid)"})
    fps: float | None = field(default=None, metadata={
        "help": "sample frames at this rate: frame_skip = ceil(dataset fps / fps), Meta's DROID loader (4); "
                "none: --frame_skip"})
    frame_crop: str = field(default="square", metadata={
        "help": "'square': resize the short side, centre square crop; 'meta': Meta's DROID centre crop (the widest "
                "centred crop of aspect 0.75-1.35, resized to a square)"})
    output_dir: str = "runs/world_model"
    per_device_train_batch_size: int = 64
    final_lr: float = 1e-5
    log_every: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("frames_per_window", "frame_skip", "auto_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: expected >= 1")
        if self.frames_per_window < 2:
            raise ValueError(f"frames_per_window={self.frames_per_window}: expected >= 2 (predict the next frame)")
        if self.auto_steps > self.frames_per_window - 1:
            raise ValueError(f"auto_steps={self.auto_steps}: expected <= frames_per_window - 1 = "
                             f"{self.frames_per_window - 1}")
        if self.latents not in ("encoder", "state"):
            raise ValueError(f"latents={self.latents!r}: expected 'encoder' or 'state'")
        if self.max_episodes is not None and (self.latents != "state" or self.max_episodes < 1):
            raise ValueError(f"max_episodes={self.max_episodes!r}: expected an int >= 1, with --latents state")
        if self.action_reduce not in ("sum", "concat"):
            raise ValueError(f"action_reduce={self.action_reduce!r}: expected 'sum' or 'concat'")
        if self.state_mode not in ("true", "hold", "zero"):
            raise ValueError(f"state_mode={self.state_mode!r}: expected 'true', 'hold' or 'zero'")
        if self.actions not in ACTION_SOURCES:
            raise ValueError(f"actions={self.actions!r}: expected one of {', '.join(ACTION_SOURCES)}")
        if self.frame_crop not in ("square", "meta"):
            raise ValueError(f"frame_crop={self.frame_crop!r}: expected 'square' or 'meta'")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps={self.fps}: expected > 0 or none")
        parse_config_overrides(self.config_overrides)
        SubgoalConfig(stride=self.subgoal_stride)  # validates it


@dataclass
class WorldModelSetup:
    """What `fit` needs (model/optimizer/scheduler not yet `prepare`d)."""

    model: JepaWorldModel
    optimizer: torch.optim.Optimizer
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler
    dataloader_factory: Callable[[int], Iterable[dict[str, Any]]]
    prepare_batch: Callable[[dict[str, Any], int], dict[str, Any]]
    compute_loss: ComputeLoss
    latent_cache: LatentEpisodeCache | None = None  # this rank's episodes, encoded once (reused for the subgoals)
    state_latents: Any = None  # --latents state: the StateLatents map (saved beside the model)
    data_info: dict[str, Any] | None = None  # --latents state: the dataset's meta/info.json


def load_encoder(name_or_path: str) -> VideoJepaModel:
    """A frozen V-JEPA 2 encoder from an encoder or pretraining folder / Hub id (the EMA target of the latter)."""
    encoder = AutoModel.from_pretrained(name_or_path)
    if not isinstance(encoder, VideoJepaModel):
        raise ValueError(f"encoder={name_or_path!r} loads a {type(encoder).__name__}; expected a V-JEPA 2 encoder "
                         "(model_type easy_vjepa2)")
    return encoder.eval().requires_grad_(False)


def build_world_model(args: WorldModelArguments, encoder: VideoJepaModel, action_dim: int,
                      state_dim: int, **defaults: Any) -> JepaWorldModel:
    """A `JepaWorldModel` with the given encoder's weights and a fresh predictor.

    Raises:
        ValueError: `--config_overrides` sets `action_dim` / `state_dim` to other widths than the dataset's.
    """
    overrides = parse_config_overrides(args.config_overrides)
    for name, column, width in (("action_dim", "action", action_dim), ("state_dim", "observation.state", state_dim)):
        value = overrides.pop(name, width)
        if value != width:
            raise ValueError(f"--config_overrides {name}={value!r} differs from the dataset {args.dataset_name!r}, "
                             f"whose {column} has width {width}")
    overrides.setdefault("state_update", "add" if args.state_mode == "true" and action_dim == state_dim else "hold")
    for name, value in defaults.items():  # recipe defaults (e.g. --latents state's), below --config_overrides
        overrides.setdefault(name, value)
    config = JepaWorldModelConfig.from_preset(
        args.preset, encoder_config=encoder.config, action_dim=action_dim, state_dim=state_dim,
        frame_skip=args.frame_skip, action_reduce=args.action_reduce, max_steps=max(args.frames_per_window, 8),
        **overrides)
    model = JepaWorldModel(config)
    model.encoder.load_state_dict(encoder.state_dict())
    return model


def _dims(dataset: str) -> tuple[int, int]:
    info = json.loads((resolve_dataset_root(dataset, allow_patterns=["meta/*"]) / "meta" / "info.json").read_text())
    feats = info["features"]
    try:
        return int(feats["action"]["shape"][0]), int(feats["observation.state"]["shape"][0])
    except KeyError as err:
        raise ValueError(f"dataset {dataset!r}: meta/info.json has no {err} feature; expected 'action' and "
                         "'observation.state'") from err


def _dataset_fps(dataset: str) -> float:
    info = json.loads((resolve_dataset_root(dataset, allow_patterns=["meta/*"]) / "meta" / "info.json").read_text())
    if "fps" not in info:
        raise ValueError(f"dataset {dataset!r}: meta/info.json has no fps; pass --frame_skip instead of --fps")
    return float(info["fps"])


def check_cache_widths(cache: LatentEpisodeCache, model: JepaWorldModel, dataset: str, action_factor: int = 1) -> None:
    """The action and state columns read from the data must have the widths the world model was built with (those
    meta/info.json declares; the action's times ``action_factor`` with ``--action_reduce concat``); a ValueError
    naming both widths otherwise."""
    if not cache.actions:
        return
    found = {"action_dim": int(cache.actions[0].shape[-1]) * action_factor, "state_dim": int(cache.states[0].shape[-1])}
    for name, width in found.items():
        expected = getattr(model.config, name)
        if width != expected:
            column = "action" if name == "action_dim" else "observation.state"
            raise ValueError(f"dataset {dataset!r}: its {column} rows have width {width}, but the world model was "
                             f"built with {name}={expected} (the width meta/info.json declares): the data files and "
                             "meta/info.json disagree")


def state_conditioning(mode: str) -> Callable[[dict[str, Any], int], dict[str, Any]]:
    """`prepare_batch` applying `state_mode` to the batch's (B, T, S) states."""

    def prepare(batch: dict[str, Any], step: int) -> dict[str, Any]:
        states = batch["states"]
        if mode == "hold":
            batch["states"] = states[:, :1].expand_as(states).contiguous()
        elif mode == "zero":
            batch["states"] = torch.zeros_like(states)
        return batch

    return prepare


def build_world_model_training(args: WorldModelArguments, accelerator: Accelerator) -> WorldModelSetup:
    """Encoder, world model, latent cache of this rank's episodes, objective, optimizer and schedule.

    With ``--latents state`` the latents come from the states (``state_latents.state_latent_cache``; every process
    holds all episodes) and the model's encoder is a placeholder of their width (never run); the predictor
    outputs each token's change (``predict_residual``) and latents are not layer-normed, unless
    ``--config_overrides`` says otherwise."""
    action_dim, state_dim = _dims(args.dataset_name)
    if args.fps is not None:
        args.frame_skip = fps_frame_skip(_dataset_fps(args.dataset_name), args.fps)
        logger.info("fps %g: frame_skip %d", args.fps, args.frame_skip)
    if args.action_reduce == "concat":  # the k env actions of a model step side by side
        action_dim *= args.frame_skip
    if args.actions != "dataset":  # actions computed from the states (Meta's DROID loader)
        action_dim = 7 if args.actions == "pose_delta" else state_dim
    state_map, info = None, None
    if args.latents == "state":
        from hf_jepa.data.state_latents import placeholder_encoder_config, state_latent_cache

        cache, state_map, info = state_latent_cache(args.dataset_name, max_episodes=args.max_episodes)
        set_seed(args.seed)
        encoder = VideoJepaModel(placeholder_encoder_config(state_map.width)).eval().requires_grad_(False)
        model = build_world_model(args, encoder, action_dim, state_dim, normalize_latents=False,
                                  predict_residual=True)
    else:
        encoder = load_encoder(args.encoder)
        set_seed(args.seed)  # the predictor's initialization depends on --seed alone
        model = build_world_model(args, encoder, action_dim, state_dim)
        encode_device = accelerator.device
        model.encoder.to(encode_device)

        def encode(frames: torch.Tensor) -> torch.Tensor:
            return model.encode(frames.to(encode_device)).cpu()

        frames = frame_transform(model) if args.frame_crop == "square" else CenterCropTransform(
            model.config.encoder_config.image_size, mean=tuple(model.config.encoder_config.image_mean),
            std=tuple(model.config.encoder_config.image_std))
        cache = LatentEpisodeCache.build(args.dataset_name, encode, frames,
                                         rank=accelerator.process_index, world_size=accelerator.num_processes,
                                         camera_key=args.camera_key, show_progress=accelerator.is_main_process)
    if args.actions == "dataset":
        check_cache_widths(cache, model, args.dataset_name,
                           action_factor=args.frame_skip if args.action_reduce == "concat" else 1)
    logger.info("cached latents of %d episodes (%d windows)", len(cache.latents),
                len(cache.windows(args.frames_per_window, args.frame_skip)))

    def factory(epoch: int) -> Iterable[dict[str, Any]]:
        return cache.batches(epoch, batch_size=args.per_device_train_batch_size,
                             frames_per_window=args.frames_per_window, frame_skip=args.frame_skip, seed=args.seed,
                             action_reduce=args.action_reduce)

    optimizer = build_optimizer(model, lr=args.learning_rate, weight_decay=args.weight_decay)
    scheduler = HyperParamScheduler(optimizer, build_schedules(args))

    prepare_states = state_conditioning(args.state_mode)

    def prepare(batch: dict[str, Any], step: int) -> dict[str, Any]:
        if args.actions != "dataset":  # from the true states, before --state_mode hides them from the predictor
            batch["actions"] = state_delta_actions(batch["states"], "pose" if args.actions == "pose_delta"
                                                   else "linear")  # (B, T, A)
        batch = prepare_states(batch, step)
        batch["auto_steps"] = args.auto_steps
        return batch

    return WorldModelSetup(model=model, optimizer=optimizer,
                           lr_scheduler=scheduler,
                           dataloader_factory=factory, prepare_batch=prepare, compute_loss=world_model_loss,
                           latent_cache=cache, state_latents=state_map, data_info=info)


def save_subgoal_graph(args: WorldModelArguments, setup: WorldModelSetup, model: JepaWorldModel, folder: Path,
                       accelerator: Accelerator) -> Path:
    """Write `folder/subgoal_graph.safetensors` (main process): the nodes of the training data's subgoal graph
    (its links are computed where it is loaded, not here).

    One process reuses the latents training cached (the encoder is frozen, so they are the final model's); with
    several, each cached only its own episodes, so the main process encodes the whole dataset again.
    """
    config = SubgoalConfig(stride=args.subgoal_stride)
    if accelerator.num_processes == 1 and setup.latent_cache is not None:
        latents = setup.latent_cache.latents
    else:
        latents = dataset_latents(args.dataset_name, model, camera_key=args.camera_key)
    return save_graph(folder / GRAPH_FILENAME, *episode_nodes(latents, config.stride), config)
