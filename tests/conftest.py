"""Shared test fixtures: deterministic torch, tiny configs."""

from __future__ import annotations

import pytest
import torch

import hf_jepa


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def tiny_ijepa_config() -> hf_jepa.ImageJepaConfig:
    return hf_jepa.ImageJepaConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, intermediate_size=128, predictor_hidden_size=32,
                                   predictor_num_hidden_layers=2, predictor_num_attention_heads=2,
                                   predictor_intermediate_size=64)


@pytest.fixture
def tiny_vjepa2_config() -> hf_jepa.VideoJepaConfig:
    return hf_jepa.VideoJepaConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, intermediate_size=128, predictor_hidden_size=32,
                                   predictor_num_hidden_layers=2, predictor_num_attention_heads=2,
                                   predictor_intermediate_size=64, num_mask_tokens=3)


@pytest.fixture
def tiny_ac_config(tiny_vjepa2_config: hf_jepa.VideoJepaConfig) -> hf_jepa.JepaWorldModelConfig:
    return hf_jepa.JepaWorldModelConfig(encoder_config=tiny_vjepa2_config, predictor_hidden_size=32,
                                        predictor_num_hidden_layers=2, predictor_num_attention_heads=2,
                                        predictor_intermediate_size=64, action_dim=3, state_dim=3, max_steps=8)
