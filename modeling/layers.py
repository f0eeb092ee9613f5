"""Shared transformer blocks for the JEPA families.

Read bottom-up: `Block` = pre-norm `Attention` + `Mlp` with optional `DropPath`; `Attention` is the one attention
path of the project (fused qkv, optional rotary embedding from `positions`, optional KV cache, then the kernel that
`config._attn_implementation` names, dispatched through transformers' `ALL_ATTENTION_FUNCTIONS`: "sdpa" by default,
"eager", "flash_attention_*", "flex_attention"); the helpers above it build patch embeddings. Below the blocks: what the
families' models share (`build_blocks` from a config, Meta's init, `JepaPreTrainedModel`, the pretraining mixin, the
encoder output, input checks).

This file imports only torch and transformers: it travels to the Hub beside the weights (remote code).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

from .positions import RotaryTables, rotate_pairs

# ----------------------------------------------------------------------------------------------------------------
# Embeddings
# ----------------------------------------------------------------------------------------------------------------


class PatchEmbed2D(nn.Module):
    """Image -> patch tokens with a strided Conv2d: (B, C, H, W) -> (B, H/p * W/p, D)."""

    def __init__(self, patch_size: int, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, D, h, w) -> (B, h*w, D)


class PatchEmbed3D(nn.Module):
    """Video -> tubelet tokens with a strided Conv3d: (B, C, T, H, W) -> (B, T/t * H/p * W/p, D)."""

    def __init__(self, patch_size: int, tubelet_size: int, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_channels, embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, D, t, h, w) -> (B, t*h*w, D)


# ----------------------------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------------------------


class KVCache:
    """Per-layer key/value cache for autoregressive rollouts.

    `keys[i]` / `values[i]`: (B, heads, L, head_dim) for layer i, where L counts the cached tokens.

    With `capacity` (tokens), each layer's buffers are allocated once at (B, heads, capacity, head_dim) on the first
    update and new tokens are written in place; `keys[i]` is then a view of the filled part. Without it, every
    update concatenates (an O(L) copy per step and layer).
    """

    def __init__(self, num_layers: int, capacity: int | None = None) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity={capacity}: expected a positive number of tokens or None")
        self.capacity = capacity
        self.keys: list[Tensor | None] = [None] * num_layers
        self.values: list[Tensor | None] = [None] * num_layers
        self._buffers: list[tuple[Tensor, Tensor] | None] = [None] * num_layers

    @property
    def length(self) -> int:
        """Number of cached tokens (0 when empty)."""
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append (B, heads, n, d) keys/values of `layer`; return the full (B, heads, L + n, d) pair."""
        old = 0 if self.keys[layer] is None else self.keys[layer].shape[2]
        new = old + k.shape[2]
        if self.capacity is None or new > self.capacity:
            if self.capacity is not None:
                raise ValueError(f"KVCache: {new} tokens exceed capacity={self.capacity}")
            if self.keys[layer] is not None:
                k = torch.cat([self.keys[layer], k], dim=2)
                v = torch.cat([self.values[layer], v], dim=2)
            self.keys[layer], self.values[layer] = k, v
            return k, v
        if self._buffers[layer] is None:
            shape = (k.shape[0], k.shape[1], self.capacity, k.shape[3])
            self._buffers[layer] = (k.new_empty(shape), v.new_empty(shape))  # (B, heads, capacity, d) each
        kbuf, vbuf = self._buffers[layer]
        kbuf[:, :, old:new] = k
        vbuf[:, :, old:new] = v
        self.keys[layer], self.values[layer] = kbuf[:, :, :new], vbuf[:, :, :new]  # (B, heads, L + n, d) views
        return self.keys[layer], self.values[layer]

    def expand(self, batch_size: int) -> KVCache:
        """A cache whose batch-1 entries are broadcast to `batch_size` (e.g. one shared history, many plan samples).

        Without `capacity` the entries are broadcast views (the next update's concatenation materialises them);
        with it, each layer gets (batch_size, heads, capacity, d) buffers holding copies of the filled part, so
        later updates keep writing in place per sample.
        """
        out = KVCache(len(self.keys), capacity=self.capacity)
        for i, (k, v) in enumerate(zip(self.keys, self.values, strict=True)):
            if k is None:
                continue
            if k.shape[0] != 1:
                raise ValueError(f"KVCache.expand: layer {i} holds batch {k.shape[0]}; expected 1")
            if self.capacity is None:
                out.keys[i], out.values[i] = k.expand(batch_size, -1, -1, -1), v.expand(batch_size, -1, -1, -1)
                continue
            shape = (batch_size, k.shape[1], self.capacity, k.shape[3])
            kbuf, vbuf = k.new_empty(shape), v.new_empty(shape)  # (B, heads, capacity, d) each
            kbuf[:, :, : k.shape[2]] = k  # broadcast copy of the shared prefix
            vbuf[:, :, : v.shape[2]] = v
            out._buffers[i] = (kbuf, vbuf)
            out.keys[i], out.values[i] = kbuf[:, :, : k.shape[2]], vbuf[:, :, : v.shape[2]]
        return out


