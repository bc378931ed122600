"""anet evaluate: selection golden table, metrics, a tiny run end to end, and every bad input."""

import csv
import io
import json
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from anet import checkpoints, restore
from anet import evaluate as ev
from anet.cli import main
from anet.data import pipeline
from anet.data.sources import KARYOTYPE_CLASSES
from anet.errors import AnetError
from anet.predict_cell import predict_cell
from tests.tbevents import experiment_metrics, read_events
from tests.tinydata import write_dataset
from tests.tinyrun import make_tiny_run


def s(step, acc):
    return {"name": f"ckpt-{step:08d}", "step": step, "valid_acc": acc}


@pytest.mark.parametrize("scores,step,reason", [
    ([s(10, 0.5), s(20, 0.9), s(30, 0.7)], 20, "highest valid accuracy 0.9000"),
    ([s(30, 0.9), s(10, 0.9), s(20, 0.8)], 10,
     "highest valid accuracy 0.9000; tie with ckpt-00000030 broken by earliest step"),
    ([s(5, 2 / 3), s(6, 0.6666666666666666), s(7, 1 / 3)], 5, "tie with ckpt-00000006"),
    ([s(1, 0.93)], 1, "highest valid accuracy 0.9300"),
    ([s(i, 0.5) for i in range(1, 7)], 1,
     "tie with ckpt-00000002, ckpt-00000003, ckpt-00000004 and 2 more broken by earliest step"),
])
def test_select_best_golden(scores, step, reason):
    chosen, why = ev.select_best(scores)
    assert chosen["step"] == step
    assert reason in why


def test_select_best_empty():
    with pytest.raises(AnetError, match="no checkpoints"):
        ev.select_best([])


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("ev"), epochs=6)


@pytest.fixture(scope="module")
def evaluated(run):
    """evaluate() with spies: which checkpoints were loaded and which splits were opened, in order."""
    events = []
    mp = pytest.MonkeyPatch()
    real_data, real_read = pipeline.eval_dataset, restore.read

    def spy_data(data_dir, split, *a, **k):
        events.append(("data", split))
        return real_data(data_dir, split, *a, **k)

    def spy_read(path, **k):
        events.append(("load", str(path).rsplit("/", 1)[-1]))
        return real_read(path, **k)

    mp.setattr(pipeline, "eval_dataset", spy_data)
    mp.setattr(restore, "read", spy_read)
    try:
        result = ev.evaluate(run, train_batches=0)
    finally:
        mp.undo()
    return result, events


def test_evaluate_selects_on_valid_and_tests_only_the_chosen(run, evaluated):
    result, events = evaluated
    states = checkpoints.list_checkpoints(run / "checkpoints")
    assert [c["name"] for c in result["checkpoints"]] == [c.name for c in states]
    chosen, _ = ev.select_best(result["checkpoints"])
    assert result["chosen"]["name"] == chosen["name"]
    # Swapping weights into one model scores like the training loop did.
    for c, st in zip(result["checkpoints"], states):
        if st.valid_acc is not None:
            assert c["valid_acc"] == pytest.approx(st.valid_acc, abs=1e-6)
    # Each checkpoint is read once (that read is also its damage check); the test split is
    # opened once, after the chosen checkpoint's weights were loaded last (read again unless
    # it was the last one scored).
    assert events.count(("data", "test")) == 1
    i = events.index(("data", "test"))
    loads = [e[1] for e in events[:i] if e[0] == "load"]
    again = [chosen["name"]] if chosen["name"] != states[-1].name else []
    assert loads == [c.name for c in states] + again and loads[-1] == chosen["name"]


