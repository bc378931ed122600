"""Golden-value tables for Algorithm 1 (check and adjust) and the early break."""

import pytest

from anet import schedule
from anet.schedule import (
    ScheduleState,
    check_and_adjust,
    initial_state,
    is_check_step,
    level_index,
    should_break,
    update_streak,
)

LEVELS = (0.0, 0.5, 0.8, 0.9)
LRS = (0.01, 0.005, 0.001, 0.0005)
GATES = (0.0, 0.02, 0.01, 0.005)

# acc measured -> (expected lr, gate in force, need_save, best after). Derived by hand:
# the lr/gate come from the best *before* the check (highest level strictly exceeded).
GOLDEN = [
    (0.10, 0.01, 0.0, True, 0.10),  # best 0 exceeds no level -> level 0; 0.1 - 0 > 0
    (0.10, 0.01, 0.0, False, 0.10),  # equal is not better (strict >)
    (0.55, 0.01, 0.0, True, 0.55),  # best 0.1 > 0.0 -> level 0
    (0.56, 0.005, 0.02, False, 0.55),  # best 0.55 > 0.5 -> level 1; +0.01 < gate 0.02
    (0.60, 0.005, 0.02, True, 0.60),  # +0.05 > 0.02
    (0.85, 0.005, 0.02, True, 0.85),  # still level 1 (best 0.6)
    (0.855, 0.001, 0.01, False, 0.85),  # best 0.85 > 0.8 -> level 2; +0.005 < 0.01
    (0.95, 0.001, 0.01, True, 0.95),
    (0.953, 0.0005, 0.005, False, 0.95),  # level 3; +0.003 < 0.005
    (0.96, 0.0005, 0.005, True, 0.96),
    (0.50, 0.0005, 0.005, False, 0.96),  # a drop never lowers best or raises lr
]


def test_check_and_adjust_golden_table():
    state = initial_state(LEVELS, LRS, GATES)
    assert state == ScheduleState(best=0.0, lr=0.01, gate=0.0, streak=0)
    for acc, lr, gate, save, best in GOLDEN:
        state, need_save = check_and_adjust(acc, state, LEVELS, LRS, GATES)
        assert (state.lr, state.gate, need_save, state.best) == pytest.approx((lr, gate, save, best)), acc


@pytest.mark.parametrize(
    "best,expected",
    [(0.0, 0), (0.3, 0), (0.5, 0), (0.5001, 1), (0.8, 1), (0.81, 2), (0.9, 2), (0.95, 3), (1.0, 3)],
)
def test_level_index(best, expected):
    assert level_index(best, LEVELS) == expected


def test_level_index_when_first_level_is_above_zero():
    assert level_index(0.0, (0.2, 0.6)) == 0
    assert level_index(0.7, (0.2, 0.6)) == 1


def test_check_and_adjust_keeps_streak():
    state = ScheduleState(best=0.2, lr=0.01, gate=0.0, streak=3)
    new, _ = check_and_adjust(0.3, state, LEVELS, LRS, GATES)
    assert new.streak == 3


@pytest.mark.parametrize(
    "accs,expectation,streak",
    [
        ([1.0, 1.0, 1.0], 0.99, 3),
        ([1.0, 0.98, 1.0], 0.99, 1),
        ([0.99, 0.99], 0.99, 2),  # >= counts
        ([], 0.99, 0),
    ],
)
def test_update_streak(accs, expectation, streak):
    s = 0
    for a in accs:
        s = update_streak(s, a, expectation)
    assert s == streak


@pytest.mark.parametrize(
    "valid,streak,expect",
    [
        (0.98, 5, True),  # both bars met exactly
        (0.979, 5, False),  # valid just short
        (0.99, 4, False),  # not enough consecutive batches
        (1.0, 50, True),
    ],
)
def test_should_break(valid, streak, expect):
    assert should_break(valid, streak, valid_expectation=0.98, consecutive=5) is expect


@pytest.mark.parametrize(
    "step,every,expect",
    [(0, 200, False), (1, 200, True), (2, 200, False), (200, 200, False), (201, 200, True),
     (401, 200, True), (1, 1, True), (2, 1, True)],
)
def test_is_check_step(step, every, expect):
    assert is_check_step(step, every) is expect


@pytest.mark.parametrize("step,kind,warmup,lr", [
    (0, "constant", 0, 0.1),
    (999, "constant", 0, 0.1),
    (0, "cosine", 0, 0.1),
    (500, "cosine", 0, 0.05),          # half way: cos(pi/2) = 0
    (1000, "cosine", 0, 0.0),
    (0, "cosine", 100, 0.001),         # warmup: (0 + 1) / 100 of the peak
    (99, "cosine", 100, 0.1),
    (550, "cosine", 100, 0.05),        # half of the 900 steps after warmup
    (499, "step", 0, 0.1),
    (500, "step", 0, 0.01),            # x0.1 at 50% of the budget ...
    (750, "step", 0, 0.001),           # ... and at 75%
    (9, "algorithm1", 10, 0.1),
    (4, "algorithm1", 10, 0.05),       # Algorithm 1's lr, warmed up too
])
def test_lr_at_golden(step, kind, warmup, lr):
    assert schedule.lr_at(step, kind, 0.1, 1000, warmup) == pytest.approx(lr, abs=1e-12)
