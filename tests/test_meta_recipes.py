"""Meta's published training recipes as files (configs/meta/): every hyper-parameter equal to Meta's config, the
schedules they build, the options they need (weight-decay schedule, no clipping, fps, the cool-down phase with its
optimizer state) and the errors a wrong recipe gets before training starts.

Meta's numbers below are copied from facebookresearch/ijepa configs/*.yaml and facebookresearch/vjepa2
configs/train/*/*.yaml (the products epochs x ipe etc. are computed here, as Meta's train.py computes them).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaForPreTraining

from hf_jepa.convert import convert_meta_checkpoint
from hf_jepa.masks import MultiBlockMaskConfig2D, MultiBlockMaskConfig3D
from hf_jepa.pretraining import PretrainArguments, build_model_config, check_video_fps, meta_reinit
from hf_jepa.training import HyperParamScheduler, build_optimizer, build_schedules
from hf_jepa.training.checkpoints import load_phase_checkpoint
from hf_jepa.training.runner import parse_flags, resolve_global_batch

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "configs" / "meta"
FIXTURES = Path(__file__).parent / "fixtures" / "meta"

# Meta's ViT sizes by model_name: (width, depth, heads, mlp width).
META_VITS = {"vit_large": (1024, 24, 16, 4096), "vit_huge": (1280, 32, 16, 5120),
             "vit_giant": (1408, 40, 16, 6144), "vit_giant_xformers": (1408, 40, 22, 6144)}

# I-JEPA configs: model, patch, crop, pred_depth, per-GPU batch, GPUs (global 2048), epochs, warmup; ipe from the data.
IJEPA = {
    "in1k_vith14_ep300": dict(model="vit_huge", patch=14, crop=224, pred_depth=12, batch=128, gpus=16, epochs=300,
                              warmup=40, ipe=625),
    "in1k_vith16-448_ep300": dict(model="vit_huge", patch=16, crop=448, pred_depth=12, batch=16, gpus=128,
                                  epochs=300, warmup=40, ipe=625),
    "in22k_vith14_ep66": dict(model="vit_huge", patch=14, crop=224, pred_depth=12, batch=32, gpus=64, epochs=66,
                              warmup=3, ipe=6932),
    "in22k_vitg16_ep44": dict(model="vit_giant", patch=16, crop=224, pred_depth=16, batch=16, gpus=128, epochs=44,
                              warmup=3, ipe=6932),
}
IJEPA_COMMON = dict(start_lr=0.0002, lr=0.001, final_lr=1.0e-06, weight_decay=0.04, final_weight_decay=0.4,
                    ema=(0.996, 1.0), ipe_scale=1.0, pred_emb_dim=384)

# V-JEPA 2 configs: (size folder, name) -> model, per-GPU batch, GPUs, frames, crop, epochs, ipe, warmup, anneal.
VJEPA2 = {
    ("vitl16", "pretrain-256px-16f"): dict(model="vit_large", batch=24, gpus=128, fpc=16, crop=256, epochs=10,
                                           ipe=300, warmup=40, anneal=False),
    ("vith16", "pretrain-256px-16f"): dict(model="vit_huge", batch=24, gpus=128, fpc=16, crop=256, epochs=10,
                                           ipe=300, warmup=40, anneal=False),
    ("vitg16", "pretrain-256px-16f"): dict(model="vit_giant_xformers", batch=24, gpus=128, fpc=16, crop=256,
                                           epochs=800, ipe=300, warmup=40, anneal=False),
    ("vitl16", "cooldown-256px-64f"): dict(model="vit_large", batch=12, gpus=256, fpc=64, crop=256, epochs=40,
                                           ipe=300, warmup=0, anneal=True),
    ("vith16", "cooldown-256px-64f"): dict(model="vit_huge", batch=12, gpus=256, fpc=64, crop=256, epochs=40,
                                           ipe=300, warmup=0, anneal=True),
    ("vitg16", "cooldown-256px-64f"): dict(model="vit_giant_xformers", batch=6, gpus=512, fpc=64, crop=256,
                                           epochs=4, ipe=30, warmup=0, anneal=True),
    ("vitg16", "cooldown-384px-64f"): dict(model="vit_giant_xformers", batch=6, gpus=512, fpc=64, crop=384,
                                           epochs=40, ipe=300, warmup=0, anneal=True),
}
VJEPA2_COMMON = dict(start_lr=0.0001, lr=0.000525, weight_decay=0.04, final_weight_decay=0.04,
                     ema=(0.99925, 0.99925), ipe_scale=1.25, fps=4, seed=239, pred=(384, 12, 12))


def parse(path: Path | str, *flags: str) -> PretrainArguments:
    return parse_flags(PretrainArguments, [str(path), *flags])


def check_vit(config, model_name: str, prefix: str = "") -> None:
    width, depth, heads, mlp = META_VITS[model_name]
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size) \
        == (width, depth, heads, mlp)


@pytest.mark.parametrize("name", sorted(IJEPA))
def test_ijepa_recipe_equals_meta_config(name: str) -> None:
    meta, common = IJEPA[name], IJEPA_COMMON
    args = parse(RECIPES / "ijepa" / f"{name}.yaml")
    ipe = meta["ipe"]
    assert args.model_type == "ijepa" and args.objective == "meta"
    assert args.max_steps == meta["epochs"] * ipe
    assert args.schedule_steps == int(common["ipe_scale"] * meta["epochs"] * ipe)
    assert args.warmup_steps == int(meta["warmup"] * ipe)
    assert (args.start_lr, args.learning_rate, args.final_lr) == (common["start_lr"], common["lr"],
                                                                  common["final_lr"])
    assert (args.weight_decay, args.final_weight_decay) == (common["weight_decay"], common["final_weight_decay"])
    assert (args.ema_start, args.ema_end) == common["ema"]
    assert args.lr_schedule == "warmup_cosine" and args.schedule_offset == 1
    assert args.per_device_train_batch_size == meta["batch"]
    assert args.global_batch_size == meta["batch"] * meta["gpus"] == 2048
    assert args.max_grad_norm is None and args.mixed_precision == "bf16" and args.seed == 0
    assert args.meta_init and args.meta_compatible_masks and args.weight_decay_mask_tokens
    config = build_model_config(args)
    check_vit(config, meta["model"])
    assert (config.patch_size, config.image_size) == (meta["patch"], meta["crop"])
    # Meta's predictor: pred_emb_dim wide, pred_depth deep, the encoder's heads (src/helper.py init_model)
    assert (config.predictor_hidden_size, config.predictor_num_hidden_layers, config.predictor_num_attention_heads,
            config.predictor_intermediate_size) == (384, meta["pred_depth"], config.num_attention_heads, 4 * 384)
    assert config.use_ema_target


def test_ijepa_masks_and_crops_are_meta_defaults() -> None:
    masks = MultiBlockMaskConfig2D()  # mask.* of every I-JEPA config
    assert (masks.enc_mask_scale, masks.pred_mask_scale, masks.aspect_ratio) == ((0.85, 1.0), (0.15, 0.2),
                                                                                 (0.75, 1.5))
    assert (masks.nenc, masks.npred, masks.min_keep, masks.allow_overlap) == (1, 4, 10, False)
    from hf_jepa.data.images import ImageConfig

    crop = ImageConfig()
    assert crop.random_resized_scale == (0.3, 1.0)  # data.crop_scale; torchvision's default aspect (3/4, 4/3)
    assert crop.random_resized_aspect_ratio == pytest.approx((3 / 4, 4 / 3))


@pytest.mark.parametrize(("size", "name"), sorted(VJEPA2))
def test_vjepa2_recipe_equals_meta_config(size: str, name: str) -> None:
    meta, common = VJEPA2[(size, name)], VJEPA2_COMMON
    args = parse(RECIPES / "vjepa2" / size / f"{name}.yaml")
    steps = meta["epochs"] * meta["ipe"]
    assert args.model_type == "vjepa2" and args.objective == "meta"
    assert args.max_steps == steps
    assert args.schedule_steps == int(common["ipe_scale"] * steps)
    assert args.warmup_steps == int(meta["warmup"] * meta["ipe"])
    assert args.lr_schedule == ("linear_decay" if meta["anneal"] else "warmup_constant")
    assert (args.start_lr, args.learning_rate) == (common["start_lr"], common["lr"])
    assert args.final_lr == (1.0e-06 if meta["anneal"] else common["lr"])
    assert (args.weight_decay, args.final_weight_decay) == (common["weight_decay"], common["final_weight_decay"])
    assert (args.ema_start, args.ema_end) == common["ema"]
    assert args.per_device_train_batch_size == meta["batch"]
    assert args.global_batch_size == meta["batch"] * meta["gpus"] == 3072
    assert args.frames_per_clip == meta["fpc"] and args.fps == common["fps"] and args.seed == common["seed"]
    assert args.max_grad_norm is None and args.mixed_precision == "bf16" and args.gradient_checkpointing
    assert args.schedule_offset == 1 and args.weight_decay_mask_tokens
    assert args.stop_on_nonfinite_loss  # app/vjepa/train.py asserts the loss is not NaN
    assert (args.init_from_checkpoint is not None) == meta["anneal"]
    if meta["anneal"]:  # the cool-down continues the pretraining recipe's output_dir
        pretrain = parse(RECIPES / "vjepa2" / size / "pretrain-256px-16f.yaml")
        assert args.init_from_checkpoint == pretrain.output_dir
    config = build_model_config(args)
    check_vit(config, meta["model"])
    assert (config.image_size, config.patch_size, config.tubelet_size, config.num_frames) == (
        meta["crop"], 16, 2, meta["fpc"])
    assert (config.predictor_hidden_size, config.predictor_num_hidden_layers,
            config.predictor_num_attention_heads) == common["pred"]
    assert config.use_rope if hasattr(config, "use_rope") else True


def test_vjepa2_masks_at_meta_grid_are_meta_families() -> None:
    config = MultiBlockMaskConfig3D.for_grid((8, 16, 16))  # 16 frames / 2, 256 px / 16
    families = [(f.num_blocks, f.spatial_scale, f.temporal_scale, f.aspect_ratio, f.max_temporal_keep, f.max_keep)
                for f in config.families]
    assert families == [(8, (0.15, 0.15), (1.0, 1.0), (0.75, 1.5), 1.0, None),
                         (2, (0.7, 0.7), (1.0, 1.0), (0.75, 1.5), 1.0, None)]


# ------------------------------------------------------------------------------------------------ schedules


def schedule_args(**kw):
    base = dict(lr_schedule="warmup_cosine", max_steps=100, schedule_steps=None, warmup_steps=10, decay_steps=None,
                start_lr=2e-4, learning_rate=1e-3, final_lr=1e-6, weight_decay=0.04, final_weight_decay=None,
                schedule_offset=0, ema_start=None, ema_end=None, objective="meta")
    return SimpleNamespace(**{**base, **kw})


def test_ijepa_schedules_match_meta_formulas_at_known_steps() -> None:
    """in1k_vith14_ep300: Meta's update k uses WarmupCosineSchedule / CosineWDSchedule at s = k + 1 and the
    momentum at k; the values at hand-picked steps from Meta's formulas."""
    s = build_schedules(parse(RECIPES / "ijepa" / "in1k_vith14_ep300.yaml"))
    assert s.lr(0) == pytest.approx(2e-4 + 1 / 25000 * (1e-3 - 2e-4), rel=1e-12)
    assert s.lr(24998) == pytest.approx(2e-4 + 24999 / 25000 * 8e-4, rel=1e-12)
    assert s.lr(24999) == pytest.approx(1e-3, rel=1e-12)  # s = warmup: the cosine's top
    mid = 25000 + (187500 - 25000) // 2 - 1  # s at the cosine's middle
    assert s.lr(mid) == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5, rel=1e-12)
    assert s.lr(187499) == pytest.approx(1e-6, rel=1e-9)
    assert s.weight_decay(0) == pytest.approx(0.4 + (0.04 - 0.4) * 0.5 * (1 + math.cos(math.pi / 187500)))
    assert s.weight_decay(93749) == pytest.approx(0.22, rel=1e-12)  # s = T/2
    assert s.weight_decay(187499) == pytest.approx(0.4)
    assert s.momentum(0) == 0.996 and s.momentum(93750) == pytest.approx(0.998, rel=1e-15)
    assert s.momentum(187500) == 1.0
    lrs = [s.lr(k) for k in range(0, 187500, 500)]
    peak = lrs.index(max(lrs))
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1:peak + 1], strict=True))  # rises during warmup
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:], strict=False))  # then never rises


