"""Open a finished (or running) run directory: its config, dataset, checkpoints and models.

Shared by ``evaluate``, ``predict``, ``export`` and ``visualize`` so each loads a run the same
way and fails with the same clear messages.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from anet import checkpoints, lock, models, restore, resume
from anet.config import Config, from_dict, load_config
from anet.data.info import DATASET_JSON, DatasetInfo, load_dataset
from anet.errors import AnetError


@dataclass(frozen=True)
class RunPaths:
    """Every file and folder of a run directory, named once (a new file gets a property here)::

        RUN/config.yaml           resolved config (train writes it; every command reads it)
        RUN/checkpoints/          checkpoints and their index (see anet.checkpoints)
        RUN/metrics.jsonl         one row per Algorithm 1 check and per epoch
        RUN/tensorboard/          TensorBoard: train/, valid/, test/ writers, hparams (anet.tboard)
        RUN/curves.png            training curves (train, report)
        RUN/input.json            the input contract (anet.data.contract), written at train start
        RUN/eval.json             anet evaluate's result; confusion.png, errors.png beside it
        RUN/eval-CKPT-SPLIT.json  a partial `anet evaluate --ckpt` (never replaces eval.json);
                                  eval-CKPT-SPLIT-confusion.png, -errors.png beside it
        RUN/eval-NAME.json        evaluate on another dataset NAME (-CKPT-SPLIT with --ckpt);
                                  eval-NAME-confusion.png, -errors.png beside it
        RUN/commands.jsonl        every train/evaluate command line run on it, with code versions
        RUN/visualize/            anet visualize's default output folder
        RUN/karyograms/           anet evaluate --karyograms N: DATASET-SPLIT-CELL.png per cell
        RUN/.anet.lock            held while anet train runs (see anet.lock)
        RUN/.cache-PID/           a command's decoded validation split when it is too large for
                                  memory (anet.data.cache; removed when the command ends)
        RUN/train.log             train-many's log of one run
        RUN/worker-N/             a non-chief worker's own run folder (multi-worker training)
        RUN/seed-N/               one seed's run of `anet train --seeds` (the folder is then one
                                  experiment: evaluate and report take it as a whole)
    """

    dir: Path

    def __post_init__(self):
        object.__setattr__(self, "dir", Path(self.dir))

    @property
    def config(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def checkpoint_index(self) -> Path:
        return self.checkpoints / checkpoints.INDEX

    @property
    def metrics(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.dir / "tensorboard"

    @property
    def curves(self) -> Path:
        return self.dir / "curves.png"

    @property
    def input(self) -> Path:
        return self.dir / "input.json"

    @property
    def cache(self) -> Path:
        """This process's cache folder (anet.data.cache)."""
        return self.dir / f".cache-{os.getpid()}"

    @property
    def eval(self) -> Path:
        return self.dir / "eval.json"

    @property
    def confusion(self) -> Path:
        return self.dir / "confusion.png"

    @property
    def errors(self) -> Path:
        return self.dir / "errors.png"

    def partial_eval(self, ckpt: str, split: str) -> tuple[Path, Path, Path]:
        """(json, confusion plot, error gallery) of ``anet evaluate --ckpt CKPT --split SPLIT``."""
        stem = f"eval-{ckpt}-{split}"
        return (self.dir / f"{stem}.json", self.dir / f"{stem}-confusion.png",
                self.dir / f"{stem}-errors.png")

    @property
    def commands(self) -> Path:
        return self.dir / "commands.jsonl"

    def other_eval(self, dataset: str, ckpt: str = "", split: str = "") -> tuple[Path, Path, Path]:
        """(json, confusion plot, error gallery) of ``anet evaluate`` on another dataset (named
        ``dataset``; with ``--ckpt`` also the checkpoint and split): never the run's own files."""
        stem = "-".join(p for p in ("eval", dataset, ckpt, split) if p)
        return (self.dir / f"{stem}.json", self.dir / f"{stem}-confusion.png",
                self.dir / f"{stem}-errors.png")

    @property
    def visualize(self) -> Path:
        return self.dir / "visualize"

    def karyogram(self, dataset: str, split: str, cell: str) -> Path:
        """One cell's karyogram; ``dataset`` (a file-safe name) keeps other datasets' apart."""
        return self.dir / "karyograms" / f"{dataset}-{split}-{cell}.png"

    @property
    def lock(self) -> Path:
        return self.dir / lock.LOCK

    @property
    def train_log(self) -> Path:
        return self.dir / "train.log"

    def worker(self, index: int) -> RunPaths:
        return RunPaths(self.dir / f"worker-{index}")

    def seed(self, seed: int) -> RunPaths:
        return RunPaths(self.dir / f"{SEED_PREFIX}{seed}")

    def seed_runs(self) -> list[Path]:
        """The ``seed-N`` run folders inside this folder, by N (empty: not a seeds folder)."""
        if not self.dir.is_dir():
            return []
        found = [(int(m.group(1)), d) for d in self.dir.iterdir()
                 if d.is_dir() and (m := SEED_RUN.fullmatch(d.name))]
        return [d for _, d in sorted(found)]


