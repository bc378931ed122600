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


def plot_curves(run_dir: str | Path) -> Path | None:
    """Training vs validation accuracy over steps with checkpoint markers -> ``curves.png``.

    Returns the path, or None when the run has logged nothing yet.
    """
    plt = pyplot()
    paths = RunPaths(run_dir)
    run_dir = paths.dir
    rows = read_metrics(run_dir)
    if not rows:
        return None
    ckpts = checkpoints.list_checkpoints(paths.checkpoints)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    draw_curves(ax, rows, ckpts)
    ax.set_title(f"{run_dir.name}: accuracy ({len(ckpts)} checkpoints)")
    fig.tight_layout()
    return save_figure(fig, paths.curves)


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


def table2(evals: list, as_csv: bool = False) -> str:
    """The paper's Table 2: a row per model, train/valid/test accuracy per dataset.

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
        rows.setdefault(label, {})[pair[1]] = [e["accuracy"] for e in g]
    header = ["Model"] + [f"{d} {s}" for d in datasets for s in SPLITS]
    body = [[label] + [_cell([a.get(s) for a in accs.get(d, [])]) for d in datasets
                       for s in SPLITS] for label, accs in rows.items()]
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
