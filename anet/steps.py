"""The compiled pieces a training loop runs: distribution strategy, optimizer, train step and
evaluation function (used by ``anet train``, ``anet evaluate`` and the benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

from anet.data import pipeline
from anet.errors import AnetError
from anet.models import has_polarity, split_outputs


def make_strategy(distribute: str, resolver=None) -> tf.distribute.Strategy:
    """The strategy of ``train.distribute``; multi_worker takes its cluster from ``resolver``
    (see :func:`anet.cluster.resolve`) and waits there until every worker has started."""
    if distribute == "mirrored":
        return tf.distribute.MirroredStrategy()
    if distribute == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    return tf.distribute.get_strategy()


def use_xla(setting: bool | str, deterministic: bool, on_gpu: bool) -> bool:
    """Whether the train step is XLA-compiled, from ``train.jit_compile``.

    ``auto`` compiles on a GPU only: on CPU, TensorFlow's own (oneDNN) kernels run the step
    faster than XLA's (measured on 2 cores, batch 64: AlexNet 227 px 1.1x, ANet-c6 227 px
    1.3x, the demo's narrow ANet-c6 at 96 px 3x; ``make bench`` prints both), and
    ``train.deterministic`` needs it off (XLA has no deterministic max-pool gradient).
    """
    if setting == "auto":
        return on_gpu and not deterministic
    return bool(setting)


def make_optimizer(train_cfg, lr: float) -> keras.optimizers.Optimizer:
    clip = {"global_clipnorm": train_cfg.clipnorm} if train_cfg.clipnorm else {}
    if train_cfg.optimizer == "adam":
        opt = keras.optimizers.Adam(learning_rate=lr, **clip)
    elif train_cfg.optimizer == "adamw":
        opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=train_cfg.adamw_decay, **clip)
    else:
        momentum = train_cfg.momentum if train_cfg.optimizer == "momentum" else 0.0
        opt = keras.optimizers.SGD(learning_rate=lr, momentum=momentum, **clip)
    if train_cfg.precision == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def polarity_loss(pol: tf.Tensor, pol_probs: tf.Tensor) -> tf.Tensor:
    """Per-example cross-entropy of the polarity head; 0 where the polarity is unknown (-1)."""
    known = pol >= 0
    ce = keras.losses.sparse_categorical_crossentropy(tf.maximum(pol, 0), pol_probs)
    return tf.where(known, ce, tf.zeros_like(ce))


@dataclass(frozen=True)
class Sums:
    """What the device kept about the steps since :meth:`StepSums.reset` (one host read)."""

    steps: int  # training steps taken
    loss: float  # sum of their mean losses (float64, added in step order)
    correct: float  # sum of their correct predictions
    last_correct: float  # correct predictions of the latest step
    streak: int  # the early-break streak after the latest step (schedule.update_streak)
    bad_step: int  # 1-based index among these steps of the first non-finite loss (0 = none)
    bad_loss: float  # that loss (nan, inf or -inf)


class StepSums:
    """The training step's running sums, kept on the device: the compiled step adds to them
    and the loop reads them (one transfer) only at an Algorithm 1 check or when an epoch
    ends, so the host never waits for a step it does not need. Sums are float64, added in
    step order: exactly what adding each step's float32 loss to a Python float gives. The
    early-break streak (``schedule.update_streak``) and the first non-finite loss are
    tracked here too, so a read at a check says what a read after every step would have.
    """

    def __init__(self, batch_size: int, train_expectation: float):
        self.batch = tf.constant(float(batch_size), tf.float64)
        self.expectation = tf.constant(float(train_expectation), tf.float64)
        f64, i64 = tf.float64, tf.int64
        self.steps = tf.Variable(0, dtype=i64, trainable=False, name="sums_steps")
        self.loss = tf.Variable(0.0, dtype=f64, trainable=False, name="sums_loss")
        self.correct = tf.Variable(0.0, dtype=f64, trainable=False, name="sums_correct")
        self.last_correct = tf.Variable(0.0, dtype=f64, trainable=False, name="sums_last")
        self.streak = tf.Variable(0, dtype=i64, trainable=False, name="sums_streak")
        self.bad_step = tf.Variable(0, dtype=i64, trainable=False, name="sums_bad_step")
        self.bad_loss = tf.Variable(0.0, dtype=tf.float32, trainable=False, name="sums_bad_loss")

    def add(self, loss: tf.Tensor, correct: tf.Tensor) -> None:
        """One step's (mean loss, correct count); runs inside the compiled step."""
        steps = self.steps.assign_add(1)
        c = tf.cast(correct, tf.float64)
        self.loss.assign_add(tf.cast(loss, tf.float64))
        self.correct.assign_add(c)
        self.last_correct.assign(c)
        self.streak.assign(tf.where(c / self.batch >= self.expectation, self.streak + 1, 0))
        first_bad = tf.logical_and(tf.equal(self.bad_step, 0),
                                   tf.logical_not(tf.math.is_finite(tf.cast(loss, tf.float32))))
        self.bad_step.assign(tf.where(first_bad, steps, self.bad_step))
        self.bad_loss.assign(tf.where(first_bad, tf.cast(loss, tf.float32), self.bad_loss))

    def read(self) -> Sums:
        """The sums so far, on the host (this waits for the steps queued before it)."""
        return Sums(steps=int(self.steps.numpy()), loss=float(self.loss.numpy()),
                    correct=float(self.correct.numpy()),
                    last_correct=float(self.last_correct.numpy()),
                    streak=int(self.streak.numpy()), bad_step=int(self.bad_step.numpy()),
                    bad_loss=float(self.bad_loss.numpy()))

    def reset(self, streak: int) -> None:
        """Start new sums; the streak carries on from ``streak`` (it spans windows and epochs)."""
        for v in (self.steps, self.bad_step):
            v.assign(0)
        for v in (self.loss, self.correct, self.last_correct):
            v.assign(0.0)
        self.bad_loss.assign(0.0)
        self.streak.assign(streak)