def test_vjepa2_schedules_warmup_constant_and_cooldown_end() -> None:
    pre = build_schedules(parse(RECIPES / "vjepa2" / "vitg16" / "pretrain-256px-16f.yaml"))
    assert pre.lr(0) == pytest.approx(1e-4 + 1 / 12000 * (5.25e-4 - 1e-4), rel=1e-12)
    assert pre.lr(11999) == pre.lr(239999) == 5.25e-4  # warmup then constant: no decay in the pretraining phase
    assert pre.weight_decay(123) == 0.04 and pre.momentum(0) == pre.momentum(239999) == 0.99925
    short = build_schedules(parse(RECIPES / "vjepa2" / "vitl16" / "pretrain-256px-16f.yaml"))
    assert short.lr(2999) == pytest.approx(1e-4 + 3000 / 12000 * 4.25e-4, rel=1e-12)  # ends inside the warmup
    cool = build_schedules(parse(RECIPES / "vjepa2" / "vitl16" / "cooldown-256px-64f.yaml"))
    assert cool.lr(0) == pytest.approx(5.25e-4 + 1 / 15000 * (1e-6 - 5.25e-4), rel=1e-12)
    # the last update uses s = 12000 of T_max = 15000: the cool-down ends at ~1.06e-4, not at final_lr
    assert cool.lr(11999) == pytest.approx(5.25e-4 + 0.8 * (1e-6 - 5.25e-4), rel=1e-12)
    assert cool.lr(11999) == pytest.approx(1.058e-4, rel=1e-3)


