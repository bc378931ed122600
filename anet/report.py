"""Plots and tables of runs: the training curves (the paper's Figure 3), Table 1 and Table 2."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from anet import checkpoints
from anet.data.info import DatasetInfo, load_dataset
from anet.data.splits import SPLITS
from anet.errors import AnetError
from anet.plotting import pyplot, save_figure
from anet.runlog import read_metrics
from anet.runs import RunPaths, warn_if_stale


def lr_changes(rows) -> list[tuple[int, float, float]]:
    """(step, old lr, new lr) wherever the learning rate changed, from metrics.jsonl rows
    (each check row has the ``lr`` it trained with and the ``next_lr`` it set)."""
    out, last = [], None
    for r in rows:
        for key in ("lr", "next_lr"):
            lr = r.get(key)
            if isinstance(lr, (int, float)) and not isinstance(lr, bool):
                if last is not None and not math.isclose(lr, last, rel_tol=1e-9):
                    out.append((int(r.get("step", 0)), last, float(lr)))
                last = float(lr)
    return out


def draw_curves(ax, rows: list[dict], ckpts: list[checkpoints.CheckpointState],
                chosen_step: int | None = None, scores: dict | None = None,
                legend: bool = True) -> None:
    """Figure 3 on one axis: training and validation accuracy over steps, saved checkpoints
    (dotted lines; circles at the valid accuracy ``anet evaluate`` measured, ``scores``: step ->
    accuracy), learning-rate changes (dashed, labelled) and the chosen checkpoint (star)."""
    checks = [r for r in rows if r.get("kind") == "check" and "train_acc" in r]
    valid = [r for r in rows if "valid_acc" in r]
    ax.plot([r["step"] for r in checks], [r["train_acc"] for r in checks],
            color="#8fd18f", label="training (mean since last check)")
    ax.plot([r["step"] for r in valid], [r["valid_acc"] for r in valid],
            color="#1b6e1b", marker=".", label="validation")
    for i, c in enumerate(ckpts):
        ax.axvline(c.step, color="#555555", alpha=0.6, lw=0.9, ls=":",
                   label="saved checkpoint" if i == 0 else None)
    if scores:
        ax.plot(list(scores), list(scores.values()), ls="none", marker="o", mfc="white",
                mec="#1b6e1b", ms=6, label="checkpoint, valid acc (evaluate)", zorder=4)
    for i, (step, _, new) in enumerate(lr_changes(rows)):
        ax.axvline(step, color="#c0392b", alpha=0.6, lw=0.9, ls="--",
                   label="learning-rate change" if i == 0 else None)
        ax.annotate(f"lr {new:g}", (step, 0.02), rotation=90, fontsize=7, color="#c0392b",
                    xytext=(2, 0), textcoords="offset points", va="bottom")
    if chosen_step is not None and (scores or {}).get(chosen_step) is not None:
        ax.plot([chosen_step], [scores[chosen_step]], marker="*", ms=16, color="#e67e22",
                mec="black", ls="none", label="chosen checkpoint", zorder=5)
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(loc="lower right", fontsize=8)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def draw_loss(ax, rows: list[dict]) -> None:
    """Training loss (mean since the last check) and validation loss over steps."""
    checks = [r for r in rows if r.get("kind") == "check" and _number(r.get("train_loss"))]
    valid = [r for r in rows if _number(r.get("valid_loss"))]
    ax.plot([r["step"] for r in checks], [r["train_loss"] for r in checks], color="#f0a35e",
            label="training loss (mean since last check)")
    ax.plot([r["step"] for r in valid], [r["valid_loss"] for r in valid], color="#a04000",
            marker=".", label="validation loss")
    ax.set_ylabel("loss")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


def draw_lr(ax, rows: list[dict]) -> None:
    """The learning rate each logged step trained with (a step line: constant between logged
    steps, as under Algorithm 1; a log axis when it spans more than a factor of 10)."""
    points = sorted({int(r["step"]): float(r["lr"]) for r in rows
                     if _number(r.get("lr")) and _number(r.get("step"))}.items())
    ax.plot([p[0] for p in points], [p[1] for p in points], color="#c0392b",
            drawstyle="steps-pre", marker=".", ms=3, label="learning rate")
    lrs = [p[1] for p in points if p[1] > 0]
    if lrs and max(lrs) / min(lrs) > 10:
        ax.set_yscale("log")
    ax.set_ylabel("learning rate")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)


def plot_curves(run_dir: str | Path) -> Path | None:
    """``curves.png``: three panels over one step axis: accuracy (training and validation, saved
    checkpoints, learning-rate changes), loss (training and validation) and the learning rate,
    each legend outside its curves.

    Returns the path, or None when the run has logged nothing yet.
    """
    plt = pyplot()
    paths = RunPaths(run_dir)
    run_dir = paths.dir
    rows = read_metrics(run_dir)
    if not rows:
        return None
    ckpts = checkpoints.list_checkpoints(paths.checkpoints)
    fig, (acc, loss, lr) = plt.subplots(3, 1, figsize=(10, 8), dpi=100, sharex=True,
                                        gridspec_kw={"height_ratios": (3, 2, 1.3)})
    draw_curves(acc, rows, ckpts, legend=False)
    acc.set_xlabel("")
    draw_loss(loss, rows)
    draw_lr(lr, rows)
    for ax in (acc, loss, lr):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    acc.set_title(f"{run_dir.name}: accuracy, loss and learning rate ({len(ckpts)} checkpoints)")
    fig.tight_layout()
    return save_figure(fig, paths.curves, bbox_inches="tight")  # keep the outside legends


def plot_figure3(panels: list[tuple], title: str, path: Path, cols: int = 3) -> Path:
    """Figure 3 for one model x dataset: one panel per run (seed), each drawn by
    :func:`draw_curves`, one legend below. ``panels``: (panel title, metrics rows, checkpoints,
    chosen step, evaluated scores)."""
    plt = pyplot()
    cols = max(1, min(cols, len(panels)))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.4 * cols if cols > 1 else 8, 3.4 * nrows + 1.1),
                             dpi=100, squeeze=False, sharey=True)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    labels = {}
    for ax, (name, rows, ckpts, chosen, scores) in zip(axes.flat, panels):
        draw_curves(ax, rows, ckpts, chosen, scores, legend=False)
        ax.set_title(f"{name} ({len(ckpts)} checkpoints)", fontsize=9)
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labels.setdefault(label, handle)
    fig.suptitle(title, fontsize=11)
    fig.legend(labels.values(), labels.keys(), loc="lower center", ncol=min(len(labels), 3),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.55 / (3.4 * nrows + 1.1), 1, 1))  # room for the legend
    return save_figure(fig, path)


# --------------------------------------------------------------------------- tables



def load_eval(run_dir: str | Path) -> dict:
    """A run's ``eval.json``; a clear error when the run has not been evaluated."""
    path = RunPaths(run_dir).eval
    if not Path(run_dir).is_dir():
        raise AnetError(f"{run_dir}: no such run directory")
    if not path.is_file():
        raise AnetError(f"{run_dir}: no {path.name}; run `anet evaluate --run-dir {run_dir}` first")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise AnetError(f"{path}: not valid JSON ({e}); re-run `anet evaluate --run-dir {run_dir}`") \
            from None
    # table2 reads these keys; a foreign or truncated eval.json must not end in a KeyError.
    fields = data if isinstance(data, dict) else {}
    if not (isinstance(fields.get("dataset"), dict) and "name" in fields["dataset"]
            and isinstance(fields.get("accuracy"), dict) and {"run", "model"} <= fields.keys()):
        raise AnetError(f"{path}: not an anet eval.json (needs run, model, dataset.name, accuracy); "
                        f"re-run `anet evaluate --run-dir {run_dir}`")
    warn_if_stale(run_dir, data)
    return data