def make_train_step(model, optimizer, strategy, global_batch: int, jit_compile: bool,
                    distributed: bool = False, label_smoothing: float = 0.0,
                    polarity_weight: float = 0.0, sums: StepSums | None = None):
    """Compiled step: returns (mean loss, number of correct predictions) over the global batch,
    and adds them to ``sums`` on the device when given (then nothing needs reading per step).

    A model with the polarity head takes batches ``(x, y, polarity)`` and adds
    ``polarity_weight`` times the head's cross-entropy (examples of unknown polarity add 0);
    the correct predictions count the classes only.

    XLA cannot compile cross-device collectives on CPU, so under a distribution strategy only
    the forward/backward pass is XLA-compiled and the (all-reducing) update runs outside it.
    """
    if label_smoothing:
        smoothed = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing,
                                                        reduction=None)

        def loss_fn(y, probs):
            return smoothed(tf.one_hot(y, tf.shape(probs)[-1]), probs)
    else:
        loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)

    def forward_backward(x, y, pol=None):
        with tf.GradientTape() as tape:
            probs, pol_probs = split_outputs(model(x, training=True))
            per_example = loss_fn(y, probs)
            if pol is not None:
                per_example += polarity_weight * polarity_loss(pol, pol_probs)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        pred = tf.argmax(probs, axis=-1, output_type=tf.int32)
        return loss, tf.reduce_sum(tf.cast(tf.equal(pred, y), tf.float32)), grads

    if distributed:
        forward_backward = tf.function(forward_backward, jit_compile=jit_compile)

    def replica_step(x, y, pol=None):
        loss, correct, grads = forward_backward(x, y, pol)
        optimizer.apply(grads, model.trainable_variables)
        return loss, correct

    replica_step = tf.function(replica_step, jit_compile=jit_compile and not distributed)

    @tf.function
    def step(batch):
        loss, correct = strategy.run(replica_step, args=batch)
        sum_ = tf.distribute.ReduceOp.SUM
        loss, correct = strategy.reduce(sum_, loss, axis=None), strategy.reduce(sum_, correct, axis=None)
        if sums is not None:
            sums.add(loss, correct)
        return loss, correct

    return step


def make_eval_fn(model):
    """``evaluate(ds, split="valid") -> {"acc", "loss", "examples"}`` for the model's current
    weights (used by training and by ``anet evaluate``). The whole pass over ``ds`` is one
    compiled function (the loop over the batches runs in the graph, so scoring many
    checkpoints pays no per-batch Python); its sums are read once, at the end. Batches
    ``(x, y, polarity)`` of a model with the polarity head add ``polarity_acc`` (over the
    examples of known polarity; None when there are none)."""

    def batch_stats(totals, x, y, pol=None):
        probs, pol_probs = split_outputs(model(x, training=False))
        loss = keras.losses.sparse_categorical_crossentropy(y, probs)
        pred = tf.argmax(probs, axis=-1, output_type=tf.int32)
        stats = [tf.reduce_sum(loss), tf.reduce_sum(tf.cast(tf.equal(pred, y), tf.float32))]
        if pol is not None and pol_probs is not None:
            known = pol >= 0
            hit = tf.equal(tf.argmax(pol_probs, axis=-1, output_type=tf.int32), pol)
            stats += [tf.reduce_sum(tf.cast(tf.logical_and(hit, known), tf.float32)),
                      tf.reduce_sum(tf.cast(known, tf.float32))]
        stats += [tf.constant(0.0)] * (4 - len(stats))
        stats.append(tf.cast(tf.shape(y)[0], tf.float32))
        # float64 sums in batch order, on the device
        return totals + tf.cast(tf.stack(stats), tf.float64)

    @tf.function(reduce_retracing=True)
    def pass_stats(ds):
        # loss, correct, polarity correct, polarity known, examples
        totals = tf.zeros([5], tf.float64)
        for batch in iter(ds):  # a while loop over the iterator: the model runs in this graph
            totals = batch_stats(totals, *batch)
        return totals

    def evaluate(ds, split: str = "valid") -> dict:
        totals = [float(t) for t in pass_stats(ds).numpy()]
        n = int(totals[4])
        if n == 0:
            raise AnetError(pipeline.empty_split(split))
        out = {"acc": totals[1] / n, "loss": totals[0] / n, "examples": n}
        if len(ds.element_spec) > 2 and has_polarity(model):
            out["polarity_acc"] = totals[2] / totals[3] if totals[3] else None
        return out

    return evaluate
