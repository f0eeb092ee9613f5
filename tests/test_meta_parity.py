"""Fidelity to Meta: our converter + models reproduce facebookresearch/ijepa and /vjepa2 outputs to 1e-5 in fp32.

Fixtures in tests/fixtures/meta/ were produced by running Meta's own code on random weights (see its README).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from hf_jepa.convert import CheckpointError, convert_meta_checkpoint, load_meta_checkpoint, strip_prefixes

FIXTURES = Path(__file__).parent / "fixtures" / "meta"
ATOL = 1e-5


def close(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.fixture(scope="module")
def ijepa():
    model = convert_meta_checkpoint(FIXTURES / "ijepa_checkpoint.pt", "ijepa",
                                    overrides={"num_attention_heads": 4, "predictor_num_attention_heads": 4})
    return model, load_file(FIXTURES / "ijepa_io.safetensors")


@pytest.fixture(scope="module")
def vjepa2():
    overrides = {"num_attention_heads": 4, "predictor_num_attention_heads": 2, "image_size": 32, "num_frames": 4}
    model = convert_meta_checkpoint(FIXTURES / "vjepa2_checkpoint.pt", "vjepa2", overrides=overrides)
    return model, load_file(FIXTURES / "vjepa2_io.safetensors")


@pytest.fixture(scope="module")
def vjepa2_ac():
    overrides = {"num_attention_heads": 4, "predictor_num_attention_heads": 2, "image_size": 32, "num_frames": 2}
    model = convert_meta_checkpoint(FIXTURES / "vjepa2_ac_checkpoint.pt", "vjepa2_ac", overrides=overrides)
    return model, load_file(FIXTURES / "vjepa2_ac_io.safetensors")


@torch.no_grad()
def test_ijepa_encoders_and_predictor(ijepa) -> None:
    model, io = ijepa
    images, ctx, t1, t2 = io["images"], io["context_mask"], io["target_mask"], io["target_mask_2"]
    close(model.target_encoder(images).last_hidden_state, io["target_encoder_full"])
    close(model.encoder(images).last_hidden_state, io["encoder_full"])
    z = model.encoder(images, context_mask=ctx).last_hidden_state
    close(z, io["encoder_context"])
    close(model.predictor(z, ctx, t1), io["predictor_1tgt"])
    out = model(images, ctx, [t1, t2])
    close(out.predictions, io["predictor_2tgt"])
    close(out.targets, io["train_targets_2tgt"])


@torch.no_grad()
def test_ijepa_exports_target_encoder_by_default_and_encoder_on_request(ijepa) -> None:
    _, io = ijepa
    context = convert_meta_checkpoint(FIXTURES / "ijepa_checkpoint.pt", "ijepa", encoder_key="encoder",
                                      overrides={"num_attention_heads": 4, "predictor_num_attention_heads": 4})
    close(context.target_encoder(io["images"]).last_hidden_state, io["encoder_full"])


@torch.no_grad()
def test_vjepa2_encoder_masked_nonsquare_and_predictor(vjepa2) -> None:
    model, io = vjepa2
    video = io["video"].permute(0, 2, 1, 3, 4)  # Meta (B, C, T, H, W) -> ours (B, T, C, H, W)
    ctx, tgt = io["context_mask"], io["target_mask"]
    close(model.target_encoder(video).last_hidden_state, io["target_encoder_full"])
    close(model.target_encoder(io["video_nonsquare"].permute(0, 2, 1, 3, 4)).last_hidden_state,
          io["target_encoder_nonsquare"])
    close(model.encoder(video).last_hidden_state, io["encoder_full"])
    z = model.encoder(video, context_mask=ctx).last_hidden_state
    close(z, io["encoder_context"])
    close(model.predictor(z, ctx, tgt, mask_index=1), io["predictor_mask_index1"])
    close(model.predictor(z, ctx, tgt, mask_index=0), io["predictor_mask_index0"])
    out = model(video, [ctx], [tgt])
    close(out.predictions[0], io["predictor_mask_index0"])
    close(out.targets[0], torch.gather(F.layer_norm(io["target_encoder_full"], (64,)), 1,
                                       tgt[..., None].expand(-1, -1, 64)))


@torch.no_grad()
def test_vjepa2_ac_encode_teacher_forcing_and_rollout(vjepa2_ac) -> None:
    model, io = vjepa2_ac
    n = 16  # tokens per frame (4 x 4)
    frames = io["clip"].permute(0, 2, 1, 3, 4)  # (B, T=3, C, H, W)
    latents = model.encode(frames)
    close(latents, io["target_latents"])
    actions, states = io["actions"], io["states"]
    close(model.predictor(latents[:, :-n], actions, states[:, :-1]), io["predictor_tf_raw"])
    close(model.predict(latents[:, :-n], actions, states[:, :-1]), io["z_tf"])
    for use_cache in (True, False):
        ar = model.rollout(latents[:, :n], actions[:, :2], states[:, :1], future_states=states[:, 1:2],
                           use_cache=use_cache)
        close(ar, io["z_ar"])
    out = model(actions=actions, states=states, pixel_values_videos=frames, auto_steps=2)
    close(out.teacher_forced, io["z_tf"])
    close(out.rollout, io["z_ar"])


@torch.no_grad()
def test_vjepa2_ac_with_extrinsics(vjepa2_ac) -> None:
    base, io = vjepa2_ac
    config = copy.deepcopy(base.config)
    config.use_extrinsics = True
    model = type(base)(config).eval()
    model.encoder.load_state_dict(base.encoder.state_dict())
    ckpt = load_meta_checkpoint(FIXTURES / "vjepa2_ac_extrinsics_checkpoint.pt")
    model.predictor.load_state_dict(strip_prefixes(ckpt["predictor"]))
    n = 16
    latents, actions, states, ext = io["target_latents"], io["actions"], io["states"], io["extrinsics"]
    close(model.predictor(latents[:, :-n], actions, states[:, :-1], ext[:, :-1]), io["ext_predictor_tf_raw"])
    out = model(actions=actions, states=states, latents=latents, extrinsics=ext, auto_steps=2)
    close(out.teacher_forced, io["ext_z_tf"])
    close(out.rollout, io["ext_z_ar"])


def test_bad_checkpoints_give_clear_errors(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        convert_meta_checkpoint(tmp_path / "missing.pt", "ijepa")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="weights_only"):
        convert_meta_checkpoint(tmp_path / "junk.pt", "ijepa")
    torch.save({"model": {}}, tmp_path / "layout.pt")
    with pytest.raises(CheckpointError, match="expected a 'encoder' state dict"):
        convert_meta_checkpoint(tmp_path / "layout.pt", "ijepa")
    with pytest.raises(CheckpointError, match="family='mae'"):
        convert_meta_checkpoint(FIXTURES / "ijepa_checkpoint.pt", "mae")
    with pytest.raises(CheckpointError, match="num_attention_heads"):
        convert_meta_checkpoint(FIXTURES / "ijepa_checkpoint.pt", "ijepa")
    with pytest.raises(CheckpointError, match="Conv3d"):
        convert_meta_checkpoint(FIXTURES / "ijepa_checkpoint.pt", "vjepa2", overrides={"num_attention_heads": 4})
