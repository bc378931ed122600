"""A stored run's config read with today's keys (anet/resume.py)."""
from anet.config import load_config, to_dict
from anet.resume import LEGACY, keep_start, normalise, notice


def test_a_key_added_since_gets_the_value_the_run_used():
    stored = to_dict(load_config(None, ["model.width=0.5"]))
    del stored["model"]["init"], stored["train"]["clipnorm"]
    filled, added = normalise(stored)
    # model.init's default changed when it was added: the old run used Keras' glorot_uniform
    assert added == {"model.init": "glorot_uniform", "train.clipnorm": 0.0}
    assert filled["model"] == {**stored["model"], "init": "glorot_uniform"}
    assert filled["model"]["width"] == 0.5 and "init" not in stored["model"]  # a copy
    assert LEGACY["model.init"] == "glorot_uniform"


def test_a_complete_config_is_left_as_it_is():
    stored = to_dict(load_config(None, ["model.init=alexnet"]))
    assert normalise(stored) == (stored, {})


def test_a_missing_section_is_filled_whole():
    stored = to_dict(load_config(None))
    del stored["run"]
    filled, added = normalise(stored)
    assert filled["run"] == to_dict(load_config(None))["run"]
    assert set(added) == {f"run.{k}" for k in filled["run"]}


def test_notice_names_the_keys_and_values():
    line = notice("runs/x", {"model.init": "glorot_uniform", "train.clipnorm": 0.0})
    assert line == ("note: runs/x was made before 2 config key(s) existed; read with "
                    "model.init='glorot_uniform' (what runs before it used), train.clipnorm=0.0")


def test_a_resumed_run_keeps_its_own_init():
    cfg = load_config(None)  # today's default: he_normal
    stored = normalise({k: v for k, v in to_dict(cfg).items() if k != "model"}
                       | {"model": {k: v for k, v in to_dict(cfg)["model"].items() if k != "init"}})[0]
    kept, changed = keep_start(cfg, stored)
    assert kept.model.init == "glorot_uniform" and kept.model.width == cfg.model.width
    assert changed == [("model.init", "he_normal", "glorot_uniform")]
    assert keep_start(kept, stored) == (kept, [])  # nothing to change
