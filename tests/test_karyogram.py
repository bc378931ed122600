"""Karyograms: chromosomes turned upright, one PNG per cell in the standard layout."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from anet import karyogram
from anet.data import iscn, synthetic
from tests.test_synthetic import STILL


def _crop(label: int, rotation: float) -> np.ndarray:
    chrom = next(c for c in iscn.make_cell("XY").chromosomes if c.label == label)
    rng = np.random.default_rng(label)
    pose = dataclasses.replace(synthetic.draw_pose(chrom, STILL, rng), rotation=rotation, bend=0.0)
    return np.clip(synthetic.render(chrom, STILL, rng, pose)[0], 0, 255).astype(np.uint8)


def test_upright_turns_the_main_axis_vertical():
    for rotation in (-60.0, 35.0, 80.0):
        tilted = _crop(5, rotation)  # chromosome 6, about 80 px long
        up = karyogram.upright(tilted)
        assert up.shape[0] > 2.5 * up.shape[1], (rotation, tilted.shape, up.shape)
        assert up.dtype == np.uint8 and up.min() < 120 and up[0, 0] > 180
    blank = np.full((60, 50), 230, np.uint8)
    assert karyogram.upright(blank) is blank  # nothing to turn


def test_draw_writes_one_png(tmp_path):
    cell = iscn.make_cell("XX", "+21")
    rng = np.random.default_rng(0)
    crops = [np.clip(synthetic.render(c, STILL, rng)[0], 0, 255).astype(np.uint8)
             for c in cell.chromosomes]
    labels = np.asarray([c.label for c in cell.chromosomes])
    argmax = labels.copy()
    argmax[0] = 1  # one label the assignment changed: outlined
    out = karyogram.draw(crops, labels, tmp_path / "k.png", title="c: 47,XX,+21", argmax=argmax,
                         truth=labels)
    im = Image.open(out)
    assert im.format == "PNG" and im.size[0] > im.size[1] > 200
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically
    rgb = np.asarray(im.convert("RGB"))
    orange = (rgb == (0xFF, 0x8C, 0x00)).all(axis=-1)
    assert orange.sum() > 100 and not (rgb == (0xD6, 0x27, 0x28)).all(axis=-1).any()
    greys = rgb[~orange]
    assert (greys[:, 0] == greys[:, 1]).all() and (greys[:, 1] == greys[:, 2]).all()
    # a note under the title (a head at chance) adds its line to the sheet's top
    noted = Image.open(karyogram.draw(crops, labels, tmp_path / "n.png", title="c: 47,XX,+21",
                                      note="chromosomes not turned p-arm up"))
    assert noted.size == (im.size[0], im.size[1] + karyogram.NOTE_H * karyogram.SCALE)
