"""The validation split decoded once (anet.data.cache): where it is kept, the same values as a
fresh decode, evaluate's scores unchanged with a cache file, and cache folders cleaned up."""

import os
import subprocess
import sys

import numpy as np
import pytest

from anet import evaluate as ev
from anet import restore
from anet.data import cache, pipeline
from anet.runs import RunPaths, build_model, open_run
from anet.steps import make_eval_fn
from tests.tinydata import write_dataset
from tests.tinyrun import make_tiny_run


@pytest.mark.parametrize("examples,folder,expected", [
    (1000, None, ""),  # 1000 x 67x67x1 float32 = 18 MB: in memory
    (10**6, None, None),  # 18 GB without a folder: not cached
    (10**6, "f", "f/split"),  # ... with one: a file there
])
def test_where_the_split_is_kept(tmp_path, examples, folder, expected):
    assert cache.decoded_bytes(1, 67, 1) == 67 * 67 * 4 + 4
    got = cache.where(examples, 67, 1, tmp_path / folder if folder else None)
    assert got == (str(tmp_path / expected) if expected and folder else expected)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_folders_of_gone_processes_are_removed_and_nothing_else(tmp_path):
    dead, mine = tmp_path / f".cache-{_dead_pid()}", RunPaths(tmp_path).cache
    alive = tmp_path / f".cache-{os.getppid()}"  # a running process's folder stays
    users = tmp_path / f".cache-{_dead_pid()}0"  # a dead pid's name, but not made by anet
    empty = tmp_path / f".cache-{_dead_pid()}1"  # made by anet, killed before the marker
    for d in (dead, alive, users, empty, tmp_path / ".cache-notes", tmp_path / "cache-1"):
        d.mkdir()
        if d != empty:
            (d / "split.index").write_text("x")
    for d in (dead, alive):
        (d / cache.MARKER).write_text("1\n")
    with cache.cache_folder(mine) as folder:
        assert folder == mine and not dead.exists() and alive.is_dir() and not empty.exists()
        assert cache.where(10**6, 67, 1, folder) == str(mine / "split") and mine.is_dir()
        assert (mine / cache.MARKER).read_text() == f"{os.getpid()}\n"
    assert not mine.exists()  # removed with the command
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [alive.name, users.name, ".cache-notes", "cache-1"])
    assert (users / "split.index").read_text() == "x"


def test_a_folder_that_existed_before_keeps_what_it_held(tmp_path):
    mine = RunPaths(tmp_path).cache  # a folder of this process's name, not made by anet
    (mine / "notes").mkdir(parents=True)
    (mine / "notes" / "n.txt").write_text("keep")
    (mine / "keep.txt").write_text("keep")
    with cache.cache_folder(mine) as folder:
        assert cache.where(10**6, 67, 1, folder) == str(mine / "split")
        (folder / "split.index").write_text("x")  # what tf.data's cache file would write
        (folder / "split_tmp").mkdir()
        assert not (mine / cache.MARKER).exists()  # not anet's folder: never removed as stale
    assert sorted(p.name for p in mine.iterdir()) == ["keep.txt", "notes"]
    assert (mine / "notes" / "n.txt").read_text() == "keep"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cache")
    return make_tiny_run(tmp, epochs=2)


@pytest.mark.parametrize("limit", [cache.MEMORY_LIMIT, 0])  # in memory; in a cache file
def test_decoded_once_gives_the_fresh_decode_on_every_pass(run, tmp_path, limit):
    r = open_run(run)
    spec = r.contract
    fresh = [(x.numpy(), y.numpy()) for x, y in
             pipeline.eval_dataset(r.cfg.data.dir, "valid", spec, batch_size=5)]
    with cache.cache_folder(tmp_path / ".cache-x") as folder:
        ds = pipeline.decoded_once(r.cfg.data.dir, "valid", spec, batch_size=5, folder=folder,
                                   examples=r.dataset.split_size("valid"), limit=limit)
        for _ in range(2):
            got = [(x.numpy(), y.numpy()) for x, y in ds]
            assert len(got) == len(fresh) == 5  # 24 examples in batches of 5
            for (a, b), (c, d) in zip(got, fresh):
                np.testing.assert_array_equal(a, c)
                np.testing.assert_array_equal(b, d)
        assert bool(list(folder.glob("split*"))) == (limit == 0)
    assert not (tmp_path / ".cache-x").exists()


def test_evaluate_with_a_cache_file_scores_as_a_fresh_decode_per_checkpoint(run, monkeypatch):
    monkeypatch.setattr(cache, "MEMORY_LIMIT", 0)  # the run's split goes to a file
    result = ev.evaluate(run, split="valid")
    r = open_run(run)
    model = build_model(r)
    score = make_eval_fn(model)
    for row, c in zip(result["checkpoints"], r.ckpts, strict=True):
        restore.keras_load(c.path, model)  # as before #16: Keras' loader, a fresh decode
        fresh = score(pipeline.eval_dataset(r.cfg.data.dir, "valid", r.contract,
                                            batch_size=r.cfg.train.batch_size))
        assert (row["valid_acc"], row["valid_loss"]) == (fresh["acc"], fresh["loss"])
    assert not list(run.glob(".cache-*"))  # the cache file went with the command


def test_a_split_over_the_limit_in_training_goes_to_a_file_and_is_removed(tmp_path, monkeypatch):
    data = write_dataset(tmp_path / "data", n_per_split={"train": 24, "valid": 8, "test": 4})
    real, kept = cache.where, []
    monkeypatch.setattr(cache, "MEMORY_LIMIT", 0)
    monkeypatch.setattr(cache, "where", lambda *a, **k: kept.append(real(*a, **k)) or kept[-1])
    run = make_tiny_run(tmp_path, epochs=2, data=data, size=35)
    assert kept == [str(RunPaths(run).cache / "split")]  # one split, in a file, for the run
    assert not list(run.glob(".cache-*"))  # removed when train ended
