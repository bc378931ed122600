"""Golden values of the training loop: metrics.jsonl, the checkpoints written and where the run
stops, recorded from the loop that read loss and accuracy after every step (before the sums
moved to the device, #16). A loop that reads them only at checks and epoch ends must give the
same rows, checkpoints and stop: the early-break streak, a non-finite loss between two checks
and a max_steps stop mid-epoch included. Integers and names must match exactly; floats to
1e-3 relative (another CPU may round the float32 kernels differently; on the machine that
recorded them they matched bit for bit)."""

import json
from pathlib import Path

import pytest

from anet import checkpoints
from anet.config import load_config
from anet.errors import AnetError
from anet.runlog import read_metrics
from anet.train import train
from tests.tinydata import write_dataset
from tests.tinyrun import tiny_config

GOLDEN = json.loads((Path(__file__).parent / "golden" / "train_loop.json").read_text())
DET = ["train.deterministic=true"]
CASES = {  # name -> (epochs, overrides)
    "streak": (20, DET + ["schedule.early_break.enabled=true",
                          "schedule.early_break.valid_expectation=0.6",
                          "schedule.early_break.train_expectation=1.0",
                          "schedule.early_break.consecutive=12"]),
    "cosine_max": (2, DET + ["schedule.type=cosine", "schedule.warmup_steps=5",
                             "train.max_steps=19"]),
    "nan": (5, DET + ["train.optimizer=sgd", "schedule.lrs=[1e12, 1e12, 1e12, 1e12]",
                      "model.init=glorot_uniform"]),  # nan at step 2; checks at 1, 5, 9
}
CKPT_KEYS = ("step", "epoch", "batch_in_epoch", "reasons", "schedule", "stop_reason", "finished",
             "valid_acc", "valid_loss", "valid_step", "monitored", "train_acc")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"),
                         n_per_split={"train": 96, "valid": 24, "test": 24}, size=(40, 24))


def _approx(value):
    """Exact for ints, strings and bools; 1e-3 relative for floats (nested)."""
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_approx(v) for v in value]
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-3, abs=1e-6)
    return value


@pytest.mark.parametrize("case", list(CASES))
def test_loop_matches_the_per_step_reading_loop(tmp_path, data, case):
    _check_golden(tmp_path, data, case)


@pytest.mark.parametrize("case", ["streak", "nan"])
def test_the_progress_bars_reads_change_nothing(tmp_path, data, case, monkeypatch):
    # the bar reads the device sums after every step here: rows, checkpoints and stop as before
    monkeypatch.setattr("anet.train.BAR_SECONDS", 0.0)
    _check_golden(tmp_path, data, case)


def _check_golden(tmp_path, data, case):
    epochs, over = CASES[case]
    run = tmp_path / case
    stop, error = None, None
    try:
        final = train(load_config(tiny_config(tmp_path, data, epochs=epochs, name=case), over), run)
        stop = [final.step, final.stop_reason]
    except AnetError as e:
        error = str(e)
    gold = GOLDEN[case]
    assert stop == gold["stop"] and error == gold["error"]
    rows = [{k: v for k, v in r.items() if k != "images_per_sec"} for r in read_metrics(run)]
    assert rows == _approx(gold["metrics"])
    written = [{k: v for k, v in c.to_json().items() if k in CKPT_KEYS}
               for c in checkpoints.list_checkpoints(run / "checkpoints")]
    assert written == _approx(gold["checkpoints"])
