"""A tiny run trained with run.keep_best: the checkpoints it keeps (only the newest with the
optimizer state), evaluate and report on the kept set, and the stale-eval.json warning of
predict, export and report once training goes on after `anet evaluate`."""

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anet import checkpoints
from anet.config import load_config
from anet.evaluate import evaluate
from anet.runs import newer_than_eval
from anet.train import train
from tests.cli import run_cli
from tests.tinydata import write_dataset
from tests.tinyrun import tiny_config

KEEP = ["--set", "run.keep_best=1", "--set", "run.keep_checkpoints=1"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """(config, run): 2 tiny epochs with keep_best=1, then `anet evaluate --split valid`."""
    tmp = tmp_path_factory.mktemp("kept")
    data = write_dataset(tmp / "data", n_per_split={"train": 96, "valid": 24, "test": 24},
                         size=(40, 24))
    cfg, run = tiny_config(tmp, data, epochs=2), tmp / "run"
    train(load_config(cfg, KEEP[1::2]), run)
    evaluate(run, split="valid")
    return cfg, run


@pytest.fixture
def continued(evaluated, tmp_path, capsys):
    """A copy of the evaluated run trained one more epoch: its eval.json is now stale."""
    cfg, run = evaluated
    copy = Path(shutil.copytree(run, tmp_path / "run"))
    code, _, err = run_cli(["train", cfg, "--run-dir", copy, "--set", "train.epochs=3", *KEEP],
                           capsys)
    assert code == 0, err
    return copy


def test_keep_best_keeps_the_best_checks_and_only_the_newest_is_resumable(evaluated):
    _, run = evaluated
    ckpts = checkpoints.list_checkpoints(run / "checkpoints")
    checks = [c for c in ckpts if "check" in c.reasons]
    rows = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if r.get("kind") == "check" and r.get("saved")]
    assert len(rows) > 1  # Algorithm 1 saved more than it keeps
    best = sorted(rows, key=lambda r: (-r["monitored"], r["step"]))[:1]
    newest = ckpts[-1]
    assert {c.step for c in checks} == {best[0]["step"]}  # the others were removed
    assert "final" in newest.reasons and newest.step == 24
    assert [c.step for c in ckpts] == [best[0]["step"], 24]  # periodic 12: the newest 1 is 24
    assert [checkpoints.has_optimizer(c.path) for c in ckpts] == [False] * (len(ckpts) - 1) + [True]
    assert not list((run / "checkpoints").glob(".tmp-*"))
    ev = json.loads((run / "eval.json").read_text())
    assert [s["name"] for s in ev["checkpoints"]] == [c.name for c in ckpts]  # the kept set


def test_report_on_the_kept_set_and_no_warning_while_current(evaluated, tmp_path, capsys):
    _, run = evaluated
    code, out, err = run_cli(["report", run, "--html", tmp_path / "r.html"], capsys)
    assert code == 0, err
    assert "stale" not in err and (tmp_path / "r.html").stat().st_size > 1000
    code, out, err = run_cli(["report", run], capsys)
    assert code == 0 and "stale" not in err and "anetc6" in out


def _stale_line(err: str, run: Path) -> str:
    (line,) = [x for x in err.splitlines() if "is stale" in x]
    assert line.startswith(f"warning: {run / 'eval.json'} is stale: ")
    assert line.endswith(f"re-run `anet evaluate --run-dir {run}`")
    return line


def test_predict_export_report_warn_when_training_went_on_after_evaluate(continued, tmp_path,
                                                                         capsys):
    img = tmp_path / "x.png"
    Image.fromarray(np.full((40, 24), 200, np.uint8)).save(img)
    code, _, err = run_cli(["predict", "--run-dir", continued, img], capsys)
    assert code == 0, err
    newest = checkpoints.latest(continued / "checkpoints")
    assert newest.name in _stale_line(err, continued)
    code, _, err = run_cli(["predict", "--run-dir", continued, "--ckpt", newest.name, img], capsys)
    assert code == 0 and "stale" not in err  # an explicit checkpoint uses no evaluation
    code, _, err = run_cli(["export", "--run-dir", continued, "--out", tmp_path / "exp"], capsys)
    assert code == 0, err
    _stale_line(err, continued)
    code, _, err = run_cli(["report", continued], capsys)
    assert code == 0, err
    _stale_line(err, continued)
    code, _, err = run_cli(["evaluate", "--run-dir", continued, "--split", "valid"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["predict", "--run-dir", continued, img], capsys)
    assert code == 0 and "stale" not in err


def test_newer_than_eval_by_record_and_by_time(evaluated, tmp_path):
    _, run = evaluated
    ckpts = checkpoints.list_checkpoints(run / "checkpoints")
    ev = json.loads((run / "eval.json").read_text())
    f = run / "eval.json"
    assert newer_than_eval(ev, ckpts, f) == []
    later = replace(ckpts[-1], step=ckpts[-1].step + 9, path=ckpts[-1].path.parent / "ckpt-x")
    assert newer_than_eval(ev, [*ckpts, later], f) == [later]
    # a damaged checkpoint eval.json listed is not "newer" unless saved again after it
    damaged = {"damaged": [{"name": later.name, "reason": "x"}]}
    assert newer_than_eval(ev | damaged, [*ckpts, replace(later, time=0.0)], f) == []
    assert newer_than_eval(ev | damaged, [*ckpts, replace(later, time=f.stat().st_mtime + 5)],
                           f) != []
    # an eval.json without the list: compared by save time
    # (save times set 10 s apart: a tiny run saves several checkpoints within one second)
    timed = [replace(c, time=1000.0 + 10 * i) for i, c in enumerate(ckpts)]
    old = tmp_path / "eval.json"
    old.write_text("{}")
    os.utime(old, (timed[-1].time - 1, timed[-1].time - 1))
    assert newer_than_eval({}, timed, old) == [timed[-1]]
    assert newer_than_eval({}, timed, tmp_path / "missing.json") == []
