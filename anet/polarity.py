"""Is the polarity head better than chance? Its score on a split, the verdict, and what
``evaluate``, ``predict --cell`` and the karyograms do with it.

A head whose up/down calls are coin flips would turn half of a karyogram's chromosomes the
wrong way, so such a head is reported, recorded in ``eval.json`` (``polarity.at_chance``) and
not used to turn chromosomes. "Clearly better than chance" needs both a one-sided binomial
test against 0.5 (p < :data:`ALPHA`, given the number of chromosomes of known polarity) and
a practical floor (accuracy >= :data:`FLOOR`): on thousands of chromosomes 0.53 is
significant, yet still turns nearly half of them the wrong way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ALPHA = 0.01  # one-sided binomial test against 0.5
FLOOR = 0.6  # below this the turns are too often wrong to use, whatever the p-value
ADVICE = ("a larger input (data.image_size: 227), model.name: alexnet, or more epochs "
          "(train.epochs)")


@dataclass(frozen=True)
class PolarityScore:
    """The head's accuracy on a split's chromosomes of known polarity and the verdict
    (``eval.json``'s ``polarity``)."""

    accuracy: float | None  # None: no chromosome of the split has a known polarity
    examples: int  # chromosomes of known polarity
    p_value: float | None  # one-sided binomial test of the hits against 0.5
    at_chance: bool  # not clearly better than chance: p >= ALPHA or accuracy < FLOOR

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data) -> PolarityScore | None:
        """The score recorded in ``eval.json``'s ``polarity`` (None when absent or not
        understood); one written before the verdict existed is judged from its accuracy."""
        if not isinstance(data, dict):
            return None
        acc, n = data.get("accuracy"), data.get("examples")
        if not isinstance(n, int) or not (acc is None or isinstance(acc, (int, float))):
            return None
        return judge(round(acc * n) if acc is not None else 0, n)


def judge(hits: int, examples: int, *, alpha: float = ALPHA, floor: float = FLOOR) -> PolarityScore:
    """The verdict on ``hits`` right calls out of ``examples``: at chance unless the one-sided
    binomial test rejects 0.5 at ``alpha`` and the accuracy reaches ``floor``. No examples:
    no accuracy and no verdict against the head (``at_chance`` False: nothing was measured)."""
    from scipy.stats import binomtest

    if examples <= 0:
        return PolarityScore(None, 0, None, False)
    p = float(binomtest(hits, examples, 0.5, alternative="greater").pvalue)
    acc = hits / examples
    return PolarityScore(acc, examples, p, bool(p >= alpha or acc < floor))


def score(probs: np.ndarray | None, truth: np.ndarray | None) -> PolarityScore | None:
    """The head's score from its probabilities [n, 2] and the true polarity (-1 unknown);
    None for a model without the head."""
    if probs is None:
        return None
    known = truth >= 0
    hits = int(((probs.argmax(axis=1) == truth) & known).sum())
    return judge(hits, int(known.sum()))


def describe(s: PolarityScore) -> str:
    """``accuracy 0.5166 over 4140 chromosomes (one-sided binomial p=0.02 against 0.5)``."""
    return (f"accuracy {s.accuracy:.4f} over {s.examples} chromosomes (one-sided binomial "
            f"p={s.p_value:.2g} against 0.5)")


def warning(run_dir: str | Path, s: PolarityScore, where: str) -> str:
    """The one-line warning for a head at chance: the run, the numbers, what to do."""
    return (f"warning: {run_dir}: the polarity head is at chance on {where} ({describe(s)}; "
            f"clearly better needs p < {ALPHA:g} and accuracy >= {FLOOR:g}): its up/down calls "
            f"are coin flips, so karyograms do not turn chromosomes by them; train with {ADVICE}")


NOTE = "chromosomes not turned p-arm up: the polarity head is at chance ({})"


def karyogram_turns(calls, s: PolarityScore | None) -> tuple[np.ndarray | None, str | None]:
    """(the calls to turn a karyogram's chromosomes by, a note for its caption): the head's
    calls, or none and a note saying why when the head is at chance."""
    if calls is None or s is None or not s.at_chance:
        return calls, None
    acc = f"accuracy {s.accuracy:.2f}" if s.accuracy is not None else "no accuracy"
    return None, NOTE.format(acc)
