"""Tests for hf_jepa.training: losses, EMA, schedules, optimizer, train step and the resumable loop."""

from __future__ import annotations

import copy
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from torch import nn
from transformers.utils import ModelOutput

from hf_jepa.training import (
    LoopConfig,
    TrainingState,
    build_lr_scheduler,
    build_optimizer,
    ema_momentum,
    ema_update,
    find_latest_checkpoint,
    fit,
    jepa_l1_loss,
    jepa_smooth_l1_loss,
    pretraining_loss,
    sigreg_loss,
    train_step,
    warmup_constant_decay,
    warmup_cosine,
)
from hf_jepa.training.losses import SIGREG_GAUSSIAN_EXPECTATION
from hf_jepa.training.monitors import Monitor

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


# ----------------------------------------------------------------------------- toy model and data


@dataclass
class ToyOutput(ModelOutput):
    """predictions / targets: (B, T, 8)."""

    predictions: torch.Tensor | None = None
    targets: torch.Tensor | None = None


class ToyJepa(nn.Module):
    """Online encoder + predictor, optional EMA target encoder: the attribute contract of the real models."""

    def __init__(self, ema: bool = True) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 8), nn.LayerNorm(8))
        self.predictor = nn.Linear(8, 8)
        self.dropout = nn.Dropout(0.2)  # consumes torch RNG: resume must restore it
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False) if ema else None

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> ToyOutput:
        context = self.encoder(x if noise is None else x + noise)  # (B, T, 8)
        predictions = self.predictor(self.dropout(context)) + self.mask_token  # (B, T, 8)
        with torch.no_grad():
            source = self.target_encoder(x) if self.target_encoder is not None else context
            targets = F.layer_norm(source, (source.shape[-1],))
        return ToyOutput(predictions=predictions, targets=targets)


