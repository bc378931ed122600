"""Parity: anet's compiled train step and Keras ``train_on_batch`` give the same weights.

Guards the custom loop (loss reduction, regularization, optimizer application, BN updates)
against regressions: a tiny model, the same start, the same batches, a few steps each.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from anet import models
from anet.config import TrainConfig
from anet.steps import make_optimizer, make_train_step

STEPS, BATCH = 4, 8


def _tiny(batch_norm: bool):
    return models.build("anetc6", (35, 35, 1), 3, width=0.0625, fc_units=16, dropout=0.0,
                        weight_decay=0.0005, batch_norm=batch_norm)


@pytest.mark.parametrize("optimizer,batch_norm,smoothing,clipnorm", [
    ("momentum", False, 0.0, 0.0), ("adam", True, 0.0, 0.0),
    ("adamw", False, 0.1, 0.5),  # the recipes: decoupled decay, smoothed targets, clipping
])
def test_train_step_matches_keras_train_on_batch(optimizer, batch_norm, smoothing, clipnorm):
    keras.utils.set_random_seed(0)
    ours = _tiny(batch_norm)
    theirs = _tiny(batch_norm)
    start = ours.get_weights()
    theirs.set_weights(start)
    cfg = TrainConfig(optimizer=optimizer, batch_size=BATCH, label_smoothing=smoothing,
                      clipnorm=clipnorm)
    opt = make_optimizer(cfg, 0.01)
    opt.build(ours.trainable_variables)
    step = make_train_step(ours, opt, tf.distribute.get_strategy(), BATCH, jit_compile=False,
                           label_smoothing=smoothing)
    loss = (keras.losses.CategoricalCrossentropy(label_smoothing=smoothing) if smoothing
            else keras.losses.SparseCategoricalCrossentropy())
    theirs.compile(optimizer=make_optimizer(cfg, 0.01), loss=loss, jit_compile=False)
    rng = np.random.default_rng(0)
    for _ in range(STEPS):
        x = rng.uniform(size=(BATCH, 35, 35, 1)).astype("float32")
        y = rng.integers(0, 3, BATCH).astype("int32")
        loss, _ = step((tf.constant(x), tf.constant(y)))
        keras_loss = theirs.train_on_batch(x, np.eye(3, dtype="float32")[y] if smoothing else y)
        np.testing.assert_allclose(float(loss), float(keras_loss), rtol=1e-5)
    for a, b in zip(ours.weights, theirs.weights):  # BN moving statistics included
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-6, err_msg=a.path)
    moved = [not np.allclose(a, b) for a, b in zip(ours.get_weights(), start)]
    assert sum(moved) >= len(ours.trainable_variables)  # every kernel trained, not a no-op
