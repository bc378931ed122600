"""Checkpoint store: atomic layout, listing, reason merging, pruning, mismatch errors."""

import json
from dataclasses import replace

import keras
import numpy as np
import pytest

from anet import checkpoints as C
from anet import restore as R
from anet import retention
from anet.errors import AnetError
from anet.schedule import ScheduleState


def tiny(units=3):
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, name="d")])
    opt = keras.optimizers.SGD(0.1, momentum=0.9)
    opt.build(m.trainable_variables)
    return m, opt


def state(step, reasons=("check",), **kw):
    return C.CheckpointState(step=step, epoch=0, batch_in_epoch=step, reasons=tuple(reasons),
                             schedule=ScheduleState(best=0.5, lr=0.1), config={"model": {}},
                             model="tiny", num_classes=3, input_shape=(4,), **kw)


def test_save_list_latest_and_index(tmp_path):
    m, opt = tiny()
    for step in (1, 7, 3):
        C.save(tmp_path, model=m, optimizer=opt, state=state(step))
    (tmp_path / ".tmp-ckpt-00000009-123").mkdir()  # a killed writer's leftover: not listed
    (tmp_path / "ckpt-00000011").mkdir()  # no state.json: incomplete, not listed
    assert [c.step for c in C.list_checkpoints(tmp_path)] == [1, 3, 7]
    assert C.latest(tmp_path).step == 7
    rows = [json.loads(x) for x in (tmp_path / C.INDEX).read_text().splitlines()]
    assert [r["path"] for r in rows] == ["ckpt-00000001", "ckpt-00000003", "ckpt-00000007"]
    (tmp_path / ".checkpoints.jsonl.tmp-99").write_text("half")
    (tmp_path / "ckpt-00000003" / ".state.json.tmp-99").write_text("half")
    C.clean_partial(tmp_path)
    assert not list(tmp_path.glob(".tmp-*")) and not list(tmp_path.rglob("*.tmp-99"))
    assert [c.step for c in C.list_checkpoints(tmp_path)] == [1, 3, 7]
    assert C.latest(tmp_path / "missing") is None


def test_same_step_merges_reasons(tmp_path):
    m, opt = tiny()
    C.save(tmp_path, model=m, optimizer=opt, state=state(5, ["check"], monitored=0.5))
    C.save(tmp_path, model=m, optimizer=opt, state=state(5, ["periodic"], valid_acc=0.4))
    (c,) = C.list_checkpoints(tmp_path)
    assert c.reasons == ("check", "periodic") and c.monitored == 0.5 and c.valid_acc == 0.4


