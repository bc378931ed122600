"""One writer per folder: ``anet train`` locks its run directory, ``anet prepare`` its --out.

The lock is an OS file lock (``filelock``: ``flock`` on Linux), so the kernel releases it
when its holder dies, even by SIGKILL. Beside the lock file a small JSON names the holder
(pid, host, start time, command) for the refusal message; that file is removed on a clean
release, so finding it when the lock is free means the previous holder died (a notice says so).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from anet.errors import AnetError
from anet.files import atomic_write

LOCK = ".anet.lock"


def _describe(holder: dict) -> str:
    return (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
            f"{holder.get('started', '?')}" + (f": {holder['command']}" if holder.get("command") else ""))


def _read_holder(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def hold(lock_file: Path, folder: Path) -> Iterator[None]:
    """Hold the lock ``lock_file`` (guarding ``folder``) for the ``with`` block, or refuse.

    Raises:
        AnetError: another live process holds it (the message names the folder and holder).
    """
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    info = lock_file.with_name(lock_file.name + ".json")
    lock = FileLock(str(lock_file), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        holder = _read_holder(info)
        who = _describe(holder) if holder else "another process (details not yet written)"
        raise AnetError(f"{folder} is in use by {who}; wait for it to finish or use another "
                        "folder") from None
    except OSError as e:
        raise AnetError(f"{folder}: cannot create the lock file {lock_file} ({e.strerror}); "
                        "is the folder writable?") from None
    try:
        stale = _read_holder(info)
        if stale and stale.get("pid") != os.getpid():
            print(f"notice: {folder}: taking over the lock of {_describe(stale)}, which ended "
                  "without releasing it", file=sys.stderr)
        atomic_write(info, json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(["anet", *sys.argv[1:]])[:200]}) + "\n")
        yield
    finally:
        info.unlink(missing_ok=True)
        lock.release()
