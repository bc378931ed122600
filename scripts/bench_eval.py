"""The evaluate section of `make bench` (imported by scripts/bench.py): what `anet evaluate`
spends per checkpoint, before #16 and now, measured in turn in one process.

Both rows score the same N checkpoints (written here, distinct weights each) of one model on
the same validation images, into the same model object:

  before  what `anet evaluate` did before #16 (its code at c660988^): every checkpoint read in
          full by the damage check (``restore.damaged``, then ``checkpoints.damaged``), then
          loaded by Keras' ``model.load_weights`` (a second read of the weights, and Keras'
          walk over the model), then scored by the eval function of that time (the loss and
          correct sums read to the host after every batch) over the validation split read
          from the TFRecords and decoded again for every checkpoint.
  now     what `anet evaluate` does: ``anet.scoring.score_checkpoints`` with an
          ``anet.restore.Restorer`` (each checkpoint read once, that read being the damage
          check; the arrays assigned straight to the variables) and ``anet.steps.make_eval_fn``
          (sums kept on the device) over ``pipeline.decoded_once`` (decoded during the first
          checkpoint's pass, kept in memory for the others).

Each row's time covers all N checkpoints: for "now" that includes the pass that decodes the
split and the Restorer's one walk over the model. Building the model and tracing each row's
eval function (once per command in both) are left out of both. The rows alternate for
``rounds`` rounds; each row's fastest round is reported (other processes only ever add time).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench_train import _spec


def _before_eval_fn(model):
    """``anet.steps.make_eval_fn`` as it was before #16 (c660988^): one compiled batch function
    whose loss and correct sums are read to the host after every batch."""
    import keras
    import tensorflow as tf

    from anet.models import split_outputs

    @tf.function(reduce_retracing=True)
    def batch_stats(x, y):
        probs, _ = split_outputs(model(x, training=False))
        loss = keras.losses.sparse_categorical_crossentropy(y, probs)
        pred = tf.argmax(probs, axis=-1, output_type=tf.int32)
        return [tf.reduce_sum(loss), tf.reduce_sum(tf.cast(tf.equal(pred, y), tf.float32))]

    def evaluate(ds, split: str = "valid") -> dict:
        totals, n = [0.0, 0.0], 0
        for x, y in ds:
            for i, v in enumerate(batch_stats(x, y)):
                totals[i] += float(v)
            n += int(y.shape[0])
        return {"acc": totals[1] / n, "loss": totals[0] / n, "examples": n}

    return evaluate


def _before(candidates, model, score, valid_ds) -> list[dict]:
    """Pre-#16 `anet evaluate`'s scoring: damage check of all, then load and score each."""
    from anet import restore

    for c in candidates:  # checkpoints.split_damaged: each read in full
        restore.damaged(c.path)
    scores = []
    for c in candidates:
        restore.keras_load(c.path, model)  # checkpoints.load_weights: Keras reads it again
        s = score(valid_ds, "valid")
        scores.append({"name": c.name, "step": c.step, "epoch": c.epoch, "reasons": list(c.reasons),
                       "valid_acc": s["acc"], "valid_loss": s["loss"]})
    return scores


def _write_checkpoints(root: Path, model, n: int, info, spec, name: str) -> None:
    import numpy as np

    from anet import checkpoints
    from anet.config import TrainConfig
    from anet.schedule import ScheduleState
    from anet.steps import make_optimizer

    opt = make_optimizer(TrainConfig(), 0.01)
    opt.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    for i in range(1, n + 1):  # distinct weights per checkpoint
        model.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype)
                           for w in model.get_weights()])
        checkpoints.save(root, model=model, optimizer=opt, state=checkpoints.CheckpointState(
            step=i, epoch=0, batch_in_epoch=i, reasons=("check",),
            schedule=ScheduleState(0.5, 0.01, 0.0, 0), config={}, model=name,
            num_classes=info.num_classes, input_shape=(spec.image_size,) * 2 + (spec.channels,)))


def evaluate_rates(data_dir: Path, *, checkpoints_n: int = 20, name: str = "anetc6",
                   size: int = 67, width: float = 0.0625, fc_units: int = 32, batch: int = 64,
                   max_batches: int = 16, rounds: int = 2) -> dict:
    """Seconds per checkpoint and images/s of the two rows (module doc) for ``checkpoints_n``
    checkpoints of ``name`` (by default configs/tiny.yaml's model: ANet-c6 width 1/16, fc 32,
    67x67) on up to ``max_batches`` batches of the validation split."""
    import keras

    from anet import checkpoints, models, restore, scoring
    from anet.config import ModelConfig
    from anet.data import pipeline
    from anet.steps import make_eval_fn

    info, spec = _spec(data_dir, size)
    cfg = ModelConfig(name=name, width=width, fc_units=fc_units)
    model = models.build_from_config(cfg, size, spec.channels, info.num_classes)
    work = tempfile.TemporaryDirectory(prefix="anet-bench-eval-")
    root = Path(work.name) / "checkpoints"
    _write_checkpoints(root, model, checkpoints_n, info, spec, name)
    candidates = checkpoints.list_checkpoints(root)
    examples = min(info.split_size("valid"), max_batches * batch)
    before_score, now_score = _before_eval_fn(model), make_eval_fn(model)
    fresh = pipeline.eval_dataset(data_dir, "valid", spec, batch_size=batch, max_batches=max_batches)
    before_score(fresh)  # trace both batch functions (both batch shapes) outside the timings
    now_score(fresh)
    times: dict[str, list[float]] = {"before": [], "now": []}
    runs = {}
    for _ in range(rounds):
        t = time.perf_counter()
        runs["before"] = _before(candidates, model, before_score, fresh)
        times["before"].append(time.perf_counter() - t)
        t = time.perf_counter()
        once = pipeline.decoded_once(data_dir, "valid", spec, examples=examples, batch_size=batch,
                                     folder=None, max_batches=max_batches)
        runs["now"], broken = scoring.score_checkpoints(candidates, restore.Restorer(model),
                                                        now_score, once)
        times["now"].append(time.perf_counter() - t)
        assert not broken
    n = len(candidates)
    out = {"model": f"{name} width {width}, fc {fc_units}, {size}x{size}x{spec.channels}",
           "checkpoints": n, "checkpoint_mb": round(sum(
               f.stat().st_size for f in candidates[0].path.iterdir()) / 2**20, 2),
           "valid_images": examples, "batch": batch, "rounds": rounds}
    for row in ("before", "now"):
        best = min(times[row])
        out[f"{row}_s_per_checkpoint"] = round(best / n, 3)
        out[f"{row}_images_per_s"] = round(examples * n / best, 1)
        out[f"{row}_rounds_s"] = [round(s, 2) for s in times[row]]
    out["speedup"] = round(out["before_s_per_checkpoint"] / out["now_s_per_checkpoint"], 2)
    out["same_scores"] = runs["before"] == runs["now"]
    keras.backend.clear_session()
    work.cleanup()
    return out
