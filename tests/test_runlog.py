"""metrics.jsonl history is only appended, or trimmed by temp file + rename."""

from __future__ import annotations

import builtins
import io
import json
from pathlib import Path

import pytest

from anet import runlog
from anet.runs import RunPaths

METRICS = RunPaths(".").metrics.name


def _rows(path: Path, steps) -> None:
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in steps))


class Killed(Exception):
    pass


@pytest.fixture
def killed_on_metrics_write(monkeypatch):
    """Arms a fault: opening metrics.jsonl itself for writing truncates it, then 'dies'."""
    real_open = builtins.open

    def dying_open(file, mode="r", *args, **kwargs):
        if Path(str(file)).name == METRICS and "w" in mode:
            real_open(file, "w").close()
            raise Killed("killed while rewriting metrics.jsonl")
        return real_open(file, mode, *args, **kwargs)

    def arm():
        monkeypatch.setattr(builtins, "open", dying_open)
        monkeypatch.setattr(io, "open", dying_open)  # what Path.write_text calls

    return arm


def test_resume_trim_is_atomic(tmp_path, killed_on_metrics_write):
    _rows(tmp_path / METRICS, [4, 8, 12, 16])
    killed_on_metrics_write()
    log = runlog.MetricsLog(tmp_path, resume_step=8)
    log.close()
    assert [r["step"] for r in runlog.read_metrics(tmp_path)] == [4, 8]


def test_resume_with_nothing_to_trim_does_not_rewrite(tmp_path, killed_on_metrics_write):
    _rows(tmp_path / METRICS, [4, 8])
    before = (tmp_path / METRICS).stat()
    killed_on_metrics_write()
    runlog.MetricsLog(tmp_path, resume_step=8).close()
    after = (tmp_path / METRICS).stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_torn_last_line_is_dropped_before_appending(tmp_path):
    path = tmp_path / METRICS
    _rows(path, [4])
    with open(path, "a") as f:
        f.write('{"step": 8, "lo')  # a kill mid-row
    log = runlog.MetricsLog(tmp_path, resume_step=100)
    log.log({"step": 9, "loss": 0.5})
    log.close()
    assert [r["step"] for r in runlog.read_metrics(tmp_path)] == [4, 9]
