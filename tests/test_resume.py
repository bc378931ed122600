"""A stored run's config read with today's keys (anet/resume.py)."""
import pytest

from anet.config import load_config, to_dict
from anet.resume import LEGACY, bn_as_built, keep_start, normalise, notice


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


def _old(model: str, batch_norm: bool) -> dict:
    """A config as a run stored it before batch_norm applied to every model (no model.init)."""
    stored = to_dict(load_config(None, [f"model.name={model}", f"model.batch_norm={batch_norm}"]))
    del stored["model"]["init"]
    return stored


@pytest.mark.parametrize("model", ["alexnet", "anetc6"])
def test_an_old_alexnet_or_anetc6_run_reads_batch_norm_false(model):
    stored = _old(model, True)  # back then the key applied to VGG16 only: no BN layers
    filled, added = normalise(stored)
    assert filled["model"]["batch_norm"] is False and stored["model"]["batch_norm"] is True
    assert added == {"model.init": "glorot_uniform"}  # the note for batch_norm is bn_as_built's
    cfg = load_config(None, [f"model.name={model}", "model.batch_norm=true"])  # its old config
    read, note = bn_as_built(cfg, stored, "runs/x")
    assert read.model.batch_norm is False and read.model.width == cfg.model.width
    assert note == (f"note: runs/x was made when model.batch_norm applied to VGG16 only, so its "
                    f"{model} has no BN layers; read with model.batch_norm=false")
    assert bn_as_built(cfg, _old(model, False), "runs/x")[0].model.batch_norm is False
    assert bn_as_built(load_config(None, [f"model.name={model}"]), _old(model, False),
                       "runs/x")[1] == ""  # false on both sides: nothing to say


def test_batch_norm_keeps_its_meaning_for_vgg16_and_for_new_runs():
    old_vgg = _old("vgg16", True)
    assert normalise(old_vgg)[0]["model"]["batch_norm"] is True
    cfg = load_config(None, ["model.name=vgg16", "model.batch_norm=true"])
    assert bn_as_built(cfg, old_vgg, "runs/x") == (cfg, "")
    new = to_dict(load_config(None, ["model.name=alexnet", "model.batch_norm=true"]))
    assert normalise(new) == (new, {})  # stored with model.init: BN layers were built
    cfg = load_config(None, ["model.name=alexnet", "model.batch_norm=true"])
    assert bn_as_built(cfg, new, "runs/x") == (cfg, "")
    assert bn_as_built(cfg, _old("anetc6", True), "runs/x") == (cfg, "")  # another model
