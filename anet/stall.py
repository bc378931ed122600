"""Stall detection: a run whose accuracy is still at chance, as pure functions.

A network that starts with an almost flat output (e.g. Glorot kernels, zero biases and two LRN
layers on raw inputs) can sit at chance accuracy, with the loss at ln(classes), for its whole
budget and still end normally. ``train`` checks once, at the first Algorithm 1 check at or
after ``train.stall_share`` of the step budget, and warns or stops (``train.on_stall``);
``evaluate`` says so when every checkpoint scores at chance on the validation split.
"""

from __future__ import annotations

import math

CHANCE_FACTOR = 1.25  # accuracy below 1.25x chance counts as chance (10 classes: < 0.125)
LOSS_SHARE = 0.9  # ... when the loss is also still above 0.9 * ln(classes)
ADVICE = ("try model.init=he_normal, data.normalize=standardize, model.batch_norm=true, "
          "or other schedule.lrs")


def check_step(budget_steps: int, share: float, every: int) -> int:
    """The step of the one stall check: the first Algorithm 1 check step (1, 1 + every, ...;
    never step 1, whose window is one batch) at or after ``share * budget_steps``, or the last
    one within the budget when that falls past it; 0 = never (``share`` is 0, or the budget
    holds no check after step 1)."""
    if share <= 0 or budget_steps <= 0:
        return 0
    k = max(1, math.ceil((share * budget_steps - 1) / every))
    last = (budget_steps - 1) // every
    k = min(k, last)
    return 1 + k * every if k >= 1 else 0


def budget(epochs: int, steps_per_epoch: int, max_steps: int) -> int:
    """Training steps the config allows (``max_steps`` caps ``epochs``)."""
    total = epochs * steps_per_epoch
    return min(total, max_steps) if max_steps else total


def chance(num_classes: int) -> float:
    return 1.0 / max(num_classes, 1)


def at_chance(acc: float, num_classes: int, loss: float | None = None) -> bool:
    """Accuracy below ``CHANCE_FACTOR`` x chance and (when given) the loss still above
    ``LOSS_SHARE`` x ln(classes), the loss of a uniform guess."""
    if num_classes < 2 or acc >= CHANCE_FACTOR * chance(num_classes):
        return False
    return loss is None or loss > LOSS_SHARE * math.log(num_classes)


def train_warning(step: int, budget_steps: int, acc: float, loss: float, num_classes: int,
                  stop: bool) -> str:
    """The one line ``train`` prints when the check finds the run at chance."""
    what = "stopping (train.on_stall=stop)" if stop else "continuing (train.on_stall=warn)"
    return (f"warning: step {step} of {budget_steps}: training accuracy {acc:.3f} is "
            f"at chance ({chance(num_classes):.3f}) and the loss {loss:.3f} is near "
            f"ln({num_classes}) = {math.log(num_classes):.3f}: the network is not learning; "
            f"{what}; {ADVICE}")


def eval_warning(n_checkpoints: int, best: float, num_classes: int) -> str:
    """The line ``evaluate`` prints when every checkpoint is at chance on valid."""
    return (f"warning: all {n_checkpoints} checkpoint(s) are at chance on the validation split "
            f"(best accuracy {best:.4f}, chance {chance(num_classes):.4f}): the run never "
            f"learned; the choice below means nothing; {ADVICE}")