def test_load_restores_weights_and_optimizer(tmp_path):
    m, opt = tiny()
    m.get_layer("d").kernel.assign(np.full((4, 3), 2.0, np.float32))
    opt.variables[-1].assign(np.ones(opt.variables[-1].shape))
    path = C.save(tmp_path, model=m, optimizer=opt, state=state(2))
    m2, opt2 = tiny()
    assert replace(R.load(path, model=m2, optimizer=opt2), time=None) == state(2)
    np.testing.assert_array_equal(m2.get_layer("d").kernel.numpy(), 2.0)
    for a, b in zip(opt.variables, opt2.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_mismatched_model_and_optimizer_are_clear_errors(tmp_path):
    m, opt = tiny()
    path = C.save(tmp_path, model=m, optimizer=opt, state=state(2))
    other, _ = tiny(units=5)
    with pytest.raises(AnetError, match="checkpoint does not fit this model"):
        R.load_weights(path, other)
    adam = keras.optimizers.Adam()
    adam.build(m.trainable_variables)
    with pytest.raises(AnetError, match="optimizer state does not match"):
        R.load(path, model=m, optimizer=adam)


def test_drop_after_removes_a_workers_checkpoints_past_the_chiefs(tmp_path):
    m, opt = tiny()
    for step in (1, 4, 8):
        C.save(tmp_path, model=m, optimizer=opt, state=state(step))
    assert retention.drop_after(tmp_path, 4) == ["ckpt-00000008"]
    assert [c.step for c in C.list_checkpoints(tmp_path)] == [1, 4]
    assert [json.loads(x)["step"] for x in (tmp_path / C.INDEX).read_text().splitlines()] == [1, 4]
    assert retention.drop_after(tmp_path, 4) == [] and retention.drop_after(tmp_path / "none", 0) == []


def test_only_the_newest_keeps_the_optimizer_state(tmp_path):
    m, opt = tiny()
    for step in (1, 5, 9):
        C.save(tmp_path, model=m, optimizer=opt, state=state(step))
    ckpts = C.list_checkpoints(tmp_path)
    assert [C.has_optimizer(c.path) for c in ckpts] == [False, False, True]
    assert all(R.damaged(c.path) == "" for c in ckpts)  # weights-only is not damaged
    rows = [json.loads(x) for x in (tmp_path / C.INDEX).read_text().splitlines()]
    assert [r["resumable"] for r in rows] == [False, False, True]
    # a weights-only checkpoint loads its weights and leaves the optimizer as it was
    m.get_layer("d").kernel.assign(np.full((4, 3), 3.0, np.float32))
    m2, opt2 = tiny()
    before = [v.numpy() for v in opt2.variables]
    assert R.load(ckpts[0].path, model=m2, optimizer=opt2).step == 1
    for a, b in zip(before, opt2.variables):
        np.testing.assert_array_equal(a, b.numpy())
    # a kill between the rename and the removal leaves two complete ones: the next save fixes it
    (ckpts[0].path / C.OPTIMIZER).write_bytes((ckpts[-1].path / C.OPTIMIZER).read_bytes())
    C.save(tmp_path, model=m, optimizer=opt, state=state(11))
    assert [C.has_optimizer(c.path) for c in C.list_checkpoints(tmp_path)] == [False] * 3 + [True]
    ckpts = C.list_checkpoints(tmp_path)
    # merging reasons into the newest keeps its optimizer state
    C.save(tmp_path, model=m, optimizer=opt, state=state(11, ["final"]))
    assert C.has_optimizer(ckpts[-1].path) and C.read_state(ckpts[-1].path).reasons == ("check", "final")


def test_writer_finishes_saves_in_order_and_reports_failures(tmp_path):
    m, opt = tiny()
    w = C.Writer()
    seen = []
    for step, why in ((1, "a"), (2, "b"), (2, "c")):  # the second of step 2 waits for the first
        C.save(tmp_path, model=m, optimizer=opt, state=state(step, [why]), writer=w,
               then=lambda: seen.append([c.step for c in C.list_checkpoints(tmp_path)]))
    w.close()
    assert seen == [[1], [1, 2], [1, 2]]
    assert C.read_state(tmp_path / "ckpt-00000002").reasons == ("b", "c")
    assert [C.has_optimizer(c.path) for c in C.list_checkpoints(tmp_path)] == [False, True]
    w = C.Writer()
    w.submit(lambda: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(AnetError, match=r"saving a checkpoint failed .*No space left on device.*"
                                        r"rerun the same command to resume"):
        w.close()


def test_state_json_round_trip_and_bad_fields(tmp_path):
    s = state(4, ["check", "periodic"], valid_acc=0.25, stop_reason="")
    row = s.to_json()
    assert row["schedule"] == {"best": 0.5, "lr": 0.1, "gate": 0.0, "streak": 0}
    assert "monitored" not in row and row["stop_reason"] == ""  # None fields are left out
    assert C.CheckpointState.from_json(json.loads(json.dumps(row))) == s
    with pytest.raises(AnetError, match=r"^x/state.json: not a checkpoint state .*unknown fields "
                                        r"colour; missing fields step"):
        C.CheckpointState.from_json({k: v for k, v in row.items() if k != "step"} | {"colour": 1},
                                    "x/state.json")
    with pytest.raises(AnetError, match="not an anet checkpoint state"):
        C.CheckpointState.from_json([], "x/state.json")


def test_drop_after_keeps_a_checkpoint_folder_holding_a_users_file(tmp_path, capsys):
    m, opt = tiny()
    for step in (1, 8):
        C.save(tmp_path, model=m, optimizer=opt, state=state(step))
    (tmp_path / "ckpt-00000008" / "notes.txt").write_text("mine")
    assert retention.drop_after(tmp_path, 4) == []
    assert (tmp_path / "ckpt-00000008" / "notes.txt").read_text() == "mine"
    assert "holds files anet did not write (notes.txt)" in capsys.readouterr().err