SEED_PREFIX = "seed-"
SEED_RUN = re.compile(r"seed-(\d+)")


def parse_seeds(text: str) -> tuple[int, ...]:
    """``--seeds 0,1,2`` (or ``0-4``) -> (0, 1, 2); a clear AnetError otherwise."""
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",")):
            lo, _, hi = part.partition("-")
            seeds += range(int(lo), int(hi) + 1) if hi else [int(lo)]
    except ValueError:
        raise AnetError(f"--seeds {text!r}: expected seeds like 0,1,2 or 0-4") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise AnetError(f"--seeds {text!r}: give distinct seeds >= 0, e.g. 0,1,2")
    return tuple(seeds)


@dataclass(frozen=True)
class Run:
    dir: Path
    cfg: Config
    ckpts: tuple[checkpoints.CheckpointState, ...]  # oldest first

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.dir)

    @cached_property
    def dataset(self) -> DatasetInfo:
        """The run's dataset.json (read once)."""
        if not (Path(self.cfg.data.dir) / DATASET_JSON).is_file():
            raise AnetError(
                f"{self.dir}: its dataset {self.cfg.data.dir} is gone (no {DATASET_JSON}); "
                "re-run `anet prepare` to the same folder or pass --set data.dir=NEW"
            )
        return load_dataset(self.cfg.data.dir)

    @cached_property
    def contract(self):
        """The run's input contract (``RunPaths.input``, written at train start); runs made
        before it existed derive it from their config and dataset."""
        from anet.data import contract

        stored = contract.load(self.paths.input)
        return stored or contract.from_dataset(self.cfg.data, self.dataset)

    def checkpoint(self, name: str) -> checkpoints.CheckpointState:
        for c in self.ckpts:
            if c.name == name or str(c.step) == name:
                return c
        names = ", ".join(c.name for c in self.ckpts)
        folder = self.paths.checkpoints / name
        if name.startswith(checkpoints.PREFIX) and folder.is_dir():
            raise AnetError(f"{folder}: checkpoint is damaged ({restore.damaged(folder)}); "
                            f"pick another with --ckpt (have: {names})")
        raise AnetError(f"{self.dir}: no checkpoint {name!r} (have: {names})")


def default_run_dir(cfg: Config) -> Path:
    """``run.dir``, else ``runs/<config name>``."""
    return Path(cfg.run.dir or f"runs/{cfg.name}")


def latest_run(root: str | Path = "runs") -> Path:
    """The most recently modified run directory under ``root`` (one holding checkpoints/)."""
    root = Path(root)
    runs = [RunPaths(p) for p in root.iterdir() if RunPaths(p).checkpoint_index.is_file()] \
        if root.is_dir() else []
    if not runs:
        raise AnetError(f"no runs under {root}/; train one with `anet train CONFIG` or pass --run-dir")
    return max(runs, key=lambda p: p.checkpoint_index.stat().st_mtime).dir


def pick_run(run_dir: str | Path | None, root: str | Path = "runs") -> Path:
    """``run_dir`` when given; else the most recent run under ``root``, named on stderr so the
    user sees which model answers (it may have been trained on other data)."""
    if run_dir is not None:
        return Path(run_dir)
    picked = latest_run(root)
    print(f"using run {picked} (the most recently trained under {root}/; pass --run-dir to "
          "choose)", file=sys.stderr)
    return picked