def test_warmup_stable_decay_and_offset() -> None:
    s = build_schedules(schedule_args(lr_schedule="warmup_stable_decay", max_steps=100, warmup_steps=10,
                                      decay_steps=20, start_lr=0.0, learning_rate=1.0, final_lr=0.0))
    assert [s.lr(k) for k in (0, 5, 10, 79, 90, 100)] == pytest.approx([0.0, 0.5, 1.0, 1.0, 0.5, 0.0])
    shifted = build_schedules(schedule_args(lr_schedule="warmup_stable_decay", max_steps=100, warmup_steps=10,
                                            decay_steps=20, start_lr=0.0, learning_rate=1.0, final_lr=0.0,
                                            schedule_offset=1))
    assert all(shifted.lr(k) == s.lr(k + 1) for k in range(120))


def test_schedules_are_pure_functions_of_the_step() -> None:
    args = schedule_args(final_weight_decay=0.4, ema_start=0.996, ema_end=1.0, schedule_offset=1)
    s = build_schedules(args)
    forward = [(s.lr(k), s.weight_decay(k), s.momentum(k)) for k in range(100)]
    again = build_schedules(args)
    backward = [(again.lr(k), again.weight_decay(k), again.momentum(k)) for k in reversed(range(100))][::-1]
    assert forward == backward


