"""Disk per checkpoint and per full-size paper run, with the optimizer state in every checkpoint
(as anet saved before) and in the newest only (now), and with ``run.keep_best``.

For each model's paper config (``configs/MODEL_karyo.yaml``: 227x227x1, 24 classes, SGD momentum;
VGG16 224x224): build the model and optimizer, run one training step on random data (so the
optimizer's slots exist and hold values), save two checkpoints with ``anet.checkpoints.save``
and measure the files: the older one is weights-only, the newer one complete. Also times a save
on the training thread, with and without the background writer.

Per run: the Karyotype split of the paper's Table 1 (80944 training images), batch 64,
``train.epochs`` and ``train.eval_every_steps`` of the config. Algorithm 1 saves at most once per
check; with ``schedule.monitor: batch`` each save raises the best mini-batch accuracy by more than
its gate, so :func:`max_saves` bounds the count far below the number of checks.

Usage: python scripts/ckpt_disk.py [--models alexnet anetc6 vgg16] [--out-dir DIR] [--keep-best 3]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TRAIN_IMAGES = 80944  # the paper's Karyotype train split (anet/paper.py TABLE1)
CLASSES = 24


def max_saves(levels, lrs, gates, batch: int) -> int:
    """The most Algorithm 1 saves a run can make with ``monitor: batch``: feed every possible
    mini-batch accuracy (k / batch) in ascending order, the sequence that saves most often."""
    from anet import schedule

    state, n = schedule.initial_state(levels, lrs, gates), 0
    for k in range(batch + 1):
        state, saved = schedule.check_and_adjust(k / batch, state, levels, lrs, gates)
        n += saved
    return n


def files_mb(folder: Path) -> dict:
    return {f.name: f.stat().st_size / 1e6 for f in sorted(folder.iterdir()) if f.is_file()}


def measure(model_name: str, out: Path) -> dict:
    """Checkpoint files of one full-size model after one step, and the save times."""
    import keras
    import numpy as np
    import tensorflow as tf

    from anet import checkpoints, models, schedule
    from anet.config import load_config, to_dict
    from anet.steps import make_optimizer, make_train_step

    cfg = load_config(ROOT / "configs" / f"{model_name}_karyo.yaml")
    keras.backend.clear_session()
    size = cfg.data.image_size
    model = models.build_from_config(cfg.model, size, 1, CLASSES)
    opt = make_optimizer(cfg.train, 0.01)
    opt.build(model.trainable_variables)
    step = make_train_step(model, opt, tf.distribute.get_strategy(), 4, jit_compile=False)
    x = tf.random.uniform((4, size, size, 1))
    y = tf.constant([0, 1, 2, 3], tf.int32)
    step((x, y))
    root = out / model_name / "checkpoints"
    shutil.rmtree(root.parent, ignore_errors=True)

    def state(s):
        return checkpoints.CheckpointState(
            step=s, epoch=0, batch_in_epoch=s, reasons=("check",),
            schedule=schedule.ScheduleState(lr=0.01), config=to_dict(cfg), model=model_name,
            num_classes=CLASSES, input_shape=(size, size, 1))

    t = time.perf_counter()
    checkpoints.save(root, model=model, optimizer=opt, state=state(1))
    sync_s = time.perf_counter() - t
    with_writer = checkpoints.Writer()
    t = time.perf_counter()
    checkpoints.save(root, model=model, optimizer=opt, state=state(2), writer=with_writer)
    thread_s = time.perf_counter() - t
    with_writer.close()
    total_s = time.perf_counter() - t
    weights_only = files_mb(root / checkpoints.ckpt_name(1))
    full = files_mb(root / checkpoints.ckpt_name(2))
    assert checkpoints.OPTIMIZER not in weights_only and checkpoints.OPTIMIZER in full
    params = int(sum(np.prod(w.shape) for w in model.weights))
    return {"model": model_name, "input": f"{size}x{size}x1", "params": params,
            "optimizer": cfg.train.optimizer, "full_mb": sum(full.values()),
            "weights_only_mb": sum(weights_only.values()), "files_mb": full,
            "save_sync_s": sync_s, "save_training_thread_s": thread_s,
            "save_with_writer_total_s": total_s}


def per_run(row: dict, keep_best: int) -> dict:
    """Disk of one full-size paper run (the paper config's epochs, check interval, periodic
    checkpoints), before (every checkpoint complete) and after (newest only), with keep_best."""
    from anet.config import load_config

    cfg = load_config(ROOT / "configs" / f"{row['model']}_karyo.yaml")
    t, sc = cfg.train, cfg.schedule
    steps = t.epochs * (TRAIN_IMAGES // t.batch_size)
    checks = math.ceil(steps / t.eval_every_steps)  # steps 1, 1+k, 1+2k, ...
    saves = min(checks, max_saves(sc.levels, sc.lrs, sc.gates, t.batch_size))
    periodic = t.epochs // t.checkpoint_every_epochs  # the last one is also the final
    n = saves + periodic
    full, weights = row["full_mb"] / 1e3, row["weights_only_mb"] / 1e3
    kept = min(keep_best, saves) + periodic
    return {"model": row["model"], "epochs": t.epochs, "steps": steps, "checks": checks,
            "algorithm1_saves_max": saves, "periodic": periodic, "checkpoints": n,
            "before_gb": n * full, "after_gb": (n - 1) * weights + full,
            "keep_best": keep_best, "keep_best_checkpoints": kept,
            "keep_best_gb": (kept - 1) * weights + full,
            "keep_best_and_keep_checkpoints_1_gb": min(keep_best, saves) * weights + full,
            "worst_case_every_check_before_gb": (checks + periodic) * full}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["alexnet", "anetc6", "vgg16"])
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="where the checkpoints are written (default: a temp folder, removed)")
    ap.add_argument("--keep-best", type=int, default=3)
    args = ap.parse_args()
    out = args.out_dir or Path(tempfile.mkdtemp(prefix="anet-ckpt-disk-"))
    rows = []
    try:
        for name in args.models:
            row = measure(name, out)
            row["run"] = per_run(row, args.keep_best)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        if args.out_dir is None:
            shutil.rmtree(out, ignore_errors=True)
    print("\n| model | params | checkpoint, complete | weights-only | save: sync / training thread "
          "(s) | run: ckpts (A1 max + periodic) | run before | run after | keep_best "
          f"{args.keep_best} | + keep_checkpoints 1 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        run = r["run"]
        print(f"| {r['model']} | {r['params'] / 1e6:.1f} M | {r['full_mb']:.0f} MB | "
              f"{r['weights_only_mb']:.0f} MB | {r['save_sync_s']:.2f} / "
              f"{r['save_training_thread_s']:.2f} | {run['checkpoints']} ({run['algorithm1_saves_max']}"
              f" + {run['periodic']}) | {run['before_gb']:.1f} GB | {run['after_gb']:.1f} GB | "
              f"{run['keep_best_gb']:.1f} GB | {run['keep_best_and_keep_checkpoints_1_gb']:.1f} GB |")


if __name__ == "__main__":
    main()
