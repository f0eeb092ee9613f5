"""Probes on frozen JEPA features: Meta's attentive probe and a linear probe on mean-pooled tokens.

Reads bottom-up: `AttentiveProbe` = `AttentivePooler` (learnable query token(s); optional self-attention layers over
the tokens; one cross-attention layer: LayerNorm on the tokens, q from the queries and k/v from the tokens, no
output projection, residual, LayerNorm + MLP, residual) + a linear classifier. This is Meta's `AttentiveClassifier`
(facebookresearch/vjepa2 src/models/attentive_pooler.py: `depth` = 1 + `num_self_attention_layers`) with the
parameter names of transformers' `VJEPA2AttentivePooler` (`num_pooler_layers` = `num_self_attention_layers`), so the
classifier weights of `facebook/vjepa2-*-ssv2`-style checkpoints load by renaming `pooler.` -> `probe.pooler.` and
`classifier.` -> `probe.classifier.`. Meta's fused `kv` / `qkv` tensors are split by `hf_jepa.convert.classifier`.

`LinearProbe`: masked mean over tokens -> BatchNorm without affine -> Linear (MAE's linear-probe recipe: the
parameter-free BatchNorm standardises each feature over the data, which frozen features need to be linearly usable).

Both take `attention_mask` (B, N) with True / 1 for real tokens and False / 0 for padding: padded tokens get no
attention weight and do not enter the mean.

This file imports only torch and transformers: it travels to the Hub beside the weights (remote code).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.utils import ModelOutput

from .layers import Mlp, init_jepa_weights

PROBE_TYPES = ("attentive", "linear")


@dataclass
class ProbeOutput(ModelOutput):
    """Probe forward.

    Args:
        loss: scalar cross-entropy when `labels` were given.
        logits: (B, num_labels) class scores.
        pooled_output: (B, D) the pooled feature the classifier reads.
    """

    loss: Tensor | None = None
    logits: Tensor | None = None
    pooled_output: Tensor | None = None


def check_attention_mask(attention_mask: Tensor | None, batch_size: int, num_tokens: int) -> Tensor | None:
    """Validate a (B, N) token mask (1 / True = real token) and return it as bool; every row needs a real token."""
    if attention_mask is None:
        return None
    if attention_mask.shape != (batch_size, num_tokens):
        raise ValueError(f"attention_mask: expected shape (batch, tokens) = {(batch_size, num_tokens)}, "
                         f"got {tuple(attention_mask.shape)}")
    mask = attention_mask.bool()
    if not bool(mask.any(dim=1).all()):
        rows = (~mask.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"attention_mask: rows {rows[:8]} mask every token; each sample needs at least one token")
    return mask


def check_labels(labels: Tensor, num_labels: int) -> None:
    """Raise a clear ValueError unless `labels` (B,) are integer class ids in [0, num_labels)."""
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels: expected integer class ids, got dtype {labels.dtype}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_labels):
        bad = labels[(labels < 0) | (labels >= num_labels)]
        raise ValueError(f"labels: got class id {int(bad[0])}, expected ids in [0, num_labels={num_labels})")


PoolerMLP = Mlp  # fc1 -> GELU -> fc2: the names of transformers' `VJEPA2MLP` and Meta's `MLP`


def _key_padding(mask: Tensor | None) -> Tensor | None:
    """(B, N) bool token mask -> (B, 1, 1, N) SDPA mask (True = attend), broadcast over heads and queries."""
    return None if mask is None else mask[:, None, None, :]


class PoolerCrossAttention(nn.Module):
    """Queries attend to tokens: separate q/k/v projections and no output projection (as Meta and transformers)."""

    def __init__(self, dim: int, num_heads: int, *, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"probe hidden size {dim} is not divisible by probe_num_attention_heads={num_heads}")
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim, bias=qkv_bias)
        self.k_proj = nn.Linear(dim, dim, bias=qkv_bias)
        self.v_proj = nn.Linear(dim, dim, bias=qkv_bias)

    def forward(self, queries: Tensor, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        """queries (B, Q, D), tokens (B, N, D), mask (B, N) bool True = real token -> (B, Q, D)."""
        b, nq, d = queries.shape
        q = self.q_proj(queries).unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # (B, h, Q, d/h)
        k = self.k_proj(tokens).unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # (B, h, N, d/h)
        v = self.v_proj(tokens).unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # (B, h, N, d/h)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=_key_padding(mask))  # (B, h, Q, d/h)
        return out.transpose(1, 2).reshape(b, nq, d)  # (B, Q, h*d/h)


class PoolerSelfAttention(PoolerCrossAttention):
    """Self-attention over the tokens: the cross-attention with queries = tokens, plus an output projection."""

    def __init__(self, dim: int, num_heads: int, *, qkv_bias: bool = True) -> None:
        super().__init__(dim, num_heads, qkv_bias=qkv_bias)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """x (B, N, D), mask (B, N) bool -> (B, N, D); padded tokens are not attended to."""
        return self.out_proj(super().forward(x, x, mask))


class PoolerSelfAttentionLayer(nn.Module):
    """Pre-norm transformer layer over the tokens (Meta's pooler `Block`, transformers' self-attention layer)."""

    def __init__(self, dim: int, num_heads: int, hidden_dim: int, *, layer_norm_eps: float, qkv_bias: bool) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.self_attn = PoolerSelfAttention(dim, num_heads, qkv_bias=qkv_bias)
        self.layer_norm2 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.mlp = PoolerMLP(dim, hidden_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x (B, N, D) -> (B, N, D)."""
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class PoolerCrossAttentionLayer(nn.Module):
    """`q + xattn(q, norm1(tokens))`, then `q + mlp(norm2(q))`: the queries are not normalised (Meta's block)."""

    def __init__(self, dim: int, num_heads: int, hidden_dim: int, *, layer_norm_eps: float, qkv_bias: bool) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.cross_attn = PoolerCrossAttention(dim, num_heads, qkv_bias=qkv_bias)
        self.layer_norm2 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.mlp = PoolerMLP(dim, hidden_dim)

    def forward(self, queries: Tensor, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        """queries (B, Q, D), tokens (B, N, D) -> (B, Q, D)."""
        q = queries + self.cross_attn(queries, self.layer_norm1(tokens), mask)
        return q + self.mlp(self.layer_norm2(q))


class AttentivePooler(nn.Module):
    """Learnable query token(s) cross-attending to the (optionally self-attended) tokens: (B, N, D) -> (B, Q, D)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        hidden_dim: int,
        *,
        num_queries: int = 1,
        num_self_attention_layers: int = 0,
        layer_norm_eps: float = 1e-6,
        qkv_bias: bool = True,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        self.init_std = init_std
        self.query_tokens = nn.Parameter(torch.zeros(1, num_queries, dim))
        self.self_attention_layers = nn.ModuleList(
            PoolerSelfAttentionLayer(dim, num_heads, hidden_dim, layer_norm_eps=layer_norm_eps, qkv_bias=qkv_bias)
            for _ in range(num_self_attention_layers)
        )
        self.cross_attention_layer = PoolerCrossAttentionLayer(dim, num_heads, hidden_dim,
                                                               layer_norm_eps=layer_norm_eps, qkv_bias=qkv_bias)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Meta's init: trunc-normal(std) linears and queries, zero biases, unit LayerNorms; the output projections
        of self-attention layer i (1-based) and its MLP's fc2 use std / sqrt(2 i), the cross-attention MLP's fc2
        std / sqrt(2 * max(1, layers)) (Meta's `_rescale_blocks`, written as a scaled std like transformers so it
        composes with transformers' skip-loaded-weights init).
        """
        for module in self.modules():
            init_jepa_weights(module, self.init_std)
        nn.init.trunc_normal_(self.query_tokens, std=self.init_std)
        for i, layer in enumerate(self.self_attention_layers, start=1):
            nn.init.trunc_normal_(layer.self_attn.out_proj.weight, std=self.init_std / math.sqrt(2.0 * i))
            nn.init.trunc_normal_(layer.mlp.fc2.weight, std=self.init_std / math.sqrt(2.0 * i))
        last = max(1, len(self.self_attention_layers))
        nn.init.trunc_normal_(self.cross_attention_layer.mlp.fc2.weight, std=self.init_std / math.sqrt(2.0 * last))

    def forward(self, hidden_states: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """hidden_states (B, N, D), attention_mask (B, N) 1 = real token -> (B, Q, D)."""
        mask = check_attention_mask(attention_mask, hidden_states.shape[0], hidden_states.shape[1])
        x = hidden_states
        for layer in self.self_attention_layers:
            x = layer(x, mask)
        queries = self.query_tokens.expand(x.shape[0], -1, -1)  # (B, Q, D)
        return self.cross_attention_layer(queries, x, mask)


def _classifier(hidden_size: int, num_labels: int, init_std: float) -> nn.Linear:
    """The probes' last layer: Linear with trunc-normal(std) weights and zero bias."""
    classifier = nn.Linear(hidden_size, num_labels)
    with torch.no_grad():
        nn.init.trunc_normal_(classifier.weight, std=init_std)
        nn.init.zeros_(classifier.bias)
    return classifier


def _probe_output(logits: Tensor, pooled: Tensor, labels: Tensor | None) -> ProbeOutput:
    """`ProbeOutput` with the cross-entropy loss when `labels` (B,) are given."""
    if labels is None:
        return ProbeOutput(logits=logits, pooled_output=pooled)
    check_labels(labels, logits.shape[-1])
    return ProbeOutput(loss=F.cross_entropy(logits.float(), labels.long()), logits=logits, pooled_output=pooled)


class AttentiveProbe(nn.Module):
    """Meta's attentive classifier: `AttentivePooler` -> mean over the Q queries (Q=1: Meta's squeeze) -> Linear.

    `pooler_options`: the keyword options of `AttentivePooler` (num_queries, num_self_attention_layers,
    layer_norm_eps, qkv_bias).
    """

    def __init__(self, hidden_size: int, num_labels: int, *, num_heads: int, intermediate_size: int,
                 init_std: float = 0.02, **pooler_options: Any) -> None:
        super().__init__()
        self.pooler = AttentivePooler(hidden_size, num_heads, intermediate_size, init_std=init_std, **pooler_options)
        self.classifier = _classifier(hidden_size, num_labels, init_std)

    def forward(self, hidden_states: Tensor, attention_mask: Tensor | None = None,
                labels: Tensor | None = None) -> ProbeOutput:
        """hidden_states (B, N, D), attention_mask (B, N), labels (B,) -> logits (B, num_labels)."""
        pooled = self.pooler(hidden_states, attention_mask).mean(dim=1)  # (B, Q, D) -> (B, D)
        return _probe_output(self.classifier(pooled), pooled, labels)


class LinearProbe(nn.Module):
    """Masked mean over tokens -> BatchNorm1d(affine=False) -> Linear: (B, N, D) -> (B, num_labels).

    The BatchNorm (MAE, He et al. 2022, Sec. A.2) has running statistics but no parameters: in eval mode the probe is
    exactly a linear function of the pooled features. Training batches need >= 2 samples.
    """

    def __init__(self, hidden_size: int, num_labels: int, *, init_std: float = 0.02) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(hidden_size, affine=False)
        self.classifier = _classifier(hidden_size, num_labels, init_std)

    def forward(self, hidden_states: Tensor, attention_mask: Tensor | None = None,
                labels: Tensor | None = None) -> ProbeOutput:
        """hidden_states (B, N, D), attention_mask (B, N), labels (B,) -> logits (B, num_labels)."""
        mask = check_attention_mask(attention_mask, hidden_states.shape[0], hidden_states.shape[1])
        if mask is None:
            pooled = hidden_states.mean(dim=1)  # (B, D)
        else:
            weights = mask.to(hidden_states.dtype)[..., None]  # (B, N, 1)
            pooled = (hidden_states * weights).sum(dim=1) / weights.sum(dim=1)  # (B, D)
        return _probe_output(self.classifier(self.norm(pooled)), pooled, labels)


def build_probe(probe_type: str, hidden_size: int, num_labels: int, *, num_heads: int = 1,
                intermediate_size: int | None = None, init_std: float = 0.02,
                **pooler_options: Any) -> AttentiveProbe | LinearProbe:
    """A probe by name: 'attentive' (`AttentiveProbe`) or 'linear' (`LinearProbe`) over (B, N, hidden_size) tokens.

    `intermediate_size` defaults to 4 * hidden_size (Meta's mlp_ratio 4). `num_heads`, `intermediate_size` and
    `pooler_options` (num_queries, num_self_attention_layers, layer_norm_eps, qkv_bias: `AttentivePooler`'s) are the
    attentive probe's; the linear probe ignores them.
    """
    if probe_type not in PROBE_TYPES:
        raise ValueError(f"probe_type={probe_type!r}: expected one of {list(PROBE_TYPES)}")
    if num_labels < 1:
        raise ValueError(f"num_labels={num_labels}: expected a positive integer")
    if probe_type == "linear":
        return LinearProbe(hidden_size, num_labels, init_std=init_std)
    return AttentiveProbe(hidden_size, num_labels, num_heads=num_heads,
                          intermediate_size=intermediate_size or 4 * hidden_size, init_std=init_std, **pooler_options)


def build_probe_from_config(config) -> AttentiveProbe | LinearProbe:  # noqa: ANN001 -- any JEPA config
    """The probe a classification config describes (`probe_*` fields, `num_labels`, `hidden_size`)."""
    return build_probe(config.probe_type, config.hidden_size, config.num_labels,
                       num_heads=config.probe_num_attention_heads, intermediate_size=config.probe_intermediate_size,
                       num_queries=config.probe_num_queries,
                       num_self_attention_layers=config.probe_num_self_attention_layers,
                       layer_norm_eps=config.probe_layer_norm_eps, qkv_bias=True,
                       init_std=config.initializer_range)


class FrozenEncoderClassifier:
    """Mixin for the `*For*Classification` models: an encoder called `target_encoder` as in the pretraining model,
    so `from_pretrained` of a pretraining folder loads the EMA target encoder (Meta probes it) and that of an
    encoder folder loads it too (the probe is then newly initialised), + `probe` (`config.probe_type`); the encoder
    is frozen by default (`config.freeze_encoder`: no gradients, kept in eval mode). Put it before the
    `PreTrainedModel` base."""

    # Loading out of a pretraining folder: the context encoder and predictor are expected extras.
    _keys_to_ignore_on_load_unexpected = [r"^encoder\.", r"^predictor\."]

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, AttentivePooler):
            module.reset_parameters()

    def _init_classifier(self, encoder: nn.Module) -> None:
        """Call from `__init__` after `super().__init__(config)`: builds the probe and runs `post_init`."""
        self.num_labels = self.config.num_labels
        self.target_encoder = encoder
        self.probe = build_probe_from_config(self.config)
        self.post_init()
        if self.config.freeze_encoder:
            self.target_encoder.requires_grad_(False)

    def train(self, mode: bool = True) -> FrozenEncoderClassifier:
        """Train mode for the probe; a frozen encoder stays in eval mode (no drop path) without gradients.

        `from_pretrained` ends with `.eval()`, which re-freezes the loaded encoder parameters here.
        """
        super().train(mode)
        if self.config.freeze_encoder:
            self.target_encoder.eval().requires_grad_(False)
        return self

    def _classify(self, pixels: Tensor, labels: Tensor | None, attention_mask: Tensor | None,
                  output_hidden_states: bool, return_dict: bool,
                  output_attentions: bool | None = None) -> ImageClassifierOutput | tuple:
        """Encoder (without gradients when frozen) -> probe: the `forward` of the classification models.

        Args:
            pixels: the encoder's input: (B, C, H, W) images or (B, T, C, H, W) videos.
            labels: (B,) class ids in [0, num_labels); gives `.loss` (cross-entropy).
            attention_mask: (B, N) probe token mask, 1 = real token, 0 = padding (e.g. tokens of padded frames);
                padded tokens get no weight in the probe.
            output_hidden_states: also return the encoder's per-block (B, N, D) states.
            return_dict: False returns the tuple of the non-None outputs.
            output_attentions: also return the encoder's per-block (B, heads, N, N) attention probabilities
                (default `config.output_attentions`).

        Returns:
            ImageClassifierOutput with `logits` (B, num_labels), `loss` (with labels), `hidden_states`, `attentions`.
        """
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_encoder):
            encoded = self.target_encoder(pixels, output_hidden_states=output_hidden_states,
                                          output_attentions=output_attentions)
        out = self.probe(encoded.last_hidden_state, attention_mask=attention_mask, labels=labels)
        if not return_dict:
            return tuple(v for v in (out.loss, out.logits, encoded.hidden_states, encoded.attentions) if v is not None)
        return ImageClassifierOutput(loss=out.loss, logits=out.logits, hidden_states=encoded.hidden_states,
                                     attentions=encoded.attentions)


__all__ = [
    "PROBE_TYPES",
    "AttentivePooler",
    "AttentiveProbe",
    "FrozenEncoderClassifier",
    "LinearProbe",
    "ProbeOutput",
    "build_probe",
    "build_probe_from_config",
    "check_attention_mask",
    "check_labels",
]