def test_weight_decay_schedule_reaches_decaying_groups_only_and_survives_resume() -> None:
    torch.manual_seed(0)
    model = ImageJepaForPreTraining(ImageJepaConfig.from_preset("tiny"))
    ours = build_optimizer(model, lr=1e-3, weight_decay=0.04)
    names = {id(p): n for n, p in model.named_parameters()}
    decay_group = next(g for g in ours.param_groups if not g["no_weight_decay"])
    assert not any(names[id(p)].endswith(".bias") or p.ndim == 1 for p in decay_group["params"])
    assert not any("mask_token" in names[id(p)] for p in decay_group["params"])  # ours exempts it
    meta_like = build_optimizer(model, lr=1e-3, weight_decay=0.04, no_weight_decay_names=("pos_embed",))
    decay_group = next(g for g in meta_like.param_groups if not g["no_weight_decay"])
    assert any("mask_token" in names[id(p)] for p in decay_group["params"])  # Meta decays it (3-D tensor)

    schedules = build_schedules(schedule_args(final_weight_decay=0.4, schedule_offset=1))
    scheduler = HyperParamScheduler(ours, schedules)
    for k in range(7):
        wd = {g["no_weight_decay"]: g["weight_decay"] for g in ours.param_groups}
        assert wd == {False: schedules.weight_decay(k), True: 0.0}
        assert all(g["lr"] == schedules.lr(k) for g in ours.param_groups)
        ours.step()
        scheduler.step()
    resumed_opt = build_optimizer(model, lr=1e-3, weight_decay=0.04)
    HyperParamScheduler(resumed_opt, schedules).load_state_dict(scheduler.state_dict())
    assert [(g["lr"], g["weight_decay"]) for g in resumed_opt.param_groups] == \
        [(g["lr"], g["weight_decay"]) for g in ours.param_groups]


