"""anet report --html/--md: page structure (parsed with html.parser), seeds, todo runs, bad input.

Most tests use hand-written run folders (what train/evaluate leave: config.yaml, metrics.jsonl,
checkpoint states, eval.json, errors.png) so they need no TensorFlow; one end-to-end test
trains two tiny models and builds the page through the CLI with --visualize.
"""

import json
import math
from html.parser import HTMLParser

import pytest

from anet.checkpoints import CheckpointState
from anet.karyotype import call_summary
from anet.report import lr_changes
from anet.report_data import collect, expand_seed_runs, fmt_mean_std, mean_std
from anet.report_html import write_report
from anet.schedule import ScheduleState
from tests.cli import run_cli


class Page(HTMLParser):
    """Tables (id, caption, rows of cell texts), images (src, alt) and every link of a page."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.images, self.urls, self.headings = [], [], [], []
        self._cell = self._row = self._table = self._heading = self._caption = None
        self.caption, self.text = "", ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href", "action", "data") and v]
        if tag == "p" and a.get("class") == "tablecap":  # the caption of the next table
            self._caption = []
        elif tag == "table":
            self._table = {"id": a.get("id"), "caption": self.caption, "rows": []}
            self.caption = ""
            self.tables.append(self._table)
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table["rows"].append(self._row)
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a)
        elif tag in ("h2", "h3"):
            self._heading = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "p" and self._caption is not None:
            self.caption, self._caption = "".join(self._caption), None
        elif tag == "table":
            self._table = self._row = None
        elif tag in ("h2", "h3"):
            self.headings.append("".join(self._heading))
            self._heading = None

    def handle_data(self, data):
        self.text += data
        if self._cell is not None:
            self._cell.append(data)
        if self._heading is not None:
            self._heading.append(data)
        if self._caption is not None:
            self._caption.append(data)

    def table(self, ident):
        return next(t for t in self.tables if t["id"] == ident)


# --------------------------------------------------------------------------- hand-made runs


def png(path):
    from anet.plotting import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(1, 1), dpi=20)
    ax.plot([0, 1])
    save_figure(fig, path)


def dataset(root, name, classes):
    d = root / "data" / name
    d.mkdir(parents=True)
    n = len(classes)
    (d / "dataset.json").write_text(json.dumps({
        "name": name, "classes": classes, "num_classes": n, "channels": 1, "source": "test",
        "seed": 0, "created": "2026-01-01", "size": {"min": [28, 28], "max": [28, 28]},
        "totals": {"total": 10 * n, "train": 8 * n, "valid": n, "test": n},
        "mean": [0.5], "std": [0.2]}))
    return d


def fake_run(run, data, model, accs, seed=0, evaluated=True, karyotype=None):
    """A run folder as train + evaluate leave it; ``accs`` = (train, valid, test)."""
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(f"model:\n  name: {model}\ndata:\n  dir: {data}\nrun:\n  seed: {seed}\n")
    rows = [{"kind": "check", "step": s, "train_acc": a, "valid_acc": a - 0.05, "lr": lr,
             "next_lr": nxt} for s, a, lr, nxt in ((10, 0.5, 0.01, 0.01), (20, 0.8, 0.01, 0.005),
                                                  (30, 0.9, 0.005, 0.005))]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for s in (10, 30):
        (run / "checkpoints" / f"ckpt-{s:08d}").mkdir()
        state = CheckpointState(step=s, epoch=0, batch_in_epoch=s, reasons=("check",),
                                schedule=ScheduleState(), config={"model": {"name": model}},
                                model=model, num_classes=3, input_shape=(8, 8, 1), valid_acc=0.5)
        (run / "checkpoints" / f"ckpt-{s:08d}" / "state.json").write_text(json.dumps(state.to_json()))
    if not evaluated:
        return run
    meta = json.loads((data / "dataset.json").read_text())
    classes = meta["classes"]
    k = len(classes)
    cm = [[5 if i == j else 1 for j in range(k)] for i in range(k)]
    (run / "eval.json").write_text(json.dumps({
        "run": str(run), "model": model, "config_sha256": "ab" * 32,
        "dataset": {"name": meta["name"], "dir": str(data), "totals": meta["totals"], "sha256": "cd" * 32},
        "chosen": {"name": "ckpt-00000030", "step": 30, "reason": "highest valid accuracy"},
        "accuracy": dict(zip(("train", "valid", "test"), accs)), "examples": {"train": 8, "test": 4},
        "top5_accuracy": None if k <= 5 else {"train": 1.0, "valid": 0.999, "test": 0.998},
        "macro_f1": dict(zip(("train", "valid", "test"), (a - 0.01 for a in accs))),
        "split": "test", "classes": classes, "confusion": cm,
        "per_class": [{"class": c, "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 7}
                      for c in classes], "karyotype": karyotype}))
    png(run / "errors.png")
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("rep")
    mnist = dataset(root, "mnist", ["0", "1", "2"])
    karyo = dataset(root, "synthetic-karyotype", [str(i) for i in range(1, 23)] + ["X", "Y"])
    meta = json.loads((karyo / "dataset.json").read_text())
    (karyo / "dataset.json").write_text(json.dumps(meta | {"karyotypes": {"c1": "47,XY,+21"}}))
    fake_run(root / "seeds" / "seed-0", mnist, "anetc6", (1.0, 0.98, 0.97), seed=0)
    fake_run(root / "seeds" / "seed-1", mnist, "anetc6", (1.0, 0.96, 0.99), seed=1)
    fake_run(root / "alex", mnist, "alexnet", (0.99, 0.95, 0.94))
    per_cell = [{"cell": "c1", "chromosomes": 46, "correct_before": 30, "correct_after": 40,
                 "call": "47,XY,+21", "truth": "47,XY,+21"},
                {"cell": "c2", "chromosomes": 46, "correct_before": 34, "correct_after": 34,
                 "call": "46,XY", "truth": "46,XX"}]
    fake_run(root / "karyo", karyo, "anetc6", (0.9, 0.8, 0.7), karyotype={
        "cells": 2, "chromosomes": 92, "accuracy_before": 0.7, "accuracy_after": 0.8,
        "penalty": 3.0, "split": "test", "per_cell": per_cell, "calls": call_summary(per_cell),
        "karyograms": ["karyograms/test-c1.png", "karyograms/test-gone.png"]})
    (root / "karyo" / "karyograms").mkdir()
    png(root / "karyo" / "karyograms" / "test-c1.png")  # test-gone.png was deleted: not shown
    other = json.loads((root / "alex" / "eval.json").read_text())
    other["dataset"]["name"] = "lab-tifs"
    (root / "alex" / "eval-lab-tifs.json").write_text(json.dumps(other))
    compare = root / "alex" / "visualize" / "compare"
    compare.mkdir(parents=True)
    png(compare / "compare-00-a.png")
    fake_run(root / "pending", mnist, "vgg16", None, evaluated=False)
    (root / "empty").mkdir()
    return root


def test_html_page_structure(runs, tmp_path, capsys):
    dirs = [runs / n for n in ("seeds", "alex", "karyo", "pending", "empty")]
    out = tmp_path / "report.html"
    assert write_report(dirs, html_out=out) == [out]
    assert f"wrote {out}" in capsys.readouterr().out
    page = Page(out.read_text())

    # self-contained: every image inline, links only to anchors on the page
    assert page.urls and all(u.startswith(("data:image/png;base64,", "#")) for u in page.urls)
    assert "http" not in out.read_text().replace("http-equiv", "")

    t1 = page.table("table1")
    assert [r[0] for r in t1["rows"][1:]] == ["mnist", "mnist (ANet-c6 paper)", "synthetic-karyotype"]
    assert t1["rows"][2][1:5] == ["70000", "62584", "3550", "3596"]

    t2 = page.table("table2")
    assert t2["rows"][0] == ["Model", "mnist", "synthetic-karyotype"]  # dataset over 8 columns
    assert t2["rows"][1] == ["n", "train", "valid", "test", "top-5 valid", "top-5 test",
                             "macro-F1 valid", "macro-F1 test"] * 2
    body = {r[0]: r[1:] for r in t2["rows"][2:]}
    # the two seed runs are one row: n = 2, mean ± sample std; top-5 n/a with 3 classes
    assert body["anetc6"][:8] == ["2", "1.0000 ± 0.0000", "0.9700 ± 0.0141", "0.9800 ± 0.0141",
                                  "n/a", "n/a", "0.9600 ± 0.0141", "0.9700 ± 0.0141"]
    assert body["anetc6"][8:] == ["1", "0.9000", "0.8000", "0.7000", "0.9990", "0.9980", "0.7900",
                                  "0.6900"]
    assert body["anetc6 (ANet-c6 paper)"][:8] == ["", "1.000", "0.983", "0.984", "", "", "", ""]
    assert body["alexnet"][:4] == ["1", "0.9900", "0.9500", "0.9400"]
    assert "alexnet (ANet-c6 paper)" in body and "vgg16" not in body

    per_run = page.table("table2-runs")
    assert [r[0] for r in per_run["rows"][1:]] == ["seeds/seed-0", "seeds/seed-1", "alex", "karyo"]
    assert all(r[4] == "ckpt-00000030 (step 30)" for r in per_run["rows"][1:])

    todo = {r[0]: r[1] for r in page.table("todo-table")["rows"][1:]}
    assert todo == {"pending": f"not evaluated: anet evaluate --run-dir {runs / 'pending'}",
                    "empty": f"not trained: anet train CONFIG --run-dir {runs / 'empty'}, then "
                             f"anet evaluate --run-dir {runs / 'empty'}"}

    alts = [i["alt"] for i in page.images]
    assert sum(a.startswith("Figure 3,") for a in alts) == 4  # seeds, alex, karyo, pending
    assert sum(a.startswith("Figure 4, alex/visualize/compare/compare-00-a.png") for a in alts) == 1
    assert sum(a.startswith("Confusion matrix of") for a in alts) == 4
    assert sum(a.startswith("Misclassified") for a in alts) == 4
    assert sum(a.startswith("Karyogram karyograms/test-c1.png of karyo") for a in alts) == 1
    assert len(alts) == 14
    assert "cell calls (2 cells with a known karyotype): exact 1/2 = 0.50" in page.text
    assert "called 46,XY for 46,XX: 1 cell(s)" in page.text

    karyo = [t for t in page.tables if t["rows"][0][0] == "Cells"]
    assert len(karyo) == 1 and karyo[0]["rows"][1] == ["2", "92", "0.7000", "0.8000", "3"]
    cells = [t for t in page.tables if t["rows"][0][0] == "Cell"]
    assert len(cells) == 1 and cells[0]["rows"][1:] == [["c2", "-", "46,XY", "46", "34", "34"],
                                                         ["c1", "47,XY,+21", "47,XY,+21", "46", "30", "40"]]
    per_class = [t for t in page.tables if t["caption"].startswith("Per-class metrics")]
    assert len(per_class) == 4 and len(per_class[-1]["rows"]) == 1 + 24
    others = [t for t in page.tables if t["caption"].startswith("Other evaluations of alex")]
    assert len(others) == 1 and others[0]["rows"][1] == [
        "eval-lab-tifs.json", "lab-tifs", "ckpt-00000030", "test", "0.9500", "0.9400"]
    for h in ("Methods: commands, configs, data and code", "pending", "empty"):
        assert h in page.headings


def test_markdown_images_beside_it(runs, tmp_path):
    out = tmp_path / "r.md"
    written = write_report([runs / "alex", runs / "pending"], md_out=out)
    assert written == [out, tmp_path / "r_files"]
    text = out.read_text()
    links = [line.split("](")[1].split(")")[0] for line in text.splitlines() if line.startswith("![")]
    assert len(links) == 5 and all((tmp_path / link).is_file() for link in links)
    assert "| alexnet (ANet-c6 paper) |" in text and f"anet evaluate --run-dir {runs / 'pending'}" in text


def test_nothing_evaluated_still_makes_a_page(runs, tmp_path):
    out = tmp_path / "p.html"
    write_report([runs / "pending"], html_out=out)
    page = Page(out.read_text())
    assert [t["id"] for t in page.tables] == ["todo-table", "table1"]


def test_seed_grouping(tmp_path):
    for d in ("a/seed-1", "a/seed-0", "a/seed-10", "b", "c/seed-2"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "report.html").write_text("")  # runs/* may match a report written there
    groups = expand_seed_runs([tmp_path / "a", tmp_path / "b", tmp_path / "c" / "seed-2",
                               tmp_path / "report.html"])
    assert groups == [("a", [tmp_path / "a" / f"seed-{i}" for i in (0, 1, 10)]),
                      ("b", [tmp_path / "b"]), ("c", [tmp_path / "c" / "seed-2"])]


def test_numbers():
    assert mean_std([0.9, None, 0.8, 0.7]) == (pytest.approx(0.8), pytest.approx(0.1), 3)
    assert mean_std([0.5]) == (0.5, None, 1) and mean_std([]) == (None, None, 0)
    assert fmt_mean_std([0.96, 0.98]) == "0.9700 ± 0.0141" and fmt_mean_std([None]) == "-"
    rows = [{"step": 10, "lr": 0.01, "next_lr": 0.01}, {"step": 20, "lr": 0.01, "next_lr": 0.005},
            {"step": 25, "kind": "epoch", "lr": 0.005}, {"step": 30, "lr": 0.005, "next_lr": 0.001}]
    assert lr_changes(rows) == [(20, 0.01, 0.005), (30, 0.005, 0.001)]
    assert math.isclose(mean_std([1, 3])[1], math.sqrt(2))


@pytest.mark.parametrize("make_args,message", [
    (lambda r, t: [r / "alex", "--html", t], "is a folder"),
    (lambda r, t: [r / "alex", "--html", t / "no" / "x.html"], "does not exist"),
    (lambda r, t: [r / "nope", "--html", t / "x.html"], "no such run directory"),
    (lambda r, t: ["--html", t / "x.html"], "nothing to report"),
    (lambda r, t: [r / "alex", "--md", t / "x.md", "--csv"], "--csv"),
    (lambda r, t: [r / "alex", "--visualize"], "add --html"),
])
def test_bad_input(runs, tmp_path, monkeypatch, capsys, make_args, message):
    code, _, err = run_cli(["report", *make_args(runs, tmp_path)], capsys)
    assert code == 2 and err.startswith("error: ") and message in err, err
    assert not list(tmp_path.glob("x.*"))


def test_corrupt_eval_json_is_listed_not_dropped(tmp_path):
    data = dataset(tmp_path, "mnist", ["0", "1"])
    run = fake_run(tmp_path / "r", data, "anetc6", (1, 1, 1))
    (run / "eval.json").write_text("{")
    (view,) = collect([run])[0].runs
    assert view.eval is None and "not valid JSON" in view.todo


def test_dataset_folder_gone_is_said(tmp_path):
    import shutil

    data = dataset(tmp_path, "mnist", ["0", "1"])
    run = fake_run(tmp_path / "r", data, "anetc6", (1, 1, 1))
    shutil.rmtree(data)
    write_report([run], html_out=tmp_path / "p.html")
    page = Page((tmp_path / "p.html").read_text())
    assert page.table("table1")["rows"][1:] == []
    assert "No dataset.json found (folder moved or deleted) for: mnist (r)" in page.text


def test_foreign_checkpoint_state_is_listed_not_fatal(tmp_path):
    data = dataset(tmp_path, "mnist", ["0", "1"])
    run = fake_run(tmp_path / "r", data, "anetc6", (1, 1, 1))
    (run / "checkpoints" / "ckpt-00000010" / "state.json").write_text('{"step": 10}')
    (view,) = collect([run])[0].runs
    assert view.eval is None and "not a checkpoint state" in view.todo


def test_end_to_end_tiny_runs_with_seeds_and_visualize(tmp_path, monkeypatch, capsys):
    """ANet-c6 with `anet train --seeds 0,1` and a tiny AlexNet, evaluated, then
    `anet report --html --visualize` through the CLI: one mean ± std row, a compare figure."""
    from tests.tinyrun import make_tiny_run, tiny_config

    b = make_tiny_run(tmp_path, epochs=1, model="alexnet", name="b")
    a = tmp_path / "runs" / "a"
    config = tiny_config(tmp_path, tmp_path / "data", epochs=1, name="a")
    assert run_cli(["train", config, "--seeds", "0,1", "--run-dir", a], capsys)[0] == 0
    for r in (a, b):
        assert run_cli(["evaluate", "--ckpt-dir", r, "--train-batches", "1"], capsys)[0] == 0
    out = tmp_path / "report.html"
    code, stdout, err = run_cli(["report", a, b, "--html", out, "--visualize"], capsys)
    assert code == 0, err
    page = Page(out.read_text())
    alts = [i["alt"] for i in page.images]
    assert sum(x.startswith("Figure 4, a/seed-0/visualize/compare/") and "rows: a/seed-0 (anetc6"
               in x for x in alts) == 2  # --samples 2 by default; rows named from visualize.json
    smooth = [t for t in page.tables if t["rows"][0][:2] == ["Run", "Layer"]]
    assert len(smooth) == 1 and len(smooth[0]["rows"]) == 1 + 2 * 4  # 2 runs x 4 layers
    assert sum(x.startswith("Figure 3,") for x in alts) == 2  # one per experiment
    t2 = page.table("table2")["rows"]
    assert [r[0] for r in t2[2:]] == ["anetc6", "alexnet"] and [r[1] for r in t2[2:]] == ["2", "1"]
    assert " ± " in t2[2][2]  # mean ± std over the two seeds
    text = out.read_text()
    assert f"anet train {config} --seeds 0,1 --run-dir {a}" in text  # recorded in commands.jsonl
