"""The polarity head's verdict (anet/polarity.py): golden binomial p-values and the floor,
eval.json round trips, and what evaluate / predict --cell / the karyograms do with a head at
chance and with a good one (the tiny run's head is judged as recorded, not trained to a level)."""

from __future__ import annotations

import json
from math import comb

import numpy as np
import pytest
from PIL import Image

from anet import karyogram, polarity
from anet.polarity import PolarityScore, judge
from tests.cli import run_cli
from tests.test_polarity import polar  # noqa: F401  (the tiny trained run with the head)
from tests.tinydata import cell_folder


def _binom_sf(hits: int, n: int) -> float:
    """P(X >= hits), X ~ Binomial(n, 0.5), by hand."""
    return sum(comb(n, k) for k in range(hits, n + 1)) / 2 ** n


@pytest.mark.parametrize("hits, n, p, at_chance", [
    (2140, 4140, 0.015368448975876, True),   # the demo's B test split, 0.517: p > 0.01
    (1478, 2760, 1.0232909822422e-4, True),  # 0.536: significant, but under the 0.6 floor
    (30, 48, 0.055701445530509, True),       # 0.625 on a tiny split: not clearly better
    (62, 100, 0.010489367838926, True),      # p just above 0.01
    (64, 100, 0.003318560257963, False),
    (80, 100, 5.579544528626e-10, False),
    (7, 10, 0.171875, True),
    (10, 10, 0.0009765625, False),
    (0, 10, 1.0, True),
])
def test_judge_golden(hits, n, p, at_chance):
    s = judge(hits, n)
    assert s.accuracy == pytest.approx(hits / n) and s.examples == n
    assert s.p_value == pytest.approx(p, rel=1e-9) and s.p_value == pytest.approx(_binom_sf(hits, n))
    assert s.at_chance is at_chance


def test_nothing_known_is_no_verdict():
    assert judge(0, 0) == PolarityScore(None, 0, None, False)
    assert polarity.score(None, None) is None  # no head
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert polarity.score(probs, np.array([-1, -1, -1])) == judge(0, 0)
    assert polarity.score(probs, np.array([0, 0, -1])) == judge(1, 2)  # unknown ones left out


def test_eval_json_round_trip_and_old_records():
    s = judge(62, 100)
    assert PolarityScore.from_json(json.loads(json.dumps(s.to_json()))) == s
    # an eval.json written before the verdict: judged from accuracy and examples
    assert PolarityScore.from_json({"accuracy": 0.5166, "examples": 4140}) == judge(2139, 4140)
    assert PolarityScore.from_json({"accuracy": None, "examples": 0}) == judge(0, 0)
    for junk in (None, [], {"accuracy": "x", "examples": 3}, {"accuracy": 0.5}):
        assert PolarityScore.from_json(junk) is None


def test_karyogram_turns_only_by_a_good_head():
    calls = np.array([0, 1, 1])
    assert polarity.karyogram_turns(calls, judge(80, 100)) == (calls, None)
    assert polarity.karyogram_turns(calls, None) == (calls, None)
    turned, note = polarity.karyogram_turns(calls, judge(52, 100))
    assert turned is None and note == ("chromosomes not turned p-arm up: the polarity head is "
                                       "at chance (accuracy 0.52)")
    line = polarity.warning("runs/r", judge(2140, 4140), "test")
    assert line == ("warning: runs/r: the polarity head is at chance on test (accuracy 0.5169 "
                    "over 4140 chromosomes (one-sided binomial p=0.015 against 0.5); clearly "
                    "better needs p < 0.01 and accuracy >= 0.6): its up/down calls are coin "
                    "flips, so karyograms do not turn chromosomes by them; train with a larger "
                    "input (data.image_size: 227), model.name: alexnet, or more epochs "
                    "(train.epochs)")


@pytest.fixture
def drawn(monkeypatch):
    """Each karyogram.draw call's polarity and note (the drawing itself still runs)."""
    calls, real = [], karyogram.draw

    def spy(*args, **kw):
        calls.append((kw.get("polarity"), kw.get("note")))
        return real(*args, **kw)

    monkeypatch.setattr(karyogram, "draw", spy)
    return calls


@pytest.mark.parametrize("verdict", [(26, 48), (48, 48)], ids=["at-chance", "good"])
def test_evaluate_warns_records_and_does_not_turn(polar, verdict, drawn, monkeypatch, capsys):  # noqa: F811
    _, _, run = polar
    forced = judge(*verdict)  # the tiny head's real accuracy is whatever 2 epochs gave
    monkeypatch.setattr(polarity, "judge", lambda hits, n, **kw: forced)
    code, out, err = run_cli(["evaluate", "--run-dir", run, "--karyograms", "1"], capsys)
    assert code == 0, err
    recorded = json.loads((run / "eval.json").read_text())["polarity"]
    assert recorded == forced.to_json()
    warned = [line for line in err.splitlines() if "polarity head is at chance" in line]
    (pol, note), = drawn
    if forced.at_chance:
        assert warned == [polarity.warning(run, forced, "test")]
        assert pol is None and note.startswith("chromosomes not turned p-arm up")
        assert "accuracy 0.5417 (one-sided binomial p=0.33 against 0.5: at chance)" in out, out
    else:
        assert warned == [] and note is None and pol is not None and len(pol) > 0
        assert "accuracy 1.0000 (one-sided binomial p=3.6e-15 against 0.5)" in out


@pytest.mark.parametrize("accuracy, at_chance", [(0.52, True), (0.9, False)])
def test_predict_cell_follows_eval_json(polar, accuracy, at_chance, drawn, tmp_path, capsys):  # noqa: F811
    _, data, run = polar
    code, _, err = run_cli(["evaluate", "--run-dir", run], capsys)
    assert code == 0, err
    ev = json.loads((run / "eval.json").read_text())
    ev["polarity"] = {"accuracy": accuracy, "examples": 1000}  # as an older eval.json has it
    (run / "eval.json").write_text(json.dumps(ev))
    cell = cell_folder(data, tmp_path / "cell0")
    code, out, err = run_cli(["predict", "--run-dir", run, "--cell", cell, "--karyogram",
                              tmp_path / "k.png"], capsys)
    assert code == 0 and out.splitlines()[-1].startswith("call: "), err
    assert all(line.split("\t")[3] in ("up", "down") for line in out.splitlines()[1:-1])
    warned = [line for line in err.splitlines() if "polarity head is at chance" in line]
    (pol, note), = drawn
    if at_chance:
        assert len(warned) == 1 and warned[0].startswith(f"warning: {run}: the polarity head is "
                                                         "at chance on test (eval.json, ckpt-")
        assert "accuracy 0.5200 over 1000 chromosomes" in warned[0]
        assert pol is None and note.endswith("(accuracy 0.52)")
    else:
        assert warned == [] and note is None and len(pol) == 6
    assert Image.open(tmp_path / "k.png").format == "PNG"
