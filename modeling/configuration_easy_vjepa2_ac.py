"""Configuration of the V-JEPA 2-AC world model (`model_type="easy_vjepa2_ac"`)."""

from __future__ import annotations

from typing import Any

from .configuration_easy_vjepa2 import VideoJepaConfig
from .configuration_jepa import JepaConfig, vit_sizes
from .validation import check_bool, check_choice, check_positive

# Meta's V-JEPA 2-AC (ViT-g encoder, 1024 x 24 predictor, 7-D end-effector actions/states) and a CPU preset.
VJEPA2_AC_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(encoder_preset="tiny", **vit_sizes(96, 2, 2, 384, "predictor_"), action_dim=2, state_dim=2,
                 max_steps=16),
    "vit_g": dict(encoder_preset="vit_g", **vit_sizes(1024, 24, 16, 4096, "predictor_"), action_dim=7, state_dim=7,
                  max_steps=8),
}


# Written into every saved config.json so a folder loads with trust_remote_code=True without hf_jepa.
AUTO_MAP: dict[str, str] = {
    "AutoConfig": "configuration_easy_vjepa2_ac.JepaWorldModelConfig",
    "AutoModel": "modeling_easy_vjepa2_ac.JepaWorldModel",
}

# `JepaWorldModelConfig()`: Meta's 1024-wide, 24-layer AC predictor.
VJEPA2_AC_DEFAULTS: dict[str, Any] = vit_sizes(1024, 24, 16, 4096, "predictor_")


class JepaWorldModelConfig(JepaConfig):
    """V-JEPA 2-AC: a frozen V-JEPA 2 encoder applied per frame and an action-conditioned, block-causal predictor.

    Each time step t contributes `[action_t, state_t, (extrinsics_t), H'*W' frame tokens]`; step t attends to steps
    <= t, and its frame outputs predict the latents of frame t+1. The predictor sizes, `qkv_bias`, `layer_norm_eps`,
    `drop_path_rate` and `initializer_range` are `JepaConfig` fields (defaults: `VJEPA2_AC_DEFAULTS`).

    Args:
        encoder_config: the V-JEPA 2 encoder's config (dict or `VideoJepaConfig`).
        action_dim, state_dim: action / proprioceptive state widths (Meta: 7 / 7).
        use_extrinsics: add a camera-extrinsics token per step (Meta: off; its encoder exists either way).
        extrinsics_dim: width of the extrinsics vector (Meta: action_dim - 1).
        max_steps: longest sequence of steps the model is meant for (documentation and input validation only:
            attention masks are built for the actual length).
        normalize_latents: layer-norm encoder latents and predictions (Meta's `normalize_reps`).
        frame_skip: environment steps per predictor step the model was trained with (temporal abstraction, as
            PLDM); what one model action is follows `action_reduce`.
        action_reduce: how one model action holds the `frame_skip` environment actions it spans: "sum" (their sum,
            `action_dim` = the env's width; a planner executes it as `frame_skip` steps of `action / frame_skip`)
            or "concat" (side by side, as DINO-WM / LeWM on Push-T: `action_dim` = `frame_skip` x the env's
            width; a planner executes each part in turn).
        state_update: how a rollout advances the state when future states are not given: "add" (state += action,
            Meta's pose integration for position-like states) or "hold" (keep the last state).
        rope_interleave_fix: as in `VideoJepaConfig` (False = Meta's layout).
        predict_residual: the predictor outputs the change of each frame token, added to the token it read (before
            the layer norm of `normalize_latents`); False (Meta's) outputs the next tokens themselves. Small changes
            (a block nudged a few pixels) are then what the network learns, not the whole latent.
    """

    model_type = "easy_vjepa2_ac"
    sub_configs = {"encoder_config": VideoJepaConfig}
    presets = VJEPA2_AC_PRESETS
    family_defaults = VJEPA2_AC_DEFAULTS
    default_auto_map = AUTO_MAP

    def __init__(
        self,
        encoder_config: dict[str, Any] | VideoJepaConfig | None = None,
        action_dim: int = 7,
        state_dim: int = 7,
        use_extrinsics: bool = False,
        extrinsics_dim: int = 6,
        max_steps: int = 8,
        normalize_latents: bool = True,
        frame_skip: int = 1,
        action_reduce: str = "sum",
        state_update: str = "add",
        rope_interleave_fix: bool = False,
        predict_residual: bool = False,
        **kwargs: Any,
    ) -> None:
        if encoder_config is None:
            encoder_config = VideoJepaConfig()
        elif isinstance(encoder_config, dict):
            encoder_config = VideoJepaConfig(**{k: v for k, v in encoder_config.items() if k != "model_type"})
        elif not isinstance(encoder_config, VideoJepaConfig):
            raise ValueError(f"encoder_config: expected a dict or VideoJepaConfig, got {type(encoder_config).__name__}")
        check_positive(action_dim=action_dim, state_dim=state_dim, extrinsics_dim=extrinsics_dim, max_steps=max_steps,
                       frame_skip=frame_skip)
        check_choice("state_update", state_update, ("add", "hold"))
        check_choice("action_reduce", action_reduce, ("sum", "concat"))
        if action_reduce == "concat" and action_dim % frame_skip:
            raise ValueError(f"action_reduce='concat' needs action_dim divisible by frame_skip (the env actions side "
                             f"by side), got action_dim={action_dim}, frame_skip={frame_skip}")
        check_bool(use_extrinsics=use_extrinsics, normalize_latents=normalize_latents,
                   rope_interleave_fix=rope_interleave_fix, predict_residual=predict_residual)
        if state_update == "add" and state_dim != action_dim:
            raise ValueError(
                f"state_update='add' needs state_dim == action_dim, got state_dim={state_dim}, action_dim={action_dim}"
            )
        self.encoder_config = encoder_config
        self.action_dim = action_dim
        self.state_dim = state_dim
        self.use_extrinsics = use_extrinsics
        self.extrinsics_dim = extrinsics_dim
        self.max_steps = max_steps
        self.normalize_latents = normalize_latents
        self.frame_skip = frame_skip
        self.action_reduce = action_reduce
        self.state_update = state_update
        self.rope_interleave_fix = rope_interleave_fix
        self.predict_residual = predict_residual
        super().__init__(**{**self.family_defaults, **kwargs})

    @property
    def frame_grid(self) -> tuple[int, int]:
        """(H', W') tokens per frame at the encoder's training resolution."""
        side = self.encoder_config.image_size // self.encoder_config.patch_size
        return side, side

    @property
    def env_action_dim(self) -> int:
        """Width of one environment action: `action_dim`, or `action_dim / frame_skip` with "concat"."""
        return self.action_dim // self.frame_skip if self.action_reduce == "concat" else self.action_dim

    @property
    def tokens_per_frame(self) -> int:
        """H' * W' at the encoder's training resolution."""
        return self.frame_grid[0] * self.frame_grid[1]

    @property
    def conditioning_tokens(self) -> int:
        """Tokens per step before the frame tokens: action, state (+ extrinsics)."""
        return 3 if self.use_extrinsics else 2

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> JepaWorldModelConfig:
        """A config from `VJEPA2_AC_PRESETS[name]` ('tiny', 'vit_g'); `encoder_config` may be overridden."""
        values = {**cls.preset_values(name), **overrides}
        encoder_preset = values.pop("encoder_preset")
        values.setdefault("encoder_config", VideoJepaConfig.from_preset(encoder_preset))
        return cls(**values)


__all__ = ["JepaWorldModelConfig", "VJEPA2_AC_PRESETS"]
