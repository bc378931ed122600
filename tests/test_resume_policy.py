"""The resume policy (anet/resume.py): which config changes a stored run refuses, and when it
is finished."""

from dataclasses import replace

import pytest

from anet import resume as R
from anet.errors import AnetError
from tests.test_checkpoints import state


def test_resume_policy(tmp_path):
    from anet.config import load_config, to_dict

    cfg = load_config(None, ["train.epochs=3", "train.max_steps=50"])
    s = replace(state(10), config=to_dict(cfg))
    R.check_resumable(load_config(None, ["train.epochs=9"]), s, tmp_path)  # epochs may change
    with pytest.raises(AnetError, match="existing run has train.batch_size=64 but the config says 32"):
        R.check_resumable(load_config(None, ["train.batch_size=32"]), s, tmp_path)
    with pytest.raises(AnetError, match=r"existing run has model\.width=1\.0 but the config says 0\.5; "
                                        r"use another --run-dir or restore model\.width to resume"):
        R.check_resumable(load_config(None, ["model.width=0.5"]), s, tmp_path)
    assert R.finished_reason(s, cfg) == ""
    assert R.finished_reason(replace(s, epoch=3), cfg) == "all 3 epochs done"
    assert R.finished_reason(replace(s, step=50), cfg) == "train.max_steps=50 reached"
    assert R.finished_reason(replace(s, stop_reason="early_break"), cfg) == "early break"


@pytest.mark.parametrize("now,stored,found", [
    ({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 2}}, None),
    ({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}}, ("m.b.c", 2, 3)),
    ({"a": 1, "b": {"c": 2}}, {"a": 5, "b": {"c": 3}}, ("m.a", 1, 5)),  # the first one, in order
    ({"a": 1}, {"a": 1, "z": 0}, ("m.z", None, 0)),  # a key only the stored run has
    ({"a": [1, 2]}, {"a": [1, 3]}, ("m.a", [1, 2], [1, 3])),
    (4, None, ("m", 4, None)),
])
def test_first_difference_names_the_leaf_key(now, stored, found):
    assert R.first_difference(now, stored, "m") == found
