"""V-JEPA 2-AC: the action-conditioned world model (frozen V-JEPA 2 encoder + block-causal AC predictor).

Reads bottom-up: `JepaWorldModel` = frozen `VideoJepaModel` (`encode`: each frame duplicated into a tubelet,
latents layer-normed) + `ActionConditionedPredictor` (per step `[action, state, (extrinsics), H'*W' frame tokens]`,
block-causal attention built for the actual length, 3-D RoPE on frame tokens and depth-only RoPE on the
conditioning tokens as Meta does). `rollout` feeds predictions back autoregressively with a KV cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.utils import ModelOutput

from .configuration_easy_vjepa2_ac import JepaWorldModelConfig
from .layers import JepaPreTrainedModel, KVCache, build_blocks, rescale_blocks
from .modeling_easy_vjepa2 import VideoJepaModel, check_video
from .positions import rope_3d


@dataclass
class JepaWorldModelOutput(ModelOutput):
    """Training forward of the world model (Meta's teacher-forcing + rollout objective).

    Args:
        teacher_forced: (B, (T-1)*N, D) predictions of frames 1..T-1 from the true frames 0..T-2.
        rollout: (B, R*N, D) autoregressive predictions of frames 1..R (R = auto_steps) fed back step by step.
        targets: (B, (T-1)*N, D) encoder latents of frames 1..T-1.
        latents: (B, T*N, D) encoder latents of all frames.
    """

    teacher_forced: Tensor | None = None
    rollout: Tensor | None = None
    targets: Tensor | None = None
    latents: Tensor | None = None


def block_causal_mask(query_steps: Tensor, key_steps: Tensor) -> Tensor:
    """Bool (Nq, Nk) mask, True where a query token's step >= the key token's step (attend to the past and now)."""
    return query_steps[:, None] >= key_steps[None, :]


class ActionConditionedPredictor(nn.Module):
    """Meta's `VisionTransformerPredictorAC`, with the attention mask built for the actual length and a KV cache.

    `predictor(latents (B,T*N,D), actions (B,T,A), states (B,T,S))` -> (B, T*N, D): step t's frame outputs
    predict frame t+1 (raw: the world model layer-norms them when `normalize_latents`).
    """

    def __init__(self, config: JepaWorldModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.predictor_hidden_size
        self.predictor_embed = nn.Linear(config.encoder_config.hidden_size, d)
        self.action_encoder = nn.Linear(config.action_dim, d)
        self.state_encoder = nn.Linear(config.state_dim, d)
        self.extrinsics_encoder = nn.Linear(config.extrinsics_dim, d)  # exists even when unused, as in Meta's
        self.predictor_blocks = build_blocks(config, "predictor_")
        self.predictor_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.predictor_proj = nn.Linear(d, config.encoder_config.hidden_size)

    def _positions(self, num_steps: int, step_offset: int, grid: tuple[int, int], device: torch.device) -> Tensor:
        """(num_steps * (c + H'*W'), 3) float (t, h, w) positions: conditioning tokens at (t, 0, 0), whose zero
        angles leave the height/width channels unrotated exactly as Meta's depth-only rotation does; frame
        positions snapped to the config grid as Meta's `ACRoPEAttention` does (`h * grid_size / H`)."""
        gh, gw = grid
        c = self.config.conditioning_tokens
        side = self.config.frame_grid[0]
        steps = torch.arange(step_offset, step_offset + num_steps, device=device, dtype=torch.float32)
        rows = torch.arange(gh, device=device).repeat_interleave(gw).float() * (side / gh)  # (H'*W',)
        cols = torch.arange(gw, device=device).repeat(gh).float() * (side / gw)  # (H'*W',)
        frame = torch.stack([torch.zeros_like(rows), rows, cols], dim=-1)  # (H'*W', 3)
        per_step = torch.cat([torch.zeros(c, 3, device=device), frame], dim=0)  # (c + H'*W', 3)
        pos = per_step[None].repeat(num_steps, 1, 1)  # (T, c + H'*W', 3)
        pos[..., 0] = steps[:, None]
        return pos.flatten(0, 1)  # (T * (c + H'*W'), 3)

    def forward(
        self,
        latents: Tensor,
        actions: Tensor,
        states: Tensor,
        extrinsics: Tensor | None = None,
        *,
        frame_grid: tuple[int, int] | None = None,
        kv_cache: KVCache | None = None,
        step_offset: int = 0,
        attentions: list[Tensor] | None = None,
    ) -> Tensor:
        """Run T steps (appended after `step_offset` cached steps when `kv_cache` is given).

        Args:
            latents: (B, T*N, D) frame latents, N = H'*W' tokens per frame.
            actions: (B, T, A); states: (B, T, S); extrinsics: (B, T, E) when `use_extrinsics`.
            frame_grid: (H', W'); defaults to the config's grid.
            kv_cache: filled in place with this call's keys/values; earlier steps are read from it.
            step_offset: index of this call's first step (the number of steps already in the cache).
            attentions: when a list is given, each block's (B, heads, T*(c+N), (step_offset+T)*(c+N)) attention
                probabilities are appended (zero where the block-causal mask hides a later step).

        Returns:
            (B, T*N, D) raw predictions; step t's tokens predict frame t+1 (with `predict_residual`: the
            network's output plus the step's input tokens).
        """
        cfg = self.config
        grid = frame_grid or cfg.frame_grid
        n = grid[0] * grid[1]
        b = latents.shape[0]
        if latents.dim() != 3 or latents.shape[1] % n:
            raise ValueError(f"latents: expected (batch, steps*{n}, dim), got {tuple(latents.shape)}")
        t = latents.shape[1] // n
        for name, value, width in (("actions", actions, cfg.action_dim), ("states", states, cfg.state_dim)):
            if value.dim() != 3 or value.shape[:2] != (b, t) or value.shape[2] != width:
                raise ValueError(f"{name}: expected shape ({b}, {t}, {width}), got {tuple(value.shape)}")
        x = self.predictor_embed(latents).view(b, t, n, -1)  # (B, T, N, d)
        cond = [self.action_encoder(actions)[:, :, None], self.state_encoder(states)[:, :, None]]  # 2 x (B,T,1,d)
        if cfg.use_extrinsics:
            if extrinsics is None:
                raise ValueError("extrinsics: required because config.use_extrinsics=True")
            cond.append(self.extrinsics_encoder(extrinsics)[:, :, None])
        x = torch.cat([*cond, x], dim=2).flatten(1, 2)  # (B, T*(c+N), d)
        per_step = cfg.conditioning_tokens + n
        cached = kv_cache.length if kv_cache is not None else 0
        if cached != step_offset * per_step:
            raise ValueError(f"step_offset={step_offset} does not match the {cached} cached tokens")
        # One new step (a cached rollout step, or a one-frame context) sees every key: the block-causal mask is
        # all True, so none is built and SDPA takes its unmasked path.
        mask = None
        if t > 1:
            q_steps = torch.arange(step_offset, step_offset + t, device=x.device).repeat_interleave(per_step)
            k_steps = torch.arange(0, step_offset + t, device=x.device).repeat_interleave(per_step)
            mask = block_causal_mask(q_steps, k_steps)  # (T*(c+N), (offset+T)*(c+N))
        head_dim = cfg.predictor_hidden_size // cfg.predictor_num_attention_heads
        rope = rope_3d(self._positions(t, step_offset, grid, x.device), head_dim,
                              interleave_fix=cfg.rope_interleave_fix)
        for i, block in enumerate(self.predictor_blocks):
            x = block(x, rope=rope, attn_mask=mask, kv_cache=kv_cache, layer_idx=i, attentions=attentions)
        x = x.view(b, t, per_step, -1)[:, :, cfg.conditioning_tokens:].flatten(1, 2)  # (B, T*N, d)
        out = self.predictor_proj(self.predictor_norm(x))  # (B, T*N, D)
        return out + latents if cfg.predict_residual else out


class JepaWorldModelPreTrainedModel(JepaPreTrainedModel):
    """The base of the world model."""

    config_class = JepaWorldModelConfig
    base_model_prefix = ""
    main_input_name = "pixel_values_videos"


class JepaWorldModel(JepaWorldModelPreTrainedModel):
    """V-JEPA 2-AC world model: `encode` frames, `predictor` one teacher-forced pass, `rollout` with a KV cache.

    The encoder is frozen (requires_grad False, kept in eval mode by `train()`).
    """

    def __init__(self, config: JepaWorldModelConfig) -> None:
        super().__init__(config)
        self.encoder = VideoJepaModel(config.encoder_config)
        self.encoder.requires_grad_(False)
        self.predictor = ActionConditionedPredictor(config)
        self.post_init()
        rescale_blocks(self.predictor.predictor_blocks)

    def train(self, mode: bool = True) -> JepaWorldModel:
        super().train(mode)
        self.encoder.eval()  # frozen: no dropout / drop-path in the target features
        return self

    def _normalize(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, (x.shape[-1],)) if self.config.normalize_latents else x

    def encode(self, frames: Tensor) -> Tensor:
        """frames (B, T, C, H, W) -> (B, T*N, D) latents; each frame is duplicated into one tubelet (Meta)."""
        if frames.dim() != 5:
            raise ValueError(f"frames: expected (batch, frames, channels, height, width), got {tuple(frames.shape)}")
        b, t = frames.shape[:2]
        tubelet = self.config.encoder_config.tubelet_size
        clips = frames.flatten(0, 1)[:, None].expand(-1, tubelet, -1, -1, -1)  # (B*T, tubelet, C, H, W)
        check_video(clips, self.config.encoder_config)
        h = self.encoder(clips).last_hidden_state  # (B*T, N, D)
        h = h.reshape(b, t * h.shape[1], h.shape[2])  # (B, T*N, D)
        return self._normalize(h)

    def frame_grid_of(self, frames: Tensor) -> tuple[int, int]:
        """(H', W') token grid of frames (..., H, W)."""
        p = self.config.encoder_config.patch_size
        return frames.shape[-2] // p, frames.shape[-1] // p

    def predict(self, latents: Tensor, actions: Tensor, states: Tensor, extrinsics: Tensor | None = None,
                frame_grid: tuple[int, int] | None = None) -> Tensor:
        """One teacher-forced pass: (B, T*N, D) latents of frames 0..T-1 -> (B, T*N, D) predictions of 1..T."""
        return self._normalize(self.predictor(latents, actions, states, extrinsics, frame_grid=frame_grid))

    def next_state(self, state: Tensor, action: Tensor) -> Tensor:
        """Advance a (B, S) state by a (B, A) action with `config.state_update` ('add' or 'hold')."""
        return state + action if self.config.state_update == "add" else state

    def rollout(
        self,
        latents: Tensor,
        actions: Tensor,
        states: Tensor,
        *,
        future_states: Tensor | None = None,
        extrinsics: Tensor | None = None,
        frame_grid: tuple[int, int] | None = None,
        use_cache: bool = True,
        shared_prefix: int = 0,
    ) -> Tensor:
        """Autoregressive rollout from T0 context frames over the H = A_len - T0 + 1 predicted frames.

        Args:
            latents: (B, T0*N, D) context latents (frames 0..T0-1).
            actions: (B, T0+H-1, A) actions; actions[:, k] is taken at step k.
            states: (B, T0, S) context states.
            future_states: (B, H-1, S) states of steps T0..T0+H-2; default: `next_state` from the last one.
            extrinsics: (B, T0+H-1, E) when `use_extrinsics`.
            frame_grid: (H', W') tokens per frame; defaults to the config grid.
            use_cache: reuse a KV cache (one step per call); False recomputes the whole history per step
                (Meta's planning code). Both give the same result.
            shared_prefix: P < T0 context steps whose latents, actions, states (and extrinsics) are the same in
                every batch row (an observed history scored under many candidate plans): with the cache, they
                run once at batch 1 and their keys/values are broadcast to the batch. Row 0 is read; the caller
                guarantees the rows agree.

        Returns:
            (B, H*N, D) predicted latents of frames T0..T0+H-1.
        """
        grid = frame_grid or self.config.frame_grid
        n = grid[0] * grid[1]
        t0 = states.shape[1]
        if latents.shape[1] != t0 * n:
            raise ValueError(f"latents: expected {t0 * n} tokens for {t0} context steps, got {latents.shape[1]}")
        horizon = actions.shape[1] - t0 + 1
        if horizon < 1:
            raise ValueError(f"actions: expected at least {t0} steps for {t0} context frames, got {actions.shape[1]}")
        all_states = [states[:, i] for i in range(t0)]  # T0 x (B, S)
        for k in range(t0, t0 + horizon - 1):
            prev = all_states[-1]
            all_states.append(future_states[:, k - t0] if future_states is not None
                              else self.next_state(prev, actions[:, k - 1]))
        all_states = torch.stack(all_states, dim=1)  # (B, T0+H-1, S)
        ext = (lambda a, b: extrinsics[:, a:b]) if extrinsics is not None else (lambda a, b: None)

        # Without autograd (planning) the cache is preallocated for the whole rollout and each step writes its
        # keys/values in place (no O(L) concatenation per step); training keeps concatenation, since an in-place
        # write would overwrite keys saved for the backward pass.
        capacity = None if torch.is_grad_enabled() else (t0 + horizon - 1) * (self.config.conditioning_tokens + n)
        cache = KVCache(len(self.predictor.predictor_blocks), capacity=capacity) if use_cache else None
        if not 0 <= shared_prefix < t0:
            raise ValueError(f"shared_prefix={shared_prefix}: expected 0 <= shared_prefix < {t0} context steps")
        p = shared_prefix if use_cache else 0
        if p:
            ext1 = extrinsics[:1, :p] if extrinsics is not None else None
            self.predictor(latents[:1, : p * n], actions[:1, :p], all_states[:1, :p], ext1, frame_grid=grid,
                           kv_cache=cache)  # batch 1: fills the cache with the shared steps
            cache = cache.expand(latents.shape[0])
        out = self.predictor(latents[:, p * n:], actions[:, p:t0], all_states[:, p:t0], ext(p, t0), frame_grid=grid,
                             kv_cache=cache, step_offset=p)  # (B, (T0-P)*N, D)
        preds = [self._normalize(out[:, -n:])]  # frame T0
        history = latents
        for k in range(t0, t0 + horizon - 1):
            if use_cache:
                out = self.predictor(preds[-1], actions[:, k:k + 1], all_states[:, k:k + 1], ext(k, k + 1),
                                     frame_grid=grid, kv_cache=cache, step_offset=k)
            else:
                history = torch.cat([history, preds[-1]], dim=1)  # (B, (k+1)*N, D)
                out = self.predictor(history, actions[:, :k + 1], all_states[:, :k + 1], ext(0, k + 1),
                                     frame_grid=grid)
            preds.append(self._normalize(out[:, -n:]))  # frame k+1
        return torch.cat(preds, dim=1)  # (B, H*N, D)

    def forward(
        self,
        actions: Tensor,
        states: Tensor,
        pixel_values_videos: Tensor | None = None,
        latents: Tensor | None = None,
        extrinsics: Tensor | None = None,
        auto_steps: int = 2,
    ) -> JepaWorldModelOutput:
        """Meta's training forward: teacher forcing over T-1 steps plus an `auto_steps` rollout.

        Args:
            actions: (B, T-1, A) or (B, T, A) (the last action is unused); actions[:, t] moves frame t to t+1.
            states: (B, T, S).
            pixel_values_videos: (B, T, C, H, W) frames, or pass precomputed `latents` (B, T*N, D) instead.
            extrinsics: (B, T, E) when `use_extrinsics`.
            auto_steps: rollout length R (Meta: 2), 1 <= R <= T-1.
        """
        if (pixel_values_videos is None) == (latents is None):
            raise ValueError("pass exactly one of pixel_values_videos or latents")
        grid = self.config.frame_grid
        if pixel_values_videos is not None:
            grid = self.frame_grid_of(pixel_values_videos)
            with torch.no_grad():
                latents = self.encode(pixel_values_videos)
        n = grid[0] * grid[1]
        t = latents.shape[1] // n
        if t < 2:
            raise ValueError(f"need at least 2 frames per window to predict the next one, got {t}")
        if not 1 <= auto_steps <= t - 1:
            raise ValueError(f"auto_steps={auto_steps}: expected a value in [1, {t - 1}] for {t} frames")
        actions = actions[:, : t - 1]
        ext = extrinsics[:, : t - 1] if extrinsics is not None else None
        tf = self.predict(latents[:, : (t - 1) * n], actions, states[:, : t - 1], ext, frame_grid=grid)
        ar = self.rollout(latents[:, :n], actions[:, :auto_steps], states[:, :1],
                          future_states=states[:, 1:auto_steps], extrinsics=ext, frame_grid=grid)
        return JepaWorldModelOutput(teacher_forced=tf, rollout=ar, targets=latents[:, n:], latents=latents)


__all__ = [
    "ActionConditionedPredictor",
    "JepaWorldModel",
    "JepaWorldModelOutput",
    "JepaWorldModelPreTrainedModel",
    "block_causal_mask",
]
