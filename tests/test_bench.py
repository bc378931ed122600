"""scripts/bench.py's command line: --work is created when missing, a bad one is one line."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench  # noqa: E402


def _main(monkeypatch, *argv):
    seen = []
    monkeypatch.setitem(bench.SECTIONS, "matmul", lambda results, args: seen.append(
        sorted(p.name for p in Path(args.work).iterdir())))
    monkeypatch.setattr(sys, "argv", ["bench.py", "--sections", "matmul", *argv])
    bench.main()
    return seen


def test_a_missing_work_dir_is_created(tmp_path, monkeypatch):
    work = tmp_path / "new" / "work"
    assert _main(monkeypatch, "--work", str(work), "--out-dir", str(tmp_path)) == [[]]
    assert work.is_dir() and (tmp_path / "bench.json").is_file()


def test_a_work_dir_that_cannot_be_made_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit) as e:
        _main(monkeypatch, "--work", str(tmp_path / "file" / "w"), "--out-dir", str(tmp_path))
    msg = str(e.value)
    assert msg.startswith(f"error: --work {tmp_path / 'file' / 'w'}: cannot create it")
    assert "\n" not in msg
