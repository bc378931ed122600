"""The synthetic karyotype generator: format, determinism, sizes, class lengths, abnormal cells."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anet.data import sources, synthetic


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def raw12(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("syn") / "raw"
    synthetic.generate(root, cells=12, seed=0)
    return root


def test_real_karyotype_format(raw12):
    rows = list(csv.reader((raw12 / "manifest.csv").read_text().splitlines()))
    assert rows[0] == ["path", "label", "cell"] and len(rows) == 1 + 12 * 46
    raw = sources.open_karyotype(str(raw12 / "manifest.csv"))
    assert raw.count == 552 and {m["cell"] for _, _, m in raw.items} == {f"cell{i:04d}" for i in range(12)}
    modes = {Image.open(p).mode for p, _, _ in raw.items}
    assert "L" in modes and "I;16" in modes  # a few 16-bit exports exercise that reader path
    img = sources.read_image(raw.items[0][0])
    assert img.dtype == np.uint8 and img.ndim == 2
    assert img[0, 0] > 180 and img.min() < 140  # light background, dark chromosome


def test_deterministic_for_a_seed(raw12, tmp_path):
    synthetic.generate(tmp_path / "a", cells=12, seed=0)
    assert _tree_digest(tmp_path / "a") == _tree_digest(raw12)
    synthetic.generate(tmp_path / "b", cells=2, seed=1)
    first = min((tmp_path / "b" / "cell0000").iterdir())
    assert first.read_bytes() != (raw12 / "cell0000" / first.name).read_bytes()


def test_size_range_like_table1(raw12):
    sizes = np.array([Image.open(p).size for p in raw12.rglob("*.tif")])  # (w, h)
    assert sizes[:, 0].min() >= 45 and sizes[:, 0].max() <= 96
    assert sizes[:, 1].min() >= 57 and sizes[:, 1].max() <= 198
    assert sizes[:, 1].max() > 170 and np.percentile(sizes[:, 1], 10) < 80  # spans the range


def test_class_lengths_order():
    lengths = synthetic.class_lengths()
    assert (np.diff(lengths[:22]) < 0).all()  # 1 -> 22 decreasing
    assert lengths[7] < lengths[22] < lengths[5]  # X about like 7
    assert lengths[23] < lengths[18]  # Y among the smallest (like 21-22)


def test_length_matters_but_is_ambiguous(raw12):
    heights: dict[int, list] = {}
    for p, label, _ in sources.open_karyotype(str(raw12 / "manifest.csv")).items:
        heights.setdefault(label, []).append(Image.open(p).size[1])
    mean = {k: np.mean(v) for k, v in heights.items()}
    assert mean[0] > mean[6] > mean[12] > mean[20]
    # neighbouring classes overlap in size: cell condensation makes length alone ambiguous
    assert max(heights[3]) > min(heights[2]) and max(heights[9]) > min(heights[8])


def test_bands_fixed_per_class_and_distinct():
    assert np.array_equal(synthetic.class_bands(5), synthetic.class_bands(5))
    assert synthetic.class_bands(5).shape != synthetic.class_bands(19).shape or not np.allclose(
        synthetic.class_bands(5), synthetic.class_bands(19))


def test_cells_normal_and_abnormal():
    rng = np.random.default_rng(0)
    normal = [synthetic.cell_karyotype(rng, 0.0) for _ in range(200)]
    assert all(len(k) == 46 for k in normal)
    xy = sum(k.count(23) == 1 for k in normal)
    assert 70 < xy < 130  # roughly half male
    abnormal = [synthetic.cell_karyotype(rng, 1.0) for _ in range(60)]
    kinds = {(len(k), k.count(22), k.count(23), k.count(20)) for k in abnormal}
    assert kinds == {(45, 1, 0, 2), (47, 2, 1, 2), (47, 2, 0, 3), (47, 1, 1, 3)}


def test_generate_abnormal_fraction(tmp_path):
    synthetic.generate(tmp_path, cells=10, seed=3, abnormal=0.5)
    rows = list(csv.DictReader((tmp_path / "manifest.csv").read_text().splitlines()))
    per_cell: dict[str, int] = {}
    for r in rows:
        per_cell[r["cell"]] = per_cell.get(r["cell"], 0) + 1
    assert set(per_cell.values()) <= {45, 46, 47} and set(per_cell.values()) != {46}
