"""The content of `anet report --html/--md` as a list of blocks (headings, tables, figures, code).

:func:`build` turns collected experiments (:mod:`anet.report_data`) into blocks, drawing the
figures it needs (Figure 3, normalised confusion matrices) into a folder; :mod:`anet.report_html`
renders the same blocks as one self-contained HTML page or as Markdown with images beside it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from anet import karyotype, paper
from anet.data.splits import SPLITS
from anet.files import safe_name
from anet.report import TABLE2_NAMES, fmt_acc, fmt_num, plot_figure3, run_name, table1_rows, table2_cells
from anet.report_data import Experiment, RunView, datasets, fmt_mean_std, read_json
from anet.runlog import code_version
from anet.runs import RunPaths


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2
    id: str = ""


@dataclass(frozen=True)
class Para:
    text: str  # plain text; `backticks` become code spans
    cls: str = ""  # "note" (muted) or "todo" (highlighted)


@dataclass(frozen=True)
class Table:
    header: tuple
    rows: tuple  # tuples of cells (str)
    caption: str = ""
    row_classes: tuple = ()  # a CSS class per row ("paper" rows are shaded), may be shorter
    id: str = ""
    groups: tuple = ()  # (label, span) over header[1:]: a second header row above (Table 2)

    def flat_header(self) -> tuple:
        """One header row: group label and column name joined (Markdown, CSV)."""
        if not self.groups:
            return self.header
        names = [g for g, span in self.groups for _ in range(span)]
        return (self.header[0],) + tuple(f"{g} {h}" for g, h in zip(names, self.header[1:]))


@dataclass(frozen=True)
class Figure:
    path: Path  # a PNG
    caption: str
    id: str = ""


@dataclass(frozen=True)
class Code:
    text: str
    caption: str = ""
    cls: str = ""  # "config": set in columns (long YAML)


@dataclass(frozen=True)
class Group:
    blocks: tuple  # shown side by side where the page is wide enough, else one after another


# --------------------------------------------------------------------------- tables


def table1(experiments: list[Experiment], extra=()) -> Table:
    """Table 1 for every dataset the runs used (and ``extra`` DatasetInfos), the paper's
    row under each of its datasets."""
    infos = datasets(experiments)
    names = {d.name for d in infos}
    header, rows = table1_rows(infos + [d for d in extra if d.name not in names])
    body, classes = [], []
    for row in rows:
        body.append(tuple(map(str, row)))
        classes.append("")
        if row[0] in paper.TABLE1:
            body.append((f"{row[0]} ({paper.TITLE})",) + tuple(map(str, paper.TABLE1[row[0]])))
            classes.append("paper")
    return Table(tuple(header), tuple(body), "Table 1. Datasets: images per split and image size "
                 "(h x w). Shaded rows: the paper's figures.", tuple(classes), id="table1")


def _row_labels(experiments: list[Experiment]) -> list[str]:
    """A Table 2 row per model; a model with two experiments on one dataset gets one row each."""
    pairs = [(e.model, e.dataset) for e in experiments]
    return [e.model if pairs.count((e.model, e.dataset)) == 1 else f"{e.model} ({e.label})"
            for e in experiments]


def table2(experiments: list[Experiment]) -> Table:
    """The paper's Table 2 in its shape (models x dataset splits), each cell mean ± std over the
    evaluated seed runs with n per dataset; the paper's row under each model it reports."""
    done = [e for e in experiments if e.evaluated]
    names = list(dict.fromkeys(e.dataset for e in done))
    width = 1 + len(TABLE2_NAMES)
    header = ("Model",) + tuple(s for _ in names for s in ("n",) + TABLE2_NAMES)
    cells: dict[str, dict] = {}
    models: dict[str, str] = {}
    for label, e in zip(_row_labels(done), done):
        models[label] = e.model
        evals = [r.eval for r in e.evaluated]
        cells.setdefault(label, {})[e.dataset] = [str(len(evals))] + table2_cells(evals, fmt_mean_std)
    body, classes, shown = [], [], set()
    for label, by_data in cells.items():
        body.append((label,) + tuple(c for d in names for c in by_data.get(d, ["-"] * width)))
        classes.append("")
        model = models[label]
        figures = {d: paper.table2(model, d) for d in names}
        if model not in shown and any(figures.values()):
            shown.add(model)
            paper_cells = {d: [f"{v:.3f}" for v in figures[d]] if figures[d] else ["", "", ""]
                           for d in names}
            body.append((f"{model} ({paper.TITLE})",) + tuple(
                c for d in names for c in ["", *paper_cells[d]] + [""] * (width - 4)))
            classes.append("paper")
    return Table(header, tuple(body), "Table 2. Accuracy on train / valid / test, then top-5 "
                 "accuracy (n/a with 5 classes or fewer) and macro-F1 (mean F1 over the classes "
                 "present in the split) on valid and test: mean ± sample standard deviation over "
                 "the n evaluated seed runs of each experiment, at the checkpoint chosen on valid. "
                 "Shaded rows: the paper's figures (one run each; accuracy only).",
                 tuple(classes), id="table2", groups=tuple((d, width) for d in names))


