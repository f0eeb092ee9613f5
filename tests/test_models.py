"""Model families: shapes, masks, bad input, save/load round trips, Auto classes, remote code, KV-cached rollouts."""

from __future__ import annotations

import copy
import json
import textwrap

import pytest
import torch
from accelerate import Accelerator
from conftest import run_python, world_model_outputs, world_model_outputs_source
from hf_jepa.modeling.layers import KVCache
from transformers import AutoConfig, AutoModel, AutoModelForPreTraining

import hf_jepa
from hf_jepa.training import train_step, world_model_loss


def test_ijepa_shapes_and_mask(tiny_ijepa_config) -> None:
    model = hf_jepa.ImageJepaForPreTraining(tiny_ijepa_config).eval()
    x = torch.randn(2, 3, 32, 32)
    assert model.encoder(pixel_values=x).last_hidden_state.shape == (2, 16, 64)
    ctx = torch.tensor([[0, 1, 2, 5, 6], [3, 4, 8, 9, 15]])
    kept = model.encoder(pixel_values=x, context_mask=ctx).last_hidden_state
    assert kept.shape == (2, 5, 64)
    tgt = torch.tensor([[10, 11, 12], [0, 1, 2]])
    assert model.predictor(kept, ctx, tgt).shape == (2, 3, 64)
    out = model(x, ctx, torch.stack([tgt, tgt]))
    assert out.predictions.shape == out.targets.shape == (4, 3, 64)


def test_ijepa_other_resolution_interpolates_positions(tiny_ijepa_config) -> None:
    model = hf_jepa.ImageJepaModel(tiny_ijepa_config).eval()
    assert model(torch.randn(1, 3, 48, 64)).last_hidden_state.shape == (1, 6 * 8, 64)


def test_vjepa2_shapes_and_masked_tokens_use_their_positions(tiny_vjepa2_config) -> None:
    model = hf_jepa.VideoJepaForPreTraining(tiny_vjepa2_config).eval()
    video = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        full = model.encoder(pixel_values_videos=video).last_hidden_state
        assert full.shape == (2, 32, 64)
        ctx = torch.arange(32)[None].repeat(2, 1)
        same = model.encoder(pixel_values_videos=video, context_mask=ctx).last_hidden_state
        torch.testing.assert_close(same, full, atol=1e-6, rtol=0)
        # kept tokens use their own positions: token 17 (t=1, h=0, w=1) given the pixels of token 1 (t=0, h=0, w=1)
        # is the same content one tubelet later, so context [0, 17] differs from [0, 1] by positions alone
        copied = video.clone()
        copied[:, 2:4, :, 0:8, 8:16] = video[:, 0:2, :, 0:8, 8:16]  # (B, frames 2-3, C, rows 0-7, cols 8-15)
        near = model.encoder(copied, context_mask=torch.tensor([[0, 1]] * 2)).last_hidden_state
        far = model.encoder(copied, context_mask=torch.tensor([[0, 17]] * 2)).last_hidden_state
        torch.testing.assert_close(model.encoder(video, context_mask=torch.tensor([[0, 1]] * 2)).last_hidden_state,
                                   near, atol=0, rtol=0)  # the copy left tokens 0 and 1 alone
        assert (near - far).abs().max() > 1e-3
        out = model(video, [ctx[:, :20], ctx[:, :10]], [ctx[:, 20:], ctx[:, 10:]])
    assert [p.shape for p in out.predictions] == [(2, 12, 64), (2, 22, 64)]
    assert [t.shape for t in out.targets] == [(2, 12, 64), (2, 22, 64)]


def test_rope_fix_flag_changes_outputs(tiny_vjepa2_config) -> None:
    a = hf_jepa.VideoJepaModel(tiny_vjepa2_config).eval()
    fixed_cfg = hf_jepa.VideoJepaConfig(**{**tiny_vjepa2_config.to_dict(), "rope_interleave_fix": True})
    b = hf_jepa.VideoJepaModel(fixed_cfg).eval()
    b.load_state_dict(a.state_dict())
    video = torch.randn(1, 4, 3, 32, 32)
    assert not torch.allclose(a(video).last_hidden_state, b(video).last_hidden_state)


