"""matplotlib on the file-only Agg backend, atomic figure writes, and evaluate's figures (the
confusion matrix, the error gallery). Imported lazily by callers that plot, so commands that do
not draw never load matplotlib."""

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


# --------------------------------------------------------------------------- evaluate's figures


def row_normalised(cm):
    """Each row of a confusion matrix divided by its class's count (rows of absent classes: 0)."""
    import numpy as np

    cm = np.asarray(cm, dtype=float)
    support = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, support, out=np.zeros(cm.shape), where=support > 0)


def draw_confusion(fig, ax, cm, classes, normalize: bool = False) -> None:
    """One confusion heat map on ``ax``: class names on both axes, counts (or, ``normalize``,
    row fractions 0..1, recall on the diagonal) in the cells, a colour bar beside it."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    cm = row_normalised(cm) if normalize else np.asarray(cm)
    k = len(classes)
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else max(int(cm.max()), 1))
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    if not normalize:
        bar.locator = MaxNLocator(integer=True)  # counts: no 17.5 images
        bar.update_ticks()
    long_names = max((len(str(c)) for c in classes), default=0) > 3  # "1".."Y" stay upright
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=90 if long_names else 0,
                  fontsize=8 if k > 12 else 9)
    ax.set_yticks(range(k), [str(c) for c in classes], fontsize=8 if k > 12 else 9)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 30:
        hi = cm.max() if cm.size else 0
        for i in range(k):
            for j in range(k):
                if cm[i, j] >= (0.005 if normalize else 1):
                    text = f"{cm[i, j]:.2f}".lstrip("0") if normalize else str(int(cm[i, j]))
                    ax.text(j, i, text, ha="center", va="center",
                            fontsize=9 if k <= 10 else 7,
                            color="white" if cm[i, j] > hi / 2 else "black")


def plot_confusion(cm, classes, path: Path, title: str = "confusion",
                   views: tuple[str, ...] = ("counts", "normalised")) -> Path:
    """Confusion matrix figure: the ``views`` side by side ("counts": images per cell;
    "normalised": each row divided by its class's count, so the diagonal is each class's recall)."""
    plt = pyplot()
    k = len(classes)
    side = min(max(4.5, 0.3 * k + 2.2), 10.0)
    fig, axes = plt.subplots(1, len(views), figsize=((side + 1.2) * len(views), side + 0.6),
                             dpi=100, squeeze=False)
    for ax, view in zip(axes.flat, views):
        draw_confusion(fig, ax, cm, classes, normalize=view == "normalised")
        ax.set_title("row-normalised (recall on the diagonal)" if view == "normalised"
                     else "counts (images)", fontsize=10)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path, bbox_inches="tight")  # keep labels tight_layout clips


def plot_errors(errors: list, classes, path: Path, total: int) -> Path:
    """Gallery of misclassified images (preprocessed inputs, min-max scaled) with true/predicted."""
    plt = pyplot()
    cols = 8
    rows = max(1, -(-len(errors) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.9 + 0.4), dpi=100,
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (img, true, pred, p, fname, cell) in zip(axes.flat, errors):
        img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6)
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray")
        where = Path(fname).name + (f"\ncell {cell}" if cell else "")
        ax.set_title(f"{where}\ntrue {classes[true]} pred {classes[pred]} {p:.2f}", fontsize=7)
    shown = f"first {len(errors)} of {total}" if total > len(errors) else f"all {total}"
    fig.suptitle(f"misclassified: {shown}" if total else "no misclassified images", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, bbox_inches="tight")  # keep labels tight_layout clips
