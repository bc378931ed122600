"""One writer per folder: a second train/prepare on a locked folder is refused at once; a lock
left by a dead process is taken over with a notice."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from anet import lock
from anet.data import outdir
from tests.cli import run_cli
from tests.conftest import make_idx_dir

HOLD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from anet import lock
    with lock.hold(Path(sys.argv[1]), Path(sys.argv[2])):
        print("held", flush=True)
        if sys.argv[3] == "die":
            os._exit(9)  # dies holding it: the kernel frees the lock, the holder note stays
        time.sleep(60)
""")


def holder(lock_file: Path, folder: Path, mode: str = "wait") -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_file), str(folder), mode],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def stop():
    procs = []
    yield procs.append
    for p in procs:
        p.kill()
        p.wait()


def test_second_train_on_a_run_dir_is_refused(tmp_path, capsys, stop):
    run_dir = tmp_path / "runs" / "tiny"
    proc = holder(run_dir / lock.LOCK, run_dir)
    stop(proc)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(f"data: {{dir: {tmp_path / 'nodata'}}}\n")
    code, _, err = run_cli(["train", cfg, "--run-dir", run_dir], capsys)
    assert code == 2
    assert err.startswith(f"error: {run_dir} is in use by pid {proc.pid} on {socket.gethostname()}, "
                          "started 20")
    assert not (run_dir / "config.yaml").exists() and not (run_dir / "metrics.jsonl").exists()


def test_second_prepare_into_one_out_is_refused(tmp_path, capsys, stop):
    src = make_idx_dir(tmp_path / "idx", n_train=30, n_test=10)
    out = tmp_path / "m"
    proc = holder(outdir.lock_file(out), out)
    stop(proc)
    code, _, err = run_cli(["prepare", "--dataset", "mnist", "--source", src, "--out", out,
                            "--workers", "1"], capsys)
    assert code == 2 and err.startswith(f"error: {out} is in use by pid {proc.pid} on ")
    assert not out.exists() and not list(tmp_path.glob("m.partial-*"))


def test_dead_holder_is_taken_over_with_a_notice(tmp_path, capsys):
    folder = tmp_path / "run"
    proc = holder(folder / lock.LOCK, folder, "die")
    proc.wait()
    with lock.hold(folder / lock.LOCK, folder):
        err = capsys.readouterr().err
        assert f"notice: {folder}: taking over the lock of pid {proc.pid}" in err
        assert f"pid {os.getpid()}" in lock._describe(lock._read_holder(folder / ".anet.lock.json"))
    assert not (folder / ".anet.lock.json").exists()  # a clean release leaves no holder note
    with lock.hold(folder / lock.LOCK, folder):
        assert "taking over" not in capsys.readouterr().err


def test_lock_is_released_after_an_error(tmp_path):
    folder = tmp_path / "run"
    with pytest.raises(RuntimeError), lock.hold(folder / lock.LOCK, folder):
        raise RuntimeError("boom")
    start = time.time()
    with lock.hold(folder / lock.LOCK, folder):
        assert time.time() - start < 5
