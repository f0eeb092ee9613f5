"""Per-feature statistics for ``meta/stats.json`` and the ``stats/<feature>/<stat>`` episode columns."""

from __future__ import annotations

from typing import Any

import numpy as np


class RunningStats:
    """min / max / mean / std / count over axis 0 of arrays ``(N, *shape)`` (float64 accumulators)."""

    def __init__(self) -> None:
        self.count = 0
        self.sum: np.ndarray | None = None
        self.sumsq: np.ndarray | None = None
        self.min: np.ndarray | None = None
        self.max: np.ndarray | None = None

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        s, ss, mn, mx = x.sum(0), (x * x).sum(0), x.min(0), x.max(0)
        if self.sum is None:
            self.sum, self.sumsq, self.min, self.max = s, ss, mn, mx
        else:
            self.sum, self.sumsq = self.sum + s, self.sumsq + ss
            self.min, self.max = np.minimum(self.min, mn), np.maximum(self.max, mx)
        self.count += x.shape[0]

    def merge(self, other: RunningStats) -> None:
        if other.sum is None:
            return
        if self.sum is None:
            self.sum, self.sumsq, self.min, self.max = other.sum, other.sumsq, other.min, other.max
        else:
            self.sum, self.sumsq = self.sum + other.sum, self.sumsq + other.sumsq
            self.min, self.max = np.minimum(self.min, other.min), np.maximum(self.max, other.max)
        self.count += other.count

    def to_dict(self) -> dict[str, Any]:
        mean = self.sum / self.count
        std = np.sqrt(np.maximum(self.sumsq / self.count - mean * mean, 0.0))
        return {
            "min": self.min.tolist(),
            "max": self.max.tolist(),
            "mean": mean.tolist(),
            "std": std.tolist(),
            "count": [self.count],
        }


def image_stats(frames: np.ndarray) -> RunningStats:
    """Per-channel stats of ``uint8 (T, H, W, 3)`` in [0, 1], shaped (3, 1, 1) like LeRobot's; count = T frames."""
    t = frames.shape[0]
    x = frames.reshape(-1, 3)  # (T*H*W, 3) uint8
    pixels_per_frame = x.shape[0] / t
    hist = np.stack([np.bincount(x[:, c], minlength=256) for c in range(3)]).astype(np.float64)  # (3, 256), exact
    levels = np.arange(256, dtype=np.float64) / 255.0
    nonzero = hist > 0
    st = RunningStats()
    st.count = t
    # sums over frames of per-frame means, so that mean = sum / count
    st.sum = (hist @ levels / pixels_per_frame).reshape(3, 1, 1)
    st.sumsq = (hist @ levels**2 / pixels_per_frame).reshape(3, 1, 1)
    st.min = levels[nonzero.argmax(1)].reshape(3, 1, 1)
    st.max = levels[255 - nonzero[:, ::-1].argmax(1)].reshape(3, 1, 1)
    return st
