"""Training benchmarks: `hf_jepa.training.train_step` throughput and peak memory, and the collapse monitors' cost.

`pretraining_batch` / `world_model_batch` build a model, one batch and its loss; `train_step_benchmark` times the
step on them; `monitor_overhead_benchmark` times a pretraining step without and with the monitors and an online probe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hf_jepa.benchmark.timing import peak_memory, time_interleaved

logger = logging.getLogger(__name__)

__all__ = ["monitor_overhead_benchmark", "pretraining_batch", "train_step_benchmark", "world_model_batch"]


def _train_setup(model: nn.Module, device: torch.device) -> tuple[Any, nn.Module, torch.optim.Optimizer]:
    from accelerate import Accelerator

    from hf_jepa.training import build_optimizer

    accelerator = Accelerator(cpu=device.type == "cpu")
    optimizer = build_optimizer(model, lr=1e-4, weight_decay=0.04)
    model, optimizer = accelerator.prepare(model.to(accelerator.device).train(), optimizer)
    return accelerator, model, optimizer


def pretraining_batch(family: str, preset: str, batch_size: int, device: torch.device, *,
                      num_frames: int | None = None) -> tuple[nn.Module, dict[str, Any], Callable[..., Any]]:
    """An `ImageJepaForPreTraining` / `VideoJepaForPreTraining` at `preset`, one batch with the masks pretraining
    draws (`hf_jepa.pretraining.mask_sampler`) and Meta's loss (`pretraining_loss(family, "meta")`)."""
    from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
    from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
    from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaForPreTraining
    from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForPreTraining
    from hf_jepa.pretraining import mask_sampler
    from hf_jepa.training import pretraining_loss

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    if family == "ijepa":
        cfg = ImageJepaConfig.from_preset(preset)
        model = ImageJepaForPreTraining(cfg)
        pixels = {"pixel_values": torch.randn(batch_size, 3, cfg.image_size, cfg.image_size, generator=gen)}
    else:
        cfg = VideoJepaConfig.from_preset(preset, **({"num_frames": num_frames} if num_frames else {}))
        model = VideoJepaForPreTraining(cfg)
        shape = (batch_size, cfg.num_frames, 3, cfg.image_size, cfg.image_size)
        pixels = {"pixel_values_videos": torch.randn(shape, generator=gen)}
    batch = mask_sampler(cfg, seed=0, process_index=0)(pixels, 0)
    return model, _to(batch, device), pretraining_loss(family, "meta")


def world_model_batch(batch_size: int, num_frames: int, device: torch.device,
                      ) -> tuple[nn.Module, dict[str, Any], Callable[..., Any]]:
    """The tiny `JepaWorldModel`, one (frames, actions, states) batch and Meta's teacher-forcing + rollout loss
    (`hf_jepa.training.world_model_loss`)."""
    from hf_jepa.modeling.configuration_easy_vjepa2_ac import JepaWorldModelConfig
    from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel
    from hf_jepa.training import world_model_loss

    torch.manual_seed(0)
    cfg = JepaWorldModelConfig.from_preset("tiny", max_steps=max(16, num_frames))
    model = JepaWorldModel(cfg)
    gen = torch.Generator().manual_seed(0)
    size = cfg.encoder_config.image_size
    batch = {"pixel_values_videos": torch.randn(batch_size, num_frames, 3, size, size, generator=gen),
             "actions": torch.randn(batch_size, num_frames - 1, cfg.action_dim, generator=gen),
             "states": torch.randn(batch_size, num_frames, cfg.state_dim, generator=gen)}
    return model, _to(batch, device), world_model_loss


def _to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: ([t.to(device) for t in v] if isinstance(v, list) else v.to(device)) for k, v in batch.items()}


def train_step_benchmark(model: nn.Module, batch: dict[str, Any], compute_loss: Callable[..., Any], *,
                         device: torch.device | str, warmup: int, repeats: int, ema: bool) -> dict[str, float]:
    """Samples/s and peak memory of `hf_jepa.training.train_step` (forward, backward, AdamW, EMA) on one batch.

    Returns:
        dict with `step_s` (median), `samples_per_second`, `peak_memory_mb` (one step after warm-up) and
        `memory_method`.
    """
    from hf_jepa.training import train_step

    device = torch.device(device)
    accelerator, model, optimizer = _train_setup(model, device)
    batch_size = next(v for v in batch.values() if isinstance(v, torch.Tensor)).shape[0]

    def step() -> None:
        train_step(accelerator, model, batch, optimizer, None, compute_loss=compute_loss, max_grad_norm=1.0,
                   ema_momentum=0.996 if ema else None)

    t = time_interleaved({"step": step}, device=device, warmup=warmup, repeats=repeats)["step"]
    mem = peak_memory(step, device)
    return {"batch_size": batch_size, "step_s": t.median_s, "samples_per_second": batch_size / t.median_s,
            "peak_memory_mb": mem.peak_mb, "memory_method": mem.method}


