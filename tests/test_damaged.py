"""Files damaged earlier (a kill mid-write, a full disk): a checkpoint that does not load is
skipped with a notice or, when chosen explicitly, a one-line error; a damaged TFRecord shard
is a one-line error naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anet import checkpoints, restore
from tests.cli import run_cli
from tests.tinydata import write_dataset
from tests.tinyrun import make_tiny_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("dmg"), epochs=2)


@pytest.fixture
def run(trained, tmp_path):
    """A private copy of the trained run (its config still points at the shared dataset)."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def halve(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def ckpts(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("ckpt-*"))


def test_damaged_reports_each_file(run):
    newest = ckpts(run)[-1]
    assert restore.damaged(newest) == ""
    for name in (checkpoints.OPTIMIZER, checkpoints.WEIGHTS, checkpoints.STATE):
        halve(newest / name)
        assert restore.damaged(newest).startswith(name)


@pytest.fixture
def config(trained):
    return trained.parent.parent / "tiny.yaml"


def test_half_written_state_resumes_from_previous_and_finishes(run, config, capsys):
    newest = ckpts(run)[-1]
    halve(newest / checkpoints.STATE)
    code, _, err = run_cli(["train", config, "--run-dir", run], capsys)
    assert code == 0, err
    assert f"skipping damaged checkpoint {newest} (state.json:" in err
    assert f"replacing damaged checkpoint {newest.name}" in err
    assert restore.damaged(newest) == ""
    assert json.loads((newest / checkpoints.STATE).read_text())["finished"] is True


def test_truncated_weights_train_resumes_from_newest_good(run, config, capsys):
    *_, previous, newest = ckpts(run)
    halve(newest / checkpoints.WEIGHTS)
    code, printed, err = run_cli(["train", config, "--run-dir", run], capsys)
    assert code == 0, err
    assert f"skipping damaged checkpoint {newest} (model.weights.h5:" in err
    assert f"resuming {run} from {previous.name}" in printed
    # only the newest held the optimizer state: the resume says it starts that afresh
    assert f"notice: {previous.name} holds weights only" in err
    assert restore.damaged(newest) == ""


def test_evaluate_skips_and_lists_damaged_and_refuses_explicit(run, capsys):
    first, *_, newest = ckpts(run)
    halve(newest / checkpoints.OPTIMIZER)
    halve(first / checkpoints.WEIGHTS)
    code, _, err = run_cli(["evaluate", "--ckpt-dir", run, "--ckpt", newest.name], capsys)
    assert code == 2
    why = restore.damaged(newest)
    assert why.startswith("optimizer.npz: ")
    assert err == f"error: {newest}: checkpoint is damaged ({why}); pick another with --ckpt\n"
    code, _, err = run_cli(["evaluate", "--ckpt-dir", run, "--split", "valid"], capsys)
    assert code == 0, err
    result = json.loads((run / "eval.json").read_text())
    assert [d["name"] for d in result["damaged"]] == [first.name, newest.name]
    for d in result["damaged"]:  # found by the one read that scoring makes, with a notice
        assert f"notice: skipping damaged checkpoint {run / 'checkpoints' / d['name']} ({d['reason']})" in err
    assert result["damaged"][0]["reason"].startswith("model.weights.h5: ")
    names = [s["name"] for s in result["checkpoints"]]
    assert first.name not in names and newest.name not in names and len(names) == len(ckpts(run)) - 2


def test_predict_skips_damaged_default_and_refuses_explicit(run, capsys, tmp_path):
    img = tmp_path / "x.png"
    Image.fromarray(np.full((40, 24), 200, np.uint8)).save(img)
    (run / "eval.json").unlink(missing_ok=True)
    oldest, *rest = ckpts(run)
    for c in rest:  # all but the oldest damaged: the default choice falls back to it
        halve(c / checkpoints.WEIGHTS)
    code, printed, err = run_cli(["predict", "--ckpt-dir", run, img], capsys)
    assert code == 0, err
    assert err.count("notice: skipping damaged checkpoint") == len(rest)
    assert f"checkpoint {oldest.name}" in err and printed.startswith("path\tclass_1")
    code, _, err = run_cli(["predict", "--ckpt-dir", run, "--ckpt", rest[-1].name, img], capsys)
    assert code == 2 and err.startswith(f"error: {rest[-1]}: checkpoint is damaged (model.weights.h5")


def test_truncated_shard_is_one_line_error(tmp_path, capsys):
    data = write_dataset(tmp_path / "data", shards=2)
    halve(data / "train-00001-of-00002.tfrecord")
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"model: {{width: 0.0625, fc_units: 8}}\ndata: {{dir: {data}, image_size: 67}}\n"
                   "train: {batch_size: 8, epochs: 1, jit_compile: false}\n")
    code, _, err = run_cli(["train", cfg, "--run-dir", tmp_path / "r"], capsys)
    line = err.strip().split("\r")[-1]  # after the progress bar's clearing
    assert code == 2 and line.count("\n") == 0
    assert line.startswith(f"error: {data / 'train-00001-of-00002.tfrecord'}: damaged TFRecord shard "
                           "(truncated record at ")
    assert line.endswith(f"re-run `anet prepare --force` for {data}")