def test_eval_json_contents(run, evaluated):
    result, _ = evaluated
    on_disk = json.loads((run / "eval.json").read_text())
    assert on_disk["chosen"] == result["chosen"]
    acc = on_disk["accuracy"]
    assert set(acc) == {"train", "valid", "test"} and all(0 <= v <= 1 for v in acc.values())
    assert on_disk["examples"] == {"train": 96, "test": 24}
    assert on_disk["dataset"]["name"] == "tiny" and on_disk["dataset"]["totals"]["test"] == 24
    assert len(on_disk["dataset"]["sha256"]) == 64 and len(on_disk["config_sha256"]) == 64
    cm = np.array(on_disk["confusion"])
    assert cm.shape == (3, 3) and cm.sum() == 24
    assert np.trace(cm) / 24 == pytest.approx(acc["test"])
    assert [r["class"] for r in on_disk["per_class"]] == ["0", "1", "2"]
    # top-5 is n/a with 3 classes; macro-F1 of the chosen checkpoint on every split
    assert on_disk["top5_accuracy"] is None and "n/a" in ev.summary(on_disk)
    f1 = on_disk["macro_f1"]
    assert f1["test"] == pytest.approx(np.mean([r["f1"] for r in on_disk["per_class"]]))
    assert all(0 <= f1[s] <= 1 for s in ("train", "valid"))
    assert on_disk["absent_classes"] == {"train": [], "valid": [], "test": []}
    assert on_disk["karyotype"] is None  # 3 classes: no per-cell assignment
    assert len(on_disk["errors"]) == 24 - np.trace(cm)  # each misclassified file and cell named
    assert all(e["file"].endswith(".jpg") and e["cell"].startswith("cell") for e in on_disk["errors"])
    assert on_disk["out_of_range"]["count"] == 0 and on_disk["other_dataset"] is None
    for png in ("confusion.png", "errors.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_writes_tensorboard_metrics_and_confusion(run, evaluated):
    result, _ = evaluated
    tb, newest = run / "tensorboard", result["checkpoints"][-1]["step"]
    test, valid = read_events(tb / "test"), read_events(tb / "valid")
    assert test["eval/accuracy"][-1] == (newest, pytest.approx(result["accuracy"]["test"]))
    assert valid["eval/macro_f1"][-1] == (newest, pytest.approx(result["macro_f1"]["valid"]))
    assert test["eval/confusion"][-1] == (newest, Image.open(run / "confusion.png").size)
    assert "eval/top5_accuracy" not in test  # 3 classes: n/a
    # the hparams session declares these as its metrics
    assert ("test", "eval/accuracy") in experiment_metrics(tb)


def test_split_valid_never_opens_test(run, monkeypatch, capsys):
    opened = []
    real = pipeline.eval_dataset
    monkeypatch.setattr(pipeline, "eval_dataset",
                        lambda d, split, *a, **k: opened.append(split) or real(d, split, *a, **k))
    out = run.parent.parent / "copy"
    shutil.copytree(run, out)
    result = ev.evaluate(out, split="valid", ckpt="72", train_batches=1)
    assert "test" not in opened
    assert result["chosen"]["name"] == "ckpt-00000072" and "--ckpt" in result["chosen"]["reason"]
    assert result["accuracy"]["test"] is None and result["examples"]["train"] == 8
    assert result["macro_f1"]["test"] is None and result["macro_f1"]["valid"] is not None
    assert "chose ckpt-00000072" in capsys.readouterr().out


def test_karyotype_run_reports_per_cell_accuracy(tmp_path):
    data = write_dataset(tmp_path / "karyo", num_classes=24, size=(30, 12),
                         n_per_split={"train": 48, "valid": 24, "test": 48}, jpg_tree=True)
    meta = json.loads((data / "dataset.json").read_text())
    meta["classes"] = list(KARYOTYPE_CLASSES)
    meta["karyotypes"] = {f"cell{i}": "47,XX,+21" if i == 7 else "46,XY" for i in range(8)}
    meta["structural"] = {"5/test_5.jpg": "der(6)t(6;9)(p21;q34)", "5/test_29.jpg": "der(6)t(6;9)(p21;q34)"}
    (data / "dataset.json").write_text(json.dumps(meta))
    run = make_tiny_run(tmp_path, epochs=1, data=data, name="karyo")
    result = ev.evaluate(run, train_batches=1, karyograms=2)
    k = result["karyotype"]
    assert k["karyograms"] == ["karyograms/tiny-test-cell0.png", "karyograms/tiny-test-cell1.png"]
    assert all(Image.open(run / p).format == "PNG" for p in k["karyograms"])
    assert k["cells"] == 8 and k["chromosomes"] == 48 and k["split"] == "test"
    assert k["accuracy_before"] == pytest.approx(result["accuracy"]["test"])
    top5, acc = result["top5_accuracy"], result["accuracy"]
    assert all(acc[s] <= top5[s] <= 1 for s in ("train", "valid", "test"))
    # one train batch of 8 images cannot hold 24 classes: the absent ones are named, left out
    # of macro-F1, and the summary says so
    assert len(result["absent_classes"]["train"]) >= 16 and result["absent_classes"]["test"] == []
    assert "macro-F1 leaves out classes absent from a split: train: " in ev.summary(result)
    assert 0 <= k["accuracy_after"] <= 1
    # 6 chromosomes per cell: every call is a loss-riddled one, never the 46,XY truth
    calls = k["calls"]
    assert calls["cells"] == 8 and calls["exact"] == 0 and calls["abnormal"] == 1
    assert calls["normal"] == 7 and calls["called_normal"] == 0 and calls["specificity"] == 0.0
    assert [r["call"].split(",")[0] for r in k["per_cell"]] == ["6"] * 8
    assert "cell calls (8 cells with a known karyotype): exact 0/8" in ev.summary(result)
    [der] = k["structural"]  # how the two rearranged chromosomes were labelled, before and after
    assert der["name"] == "der(6)t(6;9)(p21;q34)" and der["true"] == "6" and der["chromosomes"] == 2
    assert sum(der["before"].values()) == sum(der["after"].values()) == 2
    assert "der(6)t(6;9)(p21;q34) (2, centromere of 6): labelled" in ev.summary(result)
    # one cell's crops through `anet karyogram`: labels after assignment, the call, the picture
    folder = tmp_path / "cell0"
    folder.mkdir()
    for f in (data / "jpg").rglob("test_[0-5].jpg"):
        shutil.copy(f, folder / f.name)
    res = predict_cell(run, folder, karyogram=tmp_path / "cell0.png")
    assert res.call.startswith("6,") and len(res.labels) == 6 and res.polarity is None
    assert Image.open(tmp_path / "cell0.png").format == "PNG"


def test_karyograms_need_a_karyotype_run(run, tmp_path):
    with pytest.raises(AnetError, match="--karyograms needs a karyotype dataset"):
        ev.evaluate(run, karyograms=1)
    folder = tmp_path / "cell"
    with pytest.raises(AnetError, match="cell: not a folder; pass a folder of one cell's"):
        predict_cell(run, folder)
    folder.mkdir()
    with pytest.raises(AnetError, match="no chromosome images"):
        predict_cell(run, folder)
    Image.fromarray(np.full((20, 12), 200, np.uint8)).save(folder / "a.tif")
    with pytest.raises(AnetError, match="not the 24 karyotype classes"):
        predict_cell(run, folder)


def test_cross_dataset_evaluate_equals_the_exported_model(tmp_path):
    """Evaluating on another dataset reads it with the run's own normalisation (not the other
    dataset's mean/std), so it gives what the exported model gives on the same files, and it
    is written under the other dataset's name, never over the run's eval.json."""
    import tensorflow as tf

    from anet.data.records import decode_example, shard_paths
    from anet.export import export

    run = make_tiny_run(tmp_path, epochs=2, normalize="standardize", resize="pad")
    ev.evaluate(run, train_batches=1)
    own = (run / "eval.json").read_bytes()
    other = write_dataset(tmp_path / "other", seed=7, size=(30, 12),
                          n_per_split={"train": 16, "valid": 12, "test": 12})
    meta = json.loads((other / "dataset.json").read_text())
    (other / "dataset.json").write_text(json.dumps(meta | {"name": "lab2", "mean": [0.3], "std": [0.5],
                                                           "size": {"min": [30, 12], "max": [30, 12]}}))
    csv_path = tmp_path / "preds.csv"
    result = ev.evaluate(run, overrides=[f"data.dir={other}"], predictions=csv_path)
    assert (run / "eval.json").read_bytes() == own  # the run's selection stays
    on_disk = json.loads((run / "eval-lab2.json").read_text())
    assert on_disk["other_dataset"] == "lab2" and on_disk["dataset"]["name"] == "lab2"
    assert on_disk["chosen"]["name"] == json.loads(own)["chosen"]["name"]
    assert "not re-selected on lab2" in on_disk["chosen"]["reason"]
    assert len(on_disk["checkpoints"]) == 1  # only the selection is scored
    assert (run / "eval-lab2-confusion.png").is_file() and (run / "eval-lab2-errors.png").is_file()
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert [r["split"] for r in rows] == ["valid"] * 12 + ["test"] * 12
    wrong = [r for r in rows if r["split"] == "test" and r["correct"] == "0"]
    assert [(e["file"], e["cell"], e["predicted"]) for e in on_disk["errors"]] == [
        (r["file"], r["cell"], r["predicted"]) for r in wrong]

    served = tf.saved_model.load(str(export(run, tmp_path / "export")))
    records = [decode_example(r.numpy()) for r in tf.data.TFRecordDataset(shard_paths(other, "test"))]
    out = served.signatures["serving_default"](images=tf.constant([r["image"] for r in records]))
    probs = out["probabilities"].numpy()
    by_file = {r["file"]: r for r in rows if r["split"] == "test"}
    for rec, p in zip(records, probs):
        row = by_file[rec["filename"]]
        assert row["predicted"] == str(p.argmax())
        assert float(row["probability"]) == pytest.approx(float(p.max()), abs=2e-5)
    exported_acc = np.mean([str(p.argmax()) == str(r["label"]) for r, p in zip(records, probs)])
    assert result["accuracy"]["test"] == pytest.approx(exported_acc)


def test_other_dataset_with_other_classes_is_refused(run, tmp_path, monkeypatch, capsys):
    other = write_dataset(tmp_path / "four", num_classes=4)
    err = cli(monkeypatch, capsys, "evaluate", "--ckpt-dir", run, "--set", f"data.dir={other}")
    assert "its classes (0, 1, 2, 3) differ from the run's (0, 1, 2)" in err


# --------------------------------------------------------------------------- bad input


def cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["anet", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    last = err.splitlines()[-1]  # Keras may warn first when weights do not fit
    assert last.startswith("error: "), err
    return last


def test_missing_and_empty_checkpoint_dirs(tmp_path, monkeypatch, capsys):
    for flag in ("--run-dir", "--ckpt-dir"):  # --ckpt-dir is kept as an alias
        err = cli(monkeypatch, capsys, "evaluate", flag, tmp_path / "nope")
        assert "no such run directory" in err and str(tmp_path / "nope") in err
    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
    assert "no checkpoints" in cli(monkeypatch, capsys, "evaluate", "--ckpt-dir", tmp_path / "empty")


def test_checkpoint_from_another_class_count(run, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    state = bad / "checkpoints" / "ckpt-00000036" / "state.json"
    state.write_text(json.dumps(dict(json.loads(state.read_text()), num_classes=5)))
    (bad / "eval.json").unlink(missing_ok=True)
    err = cli(monkeypatch, capsys, "evaluate", "--ckpt-dir", bad)
    assert "ckpt-00000036: checkpoint is anetc6 with 5 classes" in err
    assert not (bad / "eval.json").exists()


def test_checkpoint_from_another_model_shape(run, monkeypatch, capsys):
    err = cli(monkeypatch, capsys, "evaluate", "--ckpt-dir", run, "--ckpt", "72",
              "--set", "model.fc_units=16")
    assert "does not fit this model" in err


def test_dataset_gone_and_unknown_checkpoint(run, tmp_path, monkeypatch, capsys):
    err = cli(monkeypatch, capsys, "evaluate", "--ckpt-dir", run, "--set", f"data.dir={tmp_path}/x")
    assert "its dataset" in err and "is gone" in err and "--set data.dir=NEW" in err
    err = cli(monkeypatch, capsys, "evaluate", "--ckpt-dir", run, "--ckpt", "ckpt-9")
    assert "no checkpoint 'ckpt-9'" in err


def test_partial_evaluation_never_replaces_the_selection(run, capsys):
    from anet.runs import RunPaths, choose_checkpoint, open_run

    out = run.parent.parent / "partial"
    shutil.copytree(run, out)
    full = ev.evaluate(out, split="test", train_batches=1)
    paths = RunPaths(out)
    before = {p: p.read_bytes() for p in (paths.eval, paths.confusion, paths.errors)}
    other = next(c for c in checkpoints.list_checkpoints(paths.checkpoints)
                 if c.name != full["chosen"]["name"])
    name = other.name
    part = ev.evaluate(out, split="valid", ckpt=name, train_batches=1)
    assert {p: p.read_bytes() for p in before} == before  # the selection's files are untouched
    written = paths.partial_eval(name, "valid")
    assert [p.name for p in written] == [f"eval-{name}-valid.json", f"eval-{name}-valid-confusion.png",
                                         f"eval-{name}-valid-errors.png"]
    assert all(p.is_file() for p in written) and part["files"] == [p.name for p in written]
    assert json.loads(written[0].read_text())["chosen"]["name"] == name
    assert f"wrote {written[0]}" in capsys.readouterr().out
    chosen, why = choose_checkpoint(open_run(out))  # predict/export still follow the selection
    assert chosen.name == full["chosen"]["name"] and why == "chosen by `anet evaluate`"


def test_karyogram_command_bad_folder(tmp_path, monkeypatch, capsys):
    last = cli(monkeypatch, capsys, "karyogram", tmp_path / "nope", "--ckpt-dir", tmp_path)
    assert "nope: not a folder; pass a folder of one cell's chromosome crops" in last
