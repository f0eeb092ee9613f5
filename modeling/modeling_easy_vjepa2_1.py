"""V-JEPA 2.1 as transformers models: video / image encoder with hierarchical outputs, predictor, pretraining model.

Reads bottom-up: `VideoJepa21ForPreTraining` owns a context `encoder`, an EMA `target_encoder` (both
`VideoJepa21Model`) and a `VideoJepa21Predictor`. Numerically faithful to facebookresearch/vjepa2's
app/vjepa_2_1 in fp32. Against V-JEPA 2 the encoder adds an image patch embedding (T = 1), modality embeddings,
interleaved (textbook) RoPE with optional position interpolation, and per-level LayerNorms (`norms_block`) whose
last one is the final norm. The blocks are the project's shared `Block` / `Attention`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.utils import ModelOutput

from .configuration_easy_vjepa2_1 import VideoJepa21Config
from .layers import (
    JepaEncoderOutput,
    JepaPreTrainedModel,
    JepaPreTrainingMixin,
    PatchEmbed3D,
    build_blocks,
    check_predictor_masks,
    check_token_index,
    gather_tokens,
    rescale_blocks,
)
from .positions import RotaryTables, grid_positions, interpolate_grid_positions, rope_3d
from .probes import FrozenEncoderClassifier

MODALITIES = ("video", "image")


@dataclass
class VideoJepa21ModelOutput(JepaEncoderOutput):
    """`VideoJepa21Model`'s output.

    Args:
        last_hidden_state: (B, K, D) the last level (`norms_block[-1]` of the last block), K = N without a mask.
        hidden_states: optional tuple of (B, K, D) per-block outputs (before any norm).
        hierarchical_states: optional (B, K, L * D) concatenation of the L levels, each through its own norm
            (level order: shallow to deep), what Meta's encoder returns in training mode.
    """

    hierarchical_states: Tensor | None = None


@dataclass
class VideoJepa21PreTrainingOutput(ModelOutput):
    """Pretraining forward, one entry per (context, target) mask pair; `hf_jepa.training` turns it into a loss.

    Args:
        predictions: list of (B, M_i, P * O) predictions of the target tokens (P predictor levels of width O).
        targets: list of (B, M_i, P * O) targets: the EMA target's last P levels, each layer-normed without affine.
        context_predictions: list of (B, K_i, P * O) predictions of the context tokens (None without the context
            projection).
        context_targets: list of (B, K_i, P * O) targets at the context tokens.
        context_states: list of (B, K_i, P * D) context-encoder outputs fed to the predictor.
        target_states: (B, N, P * O) layer-normed target features of all tokens.
        modality: 'video' or 'image' (T = 1).
        grid: (T', H', W') token grid of the input (the masks' index space).
    """

    predictions: list[Tensor] | None = None
    targets: list[Tensor] | None = None
    context_predictions: list[Tensor] | None = None
    context_targets: list[Tensor] | None = None
    context_states: list[Tensor] | None = None
    target_states: Tensor | None = None
    modality: str | None = None
    grid: tuple[int, int, int] | None = None


class VideoJepa21PreTrainedModel(JepaPreTrainedModel):
    """The base of the V-JEPA 2.1 classes."""

    config_class = VideoJepa21Config
    base_model_prefix = "target_encoder"  # AutoModel on a pretraining folder loads the EMA target encoder
    main_input_name = "pixel_values_videos"

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, VideoJepa21Model) and module.config.modality_embedding:
            nn.init.normal_(module.img_mod_embed, std=1e-6)  # Meta's init of the modality embeddings
            nn.init.normal_(module.video_mod_embed, std=1e-6)
        elif isinstance(module, VideoJepa21Predictor):
            nn.init.zeros_(module.mask_tokens)
            if module.config.modality_embedding:
                nn.init.normal_(module.img_mod_embed, std=1e-6)
                nn.init.normal_(module.video_mod_embed, std=1e-6)


def video_or_image(pixel_values_videos: Tensor | None, pixel_values: Tensor | None,
                   config: VideoJepa21Config) -> tuple[Tensor, str]:
    """Validate the input and return it as (B, T, C, H, W) with its modality.

    Images come as `pixel_values` (B, C, H, W), a 4-D `pixel_values_videos`, or videos of one frame (B, 1, C, H, W);
    they take the image patch embedding. Videos need T divisible by `tubelet_size`.
    """
    if (pixel_values_videos is None) == (pixel_values is None):
        raise ValueError("expected exactly one of pixel_values_videos (B, T, C, H, W) and pixel_values (B, C, H, W)")
    name = "pixel_values_videos" if pixel_values is None else "pixel_values"
    x = pixel_values_videos if pixel_values is None else pixel_values
    if not isinstance(x, Tensor) or x.dim() not in (4, 5):
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a (batch, frames, channels, height, width) video or a (batch, channels, "
                         f"height, width) image tensor, got {got}")
    if x.dim() == 4:
        x = x.unsqueeze(1)  # (B, 1, C, H, W)
    _, t, c, h, w = x.shape
    if c != config.num_channels:
        raise ValueError(f"{name}: got {c} channels, expected num_channels={config.num_channels}")
    if h % config.patch_size or w % config.patch_size:
        raise ValueError(f"{name}: frame size {h}x{w} is not divisible by patch_size={config.patch_size}")
    if t == 1 and config.image_patch_embedding:
        return x, "image"
    if t % config.tubelet_size:
        extra = "" if config.image_patch_embedding else " (image_patch_embedding=False: no T = 1 image path)"
        raise ValueError(f"{name}: {t} frames is not divisible by tubelet_size={config.tubelet_size}{extra}")
    return x, "video"


def rope_tables(token_ids: Tensor, grid: tuple[int, int, int], head_dim: int, config: VideoJepa21Config,
                interpolate: bool) -> RotaryTables:
    """RoPE tables of tokens `token_ids` (N,) or (B, N) on `grid` (T', H', W'), interpolated to the reference grid
    when `interpolate` (Meta's `interpolate_rope`)."""
    positions = grid_positions(token_ids, grid[1], grid[2])  # (..., N, 3)
    if interpolate:
        positions = interpolate_grid_positions(positions, grid[1], grid[2], config.rope_reference_grid_size)
    return rope_3d(positions, head_dim, interleave_fix=config.rope_interleave_fix)


class VideoJepa21Model(VideoJepa21PreTrainedModel):
    """V-JEPA 2.1 encoder: Conv3d tubelets (videos) or Conv3d time-kernel-1 patches (images), a modality embedding,
    blocks with 3-D RoPE, per-level LayerNorms at `config.hierarchical_layers`.

    `model(pixel_values_videos (B,T,C,H,W) | pixel_values (B,C,H,W), context_mask=None | (B,K) long)` ->
    `.last_hidden_state (B,K or N,D)`; `output_hierarchical_states=True` adds `.hierarchical_states (B,K,L*D)`.
    Flat token index = t*H'*W' + h*W' + w on the (T', H/patch, W/patch) grid, T' = T/tubelet (videos) or 1 (images).
    """

    # Loading the target encoder out of a pretraining folder: the context encoder and predictor are expected extras.
    # ... and out of a classifier folder, the probe is an expected extra.
    _keys_to_ignore_on_load_unexpected = [r"^encoder\.", r"^predictor\.", r"^probe\."]

    def __init__(self, config: VideoJepa21Config) -> None:
        super().__init__(config)
        d = config.hidden_size
        self.patch_embed = PatchEmbed3D(config.patch_size, config.tubelet_size, config.num_channels, d)
        self.patch_embed_img = (PatchEmbed3D(config.patch_size, 1, config.num_channels, d)
                                if config.image_patch_embedding else None)
        if config.modality_embedding:
            self.img_mod_embed = nn.Parameter(torch.zeros(1, 1, d))
            self.video_mod_embed = nn.Parameter(torch.zeros(1, 1, d))
        self.blocks = build_blocks(config)
        self.norms_block = nn.ModuleList(nn.LayerNorm(d, eps=config.layer_norm_eps)
                                         for _ in config.hierarchical_layers)
        self.post_init()
        rescale_blocks(self.blocks)

    def forward(
        self,
        pixel_values_videos: Tensor | None = None,
        context_mask: Tensor | None = None,
        output_hidden_states: bool = False,
        output_hierarchical_states: bool = False,
        return_dict: bool = True,
        pixel_values: Tensor | None = None,
        output_attentions: bool | None = None,
    ) -> VideoJepa21ModelOutput:
        """Encode a video (B, T, C, H, W) or an image batch (B, C, H, W); context_mask (B, K) kept token indices.

        Returns:
            `last_hidden_state` (B, K or N, D); `hidden_states` (per block, with `output_hidden_states`);
            `hierarchical_states` (B, K or N, L * D, with `output_hierarchical_states`); `attentions` (per block
            (B, heads, K, K) probabilities, with `output_attentions`, default `config.output_attentions`).
        """
        x, modality = video_or_image(pixel_values_videos, pixel_values, self.config)
        b, t, _, h, w = x.shape
        image = modality == "image"
        grid = (1 if image else t // self.config.tubelet_size, h // self.config.patch_size,
                w // self.config.patch_size)
        embed = self.patch_embed_img if image else self.patch_embed
        x = embed(x.permute(0, 2, 1, 3, 4).to(embed.proj.weight.dtype))  # (B, C, T, H, W) -> (B, N, D)
        if self.config.modality_embedding:
            x = x + (self.img_mod_embed if image else self.video_mod_embed)  # (1, 1, D) broadcast
        n = grid[0] * grid[1] * grid[2]
        if context_mask is None:
            ids = torch.arange(n, device=x.device)  # (N,)
        else:
            check_token_index("context_mask", context_mask, b, n)
            ids = context_mask  # (B, K)
            x = gather_tokens(x, context_mask)  # (B, K, D)
        head_dim = self.config.hidden_size // self.config.num_attention_heads
        rope = rope_tables(ids, grid, head_dim, self.config, self.config.interpolate_rope)
        hidden, levels = [], []
        maps = [] if (self.config.output_attentions if output_attentions is None else output_attentions) else None
        level_of = {block: i for i, block in enumerate(self.config.hierarchical_layers)}
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x, rope=rope, attentions=maps)
            if output_hidden_states:
                hidden.append(x)
            if i in level_of and (output_hierarchical_states or i == last):
                levels.append(self.norms_block[level_of[i]](x))
        return VideoJepa21ModelOutput(
            last_hidden_state=levels[-1],
            hidden_states=tuple(hidden) if output_hidden_states else None,
            hierarchical_states=torch.cat(levels, dim=-1) if output_hierarchical_states else None,  # (B, K, L*D)
            attentions=tuple(maps) if maps is not None else None,
        )


class VideoJepa21Predictor(nn.Module):
    """V-JEPA 2.1 predictor: embeds the context's last `predictor_num_levels` levels (an MLP over the concatenation,
    or a Linear for one level), appends learned mask tokens at the target positions, sorts by position (as Meta),
    adds the modality embedding, runs blocks with 3-D RoPE and a norm, then projects the target tokens (and, with
    `predictor_context_projection`, the context tokens) to `predictor_num_levels * predictor_output_size`.

    `predictor(context_states (B,K,P*D), context_mask (B,K), target_mask (B,M))` -> ((B,M,P*O), (B,K,P*O) or None).
    """

    def __init__(self, config: VideoJepa21Config) -> None:
        super().__init__()
        self.config = config
        d, width, levels = config.predictor_hidden_size, config.hidden_size, config.predictor_num_levels
        if levels == 1:
            self.predictor_embed = nn.Linear(width, d)
        else:
            self.predictor_embed = nn.Sequential(nn.Linear(width * levels, width), nn.GELU(), nn.Linear(width, d))
        self.mask_tokens = nn.Parameter(torch.zeros(config.num_mask_tokens, d))  # Meta zero-inits them
        if config.modality_embedding:
            self.img_mod_embed = nn.Parameter(torch.zeros(1, 1, d))
            self.video_mod_embed = nn.Parameter(torch.zeros(1, 1, d))
        self.predictor_blocks = build_blocks(config, "predictor_")
        self.predictor_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        out = levels * config.predictor_output_size
        self.predictor_proj = nn.Linear(d, out)
        self.predictor_proj_context = nn.Linear(d, out) if config.predictor_context_projection else None

    def forward(
        self,
        context_states: Tensor,
        context_mask: Tensor,
        target_mask: Tensor,
        mask_index: int = 0,
        grid: tuple[int, int, int] | None = None,
        modality: str = "video",
    ) -> tuple[Tensor, Tensor | None]:
        """Predict the target (and context) tokens' features.

        Args:
            context_states: (B, K, P * D) context-encoder levels (P = `predictor_num_levels`).
            context_mask: (B, K) flat indices of the context tokens.
            target_mask: (B, M) flat indices of the tokens to predict.
            mask_index: which learned mask token to use (modulo num_mask_tokens).
            grid: (T', H', W') token grid of the input; defaults to the config's training grid (Meta's behaviour).
            modality: 'video' or 'image': which modality embedding is added.

        Returns:
            (B, M, P * O) predictions in the order of `target_mask`; (B, K, P * O) context predictions or None.
        """
        if modality not in MODALITIES:
            raise ValueError(f"modality={modality!r}: expected one of {list(MODALITIES)}")
        t, gh, gw = grid if grid is not None else self.config.grid
        check_predictor_masks(context_states, context_mask, target_mask, t * gh * gw)
        expected = self.config.predictor_num_levels * self.config.hidden_size
        if context_states.shape[-1] != expected:
            raise ValueError(f"context_states has width {context_states.shape[-1]}, expected predictor_num_levels * "
                             f"hidden_size = {expected}")
        b, k, _ = context_states.shape
        m = target_mask.shape[1]
        x = self.predictor_embed(context_states)  # (B, K, d)
        token = self.mask_tokens[mask_index % self.config.num_mask_tokens]  # (d,)
        x = torch.cat([x, token.expand(b, m, -1)], dim=1)  # (B, K+M, d)
        ids = torch.cat([context_mask, target_mask], dim=1)  # (B, K+M)
        order = torch.argsort(ids, dim=1)  # Meta sorts tokens by position before the blocks
        ids = torch.gather(ids, 1, order)
        x = gather_tokens(x, order)
        if self.config.modality_embedding:
            x = x + (self.img_mod_embed if modality == "image" else self.video_mod_embed)  # (1, 1, d) broadcast
        head_dim = self.config.predictor_hidden_size // self.config.predictor_num_attention_heads
        rope = rope_tables(ids, (t, gh, gw), head_dim, self.config, self.config.predictor_interpolate_rope)
        for block in self.predictor_blocks:
            x = block(x, rope=rope)
        x = self.predictor_norm(x)
        x = gather_tokens(x, torch.argsort(order, dim=1))  # unsort: (B, K+M, d)
        predictions = self.predictor_proj(x[:, k:])  # (B, M, P*O)
        context = self.predictor_proj_context(x[:, :k]) if self.predictor_proj_context is not None else None
        return predictions, context


def layer_norm_levels(states: Tensor, num_levels: int) -> Tensor:
    """Layer-norm each of the `num_levels` equal channel blocks of (..., L * D) states without affine (Meta's
    hierarchical targets); (..., L * D) out."""
    chunks = states.chunk(num_levels, dim=-1)  # L x (..., D)
    return torch.cat([F.layer_norm(c, (c.shape[-1],)) for c in chunks], dim=-1)


class VideoJepa21ForPreTraining(JepaPreTrainingMixin, VideoJepa21PreTrainedModel):
    """Context encoder + EMA target encoder + predictor (the V-JEPA 2.1 training model).

    The predictor reads and predicts the last `predictor_num_levels` levels; the targets are the EMA target's
    levels, each layer-normed without affine. `AutoModel.from_pretrained` on a folder saved from this class loads the
    EMA target encoder.
    """

    _auto_class = "AutoModelForPreTraining"

    def __init__(self, config: VideoJepa21Config) -> None:
        super().__init__(config)
        self._init_pretraining(VideoJepa21Model(config), VideoJepa21Predictor(config))

    def _levels(self, encoder: VideoJepa21Model, x: Tensor, context_mask: Tensor | None = None) -> Tensor:
        """(B, K, P * D): the encoder's last `predictor_num_levels` levels, concatenated."""
        out = encoder(x, context_mask=context_mask, output_hierarchical_states=True).hierarchical_states
        keep = self.config.predictor_num_levels * self.config.hidden_size
        return out[..., out.shape[-1] - keep:]

    def _target_states(self, pixels: Tensor) -> Tensor:
        """(B, N, P * D) per-level layer-normed features of every token: the EMA target's without gradients, or
        without a target (SIGReg) the online encoder's."""
        target_net = self.target_encoder if self.target_encoder is not None else self.encoder
        with torch.set_grad_enabled(self.target_encoder is None and torch.is_grad_enabled()):
            return layer_norm_levels(self._levels(target_net, pixels), self.config.predictor_num_levels)

    def forward(
        self,
        pixel_values_videos: Tensor | None = None,
        context_mask: Tensor | list[Tensor] | None = None,
        target_mask: Tensor | list[Tensor] | None = None,
        pixel_values: Tensor | None = None,
    ) -> VideoJepa21PreTrainingOutput:
        """pixel_values_videos (B,T,C,H,W) or pixel_values (B,C,H,W); context_mask / target_mask: (B,K) / (B,M)
        or lists, one per mask family."""
        if self.config.predictor_output_size != self.config.hidden_size:
            raise ValueError(f"predictor_output_size={self.config.predictor_output_size} differs from hidden_size="
                             f"{self.config.hidden_size}: a distilled predictor predicts its teacher's features, "
                             "so self-supervised pretraining needs predictor_output_size = hidden_size")
        if context_mask is None or target_mask is None:
            raise ValueError("context_mask and target_mask are required: (B, K) / (B, M) token indices or lists")
        x, modality = video_or_image(pixel_values_videos, pixel_values, self.config)
        contexts = list(context_mask) if isinstance(context_mask, (list, tuple)) else [context_mask]
        targets_idx = list(target_mask) if isinstance(target_mask, (list, tuple)) else [target_mask]
        if len(contexts) != len(targets_idx):
            raise ValueError(f"got {len(contexts)} context masks but {len(targets_idx)} target masks: expected pairs")
        _, t, _, h, w = x.shape
        grid = (1 if modality == "image" else t // self.config.tubelet_size, h // self.config.patch_size,
                w // self.config.patch_size)
        full = self._target_states(x)  # (B, N, P*D)
        out = VideoJepa21PreTrainingOutput(predictions=[], targets=[], context_predictions=[], context_targets=[],
                                           context_states=[], target_states=full, modality=modality, grid=grid)
        for ctx, tgt in zip(contexts, targets_idx, strict=True):
            z = self._levels(self.encoder, x, ctx)  # (B, K_i, P*D)
            pred, pred_ctx = self.predictor(z, ctx, tgt, mask_index=0, grid=grid, modality=modality)
            out.context_states.append(z)
            out.predictions.append(pred)
            out.targets.append(gather_tokens(full, tgt))
            if pred_ctx is not None:
                out.context_predictions.append(pred_ctx)
                out.context_targets.append(gather_tokens(full, ctx))
        if not self.config.predictor_context_projection:
            out.context_predictions = out.context_targets = None
        return out


class VideoJepa21ForVideoClassification(FrozenEncoderClassifier, VideoJepa21PreTrainedModel):
    """V-JEPA 2.1 classifier: `VideoJepa21Model` + `probe` (`config.probe_type`), as `FrozenEncoderClassifier`.

    `model(pixel_values_videos (B, T, C, H, W) or images (B, C, H, W), labels=None | (B,) long)` ->
    `.logits (B, num_labels)`, `.loss` with labels.
    """

    _auto_class = "AutoModelForVideoClassification"

    def __init__(self, config: VideoJepa21Config) -> None:
        super().__init__(config)
        self._init_classifier(VideoJepa21Model(config))

    def forward(self, pixel_values_videos: Tensor, labels: Tensor | None = None, attention_mask: Tensor | None = None,
                output_hidden_states: bool = False, return_dict: bool = True,
                output_attentions: bool | None = None) -> ImageClassifierOutput | tuple:
        """Classify (B, T, C, H, W) videos or (B, C, H, W) images; see `FrozenEncoderClassifier._classify`."""
        return self._classify(pixel_values_videos, labels, attention_mask, output_hidden_states, return_dict,
                              output_attentions)


__all__ = [
    "VideoJepa21ForPreTraining",
    "VideoJepa21ForVideoClassification",
    "VideoJepa21Model",
    "VideoJepa21ModelOutput",
    "VideoJepa21PreTrainedModel",
    "VideoJepa21PreTrainingOutput",
    "VideoJepa21Predictor",
    "layer_norm_levels",
    "video_or_image",
]
