"""matplotlib on the file-only Agg backend, and atomic figure writes (imported lazily by callers
that plot, so commands that do not draw never load matplotlib)."""

from __future__ import annotations

from pathlib import Path

from anet.files import atomic_write


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, **savefig) -> Path:
    """Write ``fig`` to ``path`` atomically (readers never see half a PNG); closes it."""
    try:
        return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, **savefig))
    finally:
        pyplot().close(fig)
