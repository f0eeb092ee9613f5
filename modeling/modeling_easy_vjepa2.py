"""V-JEPA 2 (Assran et al., 2025) as transformers models: video encoder, mask-token predictor, pretraining model.

Reads bottom-up: `VideoJepaForPreTraining` owns a context `encoder`, an EMA `target_encoder` (both `VideoJepaModel`)
and a `VideoJepaPredictor`. Numerically faithful to facebookresearch/vjepa2 in fp32, including its RoPE layout.
The encoder runs only the kept tokens, rotated with those tokens' own (t, h, w) positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.utils import ModelOutput

from .configuration_easy_vjepa2 import VideoJepaConfig
from .layers import (
    JepaEncoderOutput,
    JepaPreTrainedModel,
    JepaPreTrainingMixin,
    PatchEmbed3D,
    build_blocks,
    check_pixel_values,
    check_predictor_masks,
    check_token_index,
    gather_tokens,
    rescale_blocks,
)
from .positions import grid_positions, rope_3d
from .probes import FrozenEncoderClassifier


@dataclass
class VideoJepaModelOutput(JepaEncoderOutput):
    """`VideoJepaModel`'s output: `last_hidden_state` (B, K, D) with N = T/t * H/p * W/p tokens without a mask,
    optional per-block `hidden_states`."""


@dataclass
class VideoJepaPreTrainingOutput(ModelOutput):
    """Pretraining forward, one entry per mask family; `hf_jepa.training` turns it into a loss.

    Args:
        predictions: list of (B, M_i, D) predictor outputs, one per (context, target) mask pair.
        targets: list of (B, M_i, D) layer-normed target features at the same positions.
        context_states: list of (B, K_i, D) context-encoder outputs.
        target_states: (B, N, D) layer-normed target features of all tokens.
    """

    predictions: list[Tensor] | None = None
    targets: list[Tensor] | None = None
    context_states: list[Tensor] | None = None
    target_states: Tensor | None = None


class VideoJepaPreTrainedModel(JepaPreTrainedModel):
    """The base of the V-JEPA 2 classes."""

    config_class = VideoJepaConfig
    base_model_prefix = "target_encoder"  # AutoModel on a pretraining folder loads the EMA target encoder
    main_input_name = "pixel_values_videos"


def check_video(pixel_values_videos: Tensor, config: VideoJepaConfig) -> None:
    """Validate a (B, T, C, H, W) video batch against the config (rank, channels, tubelet, patch)."""
    check_pixel_values("pixel_values_videos", pixel_values_videos, "BTCHW", config)


class VideoJepaModel(VideoJepaPreTrainedModel):
    """V-JEPA 2 encoder: Conv3d tubelets, blocks with 3-D RoPE, LayerNorm. No absolute positions.

    `model(pixel_values_videos (B,T,C,H,W), context_mask=None | (B,K) long)` -> `.last_hidden_state (B,K or N,D)`.
    Flat token index = t*H'*W' + h*W' + w on the (T/tubelet, H/patch, W/patch) grid.
    """

    # Loading the target encoder out of a pretraining folder: the context encoder and predictor are expected extras.
    # ... and out of a classifier folder, the probe is an expected extra.
    _keys_to_ignore_on_load_unexpected = [r"^encoder\.", r"^predictor\.", r"^probe\."]

    def __init__(self, config: VideoJepaConfig) -> None:
        super().__init__(config)
        self.patch_embed = PatchEmbed3D(config.patch_size, config.tubelet_size, config.num_channels,
                                        config.hidden_size)
        self.blocks = build_blocks(config)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()
        rescale_blocks(self.blocks)

    def forward(
        self,
        pixel_values_videos: Tensor,
        context_mask: Tensor | None = None,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        output_attentions: bool | None = None,
    ) -> VideoJepaModelOutput:
        """pixel_values_videos (B, T, C, H, W); context_mask (B, K) kept token indices -> (B, K or N, D).

        `output_attentions` (default `config.output_attentions`) also returns each block's (B, heads, K, K)
        attention probabilities, computed with the eager kernel."""
        check_video(pixel_values_videos, self.config)
        b, t, _, h, w = pixel_values_videos.shape
        grid = (t // self.config.tubelet_size, h // self.config.patch_size, w // self.config.patch_size)
        video = pixel_values_videos.permute(0, 2, 1, 3, 4)  # (B, C, T, H, W) for Conv3d
        x = self.patch_embed(video.to(self.patch_embed.proj.weight.dtype))  # (B, N, D)
        n = grid[0] * grid[1] * grid[2]
        if context_mask is None:
            ids = torch.arange(n, device=x.device)  # (N,)
        else:
            check_token_index("context_mask", context_mask, b, n)
            ids = context_mask  # (B, K)
            x = gather_tokens(x, context_mask)  # (B, K, D)
        head_dim = self.config.hidden_size // self.config.num_attention_heads
        rope = rope_3d(grid_positions(ids, grid[1], grid[2]), head_dim,
                              interleave_fix=self.config.rope_interleave_fix)
        hidden = []
        maps = [] if (self.config.output_attentions if output_attentions is None else output_attentions) else None
        for block in self.blocks:
            x = block(x, rope=rope, attentions=maps)
            if output_hidden_states:
                hidden.append(x)
        x = self.norm(x)
        return VideoJepaModelOutput(last_hidden_state=x, hidden_states=tuple(hidden) if output_hidden_states else None,
                                    attentions=tuple(maps) if maps is not None else None)


class VideoJepaPredictor(nn.Module):
    """V-JEPA 2 predictor: context tokens + learned mask tokens at target positions, sorted by position (as Meta),
    blocks with 3-D RoPE, norm, projection back to the encoder width.

    `predictor(context_states (B,K,D), context_mask (B,K), target_mask (B,M))` -> (B, M, D).
    """

    def __init__(self, config: VideoJepaConfig) -> None:
        super().__init__()
        self.config = config
        d = config.predictor_hidden_size
        self.predictor_embed = nn.Linear(config.hidden_size, d)
        self.mask_tokens = nn.Parameter(torch.zeros(config.num_mask_tokens, d))  # Meta zero-inits them
        self.predictor_blocks = build_blocks(config, "predictor_")
        self.predictor_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.predictor_proj = nn.Linear(d, config.hidden_size)

    def forward(
        self,
        context_states: Tensor,
        context_mask: Tensor,
        target_mask: Tensor,
        mask_index: int = 0,
        grid: tuple[int, int, int] | None = None,
        *,
        attentions: list[Tensor] | None = None,
    ) -> Tensor:
        """Predict target features.

        Args:
            context_states: (B, K, D) context-encoder output.
            context_mask: (B, K) flat indices of the context tokens.
            target_mask: (B, M) flat indices of the tokens to predict.
            mask_index: which learned mask token to use (Meta: the mask family's index, modulo num_mask_tokens).
            grid: (T', H', W') token grid of the clip; defaults to the config's training grid (Meta's behaviour).
            attentions: when a list is given, each block's (B, heads, K+M, K+M) attention probabilities (tokens in
                position order) are appended.

        Returns:
            (B, M, D) predictions in the order of `target_mask`.
        """
        t, gh, gw = grid if grid is not None else self.config.grid
        check_predictor_masks(context_states, context_mask, target_mask, t * gh * gw)
        b, k, _ = context_states.shape
        m = target_mask.shape[1]
        x = self.predictor_embed(context_states)  # (B, K, d)
        token = self.mask_tokens[mask_index % self.config.num_mask_tokens]  # (d,)
        x = torch.cat([x, token.expand(b, m, -1)], dim=1)  # (B, K+M, d)
        ids = torch.cat([context_mask, target_mask], dim=1)  # (B, K+M)
        order = torch.argsort(ids, dim=1)  # Meta sorts tokens by position before the blocks
        ids = torch.gather(ids, 1, order)
        x = gather_tokens(x, order)
        head_dim = self.config.predictor_hidden_size // self.config.predictor_num_attention_heads
        rope = rope_3d(grid_positions(ids, gh, gw), head_dim, interleave_fix=self.config.rope_interleave_fix)
        for block in self.predictor_blocks:
            x = block(x, rope=rope, attentions=attentions)
        x = self.predictor_norm(x)
        x = gather_tokens(x, torch.argsort(order, dim=1))[:, k:]  # unsort, keep targets: (B, M, d)
        return self.predictor_proj(x)


class VideoJepaForPreTraining(JepaPreTrainingMixin, VideoJepaPreTrainedModel):
    """Context encoder + EMA target encoder + predictor (the V-JEPA 2 training model).

    `AutoModel.from_pretrained` on a folder saved from this class loads the EMA target encoder; without
    one (`use_ema_target=False`, SIGReg) it loads the trained online encoder, which `save_pretrained` then also
    writes as `target_encoder.*`.
    """

    _auto_class = "AutoModelForPreTraining"

    def __init__(self, config: VideoJepaConfig) -> None:
        super().__init__(config)
        self._init_pretraining(VideoJepaModel(config), VideoJepaPredictor(config))
        with torch.no_grad():
            self.predictor.mask_tokens.zero_()

    def forward(
        self,
        pixel_values_videos: Tensor,
        context_mask: Tensor | list[Tensor],
        target_mask: Tensor | list[Tensor],
    ) -> VideoJepaPreTrainingOutput:
        """pixel_values_videos (B,T,C,H,W); context_mask / target_mask: (B,K)/(B,M) or lists, one per mask family."""
        contexts = list(context_mask) if isinstance(context_mask, (list, tuple)) else [context_mask]
        targets_idx = list(target_mask) if isinstance(target_mask, (list, tuple)) else [target_mask]
        if len(contexts) != len(targets_idx):
            raise ValueError(f"got {len(contexts)} context masks but {len(targets_idx)} target masks: expected pairs")
        _, t, _, h, w = pixel_values_videos.shape
        grid = (t // self.config.tubelet_size, h // self.config.patch_size, w // self.config.patch_size)
        full = self._target_states(pixel_values_videos)  # (B, N, D)
        targets = [gather_tokens(full, m) for m in targets_idx]  # each (B, M_i, D)
        states, preds = [], []
        for ctx, tgt in zip(contexts, targets_idx, strict=True):
            z = self.encoder(pixel_values_videos, context_mask=ctx).last_hidden_state  # (B, K_i, D)
            states.append(z)
            # Meta passes the clip-length group index as mask_index (0 with one group) to every mask family.
            preds.append(self.predictor(z, ctx, tgt, mask_index=0, grid=grid))
        return VideoJepaPreTrainingOutput(predictions=preds, targets=targets, context_states=states,
                                          target_states=full)


class VideoJepaForVideoClassification(FrozenEncoderClassifier, VideoJepaPreTrainedModel):
    """V-JEPA 2 video classifier: `VideoJepaModel` + `probe` (`config.probe_type`), as `FrozenEncoderClassifier`.

    `model(pixel_values_videos (B, T, C, H, W), labels=None | (B,) long)` -> `.logits (B, num_labels)`, `.loss`
    with labels.
    """

    _auto_class = "AutoModelForVideoClassification"

    def __init__(self, config: VideoJepaConfig) -> None:
        super().__init__(config)
        self._init_classifier(VideoJepaModel(config))

    def forward(self, pixel_values_videos: Tensor, labels: Tensor | None = None, attention_mask: Tensor | None = None,
                output_hidden_states: bool = False, return_dict: bool = True,
                output_attentions: bool | None = None) -> ImageClassifierOutput | tuple:
        """Classify (B, T, C, H, W) videos; the arguments and outputs are `FrozenEncoderClassifier._classify`'s."""
        return self._classify(pixel_values_videos, labels, attention_mask, output_hidden_states, return_dict,
                              output_attentions)


__all__ = [
    "VideoJepaForVideoClassification",
    "VideoJepaForPreTraining",
    "VideoJepaModel",
    "VideoJepaModelOutput",
    "VideoJepaPreTrainedModel",
    "VideoJepaPreTrainingOutput",
    "VideoJepaPredictor",
    "check_video",
]
