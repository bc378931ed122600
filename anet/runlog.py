"""What a run writes while it trains: metrics.jsonl, TensorBoard scalars, commands.jsonl."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from anet import tboard
from anet.files import atomic_write
from anet.runs import RunPaths


def code_version() -> dict:
    """anet's version and, when it runs from a git checkout, the commit (``+dirty`` if edited)."""
    import anet

    out = {"anet": anet.__version__, "git": None, "python": platform.python_version()}
    here = Path(anet.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        if commit:
            dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            out["git"] = commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    for lib in ("tensorflow", "keras"):  # recorded only where the command already loaded them
        if lib in sys.modules:
            out[lib] = getattr(sys.modules[lib], "__version__", None)
    return out


def record_command(run_dir: str | Path, argv: list[str] | None = None) -> dict:
    """Append the command line now running (``anet ...``), the time and code versions to
    ``RUN/commands.jsonl``, so `anet report --html` can say exactly what produced the run."""
    argv = list(sys.argv if argv is None else argv)
    if argv:
        argv[0] = Path(argv[0]).name  # .venv/bin/anet -> anet
    row = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": argv, "cwd": str(Path.cwd()),
           **code_version()}
    with open(RunPaths(run_dir).commands, "a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def read_commands(run_dir: str | Path) -> list[dict]:
    """Rows of ``RUN/commands.jsonl`` (none for runs made before it existed; torn lines skipped)."""
    path = RunPaths(run_dir).commands
    rows = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _ends_clean(path: Path) -> bool:
    """False when the last line was torn by a kill (appending to it would glue two rows)."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return True
        f.seek(-1, 2)
        return f.read(1) == b"\n"


def read_metrics(run_dir: str | Path) -> list[dict]:
    """All rows of a run's ``metrics.jsonl`` (a torn last line from a kill is ignored)."""
    path = RunPaths(run_dir).metrics
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class MetricsLog:
    """Appends metric rows to ``metrics.jsonl`` and draws their curves in TensorBoard
    (:mod:`anet.tboard`: train/ and valid/ writers; bookkeeping stays in the file)."""

    def __init__(self, run_dir: str | Path, resume_step: int = 0):
        paths = RunPaths(run_dir)
        self.path = paths.metrics
        # Rows logged after the checkpoint we resume from describe training that is redone.
        # Trimmed by temp file + rename (never truncate-then-write: a kill then would leave an
        # empty history); a history with nothing to trim is not rewritten at all.
        rows = read_metrics(run_dir)
        kept = [r for r in rows if r.get("step", 0) <= resume_step]
        if len(kept) < len(rows) or (self.path.is_file() and not _ends_clean(self.path)):
            atomic_write(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        for run in tboard.CURVE_RUNS:  # the curves too: one point per step after the resume
            tboard.trim_after(paths.tensorboard / run, resume_step)  # TF loads here
        self.writers = tboard.Writers(paths.tensorboard)  # (not for anet report)

    def log(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        self.writers.scalars(int(row["step"]), tboard.scalars(row))

    def close(self) -> None:
        self.writers.close()
