"""Small file helpers shared by every command (no TensorFlow, no matplotlib)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def tmp_name(path: Path) -> Path:
    """The temp file :func:`atomic_write` uses for ``path``: hidden, beside it, per process,
    same suffix (so writers that pick a format by suffix still work). ``.*.tmp-*`` finds them."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def atomic_write(path: str | Path, content: str | bytes | Callable[[Path], object]) -> Path:
    """Write ``path`` via a temp file + fsync + rename: readers never see half a file.

    Args:
        content: the text or bytes to write, or a function that writes a file at the path it
            is given (e.g. ``lambda p: fig.savefig(p)``).
    Returns:
        ``path``.
    """
    path = Path(path)
    tmp = tmp_name(path)
    try:
        if callable(content):
            content(tmp)
        else:
            with open(tmp, "w" if isinstance(content, str) else "wb") as f:
                f.write(content)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