def _textbook_rope_3d(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Standard interleaved 3-D RoPE by hand, as complex rotations: x (N, d), positions (N, 3) -> (N, d).

    Per axis a (depth, height, width), channels [a*A, (a+1)*A) hold A/2 pairs (2j, 2j+1), each read as the complex
    number x[2j] + i x[2j+1] and multiplied by exp(i * pos_a * 10000^(-j / (A/2))); channels past 3*A are kept.
    """
    d = x.shape[-1]
    axis = 2 * ((d // 3) // 2)
    out = x.clone()
    for a in range(3):
        j = torch.arange(axis // 2, dtype=torch.float64)
        angle = positions[:, a, None].double() * 10000.0 ** (-j / (axis // 2))  # (N, A/2)
        chunk = x[:, a * axis:(a + 1) * axis].double()  # (N, A)
        z = torch.complex(chunk[:, 0::2], chunk[:, 1::2]) * torch.polar(torch.ones_like(angle), angle)  # (N, A/2)
        out[:, a * axis:(a + 1) * axis] = torch.stack([z.real, z.imag], dim=-1).flatten(1).float()  # (N, A)
    return out


def test_rope_interleave_fix_is_the_standard_interleaved_rope() -> None:
    """`rope_interleave_fix=True` rotates channel pairs (2j, 2j+1) by pos * theta_j (textbook RoPE); Meta's layout
    (default) pairs the same channels with another frequency order, so it is not the textbook one."""
    from hf_jepa.modeling.positions import rope_3d, rotate_pairs

    d = 32  # 3 axes of 10 channels + 2 unrotated
    positions = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [3.0, 1.0, 0.0], [2.0, 3.0, 1.0]])  # (N, 3)
    x = torch.randn(4, d)
    expected = _textbook_rope_3d(x, positions)
    fixed = rotate_pairs(x[None], rope_3d(positions, d, interleave_fix=True))[0]
    torch.testing.assert_close(fixed, expected, atol=1e-5, rtol=0)
    meta = rotate_pairs(x[None], rope_3d(positions, d))[0]
    torch.testing.assert_close(meta[0], x[0])  # position 0 is the identity in both layouts
    assert (meta - expected).abs().max() > 0.1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: m(torch.randn(2, 3, 32, 32)), "expected a \\(batch, frames, channels, height, width\\)"),
        (lambda m: m(torch.randn(2, 4, 1, 32, 32)), "got 1 channels, expected num_channels=3"),
        (lambda m: m(torch.randn(2, 3, 3, 32, 32)), "3 frames is not divisible by tubelet_size=2"),
        (lambda m: m(torch.randn(2, 4, 3, 30, 32)), "30x32 is not divisible by patch_size=8"),
        (lambda m: m(torch.randn(2, 4, 3, 32, 32), context_mask=torch.tensor([[0, 32]] * 2)), "\\[0, 32\\)"),
        (lambda m: m(torch.randn(2, 4, 3, 32, 32), context_mask=torch.tensor([[0.0, 1.0]] * 2)), "dtype"),
        (lambda m: m(torch.randn(2, 4, 3, 32, 32), context_mask=torch.tensor([[0, 1]])), "batch size 1"),
    ],
)
def test_video_bad_input(tiny_vjepa2_config, call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call(hf_jepa.VideoJepaModel(tiny_vjepa2_config))


def test_image_bad_input(tiny_ijepa_config) -> None:
    model = hf_jepa.ImageJepaModel(tiny_ijepa_config)
    with pytest.raises(ValueError, match="expected a \\(batch, channels, height, width\\)"):
        model(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="got 4 channels"):
        model(torch.randn(1, 4, 32, 32))
    with pytest.raises(ValueError, match="not divisible by patch_size=8"):
        model(torch.randn(1, 3, 33, 32))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden_size": 65}, "hidden_size=65: expected a multiple of num_attention_heads=4"),
        ({"image_size": 30}, "image_size=30: expected a multiple of patch_size=8"),
        ({"num_frames": 3}, "num_frames=3: expected a multiple of tubelet_size=2"),
        ({"num_hidden_layers": 0}, "num_hidden_layers=0: expected a positive integer"),
        ({"drop_path_rate": 1.5}, "drop_path_rate=1.5"),
    ],
)
def test_config_validation(tiny_vjepa2_config, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        hf_jepa.VideoJepaConfig(**{**tiny_vjepa2_config.to_dict(), **kwargs})


def test_ac_config_validation(tiny_vjepa2_config) -> None:
    with pytest.raises(ValueError, match="state_update='add' needs state_dim == action_dim"):
        hf_jepa.JepaWorldModelConfig(encoder_config=tiny_vjepa2_config, action_dim=2, state_dim=3)
    with pytest.raises(ValueError, match="state_update='fly'"):
        hf_jepa.JepaWorldModelConfig(encoder_config=tiny_vjepa2_config, state_update="fly")
    with pytest.raises(ValueError, match="preset='huge'"):
        hf_jepa.JepaWorldModelConfig.from_preset("huge")


def test_presets_build_valid_configs() -> None:
    for name in hf_jepa.IJEPA_PRESETS:
        hf_jepa.ImageJepaConfig.from_preset(name)
    for name in hf_jepa.VJEPA2_PRESETS:
        hf_jepa.VideoJepaConfig.from_preset(name)
    for name in hf_jepa.VJEPA2_AC_PRESETS:
        hf_jepa.JepaWorldModelConfig.from_preset(name)
    assert hf_jepa.VideoJepaConfig.from_preset("vit_g").num_attention_heads == 22  # Meta's released ViT-g


def test_world_model_rollout_kv_cache_equals_recompute(tiny_ac_config) -> None:
    model = hf_jepa.JepaWorldModel(tiny_ac_config).eval()
    frames = torch.randn(3, 2, 3, 32, 32)
    actions, states = torch.randn(3, 6, 3), torch.randn(3, 2, 3)
    with torch.no_grad():
        z = model.encode(frames)
        assert z.shape == (3, 32, 64)
        cached = model.rollout(z, actions, states, use_cache=True)
        full = model.rollout(z, actions, states, use_cache=False)
    assert cached.shape == (3, 5 * 16, 64)  # 2 context frames + 6 actions -> frames 2..6
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)


def test_world_model_predict_residual_adds_the_input_tokens(tiny_ac_config) -> None:
    """With `predict_residual` the predictor's output is Meta's output plus the tokens it read; rollouts (cached or
    recomputed) then feed those sums back, and the flag round-trips through the config."""
    base = hf_jepa.JepaWorldModel(tiny_ac_config).eval()
    residual_config = hf_jepa.JepaWorldModelConfig(**{**tiny_ac_config.to_dict(), "predict_residual": True})
    residual = hf_jepa.JepaWorldModel(residual_config).eval()
    residual.load_state_dict(base.state_dict())
    z = torch.randn(2, 3 * 16, 64)
    actions, states = torch.randn(2, 3, 3), torch.randn(2, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(residual.predictor(z, actions, states), base.predictor(z, actions, states) + z)
        cached = residual.rollout(z[:, :16], actions, states[:, :1], use_cache=True)
        full = residual.rollout(z[:, :16], actions, states[:, :1], use_cache=False)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)
    assert not torch.allclose(cached, base.rollout(z[:, :16], actions, states[:, :1]))
    assert hf_jepa.JepaWorldModelConfig.from_dict(residual_config.to_dict()).predict_residual is True
    assert tiny_ac_config.predict_residual is False  # Meta's: the next tokens themselves


@pytest.mark.parametrize("grad", [False, True])
def test_world_model_rollout_shared_prefix_equals_full_batch(tiny_ac_config, grad) -> None:
    """A history shared by every row, run once at batch 1 and broadcast, gives the per-row rollout."""
    model = hf_jepa.JepaWorldModel(tiny_ac_config).eval()
    torch.manual_seed(0)
    z = model.encode(torch.randn(1, 3, 3, 32, 32)).detach().expand(4, -1, -1)  # (4, 3*16, 64): one history
    history = torch.randn(1, 2, 3).expand(4, -1, -1)  # the 2 executed actions between the 3 frames
    actions = torch.cat([history, torch.randn(4, 4, 3)], dim=1)  # (4, 6, 3): per-row candidate plans
    states = torch.randn(1, 3, 3).expand(4, -1, -1)
    with torch.set_grad_enabled(grad):
        shared = model.rollout(z, actions, states, shared_prefix=2)
        full = model.rollout(z, actions, states, use_cache=False)
    assert shared.shape == (4, 4 * 16, 64)
    torch.testing.assert_close(shared, full, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="shared_prefix=3"):
        model.rollout(z, actions, states, shared_prefix=3)


def test_kv_cache_expand_with_capacity_keeps_writing_in_place() -> None:
    cache = KVCache(1, capacity=5)
    k, v = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4)
    cache.update(0, k, v)
    wide = cache.expand(4)
    new_k, new_v = torch.randn(4, 2, 2, 4), torch.randn(4, 2, 2, 4)
    keys, values = wide.update(0, new_k, new_v)
    assert keys.shape == (4, 2, 5, 4) and wide.length == 5
    torch.testing.assert_close(keys, torch.cat([k.expand(4, -1, -1, -1), new_k], dim=2))
    torch.testing.assert_close(values, torch.cat([v.expand(4, -1, -1, -1), new_v], dim=2))
    with pytest.raises(ValueError, match="exceed capacity=5"):
        wide.update(0, new_k[:, :, :1], new_v[:, :, :1])
    with pytest.raises(ValueError, match="expected 1"):
        wide.expand(8)


def test_world_model_is_block_causal(tiny_ac_config) -> None:
    """Step t's prediction does not change when later steps change."""
    model = hf_jepa.JepaWorldModel(tiny_ac_config).eval()
    z, a, s = torch.randn(1, 3 * 16, 64), torch.randn(1, 3, 3), torch.randn(1, 3, 3)
    z2, a2 = z.clone(), a.clone()
    z2[:, 32:] += 1.0
    a2[:, 2] += 1.0
    with torch.no_grad():
        p1, p2 = model.predict(z, a, s), model.predict(z2, a2, s)
    torch.testing.assert_close(p1[:, :32], p2[:, :32])
    assert not torch.allclose(p1[:, 32:], p2[:, 32:])


def test_world_model_training_forward_and_frozen_encoder(tiny_ac_config) -> None:
    model = hf_jepa.JepaWorldModel(tiny_ac_config).train()
    assert not model.encoder.training and not any(p.requires_grad for p in model.encoder.parameters())
    frames, actions, states = torch.randn(2, 4, 3, 32, 32), torch.randn(2, 3, 3), torch.randn(2, 4, 3)
    out = model(actions=actions, states=states, pixel_values_videos=frames, auto_steps=2)
    assert out.teacher_forced.shape == out.targets.shape == (2, 48, 64)
    assert out.rollout.shape == (2, 32, 64)
    (out.teacher_forced - out.targets).abs().mean().backward()
    assert model.predictor.action_encoder.weight.grad is not None
    with pytest.raises(ValueError, match="auto_steps=4"):
        model(actions=actions, states=states, latents=out.latents, auto_steps=4)
    with pytest.raises(ValueError, match="actions: expected shape"):
        model.predict(out.latents[:, :48], torch.randn(2, 3, 5), states[:, :3])


def test_world_model_targets_are_the_next_frames_and_the_loss_is_metas(tiny_ac_config) -> None:
    """`targets` are the latents of frames 1..T-1 (the next frames, not the current ones), and `world_model_loss`
    is Meta's L1(teacher forced, next frames) + L1(rollout, the first R next frames), here computed by hand."""
    model = hf_jepa.JepaWorldModel(tiny_ac_config).eval()
    frames, actions, states = torch.randn(2, 4, 3, 32, 32), torch.randn(2, 3, 3), torch.randn(2, 4, 3)
    with torch.no_grad():
        out = model(actions=actions, states=states, pixel_values_videos=frames, auto_steps=2)
        next_frames = model.encode(frames[:, 1:])  # (2, 3*16, 64): each frame is encoded on its own
        current = model.encode(frames[:, :-1])  # (2, 3*16, 64)
        teacher = model.predict(model.encode(frames[:, :-1]), actions, states[:, :-1])  # frames 0..2 -> 1..3
    torch.testing.assert_close(out.targets, next_frames, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.teacher_forced, teacher, atol=1e-5, rtol=0)
    assert (out.targets - current).abs().mean() > 0.5  # the identity target is far from it
    loss, logs = world_model_loss(out, {})
    hand_teacher = (teacher - next_frames).abs().mean()
    hand_rollout = (out.rollout - next_frames[:, :32]).abs().mean()  # R = 2 frames of 16 tokens
    assert logs["teacher_forcing_loss"] == pytest.approx(hand_teacher.item(), rel=1e-5)
    assert logs["rollout_loss"] == pytest.approx(hand_rollout.item(), rel=1e-5)
    assert loss.item() == pytest.approx((hand_teacher + hand_rollout).item(), rel=1e-5)
    # negative control: the same hand loss toward the current frames is another number (100x the tolerance away)
    identity = (teacher - current).abs().mean() + (out.rollout - current[:, :32]).abs().mean()
    assert abs(identity.item() - loss.item()) > 1e-3 * loss.item()


def test_world_model_train_step_moves_the_predictor_toward_the_next_frames(tiny_ac_config,
                                                                         fresh_accelerate_state) -> None:
    """One shared `train_step` with `world_model_loss` (the recipe's objective) equals one hand-written SGD step on
    L1 toward the next frames' latents, and differs from a step toward the current frames (an identity model)."""
    base = hf_jepa.JepaWorldModel(tiny_ac_config).train()
    frames, actions, states = torch.randn(2, 4, 3, 32, 32), torch.randn(2, 3, 3), torch.randn(2, 4, 3)
    with torch.no_grad():
        latents = base.encode(frames)  # (2, 4*16, 64)
    n = 16  # tokens per frame

    def hand_step(targets: torch.Tensor) -> dict[str, torch.Tensor]:
        model = copy.deepcopy(base)
        optimizer = torch.optim.SGD(model.predictor.parameters(), lr=0.5)
        out = model(actions=actions, states=states, latents=latents, auto_steps=2)
        loss = (out.teacher_forced - targets).abs().mean() + (out.rollout - targets[:, :2 * n]).abs().mean()
        loss.backward()
        optimizer.step()
        return model.predictor.state_dict()

    model = copy.deepcopy(base)
    optimizer = torch.optim.SGD(model.predictor.parameters(), lr=0.5)
    batch = {"actions": actions, "states": states, "latents": latents, "auto_steps": 2}
    train_step(Accelerator(cpu=True), model, batch, optimizer, None, compute_loss=world_model_loss,
               max_grad_norm=None, ema_momentum=None)
    stepped = model.predictor.state_dict()
    toward_next, toward_current = hand_step(latents[:, n:]), hand_step(latents[:, :-n])
    moved = max((stepped[k] - base.predictor.state_dict()[k]).abs().max().item() for k in stepped)
    assert moved > 1e-3  # the step did something
    for name, value in stepped.items():
        torch.testing.assert_close(value, toward_next[name], atol=1e-6, rtol=0, msg=name)
    assert any(not torch.allclose(stepped[k], toward_current[k], atol=1e-4) for k in stepped)


@pytest.mark.parametrize("family", ["ijepa", "vjepa2", "ac"])
def test_save_load_round_trip_and_auto_classes(family, tmp_path, tiny_ijepa_config, tiny_vjepa2_config,
                                               tiny_ac_config) -> None:
    if family == "ijepa":
        model, x = hf_jepa.ImageJepaForPreTraining(tiny_ijepa_config), {"pixel_values": torch.randn(1, 3, 32, 32)}
    elif family == "vjepa2":
        model, x = hf_jepa.VideoJepaForPreTraining(tiny_vjepa2_config), {
            "pixel_values_videos": torch.randn(1, 4, 3, 32, 32)}
    else:
        model = hf_jepa.JepaWorldModel(tiny_ac_config)
    model.eval().save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"].startswith("easy_") and "AutoModel" in config["auto_map"]
    assert type(AutoConfig.from_pretrained(tmp_path)).__name__.endswith("Config")
    loaded, info = AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    loaded.eval()
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    if family == "ac":
        # the predictor comes back too: teacher-forced and rollout outputs equal the saved model's, bit for bit
        inputs = (torch.randn(1, 3, 3, 32, 32), torch.randn(1, 2, 3), torch.randn(1, 3, 3))
        expected, got = world_model_outputs(model, *inputs), world_model_outputs(loaded, *inputs)
        for name in ("latents", "teacher_forced", "rollout"):
            torch.testing.assert_close(got[name], expected[name], atol=0, rtol=0, msg=name)
        # negative control: a model whose predictor is freshly initialised (what a load that dropped or misnamed
        # the predictor's tensors gives) has the same latents but other predictions
        fresh = hf_jepa.JepaWorldModel(tiny_ac_config).eval()
        fresh.encoder.load_state_dict(model.encoder.state_dict())
        other = world_model_outputs(fresh, *inputs)
        torch.testing.assert_close(other["latents"], expected["latents"], atol=0, rtol=0)
        assert not torch.allclose(other["teacher_forced"], expected["teacher_forced"], atol=1e-3)
        assert not torch.allclose(other["rollout"], expected["rollout"], atol=1e-3)
        return
    with torch.no_grad():
        # AutoModel on a pretraining folder = the EMA target encoder
        torch.testing.assert_close(loaded(**x).last_hidden_state, model.target_encoder(**x).last_hidden_state,
                                   atol=0, rtol=0)
        again = AutoModelForPreTraining.from_pretrained(tmp_path)
        for a, b in zip(again.state_dict().values(), model.state_dict().values(), strict=True):
            assert torch.equal(a, b)


def test_remote_code_loads_without_hf_jepa(tmp_path, tiny_ac_config) -> None:
    """The saved folder carries its modeling files: a process that cannot import hf_jepa loads it."""
    model = hf_jepa.JepaWorldModel(tiny_ac_config).eval()
    model.save_pretrained(tmp_path / "wm")
    inputs = (torch.randn(1, 3, 3, 32, 32), torch.randn(1, 2, 3), torch.randn(1, 3, 3))  # frames, actions, states
    torch.save(inputs, tmp_path / "inputs.pt")
    torch.save(world_model_outputs(model, *inputs), tmp_path / "expected.pt")
    result = run_python(world_model_outputs_source() + textwrap.dedent(f"""
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / 'wm')!r}, trust_remote_code=True).eval()
        got = world_model_outputs(model, *torch.load({str(tmp_path / 'inputs.pt')!r}, weights_only=True))
        expected = torch.load({str(tmp_path / 'expected.pt')!r}, weights_only=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        for name in ("latents", "teacher_forced", "rollout"):  # the encoder and the predictor
            torch.testing.assert_close(got[name], expected[name], atol=0, rtol=0, msg=name)
        # attn_implementation reaches the remote code: eager agrees with SDPA and returns attention maps
        eager = AutoModel.from_pretrained({str(tmp_path / 'wm')!r}, trust_remote_code=True,
                                          attn_implementation="eager").eval()
        assert eager.config._attn_implementation == eager.encoder.config._attn_implementation == "eager"
        got = world_model_outputs(eager, *torch.load({str(tmp_path / 'inputs.pt')!r}, weights_only=True))
        for name in ("latents", "teacher_forced", "rollout"):
            torch.testing.assert_close(got[name], expected[name], atol=1e-5, rtol=1e-5, msg=name)
        with torch.no_grad():
            maps = eager.encoder(torch.zeros(1, 2, 3, 32, 32), output_attentions=True).attentions
        assert len(maps) == 2 and maps[0].shape == (1, 4, 16, 16), [m.shape for m in maps]
        print("REMOTE_OK", type(model).__name__)
    """), tmp_path, block_hf_jepa=True)
    assert "REMOTE_OK JepaWorldModel" in result.stdout, result.stderr[-3000:]


def test_gradient_checkpointing_gives_same_gradients(tiny_vjepa2_config) -> None:
    model = hf_jepa.VideoJepaModel(tiny_vjepa2_config).train()
    video = torch.randn(1, 4, 3, 32, 32)
    model(video).last_hidden_state.square().mean().backward()
    expected = model.blocks[0].attn.qkv.weight.grad.clone()
    model.zero_grad()
    model.gradient_checkpointing_enable()
    model(video).last_hidden_state.square().mean().backward()
    torch.testing.assert_close(model.blocks[0].attn.qkv.weight.grad, expected, atol=1e-6, rtol=1e-5)


def test_kv_cache_expand_broadcasts() -> None:
    cache = KVCache(1)
    cache.update(0, torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4))
    wide = cache.expand(5)
    assert wide.length == 3 and wide.keys[0].shape == (5, 2, 3, 4)


