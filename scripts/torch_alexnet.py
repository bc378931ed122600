"""Peer baseline for `make bench`: the same single-tower AlexNet in plain eager PyTorch (CPU).

Prints one JSON line: images/s (median of per-step times after warm-up) and its spread.
Only run when torch is installed; anet does not depend on it.
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn


def alexnet(channels: int, classes: int) -> nn.Sequential:
    """conv1 96x11/4, LRN, pool, conv2 256x5, LRN, pool, conv3-5, pool, fc 4096-4096-classes."""
    return nn.Sequential(
        nn.Conv2d(channels, 96, 11, stride=4), nn.ReLU(inplace=True),
        nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(inplace=True),
        nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(4096, classes),
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=227)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--channels", type=int, default=1)
    a = p.parse_args()
    torch.manual_seed(0)
    model = alexnet(a.channels, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(a.batch, a.channels, a.size, a.size)
    y = torch.randint(0, 10, (a.batch,))
    times = []
    for i in range(a.steps + 1):  # one warm-up step
        t = time.perf_counter()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(json.dumps({"images_per_s": round(a.batch / med, 1),
                      "spread": f"{a.batch / max(times):.1f}..{a.batch / min(times):.1f}",
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
