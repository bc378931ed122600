"""Reading checkpoints back (anet.restore): one read per file, the same weights as Keras' own
loader for every architecture, and a clear error for a checkpoint of another model."""

from pathlib import Path

import numpy as np
import pytest

from anet import checkpoints, models, restore
from anet.errors import AnetError
from anet.schedule import ScheduleState


def save(root: Path, model, step: int = 1) -> Path:
    import keras

    opt = keras.optimizers.SGD(0.1, momentum=0.9)
    opt.build(model.trainable_variables)
    state = checkpoints.CheckpointState(
        step=step, epoch=0, batch_in_epoch=step, reasons=("check",),
        schedule=ScheduleState(0.5, 0.1), config={}, model=model.name, num_classes=3,
        input_shape=tuple(model.input_shape[1:]))
    return checkpoints.save(root, model=model, optimizer=opt, state=state)


def randomized(model, seed: int):
    """``model`` with every weight drawn afresh (so a load that put an array in the wrong
    variable, or left one out, shows)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


@pytest.mark.parametrize("name,size,options", [
    ("anetc6", 67, {}),
    ("alexnet", 67, {"batch_norm": True}),
    ("vgg16", 32, {}),
    ("anetc6", 67, {"polarity": True, "batch_norm": True}),
])
def test_one_read_load_equals_keras_load(tmp_path, name, size, options):
    build = lambda: models.build(name, (size, size, 1), 3, width=0.0625, fc_units=8,  # noqa: E731
                                 **options)
    saved = randomized(build(), 1)
    path = save(tmp_path, saved)
    by_keras, ours = randomized(build(), 2), randomized(build(), 3)
    by_keras.load_weights(str(path / checkpoints.WEIGHTS))
    restorer = restore.Restorer(ours)
    assert restorer.weights(path).step == 1
    assert restorer.keras_loads == 0  # the fast path took it
    assert len(ours.weights) == len(by_keras.weights)
    for a, b in zip(by_keras.weights, ours.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # beside the weights, the dropout seed states (rng.npz) as checkpoints.save wrote them
    for a, b in zip(checkpoints.rng_vars(saved), checkpoints.rng_vars(ours), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_each_file_read_once_and_a_mismatch_goes_to_keras(tmp_path, monkeypatch):
    import h5py

    model = randomized(models.build("anetc6", (67, 67, 1), 3, width=0.0625, fc_units=8), 1)
    path = save(tmp_path, model)
    opened = []
    real = h5py.File
    monkeypatch.setattr(h5py, "File", lambda f, *a, **k: opened.append(Path(f).name) or real(f, *a, **k))
    restore.Restorer(model).weights(path)
    assert opened == [checkpoints.WEIGHTS]
    other = models.build("anetc6", (67, 67, 1), 5, width=0.0625, fc_units=8)  # 5 classes
    restorer = restore.Restorer(other)
    with pytest.raises(AnetError, match="checkpoint does not fit this model"):
        restorer.weights(path)
    assert restorer.keras_loads == 1


def test_damaged_weights_are_one_line_with_the_file(tmp_path):
    model = models.build("anetc6", (67, 67, 1), 3, width=0.0625, fc_units=8)
    path = save(tmp_path, model)
    data = (path / checkpoints.WEIGHTS).read_bytes()
    (path / checkpoints.WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(restore.Damaged) as e:
        restore.Restorer(model).weights(path)
    assert e.value.reason.startswith(f"{checkpoints.WEIGHTS}: ")
    assert str(e.value) == f"{path}: checkpoint is damaged ({e.value.reason}); pick another with --ckpt"
    assert restore.damaged(path) == e.value.reason
    (path / checkpoints.WEIGHTS).unlink()
    assert restore.damaged(path) == f"{checkpoints.WEIGHTS} is missing"
