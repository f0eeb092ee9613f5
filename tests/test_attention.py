"""Attention kernels: `config._attn_implementation` dispatch (eager / SDPA / registered kernels), attention maps
(`output_attentions`), and the errors for kernels that cannot run here."""

from __future__ import annotations

import pytest
import torch
from hf_jepa.modeling import layers
from transformers import AttentionInterface

import hf_jepa


def _models(family: str, ijepa_cfg, vjepa2_cfg, ac_cfg):
    if family == "ijepa":
        return hf_jepa.ImageJepaForPreTraining(ijepa_cfg).eval()
    if family == "vjepa2":
        return hf_jepa.VideoJepaForPreTraining(vjepa2_cfg).eval()
    return hf_jepa.JepaWorldModel(ac_cfg).eval()


def _outputs(family: str, model) -> list[torch.Tensor]:
    """Every attention path of a family: encoder (all tokens and a masked subset), predictor; for the world model
    the block-causal teacher-forced pass and a KV-cached rollout."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        if family == "ijepa":
            x = torch.randn(2, 3, 32, 32, generator=g)
            ctx, tgt = torch.tensor([[0, 2, 5, 7, 9, 11]] * 2), torch.tensor([[1, 3, 4]] * 2)
            z = model.encoder(x, context_mask=ctx).last_hidden_state
            return [model.target_encoder(x).last_hidden_state, z, model.predictor(z, ctx, tgt)]
        if family == "vjepa2":
            x = torch.randn(2, 4, 3, 32, 32, generator=g)
            ctx, tgt = torch.tensor([[0, 2, 5, 7, 9, 11, 20, 30]] * 2), torch.tensor([[1, 3, 17, 31]] * 2)
            z = model.encoder(x, context_mask=ctx).last_hidden_state
            return [model.target_encoder(x).last_hidden_state, z, model.predictor(z, ctx, tgt)]
        frames = torch.randn(2, 3, 3, 32, 32, generator=g)
        latents = model.encode(frames)  # (2, 3*16, 64)
        actions, states = torch.randn(2, 4, 3, generator=g), torch.randn(2, 3, 3, generator=g)
        return [latents, model.predict(latents, actions[:, :3], states),
                model.rollout(latents[:, :32], actions[:, :3], states[:, :2], use_cache=True)]


@pytest.mark.parametrize("family", ["ijepa", "vjepa2", "ac"])
def test_eager_and_sdpa_agree(family, tiny_ijepa_config, tiny_vjepa2_config, tiny_ac_config) -> None:
    model = _models(family, tiny_ijepa_config, tiny_vjepa2_config, tiny_ac_config)
    assert model.config._attn_implementation == "sdpa"  # the default
    sdpa = _outputs(family, model)
    model.set_attn_implementation("eager")
    blocks = [m for m in model.modules() if isinstance(m, layers.Attention)]
    assert blocks and all(m.attn_implementation == "eager" for m in blocks)  # encoder, target, predictor alike
    eager = _outputs(family, model)
    for a, b in zip(sdpa, eager, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["ijepa", "ac"])
def test_from_pretrained_attn_implementation_runs_that_kernel(family, tmp_path, monkeypatch, tiny_ijepa_config,
                                                              tiny_vjepa2_config, tiny_ac_config) -> None:
    """`from_pretrained(..., attn_implementation=...)` runs the named kernel in every layer: "eager" calls
    `eager_attention_forward`, and a kernel registered with transformers' `AttentionInterface` is dispatched."""
    _models(family, tiny_ijepa_config, tiny_vjepa2_config, tiny_ac_config).save_pretrained(tmp_path)
    cls = hf_jepa.ImageJepaForPreTraining if family == "ijepa" else hf_jepa.JepaWorldModel
    calls: list[str] = []
    eager = layers.eager_attention_forward

    def counting_eager(*args, **kwargs):
        calls.append("eager")
        return eager(*args, **kwargs)

    monkeypatch.setattr(layers, "eager_attention_forward", counting_eager)
    model = cls.from_pretrained(tmp_path, attn_implementation="eager").eval()
    n_layers = sum(isinstance(m, layers.Attention) for m in model.modules())
    _outputs(family, model)
    assert calls and len(calls) >= n_layers
    sdpa_model = cls.from_pretrained(tmp_path).eval()
    calls.clear()
    expected = _outputs(family, sdpa_model)
    assert sdpa_model.config._attn_implementation == "sdpa" and not calls  # SDPA stays the default

    def counting_sdpa(module, query, key, value, attention_mask, **kwargs):
        calls.append("custom")
        return layers.ALL_ATTENTION_FUNCTIONS["sdpa"](module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register("counting_sdpa_for_tests", counting_sdpa)
    custom = cls.from_pretrained(tmp_path, attn_implementation="counting_sdpa_for_tests").eval()
    got = _outputs(family, custom)
    assert calls.count("custom") >= n_layers and "eager" not in calls
    for a, b in zip(expected, got, strict=True):
        torch.testing.assert_close(b, a, atol=0, rtol=0)


def test_output_attentions_maps(tiny_ijepa_config, tiny_vjepa2_config) -> None:
    """Maps per block, (B, heads, K, K), rows summing to 1; on images, video, a masked subset and the classifier."""
    image = hf_jepa.ImageJepaModel(tiny_ijepa_config).eval()
    video = hf_jepa.VideoJepaModel(tiny_vjepa2_config).eval()
    x, v = torch.randn(2, 3, 32, 32), torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        plain = image(x)
        out = image(x, output_attentions=True)
        masked = video(v, context_mask=torch.tensor([[0, 4, 9, 12, 30]] * 2), output_attentions=True)
    assert plain.attentions is None  # off by default (config.output_attentions)
    torch.testing.assert_close(out.last_hidden_state, plain.last_hidden_state, atol=1e-5, rtol=1e-5)
    for maps, (b, heads, n, depth) in ((out.attentions, (2, 4, 16, 2)), (masked.attentions, (2, 4, 5, 2))):
        assert len(maps) == depth
        for m in maps:
            assert m.shape == (b, heads, n, n) and (m >= 0).all()
            torch.testing.assert_close(m.sum(-1), torch.ones(b, heads, n))
    # one map by hand: block 0's softmax(q k^T / sqrt(d)) from its fused qkv
    blk = image.blocks[0]
    with torch.no_grad():
        h = blk.norm1(image.patch_embed(x) + image.position_table(4, 4))  # (B, N, D)
        q, k, _ = blk.attn.qkv(h).view(2, 16, 3, 4, 16).permute(2, 0, 3, 1, 4)  # 3 x (B, h, N, d)
    torch.testing.assert_close(out.attentions[0], torch.softmax(q @ k.transpose(-1, -2) / 4.0, -1), atol=1e-6,
                               rtol=1e-5)

    tiny_ijepa_config._attn_implementation = "eager"  # transformers allows config.output_attentions with eager only
    tiny_ijepa_config.output_attentions = True  # the config default
    classifier = hf_jepa.ImageJepaForImageClassification(tiny_ijepa_config).eval()
    with torch.no_grad():
        logits = classifier(x).attentions
    assert len(logits) == 2 and logits[0].shape == (2, 4, 16, 16)


def test_predictor_maps_follow_the_block_causal_mask(tiny_ac_config) -> None:
    """The world model's predictor maps: (B, heads, T*(c+N), T*(c+N)), zero on later steps; with a KV cache the
    new step's rows span the cached keys."""
    model = hf_jepa.JepaWorldModel(tiny_ac_config).eval()
    per_step = 2 + 16
    z, a, s = torch.randn(1, 3 * 16, 64), torch.randn(1, 3, 3), torch.randn(1, 3, 3)
    maps: list[torch.Tensor] = []
    with torch.no_grad():
        model.predictor(z, a, s, attentions=maps)
    assert len(maps) == 2 and maps[0].shape == (1, 2, 3 * per_step, 3 * per_step)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(1, 2, 3 * per_step))
    step = torch.arange(3).repeat_interleave(per_step)
    later = step[None, :] > step[:, None]  # (Nq, Nk): a key of a later step
    assert maps[0][..., later].abs().max() == 0 and maps[0][..., ~later].min() > 0
    cache, cached_maps = layers.KVCache(2), []
    with torch.no_grad():
        model.predictor(z[:, :32], a[:, :2], s[:, :2], kv_cache=cache)
        model.predictor(z[:, 32:], a[:, 2:], s[:, 2:], kv_cache=cache, step_offset=2, attentions=cached_maps)
    torch.testing.assert_close(cached_maps[0], maps[0][:, :, 2 * per_step:], atol=1e-6, rtol=1e-5)


