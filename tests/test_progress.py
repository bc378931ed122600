"""Progress policy: plain lines (no carriage returns) off a terminal, -q silences, start line."""

import io
import os
import re
import subprocess
import sys

from anet import progress
from tests.tinydata import write_dataset
from tests.tinyrun import tiny_config


def test_plain_line_and_start_line_golden():
    assert progress.plain_line("epoch 1", 24, 48, "batch", 3.14159, {"loss": "0.912"}) == \
        "epoch 1: 24/48 batch (50%), 3.1 batch/s, loss=0.912"
    assert progress.plain_line("jpg", 0, 0, "img", 0.0, {}) == "jpg: 0/0 img, 0.0 img/s"
    assert progress.start_line(["CPU"], "float32", False, "none", 1) == \
        "device: CPU, precision float32, XLA off, distribution none (1 replica)"
    assert progress.start_line(["GPU 0 (H100)", "GPU 1 (H100)"], "mixed_bfloat16", True,
                               "mirrored", 2) == ("device: GPU 0 (H100), GPU 1 (H100), precision "
                                                  "mixed_bfloat16, XLA on, distribution mirrored "
                                                  "(2 replicas)")


def test_plain_progress_prints_a_line_per_tenth_and_every_30_seconds():
    now = [0.0]
    out = io.StringIO()
    with progress.PlainProgress(48, "epoch 1", "batch", clock=lambda: now[0], stream=out) as bar:
        for _ in range(48):
            now[0] += 0.5
            bar.update(1)
            bar.set_postfix(loss="1.000")
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [ln.split(" batch")[0] for ln in lines] == [f"epoch 1: {n}/48" for n in
                                                       (5, 10, 15, 20, 25, 30, 35, 40, 45, 48)]
    assert lines[-1] == "epoch 1: 48/48 batch (100%), 2.0 batch/s, loss=1.000"
    out = io.StringIO()  # a slow run with an unknown share still reports every 30 s
    with progress.PlainProgress(1000, "x", "img", clock=lambda: now[0], stream=out) as bar:
        for _ in range(3):
            now[0] += 31
            bar.update(1)
    assert len(out.getvalue().splitlines()) == 3


def _anet(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("ANET_QUIET", "ANET_TF_LOGS")}
    with open(tmp_path / "err.log", "w") as err:  # stderr is a file, not a terminal
        proc = subprocess.run([sys.executable, "-m", "anet", *args], stdout=subprocess.PIPE,
                              stderr=err, text=True, timeout=300, env=env)
    return proc, (tmp_path / "err.log").read_text()


def _train(tmp_path, *flags):
    data = write_dataset(tmp_path / "data", n_per_split={"train": 48, "valid": 8, "test": 8},
                         size=(40, 24))
    cfg = tiny_config(tmp_path, data, epochs=1)
    return _anet(tmp_path, *flags, "train", cfg, "--run-dir", tmp_path / "run")


def test_train_off_a_terminal_logs_plain_lines_and_names_the_device(tmp_path):
    proc, err = _train(tmp_path)
    assert proc.returncode == 0, err
    assert "\r" not in err and "\r" not in proc.stdout
    assert "epoch 1: 6/6 batch (100%)" in err and "batch/s" in err
    assert "device: CPU, precision float32, XLA off, distribution none (1 replica)" in proc.stdout
    proc, err = _anet(tmp_path, "evaluate", "--run-dir", tmp_path / "run")
    assert proc.returncode == 0, err
    assert "\r" not in err and re.search(r"^scoring: (\d+)/\1 checkpoint \(100%\)", err, re.M)


def test_quiet_and_verbose_are_on_the_top_level_help():
    from click.testing import CliRunner

    from anet.cli import cli

    out = CliRunner().invoke(cli, ["--help"]).output
    assert "-q, --quiet" in out and "-v, --verbose" in out


def test_quiet_hides_progress_and_notes(tmp_path):
    proc, err = _train(tmp_path, "-q")
    assert proc.returncode == 0, err
    assert "batch/s" not in err and "device:" not in proc.stdout
    assert "epoch 1: step 6, valid acc" in proc.stdout  # results still print
