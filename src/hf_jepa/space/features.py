"""What the encoder sees (patch features and their PCA as colours, where its last block attends) and what the probe
says (classification)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from hf_jepa.data.transforms import EvalTransform
from hf_jepa.space.config import ModelUnavailable
from hf_jepa.space.media import upscale

__all__ = ["FeatureResult", "attention_rgb", "classify", "encoder_of", "extract_patch_features", "features_panel",
           "pca_rgb"]


def _denormalize(x: Tensor, mean: list[float], std: list[float]) -> np.ndarray:
    """float (..., 3, H, W) normalised -> uint8 (..., H, W, 3)."""
    m = torch.tensor(mean).view(3, 1, 1)
    s = torch.tensor(std).view(3, 1, 1)
    return ((x * s + m).clamp(0, 1) * 255).round().byte().movedim(-3, -1).numpy()


@dataclass
class FeatureResult:
    """Patch features of an input and what the encoder saw.

    Attributes:
        tokens: (T', H', W', D) patch features (T' = 1 for images).
        frames: (T', S, S, 3) uint8 model inputs, one per feature time step (the first frame of each tubelet).
        attention: (T', H', W') attention each patch receives in the encoder's last block, averaged over heads and
            over the querying patches (of the same image, or of the whole clip for V-JEPA 2): it sums to 1 per
            image (I-JEPA) or per clip (V-JEPA 2). None when not asked for.
    """

    tokens: Tensor
    frames: np.ndarray
    attention: Tensor | None = None


def encoder_of(model: nn.Module) -> nn.Module:
    """The I-JEPA / V-JEPA 2 / V-JEPA 2.1 encoder of one of our models: the model itself, or its EMA target /
    encoder."""
    from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaModel
    from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaModel
    from hf_jepa.modeling.modeling_easy_vjepa2_1 import VideoJepa21Model

    encoders = (ImageJepaModel, VideoJepaModel, VideoJepa21Model)
    if isinstance(model, encoders):
        return model
    for name in ("target_encoder", "encoder"):  # pretraining / classification (EMA target first) / world model
        sub = getattr(model, name, None)
        if isinstance(sub, encoders):
            return sub
    raise ModelUnavailable(f"{type(model).__name__} has no I-JEPA / V-JEPA 2 encoder to take features from.")


@torch.no_grad()
def extract_patch_features(model: nn.Module, frames: Tensor, *, max_image_frames: int = 8,
                           with_attention: bool = True) -> FeatureResult:
    """Patch features of uint8 frames (T, 3, H, W) from any of our models' encoder.

    V-JEPA 2 encoders take the clip (T is cut to a multiple of the tubelet; one image is repeated to a tubelet, except
    for V-JEPA 2.1, which takes it as an image);
    I-JEPA encoders take each frame (at most `max_image_frames`, spread over the clip). Frames are resized (short
    side) and centre-cropped to the encoder's `image_size` and normalised with its mean / std. `with_attention`
    also returns the last block's attention map (the same forward with `output_attentions=True`).
    """
    encoder = encoder_of(model)
    cfg = encoder.config
    transform = EvalTransform(cfg.image_size, crop_fraction=1.0, mean=tuple(cfg.image_mean), std=tuple(cfg.image_std))
    x = transform(frames.contiguous())  # (T, 3, S, S)
    side = cfg.image_size // cfg.patch_size
    tubelet = getattr(cfg, "tubelet_size", None)
    if tubelet is not None and x.shape[0] == 1 and getattr(cfg, "image_patch_embedding", False):
        tubelet = 1  # V-JEPA 2.1: one image goes in as an image (its own patch embedding), not a repeated frame
    if tubelet is not None:  # V-JEPA 2 / 2.1: one clip
        if x.shape[0] < tubelet:
            x = torch.cat([x, x[-1:].expand(tubelet - x.shape[0], -1, -1, -1)])
        x = x[: x.shape[0] // tubelet * tubelet]  # (T, 3, S, S), T % tubelet == 0
        out = encoder(x[None], output_attentions=with_attention)
        h = out.last_hidden_state[0]  # (T/tubelet * side * side, D)
        tokens = h.reshape(x.shape[0] // tubelet, side, side, h.shape[-1])  # (T', H', W', D)
        shown = x[::tubelet]
    else:  # I-JEPA: frame by frame
        keep = np.linspace(0, x.shape[0] - 1, num=min(max_image_frames, x.shape[0])).round().astype(int)
        x = x[torch.as_tensor(keep)]
        out = encoder(x, output_attentions=with_attention)
        h = out.last_hidden_state  # (T, side * side, D)
        tokens = h.reshape(x.shape[0], side, side, h.shape[-1])
        shown = x
    attention = None
    if with_attention:
        received = out.attentions[-1].float().mean(dim=(1, 2))  # (B, h, N, N) -> (B, N): mean over heads, queries
        attention = received.reshape(tokens.shape[:-1])  # (T', H', W')
    return FeatureResult(tokens=tokens.float(), frames=_denormalize(shown, cfg.image_mean, cfg.image_std),
                         attention=attention)


def pca_rgb(tokens: Tensor) -> np.ndarray:
    """(..., D) features -> (..., 3) float in [0, 1]: the first 3 principal components (fitted on all tokens
    jointly, so colours agree across frames), each scaled by its 1st-99th percentile range."""
    flat = tokens.reshape(-1, tokens.shape[-1]).double()  # (N, D)
    flat = flat - flat.mean(0, keepdim=True)
    k = min(3, *flat.shape)
    _, _, v = torch.linalg.svd(flat, full_matrices=False)  # v: (min(N, D), D)
    proj = flat @ v[:k].T  # (N, k)
    if k < 3:
        proj = torch.cat([proj, proj.new_zeros(proj.shape[0], 3 - k)], dim=1)
    lo = torch.quantile(proj, 0.01, dim=0)
    hi = torch.quantile(proj, 0.99, dim=0)
    rgb = ((proj - lo) / (hi - lo).clamp_min(1e-8)).clamp(0, 1)  # (N, 3)
    return rgb.reshape(*tokens.shape[:-1], 3).float().numpy()


def attention_rgb(attention: Tensor) -> np.ndarray:
    """(..., H', W') attention -> (..., H', W', 3) uint8 in matplotlib's "inferno" colours, scaled by the map's
    99th percentile (one scale for all frames, so brightness compares across time)."""
    from matplotlib import colormaps

    a = attention.double()
    top = torch.quantile(a.flatten(), 0.99).clamp_min(1e-12)
    scaled = (a / top).clamp(0, 1).numpy()
    return (colormaps["inferno"](scaled)[..., :3] * 255).round().astype(np.uint8)


def features_panel(result: FeatureResult, *, tile: int = 192, max_columns: int = 8, gap: int = 4) -> np.ndarray:
    """uint8 (H, W, 3) on white: an image, its PCA map and (when the result has one) its attention map side by side;
    for a clip, the input frames on the top row, their PCA maps below, then the attention maps (at most
    `max_columns` time steps)."""
    maps = [(pca_rgb(result.tokens) * 255).round().astype(np.uint8)]  # (T', H', W', 3)
    if result.attention is not None:
        maps.append(attention_rgb(result.attention))  # (T', H', W', 3)
    t_steps = len(maps[0])
    n = min(t_steps, max_columns)
    cols = np.linspace(0, t_steps - 1, num=n).round().astype(int)
    tiles = [[np.asarray(Image.fromarray(result.frames[t]).resize((tile, tile), Image.Resampling.BILINEAR)),
              *(upscale(m[t], tile) for m in maps)] for t in cols]
    k = len(tiles[0])  # input, PCA (, attention)
    if n == 1:  # one image: [input | PCA (| attention)]
        panel = np.full((tile, k * tile + (k - 1) * gap, 3), 255, dtype=np.uint8)
        for i, image in enumerate(tiles[0]):
            panel[:, i * (tile + gap):i * (tile + gap) + tile] = image
        return panel
    panel = np.full((k * tile + (k - 1) * gap, n * tile + (n - 1) * gap, 3), 255, dtype=np.uint8)
    for j, column in enumerate(tiles):
        x0 = j * (tile + gap)
        for i, image in enumerate(column):
            panel[i * (tile + gap):i * (tile + gap) + tile, x0:x0 + tile] = image
    return panel


try:  # the probing pipeline's eval geometry (224/256 centre crop for video, whole frame for images)
    from hf_jepa.processing import IMAGE_EVAL_CROP_FRACTION as _IMAGE_CROP
    from hf_jepa.processing import VIDEO_EVAL_CROP_FRACTION as _VIDEO_CROP
except ImportError:  # pragma: no cover
    _IMAGE_CROP, _VIDEO_CROP = 1.0, 224 / 256


@torch.no_grad()
def classify(model: nn.Module, frames: Tensor, *, top_k: int = 5) -> dict[str, float]:
    """Top-k class probabilities {label: p} of a classifier on uint8 frames (T, 3, H, W).

    Video classifiers get `num_frames` frames (an image is repeated into a static clip); image classifiers get the
    middle frame. Frames are resized and centre-cropped as the models' processors do (`hf_jepa.processing`:
    224/256 of the short side for video, the whole frame for images) to `image_size` and normalised with the
    config's mean / std.
    """
    cfg = model.config
    if not hasattr(cfg, "id2label") or getattr(cfg, "num_labels", 0) < 1:
        raise ModelUnavailable(f"{type(model).__name__} is not a classifier (no labels in its config).")
    is_video = getattr(cfg, "tubelet_size", None) is not None
    crop = _VIDEO_CROP if is_video else _IMAGE_CROP  # the geometry of the saved model's processor
    transform = EvalTransform(cfg.image_size, crop_fraction=crop, mean=tuple(cfg.image_mean), std=tuple(cfg.image_std))
    if is_video:
        t = cfg.num_frames
        idx = np.linspace(0, frames.shape[0] - 1, num=t).round().astype(int)
        x = transform(frames[torch.as_tensor(idx)].contiguous())[None]  # (1, T, 3, S, S)
        logits = model(pixel_values_videos=x).logits[0]
    else:
        x = transform(frames[frames.shape[0] // 2].contiguous())[None]  # (1, 3, S, S)
        logits = model(pixel_values=x).logits[0]
    probs = logits.float().softmax(-1)
    top = probs.topk(min(top_k, probs.numel()))
    return {str(cfg.id2label.get(int(i), str(int(i)))): float(p) for p, i in zip(top.values, top.indices,
                                                                                   strict=True)}