def per_run_table(experiments: list[Experiment]) -> Table:
    """Every evaluated run: its chosen checkpoint, why, and its accuracies."""
    rows = []
    for e in experiments:
        for r in e.evaluated:
            ch = r.chosen
            rows.append((r.name, r.model, r.dataset, "-" if r.seed is None else str(r.seed),
                         f"{ch['name']} (step {ch['step']})", ch.get("reason", ""),
                         *table2_cells([r.eval], lambda v: fmt_acc(v[0]))))
    return Table(("Run", "Model", "Dataset", "Seed", "Chosen checkpoint", "Why", "Train", "Valid",
                  "Test", "Top-5 valid", "Top-5 test", "Macro-F1 valid", "Macro-F1 test"),
                 tuple(rows), "Table 2, per run: the checkpoint `anet evaluate` chose, its "
                 "accuracies, top-5 accuracy and macro-F1.", id="table2-runs")


# --------------------------------------------------------------------------- sections


def _todo_section(experiments: list[Experiment]) -> list:
    todo = [(r.name, r.todo) for e in experiments for r in e.runs if r.todo]
    if not todo:
        return []
    return [Heading("Runs not in Table 2", id="todo"),
            Para("These runs have no usable eval.json yet; each line is the command that "
                 "completes it (then re-run `anet report`).", "todo"),
            Table(("Run", "State and command"), tuple(todo), id="todo-table")]


def _scores(r: RunView) -> dict:
    """step -> valid accuracy of each checkpoint as `anet evaluate` scored it."""
    return {int(c["step"]): float(c["valid_acc"]) for c in (r.eval or {}).get("checkpoints", [])
            if isinstance(c.get("step"), int) and isinstance(c.get("valid_acc"), (int, float))}


def _figure3(experiments: list[Experiment], figdir: Path) -> list:
    blocks = [Heading("Figure 3. Training and validation accuracy", id="figure3")]
    for e in experiments:
        panels = [(r.name, list(r.metrics), list(r.ckpts), (r.chosen or {}).get("step"),
                   _scores(r)) for r in e.runs if r.metrics]
        if not panels:
            blocks.append(Para(f"{e.label} ({e.model} on {e.dataset}): no metrics.jsonl yet.", "note"))
            continue
        path = plot_figure3(panels, f"{e.model} on {e.dataset}: {e.label}",
                            figdir / f"{safe_name(f'figure3-{e.label}-{e.model}-{e.dataset}')}.png")
        blocks.append(Figure(path, f"Figure 3, {e.model} on {e.dataset} ({e.label}, "
                             f"{len(panels)} run{'s' if len(panels) > 1 else ''}): light green "
                             "training accuracy (mean since the last check), dark green validation "
                             "accuracy during training, dotted lines saved checkpoints (circles: "
                             "their valid accuracy as `anet evaluate` scored them), red dashed "
                             "lines learning-rate changes, star the checkpoint chosen on valid."))
    return blocks


def _smoothness(vis: dict, folder: str) -> Table:
    """visualize.json's smoothness per run and layer (the number behind Figure 4's claim)."""
    rows = []
    for run in vis.get("runs", []):
        for layer in run.get("layers", []):
            rows.append((f"{run_name(run.get('run', '?'))} ({run.get('model', '?')})",
                         layer.get("name", "?"), "x".join(map(str, layer.get("shape", []))),
                         *(fmt_num(layer.get(k), 3, "n/a") for k in ("smoothness", "noise_smoothness",
                                                         "dead_fraction"))))
    return Table(("Run", "Layer", "Shape", "Smoothness", "White noise", "Dead channels"),
                 tuple(rows), f"Smoothness of the layer outputs in {folder} (1 smooth, 0 "
                 "checkerboard; white noise of that size for reference; dead: constant "
                 "channels, left out), mean over the samples.")


