"""Stall detection: golden values of the pure functions."""

import math

import pytest

from anet import stall


@pytest.mark.parametrize("budget,share,every,step", [
    (1968, 0.1, 200, 201),   # the README's 2-epoch Fashion-MNIST run: 10% = 197 -> check 201
    (1968, 0.5, 200, 1001),
    (36, 0.1, 11, 12),       # never at step 1 (a one-batch window)
    (1968, 0.0, 200, 0),     # disabled
    (150, 0.9, 200, 0),      # no check after step 1 within the budget
    (400, 1.0, 200, 201),    # past the budget: the last check within it
])
def test_check_step_golden(budget, share, every, step):
    assert stall.check_step(budget, share, every) == step


def test_budget_is_capped_by_max_steps():
    assert stall.budget(2, 984, 0) == 1968
    assert stall.budget(2, 984, 500) == 500
    assert stall.budget(2, 984, 5000) == 1968


@pytest.mark.parametrize("acc,classes,loss,expected", [
    (0.10, 10, math.log(10), True),
    (0.124, 10, 2.5, True),          # weight decay may lift the loss above ln(10)
    (0.125, 10, math.log(10), False),  # 1.25 x chance is not chance any more
    (0.10, 10, 1.5, False),          # loss well below ln(10): it is learning something
    (0.10, 10, None, True),
    (0.5, 2, 0.69, True),
    (0.7, 2, 0.69, False),
    (1.0, 1, None, False),           # one class: nothing to be at chance against
])
def test_at_chance_golden(acc, classes, loss, expected):
    assert stall.at_chance(acc, classes, loss) is expected


def test_messages_name_what_to_change():
    msg = stall.train_warning(201, 1968, 0.101, 2.3026, 10, stop=False)
    assert msg.startswith("warning: step 201 of 1968: training accuracy 0.101")
    assert "ln(10) = 2.303" in msg and "continuing (train.on_stall=warn)" in msg
    assert "model.init=he_normal" in msg
    assert "all 4 checkpoint(s) are at chance" in stall.eval_warning(4, 0.1, 10)
