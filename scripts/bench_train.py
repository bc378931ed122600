"""Training-side benchmark sections for `make bench` (imported by scripts/bench.py).

Every figure uses anet's own code: ``anet.steps.make_train_step`` (the compiled step that
`anet train` runs) fed by ``anet.data.pipeline.train_dataset`` (the real input pipeline) or
by one batch held in memory. Each figure is the median of per-step times after warm-up;
the spread (min..max) is reported beside it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = (("alexnet", 227), ("anetc6", 227), ("vgg16", 224))


def _summary(seconds: list[float], images_per_step: int) -> dict:
    med = statistics.median(seconds)
    return {"images_per_s": round(images_per_step / med, 1),
            "spread": f"{images_per_step / max(seconds):.1f}..{images_per_step / min(seconds):.1f}",
            "repeats": len(seconds)}


def matmul_gflops(n: int = 2048, repeats: int = 10, dtype: str = "float32") -> dict:
    """Dense matmul rate of this machine in ``dtype`` (the utilisation denominator)."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)
    mm = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    mm(a, b).numpy()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        mm(a, b).numpy()
        times.append(time.perf_counter() - t)
    flops = 2 * n**3
    return {"gflops": round(flops / statistics.median(times) / 1e9, 1),
            "spread": f"{flops / max(times) / 1e9:.0f}..{flops / min(times) / 1e9:.0f}",
            "n": n, "dtype": dtype}


def _spec(data_dir: Path, size: int):
    from anet.config import DataConfig
    from anet.data.contract import from_dataset
    from anet.data.info import load_dataset

    info = load_dataset(data_dir)
    return info, from_dataset(DataConfig(dir=str(data_dir), image_size=size), info)


def pipeline_rate(data_dir: Path, size: int, batch: int = 64, batches: int = 40) -> dict:
    """Images/s the input pipeline alone delivers at ``size`` x ``size``."""
    from anet.data import pipeline

    _, spec = _spec(data_dir, size)
    it = iter(pipeline.train_dataset(data_dir, spec, batch_size=batch, epoch=0, seed=0))
    next(it)
    times = []
    for _ in range(batches):
        t = time.perf_counter()
        next(it)
        times.append(time.perf_counter() - t)
    # per-batch times of a prefetching pipeline are bursty: report the mean rate as the median
    total = sum(times)
    return {"images_per_s": round(batch * batches / total, 1),
            "spread": f"{batch / max(times):.0f}..{batch / max(min(times), 1e-6):.0f}",
            "repeats": batches}


def train_rates(name: str, size: int, data_dir: Path, *, batch: int = 64, steps: int = 6,
                warmup: int = 2, precision: str = "float32", jit: bool | str = "auto",
                alternative: bool = False) -> dict:
    """One model's training step: images/s from memory and from the real pipeline, + ratio.

    ``jit`` is ``train.jit_compile`` (auto: XLA on a GPU only, as ``anet train`` resolves it);
    ``alternative`` also times the other choice from memory, so the rows show what auto gains.
    """
    import keras
    import tensorflow as tf

    from anet import models
    from anet.config import ModelConfig, TrainConfig
    from anet.data import pipeline
    from anet.steps import make_optimizer, make_train_step, use_xla

    info, spec = _spec(data_dir, size)
    xla = use_xla(jit, False, pipeline.step_device() is not None)
    keras.mixed_precision.set_dtype_policy(precision)

    def build_step(compile_xla: bool):
        keras.utils.set_random_seed(0)
        model = models.build_from_config(ModelConfig(name=name), size, spec.channels,
                                         info.num_classes)
        opt = make_optimizer(TrainConfig(precision=precision), 0.01)
        opt.build(model.trainable_variables)
        return make_train_step(model, opt, tf.distribute.get_strategy(), batch, compile_xla)

    step = build_step(xla)

    def timed(batches) -> list[float]:
        out = []
        for i, b in enumerate(batches):
            t = time.perf_counter()
            loss, _ = step(b)
            float(loss)  # wait for the step (a per-step time needs it; `anet train` doesn't)
            if i >= warmup:
                out.append(time.perf_counter() - t)
            if len(out) == steps:
                break
        return out

    x = tf.random.uniform((batch, size, size, spec.channels))
    y = tf.random.uniform((batch,), maxval=info.num_classes, dtype=tf.int32)
    memory = _summary(timed(iter(lambda: (x, y), None)), batch)
    ds = pipeline.train_dataset(data_dir, spec, batch_size=batch, epoch=0, seed=0)
    real = _summary(timed(iter(ds)), batch)
    other = {}
    if alternative:
        step = build_step(not xla)
        alt = _summary(timed(iter(lambda: (x, y), None)), batch)
        label = "plain" if xla else "xla"
        other = {f"{label}_memory_images_per_s": alt["images_per_s"],
                 f"{label}_memory_spread": alt["spread"],
                 f"step_over_{label}": round(memory["images_per_s"] / alt["images_per_s"], 2)}
    flops = 3 * models.forward_flops(name, (size, size, spec.channels), info.num_classes)
    keras.mixed_precision.set_dtype_policy("float32")
    return {
        "step": "XLA" if xla else "plain graph (TensorFlow's oneDNN kernels)",
        "memory_images_per_s": memory["images_per_s"], "memory_spread": memory["spread"],
        "pipeline_images_per_s": real["images_per_s"], "pipeline_spread": real["spread"],
        "pipeline_over_memory": round(real["images_per_s"] / memory["images_per_s"], 3),
        "train_gflop_per_image": round(flops / 1e9, 2),
        "achieved_gflops": round(flops * memory["images_per_s"] / 1e9, 1),
        "repeats": memory["repeats"], **other,
    }


def torch_peer(size: int = 227, batch: int = 64, steps: int = 4, compile: bool = False,
               channels_last: bool = False) -> dict | None:
    """PyTorch AlexNet images/s (scripts/torch_alexnet.py), eager or ``torch.compile``, or
    None without torch."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    flags = (["--compile", "--warmup", "2"] if compile else []) + (
        ["--channels-last"] if channels_last else [])
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "torch_alexnet.py"),
                          "--size", str(size), "--batch", str(batch), "--steps", str(steps),
                          *flags], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or [f"exit code {out.returncode}"]
        return {"error": lines[-1][:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])
