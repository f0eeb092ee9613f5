"""JEPA objectives: L1 / smooth-L1 regression on target latents, and SIGReg (LeJEPA).

All losses are keyword-only functions of tensors, with shape checks and the paper they come from.
The regression targets are expected to be layer-normed already (``F.layer_norm`` over the last
dim, done by the caller, as in Meta's code); these functions do not re-normalize.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["context_distance_weights", "jepa_l1_loss", "jepa_smooth_l1_loss", "sigreg_loss",
           "weighted_jepa_l1_loss"]


def _check_same_shape(predictions: torch.Tensor, targets: torch.Tensor) -> None:
    if predictions.shape != targets.shape:
        raise ValueError(
            f"predictions and targets must have the same shape, got predictions.shape={tuple(predictions.shape)} "
            f"and targets.shape={tuple(targets.shape)}"
        )
    if predictions.numel() == 0:
        raise ValueError(f"predictions must not be empty, got predictions.shape={tuple(predictions.shape)}")


def jepa_l1_loss(*, predictions: torch.Tensor, targets: torch.Tensor, exponent: float = 1.0) -> torch.Tensor:
    """V-JEPA / V-JEPA 2 latent regression loss: ``mean(|p - t| ** exponent) / exponent``.

    With ``exponent=1`` (V-JEPA 2's ``loss_exp=1``) this is the mean absolute error; ``exponent=2``
    gives half the MSE. The mean is over every element (batch, tokens, channels), as in Meta's code.

    Reference: Bardes et al., "Revisiting Feature Prediction for Learning Visual Representations from
    Video" (V-JEPA, 2024), and Assran et al., "V-JEPA 2" (2025), ``app/vjepa/train.py::loss_fn``.

    Args:
        predictions: predictor outputs, shape ``(..., D)``.
        targets: layer-normed target-encoder latents, same shape as ``predictions`` (no grad needed).
        exponent: ``loss_exp`` in Meta's code, > 0.

    Returns:
        Scalar float32 loss.
    """
    _check_same_shape(predictions, targets)
    if not exponent > 0:
        raise ValueError(f"exponent must be > 0, got exponent={exponent}")
    diff = (predictions.float() - targets.float()).abs()
    if exponent != 1.0:
        diff = diff.pow(exponent)
    return diff.mean() / exponent


def jepa_smooth_l1_loss(*, predictions: torch.Tensor, targets: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """I-JEPA latent regression loss: ``F.smooth_l1_loss(predictions, targets)`` (mean over elements).

    Reference: Assran et al., "Self-Supervised Learning from Images with a Joint-Embedding Predictive
    Architecture" (I-JEPA, CVPR 2023), ``src/train.py``: ``F.smooth_l1_loss(z, h)``.

    Args:
        predictions: predictor outputs, shape ``(..., D)``.
        targets: layer-normed target-encoder latents, same shape as ``predictions``.
        beta: threshold between the L2 and L1 regimes (PyTorch's default 1.0, as in I-JEPA).

    Returns:
        Scalar float32 loss.
    """
    _check_same_shape(predictions, targets)
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got beta={beta}")
    return F.smooth_l1_loss(predictions.float(), targets.float(), beta=beta)


def _epps_pulley_grid(num_points: int, t_max: float, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Knots ``t`` on ``[0, t_max]``, the N(0, 1) characteristic function there, and quadrature weights.

    The integrand is even in ``t``, so we integrate on ``[0, t_max]`` with the trapezoid rule and double
    it, folding in the Gaussian weight ``w(t) = exp(-t^2 / 2)``.
    """
    t = torch.linspace(0.0, t_max, num_points, device=device, dtype=torch.float32)  # (K,)
    gaussian_cf = torch.exp(-0.5 * t.square())  # phi_N(0,1)(t) = exp(-t^2/2), also the weight w(t)
    dt = t_max / (num_points - 1)
    trapezoid = torch.full_like(t, dt)
    trapezoid[0] = trapezoid[-1] = dt / 2
    weights = 2.0 * trapezoid * gaussian_cf  # (K,) x2 for the mirrored half [-t_max, 0]
    return t, gaussian_cf, weights


def sigreg_loss(
    *,
    embeddings: torch.Tensor,
    num_slices: int = 256,
    num_points: int = 17,
    t_max: float = 3.0,
    generator: torch.Generator | None = None,
    distributed: bool = False,
) -> torch.Tensor:
    """SIGReg: Sketched Isotropic Gaussian Regularization (LeJEPA), pulls embeddings toward N(0, I).

    The embeddings are projected on ``num_slices`` random unit directions; for each 1-D projection
    the empirical characteristic function ``ecf(t) = mean_n exp(i t x_n)`` is compared with the
    standard normal's ``exp(-t^2/2)`` by the Epps-Pulley statistic

        ``EP = N * integral |ecf(t) - exp(-t^2/2)|^2 w(t) dt``,  ``w(t) = exp(-t^2/2)``,

    evaluated by quadrature on ``num_points`` knots in ``[-t_max, t_max]``. The loss is EP averaged
    over slices (and over any leading batch dims). For samples that really are N(0, I) its expected
    value is about ``sqrt(2 pi) - sqrt(2 pi / 3) ~ 1.06`` whatever N is; for collapsed or anisotropic
    embeddings it grows linearly with N.

    Reference: Balestriero & LeCun, "LeJEPA: Provable and Scalable Self-Supervised Learning Without
    the Heuristics" (arXiv:2511.08544, 2025), Algorithm 1; also used by LeWM (Maes et al., 2025).

    Args:
        embeddings: shape ``(..., N, D)``: N samples of dimension D (leading dims are independent sets,
            e.g. time steps). Computed in float32.
        num_slices: number of random directions (LeJEPA uses 256 to 1024).
        num_points: quadrature knots on ``[0, t_max]`` (odd, >= 3; LeJEPA: 17).
        t_max: integration half-range (LeJEPA: 3).
        generator: draws the directions (pass one seeded by the step, identical on every process,
            for reproducible / distributed-consistent slices). Its device may differ from the data's.
        distributed: average the characteristic functions over all processes (differentiable
            all-reduce), so N is the global batch, as in LeJEPA's reference. Needs identical directions
            on every process, i.e. a generator seeded identically.

    Returns:
        Scalar float32 loss, differentiable w.r.t. ``embeddings``.
    """
    if embeddings.ndim < 2:
        raise ValueError(f"embeddings must have shape (..., N, D), got embeddings.shape={tuple(embeddings.shape)}")
    n, d = embeddings.shape[-2], embeddings.shape[-1]
    if n < 2 or d < 1:
        raise ValueError(
            f"embeddings needs N >= 2 samples and D >= 1 dims, got embeddings.shape={tuple(embeddings.shape)}"
        )
    if num_slices < 1:
        raise ValueError(f"num_slices must be >= 1, got num_slices={num_slices}")
    if num_points < 3 or num_points % 2 == 0:
        raise ValueError(f"num_points must be odd and >= 3, got num_points={num_points}")
    if not t_max > 0:
        raise ValueError(f"t_max must be > 0, got t_max={t_max}")

    x = embeddings.float()
    gen_device = generator.device if generator is not None else x.device
    directions = torch.randn(d, num_slices, generator=generator, device=gen_device, dtype=torch.float32)
    directions = (directions / directions.norm(dim=0, keepdim=True)).to(x.device)  # (D, S) unit columns

    t, gaussian_cf, weights = _epps_pulley_grid(num_points, t_max, x.device)
    projections = x @ directions  # (..., N, S)
    tx = projections.unsqueeze(-1) * t  # (..., N, S, K)
    ecf_real = tx.cos().mean(dim=-3)  # (..., S, K)
    ecf_imag = tx.sin().mean(dim=-3)  # (..., S, K)

    world_size = 1
    if distributed and torch.distributed.is_available() and torch.distributed.is_initialized():
        from torch.distributed.nn.functional import all_reduce

        world_size = torch.distributed.get_world_size()
        ecf_real = all_reduce(ecf_real) / world_size
        ecf_imag = all_reduce(ecf_imag) / world_size

    sq_err = (ecf_real - gaussian_cf).square() + ecf_imag.square()  # |ecf - phi|^2, (..., S, K)
    statistic = (sq_err @ weights) * (n * world_size)  # (..., S)
    return statistic.mean()


# Expected SIGReg value for exact N(0, 1) projections, used in docs and tests:
# E[N |ecf - phi|^2] = 1 - exp(-t^2), integrated against exp(-t^2/2) over R.
SIGREG_GAUSSIAN_EXPECTATION = math.sqrt(2 * math.pi) - math.sqrt(2 * math.pi / 3)


def context_distance_weights(*, context_mask: torch.Tensor, target_mask: torch.Tensor, grid: tuple[int, int, int],
                             offset_scale: float | None = None) -> torch.Tensor:
    """V-JEPA 2.1's context-loss weights: ``1 / sqrt(d)``, d the Euclidean distance in (t, h, w) token units from
    each context token to the nearest target token.

    Reference: V-JEPA 2.1, ``app/vjepa_2_1/models/utils/masks_dist.py::compute_mask_distance`` (Meta squeezes its
    (B, K) result, which breaks for a batch of one; this one keeps the batch axis).

    Args:
        context_mask: (B, K) flat token indices ``t*H*W + h*W + w`` of the context tokens.
        target_mask: (B, M) flat indices of the target tokens (disjoint from the context: d >= 1).
        grid: (T', H', W') token grid the indices live on.
        offset_scale: Meta's ``offset_context_loss``: distances divided by this (Meta: ``grid_size // 16``) first.

    Returns:
        (B, K) float32 weights.
    """
    if context_mask.dim() != 2 or target_mask.dim() != 2 or context_mask.shape[0] != target_mask.shape[0]:
        raise ValueError(f"context_mask {tuple(context_mask.shape)} and target_mask {tuple(target_mask.shape)}: "
                         "expected (B, K) and (B, M) index tensors with the same batch size")
    if target_mask.shape[1] == 0:
        raise ValueError("target_mask has no tokens: the distance to the nearest target token is undefined")
    _, h, w = grid

    def positions(ids: torch.Tensor) -> torch.Tensor:
        t = ids // (h * w)
        row = (ids - t * h * w) // w
        return torch.stack([t, row, ids - t * h * w - row * w], dim=-1).float()  # (B, N, 3)

    diff = positions(context_mask)[:, :, None] - positions(target_mask)[:, None]  # (B, K, M, 3)
    dist = diff.square().sum(-1).min(dim=-1).values.sqrt()  # (B, K): exact for integer positions
    if offset_scale is not None:
        dist = dist / offset_scale
    return 1.0 / dist.sqrt()


def weighted_jepa_l1_loss(*, predictions: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None,
                          exponent: float = 1.0) -> torch.Tensor:
    """``mean(|p - t| ** exponent * w) / exponent`` with one weight per token (V-JEPA 2.1's dense context loss).

    Reference: V-JEPA 2.1, ``app/vjepa_2_1/train.py::loss_fn`` (``d_weights``).

    Args:
        predictions, targets: (B, N, D).
        weights: (B, N) per-token weights (e.g. `context_distance_weights`); None: `jepa_l1_loss`.
        exponent: ``loss_exp``, > 0.

    Returns:
        Scalar float32 loss.
    """
    if weights is None:
        return jepa_l1_loss(predictions=predictions, targets=targets, exponent=exponent)
    _check_same_shape(predictions, targets)
    if weights.shape != predictions.shape[:-1]:
        raise ValueError(f"weights shape {tuple(weights.shape)} != predictions shape without channels "
                         f"{tuple(predictions.shape[:-1])}")
    if not exponent > 0:
        raise ValueError(f"exponent must be > 0, got exponent={exponent}")
    diff = (predictions.float() - targets.float()).abs()
    if exponent != 1.0:
        diff = diff.pow(exponent)
    return (diff * weights.float().unsqueeze(-1)).mean() / exponent