def toy_loss(outputs: ToyOutput, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    loss = jepa_l1_loss(predictions=outputs.predictions, targets=outputs.targets)
    return loss, {"pred_std": outputs.predictions.detach().std().item()}


BATCHES_PER_EPOCH = 4


def toy_factory(epoch: int):
    """Deterministic in epoch; every second batch reports one skipped sample (per-batch counts 0, 1, 0, 1)."""
    torch.rand(1)  # like DataLoader's base_seed draw: touches the global RNG, resume must not be disturbed
    g = torch.Generator().manual_seed(1000 + epoch)
    for i in range(BATCHES_PER_EPOCH):
        yield {"x": torch.randn(3, 5, 4, generator=g), "skipped_samples": i % 2}


def toy_prepare(batch: dict, step: int) -> dict:
    g = torch.Generator().manual_seed(7_000 + step)
    batch["noise"] = 0.1 * torch.randn(batch["x"].shape, generator=g)
    return batch


TOTAL_STEPS = 6


def run_fit(output_dir: Path, *, max_steps: int, ga: int = 1, **config_kwargs):
    """Fresh accelerator + model + optimizer + scheduler, then fit; returns (model, optimizer, scheduler, result)."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=ga)
    torch.manual_seed(0)
    model = ToyJepa()
    optimizer = build_optimizer(model, lr=1e-2, weight_decay=0.05)
    schedule = functools.partial(
        warmup_cosine, warmup_steps=2, total_steps=TOTAL_STEPS, start_lr=1e-3, peak_lr=1e-2, final_lr=1e-4
    )
    scheduler = build_lr_scheduler(optimizer, schedule)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    config = LoopConfig(output_dir=output_dir, max_steps=max_steps, log_every=1, max_grad_norm=1.0, **config_kwargs)
    result = fit(
        config,
        accelerator=accelerator,
        model=model,
        dataloader_factory=toy_factory,
        optimizer=optimizer,
        lr_scheduler=scheduler,
        compute_loss=toy_loss,
        prepare_batch=toy_prepare,
        ema_schedule=functools.partial(ema_momentum, total_steps=TOTAL_STEPS, start=0.9, end=1.0),
    )
    return accelerator, model, optimizer, scheduler, result


def read_metrics(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- losses


def test_jepa_l1_loss_matches_definition():
    p, t = torch.randn(2, 7, 16), torch.randn(2, 7, 16)
    torch.testing.assert_close(jepa_l1_loss(predictions=p, targets=t), (p - t).abs().mean())
    torch.testing.assert_close(jepa_l1_loss(predictions=p, targets=t, exponent=2.0), F.mse_loss(p, t) / 2)
    with pytest.raises(ValueError, match="same shape"):
        jepa_l1_loss(predictions=p, targets=t[:, :3])
    with pytest.raises(ValueError, match="exponent"):
        jepa_l1_loss(predictions=p, targets=t, exponent=0.0)


def test_jepa_smooth_l1_loss_matches_torch():
    p, t = torch.randn(2, 7, 16) * 2, torch.randn(2, 7, 16)
    torch.testing.assert_close(jepa_smooth_l1_loss(predictions=p, targets=t), F.smooth_l1_loss(p, t))
    with pytest.raises(ValueError, match="same shape"):
        jepa_smooth_l1_loss(predictions=p, targets=t.transpose(0, 1))


def test_sigreg_small_for_gaussian_large_for_collapse_and_anisotropy():
    g = torch.Generator().manual_seed(0)
    n, d = 1024, 32
    gauss = torch.randn(n, d, generator=g)
    collapsed = torch.full((n, d), 0.3) + 1e-3 * torch.randn(n, d, generator=g)
    anisotropic = torch.randn(n, d, generator=g) * torch.linspace(0.1, 3.0, d)

    def loss(x: torch.Tensor) -> float:
        return sigreg_loss(embeddings=x, num_slices=128, generator=torch.Generator().manual_seed(1)).item()

    assert loss(gauss) < 2 * SIGREG_GAUSSIAN_EXPECTATION  # O(1): expectation ~1.06 for exact Gaussians
    assert loss(collapsed) > 100 * loss(gauss)
    assert loss(anisotropic) > 50 * loss(gauss)
    # same generator seed -> same directions -> same value; leading dims are independent sets
    assert loss(gauss) == loss(gauss)
    stacked = sigreg_loss(embeddings=torch.stack([gauss, collapsed]), generator=torch.Generator().manual_seed(1))
    assert stacked.ndim == 0 and stacked.item() > 10


def test_sigreg_is_differentiable_and_descends():
    g = torch.Generator().manual_seed(0)
    x = (0.1 * torch.randn(256, 16, generator=g) + 1.0).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.1)
    first = None
    for i in range(20):
        loss = sigreg_loss(embeddings=x, num_slices=64, generator=torch.Generator().manual_seed(i))
        opt.zero_grad()
        loss.backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.25 * first


def test_sigreg_validates_shapes():
    with pytest.raises(ValueError, match="embeddings"):
        sigreg_loss(embeddings=torch.randn(8))
    with pytest.raises(ValueError, match="num_points"):
        sigreg_loss(embeddings=torch.randn(8, 4), num_points=16)


# ----------------------------------------------------------------------------- EMA


def test_ema_update_is_a_lerp_by_name():
    torch.manual_seed(0)
    online, target = nn.Linear(3, 2), nn.Linear(3, 2).requires_grad_(False)
    expected = {k: 0.9 * target.state_dict()[k] + 0.1 * v for k, v in online.state_dict().items()}
    ema_update(target, online, 0.9)
    for k, v in target.state_dict().items():
        torch.testing.assert_close(v, expected[k])
    before = copy.deepcopy(target.state_dict())
    ema_update(target, online, 1.0)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())
    with pytest.raises(ValueError, match="names differ"):
        ema_update(nn.Sequential(nn.Linear(3, 2)), online, 0.9)
    with pytest.raises(ValueError, match="momentum"):
        ema_update(target, online, 1.5)


def test_ema_momentum_is_linear_in_step():
    assert ema_momentum(0, total_steps=100) == pytest.approx(0.996)
    assert ema_momentum(50, total_steps=100) == pytest.approx(0.998)
    assert ema_momentum(100, total_steps=100) == pytest.approx(1.0)
    assert ema_momentum(500, total_steps=100) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="total_steps=0"):
        ema_momentum(0, total_steps=0)
    with pytest.raises(ValueError, match="start=1.5"):
        ema_momentum(0, total_steps=10, start=1.5)


# ----------------------------------------------------------------------------- schedules


def test_warmup_cosine():
    kw = dict(warmup_steps=10, total_steps=110, start_lr=0.0, peak_lr=1.0, final_lr=0.1)
    assert warmup_cosine(0, **kw) == 0.0
    assert warmup_cosine(5, **kw) == pytest.approx(0.5)
    assert warmup_cosine(10, **kw) == pytest.approx(1.0)
    assert warmup_cosine(60, **kw) == pytest.approx(0.55)
    assert warmup_cosine(110, **kw) == pytest.approx(0.1)
    assert warmup_cosine(500, **kw) == pytest.approx(0.1)  # held, no second cosine bump
    with pytest.raises(ValueError, match="warmup_steps=200"):
        warmup_cosine(0, **{**kw, "warmup_steps": 200})
    with pytest.raises(ValueError, match="step=-1"):
        warmup_cosine(-1, **kw)


def test_warmup_constant_decay():
    kw = dict(warmup_steps=10, total_steps=100, decay_steps=20, start_lr=0.0, peak_lr=1.0, final_lr=0.0)
    assert warmup_constant_decay(5, **kw) == pytest.approx(0.5)
    assert warmup_constant_decay(10, **kw) == pytest.approx(1.0)
    assert warmup_constant_decay(79, **kw) == pytest.approx(1.0)
    assert warmup_constant_decay(90, **kw) == pytest.approx(0.5)
    assert warmup_constant_decay(100, **kw) == pytest.approx(0.0)
    assert warmup_constant_decay(1000, **kw) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="decay_steps=95"):
        warmup_constant_decay(0, **{**kw, "decay_steps": 95})
    with pytest.raises(ValueError, match="peak_lr=0"):
        warmup_constant_decay(0, **{**kw, "peak_lr": 0})


def test_build_lr_scheduler_follows_fn_and_round_trips():
    model = nn.Linear(4, 4)
    fn = functools.partial(warmup_cosine, warmup_steps=3, total_steps=10, start_lr=1e-4, peak_lr=1e-2, final_lr=1e-5)
    optimizer = build_optimizer(model, lr=1e-2, weight_decay=0.1)
    scheduler = build_lr_scheduler(optimizer, fn)
    for step in range(12):
        for group in optimizer.param_groups:
            assert group["lr"] == pytest.approx(fn(step))
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    other = build_lr_scheduler(build_optimizer(model, lr=1e-2, weight_decay=0.1), fn)
    other.load_state_dict(state)
    assert other.last_epoch == scheduler.last_epoch == 12


# ----------------------------------------------------------------------------- optimizer


def test_build_optimizer_groups():
    model = ToyJepa()
    model.pos_embed = nn.Parameter(torch.zeros(1, 5, 8))
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.05, betas=(0.9, 0.95))
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    ids = lambda group: {id(p) for p in group["params"]}  # noqa: E731
    assert ids(decay) == {id(model.encoder[0].weight), id(model.encoder[2].weight), id(model.predictor.weight)}
    assert id(model.mask_token) in ids(no_decay) and id(model.pos_embed) in ids(no_decay)
    assert id(model.encoder[3].weight) in ids(no_decay) and id(model.predictor.bias) in ids(no_decay)
    frozen = {id(p) for p in model.target_encoder.parameters()}
    assert not frozen & (ids(decay) | ids(no_decay))
    assert optimizer.defaults["betas"] == (0.9, 0.95)
    with pytest.raises(ValueError, match="lr=0"):
        build_optimizer(model, lr=0, weight_decay=0.0)
    with pytest.raises(ValueError, match="no trainable"):
        build_optimizer(nn.Linear(2, 2).requires_grad_(False), lr=1e-3, weight_decay=0.0)


# ----------------------------------------------------------------------------- train step


def test_train_step_gradient_accumulation_and_ema_only_on_sync():
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=2)
    torch.manual_seed(0)
    model = ToyJepa()
    model.dropout.p = 0.0
    optimizer = build_optimizer(model, lr=1e-2, weight_decay=0.0)
    scheduler = build_lr_scheduler(optimizer, lambda step: 1e-2)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    unwrapped = accelerator.unwrap_model(model)
    snap = lambda m: [p.detach().clone() for p in m.parameters()]  # noqa: E731
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a, b, strict=True))  # noqa: E731

    synced = []
    for i in range(4):
        online, target = snap(unwrapped.encoder), snap(unwrapped.target_encoder)
        batch = {"x": torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(i))}
        out = train_step(
            accelerator, model, batch, optimizer, scheduler, compute_loss=toy_loss, max_grad_norm=1.0, ema_momentum=0.5
        )
        synced.append(out.synced)
        assert math.isfinite(out.loss) and "pred_std" in out.logs
        if out.synced:
            assert out.grad_norm is not None and out.grad_norm > 0
            assert not same(online, snap(unwrapped.encoder))
            assert not same(target, snap(unwrapped.target_encoder))
        else:
            assert out.grad_norm is None
            assert same(online, snap(unwrapped.encoder))
            assert same(target, snap(unwrapped.target_encoder))
            assert all(p.grad is not None for p in unwrapped.encoder.parameters())  # accumulating
    assert synced == [False, True, False, True]
    assert scheduler.scheduler.last_epoch == 2  # one scheduler step per optimizer step


def test_train_step_without_ema_target():
    accelerator = Accelerator(cpu=True)
    model = ToyJepa(ema=False)

    def sigreg(outputs, batch):
        loss = sigreg_loss(embeddings=outputs.predictions.flatten(0, 1), num_slices=16)
        return loss, {}

    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.0)
    model, optimizer = accelerator.prepare(model, optimizer)
    batch = {"x": torch.randn(4, 5, 4)}
    step = functools.partial(train_step, accelerator, model, batch, optimizer, None, compute_loss=sigreg)
    out = step(max_grad_norm=None, ema_momentum=None)
    assert out.synced and out.grad_norm is None
    with pytest.raises(ValueError, match="target_encoder"):
        step(max_grad_norm=None, ema_momentum=0.99)


# ----------------------------------------------------------------------------- loop


def test_loop_config_validation(tmp_path):
    with pytest.raises(ValueError, match="max_steps=0"):
        LoopConfig(output_dir=tmp_path, max_steps=0)
    with pytest.raises(ValueError, match="checkpointing_steps=0"):
        LoopConfig(output_dir=tmp_path, max_steps=1, checkpointing_steps=0)
    with pytest.raises(ValueError, match="max_grad_norm=-1"):
        LoopConfig(output_dir=tmp_path, max_steps=1, max_grad_norm=-1)
    config = LoopConfig(output_dir=str(tmp_path), max_steps=1, resume_from_checkpoint="latest")
    assert config.checkpoint_dir == tmp_path / "checkpoints"


@pytest.mark.parametrize("ga", [1, 2])
def test_fit_resume_is_exact(tmp_path, ga):
    straight_dir, resumed_dir = tmp_path / "straight", tmp_path / "resumed"
    *_, straight_model, straight_opt, straight_sched, straight = run_fit(straight_dir, max_steps=TOTAL_STEPS, ga=ga)
    assert straight.global_step == TOTAL_STEPS
    # 6 steps x ga batches over epochs of 4 batches
    assert straight.epoch == {1: 1, 2: 2}[ga]  # ga=2 ends exactly on the last batch of epoch 2

    _, _, _, _, first = run_fit(resumed_dir, max_steps=3, ga=ga, checkpointing_steps=3)
    assert first.last_checkpoint == resumed_dir / "checkpoints" / "step_3"
    accelerator, resumed_model, resumed_opt, resumed_sched, resumed = run_fit(
        resumed_dir, max_steps=TOTAL_STEPS, ga=ga, resume_from_checkpoint="latest"
    )
    assert resumed.global_step == TOTAL_STEPS

    a = accelerator.unwrap_model(straight_model).state_dict()
    b = accelerator.unwrap_model(resumed_model).state_dict()
    assert a.keys() == b.keys() and any(k.startswith("target_encoder.") for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-7, rtol=0, msg=key)
    # the EMA target moved and differs from the online encoder
    torch.manual_seed(0)
    initial = ToyJepa().state_dict()
    assert not torch.equal(a["target_encoder.0.weight"], initial["target_encoder.0.weight"])
    assert not torch.equal(a["target_encoder.0.weight"], a["encoder.0.weight"])
    # optimizer moments and the schedule position too
    sa, sb = straight_opt.state_dict()["state"], resumed_opt.state_dict()["state"]
    for idx in sa:
        torch.testing.assert_close(sa[idx]["exp_avg"], sb[idx]["exp_avg"], atol=1e-7, rtol=0)
    assert straight_sched.scheduler.last_epoch == resumed_sched.scheduler.last_epoch == TOTAL_STEPS

    m_straight, m_resumed = read_metrics(straight_dir), read_metrics(resumed_dir)
    assert [m["step"] for m in m_resumed] == list(range(1, TOTAL_STEPS + 1))
    for x, y in zip(m_straight, m_resumed, strict=True):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-7)
        assert x["lr"] == y["lr"] and x["skipped_samples"] == y["skipped_samples"]
    assert straight.skipped_samples == resumed.skipped_samples == m_straight[-1]["skipped_samples"]


def test_fit_metrics_skipped_samples_and_checkpoint_rotation(tmp_path):
    logged = []
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = ToyJepa(ema=False)
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.0)
    model, optimizer = accelerator.prepare(model, optimizer)
    config = LoopConfig(output_dir=tmp_path, max_steps=6, checkpointing_steps=2, log_every=2, checkpoints_total_limit=2)
    result = fit(
        config,
        accelerator=accelerator,
        model=model,
        dataloader_factory=toy_factory,
        optimizer=optimizer,
        lr_scheduler=None,
        compute_loss=toy_loss,
        on_log=logged.append,
    )
    metrics = read_metrics(tmp_path)
    assert [m["step"] for m in metrics] == [2, 4, 6]
    for m in metrics:
        assert {"step", "loss", "lr", "samples_per_second", "skipped_samples", "pred_std", "grad_norm"} <= m.keys()
        assert m["samples_per_second"] > 0 and m["lr"] == pytest.approx(1e-3)
    # epoch 0: 4 batches, 2 skipped; epoch 1: 2 batches, 1 skipped so far
    assert [m["skipped_samples"] for m in metrics] == [1, 2, 3]
    assert result.skipped_samples == 3 and result.epoch == 1
    assert logged == metrics
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_4", "step_6"]
    assert find_latest_checkpoint(tmp_path / "checkpoints") == tmp_path / "checkpoints" / "step_6"
    state = next(o for o in accelerator._custom_objects if isinstance(o, TrainingState))
    assert state.batches_seen == 6 and state.batches_in_epoch == 2


def test_fit_latest_without_checkpoint_starts_fresh(tmp_path):
    *_, result = run_fit(tmp_path, max_steps=2, resume_from_checkpoint="latest")
    assert result.global_step == 2 and result.last_checkpoint == tmp_path / "checkpoints" / "step_2"
    with pytest.raises(FileNotFoundError, match="resume_from_checkpoint"):
        run_fit(tmp_path / "other", max_steps=2, resume_from_checkpoint=tmp_path / "missing")


# ----------------------------------------------------------------------------- monitors in the loop


class Recorder(Monitor):
    """Stateful monitor counting the micro-batches it saw; checks it is handed the raw batch."""

    stateful = True

    def __init__(self) -> None:
        self.seen = 0

    def observe(self, outputs, batch, raw_batch):  # noqa: ANN001, ANN201
        assert "noise" in batch and "noise" not in raw_batch and not torch.is_grad_enabled()
        self.seen += 1
        return {"seen": float(self.seen)}

    def summarize(self, metrics, *, accelerator, model):  # noqa: ANN001, ANN201
        return {"seen_total": float(self.seen), "mean_seen_so_far": metrics["seen"]}

    def state_dict(self) -> dict[str, int]:
        return {"seen": self.seen}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seen = state["seen"]


def test_fit_runs_monitors_and_restores_stateful_ones(tmp_path) -> None:
    def run(output_dir, max_steps, monitor, **kwargs):  # noqa: ANN001, ANN202
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        accelerator = Accelerator(cpu=True)
        torch.manual_seed(0)
        model, optimizer = accelerator.prepare(ToyJepa(ema=False), build_optimizer(ToyJepa(), lr=1e-3,
                                                                                  weight_decay=0.0))
        fit(LoopConfig(output_dir=output_dir, max_steps=max_steps, log_every=2, checkpointing_steps=2, **kwargs),
            accelerator=accelerator, model=model, dataloader_factory=toy_factory, optimizer=optimizer,
            lr_scheduler=None, compute_loss=toy_loss, prepare_batch=toy_prepare,  # edits the batch in place
            monitors=[monitor] if monitor else [])

    recorder = Recorder()
    run(tmp_path, 4, recorder)
    rows = read_metrics(tmp_path)
    assert [r["seen_total"] for r in rows] == [2, 4] and [r["seen"] for r in rows] == [1.5, 3.5]
    assert rows[0]["mean_seen_so_far"] == 1.5 and "pred_std" in rows[0]
    resumed = Recorder()
    run(tmp_path, 6, resumed, resume_from_checkpoint="latest")
    assert resumed.seen == 6  # 4 restored from the step-4 checkpoint + 2
    run(tmp_path / "plain", 2, None)
    with pytest.raises(ValueError, match=r"holds no saved state for \['Recorder'\]"):
        run(tmp_path / "plain", 4, Recorder(), resume_from_checkpoint="latest")


def test_prediction_groups_give_meta_loss_for_both_families() -> None:
    """The objective reads every family through prediction_groups: I-JEPA's stacked blocks split into G groups give
    Meta's smooth-L1 over the stacked tensor; V-JEPA 2's list is its per-family L1 mean."""
    from types import SimpleNamespace

    from hf_jepa.training.objectives import mask_groups, prediction_groups

    gen = torch.Generator().manual_seed(0)
    b, g, m, d = 3, 4, 5, 8
    stacked = SimpleNamespace(predictions=torch.randn(g * b, m, d, generator=gen),
                              targets=torch.randn(g * b, m, d, generator=gen), target_states=torch.randn(b, 16, d))
    preds, targets = prediction_groups(stacked)
    assert len(preds) == g and preds[1].shape == (b, m, d) and torch.equal(preds[1], stacked.predictions[b:2 * b])
    meta = jepa_smooth_l1_loss(predictions=stacked.predictions, targets=stacked.targets)
    loss, _ = pretraining_loss("ijepa")(stacked, {})
    torch.testing.assert_close(loss, meta, rtol=0, atol=1e-7)
    listed = SimpleNamespace(predictions=[torch.randn(b, 3, d), torch.randn(b, 7, d)],
                             targets=[torch.randn(b, 3, d), torch.randn(b, 7, d)], target_states=torch.randn(b, 16, d))
    loss, _ = pretraining_loss("vjepa2")(listed, {})
    expected = torch.stack([jepa_l1_loss(predictions=p, targets=t) for p, t in zip(listed.predictions,
                                                                                    listed.targets, strict=True)])
    torch.testing.assert_close(loss, expected.mean())
    assert [t.shape for t in mask_groups(torch.zeros(g, b, m))] == [(b, m)] * g
    assert len(mask_groups(torch.zeros(b, m))) == 1 and len(mask_groups([torch.zeros(b, 2)] * 3)) == 3