def _figure4(experiments: list[Experiment], command: str) -> list:
    blocks = [Heading("Figure 4. Layer outputs", id="figure4")]
    folders: dict[Path, tuple] = {}  # visualize output folder -> (its run, its PNGs)
    for e in experiments:
        for r in e.runs:
            for png in r.figure4:
                folder = png.parent if png.parent.name == "compare" else png.parent.parent
                folders.setdefault(folder, (r, []))[1].append(png)
    for folder, (r, pngs) in folders.items():
        where = f"{r.name}/{folder.relative_to(r.dir)}"
        vis = read_json(folder / "visualize.json") or {}
        runs = ", ".join(f"{run_name(v.get('run', '?'))} ({v.get('model', '?')}, "
                         f"{v.get('checkpoint', '?')})" for v in vis.get("runs", []))
        for png in dict.fromkeys(pngs):
            blocks.append(Figure(png, f"Figure 4, {where}/{png.relative_to(folder)}"
                                 + (f", rows: {runs}" if runs else "") + ": conv1, pool1, "
                                 "pool2 and the last pool; s = smoothness."))
        if vis.get("runs"):
            blocks.append(_smoothness(vis, where))
    if not folders:
        blocks.append(Para(f"No run has `anet visualize` output. `{command} --visualize` makes "
                           "it (a compare figure where several models share a dataset).", "todo"))
    return blocks


def _per_class(r: RunView) -> Table:
    rows = tuple((str(c["class"]), f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}",
                  str(c["support"])) for c in r.eval.get("per_class", []))
    return Table(("Class", "Precision", "Recall", "F1", "Support"), rows,
                 f"Per-class metrics on {r.eval.get('split', 'test')} ({r.name}).")


CELL_ROWS = 40  # per-cell rows shown per run (the cells with the most errors first)
KARYOGRAMS = 4  # karyograms shown per run (those `anet evaluate --karyograms N` drew)


def _karyotype(r: RunView) -> list:
    k = r.eval.get("karyotype")
    if not k:
        return []
    row = (str(k["cells"]), str(k["chromosomes"]), f"{k['accuracy_before']:.4f}",
           f"{k['accuracy_after']:.4f}", f"{k['penalty']:g}")
    blocks = [Table(("Cells", "Chromosomes", "Per-chromosome (argmax)", "Per-cell assignment",
                     "Spare-slot penalty"), (row,),
                    f"Karyotype, {k['split']} split: accuracy before and after assigning each "
                    "cell's chromosomes jointly (46 slots, XX or XY).")]
    cells = k.get("per_cell") or []
    if cells:
        truth = r.dataset_info.karyotypes if r.dataset_info else {}
        worst = sorted(cells, key=lambda c: (c["correct_after"] - c["chromosomes"],
                                             c["correct_before"] - c["chromosomes"], c["cell"]))
        rows = tuple((c["cell"], truth.get(c["cell"], "-"), c.get("call", "-"), str(c["chromosomes"]),
                      str(c["correct_before"]), str(c["correct_after"]))
                     for c in worst[:CELL_ROWS])
        shown = f"the {len(rows)} with the most errors of {len(cells)}" if len(cells) > len(rows) \
            else f"all {len(cells)}"
        blocks.append(Table(("Cell", "Karyotype (dataset)", "Call", "Chromosomes", "Right (argmax)",
                             "Right (per-cell)"), rows,
                            f"Per cell, {k['split']} split ({shown} cells): chromosomes labelled "
                            "right one by one and after the per-cell assignment."))
    if k.get("calls"):
        lines = karyotype.call_lines(k["calls"], k.get("structural", []))
        blocks += [Para(line) for line in lines.splitlines()]
    for rel in k.get("karyograms", [])[:KARYOGRAMS]:
        if (r.dir / rel).is_file():
            blocks.append(Figure(r.dir / rel, f"Karyogram {rel} of {r.name}: the cell's chromosomes "
                                 "upright in the standard layout, assigned class under each; "
                                 "orange: changed by the assignment, red: wrong."))
    return blocks


def _run_section(r: RunView, figdir: Path) -> list:
    from anet.plotting import plot_confusion

    blocks = [Heading(f"{r.name}: {r.model} on {r.dataset}", 3, id=f"run-{safe_name(r.name)}")]
    if not r.eval:
        return blocks + [Para(r.todo or "not evaluated", "todo")]
    ch, acc, ev = r.chosen, r.eval["accuracy"], r.eval
    counts = ev.get("examples", {})
    blocks.append(Para(f"Chosen checkpoint `{ch['name']}` (step {ch['step']}): {ch.get('reason', '')}. "
                       + "; ".join(f"{s} {fmt_acc(acc.get(s))}" + (f" on {counts[s]} images"
                                                                 if s in counts else "")
                                   for s in SPLITS if acc.get(s) is not None) + "."))
    side = []  # the confusion matrix and the per-class table, side by side on a wide page
    if ev.get("confusion") and ev.get("classes"):
        split = ev.get("split", "test")
        path = plot_confusion(ev["confusion"], ev["classes"], figdir / f"confusion-{safe_name(r.name)}.png",
                              title=f"{r.name}: {split} confusion", views=("normalised",))
        side.append(Figure(path, f"Confusion matrix of {r.name} on {split}, each row divided by "
                           "the class's count (recall on the diagonal)."))
    if ev.get("per_class"):
        side.append(_per_class(r))
    if side:
        blocks.append(Group(tuple(side)))
    blocks += _karyotype(r)
    if r.other_evals:
        rows = tuple((name, str(o["dataset"].get("name", "?")), str((o.get("chosen") or {}).get("name", "?")),
                      str(o.get("split", "?")), fmt_acc(o["accuracy"].get("valid")),
                      fmt_acc(o["accuracy"].get("test"))) for name, o in r.other_evals)
        blocks.append(Table(("File", "Dataset", "Checkpoint", "Split", "Valid", "Test"), rows,
                            f"Other evaluations of {r.name} (another dataset with `--set data.dir`, "
                            "or one checkpoint with `--ckpt`; eval.json above is the run's own)."))
    if r.errors_png:
        blocks.append(Figure(r.errors_png, f"Misclassified {ev.get('split', 'test')} images of "
                             f"{r.name} (true / predicted, probability)."))
    return blocks


