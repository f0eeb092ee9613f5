"""Figures and animations: matplotlib on the headless Agg backend, and the one GIF writer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def pyplot() -> Any:
    """`matplotlib.pyplot` on the non-interactive Agg backend (imported lazily: the library does not need it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, *, dpi: int = 110) -> Path:
    """Lay out, write (creating the folder) and close `fig`; returns the path."""
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    pyplot().close(fig)
    return out


def save_gif(frames: Sequence[np.ndarray], path: str | Path, *, fps: float = 10, hold_frames: int = 0) -> Path:
    """Write uint8 RGB frames, each (H, W, 3), as a looping GIF at ``fps``, the last one shown ``hold_frames`` more
    times; creates the folder and returns the path."""
    import imageio.v2 as imageio

    if not frames:
        raise ValueError("frames is empty: expected at least one (H, W, 3) frame")
    frames = list(frames) + [frames[-1]] * hold_frames
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(out, frames, duration=1000 / fps, loop=0)
    return out
