"""An online linear probe: a classifier trained beside pretraining on detached features (as stable-pretraining's
`OnlineProbe`), so a run's metrics.jsonl shows whether its features carry the labels while it trains.

    probe = OnlineProbe(feature_dim=192, num_classes=10, label_key="digit", eval_inputs=pixels, eval_labels=ids,
                        encode=pooled_features, accelerator=accelerator)
    fit(..., monitors=[probe])          # logs online_probe_loss (per step) and online_probe_top1 (per log step)

The head (BatchNorm1d without affine, then Linear, zero-initialised) has its own AdamW. It never sends a gradient
into the model: the features are detached, and the model's weights follow the same path with or without the probe.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch import Tensor, nn

from .monitors import Monitor

__all__ = ["OnlineProbe", "pooled_target_states"]


def pooled_target_states(outputs: Any) -> Tensor:
    """Mean over tokens of a JEPA pretraining output's ``target_states`` (B, N, D) -> (B, D)."""
    return outputs.target_states.mean(1)


def _clamped_class_ids(num_classes: int) -> Callable[[Any], Tensor]:
    def class_ids(values: Any) -> Tensor:
        ids = torch.as_tensor(values, dtype=torch.long)  # (B,)
        return torch.where((ids >= 0) & (ids < num_classes), ids, torch.full_like(ids, -1))

    return class_ids


