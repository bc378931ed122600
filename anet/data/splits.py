"""Stratified, deterministic, group-aware train/valid/test assignment (pure functions).

Items that share a group (one cell's chromosomes, or identical pixels) always land in the same
split, so nothing leaks between train and test. Cells are also stratified by their karyotype
kind, so abnormal cells reach valid and test in proportion.
"""

from __future__ import annotations

import numpy as np

from anet.data import iscn

SPLITS = ("train", "valid", "test")


def _quotas(class_counts: np.ndarray, ratio: float) -> np.ndarray:
    """Per-class counts that are ``ratio`` of each class and sum to round(ratio * total).

    Largest remainder: floors first, then +1 for the classes with the largest fractions.
    """
    exact = class_counts * ratio
    q = np.floor(exact).astype(np.int64)
    extra = round(float(class_counts.sum()) * ratio) - int(q.sum())
    order = np.argsort(-(exact - q), kind="stable")
    q[order[:max(extra, 0)]] += 1
    return np.minimum(q, class_counts)


def _split_by_class(counts: np.ndarray, ratios: tuple[float, float],
                    rng: np.random.Generator) -> np.ndarray:
    """Label-pure groups: per class, shuffle its groups and fill valid, then test, then train."""
    label, size = counts.argmax(1), counts.sum(1)
    out = np.zeros(len(counts), np.int64)
    class_counts = np.bincount(label, weights=size, minlength=counts.shape[1]).astype(np.int64)
    quota = np.stack([_quotas(class_counts, r) for r in ratios])
    for c in range(counts.shape[1]):
        groups = rng.permutation(np.flatnonzero(label == c))
        # A group goes to a split while the split's quota covers its middle (exact for singletons).
        mid = np.cumsum(size[groups]) - size[groups] / 2
        valid_end, test_end = quota[0, c], quota[0, c] + quota[1, c]
        out[groups[mid < valid_end]] = 1
        out[groups[(mid >= valid_end) & (mid < test_end)]] = 2
    return out