@pytest.mark.parametrize("family", ["ijepa", "vjepa2"])
def test_sigreg_pretraining_folder_loads_the_online_encoder(family, tmp_path, tiny_ijepa_config,
                                                            tiny_vjepa2_config) -> None:
    """Without an EMA target (SIGReg) the trained encoder is the online one: AutoModel and the classifier load it."""
    if family == "ijepa":
        tiny_ijepa_config.use_ema_target = False
        model = hf_jepa.ImageJepaForPreTraining(tiny_ijepa_config)
        classifier_cls = hf_jepa.ImageJepaForImageClassification
    else:
        tiny_vjepa2_config.use_ema_target = False
        model = hf_jepa.VideoJepaForPreTraining(tiny_vjepa2_config)
        classifier_cls = hf_jepa.VideoJepaForVideoClassification
    assert model.target_encoder is None
    with torch.no_grad():  # "trained" weights: not what a fresh encoder would be initialized to
        for p in model.encoder.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.save_pretrained(tmp_path)
    assert not any(k.startswith("target_encoder.") for k in model.state_dict())  # the model itself is unchanged
    trained = model.encoder.state_dict()

    encoder = AutoModel.from_pretrained(tmp_path)
    assert encoder.state_dict().keys() == trained.keys()
    assert all(torch.equal(encoder.state_dict()[k], v) for k, v in trained.items())
    classifier = classifier_cls.from_pretrained(tmp_path)
    assert all(torch.equal(classifier.target_encoder.state_dict()[k], v) for k, v in trained.items())
    again, info = AutoModelForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert again.target_encoder is None and not info["missing_keys"] and not info["unexpected_keys"]
    assert again.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(again.state_dict()[k], v) for k, v in model.state_dict().items())
