"""Fidelity to transformers: tiny random IJepaModel / VJEPA2Model converted to ours give the same outputs."""

from __future__ import annotations

import pytest
import torch
from transformers import IJepaConfig, IJepaModel, VJEPA2Config, VJEPA2Model

from hf_jepa.convert import CheckpointError, convert_transformers_model

ATOL = 1e-5


def _randomize(model: torch.nn.Module) -> None:
    """Random values everywhere (LayerNorms and biases included) so the comparison means something."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (0.1 if "norm" not in name else 0.2) + (1.0 if name.endswith("norm.weight")
                    or "layernorm" in name and name.endswith("weight") else 0.0))


def test_ijepa_encoder_matches_transformers(tmp_path) -> None:
    ref = IJepaModel(IJepaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                 image_size=32, patch_size=8, layer_norm_eps=1e-6)).eval()
    _randomize(ref)
    ref.save_pretrained(tmp_path)
    ours = convert_transformers_model(tmp_path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = ref(pixel_values=x).last_hidden_state
        got = ours(pixel_values=x).last_hidden_state
    assert got.shape == expected.shape == (2, 16, 64)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.fixture
def vjepa2_reference() -> VJEPA2Model:
    cfg = VJEPA2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=2.0, crop_size=32,
                       patch_size=8, frames_per_clip=4, pred_hidden_size=32, pred_num_hidden_layers=2,
                       pred_num_attention_heads=2, pred_num_mask_tokens=3, num_pooler_layers=1)
    model = VJEPA2Model(cfg).eval()
    _randomize(model)
    return model


def test_vjepa2_encoder_and_predictor_match_transformers(vjepa2_reference: VJEPA2Model, tmp_path) -> None:
    vjepa2_reference.save_pretrained(tmp_path)
    ours = convert_transformers_model(tmp_path)
    video = torch.randn(2, 4, 3, 32, 32)  # (B, T, C, H, W), 2 x 4 x 4 = 32 tokens
    gen = torch.Generator().manual_seed(1)
    perm = torch.stack([torch.randperm(32, generator=gen) for _ in range(2)])
    ctx, tgt = perm[:, :20].sort(1).values, perm[:, 20:].sort(1).values
    with torch.no_grad():
        ref = vjepa2_reference(pixel_values_videos=video, context_mask=[ctx], target_mask=[tgt])
        full = ours.target_encoder(video).last_hidden_state
        context = torch.gather(full, 1, ctx[..., None].expand(-1, -1, 64))
        pred = ours.predictor(context, ctx, tgt, mask_index=1)
    torch.testing.assert_close(full, ref.last_hidden_state, atol=ATOL, rtol=0)
    torch.testing.assert_close(pred, ref.predictor_output.last_hidden_state, atol=ATOL, rtol=0)


def test_vjepa2_masked_encoder_runs_only_kept_tokens(vjepa2_reference: VJEPA2Model) -> None:
    """transformers runs the whole clip and masks afterwards; ours runs only the kept tokens (a JEPA needs that),
    so the masked outputs differ from a gather of the full output but equal Meta's masked encoder (see
    test_meta_parity); here: a full-length 'mask' in any order equals the unmasked run, permuted."""
    ours = convert_transformers_model(vjepa2_reference)
    video = torch.randn(1, 4, 3, 32, 32)
    perm = torch.randperm(32)[None]
    with torch.no_grad():
        full = ours.target_encoder(video).last_hidden_state
        permuted = ours.target_encoder(video, context_mask=perm).last_hidden_state
    torch.testing.assert_close(permuted, full[:, perm[0]], atol=ATOL, rtol=0)


def test_unknown_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no config.json"):
        convert_transformers_model(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(CheckpointError, match="model_type='bert'"):
        convert_transformers_model(tmp_path)
