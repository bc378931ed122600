"""The paper's own Table 1 and Table 2 figures, for placing beside ours in `anet report --html`.

Transcribed from /work/shared/paper/anet-c6-paper.txt (section 3.1 Table 1, section 3.2 Table 2).
The OCR of Table 2's VGG row reads "Mol 0984 0983 0980 10 0646 0670 10 0879 0884"; the text
below it confirms VGG-Net's CIFAR test accuracy "(0.67)". Keys are anet's dataset and model
names; the paper's Karyotype is real data, so ``synthetic-karyotype`` has no paper figures.
"""

from __future__ import annotations

TITLE = "ANet-c6 paper"

# dataset -> (total, train, valid, test, size as written in the paper)
TABLE1 = {
    "mnist": (70000, 62584, 3550, 3596, "28x28"),
    "cifar": (60000, 54022, 3025, 2953, "32x32"),
    "karyotype": (89980, 80944, 4415, 4621, "45x57 .. 96x198 (most)"),
}

# (model, dataset) -> (train, valid, test) accuracy
TABLE2 = {
    ("alexnet", "mnist"): (1.0, 0.982, 0.982),
    ("alexnet", "cifar"): (0.984, 0.804, 0.804),
    ("alexnet", "karyotype"): (1.0, 0.911, 0.910),
    ("anetc6", "mnist"): (1.0, 0.983, 0.984),
    ("anetc6", "cifar"): (1.0, 0.803, 0.816),
    ("anetc6", "karyotype"): (1.0, 0.913, 0.921),
    ("vgg16", "mnist"): (0.984, 0.983, 0.980),
    ("vgg16", "cifar"): (1.0, 0.646, 0.670),
    ("vgg16", "karyotype"): (1.0, 0.879, 0.884),
}


def table2(model: str, dataset: str) -> tuple[float, float, float] | None:
    """The paper's (train, valid, test) accuracy of ``model`` on ``dataset``, or None."""
    return TABLE2.get((model, dataset))
