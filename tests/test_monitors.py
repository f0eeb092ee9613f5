"""Collapse monitors and the online probe: metrics against hand-computed values, both model families' layouts, the
window accumulator and its warnings, the probe's training / evaluation / state. `fit` running monitors (checkpointed
state included) is tested in test_training.py."""

from __future__ import annotations

import copy
import logging
import math
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator
from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaForPreTraining
from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForPreTraining

from hf_jepa.pretraining import mask_sampler
from hf_jepa.training import jepa_l1_loss, jepa_smooth_l1_loss, pretraining_loss
from hf_jepa.training.monitors import (
    CollapseMonitor,
    Monitor,
    constant_baseline_ratio,
    effective_rank,
    effective_rank_from_gram,
    monitored_loss,
    target_std,
)
from hf_jepa.training.online_probe import OnlineProbe

SMALL = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
             predictor_hidden_size=16, predictor_num_hidden_layers=1, predictor_num_attention_heads=2,
             predictor_intermediate_size=32)


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


# ----------------------------------------------------------------------------- metrics


def rankme_by_hand(singular_values: list[float], eps: float = 1e-7) -> float:
    p = [v / sum(singular_values) + eps for v in singular_values]
    return math.exp(-sum(q * math.log(q) for q in p))


def test_effective_rank_of_known_matrices() -> None:
    # k orthogonal rows of equal norm: k equal singular values -> rank k (up to eps)
    basis = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64))[0]
    for k in (1, 3, 8):
        z = 2.0 * basis[:k]  # (k, 8)
        assert float(effective_rank(embeddings=z)) == pytest.approx(k, rel=1e-4)
    # singular values (3, 1): p = (0.75, 0.25) -> exp(H) = 1.7548
    z = torch.tensor([[3.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # (2, 3): min(2, 3) = 2 singular values
    assert float(effective_rank(embeddings=z)) == pytest.approx(rankme_by_hand([3.0, 1.0]), abs=1e-9)
    assert float(effective_rank(embeddings=z)) == pytest.approx(math.exp(-(0.75 * math.log(0.75)
                                                                         + 0.25 * math.log(0.25))), rel=1e-5)
    # identical rows: one direction
    same = torch.randn(1, 16).expand(10, 16)
    assert float(effective_rank(embeddings=same)) == pytest.approx(1.0, abs=1e-4)
    assert float(effective_rank(embeddings=torch.zeros(4, 5))) == 0.0
    with pytest.raises(ValueError, match=r"\(M, D\) matrix, got shape \(2, 3, 4\)"):
        effective_rank(embeddings=torch.randn(2, 3, 4))


def test_effective_rank_from_gram_equals_svd() -> None:
    for rows, dim in ((50, 16), (6, 16), (40, 40)):
        z = torch.randn(rows, dim) @ torch.diag(torch.logspace(0, -3, dim))  # decaying spectrum
        gram = z.double().T @ z.double()  # (D, D)
        assert float(effective_rank_from_gram(gram=gram, num_rows=rows)) == pytest.approx(
            float(effective_rank(embeddings=z)), rel=1e-7)
    with pytest.raises(ValueError, match="square"):
        effective_rank_from_gram(gram=torch.zeros(3, 4))


def test_constant_baseline_ratio_by_hand() -> None:
    # B=2, N=3, D=1; targets at positions 0..2: sample 0 = (0, 2, 4), sample 1 = (2, 2, 0)
    states = torch.tensor([[[0.0], [2.0], [4.0]], [[2.0], [2.0], [0.0]]])
    masks = [torch.tensor([[0, 2], [0, 2]])]  # one group, positions 0 and 2 in both samples
    # batch means at positions 0 / 2: 1 / 2 -> L1 to the targets (0, 4, 2, 0): 1, 2, 1, 2 -> 1.5
    predictions = [torch.tensor([[[0.5], [4.0]], [[2.0], [1.0]]])]  # L1: 0.5, 0, 0, 1 -> 0.375
    ratio = constant_baseline_ratio(predictions=predictions, target_states=states, target_masks=masks,
                                    loss_fn=jepa_l1_loss)
    assert float(ratio) == pytest.approx(0.375 / 1.5, rel=1e-6)
    # the constant predictor itself: ratio 1 (any loss); the targets themselves: ~0
    constant = [torch.tensor([[[1.0], [2.0]], [[1.0], [2.0]]])]
    for loss_fn in (jepa_l1_loss, jepa_smooth_l1_loss):
        assert float(constant_baseline_ratio(predictions=constant, target_states=states, target_masks=masks,
                                             loss_fn=loss_fn)) == pytest.approx(1.0, abs=1e-6)
    exact = [torch.tensor([[[0.0], [4.0]], [[2.0], [0.0]]])]
    assert float(constant_baseline_ratio(predictions=exact, target_states=states, target_masks=masks,
                                         loss_fn=jepa_l1_loss)) < 1e-7
    # identical samples predicted exactly: 1 (eps / eps), not 0 / 0
    same = states[:1].expand(2, 3, 1)
    assert float(constant_baseline_ratio(predictions=[same[:, [0, 2]]], target_states=same, target_masks=masks,
                                         loss_fn=jepa_l1_loss)) == pytest.approx(1.0)
    # two groups: the mean over groups of each loss, as the V-JEPA 2 objective
    two = constant_baseline_ratio(predictions=predictions + constant, target_states=states,
                                  target_masks=masks + masks, loss_fn=jepa_l1_loss)
    assert float(two) == pytest.approx((0.375 + 1.5) / 2 / 1.5, rel=1e-6)
    with pytest.raises(ValueError, match="one mask per group"):
        constant_baseline_ratio(predictions=predictions, target_states=states, target_masks=[],
                                loss_fn=jepa_l1_loss)


def test_target_std_by_hand() -> None:
    states = torch.tensor([[[0.0, 1.0], [5.0, 5.0]], [[2.0, 1.0], [5.0, 1.0]]])  # (B=2, N=2, D=2)
    # population std over the batch per (token, dim): 1, 0, 0, 2 -> mean 0.75
    assert float(target_std(target_states=states)) == pytest.approx(0.75)
    assert float(target_std(target_states=states[:1].expand(4, 2, 2))) == 0.0


# ----------------------------------------------------------------------------- both families' outputs


def family_step(family: str, batch_size: int = 4, seed: int = 0):
    """A tiny pretraining model's output on random inputs with the recipe's masks, its batch and its loss."""
    torch.manual_seed(seed)
    if family == "ijepa":
        config = ImageJepaConfig(image_size=32, patch_size=8, **SMALL)
        model = ImageJepaForPreTraining(config)
        pixels = {"pixel_values": torch.randn(batch_size, 3, 32, 32)}
    else:
        config = VideoJepaConfig(image_size=32, patch_size=8, num_frames=4, **SMALL)
        model = VideoJepaForPreTraining(config)
        pixels = {"pixel_values_videos": torch.randn(batch_size, 4, 3, 32, 32)}
    batch = mask_sampler(config, seed, 0)(pixels, 0)
    with torch.no_grad():
        outputs = model(**batch)
    return outputs, batch


@pytest.mark.parametrize("family", ["ijepa", "vjepa2"])
def test_collapse_monitor_reads_both_layouts(family: str) -> None:
    """The ratio's numerator is the objective's prediction loss; the window's rank is RankMe of the pooled rows of
    every batch of the window; summarize resets the window."""
    from hf_jepa.training.objectives import PREDICTION_LOSSES

    accelerator = Accelerator(cpu=True)
    monitor = CollapseMonitor(loss_fn=PREDICTION_LOSSES[family])
    rows = []
    for seed in (0, 1):
        outputs, batch = family_step(family, seed=seed)
        logs = monitor.observe(outputs, batch, {})
        _, loss_logs = pretraining_loss(family)(outputs, batch)
        states = outputs.target_states
        constant = states.mean(0, keepdim=True).expand_as(states)
        masks = list(batch["target_mask"])
        gather = lambda x, m: torch.gather(x, 1, m.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # noqa: E731
        loss_fn = PREDICTION_LOSSES[family]
        baseline = torch.stack([loss_fn(predictions=gather(constant, m), targets=gather(states, m))
                                for m in masks]).mean()
        assert logs["constant_baseline_ratio"] == pytest.approx(
            (loss_logs["prediction_loss"] + 1e-8) / (float(baseline) + 1e-8), rel=1e-5)
        assert logs["target_std"] == pytest.approx(float(states.std(0, correction=0).mean()), rel=1e-5)
        rows.append(states.mean(1))
    out = monitor.summarize({"step": 1}, accelerator=accelerator, model=torch.nn.Linear(1, 1))
    assert out["effective_rank_rows"] == 8
    assert out["effective_rank"] == pytest.approx(float(effective_rank(embeddings=torch.cat(rows))), rel=1e-6)
    assert monitor.summarize({"step": 2}, accelerator=accelerator, model=torch.nn.Linear(1, 1)) == {}
    # a batch of one sample has no batch mean / spread: only the rank is accumulated
    outputs, batch = family_step(family, batch_size=1)
    assert monitor.observe(outputs, batch, {}) == {}
    assert monitor.summarize({"step": 3}, accelerator=accelerator, model=torch.nn.Linear(1, 1))[
        "effective_rank_rows"] == 1


def test_collapse_warnings_fire_once_per_condition_after_the_grace_steps(caplog) -> None:
    accelerator = Accelerator(cpu=True)
    monitor = CollapseMonitor(loss_fn=jepa_l1_loss, warn_after_steps=10, hint="try X")
    same = SimpleNamespace(target_states=torch.ones(1, 3, 64).repeat(16, 1, 1) + 0.01 * torch.randn(1, 3, 64))

    def log_step(step: int, ratio: float) -> dict[str, float]:
        monitor._gram = None
        pooled = same.target_states.mean(1).double()
        monitor._gram, monitor._rows = pooled.T @ pooled, 16 * 5  # 80 rows, all alike: rank ~1 < 0.025 * 64
        return monitor.summarize({"step": step, "constant_baseline_ratio": ratio}, accelerator=accelerator,
                                 model=torch.nn.Linear(1, 1))

    with caplog.at_level(logging.WARNING, logger="hf_jepa.training.monitors"):
        log_step(10, 3.0)  # within the grace steps: nothing
        assert not caplog.records
        out = log_step(11, 3.0)
        log_step(12, 5.0)  # the same conditions again: no new warning
    assert out["effective_rank"] < 1.1
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "constant_baseline_ratio=3.000 at step 11" in messages[0] and "try X" in messages[0]
    assert "effective_rank=1.00 at step 11" in messages[1] and "try X" in messages[1]
    caplog.clear()
    fresh = CollapseMonitor(loss_fn=jepa_l1_loss)
    with caplog.at_level(logging.WARNING, logger="hf_jepa.training.monitors"):
        fresh.summarize({"step": 5, "constant_baseline_ratio": 0.5}, accelerator=accelerator,
                        model=torch.nn.Linear(1, 1))
    assert not caplog.records


# ----------------------------------------------------------------------------- online probe


class Encoder(torch.nn.Module):
    """Features whose first two channels carry the class (x's first channel), the rest noise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def labelled(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    centres = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-2.0, -2.0]])
    x = torch.cat([centres[labels], torch.randn(n, 6, generator=g)], dim=1) + 0.3 * torch.randn(n, 8, generator=g)
    return x, labels


def make_probe(accelerator: Accelerator, **kwargs) -> OnlineProbe:
    eval_x, eval_y = labelled(50, seed=123)
    return OnlineProbe(feature_dim=8, num_classes=3, label_key="label", eval_inputs=eval_x.half(), eval_labels=eval_y,
                       encode=lambda model, x: model(x), accelerator=accelerator, features=lambda out: out,
                       lr=0.05, eval_batch_size=16, **kwargs)


def test_online_probe_learns_ignores_unknown_classes_and_round_trips() -> None:
    accelerator = Accelerator(cpu=True)
    probe = make_probe(accelerator)
    model = Encoder()
    before = probe.summarize({}, accelerator=accelerator, model=model)["online_probe_top1"]  # zero head: class 0
    losses = []
    for step in range(40):
        x, y = labelled(16, seed=step)
        y[0] = 7  # a class the probe does not know: left out
        losses.append(probe.observe(x, {}, {"label": y})["online_probe_loss"])
    after = probe.summarize({}, accelerator=accelerator, model=model)["online_probe_top1"]
    assert before < 0.5 and after > 0.9 and losses[-1] < 0.5 * losses[0], (before, after, losses[0], losses[-1])
    assert probe.observe(torch.randn(4, 8), {}, {"label": torch.full((4,), -1)}) == {}  # nothing to learn from

    clone = make_probe(accelerator)
    clone.load_state_dict(copy.deepcopy(probe.state_dict()))  # as through a checkpoint file
    x, y = labelled(16, seed=99)
    assert probe.observe(x, {}, {"label": y}) == clone.observe(x, {}, {"label": y})  # same state, same update
    for a, b in zip(probe.head.parameters(), clone.head.parameters(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(probe.head[0].running_mean, clone.head[0].running_mean)
    with pytest.raises(ValueError, match=r"eval_labels must be class ids in \[0, 3\)"):
        OnlineProbe(feature_dim=8, num_classes=3, label_key="label", eval_inputs=torch.zeros(2, 8),
                    eval_labels=torch.tensor([0, 3]), encode=lambda m, x: x, accelerator=accelerator)


# ----------------------------------------------------------------------------- the hook


def test_monitored_loss_keeps_the_loss_and_adds_logs() -> None:
    class Const(Monitor):
        def observe(self, outputs, batch, raw_batch):  # noqa: ANN001, ANN201
            return {"const": 1.0}

    def loss(outputs, batch):  # noqa: ANN001, ANN202
        return outputs.sum(), {"a": 2.0}

    x = torch.ones(3, requires_grad=True)
    assert monitored_loss(loss, [], {}) is loss
    value, logs = monitored_loss(loss, [Const()], {})(x, {})
    assert logs == {"a": 2.0, "const": 1.0} and value.requires_grad and float(value.detach()) == 3.0
