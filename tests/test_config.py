"""Config loading: defaults, overrides, and a clear error for every bad input."""

import sys

import pytest
import yaml
from click.testing import CliRunner

from anet.cli import cli, main
from anet.config import Config, ConfigError, dump_yaml, from_dict, load_config, to_dict, write_config
from tests.cli import run_cli


def write(tmp_path, text, name="exp.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_name_and_overrides(tmp_path):
    p = write(tmp_path, "model:\n  name: vgg16\ntrain:\n  batch_size: 32\n")
    cfg = load_config(p, ["train.epochs=3", "schedule.levels=[0.0, 0.9]",
                          "schedule.lrs=[0.1, 0.01]", "schedule.gates=[0, 0.01]", "data.augment=true"])
    assert cfg.name == "exp"
    assert cfg.model.name == "vgg16" and cfg.train.batch_size == 32 and cfg.train.epochs == 3
    assert cfg.schedule.levels == (0.0, 0.9) and cfg.data.augment is True
    assert cfg.train.eval_every_steps == 200  # default kept
    assert load_config(None) == Config()


def test_override_into_an_empty_yaml_section(tmp_path):
    p = write(tmp_path, "train:\nmodel:\n  name: vgg16\n")  # `train:` alone is None in YAML
    cfg = load_config(p, ["train.epochs=3"])
    assert cfg.train.epochs == 3 and cfg.train.batch_size == 64 and cfg.model.name == "vgg16"


def test_int_and_yaml11_exponent_accepted_for_float(tmp_path):
    cfg = load_config(write(tmp_path, "model: {dropout: 0, weight_decay: 5e-4}\n"))
    assert cfg.model.dropout == 0.0 and isinstance(cfg.model.dropout, float)
    assert cfg.model.weight_decay == 0.0005
    with pytest.raises(ConfigError, match="model.dropout must be float, got 'lots'"):
        load_config(write(tmp_path, "model: {dropout: lots}\n"))


def test_round_trip_through_dict_and_file(tmp_path):
    cfg = load_config(None, ["model.name=alexnet", "run.seed=7"])
    assert from_dict(to_dict(cfg)) == cfg
    path = write_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(path) == cfg


@pytest.mark.parametrize(
    "text,overrides,message",
    [
        ("model:\n  nmae: alexnet\n", [], "unknown key 'model.nmae'; did you mean 'model.name'?"),
        ("trian:\n  epochs: 3\n", [], "unknown key 'trian'; did you mean 'train'?"),
        ("train:\n  batch_size: big\n", [], "train.batch_size must be int, got 'big'"),
        ("train:\n  batch_size: 0\n", [], "train.batch_size must be >= 1, got 0"),
        ("model:\n  name: resnet\n", [], "model.name must be one of alexnet, anetc6, vgg16"),
        ("model:\n  name: alexnt\n", [], "did you mean 'alexnet'?"),
        ("model:\n  dropout: 1.5\n", [], "model.dropout must be in [0, 1), got 1.5"),
        ("model:\n  init: xavier\n", [], "model.init must be one of he_normal, glorot_uniform"),
        ("schedule:\n  levels: [0.5, 0.1, 0.2, 0.3]\n", [], "schedule.levels must be ascending"),
        ("schedule:\n  lrs: [0.1]\n", [], "must have as many entries as schedule.levels (4)"),
        ("schedule:\n  levels: 0.5\n", [], "schedule.levels must be a list"),
        ("train:\n  precision: half\n", [], "train.precision must be one of"),
        ("schedule:\n  lrs: [.inf, 0.1, 0.1, 0.1]\n", [], "schedule.lrs must be finite and > 0"),
        ("schedule:\n  lrs: [0, 0.1, 0.1, 0.1]\n", [], "schedule.lrs must be finite and > 0"),
        ("- a\n- b\n", [], "top level must be a mapping"),
        ("model: [1, 2]\n", [], "model must be a mapping"),
        ("model: {name: [\n", [], "not valid YAML"),
        ("run: {seed: 0}\n", ["train.batch_size"], "expected key.sub=value"),
        ("run: {seed: 0}\n", ["train.batchsize=3"], "did you mean 'train.batch_size'?"),
        ("run: {seed: 0}\n", ["model.name.x=3"], "model.name must be str"),
        ("model: {name: alexnet}\n", ["model.name.x=3"], "'name' is not a section"),
        ("run: {keep_best: 0}\n", [], "run.keep_best must be >= 1 (or null to keep every "
                                      "Algorithm 1 checkpoint), got 0"),
        ("run: {keep_best: -2}\n", [], "run.keep_best must be >= 1"),
        ("run: {keep_best: 2.5}\n", [], "run.keep_best must be int or null, got 2.5"),
        ("run: {keep_best: true}\n", [], "run.keep_best must be int or null, got True"),
        ("run: {seed: 0}\n", ["run.keep_best=three"], "run.keep_best must be int or null, got 'three'"),
    ],
)
def test_bad_config_errors_name_file_and_key(tmp_path, text, overrides, message):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p, overrides)
    assert message in str(e.value)
    if not overrides or "=" in overrides[0]:
        assert str(p) in str(e.value) or "--set" in str(e.value)