def render(header: list, rows: list[list], as_csv: bool = False) -> str:
    """A table as GitHub markdown (default) or CSV."""
    if as_csv:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def fmt_num(v, digits: int = 4, missing: str = "-") -> str:
    """The one number format of tables: ``digits`` decimals, ``missing`` for no number."""
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else missing


def fmt_acc(v) -> str:
    """An accuracy in a table: 4 decimals, ``-`` when missing."""
    return fmt_num(v, 4)


def metric_cells(result: dict, split: str) -> tuple[str, str]:
    """(top-5 accuracy, macro-F1) of an eval.json dict on ``split`` as table cells: 4 decimals,
    ``n/a`` for top-5 with 5 classes or fewer, ``-`` where not measured (or an older eval.json)."""
    top5 = result.get("top5_accuracy", {})
    top5 = "n/a" if top5 is None else fmt_acc((top5 or {}).get(split))
    return top5, fmt_acc((result.get("macro_f1") or {}).get(split))


def run_name(run: str | Path) -> str:
    """A run's short name: its folder, ``PARENT/seed-N`` for one seed of a ``--seeds`` folder."""
    from anet.runs import SEED_RUN

    p = Path(run)
    return f"{p.parent.name}/{p.name}" if SEED_RUN.fullmatch(p.name) else p.name


def _cell(values: list) -> str:
    """One accuracy, or ``mean ± std (n=N)`` over an experiment's seeds."""
    from anet.report_data import fmt_mean_std, mean_std

    n = mean_std(values)[2]
    return fmt_mean_std(values) + (f" (n={n})" if n > 1 else "") if n else "-"


