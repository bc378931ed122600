"""Loop-side benchmark section for `make bench` (imported by scripts/bench.py): the share of
wall time a full-size paper run spends outside its training steps (`anet evaluate`'s section
is scripts/bench_eval.py).

It times anet's own code: ``anet.steps.make_train_step`` with ``StepSums`` (the step and the
host read that `anet train` makes at each Algorithm 1 check), ``anet.runlog.MetricsLog`` (the
check's metrics row), ``anet.train.save`` (a checkpoint) and ``anet.steps.make_eval_fn`` on
``anet.data.pipeline.decoded_once`` (validation).
"""

from __future__ import annotations

import statistics
import tempfile
import time
import types
from pathlib import Path

from bench_train import _spec

# The paper's karyotype split (anet.paper.TABLE1) and anet's defaults for the paper configs
# (configs/*_karyo.yaml): batch 64, Algorithm 1 every 200 steps on the batch accuracy,
# a periodic checkpoint every 10 epochs.
PAPER = {"train": 80944, "valid": 4415, "batch": 64, "every": 200, "checkpoint_every_epochs": 10}


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def outside_share(step_s: float, check_s: float, valid_s: float, save_s: float, *,
                  train: int, batch: int, every: int, checkpoint_every_epochs: int,
                  saving_checks: float, valid_at_checks: bool = False) -> dict:
    """Seconds per epoch in steps and outside them, and the outside share, for one epoch of
    ``train // batch`` steps with a check every ``every`` steps (``check_s`` each, plus a
    validation when ``valid_at_checks``), ``saving_checks`` of the checks saving a checkpoint,
    one validation per epoch end and a periodic checkpoint every ``checkpoint_every_epochs``."""
    steps = train // batch
    checks = steps / every
    outside = (checks * (check_s + (valid_s if valid_at_checks else 0.0))
               + checks * saving_checks * save_s + valid_s + save_s / checkpoint_every_epochs)
    inside = steps * step_s
    return {"steps_per_epoch": steps, "checks_per_epoch": round(checks, 2),
            "epoch_steps_s": round(inside, 1), "epoch_outside_s": round(outside, 2),
            "outside_share": round(outside / (inside + outside), 4)}


