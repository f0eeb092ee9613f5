"""Position encodings of the JEPA families: fixed sin-cos tables (I-JEPA) and Meta's 3-D rotary embedding (V-JEPA 2).

`sincos_2d` builds I-JEPA's absolute table; `rope_3d` turns (depth, height, width) token positions (`grid_positions`)
into the `RotaryTables` that `layers.Attention` applies to q and k with `rotate_pairs`; `apply_rope` is the textbook
rotation kept as its reference.

This file imports only torch: it travels to the Hub beside the weights (remote code).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


def sincos_1d(embed_dim: int, positions: Tensor) -> Tensor:
    """Fixed 1-D sin-cos table (MAE / I-JEPA): `[sin(p * w), cos(p * w)]`.

    Args:
        embed_dim: even output width D.
        positions: (M,) positions (any numeric dtype).

    Returns:
        (M, D) float64 table; callers cast.
    """
    if embed_dim % 2 != 0:
        raise ValueError(f"embed_dim={embed_dim}: expected an even number for a sin-cos table")
    omega = torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega  # (D/2,)
    out = positions.to(torch.float64).reshape(-1)[:, None] * omega[None, :]  # (M, D/2)
    return torch.cat([out.sin(), out.cos()], dim=1)  # (M, D)


def sincos_2d(embed_dim: int, grid_height: int, grid_width: int) -> Tensor:
    """Fixed 2-D sin-cos position table laid out as Meta's I-JEPA.

    Meta builds `np.meshgrid(grid_w, grid_h)` ("w goes first"), so the FIRST half of the channels encodes the
    column index and the second half the row index. Kept as is: released weights were trained with it.

    Returns:
        (grid_height * grid_width, embed_dim) float32, row-major over (row, column).
    """
    rows = torch.arange(grid_height).repeat_interleave(grid_width)  # (H*W,) row of each token
    cols = torch.arange(grid_width).repeat(grid_height)  # (H*W,) column of each token
    table = torch.cat([sincos_1d(embed_dim // 2, cols), sincos_1d(embed_dim // 2, rows)], dim=1)  # (H*W, D)
    return table.float()


def rope_axis_dim(head_dim: int) -> int:
    """Channels per rotated axis in Meta's 3-D RoPE: `2 * ((head_dim // 3) // 2)`; the rest stays unrotated."""
    return 2 * ((head_dim // 3) // 2)


def rope_3d_tables(positions: Tensor, head_dim: int, *, interleave_fix: bool = False) -> tuple[Tensor, Tensor]:
    """Cos/sin tables of Meta's V-JEPA 2 rotary embedding for (depth, height, width) positions.

    The head channels are split as `[depth | height | width | unrotated]`, `rope_axis_dim(head_dim)` each.
    Meta's quirk (kept by default because released weights depend on it): the per-axis frequency vector f (A/2,)
    is expanded to A channels with `.repeat(..., 2)` -> `[f, f]`, while the rotation pairs neighbouring channels
    `(2i, 2i+1)`; a textbook RoPE would use `repeat_interleave(2)`. `interleave_fix=True` selects the latter
    (facebookresearch/vjepa2 PR #15) for models trained from scratch with it.

    Args:
        positions: (..., N, 3) float positions (depth, height, width) per token.
        head_dim: attention head width.
        interleave_fix: use the textbook frequency layout instead of Meta's.

    Returns:
        cos, sin: (..., N, head_dim) each; unrotated channels have cos=1, sin=0 (an exact identity).
    """
    axis = rope_axis_dim(head_dim)
    omega = torch.arange(axis // 2, dtype=torch.float32, device=positions.device)
    omega /= axis / 2.0
    omega = 1.0 / 10000**omega  # (A/2,)
    cos_parts, sin_parts = [], []
    for i in range(3):
        freq = positions[..., i, None].float() * omega  # (..., N, A/2)
        if interleave_fix:
            freq = freq.repeat_interleave(2, dim=-1)  # (..., N, A)
        else:
            freq = torch.cat([freq, freq], dim=-1)  # (..., N, A) Meta's `.repeat(1, 1, 1, 2)`
        cos_parts.append(freq.cos())
        sin_parts.append(freq.sin())
    rest = head_dim - 3 * axis
    if rest > 0:
        shape = (*positions.shape[:-1], rest)
        cos_parts.append(torch.ones(shape, device=positions.device))
        sin_parts.append(torch.zeros(shape, device=positions.device))
    return torch.cat(cos_parts, dim=-1), torch.cat(sin_parts, dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate channel pairs `(2i, 2i+1)` of `x` (B, heads, N, d) by tables (N, d) or (B, N, d).

    The textbook form (Meta's `rotate_queries_or_keys`), kept as the reference of `rotate_pairs`.
    """
    if cos.dim() == 3:
        cos, sin = cos[:, None], sin[:, None]  # (B, 1, N, d) broadcast over heads
    pairs = x.unflatten(-1, (-1, 2))  # (B, heads, N, d/2, 2)
    rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)  # (B, heads, N, d)
    return x * cos + rotated * sin


class RotaryTables(NamedTuple):
    """Rotary tables in the form `Attention` applies them: two elementwise kernels for q and k together.

    `rotate(x) = x * cos + swap_pairs(x) * sin_alt`, where `swap_pairs` exchanges channels 2i and 2i+1 and
    `sin_alt` is `sin` with its even channels negated: the same products as `apply_rope` (a sign flip is exact).

    Attributes:
        cos: (N, d) shared by the batch, or (B, N, d) per sample.
        sin_alt: same shape as `cos`.
    """

    cos: Tensor
    sin_alt: Tensor


def rope_3d(positions: Tensor, head_dim: int, *, interleave_fix: bool = False) -> RotaryTables:
    """`rope_3d_tables` prepared once per forward for every block: positions (..., N, 3) -> `RotaryTables`."""
    cos, sin = rope_3d_tables(positions, head_dim, interleave_fix=interleave_fix)
    sign = torch.tensor([-1.0, 1.0], device=sin.device, dtype=sin.dtype).repeat(head_dim // 2)  # (d,)
    return RotaryTables(cos, sin * sign)


def rotate_pairs(x: Tensor, tables: RotaryTables) -> Tensor:
    """Apply rotary tables to `x` (B, N, ..., d) laid out token-major (e.g. the (B, N, 2, heads, d) q/k slice).

    Tables (N, d) or (B, N, d) are viewed as (N, 1.., d) / (B, N, 1.., d) to broadcast over the middle dims.
    Returns a new contiguous tensor shaped like `x`.
    """
    extra = x.dim() - 3  # middle dims between N and d
    cos = tables.cos.view(*tables.cos.shape[:-1], *([1] * extra), tables.cos.shape[-1])
    sin = tables.sin_alt.view(cos.shape)
    swapped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)  # (..., d): channels (2i+1, 2i)
    return torch.addcmul(x * cos, swapped, sin)


def grid_positions(token_ids: Tensor, grid_height: int, grid_width: int) -> Tensor:
    """Split flat token indices `t*H*W + h*W + w` into float (t, h, w) positions.

    Args:
        token_ids: (..., N) long.

    Returns:
        (..., N, 3) float32.
    """
    per_frame = grid_height * grid_width
    t = token_ids // per_frame
    h = (token_ids - t * per_frame) // grid_width
    w = token_ids - t * per_frame - h * grid_width
    return torch.stack([t, h, w], dim=-1).float()


def interpolate_grid_positions(positions: Tensor, grid_height: int, grid_width: int, reference_size: int) -> Tensor:
    """V-JEPA 2.1's RoPE interpolation: rescale height / width positions so a side spans `reference_size` positions.

    `h * (R - 1) / (H - 1)` and `w * (R - 1) / (W - 1)` (Meta's order of operations); time is never rescaled.

    Args:
        positions: (..., N, 3) float (t, h, w) positions on a (T, grid_height, grid_width) grid.
        reference_size: R, the side of the grid the model was trained on (Meta: 16 for patch 16).

    Returns:
        (..., N, 3) float32 positions.
    """
    for name, side in (("grid_height", grid_height), ("grid_width", grid_width)):
        if side < 2:
            raise ValueError(f"{name}={side}: RoPE interpolation divides by (side - 1); expected a grid of at "
                             "least 2 patches per side (or interpolate_rope=False)")
    t, h, w = positions.unbind(-1)
    h = h * (reference_size - 1) / (grid_height - 1)
    w = w * (reference_size - 1) / (grid_width - 1)
    return torch.stack([t, h, w], dim=-1)  # (..., N, 3)