def test_meta_init_removes_the_depth_rescale() -> None:
    torch.manual_seed(0)
    model = ImageJepaForPreTraining(ImageJepaConfig.from_preset("tiny", num_hidden_layers=8))
    stds = [b.mlp.fc2.weight.std().item() for b in model.encoder.blocks]
    # ours: block l's output projections divided by sqrt(2 l)
    assert stds == pytest.approx([0.02 / math.sqrt(2 * layer) for layer in range(1, 9)], rel=0.15)
    patch_embed = [p.clone() for n, p in model.encoder.named_parameters() if "patch" in n]
    meta_reinit(model)
    # Meta's init_model re-initialises Linear and LayerNorm only: the conv patch embedding stays as constructed
    assert patch_embed and all(torch.equal(a, p) for a, p in zip(
        patch_embed, [p for n, p in model.encoder.named_parameters() if "patch" in n], strict=True))
    stds = [b.mlp.fc2.weight.std().item() for b in model.encoder.blocks]
    assert all(abs(s - 0.02) < 0.003 for s in stds)  # Meta's runs: every block at trunc-normal(0.02)
    assert all(torch.equal(a, b) for a, b in zip(model.encoder.parameters(), model.target_encoder.parameters(),
                                                 strict=True))


# ------------------------------------------------------------------------------------------------ options, errors


def test_grad_clipping_is_off_by_default_and_switchable_from_the_command_line() -> None:
    assert parse_flags(PretrainArguments, []).max_grad_norm is None
    assert parse_flags(PretrainArguments, ["--max_grad_norm", "2.5"]).max_grad_norm == 2.5
    assert parse_flags(PretrainArguments, ["--max_grad_norm", "none"]).max_grad_norm is None
    assert parse_flags(PretrainArguments, ["--max_grad_norm", "0"]).max_grad_norm is None
    on = parse(RECIPES / "ijepa" / "in1k_vith14_ep300.yaml", "--max_grad_norm", "10")
    assert on.max_grad_norm == 10.0
    with pytest.raises(ValueError, match=r"max_grad_norm=-1.0: expected > 0, or 0 / none"):
        parse_flags(PretrainArguments, ["--max_grad_norm", "-1"])


def test_flags_after_a_recipe_override_it() -> None:
    args = parse(RECIPES / "vjepa2" / "vitl16" / "pretrain-256px-16f.yaml", "--max_steps", "7", "--preset", "tiny",
                 "--fps", "2", "--final_weight_decay", "none")
    assert (args.max_steps, args.preset, args.fps, args.final_weight_decay) == (7, "tiny", 2.0, None)
    assert args.learning_rate == 0.000525  # the rest stays the recipe's


def test_unknown_recipe_key_names_it_and_the_nearest_field(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_type: ijepa\nlerning_rate: 0.001\n")
    with pytest.raises(ValueError, match=r"lerning_rate=0.001 .*unknown; did you mean 'learning_rate'\?"):
        parse(recipe)


def test_warmup_longer_than_the_run_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"warmup_steps=50: expected <= the run's length \(max_steps=20"):
        parse_flags(PretrainArguments, ["--max_steps", "20", "--warmup_steps", "50"])
    assert parse_flags(PretrainArguments, ["--max_steps", "20", "--warmup_steps", "50",
                                           "--allow_warmup_past_end", "true"]).warmup_steps == 50
    assert parse_flags(PretrainArguments, ["--max_steps", "20"]).warmup_steps == 19  # the default fits the run


def test_global_batch_sets_accumulation_or_refuses() -> None:
    args = parse(RECIPES / "ijepa" / "in1k_vith14_ep300.yaml")
    resolve_global_batch(args, num_processes=8)
    assert args.gradient_accumulation_steps == 2  # 2048 = 128 x 8 x 2
    args = parse(RECIPES / "ijepa" / "in1k_vith14_ep300.yaml", "--per_device_train_batch_size", "100")
    with pytest.raises(ValueError, match=r"global_batch_size=2048: expected a multiple of .*= 800"):
        resolve_global_batch(args, num_processes=8)


