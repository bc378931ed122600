"""Peer baseline for `make bench`: the same single-tower AlexNet in plain eager PyTorch (CPU).

Prints one JSON line: images/s (median of per-step times after warm-up) and its spread.
Only run when torch is installed; anet does not depend on it. The defaults are `make bench`'s
eager CPU peer; scripts/gpu_bench.py runs the GPU peer with
``--device cuda --compile --channels-last --amp bf16`` (torch.compile, bf16 autocast).
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn


def alexnet(channels: int, classes: int, size: int = 227) -> nn.Sequential:
    """conv1 96x11/4, LRN, pool, conv2 256x5, LRN, pool, conv3-5, pool, fc 4096-4096-classes."""
    side = (((size - 11) // 4 + 1 - 3) // 2 + 1 - 3) // 2 + 1  # after pool2 (convs keep size)
    side = (side - 3) // 2 + 1  # after pool5: 6 at 227x227
    return nn.Sequential(
        nn.Conv2d(channels, 96, 11, stride=4), nn.ReLU(inplace=True),
        nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(inplace=True),
        nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Linear(256 * side * side, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(4096, classes),
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=227)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1, help="untimed steps (compiling takes 2-3)")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (inductor)")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    p.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"],
                   help="autocast dtype (fp16 adds a gradient scaler)")
    a = p.parse_args()
    torch.manual_seed(0)
    device = torch.device(a.device)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = alexnet(a.channels, 10, a.size).to(device, memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    fwd = torch.compile(model) if a.compile else model
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=a.amp == "fp16")
    x = torch.rand(a.batch, a.channels, a.size, a.size, device=device).to(memory_format=fmt)
    y = torch.randint(0, 10, (a.batch,), device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = []
    for i in range(a.steps + a.warmup):
        sync()
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = nn.functional.cross_entropy(fwd(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sync()
        if i >= a.warmup:
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(json.dumps({"images_per_s": round(a.batch / med, 1),
                      "spread": f"{a.batch / max(times):.1f}..{a.batch / min(times):.1f}",
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "device": a.device, "compile": a.compile, "channels_last": a.channels_last,
                      "amp": a.amp, "batch": a.batch, "repeats": len(times)}))


if __name__ == "__main__":
    main()
