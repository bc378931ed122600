"""What `anet report --html/--md` reads from run folders: typed records, grouped into experiments.

Reads only what the runs hold (config.yaml, metrics.jsonl, checkpoints, eval.json, commands.jsonl,
the PNGs evaluate and visualize wrote) and never trains or evaluates. No TensorFlow is loaded.
A run that is not evaluated yet is kept, with the command that would complete it.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from anet import checkpoints
from anet.data.info import DatasetInfo, load_dataset
from anet.errors import AnetError
from anet.report import load_eval, run_name
from anet.runlog import read_commands, read_metrics
from anet.runs import SEED_RUN, RunPaths


@dataclass(frozen=True)
class RunView:
    """One run folder as the report sees it."""

    dir: Path
    name: str  # shown on the page: the folder name, ``PARENT/seed-N`` for a seed run
    model: str | None  # None when neither eval.json nor the config says
    dataset: str | None
    seed: int | None
    eval: dict | None  # eval.json, None until `anet evaluate` ran
    todo: str | None  # why it is not in Table 2 and the command that completes it
    config_text: str | None  # the resolved config.yaml
    metrics: tuple  # metrics.jsonl rows
    ckpts: tuple[checkpoints.CheckpointState, ...]  # oldest first
    commands: tuple  # commands.jsonl rows (empty for runs made before it existed)
    dataset_info: DatasetInfo | None  # dataset.json of the run's data folder (None if gone)
    errors_png: Path | None  # evaluate's gallery of misclassified images
    other_evals: tuple  # (file name, dict) of eval-*.json: other datasets, --ckpt partial runs
    figure4: tuple  # PNGs of `anet visualize --compare` (else the single-run overviews)

    @property
    def chosen(self) -> dict | None:
        return self.eval.get("chosen") if self.eval else None


@dataclass(frozen=True)
class Experiment:
    """One model x dataset setting: a single run, or the seed runs of one ``--seeds`` folder."""

    label: str
    model: str
    dataset: str
    runs: tuple  # RunView, seed order

    @property
    def evaluated(self) -> tuple:
        return tuple(r for r in self.runs if r.eval)


# --------------------------------------------------------------------------- grouping


def expand_seed_runs(paths) -> list[tuple[str, list[Path]]]:
    """(label, run folders) per experiment: a folder holding ``seed-N`` folders is one experiment
    of all of them; ``X/seed-N`` folders given one by one join their parent's group; any other
    folder is its own experiment; files are skipped with a notice. Order follows the arguments."""
    groups: dict[str, list[Path]] = {}
    for p in map(Path, paths):
        if p.is_file():  # e.g. runs/* also matching a report written there: not a run
            print(f"notice: skipping {p}: a file, not a run folder", file=sys.stderr)
            continue
        if not p.is_dir():
            raise AnetError(f"{p}: no such run directory")
        seeds = RunPaths(p).seed_runs()
        if seeds:
            groups.setdefault(str(p), []).extend(seeds)
        elif SEED_RUN.fullmatch(p.name):
            groups.setdefault(str(p.parent), []).append(p)
        else:
            groups.setdefault(str(p), []).append(p)
    return [(Path(k).name, list(dict.fromkeys(v))) for k, v in groups.items()]


# --------------------------------------------------------------------------- reading one run


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def read_json(path: Path) -> dict | None:
    """A JSON object from ``path``, or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _config(run_dir: Path, ckpts: list) -> tuple[str | None, dict]:
    """The resolved config as text and as a dict (config.yaml, else the last checkpoint's)."""
    text = _text(RunPaths(run_dir).config)
    if text is None and ckpts:
        text = yaml.safe_dump(ckpts[-1].config, sort_keys=False)
    try:
        raw = yaml.safe_load(text) if text else {}
    except yaml.YAMLError:
        raw = {}
    return text, raw if isinstance(raw, dict) else {}


def _todo(run_dir: Path, ckpts: list, has_config: bool) -> str:
    if not ckpts:
        cfg = RunPaths(run_dir).config if has_config else "CONFIG"
        return (f"not trained: `anet train {cfg} --run-dir {run_dir}`, "
                f"then `anet evaluate --run-dir {run_dir}`")
    return f"not evaluated: `anet evaluate --run-dir {run_dir}`"