def open_run(run_dir: str | Path, overrides=()) -> Run:
    """Read ``run_dir/config.yaml`` and its checkpoints; clear errors when either is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise AnetError(f"{run_dir}: no such run directory")
    paths = RunPaths(run_dir)
    cfg_path = paths.config
    ckpts = tuple(checkpoints.list_checkpoints(paths.checkpoints))
    if not ckpts:
        raise AnetError(f"{run_dir}: no checkpoints in {paths.checkpoints}; train first")
    cfg = load_config(cfg_path, overrides) if cfg_path.is_file() else from_dict(ckpts[-1].config)
    cfg, old_bn = resume.bn_as_built(cfg, ckpts[-1].config, run_dir)  # an old AlexNet/ANet-c6
    if old_bn:
        print(old_bn, file=sys.stderr)
    return Run(dir=run_dir, cfg=cfg, ckpts=ckpts)


def check_fits(run: Run, ckpt: checkpoints.CheckpointState, num_classes: int) -> None:
    """A checkpoint of another model or class count is a clear error, before any weights load."""
    want = (ckpt.model, ckpt.num_classes)
    have = (run.cfg.model.name, num_classes)
    if want != have:
        raise AnetError(f"{ckpt.path}: checkpoint is {want[0]} with {want[1]} classes but the "
                        f"run's config/dataset say {have[0]} with {have[1]}")


def build_model(run: Run, ckpt: checkpoints.CheckpointState | None = None):
    """The run's Keras model, with a checkpoint's weights when given (float32 for inference)."""
    import keras  # here: opening a run (report, tables) never loads TensorFlow

    keras.mixed_precision.set_dtype_policy("float32")
    spec = run.contract
    if ckpt is not None:
        check_fits(run, ckpt, len(spec.classes))
    model = models.build_from_config(run.cfg.model, spec.image_size, spec.channels,
                                     len(spec.classes))
    if ckpt is not None:
        restore.load_weights(ckpt.path, model)
    return model


def eval_result(run: Run) -> dict:
    """The run's ``eval.json`` (evaluate's selection), read defensively: {} when missing,
    unreadable or foreign."""

    try:
        data = json.loads(run.paths.eval.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def newer_than_eval(ev: dict, ckpts, eval_file: Path) -> list[checkpoints.CheckpointState]:
    """The checkpoints that ``eval.json`` (``ev``, read from ``eval_file``) did not see: newer
    than every checkpoint it scored and not among them. A damaged one it listed counts as
    seen unless it was saved again after the evaluation. An ``eval.json`` without the list
    (older anet) is compared by time: checkpoints saved after it was written."""
    scored = [c for c in ev.get("checkpoints") or [] if isinstance(c, dict)]
    steps = [c["step"] for c in scored if isinstance(c.get("step"), int)]
    try:
        written = eval_file.stat().st_mtime
    except OSError:
        return []

    def saved(c) -> float:
        return c.time if c.time is not None else (c.path / checkpoints.STATE).stat().st_mtime

    if not steps:
        return [c for c in ckpts if saved(c) > written]
    names = {c.get("name") for c in scored}
    damaged = {d.get("name") for d in ev.get("damaged") or [] if isinstance(d, dict)}
    return [c for c in ckpts if c.step > max(steps) and c.name not in names
            and not (c.name in damaged and saved(c) <= written)]


def warn_if_stale(run_dir: str | Path, ev: dict, ckpts=None) -> bool:
    """One stderr line when ``run_dir`` has checkpoints newer than its ``eval.json`` scored
    (training went on after `anet evaluate`), naming them and the command to re-run."""
    paths = RunPaths(run_dir)
    if ckpts is None:
        ckpts = checkpoints.list_checkpoints(paths.checkpoints)
    newer = newer_than_eval(ev, ckpts, paths.eval)
    if not newer:
        return False
    names = ", ".join(c.name for c in newer[:3]) + (f" and {len(newer) - 3} more"
                                                      if len(newer) > 3 else "")
    print(f"warning: {paths.eval} is stale: {len(newer)} checkpoint(s) newer than those it "
          f"scored ({names}); re-run `anet evaluate --run-dir {paths.dir}`", file=sys.stderr)
    return True


def _eval_choice(run: Run) -> str | None:
    """The checkpoint name that ``anet evaluate`` chose (``eval.json``'s ``chosen.name``)."""
    chosen = eval_result(run).get("chosen")
    name = chosen.get("name") if isinstance(chosen, dict) else None
    return Path(str(name)).name if name else None


def choose_checkpoint(run: Run, name: str | None = None) -> tuple[checkpoints.CheckpointState, str]:
    """The checkpoint to use and why: ``name``; else the one ``anet evaluate`` chose (with
    :func:`warn_if_stale`); else the best validation accuracy recorded in training
    (``checkpoints.select_best``); else the latest."""
    if name:
        return run.checkpoint(name), "given with --ckpt"
    chosen = _eval_choice(run)
    if chosen:
        for c in run.ckpts:
            if c.name == chosen:  # an evaluation that training may have overtaken since
                warn_if_stale(run.dir, eval_result(run), run.ckpts)
                return c, "chosen by `anet evaluate`"
        print(f"notice: {run.paths.eval} names {chosen}, which is gone; ignoring it", file=sys.stderr)
    scored = [c for c in run.ckpts if c.valid_acc is not None]
    if scored:
        best, _ = checkpoints.select_best(scored, lambda c: c.valid_acc, lambda c: c.step)
        return best, f"recorded during training: best valid accuracy {best.valid_acc:.4f}"
    return run.ckpts[-1], "latest (no validation accuracy recorded)"


def open_chosen(run_dir: str | Path, ckpt: str | None = None, overrides=()):
    """(run, checkpoint state, why it was chosen, model with its weights) for a run directory.

    The chosen checkpoint is read once (anet.restore: that read finds a damaged one); a
    damaged one is skipped with a notice and the next choice tried, unless named with ``ckpt``.
    """
    run = open_run(run_dir, overrides)
    model = None
    while True:
        chosen, why = choose_checkpoint(run, ckpt)
        check_fits(run, chosen, len(run.contract.classes))
        if model is None:  # built once, whichever checkpoint loads
            model = build_model(run)
        try:
            restore.load_weights(chosen.path, model)
            return run, chosen, why, model
        except restore.Damaged as e:
            if ckpt:  # chosen explicitly: an error, not a silent substitute
                raise
            print(restore.skip_notice(chosen.path, e.reason), file=sys.stderr)
        rest = tuple(c for c in run.ckpts if c is not chosen)
        if not rest:
            raise AnetError(f"{run.dir}: every checkpoint is damaged; train again")
        run = dataclasses.replace(run, ckpts=rest)