def _bounds(stratum_groups: np.ndarray, fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per stratum and split, the fewest and most groups: its proportional share rounded down
    and up (exact shares stay exact: 200 cells at 0.05 are 10, not 10 or 11)."""
    exact = stratum_groups[:, None] * fractions[None, :]
    return np.floor(exact + 1e-9).astype(np.int64), np.ceil(exact - 1e-9).astype(np.int64)


def _split_greedy(counts: np.ndarray, ratios: tuple[float, float], rng: np.random.Generator,
                  strata: np.ndarray) -> np.ndarray:
    """Mixed groups (cells): largest first (seeded order among equals), each to the split whose
    per-class counts it brings closest to target (least increase of squared error), among the
    splits its stratum may still take.

    A stratum (a cell's karyotype kind, or its size: 46, 47 or 45 chromosomes) puts its
    proportional share of groups, rounded down or up, in every split. Without that, largest
    first placed every 47-chromosome cell before the rest, and they all went to one split
    (train, at the usual ratios).
    """
    fractions = np.array([1 - sum(ratios), *ratios])
    target = counts.sum(0)[None, :] * fractions[:, None]
    current = np.zeros_like(target)
    lo, hi = _bounds(np.bincount(strata), fractions)
    placed, left = np.zeros_like(lo), np.bincount(strata)
    size = counts.sum(1)
    order = rng.permutation(len(counts))
    order = order[np.argsort(-size[order], kind="stable")]
    out = np.zeros(len(counts), np.int64)
    for g in order:
        s = strata[g]
        need = np.maximum(lo[s] - placed[s], 0)
        # The stratum's last groups go where its share is not yet met; before that, anywhere
        # its share is not yet full.
        allowed = need > 0 if need.sum() >= left[s] else placed[s] < hi[s]
        increase = (2 * (current - target) * counts[g] + counts[g] ** 2).sum(1)
        out[g] = int(np.argmin(np.where(allowed, increase, np.inf)))
        current[out[g]] += counts[g]
        placed[s, out[g]] += 1
        left[s] -= 1
    return out


def assign_splits(labels, groups=None, valid_ratio: float = 0.05, test_ratio: float = 0.05,
                  seed: int = 0, strata=None) -> np.ndarray:
    """Split ids (0 train, 1 valid, 2 test) per item: stratified, deterministic, group-aware.

    Args:
        labels: class index per item.
        groups: group key per item (cell id, duplicate set); a group never straddles splits.
            None = every item its own group.
        valid_ratio, test_ratio: fractions of the items (exact per class when groups are
            label-pure singletons: round(n_c * ratio), totals round(N * ratio)).
        seed: the same inputs and seed give the same split.
        strata: for groups holding several classes (cells), a key per item ("" or None =
            unknown), a group's being its first item's: each stratum's groups are spread over
            the splits in proportion (its share rounded down or up). Groups of unknown stratum
            are stratified by their number of items. Label-pure groups are stratified by class.

    Returns:
        int64 array of split ids, one per item.
    """
    labels = np.asarray(labels, np.int64)
    if len(labels) == 0:
        return np.zeros(0, np.int64)
    if groups is None:
        gid = np.arange(len(labels))
    else:
        gid = np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)
    counts = np.zeros((gid.max() + 1, labels.max() + 1), np.int64)
    np.add.at(counts, (gid, labels), 1)
    rng = np.random.default_rng(seed)
    ratios = (valid_ratio, test_ratio)
    if ((counts > 0).sum(1) <= 1).all():
        split = _split_by_class(counts, ratios, rng)
    else:
        split = _split_greedy(counts, ratios, rng, _group_strata(gid, counts.sum(1), strata))
    return split[gid]


def _group_strata(gid: np.ndarray, size: np.ndarray, strata) -> np.ndarray:
    """Stratum index per group: its first item's key, or its size where that is unknown."""
    first = np.unique(gid, return_index=True)[1]  # gid is 0..G-1, so row g is group g
    keys = [None] * len(size) if strata is None else np.asarray(strata, object)[first]
    named = [f"kind {k}" if k not in (None, "") else f"size {n}" for k, n in zip(keys, size)]
    return np.unique(np.array(named, object), return_inverse=True)[1].reshape(-1)


def cell_strata(cells, karyotypes: dict) -> list[str]:
    """Per item, its cell's karyotype kind (:func:`anet.data.iscn.kind`) where ``karyotypes``
    (cell -> ISCN) knows and can read it, else "" (the splitter then uses the cell's size)."""
    kinds = {cell: iscn.kind(k) or "" for cell, k in karyotypes.items()}
    return [kinds.get(c, "") for c in cells]


def kinds_line(cells, strata, split) -> str | None:
    """"cells per split (train/valid/test) by karyotype: normal 180/10/10, gain 2/1/1" for
    the cells whose kind (:func:`cell_strata`) is known; None when none is."""
    table: dict = {}
    for _, kind, s in {(c, k, int(s)) for c, k, s in zip(cells, strata, split) if k}:
        table.setdefault(kind, [0, 0, 0])[s] += 1
    if not table:
        return None
    order = [k for k in iscn.KINDS if k in table]
    return ("cells per split (train/valid/test) by karyotype: "
            + ", ".join(f"{k} " + "/".join(map(str, table[k])) for k in order))


def assign_given(labels, groups, given, valid_ratio: float = 0.05, test_ratio: float = 0.05,
                 seed: int = 0, strata=None) -> np.ndarray:
    """Split ids per item honouring given splits (a manifest's ``split`` column).

    Args:
        given: split id per item (0 train, 1 valid, 2 test) or -1 where none is given. An item
            keeps its given split; an item without one joins the split given to another item
            of its group (the lowest, if several); the rest are split by :func:`assign_splits`
            (the ratios are fractions of those rest; ``strata`` as there).

    Returns:
        int64 array of split ids; all -1 gives exactly ``assign_splits``.
    """
    labels, given = np.asarray(labels, np.int64), np.asarray(given, np.int64)
    gid = np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)
    if len(labels) == 0:
        return np.zeros(0, np.int64)
    group_given = np.full(gid.max() + 1, len(SPLITS), np.int64)
    np.minimum.at(group_given, gid, np.where(given >= 0, given, len(SPLITS)))
    split = np.where(given >= 0, given, group_given[gid])
    free = split == len(SPLITS)
    if free.any():
        keys = None if strata is None else np.asarray(strata, object)[free]
        split[free] = assign_splits(labels[free], gid[free], valid_ratio, test_ratio, seed, keys)
    return split


def spanning_groups(groups, split) -> int:
    """How many groups have items in more than one split (given splits can put identical
    images apart)."""
    pairs = np.unique(np.stack([np.asarray(groups), np.asarray(split)]), axis=1)
    return int((np.bincount(np.unique(pairs[0], return_inverse=True)[1]) > 1).sum())


def group_ids(cells: list[str], digests: list[bytes]) -> np.ndarray:
    """Union of "same cell" and "same pixels": connected items share one group id."""
    parent = list(range(len(cells)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for keys in (cells, digests):
        first: dict = {}
        for i, k in enumerate(keys):
            if k == "":
                continue
            j = first.setdefault(k, i)
            if j != i:
                parent[find(i)] = find(j)
    return np.array([find(i) for i in range(len(cells))], np.int64)


# --------------------------------------------------------------------------- what a split can say

Z95 = 1.959964  # two-sided 95% normal quantile
GOOD_WIDTH = 0.1  # a test split narrower than this (+-5 points) says something useful


def interval_width(n: int, p: float = 0.5) -> float:
    """Width of the 95% (normal-approximation) interval of an accuracy ``p`` measured on ``n``
    images; ``p`` = 0.5 is the widest case. ``inf`` for an empty split."""
    return 2 * Z95 * (p * (1 - p) / n) ** 0.5 if n > 0 else float("inf")


def images_for_width(width: float, p: float = 0.5) -> int:
    """Fewest test images whose 95% interval is at most ``width`` wide."""
    return int(np.ceil((2 * Z95) ** 2 * p * (1 - p) / width**2))


def split_warnings(meta) -> list[str]:
    """Warnings about a prepared dataset (its DatasetInfo) a lab should see before training:
    expected classes without any image, and a test split too small to say much."""
    counts, classes = meta.counts, list(meta.classes)
    total = {c: sum(counts[s][c] for s in SPLITS) for c in classes}
    out = []
    missing = [c for c in classes if total[c] == 0]
    if missing:
        out.append(f"{len(missing)} of {len(classes)} expected classes have no images: "
                   f"{', '.join(missing)} (the model still gets an output for each; add their "
                   "images or check the folder names)")
    n, all_images = int(meta.totals["test"]), int(meta.totals["total"])
    width = interval_width(n)
    if n and width > GOOD_WIDTH:  # an empty test split has its own warning (prepare)
        present = [c for c in classes if total[c]]
        fewest = min(counts["test"][c] for c in present) if present else 0
        need = images_for_width(GOOD_WIDTH)
        ratios = sorted({r for r in (0.1, 0.2, 0.3) if r * all_images < need}
                        | ({np.ceil(need / all_images * 100) / 100} if need <= 0.5 * all_images else set()))
        options = "; ".join(f"--test-ratio {r:g}: {int(r * all_images)} images, width "
                            f"{interval_width(int(r * all_images)):.3f}" for r in ratios)
        enough = (f"{need} images give width {GOOD_WIDTH}" if need <= 0.5 * all_images else
                  f"width {GOOD_WIDTH} needs {need} test images, more than half of these {all_images}")
        out.append(f"the test split has {n} images ({fewest} in its smallest class): the 95% "
                   f"interval of a test accuracy is up to {width:.3f} wide (+-{width * 50:.1f} "
                   f"points); {enough}. {options}")
    return out
