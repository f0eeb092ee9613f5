"""I-JEPA (Assran et al., 2023) as transformers models: encoder, predictor and the pretraining model.

Reads bottom-up: `ImageJepaForPreTraining` owns a context `encoder`, an EMA `target_encoder` (both
`ImageJepaModel`) and an `ImageJepaPredictor`. Numerically faithful to facebookresearch/ijepa in fp32.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.utils import ModelOutput

from .configuration_easy_ijepa import ImageJepaConfig
from .layers import (
    ChecksLoadedShapes,
    PatchEmbed2D,
    SavesEncoderAsTarget,
    build_blocks,
    check_token_index,
    gather_tokens,
    init_jepa_weights,
    rescale_blocks,
    sincos_2d,
)
from .probes import AttentivePooler, FrozenEncoderClassifier


@dataclass
class ImageJepaModelOutput(ModelOutput):
    """Encoder output.

    Args:
        last_hidden_state: (B, K, D) features of the kept tokens (K = N without a mask), after the final norm.
        hidden_states: optional tuple of (B, K, D) per block output (before the final norm).
    """

    last_hidden_state: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None


@dataclass
class ImageJepaPreTrainingOutput(ModelOutput):
    """Pretraining forward; the loss is computed by `hf_jepa.training` from these fields.

    Args:
        predictions: (P*B, M, D) predictor outputs for the P target blocks, block-major (Meta's order).
        targets: (P*B, M, D) layer-normed target-encoder features at the same positions (no grad with EMA).
        context_states: (B, K, D) context-encoder output.
        target_states: (B, N, D) layer-normed target features of all tokens (for SIGReg-style regularisers).
    """

    predictions: Tensor | None = None
    targets: Tensor | None = None
    context_states: Tensor | None = None
    target_states: Tensor | None = None


class ImageJepaPreTrainedModel(ChecksLoadedShapes, PreTrainedModel):
    """Weight init and loading glue shared by the I-JEPA classes."""

    _auto_class = "AutoModel"  # save_pretrained copies these modeling files beside the weights

    config_class = ImageJepaConfig
    base_model_prefix = "target_encoder"  # AutoModel on a pretraining folder loads the EMA target encoder
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["Block"]

    def _init_weights(self, module: nn.Module) -> None:
        init_jepa_weights(module, self.config.initializer_range)
        if isinstance(module, AttentivePooler):
            module.reset_parameters()


def _check_images(pixel_values: Tensor, config: ImageJepaConfig) -> None:
    if not isinstance(pixel_values, Tensor) or pixel_values.dim() != 4:
        got = tuple(pixel_values.shape) if isinstance(pixel_values, Tensor) else type(pixel_values).__name__
        raise ValueError(f"pixel_values: expected a (batch, channels, height, width) tensor, got shape {got}")
    _, c, h, w = pixel_values.shape
    if c != config.num_channels:
        raise ValueError(f"pixel_values: got {c} channels, expected num_channels={config.num_channels}")
    if h % config.patch_size or w % config.patch_size:
        raise ValueError(f"pixel_values: image size {h}x{w} is not divisible by patch_size={config.patch_size}")


class ImageJepaModel(ImageJepaPreTrainedModel):
    """I-JEPA ViT encoder: patch embed + fixed 2-D sin-cos positions (no CLS) + blocks + LayerNorm.

    `model(pixel_values (B,C,H,W), context_mask=None | (B,K) long)` -> `.last_hidden_state (B, K or N, D)`.
    """

    # Loading the target encoder out of a pretraining folder: the context encoder and predictor are expected extras.
    # ... and out of a classifier folder, the probe is an expected extra.
    _keys_to_ignore_on_load_unexpected = [r"^encoder\.", r"^predictor\.", r"^probe\."]

    def __init__(self, config: ImageJepaConfig) -> None:
        super().__init__(config)
        self.patch_embed = PatchEmbed2D(config.patch_size, config.num_channels, config.hidden_size)
        grid = config.grid_size
        # Stored (not recomputed) like Meta's and transformers' weights, so converted tables load bit-exactly.
        self.pos_embed = nn.Parameter(sincos_2d(config.hidden_size, grid, grid)[None], requires_grad=False)
        self.blocks = build_blocks(
            config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size,
            qkv_bias=config.qkv_bias, layer_norm_eps=config.layer_norm_eps, drop_path_rate=config.drop_path_rate,
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()
        rescale_blocks(self.blocks)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if module is self:
            self.pos_embed.data.copy_(sincos_2d(self.config.hidden_size, self.config.grid_size,
                                                self.config.grid_size)[None])

    def position_table(self, grid_height: int, grid_width: int) -> Tensor:
        """(1, h*w, D) positions for a grid; bicubic-resized from the stored table when the size differs."""
        g = self.config.grid_size
        if (grid_height, grid_width) == (g, g):
            return self.pos_embed
        table = self.pos_embed.reshape(1, g, g, -1).permute(0, 3, 1, 2)  # (1, D, g, g)
        table = F.interpolate(table, size=(grid_height, grid_width), mode="bicubic", align_corners=False)
        return table.permute(0, 2, 3, 1).flatten(1, 2)  # (1, h*w, D)

    def forward(
        self,
        pixel_values: Tensor,
        context_mask: Tensor | None = None,
        output_hidden_states: bool = False,
        return_dict: bool = True,
    ) -> ImageJepaModelOutput:
        """pixel_values (B, C, H, W); context_mask (B, K) indices of the tokens to keep -> (B, K or N, D)."""
        _check_images(pixel_values, self.config)
        b, _, h, w = pixel_values.shape
        gh, gw = h // self.config.patch_size, w // self.config.patch_size
        x = self.patch_embed(pixel_values.to(self.patch_embed.proj.weight.dtype))  # (B, N, D)
        x = x + self.position_table(gh, gw)
        if context_mask is not None:
            check_token_index("context_mask", context_mask, b, gh * gw)
            x = gather_tokens(x, context_mask)  # (B, K, D)
        hidden = []
        for block in self.blocks:
            x = block(x)
            if output_hidden_states:
                hidden.append(x)
        x = self.norm(x)
        return ImageJepaModelOutput(last_hidden_state=x, hidden_states=tuple(hidden) if output_hidden_states else None)


class ImageJepaPredictor(nn.Module):
    """I-JEPA predictor: embed context to predictor width, add mask tokens at target positions, blocks, project back.

    `predictor(context_states (B,K,D), context_mask (B,K), target_mask (B,M))` -> (B, M, D).
    """

    def __init__(self, config: ImageJepaConfig) -> None:
        super().__init__()
        self.config = config
        d = config.predictor_hidden_size
        self.predictor_embed = nn.Linear(config.hidden_size, d)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        g = config.grid_size
        self.predictor_pos_embed = nn.Parameter(sincos_2d(d, g, g)[None], requires_grad=False)
        self.predictor_blocks = build_blocks(
            config.predictor_num_hidden_layers, d, config.predictor_num_attention_heads,
            config.predictor_intermediate_size, qkv_bias=config.qkv_bias, layer_norm_eps=config.layer_norm_eps,
            drop_path_rate=config.drop_path_rate,
        )
        self.predictor_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.predictor_proj = nn.Linear(d, config.hidden_size)

    def forward(self, context_states: Tensor, context_mask: Tensor, target_mask: Tensor) -> Tensor:
        """context_states (B, K, D), context_mask (B, K), target_mask (B, M) -> predictions (B, M, D)."""
        b, k, _ = context_states.shape
        n = self.predictor_pos_embed.shape[1]
        check_token_index("context_mask", context_mask, b, n)
        check_token_index("target_mask", target_mask, b, n)
        if context_mask.shape[1] != k:
            raise ValueError(f"context_mask has {context_mask.shape[1]} indices but context_states has {k} tokens")
        pos = self.predictor_pos_embed.expand(b, -1, -1)  # (B, N, d)
        x = self.predictor_embed(context_states) + gather_tokens(pos, context_mask)  # (B, K, d)
        targets = self.mask_token + gather_tokens(pos, target_mask)  # (B, M, d)
        x = torch.cat([x, targets], dim=1)  # (B, K+M, d)
        for block in self.predictor_blocks:
            x = block(x)
        x = self.predictor_norm(x)[:, k:]  # (B, M, d)
        return self.predictor_proj(x)


class ImageJepaForPreTraining(SavesEncoderAsTarget, ImageJepaPreTrainedModel):
    """Context encoder + EMA target encoder + predictor (the I-JEPA training model).

    `AutoModel.from_pretrained` on a folder saved from this class loads the EMA target encoder (Meta evaluates it);
    without one (`use_ema_target=False`, SIGReg) it loads the trained online encoder, which `save_pretrained` then
    also writes as `target_encoder.*`.
    """

    _auto_class = "AutoModelForPreTraining"

    def __init__(self, config: ImageJepaConfig) -> None:
        super().__init__(config)
        self.encoder = ImageJepaModel(config)
        self.predictor = ImageJepaPredictor(config)
        self.target_encoder = None
        if config.use_ema_target:
            self.target_encoder = copy.deepcopy(self.encoder)
            self.target_encoder.requires_grad_(False)
        self.post_init()
        rescale_blocks(self.predictor.predictor_blocks)
        with torch.no_grad():
            nn.init.trunc_normal_(self.predictor.mask_token, std=config.initializer_range)
            if self.target_encoder is not None:
                self.target_encoder.load_state_dict(self.encoder.state_dict())

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, ImageJepaModel):
            module._init_weights(module)

    def forward(
        self,
        pixel_values: Tensor,
        context_mask: Tensor,
        target_mask: Tensor | list[Tensor],
    ) -> ImageJepaPreTrainingOutput:
        """pixel_values (B,C,H,W); context_mask (B,K); target_mask (B,M), (P,B,M) or a list of P (B,M) tensors."""
        targets_list = list(target_mask) if (isinstance(target_mask, (list, tuple)) or target_mask.dim() == 3) \
            else [target_mask]
        target_net = self.target_encoder if self.target_encoder is not None else self.encoder
        with torch.set_grad_enabled(self.target_encoder is None and torch.is_grad_enabled()):
            h = target_net(pixel_values).last_hidden_state  # (B, N, D)
            h = F.layer_norm(h, (h.shape[-1],))
            targets = torch.cat([gather_tokens(h, m) for m in targets_list], dim=0)  # (P*B, M, D)
        z = self.encoder(pixel_values, context_mask=context_mask).last_hidden_state  # (B, K, D)
        preds = torch.cat([self.predictor(z, context_mask, m) for m in targets_list], dim=0)  # (P*B, M, D)
        return ImageJepaPreTrainingOutput(predictions=preds, targets=targets, context_states=z, target_states=h)


class ImageJepaForImageClassification(FrozenEncoderClassifier, ImageJepaPreTrainedModel):
    """I-JEPA image classifier: `ImageJepaModel` + `probe` (`config.probe_type`) on frozen features.

    `model(pixel_values (B, C, H, W), labels=None | (B,) long)`
    -> `.logits (B, num_labels)`, `.loss` with labels.
    The encoder is frozen by default (`config.freeze_encoder`: no gradients, kept in eval mode). It is called
    `target_encoder` as in the pretraining model, so `from_pretrained` of a pretraining folder loads the EMA target
    encoder (Meta probes it) and that of an encoder folder loads it too; the probe is then newly initialised.
    """

    _auto_class = "AutoModelForImageClassification"
    _keys_to_ignore_on_load_unexpected = [r"^encoder\.", r"^predictor\."]

    def __init__(self, config: ImageJepaConfig) -> None:
        super().__init__(config)
        self._init_classifier(ImageJepaModel(config))

    def forward(
        self,
        pixel_values: Tensor,
        labels: Tensor | None = None,
        attention_mask: Tensor | None = None,
        output_hidden_states: bool = False,
        return_dict: bool = True,
    ) -> ImageClassifierOutput | tuple:
        """Classify images.

        Args:
            pixel_values: (B, C, H, W) images.
            labels: (B,) class ids in [0, num_labels); gives `.loss` (cross-entropy).
            attention_mask: (B, N) probe token mask, 1 = real token, 0 = padding (e.g. tokens of padded frames);
                padded tokens get no weight in the probe.
            output_hidden_states: also return the encoder's per-block (B, N, D) states.

        Returns:
            ImageClassifierOutput with `logits` (B, num_labels), `loss` (with labels), `hidden_states`.
        """
        return self._classify(pixel_values, labels, attention_mask, output_hidden_states, return_dict)


__all__ = [
    "ImageJepaForImageClassification",
    "ImageJepaForPreTraining",
    "ImageJepaModel",
    "ImageJepaModelOutput",
    "ImageJepaPreTrainedModel",
    "ImageJepaPreTrainingOutput",
    "ImageJepaPredictor",
]
