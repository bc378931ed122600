"""Algorithm 1 (check and adjust) and the early break, as pure functions of their inputs.

The paper's Algorithm 1, run every ``eval_every_steps``::

    if acc_best > level_i (the highest such level):  set gate_i and lr_i
    if acc - acc_best > gate_i:                       need_save = True; acc_best = acc

The learning rate returned is the one set by the best accuracy *before* this check, as in
the paper; the new best takes effect at the next check. When the best exceeds no level
(at the start, best = 0), the first level's lr and gate apply.

The paper also "simply sets the accuracy to 0 if it is smaller than 0.2" for its first
checkpoint; that is a plotting remark, not part of the policy, so it is not reproduced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ScheduleState:
    """Everything the policy carries from one step to the next (stored in checkpoints)."""

    best: float = 0.0  # best monitored accuracy seen at a check
    lr: float = 0.0  # learning rate in force
    gate: float = 0.0  # gate in force
    streak: int = 0  # consecutive training batches with accuracy >= train_expectation


def level_index(best: float, levels: Sequence[float]) -> int:
    """Index of the highest level that ``best`` strictly exceeds (0 when it exceeds none)."""
    idx = 0
    for i, level in enumerate(levels):
        if best > level:
            idx = i
    return idx


def initial_state(levels: Sequence[float], lrs: Sequence[float], gates: Sequence[float]) -> ScheduleState:
    """State before the first step: best 0, first level's lr and gate."""
    i = level_index(0.0, levels)
    return ScheduleState(best=0.0, lr=lrs[i], gate=gates[i], streak=0)


def check_and_adjust(
    acc: float,
    state: ScheduleState,
    levels: Sequence[float],
    lrs: Sequence[float],
    gates: Sequence[float],
) -> tuple[ScheduleState, bool]:
    """One run of Algorithm 1.

    Args:
      acc: the accuracy just measured (mini-batch or validation, per ``schedule.monitor``).
      state: the policy state before this check.
      levels, lrs, gates: the config's ascending accuracy levels and their lr and gate.

    Returns:
      (new state, need_save). ``need_save`` is True when ``acc - best > gate``.
    """
    i = level_index(state.best, levels)
    lr, gate = lrs[i], gates[i]
    need_save = (acc - state.best) > gate
    best = acc if need_save else state.best
    return replace(state, best=best, lr=lr, gate=gate), need_save


def update_streak(streak: int, batch_acc: float, train_expectation: float) -> int:
    """Consecutive-batch counter for the early break: +1 when the batch meets the bar, else 0."""
    return streak + 1 if batch_acc >= train_expectation else 0


def should_break(
    valid_acc: float,
    streak: int,
    valid_expectation: float,
    consecutive: int,
) -> bool:
    """Early break, checked after each epoch.

    Stop when validation accuracy reached ``valid_expectation`` and the last ``consecutive``
    training batches (the streak at the end of the epoch) all reached ``train_expectation``.
    """
    return valid_acc >= valid_expectation and streak >= consecutive


def is_check_step(step: int, eval_every_steps: int) -> bool:
    """Whether Algorithm 1 runs after global step ``step`` (1-based).

    Steps 1, 1 + k, 1 + 2k, ...: the paper's first checkpoint is saved "after the model just
    run just one mini-batch", then every ``eval_every_steps``.
    """
    return step >= 1 and (step - 1) % eval_every_steps == 0


# --------------------------------------------------------------------------- standard recipes

SCHEDULE_TYPES = ("algorithm1", "cosine", "step", "constant")
STEP_MILESTONES = (0.5, 0.75)  # `step`: x0.1 at half and at three quarters of the budget


def lr_at(step: int, kind: str, peak: float, budget: int, warmup_steps: int = 0) -> float:
    """Learning rate for optimizer step ``step`` (0-based: the update about to be made).

    ``cosine`` decays ``peak`` to 0 over the budget after the warmup (Keras' CosineDecay);
    ``step`` multiplies it by 0.1 at each of :data:`STEP_MILESTONES` of the budget;
    ``constant`` keeps it; ``algorithm1`` returns ``peak`` (Algorithm 1's own lr, set at its
    checks). Every type ramps linearly from ``peak / warmup_steps`` to ``peak`` over the first
    ``warmup_steps`` steps.
    """
    if warmup_steps and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if kind == "cosine":
        t = min(max(step - warmup_steps, 0) / max(budget - warmup_steps, 1), 1.0)
        return peak * 0.5 * (1.0 + math.cos(math.pi * t))
    if kind == "step":
        return peak * 0.1 ** sum(step >= m * budget for m in STEP_MILESTONES)
    return peak