def _figure4(run_dir: Path) -> tuple:
    """`anet visualize` output in its default folder: compare figures, else sample overviews."""
    folder = RunPaths(run_dir).visualize
    compare = sorted((folder / "compare").glob("compare-*.png"))
    return tuple(compare or sorted(folder.glob("*/overview.png")))


def _other_evals(run_dir: Path) -> tuple:
    """eval-*.json beside eval.json (another dataset, or a partial --ckpt evaluation)."""
    out = []
    for path in sorted(run_dir.glob("eval-*.json")):
        data = read_json(path)
        if data and isinstance(data.get("accuracy"), dict) and isinstance(data.get("dataset"), dict):
            out.append((path.name, data))
    return tuple(out)


def read_run(run_dir: Path, name: str | None = None) -> RunView:
    """Everything the page shows about one run folder."""
    paths = RunPaths(run_dir)
    ev, todo = None, None
    try:
        ckpts = checkpoints.list_checkpoints(paths.checkpoints)
    except AnetError as e:  # a checkpoint of another anet version: listed with why, not fatal
        ckpts, todo = [], str(e)
    config_text, raw = _config(run_dir, ckpts)
    if paths.eval.is_file() and todo is None:
        try:
            ev = load_eval(run_dir)
        except AnetError as e:  # a corrupt eval.json: listed with its fix, not dropped
            todo = str(e)
    if ev is None and todo is None:
        todo = _todo(run_dir, ckpts, config_text is not None)
    data_dir = (ev or {}).get("dataset", {}).get("dir") or raw.get("data", {}).get("dir")
    try:
        info = load_dataset(data_dir) if data_dir else None
    except AnetError:
        info = None
    seed = SEED_RUN.fullmatch(run_dir.name)
    errors_png = paths.errors
    return RunView(
        dir=run_dir, name=name or run_dir.name,
        model=(ev or {}).get("model") or raw.get("model", {}).get("name"),
        dataset=(ev or {}).get("dataset", {}).get("name") or (info.name if info else None)
        or (Path(data_dir).name if data_dir else None),
        seed=int(seed.group(1)) if seed else raw.get("run", {}).get("seed"),
        eval=ev, todo=todo, config_text=config_text, metrics=tuple(read_metrics(run_dir)),
        ckpts=tuple(ckpts),
        commands=tuple(read_commands(run_dir)), dataset_info=info,
        errors_png=errors_png if ev and errors_png.is_file() else None,
        other_evals=_other_evals(run_dir),
        figure4=_figure4(run_dir))


def collect(paths) -> list[Experiment]:
    """The experiments of ``paths`` (run folders or ``--seeds`` parents), in argument order."""
    if not paths:
        raise AnetError("nothing to report; pass run directories")
    out = []
    for label, dirs in expand_seed_runs(paths):
        views = [read_run(d, run_name(d)) for d in dirs]
        # runs of one folder on different models/datasets (a mislabelled group) stay apart
        for key in dict.fromkeys((v.model or "?", v.dataset or "?") for v in views):
            members = tuple(v for v in views if (v.model or "?", v.dataset or "?") == key)
            out.append(Experiment(label=label, model=key[0], dataset=key[1], runs=members))
    if not out:
        raise AnetError("no run folders among the arguments; pass run directories")
    return out


# --------------------------------------------------------------------------- numbers


def mean_std(values) -> tuple[float | None, float | None, int]:
    """(mean, sample standard deviation, n) of the numbers in ``values`` (None skipped);
    std is None below two values."""
    xs = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    n = len(xs)
    if not n:
        return None, None, 0
    mean = sum(xs) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else None
    return mean, std, n


def fmt_mean_std(values, digits: int = 4) -> str:
    """``0.9123 ± 0.0040`` (or one value, or ``-``)."""
    mean, std, n = mean_std(values)
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def datasets(experiments) -> list[DatasetInfo]:
    """The dataset.json of every dataset the runs used (first seen first, one per name)."""
    seen: dict[str, DatasetInfo] = {}
    for e in experiments:
        for r in e.runs:
            if r.dataset_info and r.dataset_info.name not in seen:
                seen[r.dataset_info.name] = r.dataset_info
    return list(seen.values())