def test_mask_predictor_maps(tiny_vjepa2_config) -> None:
    model = hf_jepa.VideoJepaForPreTraining(tiny_vjepa2_config).eval()
    ctx, tgt = torch.tensor([[0, 2, 5, 7]]), torch.tensor([[1, 3, 17]])
    maps: list[torch.Tensor] = []
    with torch.no_grad():
        z = model.encoder(torch.randn(1, 4, 3, 32, 32), context_mask=ctx).last_hidden_state
        model.predictor(z, ctx, tgt, attentions=maps)
    assert [m.shape for m in maps] == [(1, 2, 7, 7)] * 2
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(1, 2, 7))


def test_flash_attention_is_refused_clearly(tmp_path, tiny_ijepa_config, tiny_ac_config) -> None:
    """Flash attention where transformers cannot run it raises (no silent fallback); the block-causal predictor
    names the kernels that take its mask."""
    hf_jepa.ImageJepaModel(tiny_ijepa_config).save_pretrained(tmp_path)
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="FlashAttention2"):
            hf_jepa.ImageJepaModel.from_pretrained(tmp_path, attn_implementation="flash_attention_2")
    model = hf_jepa.JepaWorldModel(tiny_ac_config).eval()
    model.config._attn_implementation_internal = "flash_attention_2"  # as if set on a machine that has it
    with pytest.raises(ValueError, match="attn_implementation='flash_attention_2': expected 'sdpa', 'eager' or"):
        model.predict(torch.randn(1, 2 * 16, 64), torch.randn(1, 2, 3), torch.randn(1, 2, 3))


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="flex_attention's compiled CPU kernel aborts on a masked "
                    "score_mod with torch 2.14 (the unmasked encoders run)")
