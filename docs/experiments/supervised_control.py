"""Supervised control for the textured digits: can a network of a given kind learn the digit at all in a CPU budget?

    OMP_NUM_THREADS=1 python docs/experiments/supervised_control.py --arch cnn --steps 400
    OMP_NUM_THREADS=1 python docs/experiments/supervised_control.py --arch vit --steps 600 --lr 5e-4

Renders the `builtin:textured_digits` distribution in memory (6,000 train / 1,000 test, the same renderer and digit
pools; `--background flat` sets the photo's contrast to 0, `white` also paints every digit white), standardises each
image per channel, and trains with cross-entropy (AdamW, batch 64, 50 warm-up steps), printing test top-1 every 50
steps. `cnn`: 4 conv-BN-ReLU layers + global max pool; `vit`: hf_jepa's I-JEPA tiny encoder + a linear head on the
mean-pooled tokens. The log (docs/experiments/pretraining_small_data.md) records what it printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import hf_jepa
from hf_jepa.data.builtin import _digits
from hf_jepa.data.textures import draw_textured_spec, load_textures, render_textured


def make_split(num: int, split: str, seed: int, background: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = _digits()
    textures = load_textures()
    rng = np.random.default_rng(seed)
    pool = np.array([i for i in range(len(labels)) if (i % 5 == 0) == (split == "test")])
    xs, ys = [], []
    for _ in range(num):
        i = int(pool[rng.integers(len(pool))])
        spec = draw_textured_spec(rng, frames=1, textures=textures)
        if background in ("flat", "white"):
            spec = dataclasses.replace(spec, contrast=0.0)
        if background == "white":
            spec = dataclasses.replace(spec, color=(1.0, 1.0, 1.0))
        xs.append(render_textured(spec, images[i], frames=1, textures=textures)[0])  # (3, 64, 64)
        ys.append(int(labels[i]))
    x = torch.from_numpy(np.stack(xs)).float() / 255.0  # (N, 3, 64, 64)
    x = x - x.mean(dim=(2, 3), keepdim=True)
    x = x / (x.std(dim=(1, 2, 3), keepdim=True) + 1e-3)
    return x, torch.tensor(ys)


class ViTClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        config = hf_jepa.ImageJepaConfig.from_preset("tiny")
        self.encoder = hf_jepa.ImageJepaModel(config)
        self.head = nn.Linear(config.hidden_size, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(pixel_values=x).last_hidden_state.mean(1))  # (B, N, D) -> (B, 10)


def cnn() -> nn.Module:
    layers: list[nn.Module] = []
    for cin, cout in ((3, 32), (32, 64), (64, 128), (128, 128)):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers[:-1], nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(128, 10))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=("cnn", "vit"), default="cnn")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--background", choices=("photo", "flat", "white"), default="photo")
    args = p.parse_args()
    torch.manual_seed(0)
    x_train, y_train = make_split(6000, "train", 0, args.background)
    x_test, y_test = make_split(1000, "test", 1, args.background)
    net = cnn() if args.arch == "cnn" else ViTClassifier()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.05)
    gen, start = torch.Generator().manual_seed(0), time.perf_counter()
    for step in range(1, args.steps + 1):
        for group in opt.param_groups:
            group["lr"] = args.lr * min(1.0, step / 50)
        idx = torch.randint(0, len(x_train), (64,), generator=gen)
        loss = F.cross_entropy(net(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            net.eval()
            with torch.no_grad():
                pred = torch.cat([net(x_test[i:i + 200]).argmax(1) for i in range(0, len(x_test), 200)])
            net.train()
            print(f"step {step} loss {loss.item():.3f} test top-1 {(pred == y_test).float().mean():.3f} "
                  f"{time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
