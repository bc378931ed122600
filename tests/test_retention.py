"""Which checkpoints a run keeps (run.keep_checkpoints, run.keep_best) and their removal."""

import pytest

from anet import checkpoints as C
from anet import retention
from tests.test_checkpoints import state, tiny

# (step, reasons, monitored)
RUN = [(1, ["check"], 0.30), (5, ["check"], 0.55), (9, ["check"], 0.80), (12, ["periodic"], None),
       (13, ["check", "periodic"], 0.90), (17, ["check"], 0.95), (24, ["periodic"], None),
       (25, ["check"], 0.97), (30, ["interrupt"], None), (36, ["periodic"], None)]


def states(rows=RUN):
    return [state(step, reasons, monitored=m) for step, reasons, m in rows]


@pytest.mark.parametrize("keep_periodic,keep_best,removed", [
    (0, None, []),
    (1, None, [12, 24]),
    (0, 2, [1, 5, 9]),  # 13 stays: a periodic one (all kept)
    (1, 2, [1, 5, 9, 12, 13, 24]),
    (1, 1, [1, 5, 9, 12, 13, 17, 24]),
    (3, 1, [1, 5, 9, 12, 17]),
])
def test_to_remove_golden_table(keep_periodic, keep_best, removed):
    assert [c.step for c in retention.to_remove(states(), keep_periodic, keep_best)] == removed


def test_the_newest_and_best_by_monitored_not_by_step():
    rows = [(1, ["check"], 0.9), (2, ["check"], 0.5), (3, ["check"], 0.7), (4, ["check"], 0.9)]
    # best two: 0.9 at step 1 and 0.9 at step 4 (a tie, earliest first) -> 1 and 4; the
    # newest (4) is kept anyway
    assert [c.step for c in retention.to_remove(states(rows), 0, 2)] == [2, 3]
    assert [c.step for c in retention.to_remove(states(rows), 0, 1)] == [2, 3]  # 4: the newest
    assert retention.to_remove([], 1, 1) == []


def test_prune_removes_only_anets_own_checkpoint_folders(tmp_path, capsys):
    m, opt = tiny()
    for st in states():
        C.save(tmp_path, model=m, optimizer=opt, state=st)
    (tmp_path / "ckpt-00000005" / "notes.txt").write_text("mine")  # a user's file: kept
    (tmp_path / "ckpt-00000009" / ".state.tmp-99.json").write_text("half")  # anet's temp
    (tmp_path / "mine").mkdir()
    assert retention.prune(tmp_path, 1, 2) == ["ckpt-00000001", "ckpt-00000009", "ckpt-00000012",
                                                "ckpt-00000013", "ckpt-00000024"]
    assert "notice: keeping" in capsys.readouterr().err
    assert [c.step for c in C.list_checkpoints(tmp_path)] == [5, 17, 25, 30, 36]
    assert (tmp_path / "ckpt-00000005" / "notes.txt").is_file() and (tmp_path / "mine").is_dir()
    assert not list(tmp_path.glob(".tmp-*"))
    index = (tmp_path / C.INDEX).read_text()
    assert index.count("\n") == 5 and "ckpt-00000013" not in index
    assert retention.prune(tmp_path, 0, None) == []  # nothing asked: nothing listed or removed


def test_ckpt_disk_script_bounds_algorithm1_saves_and_sums_a_run():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "ckpt_disk.py"
    spec = importlib.util.spec_from_file_location("ckpt_disk", path)
    disk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(disk)
    # batch 64, the paper's levels and gates: 33 saves up to best 33/64 (gate 0), then +2/64
    # each to 53/64 (10, gate 0.02), then +1/64 each to 58/64 (5) and to 64/64 (6)
    levels, lrs = (0.0, 0.5, 0.8, 0.9), (0.01, 0.005, 0.001, 0.0005)
    assert disk.max_saves(levels, lrs, (0.0, 0.02, 0.01, 0.005), 64) == 54
    run = disk.per_run({"model": "alexnet", "full_mb": 400.0, "weights_only_mb": 200.0}, 3)
    # 200 epochs x 1264 steps, a check every 200 steps; 54 + 20 periodic checkpoints
    assert (run["checks"], run["checkpoints"]) == (1264, 74)
    assert run["before_gb"] == pytest.approx(74 * 0.4) and run["after_gb"] == pytest.approx(73 * 0.2 + 0.4)
    assert run["keep_best_gb"] == pytest.approx(22 * 0.2 + 0.4)
    assert run["keep_best_and_keep_checkpoints_1_gb"] == pytest.approx(3 * 0.2 + 0.4)
