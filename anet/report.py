"""Plots and tables of runs: the training curves (the paper's Figure 3)."""

from __future__ import annotations

from pathlib import Path

from anet import checkpoints
from anet.runlog import read_metrics


def plot_curves(run_dir: str | Path) -> Path | None:
    """Training vs validation accuracy over steps with checkpoint markers -> ``curves.png``.

    Returns the path, or None when the run has logged nothing yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    if not rows:
        return None
    checks = [r for r in rows if r.get("kind") == "check"]
    valid = [r for r in rows if "valid_acc" in r]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.plot([r["step"] for r in checks], [r["train_acc"] for r in checks],
            color="#8fd18f", label="training (mean since last check)")
    ax.plot([r["step"] for r in valid], [r["valid_acc"] for r in valid],
            color="#1b6e1b", marker=".", label="validation")
    ckpts = checkpoints.list_checkpoints(run_dir / "checkpoints")
    for i, c in enumerate(ckpts):
        ax.axvline(c["step"], color="grey", alpha=0.35, lw=0.8,
                   label="checkpoint" if i == 0 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{run_dir.name}: accuracy ({len(ckpts)} checkpoints)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = run_dir / "curves.png"
    tmp = run_dir / ".curves.png.tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
    return out