# Table 2's columns per dataset: (eval.json key, split) and their names.
TABLE2_COLUMNS = tuple(("accuracy", s) for s in SPLITS) + (
    ("top5_accuracy", "valid"), ("top5_accuracy", "test"), ("macro_f1", "valid"), ("macro_f1", "test"))
TABLE2_NAMES = SPLITS + ("top-5 valid", "top-5 test", "macro-F1 valid", "macro-F1 test")


def table2_cells(evals: list[dict], cell=None) -> list[str]:
    """One experiment's Table 2 cells on one dataset (:data:`TABLE2_COLUMNS`): ``cell`` of the
    values over its evaluated runs (default: one value, or mean ± std (n=N) over seeds); top-5 is
    ``n/a`` where every run has 5 classes or fewer."""
    cell = cell or _cell
    out = []
    for key, split in TABLE2_COLUMNS:
        if key == "top5_accuracy" and evals and all(
                key in e and e[key] is None for e in evals):
            out.append("n/a")
        else:
            out.append(cell([(e.get(key) or {}).get(split) for e in evals]))
    return out


def table2(evals: list, as_csv: bool = False) -> str:
    """The paper's Table 2: a row per model, train/valid/test accuracy per dataset, then top-5
    accuracy and macro-F1 on valid and test (eval.json's ``top5_accuracy``, ``macro_f1``).

    Args:
        evals: eval.json dicts (with ``run``, ``model``, ``dataset.name``, ``accuracy``), or
            lists of them: one experiment's seed runs, shown as ``mean ± std (n=N)``.
    """
    groups = [e if isinstance(e, list) else [e] for e in evals]
    datasets = list(dict.fromkeys(g[0]["dataset"]["name"] for g in groups))
    pairs = [(g[0]["model"], g[0]["dataset"]["name"]) for g in groups]
    rows: dict[str, dict] = {}
    for g, pair in zip(groups, pairs):
        name = run_name(g[0]["run"]) if len(g) == 1 else Path(g[0]["run"]).parent.name
        label = pair[0] if pairs.count(pair) == 1 else f"{pair[0]} ({name})"
        rows.setdefault(label, {})[pair[1]] = table2_cells(g)
    header = ["Model"] + [f"{d} {s}" for d in datasets for s in TABLE2_NAMES]
    body = [[label] + [c for d in datasets for c in cells.get(d, ["-"] * len(TABLE2_NAMES))]
            for label, cells in rows.items()]
    return render(header, body, as_csv)


def experiment_evals(runs, per_seed: bool = False) -> list:
    """eval.json dicts of ``runs`` for :func:`table2`: a folder of ``seed-N`` runs (``anet
    train --seeds``) is one experiment (a list), or one entry per seed with ``per_seed``."""
    from anet.report_data import expand_seed_runs

    out: list = []
    for _, dirs in expand_seed_runs(runs):
        evals = [load_eval(d) for d in dirs]
        seeded = any(d.name.startswith("seed-") for d in dirs)
        out += evals if per_seed or not seeded else [evals]
    return out


def _size(size: dict) -> str:
    lo, hi = size.get("min"), size.get("max")
    if not lo:
        return "-"
    return f"{lo[0]}x{lo[1]}" if lo == hi else f"{lo[0]}x{lo[1]} .. {hi[0]}x{hi[1]}"


def table1_rows(infos: list[DatasetInfo]) -> tuple[list[str], list[list]]:
    """(header, rows) of the paper's Table 1: a row per dataset with its totals and image size."""
    header = ["Dataset", "Total", "Train", "Valid", "Test", "Size"]
    body = [[d.name] + [d.totals.get(k, "-") for k in ("total", "train", "valid", "test")]
            + [_size(d.size)] for d in infos]
    return header, body


def table1(infos: list[DatasetInfo], as_csv: bool = False) -> str:
    """The paper's Table 1: a row per dataset with its total, split sizes and image size."""
    return render(*table1_rows(infos), as_csv)


def report(runs=(), datasets=(), as_csv: bool = False, per_seed: bool = False) -> str:
    """Table 1 for ``datasets`` (prepared folders) and Table 2 for ``runs`` (evaluated runs;
    a ``--seeds`` folder is one row of mean ± std, or a row per seed with ``per_seed``)."""
    if not runs and not datasets:
        raise AnetError("nothing to report; pass run directories and/or --dataset data/NAME")
    parts = []
    if datasets:
        parts.append(table1([load_dataset(d) for d in datasets], as_csv))
    if runs:
        parts.append(table2(experiment_evals(runs, per_seed), as_csv))
    return "\n\n".join(parts)