def test_cooldown_needs_a_folder_with_optimizer_state(tmp_path: Path) -> None:
    final = tmp_path / "run" / "final"
    final.mkdir(parents=True)
    (final / "model.safetensors").write_bytes(b"")
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"init_from_checkpoint=.*final.*no optimizer state \(optimizer.bin\)"):
        load_phase_checkpoint(final, model, build_optimizer(model, lr=1e-3, weight_decay=0.0))
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_phase_checkpoint(tmp_path / "missing", model, build_optimizer(model, lr=1e-3, weight_decay=0.0))


def test_fps_the_video_cannot_provide_is_refused_before_training() -> None:
    from hf_jepa.data._stream import SampleDecodeError
    from hf_jepa.data.video import fps_frame_step

    assert fps_frame_step(30.0, 4) == 7 and fps_frame_step(29.97, 4) == 7 and fps_frame_step(25.0, 4) == 6
    with pytest.raises(SampleDecodeError, match="runs at 2 fps and cannot provide 4 fps"):
        fps_frame_step(2.0, 4)
    # the built-in moving digits run at 8 fps
    args = parse_flags(PretrainArguments, ["--model_type", "vjepa2", "--dataset_name", "builtin:moving_digits",
                                           "--fps", "10"])
    with pytest.raises(ValueError, match=r"fps=10.0: the video runs at 8 fps and cannot provide 10 fps"):
        check_video_fps(args)
    ok = parse_flags(PretrainArguments, ["--model_type", "vjepa2", "--dataset_name", "builtin:moving_digits",
                                         "--fps", "4"])
    assert check_video_fps(ok) == pytest.approx(8.0)