def monitor_overhead_benchmark(family: str, preset: str, batch_size: int, *, device: torch.device | str,
                               warmup: int, repeats: int, log_every: int = 10, probe_eval_samples: int = 32,
                               num_classes: int = 10) -> dict[str, float]:
    """A pretraining train step without and with what every run adds (the collapse monitors) plus an online probe,
    timed interleaved in the same process: two copies of the same model, the same batch.

    The monitored step is `train_step` with `monitored_loss(loss, [CollapseMonitor, OnlineProbe], raw_batch)`, as
    `fit` runs it. Two whole steps differ by little against the noise of a shared CPU, so the monitors' own per-step
    work (both `observe` calls on one stored output) is also timed alone. The log-time work (RankMe of a (D, D) Gram
    matrix, the probe's held-out accuracy on `probe_eval_samples` random inputs through the target encoder) is timed
    apart and spread over `log_every` steps.

    Returns:
        dict with `plain_step_s`, `monitored_step_s`, `step_ratio` (monitored / plain), `observe_s`,
        `observe_fraction` (observe_s / plain_step_s), `log_s` and `amortized_ratio`
        ((plain + observe_s + log_s / log_every) / plain).
    """
    import copy

    from hf_jepa.pretraining import pooled_target_features
    from hf_jepa.training import train_step
    from hf_jepa.training.monitors import CollapseMonitor, effective_rank_from_gram, monitored_loss
    from hf_jepa.training.objectives import PREDICTION_LOSSES
    from hf_jepa.training.online_probe import OnlineProbe

    device = torch.device(device)
    model, batch, loss = pretraining_batch(family, preset, batch_size, device)
    monitored_model = copy.deepcopy(model)
    accelerator, model, optimizer = _train_setup(model, device)
    _, monitored_model, monitored_optimizer = _train_setup(monitored_model, device)
    gen = torch.Generator().manual_seed(2)
    pixel_key = next(k for k in ("pixel_values", "pixel_values_videos") if k in batch)
    eval_inputs = torch.randn((probe_eval_samples, *batch[pixel_key].shape[1:]), generator=gen).half()
    probe = OnlineProbe(feature_dim=accelerator.unwrap_model(model).config.hidden_size, num_classes=num_classes,
                        label_key="label", eval_inputs=eval_inputs,
                        eval_labels=torch.randint(0, num_classes, (probe_eval_samples,), generator=gen),
                        encode=pooled_target_features, accelerator=accelerator, eval_batch_size=batch_size)
    collapse = CollapseMonitor(loss_fn=PREDICTION_LOSSES[family])
    raw_batch = {"label": torch.randint(0, num_classes, (batch_size,), generator=gen)}
    monitored_loss_fn = monitored_loss(loss, [collapse, probe], raw_batch)

    def plain() -> None:
        train_step(accelerator, model, batch, optimizer, None, compute_loss=loss, max_grad_norm=1.0,
                   ema_momentum=0.996)

    def monitored() -> None:
        train_step(accelerator, monitored_model, batch, monitored_optimizer, None, compute_loss=monitored_loss_fn,
                   max_grad_norm=1.0, ema_momentum=0.996)

    t = time_interleaved({"plain": plain, "monitored": monitored}, device=device, warmup=warmup, repeats=repeats)
    gram = torch.eye(probe.head[1].in_features, dtype=torch.float64)  # a (D, D) Gram: eigvalsh costs the same

    def log_work() -> None:
        effective_rank_from_gram(gram=gram)
        probe.summarize({}, accelerator=accelerator, model=monitored_model)

    log_s = time_interleaved({"log": log_work}, device=device, warmup=1, repeats=max(2, repeats // 2))["log"].median_s
    with torch.no_grad(), accelerator.autocast():
        outputs = monitored_model(**batch)

    def observe() -> None:
        with torch.no_grad(), accelerator.autocast():
            collapse.observe(outputs, batch, raw_batch)
            probe.observe(outputs, batch, raw_batch)

    observe_s = time_interleaved({"observe": observe}, device=device, warmup=2, repeats=3 * repeats)["observe"].median_s
    plain_s, monitored_s = t["plain"].median_s, t["monitored"].median_s
    out = {"batch_size": batch_size, "plain_step_s": plain_s, "monitored_step_s": monitored_s,
           "step_ratio": monitored_s / plain_s, "observe_s": observe_s, "observe_fraction": observe_s / plain_s,
           "log_s": log_s, "log_every": log_every, "probe_eval_samples": probe_eval_samples,
           "amortized_ratio": (plain_s + observe_s + log_s / log_every) / plain_s}
    logger.info("monitors %s/%s: step %.4g s -> %.4g s (%.3fx; observe alone %.3g s), log work %.3g s (%.3fx over %d "
                "steps)", family, preset, plain_s, monitored_s, out["step_ratio"], observe_s, log_s,
                out["amortized_ratio"], log_every)
    return out
