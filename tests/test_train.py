"""anet train end to end on a tiny config: artefacts, resume after SIGKILL, Ctrl-C, NaN stop,
determinism, train-many and bad inputs (multi-worker: test_cluster.py)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from anet import checkpoints
from anet.config import load_config
from anet.errors import AnetError
from anet.runlog import read_metrics
from anet.train import train
from tests.tbevents import experiment_hparams, read_events, session_hparams
from tests.tinydata import write_dataset
from tests.tinyrun import tiny_config

ANET = [sys.executable, "-m", "anet.cli"]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(Path(__file__).parents[1]))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"),
                         n_per_split={"train": 96, "valid": 24, "test": 24}, size=(40, 24))


def weights(run_dir: Path) -> list[np.ndarray]:
    last = checkpoints.latest(run_dir / "checkpoints")
    out = []
    with h5py.File(last.path / checkpoints.WEIGHTS) as f:
        f.visititems(lambda name, obj: out.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def test_tiny_run_writes_every_artefact_and_learns(tmp_path, data):
    cfg = load_config(tiny_config(tmp_path, data, epochs=12))
    run = tmp_path / "run"
    final = train(cfg, run)
    assert (run / "config.yaml").is_file() and load_config(run / "config.yaml").model == cfg.model
    assert load_config(run / "config.yaml").run.dir == str(run)  # where it lives, --run-dir included
    assert (run / "curves.png").stat().st_size > 5000
    ckpts = checkpoints.list_checkpoints(run / "checkpoints")
    index = (run / "checkpoints" / "checkpoints.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in index] == [c.step for c in ckpts]
    assert ckpts[0].step == 1 and "check" in ckpts[0].reasons  # Algorithm 1 at step 1
    assert final.finished and final.stop_reason == "epochs" and final.step == 12 * 12
    periodic = [c.step for c in ckpts if "periodic" in c.reasons]
    assert periodic == [12 * e for e in range(1, 13)]  # checkpoint_every_epochs: 1
    for c in ckpts:  # every checkpoint carries the policy state and the resolved config
        assert set(c.to_json()["schedule"]) == {"best", "lr", "gate", "streak"}
        assert c.config["model"]["name"] == "anetc6"
    rows = read_metrics(run)
    checks = [r for r in rows if r["kind"] == "check"]
    assert [r["step"] for r in checks][:3] == [1, 5, 9]
    assert {"train_loss", "train_acc", "lr", "images_per_sec", "best"} <= set(checks[0])
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert len(epochs) == 12 and epochs[-1]["valid_acc"] > 0.6  # 3 classes: chance is 0.33
    # TensorBoard: train/ and valid/ writers with the same tags (overlaid), the config as hparams
    tb = run / "tensorboard"
    train_tb, valid_tb = read_events(tb / "train"), read_events(tb / "valid")
    assert set(train_tb) == {"loss", "accuracy", "lr", "images_per_sec"}
    assert set(valid_tb) == {"loss", "accuracy"}
    assert train_tb["accuracy"] == [(r["step"], pytest.approx(r["train_acc"])) for r in checks]
    assert valid_tb["accuracy"][-1] == (epochs[-1]["step"], pytest.approx(epochs[-1]["valid_acc"]))
    hparams = session_hparams(tb)
    assert hparams["model.name"] == "anetc6" and hparams["train.epochs"] == 12
    declared = experiment_hparams(tb)  # every config key, typed (run.keep_best is null here)
    assert set(declared) == set(hparams) | {"run.keep_best"}
    assert {k: declared[k][0] for k in ("train.epochs", "run.keep_best", "model.batch_norm",
                                        "model.name")} == {
        "train.epochs": "DATA_TYPE_FLOAT64", "run.keep_best": "DATA_TYPE_FLOAT64",
        "model.batch_norm": "DATA_TYPE_BOOL", "model.name": "DATA_TYPE_STRING"}
    # Re-running a finished run does nothing.
    again = train(cfg, run)
    assert again.step == final.step
    assert len(checkpoints.list_checkpoints(run / "checkpoints")) == len(ckpts)


def test_early_break_stops_before_the_last_epoch(tmp_path, data):
    cfg = load_config(tiny_config(tmp_path, data, epochs=40), [
        "schedule.early_break.enabled=true", "schedule.early_break.valid_expectation=0.9",
        "schedule.early_break.train_expectation=0.75", "schedule.early_break.consecutive=2"])
    final = train(cfg, tmp_path / "run")
    assert final.stop_reason == "early_break" and final.epoch < 40
    assert final.valid_acc >= 0.9


def test_deterministic_runs_give_identical_weights(tmp_path, data):
    cfg = load_config(tiny_config(tmp_path, data, epochs=1),
                      ["train.deterministic=true", "model.dropout=0.5", "data.augment=true"])
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b")
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert len(wa) > 0
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x, y)


def test_resumed_run_equals_an_uninterrupted_one(tmp_path, data):
    # Data order, optimizer, policy and dropout seed states all come back from the checkpoint,
    # so stopping after epoch 1 and resuming gives bit-identical weights after epoch 2;
    # augmentation draws depend only on (seed, epoch, example index).
    over = ["train.deterministic=true", "model.dropout=0.5", "data.augment=true",
            "data.rotate_degrees=15", "data.scale=0.1", "data.translate=0.05"]
    train(load_config(tiny_config(tmp_path, data, epochs=2), over), tmp_path / "straight")
    train(load_config(tiny_config(tmp_path, data, epochs=1), over), tmp_path / "resumed")
    # every checkpoint but the newest became weights-only; resuming from the newest is exact
    saved = checkpoints.list_checkpoints(tmp_path / "resumed" / "checkpoints")
    assert [checkpoints.has_optimizer(c.path) for c in saved] == [False] * (len(saved) - 1) + [True]
    assert len(saved) > 2
    train(load_config(tiny_config(tmp_path, data, epochs=2), over), tmp_path / "resumed")
    for x, y in zip(weights(tmp_path / "straight"), weights(tmp_path / "resumed")):
        np.testing.assert_array_equal(x, y)


class _StopAfterSteps:
    """In-process Ctrl-C: the loop looks at ``requested`` once per step (and once per epoch);
    the 9th look says stop, so the run is interrupted a few steps in, mid-epoch."""

    def __init__(self):
        self.looks = 0

    def handle(self, signum, frame):
        pass

    @property
    def requested(self):
        self.looks += 1
        return self.looks > 8


def test_resume_under_cosine_with_warmup_equals_a_straight_run(tmp_path, data, monkeypatch):
    # The recipe's lr is a function of the step and the run's length, so an interrupted run
    # (Ctrl-C mid-epoch) resumed gives bit-identical weights to a run that never stopped.
    over = ["train.deterministic=true", "schedule.type=cosine", "schedule.warmup_steps=5",
            "train.optimizer=adamw", "train.clipnorm=1.0", "train.label_smoothing=0.1"]
    cfg = load_config(tiny_config(tmp_path, data, epochs=2), over)
    train(cfg, tmp_path / "straight")
    with monkeypatch.context() as m:
        m.setattr("anet.train._StopRequest", _StopAfterSteps)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "resumed")
    stopped = checkpoints.latest(tmp_path / "resumed" / "checkpoints")
    assert 0 < stopped.step < 12 and "interrupt" in stopped.reasons
    train(cfg, tmp_path / "resumed")
    for x, y in zip(weights(tmp_path / "straight"), weights(tmp_path / "resumed")):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_and_resumes(tmp_path, data, precision):
    import keras

    run = tmp_path / "run"
    try:
        train(load_config(tiny_config(tmp_path, data, epochs=1), [f"train.precision={precision}"]), run)
        final = train(load_config(tiny_config(tmp_path, data, epochs=2),
                                  [f"train.precision={precision}"]), run)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert final.step == 24 and final.finished
    assert all(np.isfinite(w).all() and w.dtype == np.float32 for w in weights(run))


def test_nan_loss_stops_with_clear_message_and_keeps_last_good_checkpoint(tmp_path, data):
    cfg = load_config(tiny_config(tmp_path, data, epochs=5),
                      ["train.optimizer=sgd", "schedule.lrs=[1e12, 1e12, 1e12, 1e12]",
                       "model.init=glorot_uniform"])  # he_normal: weights go inf before the loss
    with pytest.raises(AnetError, match=r"training loss is (nan|inf); stopped\. Last good "
                                        r"checkpoint: ckpt-00000001"):
        train(cfg, tmp_path / "run")
    latest = checkpoints.latest(tmp_path / "run" / "checkpoints")
    assert latest.step == 1 and np.isfinite(weights(tmp_path / "run")[0]).all()


def test_nan_error_is_the_last_stderr_line_not_appended_to_the_progress_bar(tmp_path, data):
    cfg = str(tiny_config(tmp_path, data, epochs=5))
    out = subprocess.run(ANET + ["train", cfg, "--run-dir", str(tmp_path / "run"), "--set",
                                 "train.optimizer=sgd", "--set", "schedule.lrs=[1e12,1e12,1e12,1e12]"],
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: step "), out.stderr[-500:]


def test_empty_valid_split_stops_before_training(tmp_path):
    data = write_dataset(tmp_path / "data", n_per_split={"train": 24, "valid": 0, "test": 6})
    with pytest.raises(AnetError, match="the validation split is empty"):
        train(load_config(tiny_config(tmp_path, data)), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_non_finite_weights_are_never_saved_as_a_checkpoint(tmp_path, data, monkeypatch):
    import anet.train as T

    real = T.make_train_step

    def poisoned(model, *args, **kwargs):  # a step whose update blows a kernel up, loss still finite
        step = real(model, *args, **kwargs)

        def run(batch):
            out = step(batch)
            model.trainable_variables[0].assign(np.full(model.trainable_variables[0].shape, np.nan))
            return out

        return run

    monkeypatch.setattr(T, "make_train_step", poisoned)
    with pytest.raises(AnetError, match=r"step 1: weights are not finite; stopped\. Last good "
                                        r"checkpoint: none"):
        train(load_config(tiny_config(tmp_path, data, epochs=1)), tmp_path / "run")
    assert checkpoints.latest(tmp_path / "run" / "checkpoints") is None


def test_resume_refuses_a_changed_model(tmp_path, data):
    cfg = load_config(tiny_config(tmp_path, data, epochs=1))
    train(cfg, tmp_path / "run")
    other = load_config(tiny_config(tmp_path, data, epochs=2), ["model.width=0.125"])
    with pytest.raises(AnetError, match=r"existing run has model\.width=\S+ but the config says "
                                        r"0\.125; use another --run-dir or restore model\.width"):
        train(other, tmp_path / "run")


def test_batch_larger_than_train_split_and_missing_dataset(tmp_path, data):
    with pytest.raises(AnetError, match="train.batch_size=512 is larger than the train split"):
        train(load_config(tiny_config(tmp_path, data), ["train.batch_size=512"]), tmp_path / "r")
    with pytest.raises(AnetError, match="run `anet prepare` first"):
        train(load_config(tiny_config(tmp_path, tmp_path / "nodata")), tmp_path / "r2")


def _wait_for_checkpoint(run: Path, min_step: int, proc, timeout=120) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        last = checkpoints.latest(run / "checkpoints")
        if last and last.step >= min_step:
            return
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


@pytest.mark.slow
def test_resume_after_sigkill_continues_with_same_step_best_and_lr(tmp_path, data):
    cfg_path = tiny_config(tmp_path, data, epochs=400)
    run = tmp_path / "run"
    cmd = ANET + ["train", str(cfg_path), "--run-dir", str(run)]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for_checkpoint(run, 30, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last = checkpoints.latest(run / "checkpoints")
    stop_at = last.step + 5
    out = subprocess.run(cmd + ["--set", f"train.max_steps={stop_at}"], env=ENV, text=True,
                         capture_output=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    m = re.search(r"resuming .* from (ckpt-\d+): step (\d+), epoch (\d+), best ([\d.]+), lr ([\d.e-]+)",
                  out.stdout)
    assert m, out.stdout
    sched = last.schedule
    assert m.group(1) == last.name and int(m.group(2)) == last.step
    assert int(m.group(3)) == last.epoch
    assert float(m.group(4)) == pytest.approx(sched.best, abs=1e-4)
    assert float(m.group(5)) == pytest.approx(sched.lr)
    final = checkpoints.latest(run / "checkpoints")
    assert final.step == stop_at and final.stop_reason == "max_steps"
    assert final.schedule.best >= sched.best
    assert not list((run / "checkpoints").glob(".tmp-*"))  # a killed writer's temp is cleaned
    steps = [r["step"] for r in read_metrics(run)]
    assert steps == sorted(steps)  # rows after the checkpoint were dropped, not duplicated


@pytest.mark.slow
def test_ctrl_c_checkpoints_the_current_step_and_resume_matches_a_straight_run(tmp_path, data):
    # Ctrl-C lands at a random moment; the loop stops between steps, so the interrupt
    # checkpoint's step matches its weights, and resuming from it reproduces a run that was
    # never interrupted (deterministic mode), bit for bit.
    over = ["train.deterministic=true", "model.dropout=0.5"]
    cfg_path = tiny_config(tmp_path, data, epochs=400)
    run = tmp_path / "run"
    sets = [a for o in over for a in ("--set", o)]
    proc = subprocess.Popen(ANET + ["train", str(cfg_path), "--run-dir", str(run)] + sets, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for_checkpoint(run, 20, proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-2000:]
    last = checkpoints.latest(run / "checkpoints")
    assert "interrupt" in last.reasons and last.finished is False
    assert "stopping after this step" in out and "interrupted" in out
    stop_at = [f"train.max_steps={last.step + 7}"]
    train(load_config(cfg_path, over + stop_at), run)
    train(load_config(cfg_path, over + stop_at), tmp_path / "straight")
    for x, y in zip(weights(run), weights(tmp_path / "straight")):
        np.testing.assert_array_equal(x, y)


def test_gpu_flag_without_a_gpu_trains_on_the_cpu_and_bad_index_is_an_error(tmp_path, data):
    cfg = str(tiny_config(tmp_path, data, epochs=1))
    out = subprocess.run(ANET + ["train", cfg, "--gpu", "0", "--run-dir", str(tmp_path / "r"),
                                 "--set", "train.max_steps=2"], env=ENV, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "notice: GPU 0 is not available; training on the CPU" in out.stderr
    assert checkpoints.latest(tmp_path / "r" / "checkpoints").step == 2
    out = subprocess.run(ANET + ["train", cfg, "--gpu", "-1"], env=ENV, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == "error: --gpu -1: must be a GPU index >= 0"


@pytest.mark.slow
def test_train_many_ctrl_c_waits_for_the_child_checkpoint_and_starts_nothing_more(tmp_path, data):
    a = tiny_config(tmp_path, data, epochs=500, name="a")
    b = tiny_config(tmp_path, data, epochs=1, name="b")
    parent = subprocess.Popen(ANET + ["train-many", str(a), str(b)], env=ENV, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = tmp_path / "runs" / "a" / "metrics.jsonl"
    deadline = time.time() + 240
    while not (metrics.is_file() and metrics.read_text()) and time.time() < deadline:
        time.sleep(0.2)  # until the child is training
    assert parent.poll() is None, parent.communicate()[0]
    parent.send_signal(signal.SIGINT)  # a terminal Ctrl-C reaches the parent only (own session)
    out, _ = parent.communicate(timeout=240)
    assert parent.returncode == 130, out
    assert "waiting for the running training to write its checkpoint" in out
    assert f"interrupted (checkpoint written): {a}" in out and f"not started: {b}" in out
    last = checkpoints.latest(tmp_path / "runs" / "a" / "checkpoints")
    assert "interrupt" in last.reasons and not last.finished
    assert not (tmp_path / "runs" / "b").exists()
    assert subprocess.run(["pgrep", "-f", f"anet.cli train {a}"],
                          capture_output=True).returncode == 1  # no child left running


def test_a_run_at_chance_warns_records_and_stops(tmp_path, capsys):
    # Every image the same and a tiny lr: the prediction is one class throughout. One epoch
    # is 12 steps of 8 (32 per class); the check at step 12 sees steps 2-12, 88 examples with
    # 24 to 32 of any class, so accuracy <= 0.364 < 1.25/3 and the loss >= their entropy.
    data = write_dataset(tmp_path / "blank", n_per_split={"train": 96, "valid": 24, "test": 24},
                         blank=True)
    tiny_lr = "schedule.lrs=[1e-6, 1e-6, 1e-6, 1e-6]"
    over = ["train.eval_every_steps=11", "train.on_stall=stop", tiny_lr]
    run = tmp_path / "run"
    final = train(load_config(tiny_config(tmp_path, data, epochs=3), over), run)
    err = capsys.readouterr().err
    assert re.search(r"warning: step 12 of 36: training accuracy 0\.[23]\d\d is at chance", err)
    assert "stopping (train.on_stall=stop); try model.init=he_normal" in err
    assert final.stop_reason == "stalled" and final.step == 12
    assert final.stalled["step"] == 12 and final.stalled["action"] == "stop"
    stalls = [r for r in read_metrics(run) if r.get("kind") == "stall"]
    assert len(stalls) == 1 and stalls[0]["train_acc"] < 0.37
    # Rerunning the same command does nothing; with warn it trains on and still says so.
    assert train(load_config(tiny_config(tmp_path, data, epochs=3), over), run).step == 12
    assert "stopped at chance accuracy" in capsys.readouterr().out
    final = train(load_config(tiny_config(tmp_path, data, epochs=3),
                              ["train.eval_every_steps=11", tiny_lr]), run)
    assert final.step == 36 and final.stalled["step"] == 12
    assert len([r for r in read_metrics(run) if r.get("kind") == "stall"]) == 1

    from anet.evaluate import evaluate

    result = evaluate(run)
    assert result["at_chance"] is True
    assert "every checkpoint is at chance" in result["chosen"]["reason"]
    assert re.search(r"warning: all \d+ checkpoint\(s\) are at chance on the validation split",
                     capsys.readouterr().err)


def test_cosine_schedule_with_warmup_sets_the_lr_per_step_and_keeps_the_gate(tmp_path, data):
    from anet.schedule import lr_at

    over = ["schedule.type=cosine", "schedule.warmup_steps=4", "train.eval_every_steps=3",
            "train.optimizer=adamw", "train.label_smoothing=0.1", "train.clipnorm=1.0"]
    run = tmp_path / "run"
    train(load_config(tiny_config(tmp_path, data, epochs=2), over), run)
    checks = [r for r in read_metrics(run) if r.get("kind") == "check"]
    budget = 2 * (96 // 8)
    peak = load_config(tiny_config(tmp_path, data)).schedule.lrs[0]
    for r in checks:  # the lr in force for the check's step, and the next one's
        assert r["lr"] == pytest.approx(lr_at(r["step"] - 1, "cosine", peak, budget, 4))
        assert r["next_lr"] == pytest.approx(lr_at(r["step"], "cosine", peak, budget, 4))
    assert checks[0]["lr"] == pytest.approx(peak / 4)  # step 1: first warmup step
    saved = [c for c in checkpoints.list_checkpoints(run / "checkpoints") if "check" in c.reasons]
    assert saved and saved[0].step == 1  # Algorithm 1's gate still saves under cosine


@pytest.mark.parametrize("epochs,max_steps,kind,step,lr", [
    (2, 0, "cosine", 50, 0.005),  # 2 epochs x 50 steps: halfway
    (10, 100, "cosine", 50, 0.005),  # max_steps ends the run first: halfway of 100, not of 500
    (10, 100, "cosine", 100, 0.0),
    (2, 1000, "cosine", 25, 0.008535533905932738),  # max_steps beyond the epochs: 100 steps
    (10, 100, "step", 49, 0.01),
    (10, 100, "step", 50, 0.001),
    (10, 100, "step", 75, 0.0001),
])
def test_recipes_span_the_runs_real_length(epochs, max_steps, kind, step, lr):
    from types import SimpleNamespace

    from anet import schedule
    from anet.train import Loop, current_lr

    cfg = load_config(None, [f"train.epochs={epochs}", f"train.max_steps={max_steps}",
                             f"schedule.type={kind}"])  # schedule.lrs[0] = 0.01
    sc = cfg.schedule
    loop = Loop(step, 0, 0, schedule.initial_state(sc.levels, sc.lrs, sc.gates))
    assert current_lr(SimpleNamespace(cfg=cfg, steps_per_epoch=50), loop) == pytest.approx(lr, abs=1e-15)


def test_a_run_made_before_model_init_resumes_with_the_init_it_started_with(tmp_path, data, capsys,
                                                                            monkeypatch):
    monkeypatch.delenv("ANET_QUIET", raising=False)  # notes are muted under -q (a test may leave it set)
    # Runs before model.init stored no such key; they were built with Keras' glorot_uniform.
    run = tmp_path / "run"
    train(load_config(tiny_config(tmp_path, data, epochs=1), ["model.init=glorot_uniform"]), run)
    for state in (run / "checkpoints").glob("ckpt-*/state.json"):
        raw = json.loads(state.read_text())
        del raw["config"]["model"]["init"]
        state.write_text(json.dumps(raw))
    capsys.readouterr()
    final = train(load_config(tiny_config(tmp_path, data, epochs=2)), run)  # today: he_normal
    err = capsys.readouterr().out  # notes (muted by -q)
    assert "was made before 1 config key(s) existed; read with model.init='glorot_uniform'" in err
    assert "model.init='he_normal' only sets a run's starting weights" in err
    assert final.step == 24 and final.config["model"]["init"] == "glorot_uniform"
    assert load_config(run / "config.yaml").model.init == "glorot_uniform"  # the record stays true
    with pytest.raises(AnetError, match="existing run has model.width=0.0625 but the config says 0.5"):
        train(load_config(tiny_config(tmp_path, data, epochs=3), ["model.width=0.5"]), run)


def test_an_old_anetc6_run_that_stored_batch_norm_true_evaluates_and_resumes(tmp_path, data,
                                                                            capsys, monkeypatch):
    from anet.config import write_config
    from anet.evaluate import evaluate

    monkeypatch.delenv("ANET_QUIET", raising=False)
    # Before model.init existed, model.batch_norm built BN on VGG16 only: an ANet-c6 run stored
    # batch_norm: true (config.yaml and checkpoints) and has no BN layers.
    run = tmp_path / "run"
    train(load_config(tiny_config(tmp_path, data, epochs=1), ["model.init=glorot_uniform"]), run)
    for state in (run / "checkpoints").glob("ckpt-*/state.json"):
        raw = json.loads(state.read_text())
        del raw["config"]["model"]["init"]
        raw["config"]["model"]["batch_norm"] = True
        state.write_text(json.dumps(raw))
    write_config(load_config(tiny_config(tmp_path, data, epochs=1), ["model.batch_norm=true"]),
                 run / "config.yaml")
    note = (f"note: {run} was made when model.batch_norm applied to VGG16 only, so its anetc6 "
            "has no BN layers; read with model.batch_norm=false")
    capsys.readouterr()
    assert evaluate(run)["accuracy"]["test"] is not None  # the checkpoints load
    assert note in capsys.readouterr().err
    final = train(load_config(tiny_config(tmp_path, data, epochs=2), ["model.batch_norm=true"]),
                  run)
    assert note in capsys.readouterr().out  # notes (muted by -q)
    assert final.step == 24 and final.config["model"]["batch_norm"] is False
    assert load_config(run / "config.yaml").model.batch_norm is False  # the record is true now


def test_a_resumed_run_has_one_tensorboard_point_per_step(tmp_path, data):
    # The steps after the checkpoint a run resumes from are redone and written again; the
    # event files keep one point per step (the redone one), like metrics.jsonl.
    run = tmp_path / "run"
    cfg = load_config(tiny_config(tmp_path, data, epochs=2))
    train(cfg, run)
    saved = checkpoints.list_checkpoints(run / "checkpoints")
    resume_from = saved[len(saved) // 2]
    for c in saved:  # as if the run was killed after resume_from with its later rows written
        if c.step > resume_from.step:
            shutil.rmtree(c.path)
    assert 0 < resume_from.step < 24
    train(cfg, run)
    rows = read_metrics(run)
    tb = run / "tensorboard"
    for folder, key, tag in (("train", "train_acc", "accuracy"), ("valid", "valid_acc", "accuracy"),
                             ("train", "lr", "lr")):
        points = read_events(tb / folder)[tag]
        steps = [s for s, _ in points]
        assert len(steps) == len(set(steps)) and max(steps) > resume_from.step, (folder, tag)
        assert sorted(points) == [(r["step"], pytest.approx(r[key])) for r in rows if key in r]