def test_meta_ijepa_checkpoint_converts_without_head_flags() -> None:
    """Meta's I-JEPA predictor has the encoder's heads: only the encoder's (which the width 64 cannot tell) is
    given, and the predictor's forward equals Meta's."""
    from safetensors.torch import load_file

    model = convert_meta_checkpoint(FIXTURES / "ijepa_checkpoint.pt", "ijepa", overrides={"num_attention_heads": 4})
    assert model.config.predictor_num_attention_heads == 4
    io = load_file(FIXTURES / "ijepa_io.safetensors")
    with torch.no_grad():
        z = model.encoder(io["images"], context_mask=io["context_mask"]).last_hidden_state
        torch.testing.assert_close(model.predictor(z, io["context_mask"], io["target_mask"]), io["predictor_1tgt"],
                                   atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------------ end to end


TINY = {"image_size": 32, "patch_size": 8, "num_frames": 8, "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 128, "predictor_hidden_size": 32,
        "predictor_num_hidden_layers": 1, "predictor_num_attention_heads": 2, "predictor_intermediate_size": 64}


def run_pretrain(argv: list[str]) -> None:
    spec = importlib.util.spec_from_file_location("pretrain_script", REPO / "scripts" / "pretrain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    try:
        module.main(argv)
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()


def tiny_flags(out: Path, steps: int) -> list[str]:
    return ["--preset", "tiny", "--config_overrides", json.dumps(TINY), "--dataset_name", "builtin:moving_digits",
            "--frames_per_clip", "8", "--per_device_train_batch_size", "2", "--global_batch_size", "2",
            "--mixed_precision", "no", "--gradient_checkpointing", "false", "--max_steps", str(steps),
            "--checkpointing_steps", str(steps), "--log_every", "1", "--output_dir", str(out)]


def test_vjepa2_recipe_runs_tiny_and_its_cooldown_continues_the_optimizer_state(tmp_path: Path) -> None:
    """The ViT-L pretraining recipe, shrunk by flags, through scripts/pretrain.py; then its cool-down recipe pointed
    at that run: the Adam state carries over (step counts continue), lr follows Meta's linear decay with the
    one-step offset, and lr / weight_decay are in metrics.jsonl."""
    torch.set_num_threads(1)
    pre, cool = tmp_path / "pre", tmp_path / "cool"
    run_pretrain([str(RECIPES / "vjepa2" / "vitl16" / "pretrain-256px-16f.yaml"), *tiny_flags(pre, 3),
                  "--schedule_steps", "4", "--warmup_steps", "2"])
    rows = [json.loads(line) for line in (pre / "metrics.jsonl").read_text().splitlines()]
    # warmup_constant with the offset: update k uses start + (k + 1) / 2 x (peak - start), then the peak
    assert [r["lr"] for r in rows] == pytest.approx([1e-4 + 0.5 * 4.25e-4, 5.25e-4, 5.25e-4], rel=1e-9)
    assert [r["weight_decay"] for r in rows] == pytest.approx([0.04] * 3)

    run_pretrain([str(RECIPES / "vjepa2" / "vitl16" / "cooldown-256px-64f.yaml"), *tiny_flags(cool, 2),
                  "--schedule_steps", "4", "--init_from_checkpoint", str(pre)])
    rows = [json.loads(line) for line in (cool / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == pytest.approx([5.25e-4 + k / 4 * (1e-6 - 5.25e-4) for k in (1, 2)],
                                                    rel=1e-9)
    state = torch.load(cool / "checkpoints" / "step_2" / "optimizer.bin", weights_only=False)
    steps = {float(s["step"]) for s in state["state"].values()}
    assert steps == {5.0}  # 3 pretraining updates + 2 cool-down updates on the same Adam moments

    with pytest.raises(ValueError, match="no optimizer state"):
        run_pretrain([str(RECIPES / "vjepa2" / "vitl16" / "cooldown-256px-64f.yaml"), *tiny_flags(tmp_path / "x", 1),
                      "--schedule_steps", "4", "--init_from_checkpoint", str(pre / "final")])


# ------------------------------------------------------------------------------------------------ V-JEPA 2-AC


def test_ac_recipe_equals_meta_droid_config() -> None:
    from hf_jepa.world_model import WorldModelArguments

    args = parse_flags(WorldModelArguments, [str(RECIPES / "vjepa2_ac" / "vitg16-droid-256px-8f.yaml")])
    ipe, epochs = 300, 315
    assert args.max_steps == args.schedule_steps == epochs * ipe  # T_max = int(epochs x ipe), no ipe_scale
    assert (args.warmup_steps, args.decay_steps) == (15 * ipe, 15 * ipe)  # warmup 15, anneal 15
    assert args.lr_schedule == "warmup_stable_decay" and args.schedule_offset == 1
    assert (args.start_lr, args.learning_rate, args.final_lr) == (0.000075, 0.000425, 0.0)
    assert (args.weight_decay, args.final_weight_decay) == (0.04, 0.04)
    assert (args.per_device_train_batch_size, args.global_batch_size) == (8, 8 * 4 * 8)
    assert (args.frames_per_window, args.fps, args.auto_steps) == (8, 4.0, 2)
    assert (args.actions, args.frame_crop, args.state_mode) == ("pose_delta", "meta", "true")
    assert args.max_grad_norm is None and args.mixed_precision == "bf16" and args.seed == 239
    assert args.stop_on_nonfinite_loss
    from hf_jepa.modeling.configuration_easy_vjepa2_ac import VJEPA2_AC_PRESETS

    pred = VJEPA2_AC_PRESETS[args.preset]
    assert (pred["predictor_hidden_size"], pred["predictor_num_hidden_layers"],
            pred["predictor_num_attention_heads"], pred["action_dim"]) == (1024, 24, 16, 7)
    s = build_schedules(args)
    assert s.lr(0) == pytest.approx(7.5e-5 + 1 / 4500 * (4.25e-4 - 7.5e-5), rel=1e-12)
    assert s.lr(4499) == s.lr(89998) == 4.25e-4
    assert s.lr(94499) == 0.0 and s.momentum is None


def test_pose_delta_actions_against_hand_computed_values() -> None:
    from hf_jepa.world_model.droid import state_delta_actions

    states = torch.tensor([[0.0, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0],  # rotated 0.3 rad about x
                           [1.0, 2.0, 3.0, 0.5, 0.0, 0.0, 0.25],  # then 0.5 about x: relative 0.2 about x
                           [1.0, 2.0, 2.0, 0.5, 0.0, 0.4, 1.0]])  # then + 0.4 about z (applied last, extrinsic)
    actions = state_delta_actions(states, "pose")
    torch.testing.assert_close(actions, torch.tensor([[1.0, 2.0, 3.0, 0.2, 0.0, 0.0, 0.25],
                                                      [0.0, 0.0, -1.0, 0.0, 0.0, 0.4, 0.75],
                                                      [0.0] * 7]), atol=1e-6, rtol=0)
    linear = state_delta_actions(states[:, :2], "linear")
    torch.testing.assert_close(linear, torch.tensor([[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="states width 2: expected 7"):
        state_delta_actions(states[:, :2], "pose")


def test_pose_delta_actions_equal_meta_poses_to_diffs() -> None:
    """Meta's droid.py `poses_to_diffs` (scipy Rotation, float64) on random poses, re-stated here."""
    np = pytest.importorskip("numpy")
    rotation = pytest.importorskip("scipy.spatial.transform").Rotation
    from hf_jepa.world_model.droid import state_delta_actions

    poses = np.random.default_rng(0).normal(scale=0.6, size=(6, 7))
    mats = [rotation.from_euler("xyz", t, degrees=False).as_matrix() for t in poses[:, 3:6]]
    angle = np.stack([rotation.from_matrix(mats[t + 1] @ mats[t].T).as_euler("xyz", degrees=False)
                      for t in range(5)])
    meta = np.concatenate([poses[1:, :3] - poses[:-1, :3], angle, poses[1:, -1:] - poses[:-1, -1:]], axis=1)
    ours = state_delta_actions(torch.tensor(poses, dtype=torch.float64), "pose")
    torch.testing.assert_close(ours[:5], torch.tensor(meta, dtype=torch.float32), atol=1e-5, rtol=0)


def test_droid_frame_step_and_centre_crop() -> None:
    from hf_jepa.world_model.droid import CenterCropTransform, fps_frame_skip

    assert fps_frame_skip(15.0, 4) == 4 and fps_frame_skip(10.0, 4) == 3 and fps_frame_skip(4.0, 4) == 1
    with pytest.raises(ValueError, match="runs at 2 fps and cannot provide 4 fps"):
        fps_frame_skip(2.0, 4)
    crop = CenterCropTransform(32, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    assert crop.crop_box(720, 1280) == (0, 154, 720, 972)  # 16:9 -> the centred 1.35 crop
    assert crop.crop_box(100, 100) == (0, 0, 100, 100)  # inside (0.75, 1.35): the whole frame
    frames = torch.zeros(2, 3, 72, 128, dtype=torch.uint8)
    frames[..., :, 64:] = 255  # right half white
    out = crop(frames)
    assert out.shape == (2, 3, 32, 32)
    # the crop keeps columns 15..112: the white half starts at its middle
    assert out[0, 0, 0, 15].item() < 0.1 and out[0, 0, 0, 17].item() > 0.9


def test_nonfinite_loss_stops_the_run_when_asked(tmp_path: Path) -> None:
    from dataclasses import dataclass

    from accelerate import Accelerator
    from transformers.utils import ModelOutput

    from hf_jepa.training import LoopConfig, fit

    @dataclass
    class Out(ModelOutput):
        y: torch.Tensor | None = None

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2))

        def forward(self, x: torch.Tensor) -> Out:
            return Out(y=(self.w * x).sum())

    def factory(epoch: int) -> list[dict[str, torch.Tensor]]:
        return [{"x": torch.tensor([[1.0, v]])} for v in (1.0, float("nan"), 1.0)]

    def run(stop: bool, out: Path) -> int:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        accelerator = Accelerator(cpu=True)
        model = Model()
        optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.0)
        model, optimizer = accelerator.prepare(model, optimizer)
        result = fit(LoopConfig(output_dir=out, max_steps=3, log_every=1, max_grad_norm=None,
                                stop_on_nonfinite_loss=stop),
                     accelerator=accelerator, model=model, dataloader_factory=factory, optimizer=optimizer,
                     lr_scheduler=None, compute_loss=lambda outputs, batch: (outputs.y, {}))
        return result.global_step

    assert run(False, tmp_path / "a") == 3
    with pytest.raises(FloatingPointError, match="loss=nan at step 1: stopping"):
        run(True, tmp_path / "b")
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