def _commands(r: RunView) -> str:
    if r.commands:
        return "\n".join(f"# {c.get('time', '?')}  anet {c.get('anet', '?')}  git {c.get('git') or '-'}"
                         + "".join(f"  {k} {c[k]}" for k in ("tensorflow", "keras") if c.get(k))
                         + f"  in {c.get('cwd', '?')}\n" + " ".join(map(_quote, c.get("argv") or []))
                         for c in r.commands)
    cfg = RunPaths(r.dir).config
    return ("# not recorded (run made before commands.jsonl); equivalent commands:\n"
            f"anet train {cfg} --run-dir {r.dir}\nanet evaluate --run-dir {r.dir}")


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def _methods(experiments: list[Experiment]) -> list:
    blocks = [Heading("Methods: commands, configs, data and code", id="methods")]
    for e in experiments:
        for r in e.runs:
            blocks.append(Heading(r.name, 3, id=f"methods-{safe_name(r.name)}"))
            blocks.append(Code(_commands(r), "Commands that produced this run"))
            d = (r.eval or {}).get("dataset") or {}
            m = r.dataset_info
            config_sha = ((r.eval or {}).get("config_sha256") or "-")[:16]
            blocks.append(Para(
                f"Dataset `{r.dataset}` in `{d.get('dir') or '?'}`: dataset.json sha256 "
                f"`{(d.get('sha256') or 'not recorded (not evaluated)')[:16]}`, prepared "
                f"{m.created if m else '?'} from `{m.source if m else '?'}` with split seed "
                f"{m.seed if m else '?'}. Config sha256 `{config_sha}`."
                + (f" Its dataset.json has changed since `anet evaluate` (now sha256 `{m.sha256[:16]}`)."
                   if m and m.sha256 and d.get("sha256") and d["sha256"] != m.sha256 else "")))
            blocks.append(Code(r.config_text or "# no config.yaml and no checkpoint config",
                               f"Resolved config ({RunPaths(r.dir).config})", "config"))
    return blocks


# --------------------------------------------------------------------------- the page


def build(experiments: list[Experiment], figdir: Path, command: str, extra_datasets=()) -> tuple[str, list]:
    """(title, blocks) of the whole report; figures are drawn into ``figdir``.

    Args:
        command: the `anet report` command line that makes this page (shown in its hints).
    """
    runs = [r for e in experiments for r in e.runs]
    done = [r for r in runs if r.eval]
    models = sorted({e.model for e in experiments})
    names = sorted({e.dataset for e in experiments})
    title = f"anet report: {', '.join(models)} on {', '.join(names)}"
    v = code_version()
    blocks = [Para(f"{len(experiments)} experiments, {len(runs)} runs ({len(done)} evaluated). "
                   f"Built {time.strftime('%Y-%m-%d %H:%M %Z')} by anet {v['anet']} "
                   f"(git {v['git'] or '-'}) with `{command}`. Everything below is read from the "
                   "run folders; nothing was trained or evaluated to make it.", "note")]
    blocks += _todo_section(experiments)
    blocks += [Heading("Table 1. Datasets", id="table1-h"), table1(experiments, extra_datasets)]
    gone = sorted({f"`{r.dataset}` ({r.name})" for r in runs if r.dataset_info is None and r.dataset})
    if gone:
        blocks.append(Para("No dataset.json found (folder moved or deleted) for: " + ", ".join(gone)
                           + "; Table 1 has no row for it.", "note"))
    blocks += [Heading("Table 2. Accuracy", id="table2-h")]
    if done:
        blocks += [table2(experiments), per_run_table(experiments)]
    else:
        blocks.append(Para("No run is evaluated yet (see the commands above).", "todo"))
    blocks += _figure3(experiments, figdir)
    blocks += _figure4(experiments, command)
    blocks.append(Heading("Per run: confusion, per-class metrics, errors", id="runs"))
    for r in runs:
        blocks += _run_section(r, figdir)
    blocks += _methods(experiments)
    return title, blocks