def test_flex_attention_matches_sdpa_with_the_block_causal_mask(tiny_ac_config) -> None:
    """flex_attention (compiled) reads the block-causal mask as an additive score mask."""
    model = hf_jepa.JepaWorldModel(tiny_ac_config).eval().cuda()
    z, a, s = torch.randn(1, 2 * 16, 64).cuda(), torch.randn(1, 2, 3).cuda(), torch.randn(1, 2, 3).cuda()
    with torch.no_grad():
        expected = model.predict(z, a, s)
        model.set_attn_implementation("flex_attention")
        got = model.predict(z, a, s)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["ijepa", "vjepa2"])
def test_space_features_attention_map(family, tiny_ijepa_config, tiny_vjepa2_config) -> None:
    """The Features tab's attention map: the last block's attention received per patch (mean over heads and queries),
    one (H', W') map per image / tubelet, summing to 1 per image (I-JEPA) or per clip (V-JEPA 2); drawn beside the
    PCA."""
    from hf_jepa.space.features import extract_patch_features, features_panel

    model = (hf_jepa.ImageJepaModel(tiny_ijepa_config) if family == "ijepa"
             else hf_jepa.VideoJepaModel(tiny_vjepa2_config)).eval()
    frames = torch.randint(0, 256, (4, 3, 40, 48), dtype=torch.uint8)
    result = extract_patch_features(model, frames)
    steps = 4 if family == "ijepa" else 2
    assert result.attention.shape == (steps, 4, 4) == result.tokens.shape[:3]
    per = result.attention.sum(dim=(1, 2)) if family == "ijepa" else result.attention.sum()[None]
    torch.testing.assert_close(per, torch.ones_like(per))
    panel = features_panel(result, tile=32, gap=2)
    assert panel.shape == (3 * 32 + 2 * 2, steps * 32 + (steps - 1) * 2, 3)
    assert panel[2 * 34:].std() > 0  # the attention row is drawn
    no_maps = extract_patch_features(model, frames, with_attention=False)
    assert no_maps.attention is None and features_panel(no_maps, tile=32, gap=2).shape[0] == 2 * 32 + 2
    torch.testing.assert_close(no_maps.tokens, result.tokens, atol=1e-5, rtol=1e-5)