def test_keep_best_is_null_by_default_and_round_trips(tmp_path):
    assert load_config(None).run.keep_best is None
    cfg = load_config(write(tmp_path, "run: {keep_best: 3}\n"))
    assert cfg.run.keep_best == 3 and from_dict(to_dict(cfg)) == cfg
    assert load_config(write_config(load_config(None), tmp_path / "c.yaml")).run.keep_best is None


def test_bad_keep_best_is_one_line_exit_2(tmp_path, capsys):
    p = write(tmp_path, "run: {keep_best: 0}\n")
    code, _, err = run_cli(["config", p], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: {p}")
    assert "run.keep_best must be >= 1" in err


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_cli_config_error_is_one_line_exit_2(tmp_path):
    p = write(tmp_path, "model:\n  nmae: alexnet\n")
    result = CliRunner().invoke(cli, ["summary", str(p)], standalone_mode=False)
    # The CLI entry point (anet.cli.main) turns AnetError into "error: ..." + exit 2;
    # check through a subprocess-free call of main().
    assert isinstance(result.exception, ConfigError)


def test_main_exit_code_and_message(tmp_path, capsys, monkeypatch):
    import sys

    from anet.cli import main

    p = write(tmp_path, "train:\n  epochs: -1\n")
    monkeypatch.setattr(sys, "argv", ["anet", "train", str(p)])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {p}: train.epochs must be >= 1, got -1"]


@pytest.mark.parametrize("text,lines", [
    ("train:\n  epochs: 2\n  batch_size: 8\n  epochs: 3000\n", "2 and 4"),
    ("train: {epochs: 2, epochs: 3}\n", "1 and 1"),
    ("model: {name: vgg16}\nmodel: {name: alexnet}\n", "1 and 2"),
])
def test_duplicate_key_names_key_and_both_lines(tmp_path, text, lines):
    p = write(tmp_path, text)
    key = "model" if text.startswith("model") else "epochs"
    with pytest.raises(ConfigError, match=rf"^{p}: duplicate key '{key}' on lines {lines}; keep one$"):
        load_config(p)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n"])
def test_empty_config_is_an_error(tmp_path, text):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^{p}: the config is empty; state at least the dataset"):
        load_config(p)


def test_binary_config_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    p = tmp_path / "exp.yaml"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    monkeypatch.setattr(sys, "argv", ["anet", "summary", str(p)])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (f"error: {p}: not a UTF-8 text file (byte 0 is 0x89); a "
                                       "config is YAML text\n")


def test_deterministic_with_xla_is_refused_with_the_fix(tmp_path):
    p = write(tmp_path, "train: {deterministic: true, jit_compile: true}\n")
    with pytest.raises(ConfigError, match=(
            rf"^{p}: train.deterministic needs train.jit_compile: false \(XLA has no deterministic "
            r"max-pool gradient\); set train.jit_compile: false or --set train.jit_compile=false$")):
        load_config(p)
    assert load_config(p, ["train.jit_compile=false"]).train.deterministic
    assert load_config(p, ["train.jit_compile=auto"]).train.deterministic  # auto: XLA off then


@pytest.mark.parametrize("value,expected", [("", "auto"), ("jit_compile: auto", "auto"),
                                            ("jit_compile: true", True),
                                            ("jit_compile: false", False)])
def test_jit_compile_is_auto_true_or_false(tmp_path, value, expected):
    cfg = load_config(write(tmp_path, f"train: {{epochs: 2, {value}}}\n".replace(", }", "}")))
    assert cfg.train.jit_compile == expected and type(cfg.train.jit_compile) is type(expected)
    assert from_dict(to_dict(cfg)).train.jit_compile == expected


@pytest.mark.parametrize("value,message", [
    ("yes please", "train.jit_compile must be auto, true or false, got 'yes please'"),
    ("1", "train.jit_compile must be bool or str, got 1"),
])
def test_bad_jit_compile_is_named(tmp_path, value, message):
    p = write(tmp_path, "train: {epochs: 2}\n")
    with pytest.raises(ConfigError, match=rf"^--set train.jit_compile={value}: {message}$"):
        load_config(p, [f"train.jit_compile={value}"])


@pytest.mark.parametrize("setting,deterministic,on_gpu,expected", [
    ("auto", False, False, False), ("auto", False, True, True), ("auto", True, True, False),
    (True, False, False, True), (False, False, True, False)])
def test_use_xla_golden(setting, deterministic, on_gpu, expected):
    from anet.steps import use_xla

    assert use_xla(setting, deterministic, on_gpu) is expected


@pytest.mark.parametrize("text,overrides,blamed,message", [
    ("train: {epochs: 2}\n", ["train.batch_size=0"], "--set train.batch_size=0",
     "train.batch_size must be >= 1, got 0"),
    ("train: {epochs: 2}\n", ["train.batchsize=3"], "--set train.batchsize=3",
     "unknown key 'train.batchsize'; did you mean 'train.batch_size'?"),
    ("train: {epochs: 2}\n", ["model.name=resnet"], "--set model.name=resnet", "model.name must be one of"),
    ("train: {epochs: 2}\n", ["schedule.lrs=[0.1]"], "--set schedule.lrs=[0.1]",
     "schedule.lrs/gates must have as many entries"),
    ("train: {epochs: 2}\n", ["train.epochs=x"], "--set train.epochs=x", "train.epochs must be int, got 'x'"),
    ("train: {epochs: 0}\n", ["train.batch_size=8"], "FILE", "train.epochs must be >= 1, got 0"),
])
def test_a_bad_set_is_blamed_on_the_set_not_the_file(tmp_path, text, overrides, blamed, message):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p, overrides)
    assert str(e.value).startswith((str(p) if blamed == "FILE" else blamed) + ": " + message)


def test_anet_config_prints_the_resolved_config(tmp_path, monkeypatch, capsys):
    p = write(tmp_path, "model: {name: vgg16}\n")
    code, out, err = run_cli(["config", p, "--set", "train.epochs=7"], capsys)
    assert (code, err) == (0, "")
    cfg = load_config(p, ["train.epochs=7"])
    assert out == dump_yaml(cfg) and from_dict(yaml.safe_load(out)) == cfg
    assert "name: vgg16" in out and "epochs: 7" in out and "fc_units: 4096" in out  # defaults shown
    code, out, err = run_cli(["config", p, "--set", "train.epochs=-1"], capsys)
    assert (code, out) == (2, "")
    assert err == "error: --set train.epochs=-1: train.epochs must be >= 1, got -1\n"
    code, _, err = run_cli(["config", tmp_path / "nope.yaml"], capsys)
    assert (code, err) == (2, f"error: {tmp_path / 'nope.yaml'}: config file not found\n")
