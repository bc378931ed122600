"""TensorBoard scheme (anet.tboard): which numbers become curves, written and read back."""

import numpy as np
import pytest
from PIL import Image

from anet import runlog, tboard
from anet.plotting import plot_confusion
from tests.tbevents import experiment_hparams, experiment_metrics, read_events, session_hparams

CHECK = {"kind": "check", "step": 20, "epoch": 1, "lr": 0.01, "train_loss": 0.5, "train_acc": 0.75,
         "images_per_sec": 120.0, "valid_acc": 0.7, "valid_loss": 0.6, "valid_step": 20,
         "batch_acc": 0.8, "monitored": 0.7, "best": 0.7, "next_lr": 0.005, "saved": True}
EPOCH = {"kind": "epoch", "step": 24, "epoch": 2, "lr": 0.005, "streak": 3, "valid_acc": 0.72,
         "valid_loss": 0.55, "valid_step": 24}
STALL = {"kind": "stall", "step": 20, "epoch": 1, "train_acc": 0.3, "train_loss": 1.1,
         "chance": 0.33, "action": "warn"}


def test_scalars_golden():
    assert tboard.scalars(CHECK) == [("train", "loss", 0.5), ("train", "accuracy", 0.75),
                                     ("train", "lr", 0.01), ("train", "images_per_sec", 120.0),
                                     ("valid", "loss", 0.6), ("valid", "accuracy", 0.7)]
    # bookkeeping (epoch, streak, best, monitored, saved, next_lr, valid_step) is no curve
    assert tboard.scalars(EPOCH) == [("train", "lr", 0.005), ("valid", "loss", 0.55),
                                     ("valid", "accuracy", 0.72)]
    assert tboard.scalars(STALL) == []


def test_hparams_flatten_golden():
    cfg = {"model": {"name": "anetc6", "init": None}, "train": {"batch_size": 64, "xla": True},
           "schedule": {"lrs": [0.01, 0.001], "levels": (0.5, 0.9)}, "run": {"seed": 0}}
    assert tboard.hparams(cfg) == {"model.name": "anetc6",  # a null key is left out
                                   "train.batch_size": 64, "train.xla": True,
                                   "schedule.lrs": "[0.01, 0.001]", "schedule.levels": "[0.5, 0.9]",
                                   "run.seed": 0}


def test_hparams_are_declared_with_their_types_and_no_limit_on_values(tmp_path):
    config = {"model": {"name": "vgg16", "batch_norm": True, "dropout": 0.5},
              "train": {"batch_size": 8}, "schedule": {"lrs": [0.01, 0.001]},
              "run": {"keep_best": None, "keep_checkpoints": 3}}  # keep_best: int | None
    tb = tmp_path / "tensorboard"
    tboard.write_hparams(tb, config, "runs/x")
    inf = float("inf")
    assert experiment_hparams(tb) == {  # what TensorBoard's dashboard filters and sorts by
        "model.name": ("DATA_TYPE_STRING", None),
        "model.batch_norm": ("DATA_TYPE_BOOL", [False, True]),
        "model.dropout": ("DATA_TYPE_FLOAT64", (-inf, inf)),
        "train.batch_size": ("DATA_TYPE_FLOAT64", (-inf, inf)),  # no integer type in TensorBoard
        "schedule.lrs": ("DATA_TYPE_STRING", None),
        "run.keep_best": ("DATA_TYPE_FLOAT64", (-inf, inf)),  # null here: its declared type
        "run.keep_checkpoints": ("DATA_TYPE_FLOAT64", (-inf, inf))}
    assert session_hparams(tb) == {"model.name": "vgg16", "model.batch_norm": True,
                                   "model.dropout": 0.5, "train.batch_size": 8.0,
                                   "schedule.lrs": "[0.01, 0.001]", "run.keep_checkpoints": 3.0}


def test_metrics_log_writes_train_and_valid_overlaid(tmp_path):
    log = runlog.MetricsLog(tmp_path)
    for row in (CHECK, EPOCH, STALL):
        log.log(row)
    log.close()
    tb = tmp_path / "tensorboard"
    train, valid = read_events(tb / "train"), read_events(tb / "valid")
    assert train == {"loss": [(20, 0.5)], "accuracy": [(20, 0.75)],
                     "lr": [(20, pytest.approx(0.01)), (24, pytest.approx(0.005))],
                     "images_per_sec": [(20, 120.0)]}
    assert valid == {"loss": [(20, pytest.approx(0.6)), (24, pytest.approx(0.55))],
                     "accuracy": [(20, pytest.approx(0.7)), (24, pytest.approx(0.72))]}
    assert not list(tb.glob("events.out.tfevents.*"))  # nothing at the top: no mixed-up tags
    # the bookkeeping stays in the run log
    assert [r["kind"] for r in runlog.read_metrics(tmp_path)] == ["check", "epoch", "stall"]


def test_hparams_session_and_eval_summaries(tmp_path):
    tb = tmp_path / "tensorboard"
    tboard.write_hparams(tb, {"model": {"name": "vgg16"}, "train": {"batch_size": 8}}, "runs/x")
    assert session_hparams(tb) == {"model.name": "vgg16", "train.batch_size": 8.0}
    assert experiment_metrics(tb) == [("valid", "eval/accuracy"), ("test", "eval/accuracy"),
                                      ("test", "eval/macro_f1")]
    png = plot_confusion(np.eye(3, dtype=int) * 4, ["a", "b", "c"], tmp_path / "confusion.png")
    result = {"split": "test", "accuracy": {"train": 1.0, "valid": 0.9, "test": 0.8},
              "top5_accuracy": None, "macro_f1": {"train": 1.0, "valid": 0.85, "test": None}}
    tboard.write_eval(tb, result, 30, png)
    test, valid = read_events(tb / "test"), read_events(tb / "valid")
    assert test["eval/accuracy"] == [(30, pytest.approx(0.8))] and "eval/macro_f1" not in test
    assert valid == {"eval/accuracy": [(30, pytest.approx(0.9))],
                     "eval/macro_f1": [(30, pytest.approx(0.85))]}
    assert test["eval/confusion"] == [(30, Image.open(png).size)]  # confusion.png itself


def test_trim_after_drops_later_events_and_torn_records_and_leaves_other_files(tmp_path):
    import tensorflow as tf

    def write(folder, steps):
        w = tf.summary.create_file_writer(str(folder))
        with w.as_default():
            for s in steps:
                tf.summary.scalar("loss", float(s), step=s)
        w.close()
        return max(folder.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime_ns)

    early, late = tmp_path / "early", tmp_path / "late"
    untouched = write(early, [1, 2, 3])
    before = untouched.read_bytes()
    mixed = write(late, [1, 2, 3, 4, 5, 6])
    assert tboard.trim_after(early, 3) == [] and untouched.read_bytes() == before
    assert tboard.trim_after(late, 4) == [mixed]
    assert read_events(late) == {"loss": [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]}
    mixed.write_bytes(mixed.read_bytes()[:-5])  # a kill tore the last record
    assert tboard.trim_after(late, 10) == [mixed]
    assert read_events(late) == {"loss": [(1, 1.0), (2, 2.0), (3, 3.0)]}
    assert sorted(p.name for p in late.iterdir()) == [mixed.name]  # no temp file left
