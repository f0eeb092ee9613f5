"""I-JEPA (Assran et al., 2023) as transformers models: encoder, predictor and the pretraining model.

Reads bottom-up: `ImageJepaForPreTraining` owns a context `encoder`, an EMA `target_encoder` (both
`ImageJepaModel`) and an `ImageJepaPredictor`. Numerically faithful to facebookresearch/ijepa in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.utils import ModelOutput

from .configuration_easy_ijepa import ImageJepaConfig
from .layers import (
    JepaEncoderOutput,
    JepaPreTrainedModel,
    JepaPreTrainingMixin,
    PatchEmbed2D,
    build_blocks,
    check_pixel_values,
    check_predictor_masks,
    check_token_index,
    gather_tokens,
    rescale_blocks,
)
from .positions import sincos_2d
from .probes import FrozenEncoderClassifier


@dataclass
class ImageJepaModelOutput(JepaEncoderOutput):
    """`ImageJepaModel`'s output: `last_hidden_state` (B, K, D), optional per-block `hidden_states` and
    (B, heads, K, K) `attentions`."""


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


class ImageJepaPreTrainedModel(JepaPreTrainedModel):
    """The base of the I-JEPA classes."""

    config_class = ImageJepaConfig
    base_model_prefix = "target_encoder"  # AutoModel on a pretraining folder loads the EMA target encoder
    main_input_name = "pixel_values"


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
        self.blocks = build_blocks(config)
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
        output_attentions: bool | None = None,
    ) -> ImageJepaModelOutput:
        """pixel_values (B, C, H, W); context_mask (B, K) indices of the tokens to keep -> (B, K or N, D).

        `output_attentions` (default `config.output_attentions`) also returns each block's (B, heads, K, K)
        attention probabilities, computed with the eager kernel."""
        check_pixel_values("pixel_values", pixel_values, "BCHW", self.config)
        b, _, h, w = pixel_values.shape
        gh, gw = h // self.config.patch_size, w // self.config.patch_size
        x = self.patch_embed(pixel_values.to(self.patch_embed.proj.weight.dtype))  # (B, N, D)
        x = x + self.position_table(gh, gw)
        if context_mask is not None:
            check_token_index("context_mask", context_mask, b, gh * gw)
            x = gather_tokens(x, context_mask)  # (B, K, D)
        hidden = []
        maps = [] if (self.config.output_attentions if output_attentions is None else output_attentions) else None
        for block in self.blocks:
            x = block(x, attentions=maps)
            if output_hidden_states:
                hidden.append(x)
        x = self.norm(x)
        return ImageJepaModelOutput(last_hidden_state=x, hidden_states=tuple(hidden) if output_hidden_states else None,
                                    attentions=tuple(maps) if maps is not None else None)


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
        self.predictor_blocks = build_blocks(config, "predictor_")
        self.predictor_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.predictor_proj = nn.Linear(d, config.hidden_size)

    def forward(self, context_states: Tensor, context_mask: Tensor, target_mask: Tensor, *,
                attentions: list[Tensor] | None = None) -> Tensor:
        """context_states (B, K, D), context_mask (B, K), target_mask (B, M) -> predictions (B, M, D).

        attentions: when a list is given, each block's (B, heads, K+M, K+M) attention probabilities are appended."""
        check_predictor_masks(context_states, context_mask, target_mask, self.predictor_pos_embed.shape[1])
        b, k, _ = context_states.shape
        pos = self.predictor_pos_embed.expand(b, -1, -1)  # (B, N, d)
        x = self.predictor_embed(context_states) + gather_tokens(pos, context_mask)  # (B, K, d)
        targets = self.mask_token + gather_tokens(pos, target_mask)  # (B, M, d)
        x = torch.cat([x, targets], dim=1)  # (B, K+M, d)
        for block in self.predictor_blocks:
            x = block(x, attentions=attentions)
        x = self.predictor_norm(x)[:, k:]  # (B, M, d)
        return self.predictor_proj(x)


class ImageJepaForPreTraining(JepaPreTrainingMixin, ImageJepaPreTrainedModel):
    """Context encoder + EMA target encoder + predictor (the I-JEPA training model).

    `AutoModel.from_pretrained` on a folder saved from this class loads the EMA target encoder (Meta evaluates it);
    without one (`use_ema_target=False`, SIGReg) it loads the trained online encoder, which `save_pretrained` then
    also writes as `target_encoder.*`.
    """

    _auto_class = "AutoModelForPreTraining"

    def __init__(self, config: ImageJepaConfig) -> None:
        super().__init__(config)
        self._init_pretraining(ImageJepaModel(config), ImageJepaPredictor(config))
        with torch.no_grad():
            nn.init.trunc_normal_(self.predictor.mask_token, std=config.initializer_range)

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
        h = self._target_states(pixel_values)  # (B, N, D)
        targets = torch.cat([gather_tokens(h, m) for m in targets_list], dim=0)  # (P*B, M, D)
        z = self.encoder(pixel_values, context_mask=context_mask).last_hidden_state  # (B, K, D)
        preds = torch.cat([self.predictor(z, context_mask, m) for m in targets_list], dim=0)  # (P*B, M, D)
        return ImageJepaPreTrainingOutput(predictions=preds, targets=targets, context_states=z, target_states=h)


class ImageJepaForImageClassification(FrozenEncoderClassifier, ImageJepaPreTrainedModel):
    """I-JEPA image classifier: `ImageJepaModel` + `probe` (`config.probe_type`), as `FrozenEncoderClassifier`.

    `model(pixel_values (B, C, H, W), labels=None | (B,) long)` -> `.logits (B, num_labels)`, `.loss` with labels.
    """

    _auto_class = "AutoModelForImageClassification"

    def __init__(self, config: ImageJepaConfig) -> None:
        super().__init__(config)
        self._init_classifier(ImageJepaModel(config))

    def forward(self, pixel_values: Tensor, labels: Tensor | None = None, attention_mask: Tensor | None = None,
                output_hidden_states: bool = False, return_dict: bool = True,
                output_attentions: bool | None = None) -> ImageClassifierOutput | tuple:
        """Classify (B, C, H, W) images; the arguments and outputs are `FrozenEncoderClassifier._classify`'s."""
        return self._classify(pixel_values, labels, attention_mask, output_hidden_states, return_dict,
                              output_attentions)


__all__ = [
    "ImageJepaForImageClassification",
    "ImageJepaForPreTraining",
    "ImageJepaModel",
    "ImageJepaModelOutput",
    "ImageJepaPreTrainedModel",
    "ImageJepaPreTrainingOutput",
    "ImageJepaPredictor",
]
