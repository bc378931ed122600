"""The compiled pieces a training loop runs: distribution strategy, optimizer, train step and
evaluation function (used by ``anet train``, ``anet evaluate`` and the benchmarks)."""

from __future__ import annotations

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


def make_train_step(model, optimizer, strategy, global_batch: int, jit_compile: bool,
                    distributed: bool = False, label_smoothing: float = 0.0,
                    polarity_weight: float = 0.0):
    """Compiled step: returns (mean loss, number of correct predictions) over the global batch.

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
        return strategy.reduce(sum_, loss, axis=None), strategy.reduce(sum_, correct, axis=None)

    return step


def make_eval_fn(model):
    """``evaluate(ds, split="valid") -> {"acc", "loss", "examples"}`` for the model's current
    weights (one compiled batch function; used by training and by ``anet evaluate``). Batches
    ``(x, y, polarity)`` of a model with the polarity head add ``polarity_acc`` (over the
    examples of known polarity; None when there are none)."""

    @tf.function(reduce_retracing=True)
    def batch_stats(x, y, pol=None):
        probs, pol_probs = split_outputs(model(x, training=False))
        loss = keras.losses.sparse_categorical_crossentropy(y, probs)
        pred = tf.argmax(probs, axis=-1, output_type=tf.int32)
        stats = [tf.reduce_sum(loss), tf.reduce_sum(tf.cast(tf.equal(pred, y), tf.float32))]
        if pol is not None and pol_probs is not None:
            known = pol >= 0
            hit = tf.equal(tf.argmax(pol_probs, axis=-1, output_type=tf.int32), pol)
            stats += [tf.reduce_sum(tf.cast(tf.logical_and(hit, known), tf.float32)),
                      tf.reduce_sum(tf.cast(known, tf.float32))]
        return stats

    def evaluate(ds, split: str = "valid") -> dict:
        totals = [0.0, 0.0, 0.0, 0.0]  # loss, correct, polarity correct, polarity known
        n = 0
        for batch in ds:
            for i, v in enumerate(batch_stats(*batch)):
                totals[i] += float(v)
            n += int(batch[1].shape[0])
        if n == 0:
            raise AnetError(pipeline.empty_split(split))
        out = {"acc": totals[1] / n, "loss": totals[0] / n, "examples": int(n)}
        if len(batch) > 2 and has_polarity(model):
            out["polarity_acc"] = totals[2] / totals[3] if totals[3] else None
        return out

    return evaluate
