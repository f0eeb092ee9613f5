"""Collapse / health monitors of a JEPA run, and the `Monitor` hook through which `fit` runs them.

Metrics (keyword-only functions of tensors, no grad needed; the shapes are those of the pretraining outputs):

- `effective_rank`: RankMe (Garrido et al., "RankMe: Assessing the Downstream Performance of Pretrained
  Self-Supervised Representations by Their Rank", ICML 2023): ``exp(H(p))`` with ``p_k = s_k / sum(s) + eps``
  over the singular values ``s`` of an (M, D) embedding matrix. 1 = every row along one direction (collapse),
  ``min(M, D)`` = all directions equally used. `effective_rank_from_gram` computes it from ``Z^T Z`` (the singular
  values of Z are the square roots of its eigenvalues), which a run can accumulate batch by batch and sum over
  processes.
- `constant_baseline_ratio`: the prediction loss over the loss of predicting, at every target position, the batch
  mean of the targets at that position. >= 1: the predictor does no better than a per-position constant (the
  collapse Meta's EMA objective falls into at small scale, with a loss that still looks low).
- `target_std`: the std over the batch of the targets at each (token, channel), averaged.

`CollapseMonitor` logs the three in every pretraining run (`metrics.jsonl`) and warns, once per condition, when a
run collapses. `Monitor` is the small interface `fit` calls: `observe` after the loss on every micro-batch (its
float logs are averaged over the log window like the loss's) and `summarize` at each log step.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from accelerate import Accelerator
from torch import Tensor, nn

from .objectives import mask_groups, prediction_groups
from .step import ComputeLoss

__all__ = [
    "CollapseMonitor",
    "Monitor",
    "constant_baseline_ratio",
    "effective_rank",
    "effective_rank_from_gram",
    "monitored_loss",
    "target_std",
]

logger = logging.getLogger(__name__)

#: ``loss_fn(*, predictions, targets) -> scalar``, e.g. `jepa_l1_loss` / `jepa_smooth_l1_loss`.
LossFn = Callable[..., Tensor]


# ----------------------------------------------------------------------------------------------------------------
# metrics


def _rankme(singular_values: Tensor, eps: float) -> Tensor:
    """exp(entropy) of ``s / sum(s) + eps``: (K,) non-negative singular values -> scalar float64."""
    s = singular_values.double().clamp_min(0)
    total = s.sum()
    if total <= 0:  # an all-zero matrix spans no direction at all
        return torch.zeros((), dtype=torch.float64, device=s.device)
    p = s / total + eps  # (K,)
    return torch.exp(-(p * p.log()).sum())


def effective_rank(*, embeddings: Tensor, eps: float = 1e-7) -> Tensor:
    """RankMe effective rank of an embedding matrix (Garrido et al., ICML 2023).

    Args:
        embeddings: (M, D) rows, e.g. one mean-pooled embedding per sample. Not centred (as in RankMe).
        eps: added to every normalised singular value before the entropy (RankMe's epsilon).

    Returns:
        Scalar float64 in [1, min(M, D)] (up to eps), 0 for an all-zero matrix.
    """
    if embeddings.ndim != 2 or embeddings.numel() == 0:
        raise ValueError(f"embeddings must be a non-empty (M, D) matrix, got shape {tuple(embeddings.shape)}")
    return _rankme(torch.linalg.svdvals(embeddings.detach().double()), eps)


def effective_rank_from_gram(*, gram: Tensor, num_rows: int | None = None, eps: float = 1e-7) -> Tensor:
    """`effective_rank` of Z from its Gram matrix ``Z^T Z`` (singular values = sqrt of the Gram's eigenvalues).

    Args:
        gram: (D, D) symmetric ``Z^T Z`` (float64 recommended: its eigenvalues are the squared singular values, so
            float32 would lose the small ones).
        num_rows: M, the rows of Z; Z has min(M, D) singular values and only the largest min(M, D) eigenvalues are
            used, as `effective_rank` does (None: all D; the extra zeros add about (D - M) * eps * 16 to the rank).
        eps: as in `effective_rank`.

    Returns:
        Scalar float64, equal to ``effective_rank(embeddings=Z)`` up to rounding.
    """
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1] or gram.numel() == 0:
        raise ValueError(f"gram must be a non-empty square (D, D) matrix, got shape {tuple(gram.shape)}")
    eigenvalues = torch.linalg.eigvalsh(gram.detach().double())  # (D,) ascending, tiny negatives from rounding
    if num_rows is not None:
        eigenvalues = eigenvalues[max(eigenvalues.shape[0] - num_rows, 0):]  # the min(M, D) largest
    return _rankme(eigenvalues.clamp_min(0).sqrt(), eps)


def _gather(states: Tensor, index: Tensor) -> Tensor:
    """(B, N, D) states, (B, M) token indices -> (B, M, D)."""
    return torch.gather(states, 1, index.unsqueeze(-1).expand(-1, -1, states.shape[-1]))


def constant_baseline_ratio(
    *,
    predictions: Sequence[Tensor],
    target_states: Tensor,
    target_masks: Sequence[Tensor],
    loss_fn: LossFn,
    eps: float = 1e-8,
) -> Tensor:
    """Prediction loss / loss of the per-position constant predictor (the batch mean of the targets there).

    For every mask group g (an I-JEPA target block, a V-JEPA 2 mask family) the targets are
    ``T_g = target_states[b, target_masks[g][b]]`` and the baseline C_g predicts, at each target position n,
    ``mean_b target_states[b, n]``. The ratio is
    ``(mean_g loss_fn(P_g, T_g) + eps) / (mean_g loss_fn(C_g, T_g) + eps)``, the objectives' own reduction (a mean
    over groups; I-JEPA's loss over the concatenated blocks is the same mean, its blocks having equal sizes). The eps
    keeps the ratio finite, and 1 for a batch of identical targets predicted exactly.

    Args:
        predictions: per group, (B, M_g, D) predictor outputs.
        target_states: (B, N, D) layer-normed target features of all tokens (the model's ``target_states``).
        target_masks: per group, (B, M_g) long indices of the target tokens.
        loss_fn: the objective's regression loss, ``loss_fn(predictions=..., targets=...) -> scalar``.
        eps: added to both losses.

    Returns:
        Scalar float32 tensor; >= 1 means the predictor is no better than the constant.
    """
    if target_states.ndim != 3:
        raise ValueError(f"target_states must be (B, N, D), got shape {tuple(target_states.shape)}")
    if len(predictions) != len(target_masks) or not predictions:
        raise ValueError(f"got {len(predictions)} prediction groups and {len(target_masks)} target masks: "
                         "expected one mask per group, at least one")
    states = target_states.detach().float()
    constant = states.mean(0, keepdim=True).expand_as(states)  # (B, N, D): the batch mean at each position
    model_losses, baseline_losses = [], []
    for pred, index in zip(predictions, target_masks, strict=True):
        targets = _gather(states, index)  # (B, M_g, D)
        model_losses.append(loss_fn(predictions=pred.detach().float(), targets=targets))
        baseline_losses.append(loss_fn(predictions=_gather(constant, index), targets=targets))
    return (torch.stack(model_losses).mean() + eps) / (torch.stack(baseline_losses).mean() + eps)


def target_std(*, target_states: Tensor) -> Tensor:
    """Std over the batch of the targets at each (token, channel), averaged over tokens and channels.

    Args:
        target_states: (B, N, D) layer-normed target features of all tokens.

    Returns:
        Scalar float32 (population std, so a batch of one gives 0). 0 = every sample has the same targets.
    """
    if target_states.ndim != 3:
        raise ValueError(f"target_states must be (B, N, D), got shape {tuple(target_states.shape)}")
    return target_states.detach().float().std(dim=0, correction=0).mean()


# ----------------------------------------------------------------------------------------------------------------
# the hook


class Monitor:
    """What `fit` runs beside the loss. Subclasses override `observe` and / or `summarize`.

    Attributes:
        stateful: True when the monitor has ``state_dict()`` / ``load_state_dict(state)`` to save with each
            checkpoint (``accelerator.register_for_checkpointing``: a resumed run restores it).
    """

    stateful: ClassVar[bool] = False

    def observe(self, outputs: Any, batch: Mapping[str, Any], raw_batch: Mapping[str, Any]) -> dict[str, float]:
        """Per micro-batch, right after ``compute_loss``, under ``torch.no_grad()`` (and the step's autocast).

        Args:
            outputs: the model's output for this micro-batch.
            batch: the model inputs (on the device).
            raw_batch: the batch as the dataloader gave it, before ``prepare_batch`` (CPU; e.g. labels).

        Returns:
            Float logs, averaged over the log window and the processes like ``compute_loss``'s. The keys must be
            the same on every process for a given micro-batch.
        """
        return {}

    def summarize(self, metrics: Mapping[str, float], *, accelerator: Accelerator, model: nn.Module
                  ) -> dict[str, float]:
        """At each log step, on every process (collectives allowed), before the line is written.

        Args:
            metrics: the line so far (step, loss, the window averages of every ``observe`` log, ...).
            accelerator: the run's Accelerator.
            model: the prepared model (``accelerator.unwrap_model`` for its modules).

        Returns:
            Metrics added to the line (the same on every process).
        """
        return {}


def monitored_loss(compute_loss: ComputeLoss, monitors: Sequence[Monitor], raw_batch: Mapping[str, Any]
                   ) -> ComputeLoss:
    """``compute_loss`` followed by every monitor's `observe` (no grad); their logs join the loss's."""
    if not monitors:
        return compute_loss

    def compute(outputs: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        loss, logs = compute_loss(outputs, batch)
        logs = dict(logs)
        with torch.no_grad():
            for monitor in monitors:
                logs.update(monitor.observe(outputs, batch, raw_batch))
        return loss, logs

    return compute


# ----------------------------------------------------------------------------------------------------------------
# collapse monitor of JEPA pretraining


class CollapseMonitor(Monitor):
    """effective_rank, constant_baseline_ratio and target_std of a JEPA pretraining run, with collapse warnings.

    Reads ``outputs.target_states`` (B, N, D), the predictions per mask group and the batch's ``target_mask`` per
    group (``objectives.prediction_groups`` / ``mask_groups``: the same for every family).

    - Per micro-batch: ``constant_baseline_ratio`` and ``target_std`` (batches of one sample have no batch mean or
      spread: then neither is logged).
    - Per log window: ``effective_rank`` of the mean-pooled (over tokens) target embeddings of every sample of the
      window on every process. Their Gram matrix ``Z^T Z`` (D, D) is summed in float64 batch by batch (on the
      features' device; the CPU on MPS) and over processes at log time, so the window's rows are never stored.
      Also logs ``effective_rank_rows``, the number of rows (the rank is at most min(rows, D)).
    - Warnings (``logging.WARNING``, main process, once per condition, at log steps after ``warn_after_steps``):
      ``constant_baseline_ratio >= ratio_threshold`` and ``effective_rank < rank_fraction * min(rows, D)`` (never
      fires while ``min(rows, D) <= 1 / rank_fraction``: RankMe is >= 1).

    Measured on tiny I-JEPA runs (2-core CPU): an untrained predictor is far worse than the constant (ratio 5-45),
    and a run that learns takes ~100 steps to beat it (colour-quadrant images: 0.83 at step 100, 0.47 at 200); 200
    default steps on the built-in digit frames end at 1.37 (meta) / 1.33 (sigreg). RankMe of the pooled layer-normed
    targets is low whenever the part shared by all samples dominates: 2.0-2.4 for Meta's objective on the digit
    frames (its EMA target barely leaves the random init in 200 steps), ~21 with SIGReg, 1.01-1.07 on identical
    images.

    Args:
        loss_fn: the objective's regression loss (I-JEPA smooth-L1, V-JEPA 2 L1).
        warn_after_steps: no warning at or before this optimizer step (the predictor needs time to beat the
            constant).
        ratio_threshold: warn when the window's constant_baseline_ratio reaches this.
        rank_fraction: warn when effective_rank falls below this fraction of min(rows, D).
        hint: what to try, appended to the warnings.
        eps: RankMe's epsilon.
    """

    def __init__(self, *, loss_fn: LossFn, warn_after_steps: int = 0, ratio_threshold: float = 1.0,
                 rank_fraction: float = 0.025, hint: str = "try --objective sigreg", eps: float = 1e-7) -> None:
        if warn_after_steps < 0:
            raise ValueError(f"warn_after_steps={warn_after_steps}: expected >= 0")
        if not ratio_threshold > 0:
            raise ValueError(f"ratio_threshold={ratio_threshold}: expected > 0")
        if not 0 < rank_fraction <= 1:
            raise ValueError(f"rank_fraction={rank_fraction}: expected in (0, 1]")
        self.loss_fn = loss_fn
        self.warn_after_steps = warn_after_steps
        self.ratio_threshold = ratio_threshold
        self.rank_fraction = rank_fraction
        self.hint = hint
        self.eps = eps
        self.warned: set[str] = set()
        self._gram: Tensor | None = None  # (D, D) float64, this process's window
        self._rows = 0

    def observe(self, outputs: Any, batch: Mapping[str, Any], raw_batch: Mapping[str, Any]) -> dict[str, float]:
        states = outputs.target_states.detach().float()  # (B, N, D)
        pooled = states.mean(1)  # (B, D)
        pooled = (pooled.cpu() if pooled.device.type == "mps" else pooled).double()
        gram = pooled.T @ pooled  # (D, D)
        self._gram = gram if self._gram is None else self._gram + gram
        self._rows += pooled.shape[0]
        if states.shape[0] < 2:
            return {}
        predictions, _ = prediction_groups(outputs)
        ratio = constant_baseline_ratio(predictions=predictions, target_states=states,
                                        target_masks=mask_groups(batch["target_mask"]), loss_fn=self.loss_fn)
        values = torch.stack([ratio, target_std(target_states=states)]).tolist()  # one device sync
        return {"constant_baseline_ratio": values[0], "target_std": values[1]}

    def summarize(self, metrics: Mapping[str, float], *, accelerator: Accelerator, model: nn.Module
                  ) -> dict[str, float]:
        out: dict[str, float] = {}
        dim = 0
        if self._gram is not None:
            gram, rows = self._gram, float(self._rows)
            if accelerator.num_processes > 1:
                gram = accelerator.reduce(gram.to(accelerator.device), reduction="sum")
                rows = float(accelerator.reduce(torch.tensor([rows], device=accelerator.device),
                                                reduction="sum").item())
            out["effective_rank"] = float(effective_rank_from_gram(gram=gram.cpu(), num_rows=int(rows),
                                                                   eps=self.eps))
            out["effective_rank_rows"] = rows
            dim = gram.shape[0]
        self._gram, self._rows = None, 0
        if accelerator.is_main_process:
            self._warn({**metrics, **out}, dim)
        return out

    def _warn(self, metrics: Mapping[str, float], dim: int) -> None:
        step = int(metrics.get("step", 0))
        if step <= self.warn_after_steps:
            return
        ratio = metrics.get("constant_baseline_ratio")
        if ratio is not None and math.isfinite(ratio) and ratio >= self.ratio_threshold \
                and "constant_baseline_ratio" not in self.warned:
            self.warned.add("constant_baseline_ratio")
            logger.warning(
                "collapse? constant_baseline_ratio=%.3f at step %d (>= %g): the predictor does no better than "
                "predicting each target position's batch mean (the targets carry little the context predicts, or the "
                "run is still too short to learn it); %s", ratio, step, self.ratio_threshold, self.hint)
        rank = metrics.get("effective_rank")
        if rank is not None and dim and "effective_rank" not in self.warned:
            limit = self.rank_fraction * min(metrics["effective_rank_rows"], dim)
            if rank < limit:
                self.warned.add("effective_rank")
                logger.warning(
                    "collapse? effective_rank=%.2f at step %d (< %g x min(%d rows, dim %d) = %.2f): the samples' "
                    "pooled target embeddings span few directions (one part shared by all samples dominates); %s",
                    rank, step, self.rank_fraction,
                    metrics["effective_rank_rows"], dim, limit, self.hint)
