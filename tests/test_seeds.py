"""Seeds as an axis: `anet train --seeds`, train-many --seeds, evaluate on a seeds folder."""

import subprocess

import pytest

from anet import checkpoints
from anet.config import load_config
from anet.errors import AnetError
from anet.evaluate import evaluate
from anet.runs import RunPaths, parse_seeds
from anet.train import train, train_seeds
from tests.test_train import ANET, ENV
from tests.tinydata import write_dataset
from tests.tinyrun import tiny_config


@pytest.mark.parametrize("text,seeds", [("0,1,2", (0, 1, 2)), ("3", (3,)), ("0-2,7", (0, 1, 2, 7)),
                                        (" 1, 2 ", (1, 2))])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a,b", "1,1", "-1", "0,,1"])
def test_parse_seeds_rejects(text):
    with pytest.raises(AnetError, match=f"--seeds {text!r}"):
        parse_seeds(text)


def test_train_seeds_writes_one_run_per_seed_and_evaluate_takes_the_folder(tmp_path, capsys):
    data = write_dataset(tmp_path / "data", n_per_split={"train": 48, "valid": 12, "test": 12})
    cfg = load_config(tiny_config(tmp_path, data, epochs=1), ["train.max_steps=3"])
    root = tmp_path / "exp"
    finals = train_seeds(cfg, root, (0, 1))
    assert [RunPaths(root).seed_runs()] == [[root / "seed-0", root / "seed-1"]]
    assert [f.config["run"]["seed"] for f in finals] == [0, 1]
    # seed 1 in the folder equals a plain run with run.seed=1 (same weights)
    alone = train(load_config(tiny_config(tmp_path, data, epochs=1),
                              ["train.max_steps=3", "run.seed=1"]), tmp_path / "alone")
    a = checkpoints.latest(root / "seed-1" / "checkpoints")
    assert a.step == alone.step == 3 and a.valid_acc == pytest.approx(alone.valid_acc)
    result = evaluate(root, train_batches=1)
    out = capsys.readouterr().out
    assert [r["run"] for r in result["runs"]] == [str(root / "seed-0"), str(root / "seed-1")]
    assert (root / "seed-0" / "eval.json").is_file() and not (root / "eval.json").exists()
    assert f"{root}: 2 seeds (seed-0, seed-1)" in out and "(mean ± std, n=2)" in out
    with pytest.raises(AnetError, match="holds 2 seed runs; --ckpt names one run's checkpoint"):
        evaluate(root, ckpt="3")
    with pytest.raises(AnetError, match="is a single-seed run; give --seeds another --run-dir"):
        train_seeds(cfg, tmp_path / "alone", (0,))
    with pytest.raises(AnetError, match="holds seed runs of `anet train --seeds`; add --seeds"):
        train(cfg, root)  # a plain run would mix its checkpoints into the experiment folder
    assert not (root / "checkpoints").exists()


@pytest.mark.slow
def test_cli_train_and_train_many_with_seeds(tmp_path):
    data = write_dataset(tmp_path / "data", n_per_split={"train": 48, "valid": 12, "test": 12})
    cfg = str(tiny_config(tmp_path, data, epochs=1))
    out = subprocess.run(ANET + ["train", cfg, "--seeds", "x"], env=ENV, capture_output=True,
                         text=True)
    assert out.returncode == 2 and "error: --seeds 'x': expected seeds like 0,1,2" in out.stderr
    out = subprocess.run(ANET + ["train-many", cfg, "--seeds", "0,1", "--set", "train.max_steps=2",
                                 "--set", f"run.dir={tmp_path / 'many'}"], env=ENV,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:]
    for seed in (0, 1):
        state = checkpoints.latest(tmp_path / "many" / f"seed-{seed}" / "checkpoints")
        assert state.step == 2 and state.config["run"]["seed"] == seed