def eager_attention_forward(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[Tensor, Tensor]:
    """Attention written out (transformers' "eager" kernel, and the one that returns the probabilities).

    query: (B, h, N, d); key, value: (B, h, L, d); attention_mask: bool (N, L) / (B, 1, N, L) with True = attend, or
    an additive float mask of those shapes. Returns the output (B, N, h, d) and the probabilities (B, h, N, L), whose
    rows sum to 1 (softmax in float32, cast back to the query dtype, as transformers does).
    """
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling  # (B, h, N, L)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)  # (B, h, N, L)
    weights = F.dropout(weights, p=dropout, training=module.training)
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()  # (B, h, N, d) -> (B, N, h, d)
    return out, weights


def _mask_for(attn_implementation: str, attn_mask: Tensor | None, batch_size: int) -> Tensor | None:
    """The bool (N, L) keep-mask in the form the kernel `attn_implementation` reads: SDPA and eager take it as is;
    flex attention adds a (B, 1, N, L) float mask to its scores; flash attention has no such mask (ValueError)."""
    if attn_mask is None:
        return None
    if "flash" in attn_implementation:
        raise ValueError(f"attn_implementation={attn_implementation!r}: expected 'sdpa', 'eager' or 'flex_attention' "
                         "for attention with a mask (e.g. the action-conditioned predictor's block-causal mask); "
                         "flash attention kernels take no arbitrary (N, L) mask")
    if attn_implementation == "flex_attention":
        additive = torch.zeros(attn_mask.shape, dtype=torch.float32, device=attn_mask.device)
        additive = additive.masked_fill(~attn_mask, float("-inf"))  # (N, L): 0 = attend, -inf = masked
        return additive.expand(batch_size, 1, *attn_mask.shape)  # (B, 1, N, L)
    return attn_mask


class Attention(nn.Module):
    """Multi-head self-attention: fused qkv -> optional RoPE -> optional KV cache -> attention kernel -> projection.

    The kernel is `config._attn_implementation` looked up in transformers' `ALL_ATTENTION_FUNCTIONS` ("eager" is
    `eager_attention_forward`); without a config (a block built on its own) it is "sdpa". `build_blocks` passes the
    model's config, whose `_attn_implementation` `from_pretrained(..., attn_implementation=...)` and
    `model.set_attn_implementation(...)` set.
    """

    is_causal = False  # read by transformers' kernels: bidirectional (masks are passed explicitly)

    def __init__(self, dim: int, num_heads: int, *, qkv_bias: bool = True, attn_drop: float = 0.0,
                 config: Any = None) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"hidden size {dim} is not divisible by num_attention_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scaling = 1.0 / math.sqrt(self.head_dim)  # equals SDPA's default scale bit for bit
        self.attn_drop = attn_drop
        self.config = config
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    @property
    def attn_implementation(self) -> str:
        """The kernel this layer runs: the config's `_attn_implementation`, "sdpa" without one."""
        impl = getattr(self.config, "_attn_implementation", None)
        return impl if impl is not None else "sdpa"

    def forward(
        self,
        x: Tensor,
        *,
        rope: RotaryTables | None = None,
        attn_mask: Tensor | None = None,
        kv_cache: KVCache | None = None,
        layer_idx: int = 0,
        attentions: list[Tensor] | None = None,
    ) -> Tensor:
        """x: (B, N, C); rope: tables (N or B,N, head_dim); attn_mask: bool (N, L) True = attend. -> (B, N, C).

        q, k and v stay views of the fused projection (B, N, 3, heads, d): RoPE rotates q and k in one pass and
        the kernel reads strided (B, heads, N, d) views, so no per-tensor transposes are copied.

        attentions: when a list is given, this layer's (B, heads, N, L) attention probabilities are appended to it;
            they are computed by `eager_attention_forward` whatever the configured kernel (only the written-out
            attention materialises them; it agrees with SDPA to float rounding).
        """
        B, N, C = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim)  # (B, N, 3, h, d)
        if rope is not None:
            qk = rotate_pairs(qkv[:, :, :2], rope)  # (B, N, 2, h, d)
            q, k = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2)  # (B, h, N, d) each
        else:
            q, k = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)  # (B, h, N, d) each
        v = qkv[:, :, 2].transpose(1, 2)  # (B, h, N, d)
        if kv_cache is not None:
            k, v = kv_cache.update(layer_idx, k, v)
        dropout = self.attn_drop if self.training else 0.0
        impl = "eager" if attentions is not None else self.attn_implementation
        kernel = ALL_ATTENTION_FUNCTIONS.get_interface(impl, eager_attention_forward)
        x, weights = kernel(self, q, k, v, _mask_for(impl, attn_mask, B), dropout=dropout, scaling=self.scaling,
                            is_causal=False)  # (B, N, h, d)
        if attentions is not None:
            attentions.append(weights)
        x = x.reshape(B, N, C)  # (B, N, h*d)
        return self.proj(x)


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth per sample on the residual branch (identity at eval or p=0)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)  # (B, 1, 1)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Block(GradientCheckpointingLayer):
    """Pre-norm transformer block: `x + attn(norm1(x))`, then `x + mlp(norm2(x))`."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        intermediate_size: int,
        *,
        qkv_bias: bool = True,
        layer_norm_eps: float = 1e-6,
        drop_path: float = 0.0,
        attn_drop: float = 0.0,
        config: Any = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, config=config)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.mlp = Mlp(dim, intermediate_size)

    def forward(self, x: Tensor, **attn_kwargs: Any) -> Tensor:
        """x: (B, N, C) -> (B, N, C); `attn_kwargs` (rope, attn_mask, kv_cache, layer_idx, attentions) go to
        `Attention`."""
        y = self.attn(self.norm1(x), **attn_kwargs)
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


def build_blocks(config: Any, prefix: str = "") -> nn.ModuleList:
    """The blocks a config describes: `prefix=""` the encoder's, `"predictor_"` the predictor's.

    Sizes come from `{prefix}num_hidden_layers`, `{prefix}hidden_size`, `{prefix}num_attention_heads` and
    `{prefix}intermediate_size`; `qkv_bias` and `layer_norm_eps` are shared. Stochastic depth rises linearly from 0
    to `config.drop_path_rate` over the blocks (Meta's rule). Each block's attention reads the kernel from
    `config._attn_implementation`.
    """
    depth = getattr(config, f"{prefix}num_hidden_layers")
    dim, heads = getattr(config, f"{prefix}hidden_size"), getattr(config, f"{prefix}num_attention_heads")
    hidden = getattr(config, f"{prefix}intermediate_size")
    rate = config.drop_path_rate
    rates = torch.linspace(0, rate, depth).tolist() if depth > 1 else [rate]
    return nn.ModuleList(
        Block(dim, heads, hidden, qkv_bias=config.qkv_bias, layer_norm_eps=config.layer_norm_eps, drop_path=r,
              config=config)
        for r in rates
    )


def init_jepa_weights(module: nn.Module, std: float, *, conv: bool = True) -> None:
    """Meta's init: truncated-normal(std) linear (and, with `conv`, conv) weights, zero biases, unit LayerNorms.
    `conv=False` is I-JEPA's `init_model`, which leaves the patch embedding as constructed."""
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv3d) if conv else nn.Linear):
        nn.init.trunc_normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def rescale_blocks(blocks: nn.ModuleList) -> None:
    """Meta's `fix_init_weight`: divide each block's output projections by sqrt(2 * layer_id)."""
    with torch.no_grad():
        for layer_id, block in enumerate(blocks, start=1):
            block.attn.proj.weight.div_(math.sqrt(2.0 * layer_id))
            block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer_id))