class OnlineProbe(Monitor):
    """Linear classifier on detached features, trained on every training micro-batch, evaluated at each log step.

    - ``observe``: ``features(outputs)`` (B, D), detached, and ``class_ids(raw_batch[label_key])`` (B,) are
      gathered over the processes (every process then takes the same step, so the probes stay identical), and the
      head takes one AdamW step on their cross-entropy, in fp32 outside the step's autocast. Labels < 0 (classes
      the probe does not know) are left out of the loss. Logs ``{name}_loss``.
    - ``summarize``: ``{name}_top1``, the accuracy on the held-out ``eval_inputs`` encoded by
      ``encode(unwrapped_model, inputs)`` (no grad, the run's autocast), each process taking a 1/num_processes share
      (the counts are summed).
    - Saved with the checkpoints (head and optimizer state): a resumed run continues the same probe.

    Args:
        feature_dim: D.
        num_classes: C (>= 2).
        label_key: the label column's key in the dataloader's batches.
        eval_inputs: (M, ...) held-out model inputs on the CPU (any float dtype; cast to fp32 on the device).
        eval_labels: (M,) long class ids in [0, C).
        encode: ``(unwrapped_model, inputs (b, ...)) -> (b, D)`` features of the kind ``features`` gives.
        accelerator: the run's Accelerator (device, gathering).
        features: ``outputs -> (B, D)`` features of a training micro-batch (default: mean-pooled target states).
        class_ids: raw batch labels -> (B,) long ids, -1 for an unknown class (default: ints, out of range -> -1).
        lr: AdamW learning rate of the head.
        weight_decay: AdamW weight decay of the head.
        eval_batch_size: inputs per ``encode`` call.
        name: metric prefix.
    """

    stateful: ClassVar[bool] = True

    def __init__(self, *, feature_dim: int, num_classes: int, label_key: str, eval_inputs: Tensor, eval_labels: Tensor,
                 encode: Callable[[nn.Module, Tensor], Tensor], accelerator: Accelerator,
                 features: Callable[[Any], Tensor] = pooled_target_states,
                 class_ids: Callable[[Any], Tensor] | None = None, lr: float = 1e-3, weight_decay: float = 0.0,
                 eval_batch_size: int = 64, name: str = "online_probe") -> None:
        if feature_dim < 1 or num_classes < 2:
            raise ValueError(f"feature_dim={feature_dim}, num_classes={num_classes}: expected >= 1 and >= 2")
        if eval_inputs.shape[0] == 0 or eval_inputs.shape[0] != eval_labels.shape[0] or eval_labels.ndim != 1:
            raise ValueError(f"eval_inputs {tuple(eval_inputs.shape)} / eval_labels {tuple(eval_labels.shape)}: "
                             "expected M >= 1 inputs and M labels")
        if eval_labels.min() < 0 or eval_labels.max() >= num_classes:
            raise ValueError(f"eval_labels must be class ids in [0, {num_classes}), got "
                             f"[{int(eval_labels.min())}, {int(eval_labels.max())}]")
        if not lr > 0 or eval_batch_size < 1:
            raise ValueError(f"lr={lr}, eval_batch_size={eval_batch_size}: expected > 0 and >= 1")
        self.label_key = label_key
        self.eval_inputs = eval_inputs
        self.eval_labels = eval_labels.long()
        self.encode = encode
        self.accelerator = accelerator
        self.features = features
        self.class_ids = class_ids or _clamped_class_ids(num_classes)
        self.eval_batch_size = eval_batch_size
        self.name = name
        linear = nn.Linear(feature_dim, num_classes)
        nn.init.zeros_(linear.weight)
        nn.init.zeros_(linear.bias)
        self.head = nn.Sequential(nn.BatchNorm1d(feature_dim, affine=False), linear).to(accelerator.device)
        self.optimizer = torch.optim.AdamW(self.head.parameters(), lr=lr, weight_decay=weight_decay)

    def observe(self, outputs: Any, batch: Mapping[str, Any], raw_batch: Mapping[str, Any]) -> dict[str, float]:
        device = self.accelerator.device
        feats = self.features(outputs).detach().float().to(device)  # (B, D)
        labels = self.class_ids(raw_batch[self.label_key]).to(device)  # (B,)
        if self.accelerator.num_processes > 1:  # one gather: labels ride along as a last column (exact below 2^24)
            packed = self.accelerator.gather(torch.cat([feats, labels.float()[:, None]], dim=1))  # (P*B, D + 1)
            feats, labels = packed[:, :-1], packed[:, -1].round().long()
        valid = labels >= 0
        if not bool(valid.any()):
            return {}
        with torch.enable_grad(), torch.autocast(device.type, enabled=False):
            self.head.train()
            logits = self.head(feats)  # (B, C)
            loss = F.cross_entropy(logits[valid], labels[valid])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return {f"{self.name}_loss": loss.item()}

    def summarize(self, metrics: Mapping[str, float], *, accelerator: Accelerator, model: nn.Module
                  ) -> dict[str, float]:
        device, rank, world = accelerator.device, accelerator.process_index, accelerator.num_processes
        total = self.eval_labels.shape[0]
        share = math.ceil(total / world)  # every process runs the same number of batches
        index = torch.arange(rank, total, world)  # (<= share,)
        valid = torch.zeros(share, dtype=torch.bool)
        valid[: index.numel()] = True
        index = torch.cat([index, index.new_zeros(share - index.numel())])  # padded with sample 0, not counted
        unwrapped = accelerator.unwrap_model(model)
        correct = torch.zeros((), device=device)
        self.head.eval()
        try:
            with torch.no_grad():
                for start in range(0, share, self.eval_batch_size):
                    chunk = index[start:start + self.eval_batch_size]
                    inputs = self.eval_inputs[chunk].to(device, torch.float32)
                    with accelerator.autocast():
                        feats = self.encode(unwrapped, inputs)  # (b, D)
                    predicted = self.head(feats.float()).argmax(-1)  # (b,)
                    hits = (predicted == self.eval_labels[chunk].to(device)) & valid[start:start + len(chunk)].to(
                        device)
                    correct += hits.sum()
        finally:
            self.head.train()
        counts = torch.stack([correct.float(), torch.tensor(float(valid.sum()), device=device)])
        if world > 1:
            counts = accelerator.reduce(counts, reduction="sum")
        hit, seen = counts.tolist()
        return {f"{self.name}_top1": hit / seen}

    def state_dict(self) -> dict[str, Any]:
        """Head and optimizer state (saved with each checkpoint)."""
        return {"head": self.head.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict()`."""
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
