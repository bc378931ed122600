"""Generator v2: ideogram lengths and centromeres, polarity, abnormal cells, manifest, determinism."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anet.data import ideogram, iscn, sources, synthetic

# ISCN lengths straight from the README of the ideogram table
ISCN = {0: 15100, 20: 3200, 22: 8610, 23: 3650}
STILL = synthetic.CellStyle(resolution=400, scale=synthetic.PX_PER_ISCN, half_width=4.5,
                            contrast=1.0, base=0.35, blur=0.8, band_blur=0.5, noise=0.0,
                            background=230, illumination=0.0, separation=0.2, clutter=0.0)


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def raw3(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("syn") / "raw"
    synthetic.generate(root, cells=3, seed=0, abnormal=1.0)
    return root


def test_ideogram_table():
    for label, length in ISCN.items():
        for res in ideogram.RESOLUTIONS:
            b = ideogram.bands(label, res)
            assert b.start[0] == 0 and b.stop[-1] == length and (b.start[1:] == b.stop[:-1]).all()
    assert len(ideogram.bands(0, 850).names) > len(ideogram.bands(0, 400).names)
    assert ideogram.centromere(0) == 7394 and ideogram.centromere(20) == 1203  # 1q11, 21q11.1
    assert ideogram.blend(400) == {400: 1.0} and ideogram.blend(475) == {400: 0.5, 550: 0.5}


def test_profile_centromere_follows_the_table():
    for label in range(24):
        dark, kind, cen = ideogram.profile(ideogram.normal(label), {400: 1.0}, 2000)
        expected = ideogram.centromere(label) / ideogram.iscn_length(label)
        assert cen == pytest.approx(expected)
        acen = np.flatnonzero(kind == ideogram.KINDS["acen"]) / 2000
        assert acen.min() < expected < acen.max()  # the constriction sits on the acen bands
    der9, der22 = iscn.derivatives_t9_22()
    _, _, cen22 = ideogram.profile(der22.pieces, {850: 1.0}, 500)
    assert cen22 * sum(p.length for p in der22.pieces) == pytest.approx(ideogram.centromere(21))


def test_gvar_varies_only_heterochromatin():
    nine = ideogram.normal(8)
    length = sum(p.length for p in nine)
    assert sum(p.length for p in ideogram.with_gvar(nine, 1.0)) == pytest.approx(length)
    q12 = 3695 - 2773  # 9q12 (gvar) in the 400 table
    assert sum(p.length for p in ideogram.with_gvar(nine, 2.0)) == pytest.approx(length + q12)
    # acrocentric 21: satellites p13, stalk p12 and p11.2 vary; the q-arm does not
    variable = 1002  # 21p13, p12, p11.2 span 0..1002 in the 400 table
    assert sum(p.length for p in ideogram.with_gvar(ideogram.normal(20), 0.5)) == pytest.approx(
        ideogram.iscn_length(20) - variable / 2)


def _axis_length(img: np.ndarray) -> float:
    """Extent of the dark pixels along their principal axis (any rotation)."""
    ys, xs = np.nonzero(img < img.max() - 40)
    pts = np.stack([ys, xs], 1).astype(float)
    pts -= pts.mean(0)
    axis = np.linalg.eigh(pts.T @ pts)[1][:, -1]
    proj = pts @ axis
    return proj.max() - proj.min()


def test_rendered_lengths_follow_iscn_lengths():
    rng = np.random.default_rng(0)
    measured = {}
    for label in ISCN:
        chrom = iscn.make_cell("XY").chromosomes[[c.label for c in iscn.make_cell(
            "XY").chromosomes].index(label)]
        pose = dataclasses.replace(synthetic.draw_pose(chrom, STILL, rng), bend=0.0)
        measured[label] = (_axis_length(synthetic.render(chrom, STILL, rng, pose)[0]), pose.length)
    for label, (got, drawn) in measured.items():
        assert got == pytest.approx(drawn, abs=4)  # the chromosome is as long as its pose says
        assert drawn == pytest.approx(ISCN[label] * synthetic.PX_PER_ISCN, rel=0.1)
    ratio = measured[0][0] / measured[20][0]
    assert ratio == pytest.approx(ISCN[0] / ISCN[20], rel=0.15)


def test_polarity_flips_the_band_order():
    chrom = iscn.make_cell("XX").chromosomes[0]  # chromosome 1
    pose = synthetic.draw_pose(chrom, STILL, np.random.default_rng(1))
    up = dataclasses.replace(pose, polarity=0, rotation=0.0, bend=0.0)
    down = dataclasses.replace(up, polarity=1)
    a = synthetic.render(chrom, STILL, np.random.default_rng(2), up)[0]
    b = synthetic.render(chrom, STILL, np.random.default_rng(2), down)[0]
    col_a, col_b = a.mean(1), b.mean(1)  # intensity along the (vertical) chromosome

    def best_corr(x, y):  # the crop's centring jitters by a pixel or two
        return max(np.corrcoef(x[20 + k: len(x) - 20 + k], y[20: len(y) - 20])[0, 1]
                   for k in range(-4, 5))

    flipped, same = best_corr(col_a, col_b[::-1]), best_corr(col_a, col_b)
    assert flipped > 0.9 and flipped > same + 0.3
    # the up crop reads the ideogram top to bottom, the down crop bottom to top
    dark, _, _ = ideogram.profile(chrom.pieces, {400: 1.0}, 200)
    rows = np.flatnonzero(a.min(1) < a.max() - 60)
    ink = -col_a[rows[0]: rows[-1] + 1]
    ideo = np.interp(np.linspace(0, 1, len(ink)), np.linspace(0, 1, 200), dark)
    assert np.corrcoef(ink, ideo)[0, 1] > np.corrcoef(ink, ideo[::-1])[0, 1] + 0.2


@pytest.mark.parametrize("change", [None, *iscn.ABNORMALITIES])
def test_cell_count_and_labels_match_its_karyotype(change):
    cell = iscn.make_cell("XY", change)
    count = int(cell.karyotype.split(",")[0])
    labels = sorted(c.label for c in cell.chromosomes)
    assert len(cell.chromosomes) == count and labels == iscn.expected_labels(cell.karyotype)
    if change == "t(9;22)(q34;q11)":
        ders = {c.name.split(")")[0] + ")": c for c in cell.chromosomes if c.name.startswith("der")}
        assert ders["der(9)"].label == 8 and ders["der(22)"].label == 21  # by their centromere
        assert sum(p.length for p in ders["der(22)"].pieces) < ideogram.iscn_length(21)
    if change == "del(5)(p14)":
        assert min(sum(p.length for p in c.pieces) for c in cell.chromosomes if c.label == 4) < (
            ideogram.iscn_length(4) - 1000)


def test_iscn_notation():
    assert iscn.make_cell("XX", "+21").karyotype == "47,XX,+21"
    assert iscn.make_cell("XY", "45,X").karyotype == "45,X"
    assert iscn.make_cell("XX", "47,XXY").karyotype == "47,XXY"
    assert iscn.make_cell("XY", "t(9;22)(q34;q11)").karyotype == "46,XY,t(9;22)(q34;q11)"
    assert iscn.numerical_call(iscn.expected_labels("47,XY,+18")) == "47,XY,+18"
    assert iscn.numerical_call([c for c in range(22) for _ in range(2)] + [22]) == "45,X"
    for bad in ("46", "46,XY,+Q", "45,XY"):
        with pytest.raises(ValueError):
            iscn.expected_labels(bad)


def test_structural_names_mark_the_rearranged_chromosomes():
    names = [synthetic.structural_name(c) for c in iscn.make_cell("XY", "t(9;22)(q34;q11)").chromosomes]
    assert sorted(filter(None, names)) == ["der(22)t(9;22)(q34;q11)", "der(9)t(9;22)(q34;q11)"]
    names = [synthetic.structural_name(c) for c in iscn.make_cell("XX", "del(5)(p14)").chromosomes]
    assert list(filter(None, names)) == ["del(5)(p14)"]
    assert not any(synthetic.structural_name(c) for c in iscn.make_cell("XY", "+21").chromosomes)


def test_manifest_records_polarity_rotation_and_karyotype(raw3):
    rows = list(csv.DictReader((raw3 / "manifest.csv").read_text().splitlines()))
    assert tuple(rows[0]) == synthetic.MANIFEST_COLUMNS
    per_cell = defaultdict(list)
    for r in rows:
        per_cell[r["cell"]].append(r)
        assert r["polarity"] in ("up", "down") and -90 <= float(r["rotation"]) <= 90
    for cell_rows in per_cell.values():
        (karyotype,) = {r["karyotype"] for r in cell_rows}
        assert karyotype.split(",")[2:] or karyotype.split(",")[1] not in ("XX", "XY")  # abnormal
        labels = sorted(sources.karyotype_label(r["label"]) for r in cell_rows)
        assert labels == iscn.expected_labels(karyotype)
    for r in rows:  # only the chromosomes of a structural change are named, by their ISCN name
        assert (r["structural"] != "") <= iscn.is_structural(r["karyotype"])
    items = sources.open_karyotype(str(raw3 / "manifest.csv")).items
    assert [m["structural"] for _, _, m in items] == [r["structural"] for r in rows]
    assert {m["polarity"] for _, _, m in items} == {0, 1}
    assert all(m["karyotype"] == per_cell[m["cell"]][0]["karyotype"] for _, _, m in items)


def test_crops_real_format_and_sizes(raw3):
    files = sorted(raw3.rglob("*.tif"))
    sizes = np.array([Image.open(p).size for p in files])  # (w, h)
    assert sizes[:, 0].min() >= 45 and sizes[:, 0].max() <= 96
    assert sizes[:, 1].min() >= 57 and sizes[:, 1].max() <= 198
    img = sources.read_image(files[0])
    assert img.dtype == np.uint8 and img[0, 0] > 150 and img.min() < 100  # dark on light


def test_same_seed_same_bytes(raw3, tmp_path):
    synthetic.generate(tmp_path / "a", cells=3, seed=0, abnormal=1.0)
    assert _tree_digest(tmp_path / "a") == _tree_digest(raw3)
    synthetic.generate(tmp_path / "b", cells=1, seed=1, abnormal=1.0)
    first = min((tmp_path / "b" / "cell0000").iterdir())
    assert first.read_bytes() != (raw3 / "cell0000" / first.name).read_bytes()