def with_encoder_as_target(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """A pretraining state dict without an EMA target (SIGReg) plus a copy of `encoder.*` as `target_encoder.*`.

    The encoder classes load `target_encoder.*` out of a pretraining folder (`base_model_prefix`); without an EMA
    target the trained encoder is the online `encoder`, so it is exported under that prefix too. Copies are cloned:
    safetensors refuses aliased tensors. A dict that already has `target_encoder.*` keys is returned unchanged.
    """
    if any(key.startswith("target_encoder.") for key in state_dict):
        return state_dict
    out = dict(state_dict)
    for key, value in state_dict.items():
        if key.startswith("encoder."):
            out["target_" + key] = value.detach().clone()
    return out


class JepaPreTrainingMixin:
    """Mixin for the `*ForPreTraining` models: a context `encoder`, an EMA `target_encoder` (None without one) and a
    `predictor`; the layer-normed target features; and, without an EMA target (SIGReg), `save_pretrained` also
    writes the online encoder as `target_encoder.*` (`base_model_prefix`), so `AutoModel` and the classifiers load
    the trained encoder. Put it before the `PreTrainedModel` base."""

    # That `target_encoder.*` copy is an expected extra when the class is loaded without a target encoder.
    _keys_to_ignore_on_load_unexpected = [r"^target_encoder\."]

    def _init_pretraining(self, encoder: nn.Module, predictor: nn.Module) -> None:
        """Call from `__init__` after `super().__init__(config)`: stores the modules, the target encoder as a copy
        of the encoder (`config.use_ema_target`), runs `post_init` and Meta's rescaling of the predictor blocks."""
        self.encoder = encoder
        self.predictor = predictor
        self.target_encoder = None
        if self.config.use_ema_target:
            self.target_encoder = copy.deepcopy(self.encoder)
            self.target_encoder.requires_grad_(False)
        self.post_init()
        rescale_blocks(self.predictor.predictor_blocks)
        if self.target_encoder is not None:
            with torch.no_grad():
                self.target_encoder.load_state_dict(self.encoder.state_dict())

    def _target_states(self, pixels: Tensor) -> Tensor:
        """(B, N, D) layer-normed features of every token: the EMA target's without gradients, or without a target
        (SIGReg) the online encoder's, with gradients when they are enabled."""
        target_net = self.target_encoder if self.target_encoder is not None else self.encoder
        with torch.set_grad_enabled(self.target_encoder is None and torch.is_grad_enabled()):
            h = target_net(pixels).last_hidden_state  # (B, N, D)
            return F.layer_norm(h, (h.shape[-1],))

    def save_pretrained(self, save_directory: Any, **kwargs: Any) -> Any:
        if getattr(self, "target_encoder", None) is not None:
            return super().save_pretrained(save_directory, **kwargs)
        state_dict = kwargs.pop("state_dict", None)
        state_dict = with_encoder_as_target(state_dict if state_dict is not None else self.state_dict())
        return super().save_pretrained(save_directory, state_dict=state_dict, **kwargs)


class ChecksLoadedShapes:
    """Mixin for the `PreTrainedModel` bases: `from_pretrained` on weights whose tensor shapes differ from the
    config's raises a ValueError naming each key, the shape in the file and the shape expected (transformers logs
    them in its load report and raises a RuntimeError that names none). `ignore_mismatched_sizes=True` keeps
    transformers' behaviour (those tensors are re-initialised). Missing keys stay as in transformers: listed in the
    load report (a WARNING) and newly initialised, since a classifier loaded from an encoder folder has no probe
    weights yet. Put it before the `PreTrainedModel` base."""

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("ignore_mismatched_sizes"):
            return super().from_pretrained(*args, **kwargs)
        with_info = kwargs.pop("output_loading_info", False)
        kwargs["ignore_mismatched_sizes"] = True
        model, info = super().from_pretrained(*args, output_loading_info=True, **kwargs)
        mismatched = sorted(info.get("mismatched_keys") or ())
        if mismatched:
            source = args[0] if args else kwargs.get("pretrained_model_name_or_path")
            details = "; ".join(f"{key} has shape {tuple(found)} in the checkpoint, expected {tuple(expected)}"
                                for key, found, expected in mismatched[:8])
            more = f" (and {len(mismatched) - 8} more)" if len(mismatched) > 8 else ""
            raise ValueError(f"{cls.__name__}.from_pretrained({str(source)!r}): {details}{more}; the expected shapes "
                             "follow config.json (pass ignore_mismatched_sizes=True to re-initialise these tensors)")
        return (model, info) if with_info else model


@dataclass
class JepaEncoderOutput(ModelOutput):
    """Encoder output (each family subclasses it under its own name).

    Args:
        last_hidden_state: (B, K, D) features of the kept tokens (K = N, every token, without a mask), after the
            final norm.
        hidden_states: optional tuple of (B, K, D) per block output (before the final norm).
        attentions: optional tuple of (B, heads, K, K) attention probabilities per block (`output_attentions=True`);
            each row sums to 1.
    """

    last_hidden_state: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


class JepaPreTrainedModel(ChecksLoadedShapes, PreTrainedModel):
    """Weight init and loading glue of every JEPA model; a family's base adds `config_class`, `base_model_prefix`
    and `main_input_name`."""

    _auto_class = "AutoModel"  # save_pretrained copies these modeling files beside the weights
    supports_gradient_checkpointing = True
    _supports_sdpa = True  # the default kernel; "eager" always works
    _supports_flash_attn = True  # unmasked attention only (the encoders, the mask predictors)
    _supports_flex_attn = True
    _supports_attention_backend = True
    _no_split_modules = ["Block"]

    def _init_weights(self, module: nn.Module) -> None:
        init_jepa_weights(module, self.config.initializer_range)


def gather_tokens(x: Tensor, index: Tensor) -> Tensor:
    """Keep tokens `index` (B, K) long of x (B, N, D) -> (B, K, D) (Meta's `apply_masks` for one mask)."""
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def check_token_index(name: str, index: Tensor, batch_size: int, num_tokens: int) -> None:
    """Validate a (B, K) long index tensor of token positions in [0, num_tokens)."""
    if not isinstance(index, Tensor) or index.dim() != 2:
        shape = tuple(index.shape) if isinstance(index, Tensor) else type(index).__name__
        raise ValueError(f"{name}: expected a (batch, num_kept) long tensor of token indices, got {shape}")
    if index.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{name}: expected an integer (long) tensor of token indices, got dtype {index.dtype}")
    if index.shape[0] != batch_size:
        raise ValueError(f"{name}: batch size {index.shape[0]} does not match the input batch size {batch_size}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= num_tokens):
        raise ValueError(
            f"{name}: token indices must lie in [0, {num_tokens}) for this input, "
            f"got min {int(index.min())} and max {int(index.max())}"
        )


_AXIS_NAMES = {"B": "batch", "T": "frames", "C": "channels", "H": "height", "W": "width"}


def check_pixel_values(name: str, pixels: Tensor, axes: str, config: Any) -> None:
    """Validate a pixel batch laid out as `axes` ("BCHW" images, "BTCHW" videos) against the config: rank,
    `num_channels`, frames divisible by `tubelet_size` (videos), height and width divisible by `patch_size`."""
    if not isinstance(pixels, Tensor) or pixels.dim() != len(axes):
        got = tuple(pixels.shape) if isinstance(pixels, Tensor) else type(pixels).__name__
        raise ValueError(f"{name}: expected a ({', '.join(_AXIS_NAMES[a] for a in axes)}) tensor, got {got}")
    size = dict(zip(axes, pixels.shape, strict=True))
    if size["C"] != config.num_channels:
        raise ValueError(f"{name}: got {size['C']} channels, expected num_channels={config.num_channels}")
    if "T" in size and size["T"] % config.tubelet_size:
        raise ValueError(f"{name}: {size['T']} frames is not divisible by tubelet_size={config.tubelet_size}")
    if size["H"] % config.patch_size or size["W"] % config.patch_size:
        what = "frame" if "T" in size else "image"
        raise ValueError(f"{name}: {what} size {size['H']}x{size['W']} is not divisible by "
                         f"patch_size={config.patch_size}")


def check_predictor_masks(context_states: Tensor, context_mask: Tensor, target_mask: Tensor, num_tokens: int) -> None:
    """Validate a mask predictor's inputs: (B, K) context and (B, M) target indices in [0, num_tokens), K matching
    the (B, K, D) context states."""
    b, k, _ = context_states.shape
    check_token_index("context_mask", context_mask, b, num_tokens)
    check_token_index("target_mask", target_mask, b, num_tokens)
    if context_mask.shape[1] != k:
        raise ValueError(f"context_mask has {context_mask.shape[1]} indices but context_states has {k} tokens")
