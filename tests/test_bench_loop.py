"""scripts/bench_loop.py's epoch arithmetic (the overhead section of `make bench`)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench_loop  # noqa: E402

PAPER = dict(train=80944, batch=64, every=200, checkpoint_every_epochs=10)


@pytest.mark.parametrize("kw,outside,share", [
    # 1264 steps of 2 s; 6.32 checks of 0.01 s; one 100 s validation; a tenth of a 10 s save
    (dict(saving_checks=0.0), 101.0632, 101.0632 / 2629.0632),
    (dict(saving_checks=1.0), 164.2632, 164.2632 / 2692.2632),  # + 6.32 saves
    (dict(saving_checks=1.0, valid_at_checks=True), 796.2632, 796.2632 / 3324.2632),
])
def test_outside_share_golden(kw, outside, share):
    r = bench_loop.outside_share(2.0, 0.01, 100.0, 10.0, **PAPER, **kw)
    assert r["steps_per_epoch"] == 1264 and r["checks_per_epoch"] == 6.32
    assert r["epoch_steps_s"] == 2528.0
    assert r["epoch_outside_s"] == pytest.approx(outside, abs=0.01)
    assert r["outside_share"] == pytest.approx(share, abs=1e-4)