def loop_overhead(data_dir: Path, name: str = "alexnet", size: int = 227, *, steps: int = 3,
                  saves: int = 2, valid_batches: int = 4) -> dict:
    """Time a full-size model's step, check, validation and checkpoint save, and compute the
    share outside the steps at the paper's check interval (one measured epoch is hours on a
    CPU: the parts are measured, the epoch is computed from them)."""
    import keras
    import tensorflow as tf

    from anet import checkpoints, models, train
    from anet.config import Config, DataConfig, ModelConfig, to_dict
    from anet.data import pipeline
    from anet.runlog import MetricsLog
    from anet.runs import RunPaths
    from anet.schedule import ScheduleState
    from anet.steps import StepSums, make_eval_fn, make_optimizer, make_train_step, use_xla

    info, spec = _spec(data_dir, size)
    batch = PAPER["batch"]
    cfg = Config(model=ModelConfig(name=name), data=DataConfig(dir=str(data_dir), image_size=size))
    model = models.build_from_config(cfg.model, size, spec.channels, info.num_classes)
    opt = make_optimizer(cfg.train, 0.01)
    opt.build(model.trainable_variables)
    sums = StepSums(batch, cfg.schedule.early_break.train_expectation)
    xla = use_xla(cfg.train.jit_compile, False, pipeline.step_device() is not None)  # as `anet train`
    step = make_train_step(model, opt, tf.distribute.get_strategy(), batch, xla, sums=sums)
    x = tf.random.uniform((batch, size, size, spec.channels))
    y = tf.random.uniform((batch,), maxval=info.num_classes, dtype=tf.int32)

    def one_step():
        step((x, y))
        sums.read()  # waits for the step

    for _ in range(2):  # compile, warm up
        one_step()
    step_s = _median_time(one_step, steps)
    work = Path(tempfile.mkdtemp(prefix="anet-bench-loop-"))
    log = MetricsLog(work)
    row = {"kind": "check", "step": 1, "epoch": 0, "lr": 0.01, "train_loss": 2.3, "train_acc": 0.1,
           "images_per_sec": 25.0, "batch_acc": 0.1, "monitored": 0.1, "best": 0.1,
           "next_lr": 0.01, "saved": False}
    check_s = _median_time(lambda: (sums.read(), log.log(row)), 5)  # the read + metrics row
    log.close()
    valid = pipeline.decoded_once(data_dir, "valid", spec, examples=info.split_size("valid"),
                                  batch_size=batch, folder=None, max_batches=valid_batches)
    score = make_eval_fn(model)
    t = time.perf_counter()
    first = score(valid)  # decodes and fills the cache
    first_s = time.perf_counter() - t
    cached_s = _median_time(lambda: score(valid), 2)
    per_image, first_per_image = cached_s / first["examples"], first_s / first["examples"]
    session = types.SimpleNamespace(  # what anet.train.save reads of a Session
        model=model, optimizer=opt, paths=RunPaths(work), cfg=cfg, writer=checkpoints.Writer(),
        record=dict(config=to_dict(cfg), model=name, num_classes=info.num_classes,
                    input_shape=(size, size, spec.channels)))
    blocking, complete = [], []
    for i in range(1, saves + 1):  # a check save: the training thread goes on after `blocking`
        t = time.perf_counter()
        train.save(session, train.Loop(i, 0, 0, ScheduleState(0.5, 0.01, 0.0, 0)), ["check"])
        blocking.append(time.perf_counter() - t)
        session.writer.wait()
        complete.append(time.perf_counter() - t)
    session.writer.close()
    save_s, save_blocking_s = statistics.median(complete), statistics.median(blocking)
    newest_mb = sum(f.stat().st_size for f in checkpoints.latest(work / "checkpoints").path.iterdir())
    keras.backend.clear_session()
    valid_s = per_image * PAPER["valid"]
    shared = dict(train=PAPER["train"], batch=batch, every=PAPER["every"],
                  checkpoint_every_epochs=PAPER["checkpoint_every_epochs"])
    out = {
        "model": f"{name} {size}x{size}x{spec.channels}, batch {batch}",
        "paper_run": (f"train {PAPER['train']}, valid {PAPER['valid']}, check every "
                      f"{PAPER['every']} steps, checkpoint every "
                      f"{PAPER['checkpoint_every_epochs']} epochs (computed from the parts)"),
        "step_s": round(step_s, 3), "check_s": round(check_s, 4),
        "valid_s_per_image": round(per_image, 5),
        "valid_decode_first_pass_s_per_image": round(first_per_image, 5),
        "valid_first_pass_over_cached": round(first_per_image / per_image, 2),
        "valid_split_s": round(valid_s, 1), "save_s": round(save_s, 2),
        "save_blocking_s": round(save_blocking_s, 2),
        "newest_checkpoint_mb": round(newest_mb / 2**20, 1),
    }
    # save_s counts the whole save as lost (on a CPU its background half takes the cores the
    # step uses); blocking counts only what the training thread waits for (a GPU step overlaps)
    for label, kw, save in (("no_check_saves", dict(saving_checks=0.0), save_s),
                            ("every_check_saves", dict(saving_checks=1.0), save_s),
                            ("every_check_saves_blocking_only", dict(saving_checks=1.0),
                             save_blocking_s),
                            ("monitor_valid_every_check_saves",
                             dict(saving_checks=1.0, valid_at_checks=True), save_s)):
        r = outside_share(step_s, check_s, valid_s, save, **shared, **kw)
        out[f"outside_share_{label}"] = r["outside_share"]
    base = outside_share(step_s, check_s, valid_s, save_s, **shared, saving_checks=0.0)
    out["epoch_steps_s"], out["steps_per_epoch"] = base["epoch_steps_s"], base["steps_per_epoch"]
    return out
